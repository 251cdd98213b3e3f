package dataplane_test

// GetWorkloadJWT (issue 14, item 3): behalf's own workload JWT, verified
// as a relying party would — the issuer's OpenID Connect discovery
// document fetched over HTTP, then its JWK set, with go-oidc and an ES256
// allow-list — through SigV4-signed calls; its lifetime bounds, its
// authorization and audit, its typed errors, and key rotation.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// workloadJWT calls GetWorkloadJWT as p and decodes a success.
func workloadJWT(t *testing.T, s *behalftest.Server, p principal, in behalfapi.GetWorkloadJWTInput) (behalftest.Response, behalfapi.GetWorkloadJWTOutput) {
	t.Helper()
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	res := s.Do(t, behalftest.Raw{Path: "/behalf/GetWorkloadJWT", Body: raw, KeyID: p.ID, Secret: p.Secret})
	var out behalfapi.GetWorkloadJWTOutput
	if res.Status == http.StatusOK {
		if err := json.Unmarshal(res.Body, &out); err != nil {
			t.Fatal(err)
		}
	}
	return res, out
}

func mustWorkloadJWT(t *testing.T, s *behalftest.Server, p principal, in behalfapi.GetWorkloadJWTInput) behalfapi.GetWorkloadJWTOutput {
	t.Helper()
	res, out := workloadJWT(t, s, p, in)
	if res.Status != http.StatusOK || out.JWT == "" {
		t.Fatalf("GetWorkloadJWT: %d %s", res.Status, res.Body)
	}
	return out
}

// verifyWorkloadJWT verifies a workload JWT as a relying party for aud
// would at now (nil: the real clock): go-oidc discovers the issuer
// <server>/workload-identity and fetches the JWK set it names, accepting
// ES256 only. It returns the claims.
func verifyWorkloadJWT(t *testing.T, s *behalftest.Server, aud, token string, now func() time.Time) (map[string]any, error) {
	t.Helper()
	p, err := oidc.NewProvider(ctx(t), s.URL+"/workload-identity")
	if err != nil {
		t.Fatalf("discover the workload JWT issuer: %v", err)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: aud, SupportedSigningAlgs: []string{"ES256"}, Now: now}).Verify(ctx(t), token)
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return claims, nil
}

// kidOf reads the key id of a workload JWT's ES256 signature.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("not an ES256 JWS: %v", err)
	}
	return jws.Signatures[0].Protected.KeyID
}

func workloadARN(s *behalftest.Server, name string) string {
	return fmt.Sprintf("arn:aws:bedrock-agentcore:%s:%s:workload-identity-directory/default/workload-identity/%s", s.Config.Region, s.Config.AccountID, name)
}

