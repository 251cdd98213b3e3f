// Package config loads behalf's server configuration. Precedence, lowest
// first: built-in defaults, the YAML file (--config), BEHALF_* environment
// variables, then command-line flags. The file is strict: unknown keys are
// errors, and every problem is reported at once with its path. Validation
// changes no process state.
package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/inbound"
)

// File is the YAML configuration file. See docs/configuration.md and
// behalf.example.yaml for every key.
type File struct {
	Listen    string    `yaml:"listen"`
	DataDir   string    `yaml:"dataDir"`
	PublicURL string    `yaml:"publicUrl"`
	Region    string    `yaml:"region"`
	AccountID string    `yaml:"accountId"`
	Storage   string    `yaml:"storage"`
	Log       LogFile   `yaml:"log"`
	Vault     VaultFile `yaml:"vault"`
	// InboundAuthorizers validate users' JWTs, with AgentCore's
	// customJWTAuthorizer fields.
	InboundAuthorizers  []InboundAuthorizerFile `yaml:"inboundAuthorizers"`
	WorkloadAccessToken WorkloadAccessTokenFile `yaml:"workloadAccessToken"`
	Outbound            OutboundFile            `yaml:"outbound"`
	UserFederation      UserFederationFile      `yaml:"userFederation"`
	Egress              EgressFile              `yaml:"egress"`
	TLS                 TLSFile                 `yaml:"tls"`
	Limits              LimitsFile              `yaml:"limits"`
	// StoragePool sizes the PostgreSQL connection pool; storage itself
	// is the URL.
	StoragePool StoragePoolFile `yaml:"storagePool"`
	Audit       AuditFile       `yaml:"audit"`
	Telemetry   TelemetryFile   `yaml:"telemetry"`
	// Gateway serves `behalf gateway` from this process, on its own
	// listener, calling this server's data plane in memory.
	Gateway MountedGatewayFile `yaml:"gateway"`
	// AuthorizationServer makes behalf an OAuth 2.1 authorization server
	// for MCP clients (docs/authorization-server.md).
	AuthorizationServer *AuthorizationServerFile `yaml:"authorizationServer"`
	// Portals configures the consent portals' pages.
	Portals PortalsFile `yaml:"portals"`
	// Console serves the admin console (docs/console.md); off by default.
	Console ConsoleFile `yaml:"console"`
	// ExternalSecrets reads credential providers' EXTERNAL secrets.
	ExternalSecrets ExternalSecretsFile `yaml:"externalSecrets"`
	// Development turns on development-only features: the completion page
	// at /dev/complete. Never in production.
	Development bool `yaml:"development"`
	// DevelopmentAllowNonLoopback lets development mode listen on an
	// address other than loopback.
	DevelopmentAllowNonLoopback bool `yaml:"developmentAllowNonLoopback"`
}

// EgressFile is the policy for behalf's outbound calls (see
// docs/security.md). Link-local and cloud metadata addresses are always
// refused.
type EgressFile struct {
	// AllowLoopback allows loopback addresses; unset means allowed only
	// when behalf itself listens on loopback (development).
	AllowLoopback *bool `yaml:"allowLoopback"`
	// AllowPrivate allows private (RFC 1918, RFC 4193, RFC 6598) addresses.
	AllowPrivate bool `yaml:"allowPrivate"`
	// Allow lists CIDRs and host names whose loopback or private addresses
	// are allowed.
	Allow []string `yaml:"allow"`
}

// TLSFile makes behalf serve HTTPS itself.
type TLSFile struct {
	// CertFile is a PEM certificate chain, leaf first; reloaded on change.
	CertFile string `yaml:"certFile"`
	// KeyFile is the PEM private key of CertFile's leaf.
	KeyFile string `yaml:"keyFile"`
}

