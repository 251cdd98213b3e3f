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
	wire.Authenticator
	limiter *ratelimit.Limiter
	metrics *telemetry.Metrics
}

// throttle wraps authn with a per-principal limit; a zero rate means none.
// metrics counts the calls refused; nil counts nothing.
func throttle(authn wire.Authenticator, perSecond float64, burst int, now func() time.Time, metrics *telemetry.Metrics) wire.Authenticator {
	if perSecond <= 0 {
		return authn
	}
	return throttled{Authenticator: authn, limiter: ratelimit.New(ratelimit.Limit{PerSecond: perSecond, Burst: burst}, ratelimit.Options{Now: now}), metrics: metrics}
}

// Authenticate implements wire.Authenticator.
func (t throttled) Authenticate(ctx context.Context, r *http.Request, body []byte) (wire.Caller, error) {
	c, err := t.Authenticator.Authenticate(ctx, r, body)
	if err == nil && !t.limiter.Allow(c.AccessKeyID) {
		t.metrics.RateLimited(ctx, telemetry.LimitPrincipal)
		return wire.Caller{}, wire.Throttling("rate exceeded for %s: slow down and retry", c.AccessKeyID)
	}
	return c, err
}