// TestWorkloadJWT: a runtime principal exchanges alice's workload access
// token for W1's JWT; a relying party verifies it through discovery and
// finds iss, sub (W1's ARN), aud, iat, nbf, exp and jti, typ JWT; its
// lifetime is 300s by default, as asked within 60..3600, and never past
// the workload access token's; the call's record names the jti, the
// audiences, W1 and alice, and no record holds the JWT.
func TestWorkloadJWT(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{})
		s := w.s
		wat := mintForUser(t, w.rt, workloadW1, "alice")
		watExpiry := openWAT(t, s, wat).Expiry
		aud := []string{"https://as.example.com/oauth2/token", "api://relying-party"}

		// The discovery document, as a verifier reads it.
		res, err := http.Get(s.URL + "/workload-identity/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if doc["issuer"] != s.URL+"/workload-identity" || doc["jwks_uri"] != s.URL+"/workload-identity/jwks" ||
			fmt.Sprint(doc["id_token_signing_alg_values_supported"]) != "[ES256]" || fmt.Sprint(doc["subject_types_supported"]) != "[public]" ||
			fmt.Sprint(doc["response_types_supported"]) != "[id_token]" {
			t.Errorf("discovery document: %v", doc)
		}

		out := mustWorkloadJWT(t, s, w.runtime, behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: wat, Audience: aud})
		claims, err := verifyWorkloadJWT(t, s, aud[1], out.JWT, nil)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		iat, exp, nbf := int64(claims["iat"].(float64)), int64(claims["exp"].(float64)), int64(claims["nbf"].(float64))
		if claims["iss"] != s.URL+"/workload-identity" || claims["sub"] != workloadARN(s, workloadW1) ||
			fmt.Sprint(claims["aud"]) != fmt.Sprint(aud) || nbf != iat || exp-iat != 300 || exp != time.Time(out.ExpiresAt).Unix() {
			t.Errorf("claims %v, expiresAt %v", claims, out.ExpiresAt)
		}
		jti, _ := claims["jti"].(string)
		if len(jti) < 32 {
			t.Errorf("jti %q", jti)
		}
		if len(claims) != 7 {
			t.Errorf("claims beyond iss, sub, aud, iat, nbf, exp, jti: %v", claims)
		}
		jws, err := jose.ParseSignedCompact(out.JWT, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil || jws.Signatures[0].Protected.ExtraHeaders["typ"] != "JWT" || jws.Signatures[0].Protected.KeyID == "" {
			t.Errorf("header: %v %+v", err, jws)
		}
		// Another audience's relying party refuses it.
		if _, err := verifyWorkloadJWT(t, s, "https://other.example.com", out.JWT, nil); err == nil || !strings.Contains(err.Error(), "audience") {
			t.Errorf("verified for another audience: %v", err)
		}

		// One audience is a string (RFC 7519 §4.1.3); durationSeconds as
		// asked, and never past the workload access token.
		ten := 600
		one := mustWorkloadJWT(t, s, w.runtime, behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: wat, Audience: aud[:1], DurationSeconds: &ten})
		c1 := behalftest.JWTClaims(t, one.JWT)
		if c1["aud"] != aud[0] || int64(c1["exp"].(float64))-int64(c1["iat"].(float64)) != 600 {
			t.Errorf("one audience, 600s: aud %v, lifetime %v", c1["aud"], c1["exp"].(float64)-c1["iat"].(float64))
		}
		hour := 3600
		capped := mustWorkloadJWT(t, s, w.runtime, behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: wat, Audience: aud[:1], DurationSeconds: &hour})
		if got := int64(behalftest.JWTClaims(t, capped.JWT)["exp"].(float64)); got != watExpiry || time.Time(capped.ExpiresAt).Unix() != watExpiry {
			t.Errorf("3600s with a workload access token expiring at %d: exp %d, expiresAt %v", watExpiry, got, capped.ExpiresAt)
		}

		recs, bodies := listAudit(t, s, map[string]any{"operation": "GetWorkloadJWT"})
		if len(recs) != 3 {
			t.Fatalf("%d GetWorkloadJWT records, want 3", len(recs))
		}
		r := recs[0]
		if r.Principal != w.runtime.ID || r.Workload != workloadW1 || r.User != "id:alice" || r.Outcome != "success" ||
			r.Resource != "workload-jwt/"+jti+" "+strings.Join(aud, " ") {
			t.Errorf("record: %+v", r)
		}
		all, allBodies := listAudit(t, s, nil)
		for _, body := range append(bodies, allBodies...) {
			for _, tok := range []string{out.JWT, one.JWT, capped.JWT} {
				if strings.Contains(string(body), tok) || strings.Contains(string(body), strings.Split(tok, ".")[2]) {
					t.Fatal("an audit record holds a workload JWT")
				}
			}
		}
		if len(all) == 0 || !verifyAudit(t, s).OK {
			t.Error("the audit chain does not verify")
		}
	})
}