// UserFederationFile configures three-legged OAuth.
type UserFederationFile struct {
	// SessionTTL is how long a user has to consent and be bound.
	SessionTTL time.Duration `yaml:"sessionTtl"`
	// ConnectionMaxIdle removes users' connections unused this long; 0
	// keeps them until revoked.
	ConnectionMaxIdle time.Duration `yaml:"connectionMaxIdle"`
	// NewSessionsPerUserPerMinute and NewSessionsPerPrincipalPerMinute
	// limit the consent sessions started for one user of a workload and by
	// one caller; beyond them GetResourceOauth2Token answers
	// ThrottlingException.
	NewSessionsPerUserPerMinute      int `yaml:"newSessionsPerUserPerMinute"`
	NewSessionsPerPrincipalPerMinute int `yaml:"newSessionsPerPrincipalPerMinute"`
}

// StoragePoolFile configures the PostgreSQL connection pool.
type StoragePoolFile struct {
	// MaxOpenConns is how many connections one process keeps open at
	// most, and keeps open while idle.
	MaxOpenConns int `yaml:"maxOpenConns"`
}

// LimitsFile configures rate limits.
type LimitsFile struct {
	// RequestsPerSecond is each principal's sustained rate of API calls,
	// and Burst how many it may make at once; above them calls get
	// ThrottlingException. 0 turns the limit off.
	RequestsPerSecond float64 `yaml:"requestsPerSecond"`
	Burst             int     `yaml:"burst"`
	// TrustedProxies are the reverse proxies (addresses or CIDR ranges)
	// whose X-Forwarded-For names the client, for the limits kept per
	// client address; none by default.
	TrustedProxies []string `yaml:"trustedProxies"`
}

// AuditFile configures the audit trail.
type AuditFile struct {
	// Retention deletes records older than this, keeping the chain
	// verifiable from a sealed checkpoint (docs/audit.md); 0 keeps every
	// record.
	Retention time.Duration `yaml:"retention"`
}

// InboundAuthorizerFile is one customJWTAuthorizer.
type InboundAuthorizerFile struct {
	Name            string            `yaml:"name"`
	DiscoveryURL    string            `yaml:"discoveryUrl"`
	AllowedAudience []string          `yaml:"allowedAudience"`
	AllowedClients  []string          `yaml:"allowedClients"`
	AllowedScopes   []string          `yaml:"allowedScopes"`
	CustomClaims    []CustomClaimFile `yaml:"customClaims"`
}

// CustomClaimFile is AgentCore's CustomClaimValidationType.
type CustomClaimFile struct {
	InboundTokenClaimName      string `yaml:"inboundTokenClaimName"`
	InboundTokenClaimValueType string `yaml:"inboundTokenClaimValueType"`
	AuthorizingClaimMatchValue struct {
		ClaimMatchOperator string `yaml:"claimMatchOperator"`
		ClaimMatchValue    struct {
			MatchValueString     string   `yaml:"matchValueString"`
			MatchValueStringList []string `yaml:"matchValueStringList"`
		} `yaml:"claimMatchValue"`
	} `yaml:"authorizingClaimMatchValue"`
}

// WorkloadAccessTokenFile configures workload access tokens.
type WorkloadAccessTokenFile struct {
	// TTL is a token's lifetime; never past the user JWT's own expiry.
	TTL time.Duration `yaml:"ttl"`
	// KeyRotation is how often a new token-encryption key takes over.
	KeyRotation time.Duration `yaml:"keyRotation"`
}

// OutboundFile configures calls to credential providers.
type OutboundFile struct {
	// Timeout bounds each call to a provider's token endpoint.
	Timeout time.Duration `yaml:"timeout"`
}

// LogFile configures logging.
type LogFile struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// VaultFile configures the key-encryption keys.
type VaultFile struct {
	// Keyring is the local keyring file; default <dataDir>/keyring.json.
	Keyring string `yaml:"keyring"`
	// PKCS11 keeps key-encryption keys in a PKCS#11 token; nil for none.
	PKCS11 *VaultPKCS11File `yaml:"pkcs11"`
	// AWSKMS lets SetTokenVaultCMK name AWS KMS keys; nil leaves it off.
	AWSKMS *AWSKMSFile `yaml:"awsKms"`
}

