package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The vault.pkcs11 section: absent by default; its module, token label
// and PIN file checked, every problem with its path; the PIN read from a
// file readable by its owner only, anew at each call, and never quoted in
// a problem.
func TestVaultPKCS11(t *testing.T) {
	if c, err := Defaults().Validate(); err != nil || c.PKCS11 != nil {
		t.Fatalf("default: %+v %v", c.PKCS11, err)
	}
	dir := t.TempDir()
	module := filepath.Join(dir, "libtoken.so")
	pinFile := filepath.Join(dir, "pin")
	for path, content := range map[string]string{module: "", pinFile: "s3cret-pin\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := write(t, "vault:\n  pkcs11:\n    module: "+module+"\n    tokenLabel: behalf\n    pinFile: "+pinFile+"\n")
	f, err := Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if p := c.PKCS11; p == nil || *p != (PKCS11{Module: module, TokenLabel: "behalf", PinFile: pinFile}) {
		t.Fatalf("pkcs11: %+v", c.PKCS11)
	}
	if pin, err := c.PKCS11.PIN(); pin != "s3cret-pin" || err != nil {
		t.Fatalf("PIN() = %q, %v", pin, err)
	}
	if err := os.WriteFile(pinFile, []byte("0000"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pin, err := c.PKCS11.PIN(); pin != "0000" || err != nil {
		t.Fatalf("PIN() after a change = %q, %v", pin, err)
	}

	if _, err := Load(write(t, "vault:\n  pkcs11:\n    pin: 1234\n"), noEnv); err == nil || !strings.Contains(err.Error(), "vault.pkcs11.pin (line 3): unknown key") {
		t.Errorf("unknown key: %v", err)
	}
	exposed := filepath.Join(dir, "exposed-pin")
	if err := os.WriteFile(exposed, []byte("s3cret-pin"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(exposed, 0o644); err != nil { //nolint:gosec // G302: a PIN file others can read, to be refused
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		edit func(*VaultPKCS11File)
		at   string
	}{
		"no module":       {func(p *VaultPKCS11File) { p.Module = "" }, "vault.pkcs11.module:"},
		"relative module": {func(p *VaultPKCS11File) { p.Module = "libtoken.so" }, "vault.pkcs11.module:"},
		"missing module":  {func(p *VaultPKCS11File) { p.Module = filepath.Join(dir, "none.so") }, "vault.pkcs11.module:"},
		"no token":        {func(p *VaultPKCS11File) { p.TokenLabel = "" }, "vault.pkcs11.tokenLabel:"},
		"long token":      {func(p *VaultPKCS11File) { p.TokenLabel = strings.Repeat("t", 33) }, "vault.pkcs11.tokenLabel:"},
		"no PIN file":     {func(p *VaultPKCS11File) { p.PinFile = "" }, "vault.pkcs11.pinFile:"},
		"missing PIN":     {func(p *VaultPKCS11File) { p.PinFile = filepath.Join(dir, "none") }, "vault.pkcs11.pinFile:"},
		"exposed PIN":     {func(p *VaultPKCS11File) { p.PinFile = exposed }, "readable by its owner only"},
	} {
		f := Defaults()
		f.Vault.PKCS11 = &VaultPKCS11File{Module: module, TokenLabel: "behalf", PinFile: pinFile}
		tt.edit(f.Vault.PKCS11)
		_, err := f.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.at) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v, want a problem at %s without the PIN", name, err, tt.at)
		}
	}
}

// AWS KMS is off unless configured; its region is required and its
// endpoint is https, or http on loopback (local-kms).
func TestAWSKMS(t *testing.T) {
	f := Defaults()
	if c, err := f.Validate(); err != nil || c.AWSKMS != nil {
		t.Fatalf("default: %+v, %v", c.AWSKMS, err)
	}
	env := map[string]string{"BEHALF_VAULT_AWS_KMS_REGION": "eu-west-2", "BEHALF_VAULT_AWS_KMS_ENDPOINT": "http://127.0.0.1:4599/"}
	f, err := Load(write(t, "vault:\n  awsKms:\n    region: us-east-1\n"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Validate()
	if err != nil || c.AWSKMS == nil || *c.AWSKMS != (AWSKMS{Region: "eu-west-2", Endpoint: "http://127.0.0.1:4599"}) {
		t.Fatalf("from the environment: %+v, %v", c.AWSKMS, err)
	}
	for _, tc := range []struct {
		kms     AWSKMSFile
		problem string
	}{
		{AWSKMSFile{}, "vault.awsKms.region"},
		{AWSKMSFile{Region: "mars"}, "vault.awsKms.region"},
		{AWSKMSFile{Region: "us-east-1", Endpoint: "http://kms.internal:4599"}, "must be https unless it is on loopback"},
		{AWSKMSFile{Region: "us-east-1", Endpoint: "https://user:pw@kms.internal"}, "vault.awsKms.endpoint"},
		{AWSKMSFile{Region: "us-east-1", Endpoint: "kms.internal"}, "vault.awsKms.endpoint"},
	} {
		f := Defaults()
		f.Vault.AWSKMS = &tc.kms
		if _, err := f.Validate(); err == nil || !strings.Contains(err.Error(), tc.problem) {
			t.Errorf("%+v: %v, want %q", tc.kms, err, tc.problem)
		}
	}
	f = Defaults()
	f.Vault.AWSKMS = &AWSKMSFile{Region: "us-east-1", Endpoint: "https://kms.us-east-1.amazonaws.com"}
	if _, err := f.Validate(); err != nil {
		t.Fatal(err)
	}
}