// TestWorkloadJWTRefusals: bad input is a typed ValidationException
// naming the member, a bad token UnauthorizedException; a principal not
// granted the operation, or not granted the token's workload, is refused
// with AccessDeniedException. Every refusal that passed validation is
// recorded, and none signs a JWT.
func TestWorkloadJWTRefusals(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{})
		s := w.s
		createWorkload(t, s, workloadW2, nil)
		wat := mintPlain(t, w.rt, workloadW1)
		aud := []string{"https://as.example.com"}
		n := func(v int) *int { return &v }
		eleven := make([]string, 11)
		for i := range eleven {
			eleven[i] = fmt.Sprintf("aud-%d", i)
		}
		valid := func(p principal, t *testing.T, in behalfapi.GetWorkloadJWTInput, errType, says string) {
			t.Helper()
			res, out := workloadJWT(t, s, p, in)
			if res.ErrType != errType || !strings.Contains(string(res.Body), says) || out.JWT != "" {
				t.Errorf("%d %s %s, want %s saying %q", res.Status, res.ErrType, res.Body, errType, says)
			}
		}
		for _, c := range []struct {
			name string
			in   behalfapi.GetWorkloadJWTInput
			says string
		}{
			{"no audience", behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: wat}, "audience must have at least 1 items"},
			{"eleven audiences", behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: wat, Audience: eleven}, "audience must have at most 10 items"},
			{"an empty audience", behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: wat, Audience: []string{""}}, "audience[0] must be at least 1"},
			{"an audience with a space", behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: wat, Audience: []string{"a b"}}, "audience[0] must match"},
			{"a long audience", behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: wat, Audience: []string{strings.Repeat("a", 1025)}}, "audience[0] must be at most 1024"},
			{"a repeated audience", behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: wat, Audience: []string{"a", "a"}}, "audience[1] names an audience already named"},
			{"59 seconds", behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: wat, Audience: aud, DurationSeconds: n(59)}, "durationSeconds must be between 60 and 3600"},
			{"3601 seconds", behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: wat, Audience: aud, DurationSeconds: n(3601)}, "durationSeconds must be between 60 and 3600"},
			{"no token", behalfapi.GetWorkloadJWTInput{Audience: aud}, "workloadIdentityToken is required"},
		} {
			t.Run(c.name, func(t *testing.T) { valid(w.runtime, t, c.in, "ValidationException", c.says) })
		}
		if res := s.Do(t, behalftest.Raw{Path: "/behalf/GetWorkloadJWT", Body: []byte(`{"workloadIdentityToken":"x","audience":"a"}`),
			KeyID: w.runtime.ID, Secret: w.runtime.Secret}); res.ErrType != "ValidationException" {
			t.Errorf("audience as a string: %d %s", res.Status, res.Body)
		}

		onlyAPIKeys := createPrincipalWith(t, s, []string{workloadW1}, []string{"GetResourceApiKey", "GetWorkloadAccessToken"})
		ofW2 := createPrincipal(t, s, workloadW2)
		t.Run("a forged token", func(t *testing.T) {
			valid(w.runtime, t, behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: "not-a-workload-access-token", Audience: aud}, "UnauthorizedException", "not valid")
		})
		t.Run("a principal without the operation", func(t *testing.T) {
			valid(onlyAPIKeys, t, behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: mintPlain(t, onlyAPIKeys.data(s), workloadW1), Audience: aud},
				"AccessDeniedException", "not granted operation GetWorkloadJWT")
		})
		t.Run("a principal not granted the workload", func(t *testing.T) {
			valid(ofW2, t, behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: wat, Audience: aud}, "AccessDeniedException", workloadW1)
		})

		// Every refusal is recorded, and none names a JWT.
		recs, _ := listAudit(t, s, map[string]any{"operation": "GetWorkloadJWT"})
		has := func(p principal, errType, workload string) bool {
			return slices.ContainsFunc(recs, func(r auditRecord) bool {
				return r.Principal == p.ID && r.ErrorType == errType && r.Workload == workload
			})
		}
		for _, r := range recs {
			if r.Outcome != "failure" || r.Resource != "" && !strings.HasPrefix(r.Resource, "workload-jwt/ ") {
				t.Errorf("record of a refusal: %+v", r)
			}
		}
		if !has(w.runtime, "ValidationException", "") || !has(w.runtime, "UnauthorizedException", "") ||
			!has(onlyAPIKeys, "AccessDeniedException", "") || !has(ofW2, "AccessDeniedException", workloadW1) {
			t.Errorf("records missing: %+v", recs)
		}
	})
}

