package clients_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/storage"
)

// register POSTs body to the registration endpoint from addr.
func (e *env) register(t *testing.T, body, addr string) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, issuer+"/oauth2/register", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if addr != "" {
		r.RemoteAddr = addr
	}
	w := httptest.NewRecorder()
	e.reg.Register(w, r)
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("response %d %q: %v", w.Code, w.Body, err)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("response without Cache-Control: no-store")
	}
	return w.Code, m
}

func TestRegisterPublicClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st storage.Storage) {
		e := newEnv(t, st, nil)
		status, m := e.register(t, `{"client_name":"Claude","redirect_uris":["http://127.0.0.1:8765/callback"],
			"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none","application_type":"native","unknown":1}`, "")
		id, _ := m["client_id"].(string)
		if status != http.StatusCreated || id == "" || strings.HasPrefix(id, "https://") || m["client_secret"] != nil ||
			m["client_id_issued_at"] != float64(e.clock.Now().Unix()) || m["token_endpoint_auth_method"] != "none" ||
			m["application_type"] != "native" || m["unknown"] != nil {
			t.Fatalf("registration %d %v", status, m)
		}
		c, oe := e.reg.Resolve(t.Context(), id)
		if oe != nil || c.Kind != clients.Dynamic || c.Name != "Claude" || !c.Public() || !c.AllowsRedirect("http://127.0.0.1:8765/callback") || !c.AllowsGrant("refresh_token") {
			t.Fatalf("resolved %+v %v", c, oe)
		}
		r, form := tokenRequest(map[string]string{"client_id": id}, "", "")
		if c, oe := e.reg.Authenticate(t.Context(), r, form); oe != nil || c.ID != id {
			t.Fatalf("public client: %+v %v", c, oe)
		}
		// The record committed with the client.
		recs, err := st.ListAudit(t.Context(), storage.AuditFilter{})
		if err != nil || len(recs) != 1 || recs[0].Operation != "OAuthRegisterClient" || recs[0].Principal != "client:"+id ||
			recs[0].Resource != id || recs[0].Outcome != "success" {
			t.Fatalf("audit %+v %v", recs, err)
		}
	})
}

func TestRegisterConfidentialClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st storage.Storage) {
		e := newEnv(t, st, nil)
		for _, method := range []string{"client_secret_basic", "client_secret_post"} {
			status, m := e.register(t, `{"client_name":"Web app","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"`+method+`"}`, "")
			id, _ := m["client_id"].(string)
			secret, _ := m["client_secret"].(string)
			if status != http.StatusCreated || len(secret) < 43 || m["client_secret_expires_at"] != 0.0 || m["token_endpoint_auth_method"] != method {
				t.Fatalf("%s: %d %v", method, status, m)
			}
			stored, err := st.GetOAuthClient(t.Context(), id)
			if err != nil || len(stored.SecretHash) != 32 || bytes.Contains(stored.Metadata, []byte(secret)) {
				t.Fatalf("stored %+v %v", stored, err)
			}
			basic := method == "client_secret_basic"
			authenticate := func(secret string, basicAuth bool) (clients.Client, string) {
				r, form := tokenRequest(map[string]string{"client_secret": secret, "client_id": id}, "", "")
				if basicAuth {
					r, form = tokenRequest(nil, url.QueryEscape(id), url.QueryEscape(secret))
				}
				c, oe := e.reg.Authenticate(t.Context(), r, form)
				return c, code(oe)
			}
			if c, got := authenticate(secret, basic); got != "" || c.ID != id || c.Kind != clients.Dynamic {
				t.Fatalf("%s with the issued secret: %q", method, got)
			}
			if _, got := authenticate(secret+"x", basic); got != "invalid_client" {
				t.Errorf("%s with a wrong secret: %q", method, got)
			}
			if _, got := authenticate(secret, !basic); got != "invalid_client" {
				t.Errorf("%s by the other method: %q", method, got)
			}
			r, form := tokenRequest(map[string]string{"client_id": id}, "", "")
			if _, oe := e.reg.Authenticate(t.Context(), r, form); code(oe) != "invalid_client" {
				t.Errorf("%s without a secret: %v", method, oe)
			}
		}
		// Basic and client_secret in the body together: two methods.
		r, form := tokenRequest(map[string]string{"client_secret": "x"}, "id", "secret")
		if _, oe := e.reg.Authenticate(t.Context(), r, form); code(oe) != "invalid_request" {
			t.Errorf("two methods: %v", oe)
		}
	})
}

