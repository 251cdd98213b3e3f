package config

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
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

// AWSKMSFile configures AWS KMS as a key-management backend of the vault
// (docs/configuration.md). Credentials come from the default AWS
// credential chain.
type AWSKMSFile struct {
	// Region is the region of the KMS keys.
	Region string `yaml:"region"`
	// Endpoint replaces the region's KMS endpoint: a VPC endpoint, or
	// local-kms in development.
	Endpoint string `yaml:"endpoint"`
}

// AWSKMS is the validated vault.awsKms section.
type AWSKMS struct {
	Region, Endpoint string
}

// awsKMS returns the AWS KMS section, adding an empty one if there is none.
func (v *VaultFile) awsKMS() *AWSKMSFile {
	if v.AWSKMS == nil {
		v.AWSKMS = &AWSKMSFile{}
	}
	return v.AWSKMS
}

// validateVault checks the vault's key-management backends; c.PKCS11 and
// c.AWSKMS stay nil when they are not configured.
func (f File) validateVault(c *Config, probs *Problems) {
	c.AWSKMS = f.Vault.AWSKMS.validate(probs)
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

// validate checks the AWS KMS section; nil when there is none. Its
// endpoint may be plain http only on loopback (local-kms): KMS answers
// Decrypt and GenerateDataKey with data keys.
func (k *AWSKMSFile) validate(probs *Problems) *AWSKMS {
	if k == nil {
		return nil
	}
	if !regionPattern.MatchString(k.Region) {
		probs.add("vault.awsKms.region", "must be the AWS region of the KMS keys, such as us-east-1")
	}
	if e := k.Endpoint; e != "" {
		u, err := url.Parse(e)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
			probs.add("vault.awsKms.endpoint", "must be an http or https URL without credentials, query or fragment, e.g. https://kms.us-east-1.amazonaws.com")
		case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
			probs.add("vault.awsKms.endpoint", "must be https unless it is on loopback: KMS sends data keys in its answers")
		}
	}
	return &AWSKMS{Region: k.Region, Endpoint: strings.TrimSuffix(k.Endpoint, "/")}
}
