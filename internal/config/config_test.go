package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "behalf.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func noEnv(string) string { return "" }

func TestDefaultsAreValid(t *testing.T) {
	f, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8787" || c.PublicURL != "http://127.0.0.1:8787" || c.Storage != filepath.Join("behalf-data", "behalf.db") ||
		c.Keyring != filepath.Join("behalf-data", "keyring.json") || c.Region != "us-east-1" {
		t.Fatalf("%+v", c)
	}
}

func TestPrecedence(t *testing.T) {
	path := write(t, "listen: 127.0.0.1:9000\nregion: eu-west-1\nlog:\n  level: debug\n")
	env := map[string]string{"BEHALF_REGION": "ap-south-1", "BEHALF_STORAGE": "postgres://db/behalf"}
	f, err := Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || c.Region != "ap-south-1" || c.Storage != "postgres://db/behalf" || c.LogLevel != "debug" {
		t.Fatalf("%+v", c)
	}
}

func TestUnknownKeysAreReportedTogether(t *testing.T) {
	path := write(t, `
listen: 127.0.0.1:8787
listne: typo
Region: us-east-1
log:
  level: info
  colour: true
vault:
  keyring: /tmp/k
  kms: aws
`)
	_, err := Load(path, noEnv)
	var p Problems
	if !errors.As(err, &p) {
		t.Fatalf("got %v", err)
	}
	want := []string{
		"listne (line 3): unknown key",
		`Region (line 4): unknown key (did you mean "region"?)`,
		"log.colour (line 7): unknown key",
		"vault.kms (line 10): unknown key",
	}
	if len(p) != len(want) {
		t.Fatalf("problems:\n%v", err)
	}
	for i := range want {
		if p[i] != want[i] {
			t.Errorf("problem %d = %q, want %q", i, p[i], want[i])
		}
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	f := Defaults()
	f.Listen, f.Region, f.AccountID, f.PublicURL, f.Storage = "nonsense", "mars", "12", "ftp://x", "mysql://db"
	f.Log.Level, f.Log.Format = "loud", "xml"
	_, err := f.Validate()
	var p Problems
	if !errors.As(err, &p) {
		t.Fatalf("got %v", err)
	}
	for _, key := range []string{"listen:", "region:", "accountId:", "publicUrl:", "storage:", "log.level:", "log.format:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("no problem reported for %s in:\n%v", key, err)
		}
	}
}

func TestBadYAML(t *testing.T) {
	for _, content := range []string{
		"listen: [",
		"listen: a\nlisten: b\n",
		"log: text\n",
		"a: &x 1\nlisten: *x\n",
		"listen:\n  nested: true\n",
	} {
		if _, err := Load(write(t, content), noEnv); err == nil {
			t.Errorf("accepted %q", content)
		}
	}
	if _, err := Load(write(t, "vault:\n  # keyring: x\n"), noEnv); err != nil {
		t.Errorf("an empty section is valid: %v", err)
	}
	if _, err := Load(write(t, ""), noEnv); err != nil {
		t.Errorf("an empty file is valid: %v", err)
	}
}

func TestPublicURLFromWildcardListen(t *testing.T) {
	f := Defaults()
	f.Listen = "0.0.0.0:8787"
	c, err := f.Validate()
	if err != nil || c.PublicURL != "http://localhost:8787" {
		t.Fatalf("%q %v", c.PublicURL, err)
	}
	f.PublicURL = "https://behalf.example.com/"
	c, _ = f.Validate()
	if c.PublicURL != "https://behalf.example.com" {
		t.Fatalf("trailing slash kept: %q", c.PublicURL)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte("listen: 127.0.0.1:8787\nlog:\n  level: info\n"))
	f.Add([]byte("vault: {keyring: x}\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Fuzz(func(_ *testing.T, raw []byte) {
		var file File
		if err := decodeStrict(raw, &file); err == nil {
			_, _ = file.Validate()
		}
	})
}

