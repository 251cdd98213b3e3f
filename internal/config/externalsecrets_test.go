package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The externalSecrets section: off by default, each source as configured,
// and every problem with its path.
func TestExternalSecrets(t *testing.T) {
	c, err := Defaults().Validate()
	if err != nil || c.ExternalSecrets.SecretsManager != nil || c.ExternalSecrets.Directories != nil || c.ExternalSecrets.CacheTTL != DefaultExternalSecretCacheTTL {
		t.Fatalf("default: %+v %v", c.ExternalSecrets, err)
	}
	path := filepath.Join(t.TempDir(), "behalf.yaml")
	yaml := "externalSecrets:\n  cacheTtl: 30s\n  awsSecretsManager:\n    region: eu-west-1\n    endpoint: https://secretsmanager.eu-west-1.amazonaws.com\n" +
		"  files:\n    directories: [/var/run/secrets/behalf/, /etc/behalf/secrets]\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	c, err = f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	es := c.ExternalSecrets
	if es.CacheTTL != 30*time.Second || es.SecretsManager == nil || es.SecretsManager.Region != "eu-west-1" ||
		!slices.Equal(es.Directories, []string{"/var/run/secrets/behalf", "/etc/behalf/secrets"}) {
		t.Fatalf("loaded: %+v", es)
	}
	if err := os.WriteFile(path, []byte("externalSecrets:\n  awsSecretManager:\n    region: eu-west-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "externalSecrets.awsSecretManager") {
		t.Fatalf("unknown key: %v", err)
	}

	dataDir := t.TempDir()
	for name, tt := range map[string]struct {
		e  ExternalSecretsFile
		at string
	}{
		"short ttl":          {ExternalSecretsFile{CacheTTL: time.Millisecond}, "externalSecrets.cacheTtl:"},
		"long ttl":           {ExternalSecretsFile{CacheTTL: 2 * time.Hour}, "externalSecrets.cacheTtl:"},
		"no region":          {ExternalSecretsFile{AWSSecretsManager: &AWSSecretsManagerFile{}}, "externalSecrets.awsSecretsManager.region:"},
		"plain http":         {ExternalSecretsFile{AWSSecretsManager: &AWSSecretsManagerFile{Region: "us-east-1", Endpoint: "http://sm.example.com"}}, "externalSecrets.awsSecretsManager.endpoint:"},
		"endpoint query":     {ExternalSecretsFile{AWSSecretsManager: &AWSSecretsManagerFile{Region: "us-east-1", Endpoint: "https://sm.example.com/?x=1"}}, "externalSecrets.awsSecretsManager.endpoint:"},
		"no directories":     {ExternalSecretsFile{Files: &SecretFilesFile{}}, "externalSecrets.files.directories:"},
		"relative directory": {ExternalSecretsFile{Files: &SecretFilesFile{Directories: []string{"secrets"}}}, "externalSecrets.files.directories[0]:"},
		"the root":           {ExternalSecretsFile{Files: &SecretFilesFile{Directories: []string{"/tmp/ok", "/"}}}, "externalSecrets.files.directories[1]: holds behalf's data directory"},
		"the data directory": {ExternalSecretsFile{Files: &SecretFilesFile{Directories: []string{dataDir + "/"}}}, "holds behalf's data directory"},
		"the keyring's":      {ExternalSecretsFile{Files: &SecretFilesFile{Directories: []string{"/etc/behalf"}}}, "holds behalf's keyring"},
	} {
		f := Defaults()
		f.DataDir, f.Vault.Keyring, f.ExternalSecrets = dataDir, "/etc/behalf/keyring.json", tt.e
		if _, err := f.Validate(); err == nil || !strings.Contains(err.Error(), tt.at) {
			t.Errorf("%s: %v, want a problem at %s", name, err, tt.at)
		}
	}
	// A directory inside the data directory is fine when it holds none of
	// behalf's own files; http only on loopback.
	f = Defaults()
	f.DataDir = dataDir
	f.ExternalSecrets = ExternalSecretsFile{Files: &SecretFilesFile{Directories: []string{filepath.Join(dataDir, "secrets")}},
		AWSSecretsManager: &AWSSecretsManagerFile{Region: "us-east-1", Endpoint: "http://127.0.0.1:4566"}}
	if _, err := f.Validate(); err != nil {
		t.Errorf("a secrets directory inside the data directory: %v", err)
	}
}