// Config is the validated runtime configuration.
type Config struct {
	Listen    string
	DataDir   string
	PublicURL string
	Region    string
	AccountID string
	// Storage is a PostgreSQL URL or a SQLite file path.
	Storage   string
	LogLevel  string
	LogFormat string
	Keyring   string
	// AWSKMS is nil when AWS KMS is not configured.
	AWSKMS *AWSKMS
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout    time.Duration
	InboundAuthorizers []inbound.Config
	WATTTL             time.Duration
	WATKeyRotation     time.Duration
	OutboundTimeout    time.Duration
	SessionTTL         time.Duration
	ConnectionMaxIdle  time.Duration
	// NewSessionsPerUser and NewSessionsPerPrincipal are per minute.
	NewSessionsPerUser      int
	NewSessionsPerPrincipal int
	AuditRetention          time.Duration
	Development             bool
	// Egress is the policy for outbound calls.
	Egress egress.Policy
	// Gateway is the mounted gateway; nil when none is configured.
	Gateway *Gateway
	// TLSCertFile and TLSKeyFile, when set, make behalf serve HTTPS.
	TLSCertFile, TLSKeyFile string
	// RequestsPerSecond and RequestBurst limit each principal's calls; a
	// zero rate means no limit.
	RequestsPerSecond float64
	RequestBurst      int
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client (package clientip).
	TrustedProxies []netip.Prefix
	// StorageMaxOpenConns sizes the PostgreSQL pool.
	StorageMaxOpenConns int
	Telemetry           TelemetryConfig
	// AuthorizationServer is nil when none is configured.
	AuthorizationServer *AuthorizationServer
	Portals             Portals
	// Console is nil when the admin console is off.
	Console *Console
	// PKCS11 is nil when no PKCS#11 token is configured.
	PKCS11          *PKCS11
	ExternalSecrets ExternalSecrets
}

// Defaults returns the zero-configuration settings.
func Defaults() File {
	return File{
		Listen:              "127.0.0.1:8787",
		DataDir:             "./behalf-data",
		Region:              "us-east-1",
		AccountID:           "000000000000",
		Log:                 LogFile{Level: "info", Format: "text"},
		WorkloadAccessToken: WorkloadAccessTokenFile{TTL: 15 * time.Minute, KeyRotation: 24 * time.Hour},
		Outbound:            OutboundFile{Timeout: 10 * time.Second},
		UserFederation: UserFederationFile{SessionTTL: 10 * time.Minute, ConnectionMaxIdle: 90 * 24 * time.Hour,
			NewSessionsPerUserPerMinute: 10, NewSessionsPerPrincipalPerMinute: 120},
		StoragePool: StoragePoolFile{MaxOpenConns: 20},
		Limits:      LimitsFile{RequestsPerSecond: 25000, Burst: 50000},
	}
}

// Env lists the environment variables that override file settings.
var Env = []struct {
	Name string
	Set  func(*File, string)
}{
	{"BEHALF_LISTEN", func(f *File, v string) { f.Listen = v }},
	{"BEHALF_DATA_DIR", func(f *File, v string) { f.DataDir = v }},
	{"BEHALF_PUBLIC_URL", func(f *File, v string) { f.PublicURL = v }},
	{"BEHALF_REGION", func(f *File, v string) { f.Region = v }},
	{"BEHALF_ACCOUNT_ID", func(f *File, v string) { f.AccountID = v }},
	{"BEHALF_STORAGE", func(f *File, v string) { f.Storage = v }},
	{"BEHALF_LOG_LEVEL", func(f *File, v string) { f.Log.Level = v }},
	{"BEHALF_LOG_FORMAT", func(f *File, v string) { f.Log.Format = v }},
	{"BEHALF_VAULT_KEYRING", func(f *File, v string) { f.Vault.Keyring = v }},
	{"BEHALF_VAULT_AWS_KMS_REGION", func(f *File, v string) { f.Vault.awsKMS().Region = v }},
	{"BEHALF_VAULT_AWS_KMS_ENDPOINT", func(f *File, v string) { f.Vault.awsKMS().Endpoint = v }},
	{"BEHALF_DEVELOPMENT", func(f *File, v string) { f.Development = isTrue(v) }},
	{"BEHALF_DEVELOPMENT_ALLOW_NON_LOOPBACK", func(f *File, v string) { f.DevelopmentAllowNonLoopback = isTrue(v) }},
	{"BEHALF_EGRESS_ALLOW_LOOPBACK", func(f *File, v string) { b := isTrue(v); f.Egress.AllowLoopback = &b }},
	{"BEHALF_EGRESS_ALLOW_PRIVATE", func(f *File, v string) { f.Egress.AllowPrivate = isTrue(v) }},
	{"BEHALF_EGRESS_ALLOW", func(f *File, v string) { f.Egress.Allow = strings.Split(v, ",") }},
	{"BEHALF_TLS_CERT_FILE", func(f *File, v string) { f.TLS.CertFile = v }},
	{"BEHALF_TLS_KEY_FILE", func(f *File, v string) { f.TLS.KeyFile = v }},
}

