package devidp_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/behalf-dev/behalf/internal/devidp"
)

const (
	tokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeIDJAG     = "urn:ietf:params:oauth:token-type:id-jag"
	typeIDToken   = "urn:ietf:params:oauth:token-type:id_token"
	chatAS        = "https://chat.example/"
	mcpAS         = "http://127.0.0.1:8181"
	mcpResource   = "https://mcp.example/mcp"
)

// startIDJAG runs a dev IdP where agent may request ID-JAGs for chatAS (as
// agent-at-chat, any scope or resource) and mcpAS (as itself, with bounded
// scopes and resources), and other for neither.
func startIDJAG(t *testing.T, opts devidp.Options) *env {
	t.Helper()
	opts.Clients = []devidp.Client{
		{ID: "agent", Secret: "agent-secret", IDJAG: []devidp.IDJAGGrant{
			{Audience: chatAS, ClientID: "agent-at-chat"},
			{Audience: mcpAS, Scopes: []string{"tools.read", "tools.call"}, Resources: []string{mcpResource, mcpResource + "/v2"}},
		}},
		{ID: "other", Secret: "other-secret"},
	}
	return start(t, opts)
}

// idJAGForm is an ID-JAG request for subject with audience aud.
func idJAGForm(subject, aud string, extra url.Values) url.Values {
	f := url.Values{"grant_type": {tokenExchange}, "requested_token_type": {typeIDJAG},
		"subject_token": {subject}, "subject_token_type": {typeIDToken}, "audience": {aud}}
	maps.Copy(f, extra)
	return f
}

// idJAG requests an ID-JAG as agent and checks the RFC 8693 §2.2.1 answer.
func (e *env) idJAG(form url.Values) map[string]any {
	e.t.Helper()
	status, m := e.post("/token", form, "agent", "agent-secret")
	if status != http.StatusOK || m["issued_token_type"] != typeIDJAG || m["token_type"] != "N_A" || m["access_token"] == nil {
		e.t.Fatalf("ID-JAG exchange %v: %d %v", form, status, m)
	}
	for _, k := range []string{"refresh_token", "id_token"} {
		if _, has := m[k]; has {
			e.t.Fatalf("ID-JAG answer has %s: %v", k, m)
		}
	}
	return m
}

