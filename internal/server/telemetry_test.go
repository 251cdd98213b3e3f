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

// Each call the per-principal limit refuses is counted once.
func TestThrottleCountsRejections(t *testing.T) {
	metrics := metrictest.New(t)
	clock := func() time.Time { return time.Unix(1_700_000_000, 0) }
	a := throttle(fixedCaller{}, 1, 3, clock, metrics.Metrics)
	refused := 0
	for range 5 {
		if _, err := a.Authenticate(t.Context(), nil, nil); err != nil {
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