func isTrue(v string) bool { return v == "true" || v == "1" }

// isLoopbackHost reports whether host (of a listen address) names only
// loopback interfaces.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Problems lists every configuration error.
type Problems []string

func (p Problems) Error() string {
	return "invalid configuration:\n  - " + strings.Join(p, "\n  - ")
}

// Load reads the file at path (none when empty) over the defaults, then
// applies the environment from getenv.
func Load(path string, getenv func(string) string) (File, error) {
	f := Defaults()
	if path != "" {
		raw, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the configuration file
		if err != nil {
			return File{}, fmt.Errorf("config: %w", err)
		}
		if err := decodeStrict(raw, &f); err != nil {
			return File{}, err
		}
	}
	for _, e := range Env {
		if v := getenv(e.Name); v != "" {
			e.Set(&f, v)
		}
	}
	return f, nil
}

// decodeStrict decodes YAML into f, reporting every unknown key with its
// path and line rather than only the first.
func decodeStrict[T any](raw []byte, f *T) error {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return Problems{fmt.Sprintf("not valid YAML: %v", err)}
	}
	if len(root.Content) == 0 {
		return nil // an empty file
	}
	var probs Problems
	checkNode(root.Content[0], reflect.TypeFor[T](), "", &probs)
	if len(probs) > 0 {
		return probs
	}
	if err := root.Content[0].Decode(f); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return Problems(te.Errors)
		}
		return Problems{err.Error()}
	}
	return nil
}

// checkNode reports, with paths and lines, every key of n that the type t
// does not have, and every alias, before n is decoded into t.
func checkNode(n *yaml.Node, t reflect.Type, path string, probs *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		// An empty section, e.g. a key whose entries are all commented out.
	case n.Kind == yaml.AliasNode:
		*probs = append(*probs, fmt.Sprintf("%s (line %d): YAML aliases are not allowed", orRoot(path), n.Line))
	case t.Kind() == reflect.Struct && t != reflect.TypeFor[time.Duration]():
		checkMapping(n, t, path, probs)
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			checkNode(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), probs)
		}
	}
}

// checkMapping checks a mapping node against the struct type t: every key
// must be one of its fields' YAML names, and every value must fit that
// field.
func checkMapping(n *yaml.Node, t reflect.Type, path string, probs *Problems) {
	if n.Kind != yaml.MappingNode {
		*probs = append(*probs, fmt.Sprintf("%s (line %d): expected a mapping", orRoot(path), n.Line))
		return
	}
	fields := map[string]reflect.Type{}
	var names []string
	yamlFields(t, fields, &names)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		ft, ok := fields[key.Value]
		if !ok {
			hint := ""
			for _, name := range names {
				if strings.EqualFold(name, key.Value) {
					hint = fmt.Sprintf(" (did you mean %q?)", name)
				}
			}
			*probs = append(*probs, fmt.Sprintf("%s (line %d): unknown key%s", join(path, key.Value), key.Line, hint))
			continue
		}
		checkNode(val, ft, join(path, key.Value), probs)
	}
}

