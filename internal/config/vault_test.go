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
