package dataplane_test

// Security tests of the data plane (issue 3): the forged and malformed JWT
// corpus, inbound-authorizer restrictions per workload, and cross-access
// attempts, each refused with an exact typed error and nothing returned.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/inbound/inboundtest"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/wat"
)

// userTokenPattern is AgentCore's UserTokenType pattern, anchored as the
// server applies it (GetWorkloadAccessTokenForJWT in the AWS API reference).
var userTokenPattern = regexp.MustCompile(`^(?:[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+)$`)

// failsModelValidation lists the corpus cases that are not even shaped like
// a JWT (AgentCore's userToken pattern: three non-empty segments of
// base64url characters and '='). The server refuses them before looking at
// them as tokens, with ValidationException, as AgentCore would; every other
// case reaches the inbound verifier and must be UnauthorizedException.
var failsModelValidation = map[string]bool{
	"alg none":                            true, // empty signature segment
	"signature stripped":                  true,
	"two signatures (JSON serialization)": true,
	"flattened JSON serialization":        true,
	"JWE (5 segments)":                    true,
	"empty string":                        true,
	"non-base64url characters":            true,
	"two segments":                        true,
	"four segments":                       true,
	"newline inside a segment":            true,
	"leading space":                       true,
}

// TestForgedUserTokensRejected replays every inboundtest.Forged case
// through GetWorkloadAccessTokenForJWT with the official client: none
// yields a token, each fails with its exact typed error, and the valid
// token passes. It also checks allowedInboundAuthorizers.
func TestForgedUserTokensRejected(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		corp, partner := inboundtest.NewIDP(t), inboundtest.NewIDP(t, inboundtest.WithKeyType(inboundtest.ECDSA))
		down := inboundtest.NewIDP(t, inboundtest.WithKeyType(inboundtest.Ed25519))
		down.SetDown(true)
		s := behalftest.Start(t, b, behalftest.Options{Edit: func(f *config.File) {
			f.InboundAuthorizers = []config.InboundAuthorizerFile{authorizerFile(corp.Config("corp")),
				authorizerFile(partner.Config("partner")), authorizerFile(down.Config("down"))}
		}})
		workloads := map[string]map[string]any{
			"agent-any":     nil, // absent: every configured authorizer
			"agent-star":    {"allowedInboundAuthorizers": []string{"*"}},
			"agent-corp":    {"allowedInboundAuthorizers": []string{"corp"}},
			"agent-partner": {"allowedInboundAuthorizers": []string{"partner"}},
			"agent-none":    {"allowedInboundAuthorizers": []string{}},
		}
		var names []string
		for name, policy := range workloads {
			createWorkload(t, s, name, policy)
			names = append(names, name)
		}
		p := createPrincipal(t, s, names...)
		rt := p.data(s)
		forJWT := func(workload, token string) (*bedrockagentcore.GetWorkloadAccessTokenForJWTOutput, error) {
			return rt.GetWorkloadAccessTokenForJWT(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
				WorkloadName: aws.String(workload), UserToken: aws.String(token),
			})
		}

		valid := corp.ValidClaims(time.Now())
		cases := inboundtest.Forged(corp, valid)
		t.Run("forged corpus", func(t *testing.T) {
			if len(cases) < 60 {
				t.Fatalf("only %d forged cases", len(cases))
			}
			for _, tc := range cases {
				t.Run(tc.Name, func(t *testing.T) {
					if failsModelValidation[tc.Name] == userTokenPattern.MatchString(tc.Token) {
						t.Fatalf("the corpus changed: case %q does%s match the userToken pattern", tc.Name,
							map[bool]string{true: " not", false: ""}[failsModelValidation[tc.Name]])
					}
					out, err := forJWT("agent-any", tc.Token)
					if out != nil {
						t.Errorf("a workload access token was returned: %+v", out)
					}
					if failsModelValidation[tc.Name] {
						ve := wantAPIError[*types.ValidationException](t, err)
						if len(ve.FieldList) != 1 || aws.ToString(ve.FieldList[0].Name) != "userToken" {
							t.Errorf("field list %+v, want userToken", ve.FieldList)
						}
						return
					}
					// Every kind the verifier reports for these (invalid_token,
					// bad_signature, expired, not_yet_valid, untrusted_issuer,
					// claim_mismatch, insufficient_scope) is Unauthorized;
					// only idp_unavailable maps elsewhere (502).
					ue := wantAPIError[*types.UnauthorizedException](t, err)
					if got := httpStatus(err); got != http.StatusUnauthorized {
						t.Errorf("status %d", got)
					}
					msg := aws.ToString(ue.Message)
					if !strings.HasPrefix(msg, "user token rejected: ") {
						t.Errorf("message %q", msg)
					}
					if len(tc.Token) > 20 && strings.Contains(msg, tc.Token[len(tc.Token)-20:]) {
						t.Errorf("the message echoes the token: %q", msg)
					}
				})
			}
		})

		t.Run("valid token", func(t *testing.T) {
			out, err := forJWT("agent-any", corp.Sign(valid))
			if err != nil {
				t.Fatal(err)
			}
			c := openWAT(t, s, aws.ToString(out.WorkloadAccessToken))
			if c.User != wat.UserFromJWT(corp.Issuer, inboundtest.Subject) || c.Workload != "agent-any" || c.Principal != p.ID {
				t.Errorf("claims %+v", c)
			}
		})

		t.Run("only the valid token minted", func(t *testing.T) {
			recs, _ := listAudit(t, s, map[string]any{"operation": "GetWorkloadAccessTokenForJWT"})
			var ok, failed int
			for _, r := range recs {
				if r.Outcome == "success" {
					ok++
				} else {
					failed++
				}
			}
			if ok != 1 || failed != len(cases) {
				t.Errorf("audit: %d successes and %d failures, want 1 and %d", ok, failed, len(cases))
			}
		})

		t.Run("identity provider unavailable", func(t *testing.T) {
			// Not the user's fault: InternalServerException with 502 and a
			// message naming the problem, not UnauthorizedException.
			out, err := forJWT("agent-any", down.Sign(down.ValidClaims(time.Now())))
			wantAPIError[*types.InternalServerException](t, err)
			if got := httpStatus(err); got != http.StatusBadGateway || out != nil {
				t.Errorf("status %d, output %v", got, out)
			}
		})

		t.Run("allowedInboundAuthorizers", func(t *testing.T) {
			now := time.Now()
			corpToken, partnerToken := corp.Sign(corp.ValidClaims(now)), partner.Sign(partner.ValidClaims(now))
			const ok, unauthorized, denied = "ok", "UnauthorizedException", "AccessDeniedException"
			for _, tc := range []struct {
				workload, idp, token, want string
			}{
				{"agent-any", "corp", corpToken, ok},
				{"agent-any", "partner", partnerToken, ok},
				{"agent-star", "partner", partnerToken, ok},
				{"agent-corp", "corp", corpToken, ok},
				{"agent-corp", "partner", partnerToken, unauthorized},
				{"agent-partner", "corp", corpToken, unauthorized},
				{"agent-partner", "partner", partnerToken, ok},
				{"agent-none", "corp", corpToken, denied},
				{"agent-none", "partner", partnerToken, denied},
			} {
				out, err := forJWT(tc.workload, tc.token)
				switch tc.want {
				case ok:
					if err != nil {
						t.Errorf("%s with a %s token: %v", tc.workload, tc.idp, err)
					}
					continue
				case unauthorized:
					wantAPIError[*types.UnauthorizedException](t, err)
				case denied:
					wantAPIError[*types.AccessDeniedException](t, err)
				}
				if out != nil {
					t.Errorf("%s with a %s token: a token was returned", tc.workload, tc.idp)
				}
			}
		})
	})
}

