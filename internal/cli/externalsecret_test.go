package cli_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// The provider commands keep a secret outside behalf with
// --client-secret-id / --api-key-secret-id and their JSON key, and show
// where it is kept.
func TestProviderExternalSecretFlags(t *testing.T) {
	dir := t.TempDir()
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{Edit: func(f *config.File) {
		f.ExternalSecrets.Files = &config.SecretFilesFile{Directories: []string{dir}}
	}})
	r := run{t: t, url: s.URL, auth: []string{"--access-key-id", behalftest.AdminKeyID, "--secret-access-key", behalftest.AdminSecret}}
	ghPath, keyPath := filepath.Join(dir, "github.json"), filepath.Join(dir, "weather.json")

	out := r.ok("", cmd("provider oauth2 create github --vendor GithubOauth2 --client-id Iv1.abc --client-secret-id "+ghPath+" --client-secret-json-key clientSecret")...)
	if !strings.Contains(out, "EXTERNAL: "+ghPath+", JSON key clientSecret") {
		t.Fatalf("oauth2 create:\n%s", out)
	}
	var p struct {
		ClientSecret struct {
			Source  string `json:"secretSource"`
			ARN     string `json:"secretArn"`
			JSONKey string `json:"secretJsonKey"`
		} `json:"clientSecret"`
	}
	r.json(&p, cmd("provider oauth2 get github")...)
	if p.ClientSecret.Source != "EXTERNAL" || p.ClientSecret.ARN != ghPath || p.ClientSecret.JSONKey != "clientSecret" {
		t.Fatalf("oauth2 get: %+v", p)
	}
	r.ok("new-secret\n", cmd("provider oauth2 update github --vendor GithubOauth2 --client-id Iv1.abc --client-secret -")...)
	p.ClientSecret.JSONKey = ""
	r.json(&p, cmd("provider oauth2 get github")...)
	if p.ClientSecret.Source != "MANAGED" || p.ClientSecret.JSONKey != "" {
		t.Fatalf("after the switch to MANAGED: %+v", p)
	}

	out = r.ok("", cmd("provider apikey create weather --api-key-secret-id file:"+keyPath+" --api-key-secret-json-key apiKey")...)
	if !strings.Contains(out, "EXTERNAL: file:"+keyPath+", JSON key apiKey") {
		t.Fatalf("apikey create:\n%s", out)
	}
	r.ok("sk-now-managed\n", cmd("provider apikey update weather --api-key -")...)
	if out := r.ok("", cmd("provider apikey get weather")...); !regexp.MustCompile(`API key +MANAGED`).MatchString(out) {
		t.Fatalf("apikey get:\n%s", out)
	}
	r.ok("", cmd("provider apikey update weather --api-key-secret-id "+keyPath+" --api-key-secret-json-key apiKey")...)

	for args, want := range map[string]string{
		"provider oauth2 create x --vendor GithubOauth2 --client-id a --client-secret s --client-secret-id /x --client-secret-json-key k": "exclude each other",
		"provider oauth2 create x --vendor GithubOauth2 --client-id a --client-secret-id /x":                                              "needs --client-secret-json-key",
		"provider oauth2 create x --vendor GithubOauth2 --client-id a --client-secret-json-key k":                                         "needs --client-secret-id",
		"provider apikey create x": "--api-key-secret-id is required",
		"provider apikey create x --api-key-secret-id /etc/passwd --api-key-secret-json-key k": "is outside the directories",
	} {
		if _, errs, code := r.do("", cmd(args)...); code == 0 || !strings.Contains(errs, want) {
			t.Errorf("%s: %d %q, want %q", args, code, errs, want)
		}
	}
}
