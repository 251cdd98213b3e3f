package dataplane_test

// Shared fixtures for the data-plane tests: a real behalf server per test
// (behalftest), a real Dex (dextest) as both the users' identity provider
// and the M2M token endpoint, and the official AWS SDK clients as callers.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/aws/smithy-go/middleware"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to edit the database under test
	_ "modernc.org/sqlite"             // the "sqlite" driver, likewise

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/dextest"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wat"
)

// Names and secrets of the standard world. The secrets are distinctive so
// that a test can search any output for them.
const (
	workloadW1 = "agent-w1"
	workloadW2 = "agent-w2"

	apiKeyProvider = "api-key"
	apiKeyValue    = "sk-live-behalf-TEST-apikey-0123456789abcdef"
	m2mProvider    = "dex-m2m"

	// userClient is the Dex client users log in with; its id is the
	// audience the inbound authorizer accepts (Dex: aud = client id).
	userClientID     = "behalf-users"
	userClientSecret = "users-secret-TEST-0123456789"
	// m2mClient is the client behalf's M2M provider authenticates as.
	m2mClientID     = "agent-m2m"
	m2mClientSecret = "m2m-secret-TEST-0123456789abcdef"

	dexAuthorizer = "dex"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// wantAPIError asserts err is the typed SDK error T and returns it.
func wantAPIError[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("got %T %v, want %T", err, err, target)
	}
	return target
}

// httpStatus returns the HTTP status of an SDK error, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// requestIDOf returns the request id the server sent with a result or an
// error (X-Amzn-RequestId).
func requestIDOf(md middleware.Metadata, err error) string {
	if err != nil {
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			return re.ServiceRequestID()
		}
		return ""
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(md)
	return id
}

// principal is a runtime principal's key pair.
type principal struct{ ID, Secret string }

// data returns the official data-plane client signing as p.
func (p principal) data(s *behalftest.Server) *bedrockagentcore.Client {
	return s.DataAs(p.ID, p.Secret)
}

// do sends a behalf extension request as admin and fails t unless it
// answers want.
func do(t *testing.T, s *behalftest.Server, path string, body any, want int) behalftest.Response {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	res := s.Do(t, behalftest.Raw{Path: path, Body: raw})
	if res.Status != want {
		t.Fatalf("%s: %d %s, want %d", path, res.Status, res.Body, want)
	}
	return res
}

// createPrincipal creates a runtime principal granted workloads.
func createPrincipal(t *testing.T, s *behalftest.Server, workloads ...string) principal {
	t.Helper()
	res := do(t, s, "/behalf/CreatePrincipal", map[string]any{"role": "runtime", "workloads": workloads}, http.StatusCreated)
	m := res.JSON(t)
	p := principal{ID: m["accessKeyId"].(string), Secret: m["secretAccessKey"].(string)}
	if p.ID == "" || p.Secret == "" {
		t.Fatalf("CreatePrincipal: %s", res.Body)
	}
	return p
}

func grant(t *testing.T, s *behalftest.Server, p principal, workloads ...string) {
	t.Helper()
	if workloads == nil {
		workloads = []string{}
	}
	do(t, s, "/behalf/UpdatePrincipal", map[string]any{"accessKeyId": p.ID, "workloads": workloads}, http.StatusOK)
}

func deletePrincipal(t *testing.T, s *behalftest.Server, p principal) {
	t.Helper()
	do(t, s, "/behalf/DeletePrincipal", map[string]any{"accessKeyId": p.ID}, http.StatusNoContent)
}

// createWorkload creates a workload identity; policy holds behalf's
// extension members (allowedInboundAuthorizers, allowedCredentialProviders),
// which the SDK's input type does not have.
func createWorkload(t *testing.T, s *behalftest.Server, name string, policy map[string]any) {
	t.Helper()
	body := map[string]any{"name": name}
	for k, v := range policy {
		body[k] = v
	}
	do(t, s, "/identities/CreateWorkloadIdentity", body, http.StatusCreated)
}