// The annotated example in the repository root stays valid.
func TestExampleFileIsValid(t *testing.T) {
	f, err := Load(filepath.Join("..", "..", "behalf.example.yaml"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Validate(); err != nil {
		t.Fatal(err)
	}
}

// The walk-through configuration in examples/ stays valid.
func TestDevExampleIsValid(t *testing.T) {
	f, err := Load(filepath.Join("..", "..", "examples", "dev.yaml"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Validate()
	if err != nil || !c.Development || len(c.InboundAuthorizers) != 1 {
		t.Fatalf("%+v %v", c, err)
	}
}

// The README's observability walk-through configuration stays valid.
func TestDevObservabilityExampleIsValid(t *testing.T) {
	f, err := Load(filepath.Join("..", "..", "examples", "dev-observability.yaml"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Validate()
	if err != nil || !c.Development || len(c.InboundAuthorizers) != 1 {
		t.Fatalf("%+v %v", c, err)
	}
	tel := c.Telemetry
	if !tel.Traces || tel.SampleRatio != 1 || !tel.Prometheus || !tel.LogsOTLP || tel.MetricsListen != "127.0.0.1:9464" || tel.OTLP.Endpoint != "http://127.0.0.1:4318" {
		t.Errorf("telemetry %+v", tel)
	}
}

// The README's gateway walk-through configuration stays valid.
func TestDevGatewayExampleIsValid(t *testing.T) {
	f, err := Load(filepath.Join("..", "..", "examples", "dev-gateway.yaml"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Validate()
	if err != nil || c.Gateway == nil || len(c.Gateway.Routes) != 3 || !c.Telemetry.Traces {
		t.Fatalf("%+v %v", c, err)
	}
	if k := c.Console; k == nil || k.Provider != "dev-idp" || k.ClaimName != "groups" || k.ClaimValue != "behalf-admins" || k.Principal != "BEHALFCONSOLEADMIN01" {
		t.Errorf("console %+v", c.Console)
	}
}

func TestDevelopmentRefusesNonLoopbackListen(t *testing.T) {
	for _, tt := range []struct {
		listen string
		force  bool
		ok     bool
	}{
		{"127.0.0.1:8787", false, true},
		{"[::1]:8787", false, true},
		{"localhost:8787", false, true},
		{"0.0.0.0:8787", false, false},
		{":8787", false, false},
		{"192.0.2.10:8787", false, false},
		{"0.0.0.0:8787", true, true},
	} {
		f := Defaults()
		f.Listen, f.Development, f.DevelopmentAllowNonLoopback = tt.listen, true, tt.force
		_, err := f.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("listen %s, forced %v: err = %v, want ok = %v", tt.listen, tt.force, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "developmentAllowNonLoopback") {
			t.Errorf("the error does not say how to force it: %v", err)
		}
	}
	f, err := Load("", func(k string) string {
		return map[string]string{"BEHALF_LISTEN": "0.0.0.0:8787", "BEHALF_DEVELOPMENT": "true", "BEHALF_DEVELOPMENT_ALLOW_NON_LOOPBACK": "true"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Validate(); err != nil {
		t.Errorf("forced through the environment: %v", err)
	}
}

func TestEgressPolicy(t *testing.T) {
	path := write(t, "listen: 0.0.0.0:8787\negress:\n  allowPrivate: true\n  allow: [10.1.0.0/16, 192.0.2.7, idp.corp.example]\n")
	f, err := Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	p := c.Egress
	if p.AllowLoopback || !p.AllowPrivate || len(p.AllowCIDRs) != 2 || p.AllowCIDRs[1].String() != "192.0.2.7/32" ||
		len(p.AllowHosts) != 1 || p.AllowHosts[0] != "idp.corp.example" {
		t.Errorf("policy = %+v", p)
	}

	// Listening on loopback allows loopback, unless turned off explicitly.
	f = Defaults()
	if c, _ := f.Validate(); !c.Egress.AllowLoopback || c.Egress.AllowPrivate {
		t.Errorf("default policy = %+v", c.Egress)
	}
	off := false
	f.Egress.AllowLoopback = &off
	if c, _ := f.Validate(); c.Egress.AllowLoopback {
		t.Errorf("allowLoopback: false is ignored")
	}

	f = Defaults()
	f.Egress.Allow = []string{"not a host/", "300.0.0.0/8"}
	_, err = f.Validate()
	if err == nil || !strings.Contains(err.Error(), "egress.allow[0]") || !strings.Contains(err.Error(), "egress.allow[1]") {
		t.Errorf("bad allow entries: %v", err)
	}
}

func TestLimits(t *testing.T) {
	c, err := Defaults().Validate()
	if err != nil || c.RequestsPerSecond != 25000 || c.RequestBurst != 50000 {
		t.Fatalf("default limits %v/%d, %v", c.RequestsPerSecond, c.RequestBurst, err)
	}
	f, err := Load(write(t, "limits:\n  requestsPerSecond: 0\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := f.Validate(); err != nil || c.RequestsPerSecond != 0 {
		t.Fatalf("0 must turn the limit off: %v/%d, %v", c.RequestsPerSecond, c.RequestBurst, err)
	}
	for _, bad := range []LimitsFile{{RequestsPerSecond: -1, Burst: 1}, {RequestsPerSecond: 10, Burst: 0}} {
		f := Defaults()
		f.Limits = bad
		if _, err := f.Validate(); err == nil || !strings.Contains(err.Error(), "limits.") {
			t.Errorf("%+v: got %v", bad, err)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	f, err := Load(write(t, "limits:\n  trustedProxies: [10.0.0.0/8, 192.0.2.7, \"2001:db8::/32\", \"::ffff:198.51.100.1\", 172.16.5.9/12]\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("172.16.0.0/12")}
	if !slices.Equal(c.TrustedProxies, want) {
		t.Errorf("trusted proxies %v, want %v", c.TrustedProxies, want)
	}
	for _, bad := range []string{"0.0.0.0/0", "::/0", "proxy.example.com", "10.0.0.0/33", ""} {
		f := Defaults()
		f.Limits.TrustedProxies = []string{"10.0.0.1", bad}
		if _, err := f.Validate(); err == nil || !strings.Contains(err.Error(), "limits.trustedProxies[1]") {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}

func TestStoragePool(t *testing.T) {
	f, err := Load(write(t, "storagePool:\n  maxOpenConns: 50\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := f.Validate(); err != nil || c.StorageMaxOpenConns != 50 {
		t.Fatalf("%d, %v", c.StorageMaxOpenConns, err)
	}
	f.StoragePool.MaxOpenConns = 0
	if _, err := f.Validate(); err == nil || !strings.Contains(err.Error(), "storagePool.maxOpenConns") {
		t.Fatalf("got %v", err)
	}
}

func TestAuditRetention(t *testing.T) {
	f := Defaults()
	if c, err := f.Validate(); err != nil || c.AuditRetention != 0 {
		t.Fatalf("default retention: %v, %v; want off", c.AuditRetention, err)
	}
	f.Audit.Retention = time.Hour
	if _, err := f.Validate(); err == nil || !strings.Contains(err.Error(), "audit.retention:") {
		t.Fatalf("retention of an hour: %v", err)
	}
	f.Audit.Retention = 400 * 24 * time.Hour
	if c, err := f.Validate(); err != nil || c.AuditRetention != f.Audit.Retention {
		t.Fatalf("retention of 400 days: %v, %v", c.AuditRetention, err)
	}
}

// The example file names every key of the configuration, set or commented
// out, so that it stays the annotated reference it says it is.
func TestExampleFileNamesEveryKey(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "behalf.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeFor[File]()) {
		if !regexp.MustCompile(`(?m)^[#\s-]*` + regexp.QuoteMeta(key) + `:`).Match(raw) {
			t.Errorf("behalf.example.yaml does not name %s", key)
		}
	}
}

// yamlKeys lists the yaml keys of a struct type and of the structs it
// holds, directly or in slices.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			keys = append(keys, yamlKeys(f.Type)...)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, name)
		ft := f.Type
		for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]() {
			keys = append(keys, yamlKeys(ft)...)
		}
	}
	return keys
}

// The server's gateway section shares the standalone file's checks, with
// paths under gateway, and needs the principal it acts as.
func TestMountedGateway(t *testing.T) {
	f := Defaults()
	f.Gateway.Routes = []GatewayRouteFile{{Name: "a", Path: "/a", Upstream: "http://127.0.0.1:9", Kind: "agent"}}
	_, err := f.Validate()
	for _, want := range []string{"gateway.principal:", "gateway.routes[0].workload:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in %v", want, err)
		}
	}
	f.Gateway.Principal, f.Gateway.Routes[0].Workload = "BHLFGATEWAY", "w"
	c, err := f.Validate()
	if err != nil || c.Gateway == nil || c.Gateway.Listen != "127.0.0.1:8788" || c.Gateway.Region != c.Region || c.Gateway.Routes[0].Timeout != time.Minute {
		t.Fatalf("%+v %v", c.Gateway, err)
	}
	if c, _ := Defaults().Validate(); c.Gateway != nil {
		t.Error("a gateway without a gateway section")
	}
}

// An agent route's callers are workload identity names, each once, at
// most 64; a tool route has none.
func TestGatewayCallers(t *testing.T) {
	route := func(kind string, callers ...string) GatewayFile {
		f := GatewayDefaults()
		r := GatewayRouteFile{Name: "r", Path: "/r", Upstream: "http://127.0.0.1:9", Kind: kind, Callers: callers}
		if kind == KindAgent {
			r.Workload = "callee"
		} else {
			r.Credential = GatewayCredentialFile{Provider: "p", Type: CredentialAPIKey}
		}
		f.Routes = []GatewayRouteFile{r}
		return f
	}
	g, err := route(KindAgent, "front-agent", "agent.v2_x").Validate()
	if err != nil || !slices.Equal(g.Routes[0].Callers, []string{"front-agent", "agent.v2_x"}) {
		t.Fatalf("valid callers: %v %v", g.Routes, err)
	}
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprintf("agent-%d", i)
	}
	for name, f := range map[string]GatewayFile{
		"not a name":  route(KindAgent, "front agent"),
		"too short":   route(KindAgent, "ab"),
		"named twice": route(KindAgent, "front-agent", "front-agent"),
		"too many":    route(KindAgent, many...),
		"on a tool":   route(KindTool, "front-agent"),
	} {
		if _, err := f.Validate(); err == nil || !strings.Contains(err.Error(), "routes[0]") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// examples/gateway.yaml names every key of a standalone gateway's file,
// and is valid.
func TestGatewayExampleNamesEveryKey(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "gateway.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeFor[GatewayFile]()) {
		if !regexp.MustCompile(`(?m)^[#\s-]*` + regexp.QuoteMeta(key) + `:`).Match(raw) {
			t.Errorf("examples/gateway.yaml does not name %s", key)
		}
	}
	f, err := LoadGateway(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Validate(); err != nil {
		t.Error(err)
	}
}

// A tool route's credential cache: 60s by default, 0 turns it off, and
// no more than 15 minutes nor less than nothing.
func TestGatewayCredentialCacheTTL(t *testing.T) {
	route := func(ttl *time.Duration) GatewayFile {
		f := GatewayDefaults()
		f.Routes = []GatewayRouteFile{{Name: "t", Path: "/t", Upstream: "http://127.0.0.1:9", Kind: "tool",
			Credential: GatewayCredentialFile{Provider: "p", Type: "apiKey", CacheTTL: ttl}}}
		return f
	}
	for _, tt := range []struct {
		ttl  *time.Duration
		want time.Duration
	}{{nil, time.Minute}, {new(time.Duration(0)), 0}, {new(15 * time.Minute), 15 * time.Minute}} {
		g, err := route(tt.ttl).Validate()
		if err != nil || g.Routes[0].Credential.CacheFor() != tt.want {
			t.Errorf("cacheTtl %v: %v %v, want %v", tt.ttl, g.Routes, err, tt.want)
		}
	}
	for _, bad := range []time.Duration{-time.Second, 16 * time.Minute} {
		if _, err := route(&bad).Validate(); err == nil || !strings.Contains(err.Error(), "routes[0].credential.cacheTtl:") {
			t.Errorf("cacheTtl %v: %v", bad, err)
		}
	}
}

// A route's path is one the gateway's mux matches as written: clean, and
// without percent-encoding or backslashes, which the mux and the upstream
// would read otherwise.
func TestGatewayRoutePaths(t *testing.T) {
	route := func(path string) GatewayFile {
		f := GatewayDefaults()
		f.Routes = []GatewayRouteFile{{Name: "t", Path: path, Upstream: "http://127.0.0.1:9", Kind: "tool",
			Credential: GatewayCredentialFile{Provider: "p", Type: "apiKey"}}}
		return f
	}
	for _, good := range []string{"/t", "/tools/weather", "/tools/weather.v2", "/a-b_c~d"} {
		if _, err := route(good).Validate(); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
	for _, bad := range []string{"", "t", "/", "/t/", "/a/../b", "/a/./b", "/a//b", "/..", "/we%61ther", `/a\b`, "/a b", "/a{x}", "/runtimes", "/runtimes/x"} {
		if _, err := route(bad).Validate(); err == nil || !strings.Contains(err.Error(), "routes[0].path:") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// A standalone gateway's telemetry section is the server's, checked the
// same way under telemetry, without the audit export; Prometheus on the
// gateway's listener claims /metrics.
func TestGatewayTelemetry(t *testing.T) {
	f, err := LoadGateway(write(t, "telemetry:\n  traces: {enabled: true, sampleRatio: 2}\n  otlp: {protocol: smoke}\n"+
		"  metrics: {prometheus: {enabled: true}}\n  audit: {file: /tmp/a.jsonl}\n"+
		"routes:\n  - {name: m, path: /metrics, upstream: 'http://127.0.0.1:9', kind: tool, credential: {provider: p, type: apiKey}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Validate()
	for _, want := range []string{"telemetry.traces.sampleRatio:", "telemetry.otlp.protocol:", "telemetry.audit:", "routes[0].path: /metrics"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in %v", want, err)
		}
	}
	if _, err := LoadGateway(write(t, "telemetry:\n  trace: {}\n")); err == nil || !strings.Contains(err.Error(), "telemetry.trace") {
		t.Errorf("an unknown telemetry key: %v", err)
	}
	f.Telemetry.Traces.SampleRatio, f.Telemetry.OTLP.Protocol, f.Telemetry.Audit.File = nil, "", ""
	f.Telemetry.Metrics.Prometheus.Listen = "127.0.0.1:9465"
	g, err := f.Validate()
	if err != nil || !g.Telemetry.Traces || g.Telemetry.ServiceName != "behalf-gateway" || g.Telemetry.MetricsListen != "127.0.0.1:9465" {
		t.Fatalf("%+v %v", g.Telemetry, err)
	}
}

// The user hash key file is read like the vault's keyring: readable by
// its owner only, and long enough.
func TestGatewayUserHashKey(t *testing.T) {
	if key, err := (Gateway{}).UserHashKey(); key != nil || err != nil {
		t.Errorf("no file: %q %v", key, err)
	}
	path := filepath.Join(t.TempDir(), "user-hash-key")
	hexKey := strings.Repeat("0123456789abcdef", 4)
	for _, tt := range []struct {
		content string
		mode    os.FileMode
		err     string
	}{
		{hexKey + "\n", 0o600, ""},
		{hexKey, 0o644, "readable by its owner only"},
		{"short\n", 0o600, "at least 32"},
	} {
		if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tt.mode); err != nil {
			t.Fatal(err)
		}
		key, err := (Gateway{UserHashKeyFile: path}).UserHashKey()
		switch {
		case tt.err == "" && (err != nil || string(key) != hexKey):
			t.Errorf("%q: %q %v", tt.content, key, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q mode %o: %v, want %q", tt.content, tt.mode, err, tt.err)
		}
	}
}

// An mcp route: its resource (the route's URL, https or loopback http,
// canonical), authorization servers, scopes and tool scopes are checked
// strictly, as its workload and credential; other kinds take none of
// them. The members are read from YAML at the route's level.
func TestGatewayMCPRoute(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	yaml := `routes:
  - name: tools
    path: /mcp
    upstream: http://127.0.0.1:9/mcp
    kind: mcp
    workload: mcp-tools
    resource: https://gw.example.com/mcp
    authorizationServers: [https://idp.example.com]
    scopes: [mcp:use]
    toolScopes:
      tools/call:delete_repo: [repo:admin]
      resources/read: [mcp:read]
    credential: {provider: p, type: apiKey, header: X-Api-Key}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := LoadGateway(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.Validate()
	if err != nil || g.Routes[0].Resource != "https://gw.example.com/mcp" || g.Routes[0].ToolScopes["tools/call:delete_repo"][0] != "repo:admin" ||
		g.Routes[0].Credential.CacheFor() != DefaultCredentialCacheTTL {
		t.Fatalf("%+v %v", g.Routes, err)
	}
	route := func(edit func(*GatewayRouteFile)) GatewayFile {
		f := GatewayDefaults()
		r := GatewayRouteFile{Name: "tools", Path: "/mcp", Upstream: "http://127.0.0.1:9/mcp", Kind: KindMCP, Workload: "mcp-tools",
			Credential: GatewayCredentialFile{Provider: "p", Type: CredentialM2M},
			MCPRouteFile: MCPRouteFile{Resource: "http://127.0.0.1:8788/mcp", AuthorizationServers: []string{"http://localhost:9400"},
				Scopes: []string{"mcp:use"}}}
		edit(&r)
		f.Routes = []GatewayRouteFile{r}
		return f
	}
	if _, err := route(func(*GatewayRouteFile) {}).Validate(); err != nil {
		t.Fatalf("a loopback resource and issuer: %v", err)
	}
	for name, tt := range map[string]struct {
		edit func(*GatewayRouteFile)
		at   string
	}{
		"no resource":              {func(r *GatewayRouteFile) { r.Resource = "" }, ".resource:"},
		"http resource":            {func(r *GatewayRouteFile) { r.Resource = "http://gw.example.com/mcp" }, ".resource:"},
		"another path":             {func(r *GatewayRouteFile) { r.Resource = "https://gw.example.com/other" }, ".resource:"},
		"trailing slash":           {func(r *GatewayRouteFile) { r.Resource = "https://gw.example.com/mcp/" }, ".resource:"},
		"uppercase host":           {func(r *GatewayRouteFile) { r.Resource = "https://GW.example.com/mcp" }, ".resource:"},
		"query":                    {func(r *GatewayRouteFile) { r.Resource = "https://gw.example.com/mcp?a=b" }, ".resource:"},
		"fragment":                 {func(r *GatewayRouteFile) { r.Resource = "https://gw.example.com/mcp#f" }, ".resource:"},
		"no issuer":                {func(r *GatewayRouteFile) { r.AuthorizationServers = nil }, ".authorizationServers:"},
		"http issuer":              {func(r *GatewayRouteFile) { r.AuthorizationServers = []string{"http://idp.example.com"} }, ".authorizationServers[0]:"},
		"issuer twice":             {func(r *GatewayRouteFile) { r.AuthorizationServers = []string{"https://a", "https://a"} }, ".authorizationServers[1]:"},
		"no scopes":                {func(r *GatewayRouteFile) { r.Scopes = nil }, ".scopes:"},
		"bad scope":                {func(r *GatewayRouteFile) { r.Scopes = []string{"a b"} }, ".scopes[0]:"},
		"bad rule":                 {func(r *GatewayRouteFile) { r.ToolScopes = map[string][]string{"tools/call:a b": {"x"}} }, ".toolScopes:"},
		"rule without scopes":      {func(r *GatewayRouteFile) { r.ToolScopes = map[string][]string{"tools/list": nil} }, ".toolScopes[tools/list]:"},
		"no workload":              {func(r *GatewayRouteFile) { r.Workload = "" }, ".workload:"},
		"callers":                  {func(r *GatewayRouteFile) { r.Callers = []string{"front-agent"} }, ".callers:"},
		"no credential":            {func(r *GatewayRouteFile) { r.Credential = GatewayCredentialFile{} }, ".credential.provider:"},
		"resource on a tool route": {func(r *GatewayRouteFile) { r.Kind, r.Workload = KindTool, "" }, "routes[0]: resource"},
	} {
		if _, err := route(tt.edit).Validate(); err == nil || !strings.Contains(err.Error(), "routes[0]"+tt.at) && !strings.Contains(err.Error(), tt.at) {
			t.Errorf("%s: %v, want a problem at %s", name, err, tt.at)
		}
	}
}
