package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/testutil/metrictest"
	"github.com/behalf-dev/behalf/internal/wire"
)

type fixedCaller struct{}

func (fixedCaller) Authenticate(context.Context, *http.Request, []byte) (wire.Caller, error) {
	return wire.Caller{AccessKeyID: "AKIAEXAMPLE"}, nil
}

func (fixedCaller) AuthenticatePayloadHash(context.Context, *http.Request, string) (wire.Caller, error) {
	return wire.Caller{AccessKeyID: "AKIAEXAMPLE"}, nil
}

// Each call the per-principal limit refuses is counted once; a signed
// caller the gateway passes on, and the console's in-process invocations
// as the principal (wire.Router.LimitInvocations), spend the same
// allowance as its own calls.
func TestThrottleCountsRejections(t *testing.T) {
	metrics := metrictest.New(t)
	clock := func() time.Time { return time.Unix(1_700_000_000, 0) }
	limit := newPrincipalLimit(1, 3, clock, metrics.Metrics)
	a := throttle(fixedCaller{}, limit)
	refused := 0
	for i := range 5 {
		var err error
		switch i % 3 {
		case 0:
			_, err = a.Authenticate(t.Context(), nil, nil)
		case 1:
			_, err = a.AuthenticatePayloadHash(t.Context(), nil, "")
		default:
			err = limit.Limit(t.Context(), wire.Caller{AccessKeyID: "AKIAEXAMPLE"})
		}
		if err != nil {
			refused++
		}
	}
	if refused != 2 {
		t.Fatalf("%d calls refused, want 2", refused)
	}
	if got := metrics.Counts(t, "behalf.ratelimit.rejections", telemetry.Limit); len(got) != 1 || got[telemetry.LimitPrincipal] != 2 {
		t.Errorf("rejections %v, want 2 of %s", got, telemetry.LimitPrincipal)
	}
}
