package dataplane_test

import (
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestHandlerLogLineCarriesRequestID: a line the data plane logs while it
// serves a call (here: a cached M2M token that no longer opens, which is
// replaced by a new one) carries the request id the caller got, so an
// operator can find every line of a call the caller quotes.
func TestHandlerLogLineCarriesRequestID(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		var logs logBuffer
		w := newWorld(t, b, worldOptions{log: logs.debugLogger()})
		token := mintPlain(t, w.rt, workloadW1)
		first, err := getM2M(ctx(t), w.rt, token, m2mProvider)
		if err != nil {
			t.Fatal(err)
		}
		db, ph := rawDB(t, w.s)
		execOne(t, db, "UPDATE cached_tokens SET token = "+ph(1)+" WHERE workload = "+ph(2), []byte("not a sealed token"), workloadW1)

		second, err := getM2M(ctx(t), w.rt, token, m2mProvider)
		if err != nil {
			t.Fatalf("a cached token that does not open failed the call: %v", err)
		}
		if *second.AccessToken == *first.AccessToken {
			t.Error("the token that did not open was served")
		}
		id := requestIDOf(second.ResultMetadata, nil)
		var line string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "cached token does not open") {
				line = l
			}
		}
		if line == "" || id == "" || !strings.Contains(line, "request_id="+id) {
			t.Fatalf("request id %q not on the handler's log line %q; log:\n%s", id, line, logs.String())
		}
	})
}
