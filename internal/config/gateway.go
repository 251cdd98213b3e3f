package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// GatewayFile is the configuration of `behalf gateway` (docs and
// examples/gateway.yaml): where it listens, the behalf server whose data
// plane it calls, and its routes. Strict like File.
type GatewayFile struct {
	Listen string `yaml:"listen"`
	// Endpoint is the behalf server's URL; Region its signing region.
	Endpoint string `yaml:"endpoint"`
	Region   string `yaml:"region"`
	// Egress is the policy for the upstreams' addresses.
	Egress EgressFile         `yaml:"egress"`
	Routes []GatewayRouteFile `yaml:"routes"`
	// Telemetry is the standalone gateway's own, as the server's section
	// (audit export aside: the server keeps the gateway's records).
	Telemetry TelemetryFile `yaml:"telemetry"`
	// UserHashKeyFile holds the key that hashes user ids in the gateway's
	// log; empty, a key of the process's own.
	UserHashKeyFile string `yaml:"userHashKeyFile"`
}

// GatewayRouteFile is one route: requests under Path go to Upstream.
type GatewayRouteFile struct {
	Name     string `yaml:"name"`
	Path     string `yaml:"path"`
	Upstream string `yaml:"upstream"`
	// Kind is agent (the caller's identity is delivered as a workload
	// access token for Workload), tool (Credential is injected) or mcp (a
	// tool route for an MCP server over Streamable HTTP whose callers are
	// OAuth clients: see MCPRouteFile).
	Kind     string `yaml:"kind"`
	Workload string `yaml:"workload"`
	// ReturnURL is the agent's OAuth2CallbackUrl, and a tool's
	// resourceOauth2ReturnUrl for type user.
	ReturnURL string `yaml:"returnUrl"`
	// Callers are the workload identities allowed to call an agent route
	// with their own workload access token (identity chains; see the
	// gateway's documentation): the agent is then called for the caller's
	// user, and told the chain. Empty refuses every such call.
	Callers      []string              `yaml:"callers"`
	Credential   GatewayCredentialFile `yaml:"credential"`
	MaxBodyBytes int64                 `yaml:"maxBodyBytes"`
	// Timeout bounds a whole call, the streamed response included.
	Timeout time.Duration `yaml:"timeout"`
	// MCPRouteFile is an mcp route's protected resource.
	MCPRouteFile `yaml:",inline"`
}

// GatewayCredentialFile is what a tool route injects, after AgentCore
// Gateway's API_KEY and OAUTH credential providers.
type GatewayCredentialFile struct {
	Provider string `yaml:"provider"`
	// Type is apiKey, m2m (client credentials) or user (the caller's
	// user's own token, USER_FEDERATION).
	Type   string   `yaml:"type"`
	Scopes []string `yaml:"scopes"`
	// Header (default Authorization) carries Prefix + the credential,
	// unless QueryParameter names a query parameter instead.
	Header         string  `yaml:"header"`
	Prefix         *string `yaml:"prefix"`
	QueryParameter string  `yaml:"queryParameter"`
	// CacheTTL is how long the credential fetched for one caller's
	// workload access token is reused; 0 fetches it for every call.
	CacheTTL *time.Duration `yaml:"cacheTtl"`
}

// MountedGatewayFile is the server file's gateway section: the gateway
// served by `behalf serve`, signing as one of this server's principals.
type MountedGatewayFile struct {
	// ID is the gateway's identifier, in AgentCore's gateway id shape; a
	// consent portal whose source names it (or its ARN) serves its users.
	// Default DefaultGatewayID.
	ID     string `yaml:"id"`
	Listen string `yaml:"listen"`
	// Principal is the access key id of the runtime principal the gateway
	// acts as (behalf principal create --role runtime --workload ...
	// --operation GetWorkloadAccessTokenForJWT ...).
	Principal string             `yaml:"principal"`
	Routes    []GatewayRouteFile `yaml:"routes"`
}

// DefaultGatewayID is the mounted gateway's identifier when the file
// names none.
const DefaultGatewayID = "behalf-gateway001"

// gatewayIDPattern is AgentCore's gateway id.
var gatewayIDPattern = regexp.MustCompile(`^([0-9a-z]-?){1,100}-[0-9a-z]{10}$`)

