package server

import (
	"context"
	"net/http"
	"time"

	"github.com/behalf-dev/behalf/internal/ratelimit"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/wire"
)

// principalLimit limits each principal's calls once it is authenticated,
// so that every operation is limited in one place and an unauthenticated
// caller cannot spend another principal's allowance: the API's signed
// calls through throttled, the console's in-process invocations through
// the router (wire.Router.LimitInvocations). A throttled call is refused
// before it is authorized, served or audited: an audit record per refused
// call would let a flood grow the audit log, which the limit is there to
// prevent.
type principalLimit struct {
	limiter *ratelimit.Limiter
	metrics *telemetry.Metrics
}

// newPrincipalLimit is the limit per principal; nil for a zero rate,
// which means none. metrics counts the calls refused; nil counts nothing.
func newPrincipalLimit(perSecond float64, burst int, now func() time.Time, metrics *telemetry.Metrics) *principalLimit {
	if perSecond <= 0 {
		return nil
	}
	return &principalLimit{limiter: ratelimit.New(ratelimit.Limit{PerSecond: perSecond, Burst: burst}, ratelimit.Options{Now: now}), metrics: metrics}
}

// Limit implements wire.Limiter.
func (l *principalLimit) Limit(ctx context.Context, c wire.Caller) error {
	if !l.limiter.Allow(c.AccessKeyID) {
		l.metrics.RateLimited(ctx, telemetry.LimitPrincipal)
		return wire.Throttling("rate exceeded for %s: slow down and retry", c.AccessKeyID)
	}
	return nil
}

// throttled limits the callers authn authenticates.
type throttled struct {
	apiAuthenticator
	limit *principalLimit
}

// throttle wraps authn with limit; a nil limit means none.
func throttle(authn apiAuthenticator, limit *principalLimit) apiAuthenticator {
	if limit == nil {
		return authn
	}
	return throttled{apiAuthenticator: authn, limit: limit}
}

// Authenticate implements wire.Authenticator.
func (t throttled) Authenticate(ctx context.Context, r *http.Request, body []byte) (wire.Caller, error) {
	c, err := t.apiAuthenticator.Authenticate(ctx, r, body)
	return t.admit(ctx, c, err)
}

// AuthenticatePayloadHash implements
// workloadtoken.PayloadHashAuthenticator: a signed caller behalf gateway
// passes on spends its own allowance, as when it calls behalf.
func (t throttled) AuthenticatePayloadHash(ctx context.Context, r *http.Request, payloadSHA256 string) (wire.Caller, error) {
	c, err := t.apiAuthenticator.AuthenticatePayloadHash(ctx, r, payloadSHA256)
	return t.admit(ctx, c, err)
}

func (t throttled) admit(ctx context.Context, c wire.Caller, err error) (wire.Caller, error) {
	if err == nil {
		if err := t.limit.Limit(ctx, c); err != nil {
			return wire.Caller{}, err
		}
	}
	return c, err
}