func TestIDJAGIssuance(t *testing.T) {
	e := startIDJAG(t, devidp.Options{})
	user := e.password()
	idToken := user["id_token"].(string)
	m := e.idJAG(idJAGForm(idToken, chatAS, url.Values{"resource": {"https://api.chat.example/"}, "scope": {"chat.read chat.history"}}))
	if m["expires_in"] != 300.0 || m["scope"] != "chat.read chat.history" {
		t.Fatalf("answer %v", m)
	}
	grant := m["access_token"].(string)
	// e.claims checks the signature against the JWKS, the kid, the typ,
	// iss, exp and iat; the header's alg is checked here.
	c := e.claims(grant, "oauth-id-jag+jwt")
	tok, err := jwt.ParseSigned(grant, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || tok.Headers[0].Algorithm != "RS256" {
		t.Fatalf("header %+v, %v", tok.Headers, err)
	}
	now := float64(e.clock.Now().Unix())
	want := map[string]any{
		"iss": e.url, "sub": "alice", "aud": chatAS, "client_id": "agent-at-chat", "iat": now, "exp": now + 300,
		"resource": "https://api.chat.example/", "scope": "chat.read chat.history", "email": "alice@example.com",
	}
	jti, _ := c["jti"].(string)
	delete(c, "jti")
	if !maps.EqualFunc(c, want, func(a, b any) bool { return a == b }) || jti == "" || jti == e.claims(idToken, "JWT")["jti"] {
		t.Fatalf("claims %v jti %q, want %v", c, jti, want)
	}
	// Every ID-JAG has its own jti.
	if again := e.claims(e.idJAG(idJAGForm(idToken, chatAS, nil))["access_token"].(string), "oauth-id-jag+jwt"); again["jti"] == jti ||
		again["scope"] != nil || again["resource"] != nil {
		t.Fatalf("second ID-JAG %v", again)
	}
	if n := e.count("token", tokenExchange, true); n != 2 {
		t.Fatalf("observed %d ID-JAG exchanges, want 2", n)
	}
}

func TestIDJAGClientSecretPostAndTTL(t *testing.T) {
	e := startIDJAG(t, devidp.Options{IDJAGTTL: 2 * time.Minute})
	form := idJAGForm(e.password()["id_token"].(string), mcpAS, url.Values{
		"client_id": {"agent"}, "client_secret": {"agent-secret"}, "resource": {mcpResource, mcpResource + "/v2"}})
	status, m := e.post("/token", form, "", "")
	if status != http.StatusOK || m["expires_in"] != 120.0 || m["token_type"] != "N_A" {
		t.Fatalf("client_secret_post: %d %v", status, m)
	}
	c := e.claims(m["access_token"].(string), "oauth-id-jag+jwt")
	res, _ := json.Marshal(c["resource"])
	if c["aud"] != mcpAS || c["client_id"] != "agent" || c["exp"].(float64)-c["iat"].(float64) != 120 ||
		string(res) != `["`+mcpResource+`","`+mcpResource+`/v2"]` || c["scope"] != "tools.read tools.call" {
		t.Fatalf("claims %v", c)
	}
}

func TestIDJAGScopeNarrowing(t *testing.T) {
	e := startIDJAG(t, devidp.Options{})
	idToken := e.password()["id_token"].(string)
	for requested, granted := range map[string]string{
		"":                      "tools.read tools.call", // all the grant allows
		"tools.call admin":      "tools.call",
		"tools.read tools.call": "tools.read tools.call",
	} {
		m := e.idJAG(idJAGForm(idToken, mcpAS, url.Values{"scope": {requested}}))
		if m["scope"] != granted || e.claims(m["access_token"].(string), "oauth-id-jag+jwt")["scope"] != granted {
			t.Errorf("scope %q: answer %v, want %q", requested, m, granted)
		}
	}
	e.wantError("/token", idJAGForm(idToken, mcpAS, url.Values{"scope": {"admin"}}), "agent", "agent-secret", 400, "invalid_scope")
}

func TestIDJAGRefusals(t *testing.T) {
	e := startIDJAG(t, devidp.Options{})
	user := e.password()
	idToken, accessToken := user["id_token"].(string), user["access_token"].(string)
	foreign := startIDJAG(t, devidp.Options{}).password()["id_token"].(string)
	_, otherUser := e.post("/token", url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"x"}}, "other", "other-secret")
	jag := e.idJAG(idJAGForm(idToken, chatAS, nil))["access_token"].(string)
	revoked := e.password()["id_token"].(string)
	if status, _ := e.post("/revoke", url.Values{"token": {revoked}}, "agent", "agent-secret"); status != http.StatusOK {
		t.Fatal("revoke")
	}
	without := func(k string) url.Values { f := idJAGForm(idToken, chatAS, nil); f.Del(k); return f }

	for name, c := range map[string]struct {
		form url.Values
		code string
	}{
		"forged (another IdP's key)":  {idJAGForm(foreign, chatAS, nil), "invalid_grant"},
		"not a JWT":                   {idJAGForm("garbage", chatAS, nil), "invalid_grant"},
		"access token as ID token":    {idJAGForm(accessToken, chatAS, nil), "invalid_grant"},
		"revoked ID token":            {idJAGForm(revoked, chatAS, nil), "invalid_grant"},
		"another client's ID token":   {idJAGForm(otherUser["id_token"].(string), chatAS, nil), "invalid_grant"},
		"an ID-JAG as subject":        {idJAGForm(jag, chatAS, nil), "invalid_grant"},
		"audience not allowed":        {idJAGForm(idToken, "https://elsewhere.example/", nil), "invalid_target"},
		"audience differs by a slash": {idJAGForm(idToken, "https://chat.example", nil), "invalid_target"},
		"resource not allowed":        {idJAGForm(idToken, mcpAS, url.Values{"resource": {"https://other.example/mcp"}}), "invalid_target"},
		"relative resource":           {idJAGForm(idToken, chatAS, url.Values{"resource": {"mcp"}}), "invalid_target"},
		"no audience":                 {without("audience"), "invalid_request"},
		"empty audience":              {idJAGForm(idToken, "", nil), "invalid_request"},
		"two audiences":               {idJAGForm(idToken, chatAS, url.Values{"audience": {chatAS, mcpAS}}), "invalid_request"},
		"no subject token":            {without("subject_token"), "invalid_request"},
		"access_token subject type":   {idJAGForm(accessToken, chatAS, url.Values{"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}), "invalid_request"},
		"actor token":                 {idJAGForm(idToken, chatAS, url.Values{"actor_token": {accessToken}, "actor_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}), "invalid_request"},
		"unsupported requested type":  {idJAGForm(idToken, chatAS, url.Values{"requested_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}), "invalid_request"},
	} {
		t.Run(name, func(*testing.T) { e.wantError("/token", c.form, "agent", "agent-secret", 400, c.code) })
	}
	// other may request no ID-JAG, even with its own ID token.
	e.wantError("/token", idJAGForm(otherUser["id_token"].(string), chatAS, nil), "other", "other-secret", 400, "invalid_target")
	e.wantError("/token", idJAGForm(idToken, chatAS, nil), "agent", "wrong", 401, "invalid_client")
	// The IdP issues no access token for its own ID-JAG (the draft's "Cross-Domain Use").
	e.wantError("/token", url.Values{"grant_type": {tokenExchange}, "subject_token": {jag}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}},
		"agent", "agent-secret", 400, "invalid_request")
	// Nor does it revoke one: it is not a token of its clients.
	if status, _ := e.post("/revoke", url.Values{"token": {jag}}, "agent", "agent-secret"); status != http.StatusOK {
		t.Fatalf("revoking an ID-JAG: %d", status)
	}
	// An expired ID token is refused.
	e.clock.Add(time.Hour + time.Second)
	e.wantError("/token", idJAGForm(idToken, chatAS, nil), "agent", "agent-secret", 400, "invalid_grant")
}

func TestIDJAGMetadata(t *testing.T) {
	for name, c := range map[string]struct {
		e    *env
		want bool
	}{"with ID-JAG clients": {startIDJAG(t, devidp.Options{}), true}, "without": {start(t, devidp.Options{}), false}} {
		res, err := http.Get(c.e.url + "/.well-known/oauth-authorization-server")
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(readAll(t, res)), &m); err != nil {
			t.Fatal(err)
		}
		got, has := m["identity_chaining_requested_token_types_supported"]
		if g, _ := json.Marshal(got); has != c.want || has && string(g) != `["`+typeIDJAG+`"]` ||
			!slices.Contains(m["grant_types_supported"].([]any), any(tokenExchange)) {
			t.Errorf("%s: %v", name, m)
		}
	}
}

func TestIDJAGRejectsBadGrants(t *testing.T) {
	many := make([]devidp.IDJAGGrant, 33)
	for i := range many {
		many[i].Audience = "https://as" + strings.Repeat("x", i) + ".example"
	}
	for name, grants := range map[string][]devidp.IDJAGGrant{
		"too many":               many,
		"relative audience":      {{Audience: "as.example"}},
		"ftp audience":           {{Audience: "ftp://as.example"}},
		"plain http remote":      {{Audience: "http://as.example"}},
		"audience with query":    {{Audience: "https://as.example/?t=1"}},
		"audience with fragment": {{Audience: "https://as.example/#x"}},
		"audience twice":         {{Audience: chatAS}, {Audience: chatAS, ClientID: "x"}},
		"control in client_id":   {{Audience: chatAS, ClientID: "a\nb"}},
		"long client_id":         {{Audience: chatAS, ClientID: strings.Repeat("a", 256)}},
		"bad scope":              {{Audience: chatAS, Scopes: []string{`a"b`}}},
		"relative resource":      {{Audience: chatAS, Resources: []string{"mcp"}}},
	} {
		opts := devidp.Options{Issuer: "http://127.0.0.1:1", Clients: []devidp.Client{{ID: "a", Secret: "s", IDJAG: grants}}}
		if _, err := devidp.New(opts); err == nil {
			t.Errorf("%s: New accepted %+v", name, grants)
		}
	}
}