// Gateway kinds and credential types.
const (
	KindAgent          = "agent"
	KindTool           = "tool"
	KindMCP            = "mcp"
	CredentialAPIKey   = "apiKey"
	CredentialM2M      = "m2m"
	CredentialUser     = "user"
	defaultMaxBodySize = 10 << 20
	// DefaultCredentialCacheTTL and MaxCredentialCacheTTL bound how long a
	// tool route reuses a credential: a revoked grant or a rotated key
	// takes up to that long to apply at the gateway.
	DefaultCredentialCacheTTL = time.Minute
	MaxCredentialCacheTTL     = 15 * time.Minute
	// gatewayServiceName is a standalone gateway's service.name.
	gatewayServiceName = "behalf-gateway"
)

// Gateway is a validated gateway configuration: routes with every default
// filled in.
type Gateway struct {
	// ID is the mounted gateway's identifier; empty standalone.
	ID     string
	Listen string
	// Principal is the mounted gateway's access key id; empty standalone,
	// where the gateway signs with the CLI's credentials.
	Principal string
	Endpoint  string
	Region    string
	Egress    egress.Policy
	Routes    []GatewayRouteFile
	// Telemetry and UserHashKeyFile are a standalone gateway's; a mounted
	// gateway shares the server's telemetry and user hash key.
	Telemetry       TelemetryConfig
	UserHashKeyFile string
}

// GatewayDefaults is the configuration before the file is applied.
func GatewayDefaults() GatewayFile {
	return GatewayFile{Listen: "127.0.0.1:8788", Endpoint: "http://127.0.0.1:8787", Region: "us-east-1"}
}

// LoadGateway reads a gateway configuration file over the defaults.
func LoadGateway(path string) (GatewayFile, error) {
	f := GatewayDefaults()
	raw, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the configuration file
	if err != nil {
		return GatewayFile{}, fmt.Errorf("config: %w", err)
	}
	if err := decodeStrict(raw, &f); err != nil {
		return GatewayFile{}, err
	}
	return f, nil
}

var routeNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Validate checks f and fills in the routes' defaults, or reports every
// problem with its path.
func (f GatewayFile) Validate() (Gateway, error) {
	var probs Problems
	host, _, err := net.SplitHostPort(f.Listen)
	if err != nil {
		probs.add("listen", "%v", err)
	}
	if _, ok := httpURL(f.Endpoint); !ok {
		probs.add("endpoint", "%q is not an http(s) URL", f.Endpoint)
	}
	if !regionPattern.MatchString(f.Region) {
		probs.add("region", "%q is not a region name", f.Region)
	}
	policy, egressProbs := f.Egress.policy(isLoopbackHost(host))
	probs = append(probs, egressProbs...)
	g := Gateway{Listen: f.Listen, Endpoint: strings.TrimSuffix(f.Endpoint, "/"), Region: f.Region, Egress: policy,
		Telemetry: f.validateTelemetry(&probs), UserHashKeyFile: f.UserHashKeyFile}
	if len(f.Routes) == 0 {
		probs.add("routes", "at least one route is required")
	}
	var names, paths []string
	for i, r := range f.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		if slices.Contains(names, r.Name) {
			probs.add(at+".name", "%q names another route too", r.Name)
		}
		if slices.Contains(paths, r.Path) {
			probs.add(at+".path", "%q is another route's path too", r.Path)
		}
		if r.Path == telemetry.MetricsPath && g.Telemetry.Prometheus && g.Telemetry.MetricsListen == "" {
			probs.add(at+".path", "%s is where the gateway's listener serves Prometheus metrics (telemetry.metrics.prometheus); give them a listen address of their own", telemetry.MetricsPath)
		}
		names, paths = append(names, r.Name), append(paths, r.Path)
		g.Routes = append(g.Routes, r.validate(at, &probs))
	}
	if len(probs) > 0 {
		return Gateway{}, probs
	}
	return g, nil
}

// validateTelemetry checks a standalone gateway's telemetry section: the
// server's, without the audit export (the server holds the gateway's
// records, and exports them with its own).
func (f GatewayFile) validateTelemetry(probs *Problems) TelemetryConfig {
	t := f.Telemetry.validate(probs)
	if f.Telemetry.Audit != (TelemetryFile{}).Audit {
		probs.add("telemetry.audit", "the behalf server keeps and exports the gateway's audit records (RecordGatewayCall); configure their export there")
	}
	if t.ServiceName == "" {
		t.ServiceName = gatewayServiceName
	}
	return t
}

