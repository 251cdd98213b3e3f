package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// ExternalSecretsFile configures where credential providers whose secret
// is EXTERNAL (clientSecretSource, apiKeySecretSource) have it read from
// (docs/configuration.md#external-secrets). Each source is off unless
// configured.
type ExternalSecretsFile struct {
	// AWSSecretsManager reads secret ids that are Secrets Manager ARNs or
	// names, with credentials from the default AWS chain.
	AWSSecretsManager *AWSSecretsManagerFile `yaml:"awsSecretsManager"`
	// Files reads secret ids that are absolute paths (or "file:" and an
	// absolute path) inside its directories, e.g. mounted Kubernetes
	// secrets.
	Files *SecretFilesFile `yaml:"files"`
	// CacheTTL is how long a secret read is used before it is read again;
	// default 1m.
	CacheTTL time.Duration `yaml:"cacheTtl"`
}

// AWSSecretsManagerFile is the Secrets Manager source.
type AWSSecretsManagerFile struct {
	Region string `yaml:"region"`
	// Endpoint replaces the regional endpoint, e.g. a VPC endpoint.
	Endpoint string `yaml:"endpoint"`
}

// SecretFilesFile is the file source.
type SecretFilesFile struct {
	Directories []string `yaml:"directories"`
}

// ExternalSecrets is the validated external secrets configuration.
type ExternalSecrets struct {
	// SecretsManager is nil when Secrets Manager is not configured.
	SecretsManager *AWSSecretsManagerFile
	// Directories are absolute and clean; none turns files off.
	Directories []string
	CacheTTL    time.Duration
}

// DefaultExternalSecretCacheTTL is how long an external secret is used
// before it is read again, by default.
const DefaultExternalSecretCacheTTL = time.Minute

// validateExternalSecrets checks the externalSecrets section. It runs
// after the storage and keyring paths are known: a secret directory must
// not hold them.
func (f File) validateExternalSecrets(c *Config, probs *Problems) {
	e := f.ExternalSecrets
	c.ExternalSecrets.CacheTTL = e.CacheTTL
	if e.CacheTTL == 0 {
		c.ExternalSecrets.CacheTTL = DefaultExternalSecretCacheTTL
	}
	if ttl := c.ExternalSecrets.CacheTTL; ttl < time.Second || ttl > time.Hour {
		probs.add("externalSecrets.cacheTtl", "must be between 1s and 1h")
	}
	if sm := e.AWSSecretsManager; sm != nil {
		if !regionPattern.MatchString(sm.Region) {
			probs.add("externalSecrets.awsSecretsManager.region", "must be the AWS region of the secrets, such as us-east-1")
		}
		if sm.Endpoint != "" && !secureEndpoint(sm.Endpoint) {
			probs.add("externalSecrets.awsSecretsManager.endpoint", "must be an https URL without query or fragment (http only on a loopback address)")
		}
		c.ExternalSecrets.SecretsManager = &AWSSecretsManagerFile{Region: sm.Region, Endpoint: sm.Endpoint}
	}
	if fs := e.Files; fs != nil {
		if len(fs.Directories) == 0 {
			probs.add("externalSecrets.files.directories", "must list at least one directory")
		}
		for i, d := range fs.Directories {
			path := fmt.Sprintf("externalSecrets.files.directories[%d]", i)
			if !filepath.IsAbs(d) {
				probs.add(path, "must be an absolute path")
				continue
			}
			d = filepath.Clean(d)
			if held := f.heldIn(c, d); held != "" {
				probs.add(path, "holds behalf's %s: name a directory that holds only secrets", held)
				continue
			}
			c.ExternalSecrets.Directories = append(c.ExternalSecrets.Directories, d)
		}
	}
}

// heldIn names the first of behalf's own files that directory dir is or
// contains, so that no provider's secret id can name them.
func (f File) heldIn(c *Config, dir string) string {
	own := []struct{ what, path string }{{"data directory", f.DataDir}, {"keyring", c.Keyring}, {"TLS key", c.TLSKeyFile}}
	if !strings.Contains(c.Storage, "://") {
		own = append(own, struct{ what, path string }{"database", c.Storage})
	}
	for _, o := range own {
		if o.path == "" {
			continue
		}
		abs, err := filepath.Abs(o.path)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(dir, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return o.what
		}
	}
	return ""
}

// secureEndpoint reports whether u is an https URL, or http on loopback.
func secureEndpoint(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.RawQuery != "" || p.Fragment != "" || p.User != nil {
		return false
	}
	if p.Scheme == "https" {
		return true
	}
	ip, err := netip.ParseAddr(p.Hostname())
	return p.Scheme == "http" && (strings.EqualFold(p.Hostname(), "localhost") || err == nil && ip.IsLoopback())
}