// TestAuthorizerRemovedFromConfig: a workload identity names inbound
// authorizers by name, and the configuration may later drop one (the
// control plane validates names only when the workload is written). A
// valid token from an authorizer that is still configured and allowed
// must still be accepted, and a workload left with no configured
// authorizer must refuse tokens with a typed client error, not a 500
// (which the SDKs retry, and which tells the caller nothing).
func TestAuthorizerRemovedFromConfig(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		corp, partner := inboundtest.NewIDP(t), inboundtest.NewIDP(t)
		both := []config.InboundAuthorizerFile{authorizerFile(corp.Config("corp")), authorizerFile(partner.Config("partner"))}
		s1 := behalftest.Start(t, b, behalftest.Options{Edit: func(f *config.File) { f.InboundAuthorizers = both }})
		createWorkload(t, s1, "agent-both", map[string]any{"allowedInboundAuthorizers": []string{"corp", "partner"}})
		createWorkload(t, s1, "agent-partner", map[string]any{"allowedInboundAuthorizers": []string{"partner"}})
		p := createPrincipal(t, s1, "agent-both", "agent-partner")
		s1.Stop()

		s2 := behalftest.Start(t, b, behalftest.Options{DataDir: s1.Config.DataDir, DSN: s1.Config.Storage, Edit: func(f *config.File) {
			f.InboundAuthorizers = both[:1] // partner removed
		}})
		rt := p.data(s2)
		now := time.Now()

		_, err := rt.GetWorkloadAccessTokenForJWT(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
			WorkloadName: aws.String("agent-both"), UserToken: aws.String(corp.Sign(corp.ValidClaims(now))),
		})
		if err != nil {
			t.Errorf("a valid token of a configured, allowed authorizer: %v", err)
		}
		out, err := rt.GetWorkloadAccessTokenForJWT(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
			WorkloadName: aws.String("agent-partner"), UserToken: aws.String(partner.Sign(partner.ValidClaims(now))),
		})
		if out != nil {
			t.Error("a token was minted through a removed authorizer")
		}
		wantAPIError[*types.AccessDeniedException](t, err)
	})
}