// grants builds an allowedCredentialProviders value: provider names,
// each optionally followed by "=scope1,scope2". Each grant allows any
// resource, audience and custom parameter; authz and control test those
// limits.
func grants(entries ...string) []map[string]any {
	out := []map[string]any{}
	for _, e := range entries {
		name, scopes, ok := strings.Cut(e, "=")
		g := map[string]any{"provider": name, "resources": []string{"*"}, "audiences": []string{"*"}, "customParameters": []string{"*"}}
		if ok {
			g["scopes"] = strings.Split(scopes, ",")
		}
		out = append(out, g)
	}
	return out
}

func createAPIKeyProvider(t *testing.T, s *behalftest.Server, name, key string) {
	t.Helper()
	_, err := s.Control().CreateApiKeyCredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
		Name: aws.String(name), ApiKey: aws.String(key),
	})
	if err != nil {
		t.Fatalf("CreateApiKeyCredentialProvider %s: %v", name, err)
	}
}

// dexProviderConfig is a CustomOauth2 configuration found through Dex's
// discovery document.
func dexProviderConfig(d *dextest.Dex, secret string) ctltypes.Oauth2ProviderConfigInput {
	return &ctltypes.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: ctltypes.CustomOauth2ProviderConfigInput{
		ClientId: aws.String(m2mClientID), ClientSecret: aws.String(secret),
		OauthDiscovery: &ctltypes.Oauth2DiscoveryMemberDiscoveryUrl{Value: d.DiscoveryURL},
	}}
}

func createDexProvider(t *testing.T, s *behalftest.Server, d *dextest.Dex, name string) {
	t.Helper()
	_, err := s.Control().CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String(name), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: dexProviderConfig(d, m2mClientSecret),
	})
	if err != nil {
		t.Fatalf("CreateOauth2CredentialProvider %s: %v", name, err)
	}
}

// world is the standard setup: Dex; a behalf server that trusts Dex's ID
// tokens for userClientID; workload W1 allowed the API-key provider and the
// M2M provider backed by Dex; a runtime principal granted W1.
type world struct {
	s       *behalftest.Server
	dex     *dextest.Dex
	runtime principal
	rt      *bedrockagentcore.Client
}

type worldOptions struct {
	dex dextest.Options
	// edit changes the server configuration after the world's own edits.
	edit func(*config.File)
	// w1Policy replaces W1's extension members.
	w1Policy map[string]any
	// log receives the server's log.
	log *slog.Logger
	// now is the server's clock; default time.Now.
	now func() time.Time
}

func newWorld(t *testing.T, b behalftest.Backend, o worldOptions) *world {
	t.Helper()
	o.dex.Clients = append(o.dex.Clients,
		dextest.Client{ID: userClientID, Secret: userClientSecret},
		dextest.Client{ID: m2mClientID, Secret: m2mClientSecret})
	d := dextest.Start(t, o.dex)
	s := behalftest.Start(t, b, behalftest.Options{Log: o.log, Now: o.now, Edit: func(f *config.File) {
		f.InboundAuthorizers = []config.InboundAuthorizerFile{{
			Name: dexAuthorizer, DiscoveryURL: d.DiscoveryURL, AllowedAudience: []string{userClientID},
		}}
		f.Outbound.Timeout = time.Second
		if o.edit != nil {
			o.edit(f)
		}
	}})
	policy := o.w1Policy
	if policy == nil {
		policy = map[string]any{
			"allowedInboundAuthorizers":  []string{dexAuthorizer},
			"allowedCredentialProviders": grants(apiKeyProvider, m2mProvider),
		}
	}
	createWorkload(t, s, workloadW1, policy)
	createAPIKeyProvider(t, s, apiKeyProvider, apiKeyValue)
	createDexProvider(t, s, d, m2mProvider)
	p := createPrincipal(t, s, workloadW1)
	return &world{s: s, dex: d, runtime: p, rt: p.data(s)}
}