func TestRegisterRefusals(t *testing.T) {
	e := newEnv(t, sqliteStore(t), func(o *clients.Options) { o.RegistrationsPerMinute = 1000 })
	const ok = `"redirect_uris":["https://app.example/cb"]`
	for body, want := range map[string]string{
		`not json`:                "invalid_client_metadata",
		`[]`:                      "invalid_client_metadata",
		`{` + ok + `} {}`:         "invalid_client_metadata",
		`{` + ok + `,` + ok + `}`: "invalid_client_metadata", // repeated member
		`{"redirect_uris":"https://app.example/cb"}`: "invalid_client_metadata", // not an array
		`{}`: "invalid_redirect_uri",
		`{"redirect_uris":["http://app.example/cb"]}`:                                                                                         "invalid_redirect_uri",
		`{"redirect_uris":["https://app.example/cb#f"]}`:                                                                                      "invalid_redirect_uri",
		`{"redirect_uris":["/cb"]}`:                                                                                                           "invalid_redirect_uri",
		`{"redirect_uris":["com.example.app:/cb"]}`:                                                                                           "invalid_redirect_uri", // web
		`{"redirect_uris":["myapp:/cb"],"application_type":"native"}`:                                                                         "invalid_redirect_uri", // not reverse domain
		`{"redirect_uris":["javascript:alert(1)"],"application_type":"native"}`:                                                               "invalid_redirect_uri",
		`{` + ok + `,"grant_types":["password"]}`:                                                                                             "invalid_client_metadata",
		`{` + ok + `,"grant_types":["implicit"]}`:                                                                                             "invalid_client_metadata",
		`{` + ok + `,"grant_types":["authorization_code","authorization_code"]}`:                                                              "invalid_client_metadata",
		`{` + ok + `,"response_types":["token"]}`:                                                                                             "invalid_client_metadata",
		`{` + ok + `,"grant_types":["refresh_token"]}`:                                                                                        "invalid_client_metadata", // code without its grant
		`{` + ok + `,"token_endpoint_auth_method":"tls_client_auth"}`:                                                                         "invalid_client_metadata",
		`{` + ok + `,"token_endpoint_auth_method":"private_key_jwt"}`:                                                                         "invalid_client_metadata", // no keys
		`{` + ok + `,"jwks_uri":"https://app.example/jwks"}`:                                                                                  "invalid_client_metadata", // keys without the method
		`{` + ok + `,"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"http://app.example/jwks"}`:                                    "invalid_client_metadata",
		`{` + ok + `,"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}}`:                          "invalid_client_metadata",
		`{` + ok + `,"token_endpoint_auth_method":"none","grant_types":["authorization_code","urn:ietf:params:oauth:grant-type:jwt-bearer"]}`: "invalid_client_metadata",
		`{` + ok + `,"application_type":"desktop"}`:                                                                                           "invalid_client_metadata",
		`{` + ok + `,"client_name":"` + strings.Repeat("n", 201) + `"}`:                                                                       "invalid_client_metadata",
		`{` + ok + `,"client_name":"a\u0007b"}`:                                                                                               "invalid_client_metadata",
		`{` + ok + `,"client_uri":"javascript:alert(1)"}`:                                                                                     "invalid_client_metadata",
		`{` + ok + `,"client_id":"https://evil.example/doc"}`:                                                                                 "invalid_client_metadata",
		`{` + ok + `,"client_secret":"chosen"}`:                                                                                               "invalid_client_metadata",
		`{` + ok + `,"client_secret_expires_at":0}`:                                                                                           "invalid_client_metadata",
		`{` + ok + `,"software_statement":"eyJ..."}`:                                                                                          "invalid_software_statement",
		`{"redirect_uris":["https://app.example/cb"],"padding":"` + strings.Repeat("x", 16<<10) + `"}`:                                        "invalid_client_metadata",
	} {
		status, m := e.register(t, body, "")
		if status != http.StatusBadRequest || m["error"] != want {
			t.Errorf("%.80s: %d %v, want 400 %s", body, status, m, want)
		}
	}
	// Only application/json.
	r := httptest.NewRequest(http.MethodPost, issuer+"/oauth2/register", strings.NewReader(`{`+ok+`}`))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	e.reg.Register(w, r)
	if w.Code != http.StatusBadRequest {
		t.Errorf("form body: %d", w.Code)
	}
}

func TestRegisterRefusalsAudited(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st storage.Storage) {
		e := newEnv(t, st, nil)
		if status, _ := e.register(t, `{"redirect_uris":["http://app.example/cb"]}`, ""); status != http.StatusBadRequest {
			t.Fatal(status)
		}
		recs, err := st.ListAudit(t.Context(), storage.AuditFilter{})
		if err != nil || len(recs) != 1 || recs[0].Operation != "OAuthRegisterClient" || recs[0].Outcome != "failure" || recs[0].ErrorType != "invalid_redirect_uri" {
			t.Fatalf("audit %+v %v", recs, err)
		}
	})
}

func TestRegisterRateLimit(t *testing.T) {
	e := newEnv(t, sqliteStore(t), func(o *clients.Options) { o.RegistrationsPerMinute = 2 })
	body := `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}`
	for i := range 2 {
		if status, m := e.register(t, body, "192.0.2.1:1000"); status != http.StatusCreated {
			t.Fatalf("registration %d: %d %v", i, status, m)
		}
	}
	if status, m := e.register(t, body, "192.0.2.1:1001"); status != http.StatusTooManyRequests || m["error"] == nil {
		t.Fatalf("third registration: %d %v", status, m)
	}
	if status, _ := e.register(t, body, "192.0.2.2:1000"); status != http.StatusCreated {
		t.Fatalf("another address: %d", status)
	}
	e.clock.Advance(30e9) // a token back every 30 s
	if status, _ := e.register(t, body, "192.0.2.1:1000"); status != http.StatusCreated {
		t.Fatalf("after 30 s: %d", status)
	}
}

func TestRegisterDisabledAndMetadata(t *testing.T) {
	e := newEnv(t, sqliteStore(t), func(o *clients.Options) { o.DynamicRegistration = false })
	w := httptest.NewRecorder()
	e.reg.Register(w, httptest.NewRequest(http.MethodPost, issuer+"/oauth2/register", strings.NewReader("{}")))
	if w.Code != http.StatusNotFound {
		t.Fatalf("disabled: %d", w.Code)
	}
	m := map[string]any{}
	e.reg.Metadata(m)
	if _, ok := m["registration_endpoint"]; ok || m["client_id_metadata_document_supported"] != true {
		t.Fatalf("metadata %v", m)
	}
	on := newEnv(t, sqliteStore(t), nil)
	m = map[string]any{}
	on.reg.Metadata(m)
	if m["registration_endpoint"] != issuer+"/oauth2/register" {
		t.Fatalf("metadata %v", m)
	}
}
