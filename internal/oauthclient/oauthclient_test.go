package oauthclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/oauthvendor"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// fakeProvider is a token endpoint that records the request it got and
// answers as told: a fake, because the faults below are ones a real
// server cannot be made to produce on demand.
type fakeProvider struct {
	*httptest.Server
	got    *http.Request
	body   string
	answer func(w http.ResponseWriter)
}

func newFake(t *testing.T, answer func(w http.ResponseWriter)) *fakeProvider {
	f := &fakeProvider{answer: answer}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.got, f.body = r, string(b)
		f.answer(w)
	}))
	t.Cleanup(f.Close)
	return f
}

func jsonAnswer(status int, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

func TestClientCredentialsRequestShape(t *testing.T) {
	f := newFake(t, jsonAnswer(200, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"scope":"a b"}`))
	c := &Client{HTTP: testHTTP}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"a b"}, "resource": {"https://r1", "https://r2"}}

	tok, err := c.Do(context.Background(), Request{Endpoint: f.URL, AuthMethod: oauthvendor.ClientSecretBasic, ClientID: "my client", ClientSecret: "s:ecret", Form: form})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "at-1" || tok.Scope != "a b" || time.Until(tok.Expiry) < 59*time.Minute {
		t.Fatalf("%+v", tok)
	}
	user, pass, ok := f.got.BasicAuth()
	// RFC 6749 §2.3.1: form-encoded before Basic.
	if !ok || user != "my+client" || pass != "s%3Aecret" {
		t.Fatalf("basic auth %q %q", user, pass)
	}
	got, _ := url.ParseQuery(f.body)
	if got.Get("grant_type") != "client_credentials" || len(got["resource"]) != 2 || got.Has("client_secret") {
		t.Fatalf("form %v", got)
	}
	if f.got.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || f.got.Header.Get("Accept") != "application/json" {
		t.Fatalf("headers %v", f.got.Header)
	}

	_, err = c.Do(context.Background(), Request{Endpoint: f.URL, AuthMethod: oauthvendor.ClientSecretPost, ClientID: "id", ClientSecret: "sec", Form: form,
		Headers: map[string]string{"Notion-Version": "2025-09-03"}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = url.ParseQuery(f.body)
	if got.Get("client_id") != "id" || got.Get("client_secret") != "sec" || f.got.Header.Get("Authorization") != "" || f.got.Header.Get("Notion-Version") == "" {
		t.Fatalf("post auth: %v %v", got, f.got.Header)
	}

	_, err = c.Do(context.Background(), Request{Endpoint: f.URL, AuthMethod: oauthvendor.ClientSecretBasic, ClientID: "id", ClientSecret: "sec", Form: form, BodyFormat: oauthvendor.BodyJSON})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(f.body), &m); err != nil || m["grant_type"] != "client_credentials" || len(m["resource"].([]any)) != 2 {
		t.Fatalf("json body %q", f.body)
	}
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte("id:sec")); f.got.Header.Get("Authorization") != want {
		t.Fatal("basic header with JSON body")
	}

	// NoClient: neither client_id nor credentials, whatever the request holds.
	_, err = c.Do(context.Background(), Request{Endpoint: f.URL, AuthMethod: oauthvendor.NoClient, ClientID: "id", ClientSecret: "sec", Form: form})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = url.ParseQuery(f.body)
	if got.Has("client_id") || got.Has("client_secret") || f.got.Header.Get("Authorization") != "" || got.Get("grant_type") != "client_credentials" {
		t.Fatalf("no client: %v %v", got, f.got.Header)
	}
}

func TestResponses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   func(w http.ResponseWriter)
		okStatus bool // vendor sends errors with 200
		want     string
		wantErr  string
	}{
		{"form encoded", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
			w.Write([]byte("access_token=gho_x&scope=repo&token_type=bearer"))
		}, false, "gho_x", ""},
		{"expires_in as string", jsonAnswer(200, `{"access_token":"t","token_type":"bearer","expires_in":"120"}`), false, "t", ""},
		{"oauth error", jsonAnswer(400, `{"error":"invalid_client","error_description":"Client authentication failed"}`), false, "", "the provider answered invalid_client: Client authentication failed"},
		{"error with 200", jsonAnswer(200, `{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}`), true, "", "bad_verification_code"},
		{"slack style", jsonAnswer(200, `{"ok":false,"error":"invalid_client_id"}`), true, "", "invalid_client_id"},
		{"html 502", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			w.Write([]byte("<html>bad gateway</html>"))
		}, false, "", "HTTP 502"},
		{"malformed json", jsonAnswer(200, `{"access_token":`), false, "", "not valid JSON"},
		{"no token", jsonAnswer(200, `{"token_type":"bearer"}`), false, "", "no access_token"},
		{"mac token", jsonAnswer(200, `{"access_token":"t","token_type":"mac"}`), false, "", "bearer tokens only"},
		{"hostile description", jsonAnswer(400, `{"error":"x\u0000y","error_description":"`+strings.Repeat("z", 5000)+`\n"}`), false, "", "the provider answered xy: zzzz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.answer)
			tok, err := (&Client{HTTP: testHTTP}).Do(context.Background(), Request{Endpoint: f.URL, ClientID: "c", ClientSecret: "super-secret", ErrorsWithStatusOK: tc.okStatus,
				Form: url.Values{"grant_type": {"client_credentials"}}})
			if tc.wantErr == "" {
				if err != nil || tok.AccessToken != tc.want {
					t.Fatalf("%+v %v", tok, err)
				}
				return
			}
			var pe *ProviderError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "super-secret") || len(err.Error()) > 400 {
				t.Fatalf("error leaks or is unbounded: %q", err)
			}
		})
	}
}

// testHTTP reaches the fake providers, which listen on 127.0.0.1.
var testHTTP = egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}})

// A silent endpoint, a closed port and an address the egress policy
// refuses all give the same error, so a token endpoint cannot be used to
// probe a network.
func TestTimeoutAndUnreachable(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(http.ResponseWriter) { <-release })
	defer close(release)
	c := &Client{HTTP: egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}, Timeout: 200 * time.Millisecond})}
	start := time.Now()
	const want = "could not reach the provider's token endpoint"
	_, err := c.Do(context.Background(), Request{Endpoint: f.URL, ClientID: "c", Form: url.Values{"grant_type": {"client_credentials"}}})
	if fmt.Sprint(err) != want || time.Since(start) > 2*time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
	_, err = c.Do(context.Background(), Request{Endpoint: "http://127.0.0.1:1/token", ClientID: "c", Form: url.Values{}})
	if fmt.Sprint(err) != want {
		t.Fatalf("closed port: %v", err)
	}
	strict := &Client{HTTP: egress.NewClient(egress.Options{})}
	_, err = strict.Do(context.Background(), Request{Endpoint: f.URL, ClientID: "c", Form: url.Values{}})
	if fmt.Sprint(err) != want {
		t.Fatalf("refused by policy: %v", err)
	}
	if err := strict.Revoke(context.Background(), Revocation{Endpoint: f.URL, ClientID: "c", Token: "t"}); fmt.Sprint(err) != "could not reach the provider's revocation endpoint" {
		t.Fatalf("revocation refused by policy: %v", err)
	}
}

func TestSecretEchoedByProviderIsRedacted(t *testing.T) {
	secret := "s3cr3t/with spaces+plus"
	f := newFake(t, jsonAnswer(401, `{"error":"invalid_client","error_description":"`+strings.Repeat("x", 200)+` client secret `+secret+` and `+url.QueryEscape(secret)+` do not match"}`))
	_, err := (&Client{HTTP: testHTTP}).Do(context.Background(), Request{Endpoint: f.URL, ClientID: "c", ClientSecret: secret, Form: url.Values{}})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "[redacted]") {
		t.Fatalf("%v", err)
	}
}

func TestGrantSecretsEchoedByProviderAreRedacted(t *testing.T) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {"the-authorization-code"},
		"code_verifier": {"the-pkce-verifier"},
		"refresh_token": {"the-refresh-token"},
		"subject_token": {"the-subject-token"},
	}
	var echo []string
	for _, k := range []string{"code", "code_verifier", "refresh_token", "subject_token"} {
		echo = append(echo, k+"="+form.Get(k))
	}
	f := newFake(t, jsonAnswer(400, `{"error":"invalid_grant","error_description":"rejected `+strings.Join(echo, " ")+`"}`))
	_, err := (&Client{HTTP: testHTTP}).Do(context.Background(), Request{Endpoint: f.URL, ClientID: "c", Form: form})
	for _, k := range []string{"code", "code_verifier", "refresh_token", "subject_token"} {
		if strings.Contains(fmt.Sprint(err), form.Get(k)) {
			t.Errorf("the error shows the %s: %v", k, err)
		}
	}
	if !strings.Contains(fmt.Sprint(err), "code=[redacted]") {
		t.Errorf("want the echoed values redacted in place: %v", err)
	}

	f = newFake(t, jsonAnswer(400, `{"error":"invalid_request","error_description":"unknown token the-access-token"}`))
	err = (&Client{HTTP: testHTTP}).Revoke(context.Background(), Revocation{Endpoint: f.URL, ClientID: "c", Token: "the-access-token"})
	if err == nil || strings.Contains(err.Error(), "the-access-token") {
		t.Errorf("revocation error shows the token: %v", err)
	}
}

func TestRevoke(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter) { w.WriteHeader(200) })
	c := &Client{HTTP: testHTTP}
	err := c.Revoke(context.Background(), Revocation{Endpoint: f.URL, ClientID: "id", ClientSecret: "sec", Token: "rt-1", Hint: "refresh_token"})
	if err != nil {
		t.Fatal(err)
	}
	form, _ := url.ParseQuery(f.body)
	if u, p, ok := f.got.BasicAuth(); !ok || u != "id" || p != "sec" || form.Get("token") != "rt-1" || form.Get("token_type_hint") != "refresh_token" {
		t.Fatalf("RFC 7009 request: %v %v", f.got.Header, form)
	}

	if err := c.Revoke(context.Background(), Revocation{Endpoint: f.URL, Style: oauthvendor.RevocationBearer, Token: "at-1"}); err != nil {
		t.Fatal(err)
	}
	if f.got.Header.Get("Authorization") != "Bearer at-1" {
		t.Fatalf("bearer style: %v", f.got.Header)
	}

	gh := newFake(t, func(w http.ResponseWriter) { w.WriteHeader(404) })
	if err := c.Revoke(context.Background(), Revocation{Endpoint: gh.URL + "/applications/{client_id}/token", Style: oauthvendor.RevocationGitHub, ClientID: "Iv1.x", ClientSecret: "s", Token: "gho_1"}); err != nil {
		t.Fatalf("github style, unknown token: %v", err)
	}
	if gh.got.Method != http.MethodDelete || gh.got.URL.Path != "/applications/Iv1.x/token" || !strings.Contains(gh.body, "gho_1") {
		t.Fatalf("github style: %s %s %s", gh.got.Method, gh.got.URL.Path, gh.body)
	}

	bad := newFake(t, jsonAnswer(400, `{"error":"unsupported_token_type","error_description":"no"}`))
	err = c.Revoke(context.Background(), Revocation{Endpoint: bad.URL, ClientID: "id", Token: "x"})
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.Code != "unsupported_token_type" {
		t.Fatalf("%v", err)
	}
	missing := newFake(t, func(w http.ResponseWriter) { w.WriteHeader(404) })
	if err := c.Revoke(context.Background(), Revocation{Endpoint: missing.URL, ClientID: "id", Token: "x"}); err == nil {
		t.Fatal("a 404 from an RFC 7009 endpoint counted as success")
	}
}

// FuzzParse feeds arbitrary provider responses to the parser: it never
// panics, a success always carries a token, and an error never repeats the
// response's token-bearing members.
func FuzzParse(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt","scope":"a b"}`))
	f.Add(400, "application/json", []byte(`{"error":"invalid_grant","error_description":"bad"}`))
	f.Add(200, "application/x-www-form-urlencoded", []byte(`access_token=x&token_type=bearer&expires_in=60`))
	f.Add(200, "text/plain", []byte(`access_token=x`))
	f.Add(200, "application/json", []byte(`{"access_token":"x","expires_in":"99999999999999999999"}`))
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte) {
		res := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {ctype}}}
		tok, err := parse(res, body, status%2 == 0, time.Now())
		if err == nil && (tok == nil || tok.AccessToken == "") {
			t.Fatalf("success without a token for %q", body)
		}
		if err != nil {
			var pe *ProviderError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error %v", err)
			}
		}
	})
}

// Expiry is expires_in counted from the client's clock, the one that
// later judges the token, not from the real time.
func TestExpiryFromTheClientsClock(t *testing.T) {
	f := newFake(t, jsonAnswer(200, `{"access_token":"t","token_type":"bearer","expires_in":120}`))
	clock := testclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	tok, err := (&Client{HTTP: testHTTP, Now: clock.Now}).Do(context.Background(), Request{Endpoint: f.URL, ClientID: "c", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Now().Add(120 * time.Second); !tok.Expiry.Equal(want) {
		t.Errorf("Expiry = %v, want %v", tok.Expiry, want)
	}
}