// mintPlain, mintForUser and mintForJWT get workload access tokens with the
// official client and fail t on error.
func mintPlain(t *testing.T, c *bedrockagentcore.Client, workload string) string {
	t.Helper()
	out, err := c.GetWorkloadAccessToken(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String(workload)})
	if err != nil {
		t.Fatalf("GetWorkloadAccessToken %s: %v", workload, err)
	}
	return aws.ToString(out.WorkloadAccessToken)
}

func mintForUser(t *testing.T, c *bedrockagentcore.Client, workload, user string) string {
	t.Helper()
	out, err := c.GetWorkloadAccessTokenForUserId(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
		WorkloadName: aws.String(workload), UserId: aws.String(user),
	})
	if err != nil {
		t.Fatalf("GetWorkloadAccessTokenForUserId %s %s: %v", workload, user, err)
	}
	return aws.ToString(out.WorkloadAccessToken)
}

func mintForJWT(t *testing.T, c *bedrockagentcore.Client, jwt string) string {
	t.Helper()
	out, err := c.GetWorkloadAccessTokenForJWT(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
		WorkloadName: aws.String(workloadW1), UserToken: aws.String(jwt),
	})
	if err != nil {
		t.Fatalf("GetWorkloadAccessTokenForJWT %s: %v", workloadW1, err)
	}
	return aws.ToString(out.WorkloadAccessToken)
}

func getAPIKey(cx context.Context, c *bedrockagentcore.Client, token, provider string) (*bedrockagentcore.GetResourceApiKeyOutput, error) {
	return c.GetResourceApiKey(cx, &bedrockagentcore.GetResourceApiKeyInput{
		WorkloadIdentityToken: aws.String(token), ResourceCredentialProviderName: aws.String(provider),
	})
}

func getM2M(cx context.Context, c *bedrockagentcore.Client, token, provider string, scopes ...string) (*bedrockagentcore.GetResourceOauth2TokenOutput, error) {
	if scopes == nil {
		scopes = []string{}
	}
	return c.GetResourceOauth2Token(cx, &bedrockagentcore.GetResourceOauth2TokenInput{
		WorkloadIdentityToken: aws.String(token), ResourceCredentialProviderName: aws.String(provider),
		Scopes: scopes, Oauth2Flow: "M2M",
	})
}

