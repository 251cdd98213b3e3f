package oauthwire_test

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// RFC 7636 Appendix B's example verifier and challenge.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestVerifierMatches(t *testing.T) {
	if !oauthwire.VerifierMatches(rfcVerifier, rfcChallenge) {
		t.Fatal("RFC 7636 Appendix B's verifier does not match its challenge")
	}
	for name, v := range map[string]string{
		"another verifier": strings.Repeat("a", 43),
		"too short":        rfcVerifier[:42],
		"bad character":    rfcVerifier[:42] + "+",
		"the challenge":    rfcChallenge,
	} {
		if oauthwire.VerifierMatches(v, rfcChallenge) {
			t.Errorf("%s matches", name)
		}
	}
}

func TestCheckChallenge(t *testing.T) {
	if e := oauthwire.CheckChallenge(rfcChallenge, "S256"); e != nil {
		t.Fatalf("S256: %v", e)
	}
	for name, c := range map[string][2]string{
		"missing":   {"", "S256"},
		"plain":     {rfcChallenge, "plain"},
		"no method": {rfcChallenge, ""},
		"short":     {rfcChallenge[:42], "S256"},
	} {
		if e := oauthwire.CheckChallenge(c[0], c[1]); e == nil || e.Code != "invalid_request" {
			t.Errorf("%s: got %v, want invalid_request", name, e)
		}
	}
}

func TestParseScope(t *testing.T) {
	got, e := oauthwire.ParseScope(" read  write read ")
	if e != nil || !slices.Equal(got, []string{"read", "write"}) {
		t.Fatalf("got %q, %v", got, e)
	}
	var many []string
	for i := range oauthwire.MaxScopes + 1 {
		many = append(many, fmt.Sprint("s", i))
	}
	for _, bad := range []string{`a"b`, `a\b`, strings.Repeat("a", 256), strings.Join(many, " ")} {
		if _, e := oauthwire.ParseScope(bad); e == nil || e.Code != "invalid_scope" {
			t.Errorf("%.20q: got %v, want invalid_scope", bad, e)
		}
	}
}

func TestPostFormRefusesRepeatedParameters(t *testing.T) {
	for body, want := range map[string]string{
		"grant_type=a&grant_type=b": "invalid_request",
		"resource=x&resource=y":     "",
		"a=%zz":                     "invalid_request",
	} {
		r := httptest.NewRequest("POST", "/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		_, e := oauthwire.PostForm(httptest.NewRecorder(), r)
		if got := code(e); got != want {
			t.Errorf("%s: got %q, want %q", body, got, want)
		}
	}
	if oauthwire.Single(url.Values{"audience": {"a", "b"}}) != nil {
		t.Error("audience may repeat (RFC 8693 §2.1)")
	}
}

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	oauthwire.WriteError(w, oauthwire.Errorf("invalid_client", "no such client"), true, "behalf")
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Basic realm="behalf"` || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("got %d %v", w.Code, w.Header())
	}
	if !strings.Contains(w.Body.String(), `"error":"invalid_client"`) {
		t.Fatalf("body %s", w.Body)
	}
}

func code(e *oauthwire.Error) string {
	if e == nil {
		return ""
	}
	return e.Code
}

func TestWritePageForbidsFraming(t *testing.T) {
	w := httptest.NewRecorder()
	oauthwire.WritePage(w, 200, []byte("<p>hi</p>"))
	h := w.Header()
	if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		strings.Contains(h.Get("Content-Security-Policy"), "form-action") || h.Get("Cache-Control") != "no-store" ||
		h.Get("Content-Type") != "text/html; charset=utf-8" || w.Body.String() != "<p>hi</p>" {
		t.Fatalf("%v %q", h, w.Body)
	}
}

func TestAuditType(t *testing.T) {
	e := oauthwire.Errorf("invalid_grant", "the ID-JAG has expired")
	if e.AuditType() != "invalid_grant" || e.Because("expired").AuditType() != "invalid_grant:expired" || e.Reason != "" {
		t.Fatalf("%q %q %q", e.AuditType(), e.Because("expired").AuditType(), e.Reason)
	}
}
