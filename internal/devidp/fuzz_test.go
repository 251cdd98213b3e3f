package devidp_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/devidp"
)

func fuzzServer(f *testing.F) http.Handler {
	s, err := devidp.New(devidp.Options{Issuer: "http://127.0.0.1:9400", Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret"}}})
	if err != nil {
		f.Fatal(err)
	}
	return s.Handler()
}

// FuzzTokenEndpoint: whatever the form, /token answers an RFC 6749 §5.1
// token or a §5.2 error, never a 5xx.
func FuzzTokenEndpoint(f *testing.F) {
	h := fuzzServer(f)
	for _, seed := range []string{
		"grant_type=client_credentials&scope=a+b&resource=https://x.example",
		"grant_type=password&username=alice&password=x",
		"grant_type=refresh_token&refresh_token=x",
		"grant_type=authorization_code&code=x&code_verifier=y&redirect_uri=http://127.0.0.1/cb",
		"grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=a.b.c&subject_token_type=urn:ietf:params:oauth:token-type:jwt",
		"grant_type=%zz", "scope=%00&&&=",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("agent", "agent-secret")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%d, not JSON: %q", rec.Code, rec.Body)
		}
		switch {
		case rec.Code == 200 && m["access_token"] != nil:
		case (rec.Code == 400 || rec.Code == 401) && m["error"] != nil:
		default:
			t.Fatalf("%d %v", rec.Code, m)
		}
	})
}

// FuzzAuthorize: whatever the query, /authorize shows the page, redirects
// to the client's URI, or refuses; never a 5xx.
func FuzzAuthorize(f *testing.F) {
	h := fuzzServer(f)
	f.Add("response_type=code&client_id=agent&redirect_uri=http://127.0.0.1/cb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&scope=openid&state=x")
	f.Add("client_id=agent&redirect_uri=https://app.example/cb?a=1&scope=%3Cb%3E")
	f.Add("client_id=agent&redirect_uri=http://[::1]:80/cb&resource=x&resource=https://y")
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "/authorize", nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400:
		case 302:
			u, err := url.Parse(rec.Header().Get("Location"))
			ip := net.ParseIP(u.Hostname())
			if err != nil || u.Scheme != "https" && (u.Scheme != "http" || u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback())) {
				t.Fatalf("redirect to %q", rec.Header().Get("Location"))
			}
		default:
			t.Fatalf("%d", rec.Code)
		}
	})
}