// TestCrossAccess runs the cross-access attempts of issue 3 against one
// world: W1 (allowed api-key, and dex-m2m with scope profile only) and W2
// (allowed api-key-2); P1 and P3 are granted W1, P2 is granted W2.
func TestCrossAccess(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		w := newWorld(t, b, worldOptions{w1Policy: map[string]any{
			"allowedInboundAuthorizers":  []string{dexAuthorizer},
			"allowedCredentialProviders": grants(apiKeyProvider, m2mProvider+"=profile"),
		}})
		s := w.s
		const apiKey2, apiKey2Value = "api-key-2", "sk-live-behalf-TEST-second-key-fedcba9876543210"
		createAPIKeyProvider(t, s, apiKey2, apiKey2Value)
		createWorkload(t, s, workloadW2, map[string]any{"allowedCredentialProviders": grants(apiKey2)})
		createWorkload(t, s, "agent-w3", map[string]any{"allowedCredentialProviders": grants()})
		p1, p2, p3 := w.runtime, createPrincipal(t, s, workloadW2), createPrincipal(t, s, workloadW1)
		rt1, rt2, rt3 := w.rt, p2.data(s), p3.data(s)
		tokW1 := mintForUser(t, rt1, workloadW1, "alice")

		// refused asserts err is T and that no credential came back.
		type refusal func(t *testing.T, err error)
		denied := func(t *testing.T, err error) { t.Helper(); wantAPIError[*types.AccessDeniedException](t, err) }
		unauthorized := func(t *testing.T, err error) { t.Helper(); wantAPIError[*types.UnauthorizedException](t, err) }
		apiKeyRefused := func(t *testing.T, c *bedrockagentcore.Client, token, provider string, want refusal) {
			t.Helper()
			out, err := getAPIKey(ctx(t), c, token, provider)
			want(t, err)
			if out != nil {
				t.Errorf("an API key was returned: %q", aws.ToString(out.ApiKey))
			}
		}

		t.Run("principal granted W2 presents W1's token", func(t *testing.T) {
			apiKeyRefused(t, rt2, tokW1, apiKeyProvider, denied)
			apiKeyRefused(t, rt2, tokW1, apiKey2, denied)
			out, err := getM2M(ctx(t), rt2, tokW1, m2mProvider, "profile")
			denied(t, err)
			if out != nil {
				t.Error("an OAuth2 token was returned")
			}
		})

		t.Run("principal asks for a workload it is not granted", func(t *testing.T) {
			_, err := rt2.GetWorkloadAccessToken(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String(workloadW1)})
			denied(t, err)
			_, err = rt2.GetWorkloadAccessTokenForUserId(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenForUserIdInput{
				WorkloadName: aws.String(workloadW1), UserId: aws.String("alice")})
			denied(t, err)
			_, err = rt2.GetWorkloadAccessTokenForJWT(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenForJWTInput{
				WorkloadName: aws.String(workloadW1), UserToken: aws.String(w.dex.PasswordLogin(t, userClientID, userClientSecret).IDToken)})
			denied(t, err)
			// Not granted and not existing look the same.
			_, err = rt2.GetWorkloadAccessToken(ctx(t), &bedrockagentcore.GetWorkloadAccessTokenInput{WorkloadName: aws.String("agent-nope")})
			denied(t, err)
		})

		t.Run("provider outside the workload's allow-list", func(t *testing.T) {
			apiKeyRefused(t, rt1, tokW1, apiKey2, denied)            // W2's provider
			apiKeyRefused(t, rt1, tokW1, "no-such-provider", denied) // existence is not revealed
			apiKeyRefused(t, rt2, mintPlain(t, rt2, workloadW2), apiKeyProvider, denied)
			// An empty allow-list allows nothing.
			admin := s.Data()
			apiKeyRefused(t, admin, mintPlain(t, admin, "agent-w3"), apiKeyProvider, denied)
			// The allowed one works.
			if out, err := getAPIKey(ctx(t), rt1, tokW1, apiKeyProvider); err != nil || aws.ToString(out.ApiKey) != apiKeyValue {
				t.Errorf("allowed provider: %v", err)
			}
		})

		t.Run("scope outside the provider's allowed scopes", func(t *testing.T) {
			before := w.dex.TokenRequests("client_credentials")
			for _, scopes := range [][]string{{"email"}, {"profile", "email"}, {"openid"}} {
				out, err := getM2M(ctx(t), rt1, tokW1, m2mProvider, scopes...)
				ade := wantAPIError[*types.AccessDeniedException](t, err)
				if out != nil || !strings.Contains(aws.ToString(ade.Message), "scope") {
					t.Errorf("scopes %v: %v", scopes, err)
				}
			}
			if w.dex.TokenRequests("client_credentials") != before {
				t.Error("a refused scope reached the token endpoint")
			}
			if _, err := getM2M(ctx(t), rt1, tokW1, m2mProvider, "profile"); err != nil {
				t.Errorf("allowed scope: %v", err)
			}
		})

		t.Run("no scope requested under a scope-limited grant", func(t *testing.T) {
			// W1 may use dex-m2m with scope profile only. A request with no
			// scopes must not escape that: without a scope parameter the
			// authorization server applies its default scopes for the client
			// (RFC 6749 §3.3), which the grant does not bound. Either refuse,
			// or ask for scopes within the grant.
			forms := make(chan url.Values, 10)
			w.dex.SetTokenFault(func(_ http.ResponseWriter, r *http.Request) bool {
				r.ParseForm()
				forms <- r.PostForm
				return false
			})
			defer w.dex.SetTokenFault(nil)
			out, err := getM2M(ctx(t), rt1, mintForUser(t, rt1, workloadW1, "carol"), m2mProvider)
			var form url.Values
			select {
			case form = <-forms:
			default:
			}
			var ade *types.AccessDeniedException
			switch {
			case errors.As(err, &ade):
				if out != nil {
					t.Error("a token was returned")
				}
			case err != nil:
				t.Fatalf("got %T %v, want AccessDeniedException or a token for scope profile", err, err)
			case form == nil:
				t.Errorf("a token was returned without a token request within the grant")
			case form.Get("scope") != "profile":
				t.Errorf("the token was requested with scope %q; the grant allows only profile", form.Get("scope"))
			}
		})

		t.Run("user A's token does not reach user B", func(t *testing.T) {
			// User-bound credentials arrive with USER_FEDERATION (next
			// issue). Today: a token for alice carries alice, it cannot be
			// altered into bob's, and the audit names alice.
			tokA, tokB := mintForUser(t, rt1, workloadW1, "alice"), mintForUser(t, rt1, workloadW1, "bob")
			if a, b := openWAT(t, s, tokA), openWAT(t, s, tokB); a.User != "id:alice" || b.User != "id:bob" {
				t.Fatalf("users %q and %q", a.User, b.User)
			}
			for user, tok := range map[string]string{"id:alice": tokA, "id:bob": tokB} {
				out, err := getAPIKey(ctx(t), rt1, tok, apiKeyProvider)
				if err != nil {
					t.Fatal(err)
				}
				if rec := auditByRequest(t, s, requestIDOf(out.ResultMetadata, nil)); rec.User != user {
					t.Errorf("audit names %q for %s's token", rec.User, user)
				}
			}
			// Splices of alice's and bob's tokens open as neither.
			a, b := strings.Split(tokA, "."), strings.Split(tokB, ".")
			for name, parts := range map[string][]string{
				"alice's header and IV, bob's ciphertext and tag": {a[0], a[1], a[2], b[3], b[4]},
				"alice's token with bob's ciphertext":             {a[0], a[1], a[2], b[3], a[4]},
				"bob's token with alice's tag":                    {b[0], b[1], b[2], b[3], a[4]},
				"alice's header on bob's token":                   {a[0], b[1], b[2], b[3], b[4]},
			} {
				if name == "alice's header on bob's token" && a[0] == b[0] {
					continue // the same key and header: nothing spliced
				}
				t.Run(name, func(t *testing.T) { apiKeyRefused(t, rt1, strings.Join(parts, "."), apiKeyProvider, unauthorized) })
			}
			// A caller-asserted user id that spells a JWT user's key stays a
			// user id.
			jwtUser := wat.UserFromJWT(w.dex.Issuer, "alice")
			if got := openWAT(t, s, mintForUser(t, rt1, workloadW1, jwtUser)).User; got == jwtUser {
				t.Errorf("userId %q became the JWT user %q", jwtUser, got)
			}
			recs, _ := listAudit(t, s, map[string]any{"user": "id:alice"})
			for _, r := range recs {
				if r.User != "id:alice" {
					t.Errorf("audit filter user=id:alice returned %+v", r)
				}
			}
		})

		t.Run("tampered token", func(t *testing.T) {
			good := mintForUser(t, rt1, workloadW1, "alice")
			parts := strings.Split(good, ".")
			flip := func(seg int) string {
				p := append([]string(nil), parts...)
				b := []byte(p[seg])
				i := len(b) / 2 // a middle character: all six of its bits count
				b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
				p[seg] = string(b)
				return strings.Join(p, ".")
			}
			header := func(h map[string]any) string {
				raw, _ := json.Marshal(h)
				p := append([]string(nil), parts...)
				p[0] = base64.RawURLEncoding.EncodeToString(raw)
				return strings.Join(p, ".")
			}
			var hdr map[string]any
			raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
			if err := json.Unmarshal(raw, &hdr); err != nil || hdr["alg"] != "dir" || hdr["enc"] != "A256GCM" {
				t.Fatalf("header %s", raw)
			}
			with := func(k string, v any) map[string]any {
				h := map[string]any{}
				for kk, vv := range hdr {
					h[kk] = vv
				}
				h[k] = v
				return h
			}

			// The tag is 16 bytes: 22 base64url characters, the last of
			// which carries 2 bits of the tag and 4 zero bits. Setting one
			// of those leaves the bytes as they were but makes another
			// string, which a strict decoder refuses (RFC 4648 §3.5).
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			tagLast := strings.IndexByte(alphabet, parts[4][len(parts[4])-1])
			nonCanonical := strings.Join(parts[:4], ".") + "." + parts[4][:len(parts[4])-1] + alphabet[tagLast^1:tagLast^1+1]

			other := behalftest.Start(t, b, behalftest.Options{})
			createWorkload(t, other, workloadW1, nil)
			foreign := mintForUser(t, other.Data(), workloadW1, "alice")

			for name, token := range map[string]string{
				"header flipped":            flip(0),
				"IV flipped":                flip(2),
				"ciphertext flipped":        flip(3),
				"tag flipped":               flip(4),
				"encrypted key added":       strings.Join([]string{parts[0], "AAAAAAAAAAAAAAAAAAAAAA", parts[2], parts[3], parts[4]}, "."),
				"truncated":                 good[:len(good)-6],
				"extra segment":             good + ".AAAA",
				"IV and tag swapped":        strings.Join([]string{parts[0], parts[1], parts[4], parts[3], parts[2]}, "."),
				"header enc downgraded":     header(with("enc", "A128GCM")),
				"header alg none":           header(with("alg", "none")),
				"header kid of another key": header(with("kid", "0190f1e4-0000-7000-8000-000000000000")),
				"header typ changed":        header(with("typ", "JWT")),
				"trailing space":            good + " ",
				"tag's last character flipped in its unused bits": nonCanonical,
				"garbage":                       "a.b.c.d.e",
				"a JWS, not a JWE":              w.dex.PasswordLogin(t, userClientID, userClientSecret).IDToken,
				"another behalf server's token": foreign,
			} {
				t.Run(name, func(t *testing.T) {
					out, err := getAPIKey(ctx(t), rt1, token, apiKeyProvider)
					ue := wantAPIError[*types.UnauthorizedException](t, err)
					if out != nil || !strings.Contains(aws.ToString(ue.Message), "not valid") {
						t.Errorf("message %q", aws.ToString(ue.Message))
					}
				})
			}
			if _, err := getAPIKey(ctx(t), rt1, good, apiKeyProvider); err != nil {
				t.Errorf("the untampered token: %v", err)
			}
		})

		t.Run("expired token", func(t *testing.T) {
			// Minted by the production wat package with the server's own key
			// ring, its clock set back 16 minutes: the token expired a
			// minute ago. (The black-box expiry, waiting for a short user
			// JWT to lapse, is TestE2EWATNeverOutlivesUserJWT.)
			w1, err := s.Server.Store().GetWorkloadIdentity(ctx(t), workloadW1)
			if err != nil {
				t.Fatal(err)
			}
			minter, err := s.Server.Store().GetPrincipal(ctx(t), p1.ID)
			if err != nil {
				t.Fatal(err)
			}
			claims := wat.Claims{Workload: workloadW1, WorkloadVersion: w1.CreatedAt.UnixMicro(), User: "id:alice", Principal: p1.ID,
				PrincipalVersion: minter.CreatedAt.UnixMicro()}
			past, _, err := watIssuer(t, s, func() time.Time { return time.Now().Add(-16 * time.Minute) }).Mint(claims, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			out, err := getAPIKey(ctx(t), rt1, past, apiKeyProvider)
			ue := wantAPIError[*types.UnauthorizedException](t, err)
			if out != nil || !strings.Contains(aws.ToString(ue.Message), "expired") {
				t.Errorf("message %q", aws.ToString(ue.Message))
			}
			// The same minting with the right clock is accepted, so the
			// refusal above is the expiry alone.
			now, _, err := watIssuer(t, s, nil).Mint(claims, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := getAPIKey(ctx(t), rt1, now, apiKeyProvider); err != nil {
				t.Errorf("a token minted offline now: %v", err)
			}
		})

		t.Run("control plane refused to a runtime principal", func(t *testing.T) {
			c := s.ControlAs(p1.ID, p1.Secret)
			cx := ctx(t)
			for name, call := range map[string]func() error{
				"ListWorkloadIdentities": func() error {
					_, err := c.ListWorkloadIdentities(cx, &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{})
					return err
				},
				"CreateWorkloadIdentity": func() error {
					_, err := c.CreateWorkloadIdentity(cx, &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("agent-evil")})
					return err
				},
				"UpdateWorkloadIdentity": func() error {
					_, err := c.UpdateWorkloadIdentity(cx, &bedrockagentcorecontrol.UpdateWorkloadIdentityInput{Name: aws.String(workloadW1)})
					return err
				},
				"GetApiKeyCredentialProvider": func() error {
					_, err := c.GetApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.GetApiKeyCredentialProviderInput{Name: aws.String(apiKeyProvider)})
					return err
				},
				"UpdateOauth2CredentialProvider": func() error {
					_, err := c.UpdateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
						Name: aws.String(m2mProvider), CredentialProviderVendor: ctltypes.CredentialProviderVendorTypeCustomOauth2,
						Oauth2ProviderConfigInput: dexProviderConfig(w.dex, "attacker-secret-0123456789"),
					})
					return err
				},
				"GetTokenVault": func() error {
					_, err := c.GetTokenVault(cx, &bedrockagentcorecontrol.GetTokenVaultInput{})
					return err
				},
			} {
				if err := call(); !isControlAccessDenied(err) {
					t.Errorf("%s: %T %v, want AccessDeniedException", name, err, err)
				}
			}
			for path, body := range map[string]string{
				"/behalf/ListAuditRecords": `{}`,
				"/behalf/VerifyAuditLog":   `{}`,
				"/behalf/ListPrincipals":   `{}`,
				"/behalf/CreatePrincipal":  `{"role":"admin"}`,
				"/behalf/UpdatePrincipal":  `{"accessKeyId":"` + p1.ID + `","workloads":["*"]}`,
				"/behalf/CreateVaultKey":   `{}`,
			} {
				res := s.Do(t, behalftest.Raw{Path: path, Body: []byte(body), KeyID: p1.ID, Secret: p1.Secret})
				if res.Status != http.StatusForbidden || res.ErrType != "AccessDeniedException" {
					t.Errorf("%s: %d %s", path, res.Status, res.Body)
				}
			}
			// P1 is still granted W1 only.
			apiKeyRefused(t, rt1, mintPlain(t, rt2, workloadW2), apiKey2, denied)
		})

		t.Run("token of a deleted workload identity", func(t *testing.T) {
			createWorkload(t, s, "agent-gone", nil)
			admin := s.Data()
			tok := mintForUser(t, admin, "agent-gone", "alice")
			if _, err := s.Control().DeleteWorkloadIdentity(ctx(t), &bedrockagentcorecontrol.DeleteWorkloadIdentityInput{Name: aws.String("agent-gone")}); err != nil {
				t.Fatal(err)
			}
			apiKeyRefused(t, admin, tok, apiKeyProvider, denied)
		})

		// Last: these change P1.
		t.Run("token of a principal whose grant was revoked", func(t *testing.T) {
			tok := mintForUser(t, rt1, workloadW1, "alice")
			if _, err := getAPIKey(ctx(t), rt3, tok, apiKeyProvider); err != nil {
				t.Fatalf("P3, granted W1, presenting P1's token: %v", err)
			}
			grant(t, s, p1, workloadW2)
			apiKeyRefused(t, rt3, tok, apiKeyProvider, denied)
			apiKeyRefused(t, rt1, tok, apiKeyProvider, denied)
			grant(t, s, p1, workloadW1)
			if _, err := getAPIKey(ctx(t), rt3, tok, apiKeyProvider); err != nil {
				t.Errorf("after the grant is restored: %v", err)
			}
		})

		t.Run("token of a deleted principal", func(t *testing.T) {
			tok := mintForUser(t, rt1, workloadW1, "alice")
			deletePrincipal(t, s, p1)
			apiKeyRefused(t, rt3, tok, apiKeyProvider, denied)
			out, err := getM2M(ctx(t), rt3, tok, m2mProvider, "profile")
			denied(t, err)
			if out != nil {
				t.Error("an OAuth2 token was returned")
			}
			// And P1's own key is dead.
			_, err = getAPIKey(ctx(t), rt1, tok, apiKeyProvider)
			unauthorized(t, err)
		})
	})
}