// yamlFields adds the YAML names and types of t's fields, and of the
// fields of structs it inlines (`yaml:",inline"`), to fields and names.
func yamlFields(t reflect.Type, fields map[string]reflect.Type, names *[]string) {
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			yamlFields(f.Type, fields, names)
			continue
		}
		fields[name] = f.Type
		*names = append(*names, name)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

var (
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	hostPattern    = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
)

// Validate checks f and returns the runtime configuration, or every
// problem found. Each step below fills in its part of the configuration
// and adds its problems, path-qualified, in the order of the file.
func (f File) Validate() (Config, error) {
	var probs Problems
	c := Config{
		Listen: f.Listen, DataDir: f.DataDir, PublicURL: strings.TrimSuffix(f.PublicURL, "/"), Region: f.Region,
		AccountID: f.AccountID, Storage: f.Storage, LogLevel: f.Log.Level, LogFormat: f.Log.Format,
		Keyring: f.Vault.Keyring, ShutdownTimeout: 20 * time.Second,
		TLSCertFile: f.TLS.CertFile, TLSKeyFile: f.TLS.KeyFile,
	}
	f.validateListener(&c, &probs)
	f.validateIdentity(&c, &probs)
	f.validateStorageAndLog(&c, &probs)
	f.validateVault(&c, &probs)
	c.InboundAuthorizers = f.inboundConfigs()
	probs = append(probs, inbound.ValidateConfigs(c.InboundAuthorizers)...)
	f.validateTokens(&c, &probs)
	f.validateUserFederation(&c, &probs)
	f.validateLimits(&c, &probs)
	f.validateTelemetry(&c, &probs)
	f.validateGateway(&c, &probs)
	f.validateAuthorizationServer(&c, &probs)
	f.checkGatewayAgainstAuthorizationServer(&c, &probs)
	f.validatePortals(&c, &probs)
	f.validateConsole(&c, &probs)
	f.validateExternalSecrets(&c, &probs)
	if len(probs) > 0 {
		return Config{}, probs
	}
	return c, nil
}