func (r GatewayRouteFile) validate(at string, probs *Problems) GatewayRouteFile {
	if !routeNamePattern.MatchString(r.Name) {
		probs.add(at+".name", "%q must be 1-64 letters, digits, - or _", r.Name)
	}
	if !strings.HasPrefix(r.Path, "/") || strings.HasSuffix(r.Path, "/") || strings.ContainsAny(r.Path, "{}?#* %\\") || path.Clean(r.Path) != r.Path ||
		r.Path == "/runtimes" || strings.HasPrefix(r.Path, "/runtimes/") {
		probs.add(at+".path", "%q must be a clean path (no empty, . or .. segment), start with / and not end with /, hold none of {}?#*%%\\ nor spaces, and /runtimes is AgentCore's invocation path", r.Path)
	}
	if u, ok := httpURL(r.Upstream); !ok || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		probs.add(at+".upstream", "%q must be an http(s) URL without credentials, query or fragment", r.Upstream)
	}
	if _, ok := httpURL(r.ReturnURL); r.ReturnURL != "" && !ok {
		probs.add(at+".returnUrl", "%q is not an http(s) URL", r.ReturnURL)
	}
	r.MaxBodyBytes = orDefault(r.MaxBodyBytes, defaultMaxBodySize, at+".maxBodyBytes", probs)
	r.Timeout = orDefault(r.Timeout, 60*time.Second, at+".timeout", probs)
	return r.validateKind(at, probs)
}