// watIssuer is a wat.Issuer over the server's own key ring, read from its
// storage and unsealed with its keyring file: the production wat package
// with the server's keys. now is the clock (nil: time.Now); with a clock
// moved back it mints tokens that are already expired.
func watIssuer(t *testing.T, s *behalftest.Server, now func() time.Time) *wat.Issuer {
	t.Helper()
	cx := ctx(t)
	kr, err := vault.OpenLocalKeyring(s.Config.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	tv, err := s.Server.Store().GetTokenVault(cx, "default")
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(cx, kr, kr.ServiceKeyID())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetCurrent(cx, tv.KeyID); err != nil {
		t.Fatal(err)
	}
	iss, err := wat.NewIssuer(cx, s.Server.Store(), v, wat.Options{TTL: s.Config.WATTTL, RotationPeriod: s.Config.WATKeyRotation, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// openWAT decrypts a workload access token the server minted and returns
// what it binds.
func openWAT(t *testing.T, s *behalftest.Server, token string) wat.Claims {
	t.Helper()
	c, err := watIssuer(t, s, nil).Open(ctx(t), token)
	if err != nil {
		t.Fatalf("open workload access token: %v", err)
	}
	return c
}

// auditRecord is one record of /behalf/ListAuditRecords.
type auditRecord struct {
	Seq       int64    `json:"seq"`
	Time      float64  `json:"time"`
	RequestID string   `json:"requestId"`
	Principal string   `json:"principal"`
	Operation string   `json:"operation"`
	Workload  string   `json:"workload"`
	User      string   `json:"user"`
	Provider  string   `json:"provider"`
	Scopes    []string `json:"scopes"`
	Flow      string   `json:"flow"`
	Resource  string   `json:"resource"`
	Outcome   string   `json:"outcome"`
	ErrorType string   `json:"errorType"`
	Actors    []string `json:"actors"`
	Hash      string   `json:"hash"`
}

// listAudit returns every record matching filter, following nextToken,
// and the raw bodies of every page.
func listAudit(t *testing.T, s *behalftest.Server, filter map[string]any) ([]auditRecord, [][]byte) {
	t.Helper()
	var (
		recs   []auditRecord
		bodies [][]byte
		next   string
	)
	for {
		body := map[string]any{"maxResults": 1000}
		for k, v := range filter {
			body[k] = v
		}
		if next != "" {
			body["nextToken"] = next
		}
		res := do(t, s, "/behalf/ListAuditRecords", body, http.StatusOK)
		bodies = append(bodies, res.Body)
		var page struct {
			Records   []auditRecord `json:"records"`
			NextToken string        `json:"nextToken"`
		}
		if err := json.Unmarshal(res.Body, &page); err != nil {
			t.Fatalf("ListAuditRecords: %v: %s", err, res.Body)
		}
		recs = append(recs, page.Records...)
		if page.NextToken == "" {
			return recs, bodies
		}
		next = page.NextToken
	}
}

// auditByRequest returns the one record of a request id.
func auditByRequest(t *testing.T, s *behalftest.Server, requestID string) auditRecord {
	t.Helper()
	if requestID == "" {
		t.Fatal("no request id to look up")
	}
	recs, _ := listAudit(t, s, nil)
	i := slices.IndexFunc(recs, func(r auditRecord) bool { return r.RequestID == requestID })
	if i < 0 {
		t.Fatalf("no audit record for request %s", requestID)
	}
	return recs[i]
}

type verifyReport struct {
	OK       bool   `json:"ok"`
	Records  int64  `json:"records"`
	HeadSeq  int64  `json:"headSeq"`
	HeadHash string `json:"headHash"`
	Problems []struct {
		Seq    int64  `json:"seq"`
		Reason string `json:"reason"`
	} `json:"problems"`
}

func verifyAudit(t *testing.T, s *behalftest.Server) verifyReport {
	t.Helper()
	res := do(t, s, "/behalf/VerifyAuditLog", map[string]any{}, http.StatusOK)
	var r verifyReport
	if err := json.Unmarshal(res.Body, &r); err != nil {
		t.Fatalf("VerifyAuditLog: %v: %s", err, res.Body)
	}
	return r
}

// rawDB opens the server's database directly, as an attacker with write
// access to it would, and returns it with its placeholder style.
func rawDB(t *testing.T, s *behalftest.Server) (db *sql.DB, placeholder func(n int) string) {
	t.Helper()
	dsn := s.Config.Storage
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err = sql.Open("pgx", dsn)
		placeholder = func(n int) string { return fmt.Sprintf("$%d", n) }
	} else {
		db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=busy_timeout(5000)")
		placeholder = func(int) string { return "?" }
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.PingContext(ctx(t)); err != nil {
		t.Fatal(err)
	}
	return db, placeholder
}

// authorizerFile converts an inbound.Config (as inboundtest builds it) to
// the configuration file's shape.
func authorizerFile(c inbound.Config) config.InboundAuthorizerFile {
	f := config.InboundAuthorizerFile{Name: c.Name, DiscoveryURL: c.DiscoveryURL, AllowedAudience: c.AllowedAudience,
		AllowedClients: c.AllowedClients, AllowedScopes: c.AllowedScopes}
	for _, cc := range c.CustomClaims {
		var cf config.CustomClaimFile
		cf.InboundTokenClaimName, cf.InboundTokenClaimValueType = cc.Name, cc.ValueType
		cf.AuthorizingClaimMatchValue.ClaimMatchOperator = cc.Operator
		cf.AuthorizingClaimMatchValue.ClaimMatchValue.MatchValueString = cc.Value
		cf.AuthorizingClaimMatchValue.ClaimMatchValue.MatchValueStringList = cc.Values
		f.CustomClaims = append(f.CustomClaims, cf)
	}
	return f
}

// logBuffer collects a server's log for inspection.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// debugLogger logs everything, down to debug, to l.
func (l *logBuffer) debugLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