// add records one problem at path.
func (p *Problems) add(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

// validateListener checks where behalf listens and how (TLS, development
// mode), derives the public URL when none is set, and sets the outbound
// policy, whose defaults depend on whether behalf listens on loopback only.
func (f File) validateListener(c *Config, probs *Problems) {
	host, port, err := net.SplitHostPort(f.Listen)
	if err != nil || port == "" {
		probs.add("listen", "must be host:port, e.g. 127.0.0.1:8787")
	}
	if f.DataDir == "" {
		probs.add("dataDir", "must not be empty")
	}
	listensOnLoopback := err == nil && isLoopbackHost(host)
	if msg := f.TLS.check(); msg != "" {
		probs.add("tls", "%s", msg)
	}
	if c.PublicURL == "" && err == nil {
		c.PublicURL = defaultPublicURL(host, port, c.TLSCertFile != "")
	}
	if f.Development && err == nil && !listensOnLoopback && !f.DevelopmentAllowNonLoopback {
		probs.add("development", "is on, but listen %q is not a loopback address, so /dev/complete would be reachable from the network: "+
			"listen on 127.0.0.1, or set developmentAllowNonLoopback: true to force it", f.Listen)
	}
	var egressProbs Problems
	c.Egress, egressProbs = f.Egress.policy(listensOnLoopback)
	*probs = append(*probs, egressProbs...)
}

// defaultPublicURL is the URL of the listen address host:port, on
// localhost when it listens on every interface.
func defaultPublicURL(host, port string, tls bool) string {
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// validateIdentity checks what behalf calls itself: its public URL and the
// AWS region and account id that appear in its ARNs.
func (f File) validateIdentity(c *Config, probs *Problems) {
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		probs.add("publicUrl", "must be an absolute http(s) URL without query or fragment, e.g. https://behalf.example.com")
	}
	if !regionPattern.MatchString(f.Region) {
		probs.add("region", "must be an AWS-style region name such as us-east-1")
	}
	if !accountPattern.MatchString(f.AccountID) {
		probs.add("accountId", "must be 12 digits")
	}
}

// validateStorageAndLog checks the storage and the log settings, placing
// the SQLite file and the keyring in the data directory by default.
func (f File) validateStorageAndLog(c *Config, probs *Problems) {
	if c.Storage == "" {
		c.Storage = filepath.Join(f.DataDir, "behalf.db")
	} else if strings.Contains(c.Storage, "://") && !strings.HasPrefix(c.Storage, "postgres://") &&
		!strings.HasPrefix(c.Storage, "postgresql://") && !strings.HasPrefix(c.Storage, "sqlite://") {
		probs.add("storage", "must be a postgres:// URL or a SQLite file path")
	}
	if c.Keyring == "" {
		c.Keyring = filepath.Join(f.DataDir, "keyring.json")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, f.Log.Level) {
		probs.add("log.level", "must be debug, info, warn or error")
	}
	if !slices.Contains([]string{"text", "json"}, f.Log.Format) {
		probs.add("log.format", "must be text or json")
	}
}

// inboundConfigs converts the inbound authorizers from the file's shape,
// which follows AgentCore's CustomJWTAuthorizerConfiguration, to the
// inbound package's.
func (f File) inboundConfigs() []inbound.Config {
	configs := make([]inbound.Config, len(f.InboundAuthorizers))
	for i, a := range f.InboundAuthorizers {
		ic := inbound.Config{Name: a.Name, DiscoveryURL: a.DiscoveryURL, AllowedAudience: a.AllowedAudience,
			AllowedClients: a.AllowedClients, AllowedScopes: a.AllowedScopes}
		for _, cc := range a.CustomClaims {
			m := cc.AuthorizingClaimMatchValue
			ic.CustomClaims = append(ic.CustomClaims, inbound.CustomClaim{Name: cc.InboundTokenClaimName, ValueType: cc.InboundTokenClaimValueType,
				Operator: m.ClaimMatchOperator, Value: m.ClaimMatchValue.MatchValueString, Values: m.ClaimMatchValue.MatchValueStringList})
		}
		configs[i] = ic
	}
	return configs
}

// validateTokens checks the workload access tokens' lifetime and key
// rotation, and the timeout of calls to providers.
func (f File) validateTokens(c *Config, probs *Problems) {
	c.WATTTL, c.WATKeyRotation, c.OutboundTimeout = f.WorkloadAccessToken.TTL, f.WorkloadAccessToken.KeyRotation, f.Outbound.Timeout
	if c.WATTTL < time.Minute || c.WATTTL > 12*time.Hour {
		probs.add("workloadAccessToken.ttl", "must be between 1m and 12h")
	}
	if c.WATKeyRotation < time.Hour || c.WATKeyRotation > 90*24*time.Hour {
		probs.add("workloadAccessToken.keyRotation", "must be between 1h and 2160h (90 days)")
	}
	// Under the server's 60s write timeout, so a caller waiting on the
	// provider gets an answer.
	if c.OutboundTimeout < time.Second || c.OutboundTimeout > 45*time.Second {
		probs.add("outbound.timeout", "must be between 1s and 45s")
	}
}

// validateUserFederation checks the USER_FEDERATION sessions' lifetime,
// how long an idle connection is kept, and the limits on new consent
// sessions.
func (f File) validateUserFederation(c *Config, probs *Problems) {
	c.SessionTTL, c.ConnectionMaxIdle, c.Development = f.UserFederation.SessionTTL, f.UserFederation.ConnectionMaxIdle, f.Development
	if c.SessionTTL < 10*time.Second || c.SessionTTL > time.Hour {
		probs.add("userFederation.sessionTtl", "must be between 10s and 1h")
	}
	if c.ConnectionMaxIdle != 0 && c.ConnectionMaxIdle < 24*time.Hour {
		probs.add("userFederation.connectionMaxIdle", "must be 0 (never) or at least 24h")
	}
	c.NewSessionsPerUser, c.NewSessionsPerPrincipal = f.UserFederation.NewSessionsPerUserPerMinute, f.UserFederation.NewSessionsPerPrincipalPerMinute
	if c.NewSessionsPerUser < 1 || c.NewSessionsPerUser > 10000 {
		probs.add("userFederation.newSessionsPerUserPerMinute", "must be between 1 and 10000")
	}
	if c.NewSessionsPerPrincipal < 1 || c.NewSessionsPerPrincipal > 100000 {
		probs.add("userFederation.newSessionsPerPrincipalPerMinute", "must be between 1 and 100000")
	}
}

// validateLimits checks the storage pool's size, the per-principal
// request rate limit and how long audit records are kept.
func (f File) validateLimits(c *Config, probs *Problems) {
	c.StorageMaxOpenConns = f.StoragePool.MaxOpenConns
	if c.StorageMaxOpenConns < 1 || c.StorageMaxOpenConns > 1000 {
		probs.add("storagePool.maxOpenConns", "must be between 1 and 1000")
	}
	c.RequestsPerSecond, c.RequestBurst = f.Limits.RequestsPerSecond, f.Limits.Burst
	switch {
	case c.RequestsPerSecond < 0 || math.IsNaN(c.RequestsPerSecond) || math.IsInf(c.RequestsPerSecond, 0):
		probs.add("limits.requestsPerSecond", "must be 0 (no limit) or positive")
	case c.RequestsPerSecond > 0 && c.RequestBurst < 1:
		probs.add("limits.burst", "must be at least 1 when limits.requestsPerSecond is set")
	}
	for i, p := range f.Limits.TrustedProxies {
		at := fmt.Sprintf("limits.trustedProxies[%d]", i)
		prefix, err := netip.ParsePrefix(p)
		if addr, addrErr := netip.ParseAddr(p); addrErr == nil {
			prefix, err = addr.Unmap().Prefix(addr.Unmap().BitLen())
		}
		switch {
		case err != nil:
			probs.add(at, "must be an IP address or a CIDR range, such as 10.0.0.0/8")
		case prefix.Bits() == 0:
			probs.add(at, "must not be every address: any client could then name its own address")
		default:
			c.TrustedProxies = append(c.TrustedProxies, prefix.Masked())
		}
	}
	if c.AuditRetention = f.Audit.Retention; c.AuditRetention != 0 && c.AuditRetention < 24*time.Hour {
		probs.add("audit.retention", "must be 0 (keep every record) or at least 24h")
	}
}

// check loads the pair, so a bad one is found before serving.
func (t TLSFile) check() string {
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		return "certFile and keyFile must be set together"
	case t.CertFile != "":
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			return fmt.Sprintf("cannot load the certificate and key: %v", err)
		}
	}
	return ""
}

