package server

import (
	"context"
	"net/http"
	"time"

	"github.com/behalf-dev/behalf/internal/ratelimit"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wire"
)

// throttled limits each principal's calls once it is authenticated, so
// that every operation is limited in one place and an unauthenticated
// caller cannot spend another principal's allowance. A throttled call is
// refused before it is authorized, served or audited: an audit record per
// refused call would let a flood grow the audit log, which the limit is
// there to prevent.
type throttled struct {
	apiAuthenticator
	limiter *ratelimit.Limiter
	metrics *telemetry.Metrics
}

// throttle wraps authn with a per-principal limit; a zero rate means none.
// metrics counts the calls refused; nil counts nothing.
func throttle(authn apiAuthenticator, perSecond float64, burst int, now func() time.Time, metrics *telemetry.Metrics) apiAuthenticator {
	if perSecond <= 0 {
		return authn
	}
	return throttled{apiAuthenticator: authn, limiter: ratelimit.New(ratelimit.Limit{PerSecond: perSecond, Burst: burst}, ratelimit.Options{Now: now}), metrics: metrics}
}

// Authenticate implements wire.Authenticator.
func (t throttled) Authenticate(ctx context.Context, r *http.Request, body []byte) (wire.Caller, error) {
	c, err := t.apiAuthenticator.Authenticate(ctx, r, body)
	return t.limit(ctx, c, err)
}

// AuthenticatePayloadHash implements
// workloadtoken.PayloadHashAuthenticator: a signed caller behalf gateway
// passes on spends its own allowance, as when it calls behalf.
func (t throttled) AuthenticatePayloadHash(ctx context.Context, r *http.Request, payloadSHA256 string) (wire.Caller, error) {
	c, err := t.apiAuthenticator.AuthenticatePayloadHash(ctx, r, payloadSHA256)
	return t.limit(ctx, c, err)
}

func (t throttled) limit(ctx context.Context, c wire.Caller, err error) (wire.Caller, error) {
	if err == nil && !t.limiter.Allow(c.AccessKeyID) {
		t.metrics.RateLimited(ctx, telemetry.LimitPrincipal)
		return wire.Caller{}, wire.Throttling("rate exceeded for %s: slow down and retry", c.AccessKeyID)
	}
	return c, err
}
