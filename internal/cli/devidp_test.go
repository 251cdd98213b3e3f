package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/cli"
	"github.com/behalf-dev/behalf/internal/config"
)

func TestDevIDPRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--listen", "0.0.0.0:9400"},
		{"--listen", ":9400"},
		{"--listen", "[::]:9400"},
		{"--listen", "192.168.1.10:9400"},
		{"--listen", "127.0.0.1"},
		{"--client", "agent"},
		{"--client", ":secret"},
		{"--token-ttl", "0s"},
		{"--id-jag-ttl", "0s"},
		{"--id-jag", "agent"},
		{"--id-jag", "=https://as.example/"},
		{"--id-jag", "nobody=https://as.example/"},
		{"--id-jag", "agent=ftp://as.example/"},
		{"--id-jag", "agent=https://as.example/?a=b"},
		{"--claim", "alice"},
		{"--claim", "alice:groups"},
		{"--claim", ":groups=x"},
		{"--claim", "alice:=x"},
		{"--claim", "alice:groups="},
		{"--claim", "alice:groups=a,,b"},
		{"--claim", "alice:sub=bob"},
		{"--jwt-client", "agent-jwt"},
		{"--jwt-client", "=http://127.0.0.1:8080/identities/oauth2/jwks/p"},
		{"--jwt-client", "agent=http://127.0.0.1:8080/identities/oauth2/jwks/p"},
		{"--jwt-client", "agent-jwt=keys.json"},
	} {
		var out, errb bytes.Buffer
		code := cli.Execute(t.Context(), append([]string{"dev-idp"}, args...), strings.NewReader(""), &out, &errb)
		if code == 0 || out.Len() != 0 || !strings.HasPrefix(errb.String(), "behalf: ") {
			t.Errorf("dev-idp %v: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
}

// syncBuffer is a bytes.Buffer the command writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestDevIDPServes(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Execute(ctx, []string{"dev-idp", "--listen", "127.0.0.1:0", "--client", "app:app-secret", "--client", "ci:ci-secret", "--token-ttl", "60s", "--anonymous-token-exchange",
			"--id-jag", "ci=https://as.example/=ci-there", "--id-jag-ttl", "90s",
			"--claim", "alice:groups=behalf-admins", "--claim", "alice:groups=staff", "--claim", "alice:dept=eng", "--claim", "bob:groups=a,b",
			"--jwt-client", "app-jwt=http://127.0.0.1:8080/identities/oauth2/jwks/jwt-provider"},
			strings.NewReader(""), &out, &errb)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Stop with Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner; stdout %q, stderr %q", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	banner := out.String()
	m := regexp.MustCompile(`issuer:\s+(http://127\.0\.0\.1:\d+)\n`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("no issuer in the banner:\n%s", banner)
	}
	issuer := m[1]
	for _, want := range []string{
		"DEVELOPMENT-ONLY", issuer + "/.well-known/openid-configuration", "app, ci, app-jwt", "live 1m0s",
		"curl -s -u 'app:app-secret' -d grant_type=password", "allowedAudience: [app, ci, app-jwt]",
		"living 1m30s", "ci -> https://as.example/ (client_id there: ci-there)", "requested_token_type=urn:ietf:params:oauth:token-type:id-jag",
		"alice: dept = eng\n  alice: groups = [behalf-admins, staff]\n  bob: groups = [a, b]",
		"--client-id 'app' --client-secret - \\\n    --on-behalf-of TOKEN_EXCHANGE --actor-token M2M", "token exchange: also without client authentication",
		"app-jwt: keys at http://127.0.0.1:8080/identities/oauth2/jwks/jwt-provider",
		"behalf provider oauth2 create jwt-provider --vendor CustomOauth2 --discovery-url " + issuer + "/.well-known/openid-configuration",
		"--client-id 'app-jwt' --client-auth-method PRIVATE_KEY_JWT --private-key-arn KEY_ARN --signing-algorithm ES256",
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}

	// The printed configuration snippet is valid behalf configuration.
	snippet := banner[strings.Index(banner, "  inboundAuthorizers:"):]
	snippet = snippet[:strings.Index(snippet, "\n\n")+1]
	path := filepath.Join(t.TempDir(), "behalf.yaml")
	if err := os.WriteFile(path, []byte(snippet), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatalf("snippet:\n%s\n%v", snippet, err)
	}
	if _, err := f.Validate(); err != nil {
		t.Fatalf("snippet:\n%s\n%v", snippet, err)
	}

	// The password grant of the printed curl command.
	res, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %v %v", res, err)
	}
	res.Body.Close()
	req, _ := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}, "scope": {"openid"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != 200 || tok["id_token"] == nil || tok["expires_in"] != 60.0 {
		t.Fatalf("password grant: %d %v %v", res.StatusCode, tok, err)
	}
	res.Body.Close()
	// alice's --claim flags are in her ID token: repeated, an array.
	idToken, _ := tok["id_token"].(string)
	parts := strings.Split(idToken, ".")
	var claims struct {
		Groups []string `json:"groups"`
		Dept   string   `json:"dept"`
	}
	if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || json.Unmarshal(raw, &claims) != nil ||
		strings.Join(claims.Groups, ",") != "behalf-admins,staff" || claims.Dept != "eng" {
		t.Errorf("alice's ID token claims: %+v (%v)", claims, err)
	}
	jag := idJAG(t, issuer)

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dev-idp did not stop")
	}
	logs := errb.String()
	if !strings.Contains(logs, "grant_type=password") || !strings.Contains(logs, "sub=alice") {
		t.Errorf("log lacks the grant:\n%s", logs)
	}
	for _, secret := range []string{tok["access_token"].(string), tok["id_token"].(string), tok["refresh_token"].(string), "app-secret", jag} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a secret:\n%s", logs)
		}
	}
}

// idJAG runs the ID-JAG exchange the banner prints, as ci for
// https://as.example/, and returns the ID-JAG.
func idJAG(t *testing.T, issuer string) string {
	t.Helper()
	post := func(form url.Values) map[string]any {
		req, _ := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("ci", "ci-secret")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(res.Body).Decode(&m); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("%v: %d %v %v", form.Get("grant_type"), res.StatusCode, m, err)
		}
		return m
	}
	idToken, _ := post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}, "scope": {"openid"}})["id_token"].(string)
	m := post(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:id-jag"}, "subject_token": {idToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}, "audience": {"https://as.example/"}})
	jag, _ := m["access_token"].(string)
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(jag+"..", ".")[1])
	var c map[string]any
	if err != nil || json.Unmarshal(payload, &c) != nil || m["issued_token_type"] != "urn:ietf:params:oauth:token-type:id-jag" ||
		m["expires_in"] != 90.0 || c["aud"] != "https://as.example/" || c["client_id"] != "ci-there" || c["sub"] != "alice" {
		t.Fatalf("ID-JAG answer %v, claims %v", m, c)
	}
	return jag
}