// policy is the outbound policy; loopback is allowed by default when
// behalf itself listens only on loopback, as in development.
func (e EgressFile) policy(listensOnLoopback bool) (egress.Policy, Problems) {
	p := egress.Policy{AllowLoopback: listensOnLoopback, AllowPrivate: e.AllowPrivate}
	if e.AllowLoopback != nil {
		p.AllowLoopback = *e.AllowLoopback
	}
	var probs Problems
	for i, a := range e.Allow {
		a = strings.TrimSpace(a)
		if prefix, err := netip.ParsePrefix(a); err == nil {
			p.AllowCIDRs = append(p.AllowCIDRs, prefix.Masked())
		} else if ip, err := netip.ParseAddr(a); err == nil {
			p.AllowCIDRs = append(p.AllowCIDRs, netip.PrefixFrom(ip.WithZone(""), ip.BitLen()))
		} else if hostPattern.MatchString(a) {
			p.AllowHosts = append(p.AllowHosts, strings.ToLower(a))
		} else {
			probs = append(probs, fmt.Sprintf("egress.allow[%d]: %q is not a CIDR, an IP address or a host name", i, a))
		}
	}
	return p, probs
}

// AdminCredentialsPath is where serve writes a generated admin key pair.
func (c Config) AdminCredentialsPath() string {
	return filepath.Join(c.DataDir, "admin-credentials")
}