func isControlAccessDenied(err error) bool {
	var ade *ctltypes.AccessDeniedException
	return errors.As(err, &ade)
}

// A token does not outlive its workload identity: deleting the identity
// and creating one of the same name leaves old tokens refused.
func TestTokenDoesNotOutliveWorkloadIncarnation(t *testing.T) {
	w := newWorld(t, behalftest.Backends[0], worldOptions{})
	tok := mintForUser(t, w.rt, workloadW1, "alice")
	if _, err := getAPIKey(ctx(t), w.rt, tok, apiKeyProvider); err != nil {
		t.Fatal(err)
	}
	c := w.s.Control()
	if _, err := c.DeleteWorkloadIdentity(ctx(t), &bedrockagentcorecontrol.DeleteWorkloadIdentityInput{Name: aws.String(workloadW1)}); err != nil {
		t.Fatal(err)
	}
	createWorkload(t, w.s, workloadW1, map[string]any{"allowedCredentialProviders": grants(apiKeyProvider)})
	_, err := getAPIKey(ctx(t), w.rt, tok, apiKeyProvider)
	ade := wantAPIError[*types.AccessDeniedException](t, err)
	if !strings.Contains(aws.ToString(ade.Message), "deleted and created again") {
		t.Fatalf("message %q", aws.ToString(ade.Message))
	}
	if _, err := getAPIKey(ctx(t), w.rt, mintForUser(t, w.rt, workloadW1, "alice"), apiKeyProvider); err != nil {
		t.Fatalf("a token of the new incarnation: %v", err)
	}
}