// TestWorkloadJWTKeyRotation: the key that signs changes weekly, and the
// new one is published an hour before it signs; a JWT signed just before
// the switch still verifies after it against the JWK set then served,
// until it expires, and its key leaves the set only once no JWT it signed
// can be alive.
func TestWorkloadJWTKeyRotation(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		s := behalftest.Start(t, b, behalftest.Options{Now: clock.Now, Edit: func(f *config.File) { f.WorkloadAccessToken.TTL = time.Hour }})
		createWorkload(t, s, workloadW1, nil)
		p := createPrincipal(t, s, workloadW1)
		hour := 3600
		sign := func() behalfapi.GetWorkloadJWTOutput {
			return mustWorkloadJWT(t, s, p, behalfapi.GetWorkloadJWTInput{WorkloadIdentityToken: mintPlain(t, p.data(s), workloadW1),
				Audience: []string{"rp"}, DurationSeconds: &hour})
		}
		kids := func() []string {
			res, err := http.Get(s.URL + "/workload-identity/jwks")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var set jose.JSONWebKeySet
			if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, k := range set.Keys {
				if k.Algorithm != "ES256" || !k.IsPublic() {
					t.Errorf("key %s: alg %s, public %v", k.KeyID, k.Algorithm, k.IsPublic())
				}
				out = append(out, k.KeyID)
			}
			return out
		}
		first := sign()
		k1 := kidOf(t, first.JWT)
		if got := kids(); !slices.Equal(got, []string{k1}) {
			t.Fatalf("JWK set %v, want [%s]", got, k1)
		}

		// A week on: a new key is published, the old one still signs.
		clock.Advance(7 * 24 * time.Hour)
		s.Server.Maintain(ctx(t))
		published := kids()
		if len(published) != 2 || published[0] != k1 {
			t.Fatalf("JWK set after a week %v", published)
		}
		k2 := published[1]
		clock.Advance(59 * time.Minute)
		before := sign()
		if kidOf(t, before.JWT) != k1 {
			t.Errorf("the new key signs before it was published an hour")
		}

		// The hour is up: the new key signs; the JWT of a minute ago
		// verifies against the set served now, as does the new one.
		clock.Advance(2 * time.Minute)
		s.Server.Maintain(ctx(t))
		after := sign()
		if kidOf(t, after.JWT) != k2 {
			t.Errorf("the new key does not sign an hour after it was published")
		}
		for name, tok := range map[string]string{"before the switch": before.JWT, "after it": after.JWT} {
			if _, err := verifyWorkloadJWT(t, s, "rp", tok, clock.Now); err != nil {
				t.Errorf("JWT signed %s: %v", name, err)
			}
		}
		if got := kids(); !slices.Equal(got, []string{k1, k2}) {
			t.Errorf("JWK set while the old key's JWTs live: %v", got)
		}

		// Once the last JWT the old key signed has expired, it goes.
		clock.AdvanceTo(time.Time(before.ExpiresAt).Add(5 * time.Minute))
		s.Server.Maintain(ctx(t))
		if got := kids(); !slices.Equal(got, []string{k2}) {
			t.Errorf("JWK set once the old key's JWTs expired: %v", got)
		}
		if _, err := verifyWorkloadJWT(t, s, "rp", after.JWT, func() time.Time { return time.Time(after.ExpiresAt).Add(-time.Second) }); err != nil {
			t.Errorf("the new key's JWT: %v", err)
		}
		if _, err := verifyWorkloadJWT(t, s, "rp", before.JWT, func() time.Time { return time.Time(before.ExpiresAt).Add(-time.Second) }); err == nil {
			t.Error("a JWT of a key gone from the set still verifies")
		}
	})
}
