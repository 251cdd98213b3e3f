package authserver_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestLimitPerClientBehindProxy: the authorization server's endpoints are
// limited per client address (600 calls a minute). Behind a proxy in
// limits.trustedProxies the address is the one X-Forwarded-For names, so
// one client's flood does not refuse another's calls; from a peer that is
// not trusted the header is ignored, so a client cannot dodge its limit
// by naming other addresses.
func TestLimitPerClientBehindProxy(t *testing.T) {
	introspect := func(t *testing.T, w *world, forwardedFor string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, w.issuer+"/oauth2/introspect", strings.NewReader("token=x"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", forwardedFor)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	// flood calls as one client until it is limited: at 600 a minute the
	// bucket refills by one every 100ms, far slower than the calls come.
	flood := func(t *testing.T, w *world, forwardedFor string) {
		t.Helper()
		for i := range 2000 {
			if code := introspect(t, w, forwardedFor); code == http.StatusServiceUnavailable {
				if i < 600 {
					t.Fatalf("limited after %d calls, before 600", i)
				}
				return
			}
		}
		t.Fatal("2,000 calls from one client, none limited")
	}
	// limited reports whether a client is refused within 20 calls, more
	// than the bucket can refill meanwhile.
	limited := func(t *testing.T, w *world, forwardedFor string) bool {
		t.Helper()
		for range 20 {
			if introspect(t, w, forwardedFor) == http.StatusServiceUnavailable {
				return true
			}
		}
		return false
	}
	b := behalftest.Backends[0] // the limit is kept in memory, whatever the storage
	t.Run("trusted proxy", func(t *testing.T) {
		w := newWorld(t, b, func(f *config.File) { f.Limits.TrustedProxies = []string{"127.0.0.1"} })
		flood(t, w, "198.51.100.1")
		if code := introspect(t, w, "198.51.100.2"); code == http.StatusServiceUnavailable {
			t.Fatal("another client behind the same proxy was limited")
		}
		if !limited(t, w, "203.0.113.9, 198.51.100.1") {
			t.Fatal("the limited client, naming another address first, was not limited")
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		w := newWorld(t, b, func(f *config.File) { f.Limits.TrustedProxies = []string{"10.0.0.0/8"} })
		flood(t, w, "198.51.100.1")
		if !limited(t, w, "198.51.100.2") {
			t.Fatal("a client not behind a trusted proxy, naming another address, was not limited")
		}
	})
}
