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
	s, err := devidp.New(devidp.Options{Issuer: "http://127.0.0.1:9400", Clients: []devidp.Client{{ID: "agent", Secret: "agent-secret",
		IDJAG: []devidp.IDJAGGrant{{Audience: chatAS}, {Audience: mcpAS, Scopes: []string{"tools.read"}, Resources: []string{mcpResource}}}}}})
	if err != nil {
		f.Fatal(err)
	}
	return s.Handler()
}

// fuzzPost sends a form to /token as agent and decodes the JSON answer.
func fuzzPost(t testing.TB, h http.Handler, body string) (int, map[string]any) {
	req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("agent", "agent-secret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%d, not JSON: %q", rec.Code, rec.Body)
	}
	return rec.Code, m
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
		"grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=a.b.c&subject_token_type=urn:ietf:params:oauth:token-type:jwt&actor_token=a.b.c&actor_token_type=urn:ietf:params:oauth:token-type:access_token",
		"grant_type=urn:ietf:params:oauth:grant-type:token-exchange&requested_token_type=urn:ietf:params:oauth:token-type:id-jag&subject_token=a.b.c&subject_token_type=urn:ietf:params:oauth:token-type:id_token&audience=https://chat.example/",
		"grant_type=%zz", "scope=%00&&&=",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		switch code, m := fuzzPost(t, h, body); {
		case code == 200 && m["access_token"] != nil:
		case (code == 400 || code == 401) && m["error"] != nil:
		default:
			t.Fatalf("%d %v", code, m)
		}
	})
}

// FuzzIDJAGExchange: with a genuine ID token and any other parameters, an
// ID-JAG request is refused with an RFC 6749 §5.2 error, or answered with an
// ID-JAG for a configured audience whose scope the grant allows.
func FuzzIDJAGExchange(f *testing.F) {
	h := fuzzServer(f)
	_, user := fuzzPost(f, h, "grant_type=password&username=alice&password=x")
	idToken, _ := user["id_token"].(string)
	if idToken == "" {
		f.Fatalf("no ID token: %v", user)
	}
	for _, seed := range [][3]string{
		{chatAS, "", ""}, {mcpAS, mcpResource, "tools.read admin"}, {mcpAS, "https://x.example", ""},
		{"https://chat.example", "", "a%00"}, {"", "", ""}, {chatAS + "&audience=" + mcpAS, "rel", "x"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, audience, resource, scope string) {
		body := "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&requested_token_type=urn:ietf:params:oauth:token-type:id-jag" +
			"&subject_token_type=urn:ietf:params:oauth:token-type:id_token&subject_token=" + idToken +
			"&audience=" + audience + "&resource=" + resource + "&scope=" + scope
		code, m := fuzzPost(t, h, body)
		if code == 400 && m["error"] != nil {
			return
		}
		form, _ := url.ParseQuery(body)
		if code != 200 || m["token_type"] != "N_A" || m["issued_token_type"] != "urn:ietf:params:oauth:token-type:id-jag" ||
			(form.Get("audience") != chatAS && form.Get("audience") != mcpAS) ||
			form.Get("audience") == mcpAS && m["scope"] != "tools.read" {
			t.Fatalf("%q: %d %v", body, code, m)
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
