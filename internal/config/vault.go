package config

import (
	"os"
	"path/filepath"
)

// VaultPKCS11File keeps key-encryption keys in a PKCS#11 token: an HSM, a
// cloud HSM or a YubiHSM (docs/security.md). Its keys are named by RFC
// 7512 URIs, pkcs11:token=<tokenLabel>;object=<key label>.
type VaultPKCS11File struct {
	// Module is the absolute path of the token's PKCS#11 library.
	Module string `yaml:"module"`
	// TokenLabel selects the token by its label.
	TokenLabel string `yaml:"tokenLabel"`
	// PinFile holds the user PIN, readable by its owner only.
	PinFile string `yaml:"pinFile"`
}

// PKCS11 is the validated vault.pkcs11 section.
type PKCS11 struct {
	Module, TokenLabel, PinFile string
}

// PIN reads the user PIN from PinFile, anew at each call, so a changed
// PIN needs no restart.
func (p PKCS11) PIN() (string, error) {
	return ReadSecretFile(p.PinFile)
}

// validateVault checks the vault's key-management backends; c.PKCS11
// stays nil when no token is configured.
func (f File) validateVault(c *Config, probs *Problems) {
	p := f.Vault.PKCS11
	if p == nil {
		return
	}
	if fi, err := os.Stat(p.Module); !filepath.IsAbs(p.Module) || err != nil || !fi.Mode().IsRegular() {
		probs.add("vault.pkcs11.module", "must be the absolute path of the token's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so")
	}
	// CK_TOKEN_INFO's label is 32 bytes, padded with spaces.
	if p.TokenLabel == "" || len(p.TokenLabel) > 32 {
		probs.add("vault.pkcs11.tokenLabel", "must be the token's label (1 to 32 bytes)")
	}
	if p.PinFile == "" {
		probs.add("vault.pkcs11.pinFile", "must name the file holding the token's user PIN")
	} else if _, err := ReadSecretFile(p.PinFile); err != nil {
		probs.add("vault.pkcs11.pinFile", "%v", err)
	}
	c.PKCS11 = &PKCS11{Module: p.Module, TokenLabel: p.TokenLabel, PinFile: p.PinFile}
}