// httpURL parses an absolute http or https URL.
func httpURL(s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	return u, err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func orDefault[T int64 | time.Duration](v, def T, at string, probs *Problems) T {
	if v < 0 {
		probs.add(at, "must be positive")
	}
	if v == 0 {
		return def
	}
	return v
}

func (r GatewayRouteFile) validateKind(at string, probs *Problems) GatewayRouteFile {
	switch r.Kind {
	case KindAgent:
		if r.Workload == "" {
			probs.add(at+".workload", "an agent route names the agent's workload identity")
		}
		if r.Credential.Provider != "" || r.Credential.Type != "" {
			probs.add(at+".credential", "only tool routes inject a credential")
		}
		validateCallers(r.Callers, at+".callers", probs)
	case KindTool:
		if r.Workload != "" || len(r.Callers) > 0 {
			probs.add(at, "workload and callers apply to agent routes only; a tool's caller presents its own workload access token")
		}
		r.Credential = r.Credential.validate(at+".credential", r.ReturnURL, probs)
	case KindMCP:
		if r.Workload == "" {
			probs.add(at+".workload", "an mcp route names the workload identity whose inbound authorizers accept its callers' tokens")
		}
		if len(r.Callers) > 0 {
			probs.add(at+".callers", "callers apply to agent routes only")
		}
		r.Credential = r.Credential.validate(at+".credential", r.ReturnURL, probs)
	default:
		probs.add(at+".kind", "%q must be agent, tool or mcp", r.Kind)
	}
	if r.Kind != KindMCP && !r.isZero() {
		probs.add(at, "resource, authorizationServers, scopes and toolScopes apply to mcp routes only")
	}
	if r.Kind == KindMCP {
		r.MCPRouteFile.validate(at, r.Path, probs)
	}
	return r
}

// maxCallers bounds a route's callers, as GetWorkloadAccessTokenForChain
// bounds its allowedCallers.
const maxCallers = 64

// workloadNamePattern is a workload identity's name
// (CreateWorkloadIdentity's name member).
var workloadNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// validateCallers checks an agent route's callers: workload identity
// names, each once, at most maxCallers.
func validateCallers(callers []string, at string, probs *Problems) {
	if len(callers) > maxCallers {
		probs.add(at, "names %d workloads; at most %d", len(callers), maxCallers)
	}
	for i, name := range callers {
		if !workloadNamePattern.MatchString(name) {
			probs.add(fmt.Sprintf("%s[%d]", at, i), "%q is not a workload identity name (3-255 letters, digits, _, . or -)", name)
		}
		if slices.Contains(callers[:i], name) {
			probs.add(fmt.Sprintf("%s[%d]", at, i), "%q is named twice", name)
		}
	}
}

func (c GatewayCredentialFile) validate(at, returnURL string, probs *Problems) GatewayCredentialFile {
	if c.Provider == "" {
		probs.add(at+".provider", "a tool route names a credential provider")
	}
	switch c.Type {
	case CredentialAPIKey:
		if len(c.Scopes) > 0 {
			probs.add(at+".scopes", "an API key has no scopes")
		}
	case CredentialM2M:
	case CredentialUser:
		if returnURL == "" {
			probs.add(at, "type user needs the route's returnUrl, where the user returns after consent")
		}
	default:
		probs.add(at+".type", "%q must be apiKey, m2m or user", c.Type)
	}
	if c.Header != "" && c.QueryParameter != "" {
		probs.add(at, "header and queryParameter are exclusive")
	}
	if c.Header == "" && c.QueryParameter == "" {
		c.Header = "Authorization"
	}
	if c.Prefix == nil {
		prefix := ""
		if c.Header == "Authorization" && c.Type != CredentialAPIKey {
			prefix = "Bearer "
		}
		c.Prefix = &prefix
	}
	c.CacheTTL = c.cacheTTL(at, probs)
	return c
}

// cacheTTL is the route's cacheTtl, DefaultCredentialCacheTTL unset.
func (c GatewayCredentialFile) cacheTTL(at string, probs *Problems) *time.Duration {
	ttl := DefaultCredentialCacheTTL
	if c.CacheTTL != nil {
		ttl = *c.CacheTTL
	}
	if ttl < 0 || ttl > MaxCredentialCacheTTL {
		probs.add(at+".cacheTtl", "must be between 0 (no cache) and %s", MaxCredentialCacheTTL)
	}
	return &ttl
}

// CacheFor is how long a tool route reuses a credential it fetched; 0
// for none (and for agent routes).
func (c GatewayCredentialFile) CacheFor() time.Duration {
	if c.CacheTTL == nil {
		return 0
	}
	return *c.CacheTTL
}

// validateGateway checks the mounted gateway, which shares the server's
// region and egress policy.
func (f File) validateGateway(c *Config, probs *Problems) {
	m := f.Gateway
	if m.Listen == "" && m.Principal == "" && len(m.Routes) == 0 {
		return
	}
	if m.Principal == "" {
		probs.add("gateway.principal", "names the access key id of the principal the gateway acts as")
	}
	if m.Listen == "" {
		m.Listen = GatewayDefaults().Listen
	}
	if m.ID == "" {
		m.ID = DefaultGatewayID
	}
	if !gatewayIDPattern.MatchString(m.ID) {
		probs.add("gateway.id", "%q is not a gateway id (AgentCore's shape: letters and digits in lower case with single hyphens, ending in a hyphen and 10 of them)", m.ID)
	}
	d := GatewayDefaults()
	g, err := GatewayFile{Listen: m.Listen, Endpoint: d.Endpoint, Region: d.Region, Routes: m.Routes}.Validate()
	var p Problems
	if errors.As(err, &p) {
		for _, problem := range p {
			*probs = append(*probs, "gateway."+problem)
		}
		return
	}
	g.ID, g.Principal, g.Region, g.Egress, g.Endpoint = m.ID, m.Principal, c.Region, c.Egress, "http://behalf.internal"
	c.Gateway = &g
}

// minUserHashKey is the shortest user hash key accepted: 256 bits, as the
// server's own.
const minUserHashKey = 32

// UserHashKey reads the key that hashes user ids in a standalone
// gateway's log from UserHashKeyFile (see ReadSecretFile); nil when none
// is configured.
func (g Gateway) UserHashKey() ([]byte, error) {
	key, err := ReadSecretFile(g.UserHashKeyFile)
	if err != nil {
		return nil, fmt.Errorf("config: userHashKeyFile: %w", err)
	}
	if key == "" {
		return nil, nil
	}
	if len(key) < minUserHashKey {
		return nil, fmt.Errorf("config: userHashKeyFile %s holds %d bytes; at least %d are required (e.g. openssl rand -hex 32)", g.UserHashKeyFile, len(key), minUserHashKey)
	}
	return []byte(key), nil
}
