package devidp_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/devidp"
)

const (
	grantExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeAccess    = "urn:ietf:params:oauth:token-type:access_token"
)

// clientToken is the client's own client_credentials access token.
func (e *env) clientToken(id, secret string) string {
	e.t.Helper()
	status, m := e.post("/token", url.Values{"grant_type": {"client_credentials"}}, id, secret)
	if status != http.StatusOK {
		e.t.Fatalf("client_credentials for %s: %d %v", id, status, m)
	}
	return m["access_token"].(string)
}

// exchangeForm is a token exchange of subject, with actor as the actor
// token unless it is "".
func exchangeForm(subject, actor string) url.Values {
	f := url.Values{"grant_type": {grantExchange}, "subject_token": {subject}, "subject_token_type": {typeAccess}}
	if actor != "" {
		f.Set("actor_token", actor)
		f.Set("actor_token_type", typeAccess)
	}
	return f
}

// act returns the token's act claim as JSON, "" when it has none.
func (e *env) act(token string) string {
	e.t.Helper()
	a, ok := e.claims(token, "at+jwt")["act"]
	if !ok {
		return ""
	}
	b, err := json.Marshal(a)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// TestTokenExchangeActor: an actor token (RFC 8693 §2.1) — the client's
// own client_credentials token — makes the exchanged token name its
// subject in act (§4.1); exchanging that token again with another actor
// nests the first actor as the prior one, and exchanging it without an
// actor keeps its act.
func TestTokenExchangeActor(t *testing.T) {
	e := start(t, devidp.Options{})
	user := e.password()["access_token"].(string)
	agent := e.clientToken("agent", "agent-secret")

	status, m := e.post("/token", exchangeForm(user, agent), "other", "other-secret")
	if status != http.StatusOK || m["issued_token_type"] != typeAccess {
		t.Fatalf("exchange with an actor: %d %v", status, m)
	}
	acted := m["access_token"].(string)
	c := e.claims(acted, "at+jwt")
	if c["sub"] != "alice" || c["client_id"] != "other" || e.act(acted) != `{"sub":"agent"}` {
		t.Fatalf("claims %v", c)
	}
	e.mu.Lock()
	last := e.events[len(e.events)-1]
	e.mu.Unlock()
	if last.Subject != "alice" || last.Actor != "agent" || last.ClientID != "other" {
		t.Errorf("event %+v", last)
	}
	if a := e.act(user); a != "" {
		t.Errorf("the password grant's token has act %s", a)
	}

	// A delegation chain: other acts for alice through agent.
	status, m = e.post("/token", exchangeForm(acted, e.clientToken("other", "other-secret")), "agent", "agent-secret")
	if status != http.StatusOK {
		t.Fatalf("second exchange: %d %v", status, m)
	}
	if a := e.act(m["access_token"].(string)); a != `{"act":{"sub":"agent"},"sub":"other"}` {
		t.Errorf("nested act %s", a)
	}
	status, m = e.post("/token", exchangeForm(acted, ""), "agent", "agent-secret")
	if status != http.StatusOK || e.act(m["access_token"].(string)) != `{"sub":"agent"}` {
		t.Errorf("exchange without an actor: %d, act %s", status, e.act(m["access_token"].(string)))
	}

	foreign := start(t, devidp.Options{}).clientToken("agent", "agent-secret")
	revoked := e.clientToken("agent", "agent-secret")
	if status, _ := e.post("/revoke", url.Values{"token": {revoked}}, "agent", "agent-secret"); status != http.StatusOK {
		t.Fatalf("revoke: %d", status)
	}
	for name, edit := range map[string]func(url.Values){
		"actor_token without its type": func(f url.Values) { f.Del("actor_token_type") },
		"actor_token_type alone":       func(f url.Values) { f.Del("actor_token") },
		"empty actor_token":            func(f url.Values) { f.Set("actor_token", "") },
		"refresh token type":           func(f url.Values) { f.Set("actor_token_type", "urn:ietf:params:oauth:token-type:refresh_token") },
		"not a JWT":                    func(f url.Values) { f.Set("actor_token", "garbage") },
		"another issuer's token":       func(f url.Values) { f.Set("actor_token", foreign) },
		"revoked":                      func(f url.Values) { f.Set("actor_token", revoked) },
	} {
		t.Run(name, func(*testing.T) {
			f := exchangeForm(user, agent)
			edit(f)
			e.wantError("/token", f, "other", "other-secret", http.StatusBadRequest, "invalid_request")
		})
	}

	// An expired actor token is refused though the subject token is fresh.
	e.clock.Add(50 * time.Minute)
	fresh := e.password()["access_token"].(string)
	e.clock.Add(11 * time.Minute)
	e.wantError("/token", exchangeForm(fresh, agent), "other", "other-secret", http.StatusBadRequest, "invalid_request")
	if status, m := e.post("/token", exchangeForm(fresh, e.clientToken("agent", "agent-secret")), "other", "other-secret"); status != http.StatusOK {
		t.Fatalf("exchange with a fresh actor: %d %v", status, m)
	}
}

// TestAnonymousTokenExchange: with AnonymousTokenExchange, a token
// exchange naming no client is served unauthenticated (RFC 8693 §2.1),
// its token without client_id or azp and for the audience named; a request
// naming a client must still authenticate it, and nothing else is served
// anonymously. Off, the default, it is invalid_client.
func TestAnonymousTokenExchange(t *testing.T) {
	strict := start(t, devidp.Options{})
	f := exchangeForm(strict.password()["access_token"].(string), "")
	f.Set("audience", "billing")
	strict.wantError("/token", f, "", "", http.StatusUnauthorized, "invalid_client")

	e := start(t, devidp.Options{AnonymousTokenExchange: true})
	user := e.password()
	f = exchangeForm(user["access_token"].(string), e.clientToken("agent", "agent-secret"))
	f.Set("audience", "billing")
	status, m := e.post("/token", f, "", "")
	if status != http.StatusOK {
		t.Fatalf("anonymous exchange: %d %v", status, m)
	}
	c := e.claims(m["access_token"].(string), "at+jwt")
	if c["sub"] != "alice" || c["aud"] != "billing" || c["client_id"] != nil || c["azp"] != nil || e.act(m["access_token"].(string)) != `{"sub":"agent"}` {
		t.Fatalf("claims %v", c)
	}

	noAudience := exchangeForm(user["access_token"].(string), "")
	e.wantError("/token", noAudience, "", "", http.StatusBadRequest, "invalid_request")
	named := exchangeForm(user["access_token"].(string), "")
	named.Set("audience", "billing")
	named.Set("client_id", "agent")
	e.wantError("/token", named, "", "", http.StatusUnauthorized, "invalid_client")
	e.wantError("/token", f, "agent", "wrong", http.StatusUnauthorized, "invalid_client")
	e.wantError("/token", url.Values{"grant_type": {"client_credentials"}}, "", "", http.StatusUnauthorized, "invalid_client")
	e.wantError("/token", url.Values{"grant_type": {grantExchange}, "requested_token_type": {"urn:ietf:params:oauth:token-type:id-jag"},
		"subject_token": {user["id_token"].(string)}, "subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}, "audience": {"https://as.example/"}},
		"", "", http.StatusUnauthorized, "invalid_client")
	// An authenticated exchange is served as before.
	if status, m := e.post("/token", exchangeForm(user["access_token"].(string), ""), "agent", "agent-secret"); status != http.StatusOK ||
		e.claims(m["access_token"].(string), "at+jwt")["client_id"] != "agent" {
		t.Fatalf("authenticated exchange: %d %v", status, m)
	}
}
