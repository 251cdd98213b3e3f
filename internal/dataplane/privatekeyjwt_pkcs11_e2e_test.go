//go:build cgo

package dataplane_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/softhsm"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/vault/pkcs11"
)

// TestE2EPrivateKeyJWTPKCS11: on SQLite and PostgreSQL, a PRIVATE_KEY_JWT
// provider whose key is a real PKCS#11 token's (SoftHSM2), named by its
// RFC 7512 URI, vends M2M tokens at the dev IdP with ES256 and PS256
// assertions that the IdP verifies with the JWK set behalf publishes.
func TestE2EPrivateKeyJWTPKCS11(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		for _, tc := range []struct {
			alg  ctltypes.SigningAlgorithm
			kind pkcs11.SigningKeyType
		}{{ctltypes.SigningAlgorithmEs256, pkcs11.ECDSAP256}, {ctltypes.SigningAlgorithmPs256, pkcs11.RSA2048}} {
			t.Run(string(tc.alg), func(t *testing.T) {
				token, err := pkcs11.New(softhsm.New(t, "behalf").Config)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = token.Close() }) // before the token's configuration goes
				keyURI, err := token.CreateKeyPair(context.Background(), "agent-jwt", tc.kind)
				if err != nil {
					t.Fatal(err)
				}
				key, err := token.Signer(context.Background(), keyURI)
				if err != nil {
					t.Fatal(err)
				}
				s := behalftest.Start(t, b, behalftest.Options{KeyBackends: []vault.Backend{token}})
				jwksURL := s.URL + "/identities/oauth2/jwks/idp-jwt"
				idp := startRecordingIDP(t, devidp.Options{Clients: []devidp.Client{{ID: "agent-jwt", JWKSURI: jwksURL}}, HTTP: &http.Client{Timeout: 5 * time.Second}})
				c, data := s.Control(), s.Data()
				if _, err := c.CreateWorkloadIdentity(ctx(t), &bedrockagentcorecontrol.CreateWorkloadIdentityInput{Name: aws.String("agent-w")}); err != nil {
					t.Fatal(err)
				}
				createJWTProvider(t, c, idp.Issuer(), keyURI, tc.alg)
				m2m, err := getM2M(ctx(t), data, mintPlain(t, data, "agent-w"), "idp-jwt")
				if err != nil {
					t.Fatal(err)
				}
				if claims := unverifiedClaims(t, aws.ToString(m2m.AccessToken)); claims["sub"] != "agent-jwt" {
					t.Fatalf("M2M token claims %v", claims)
				}
				checkAssertion(t, idp.last(t, "client_credentials"), jwksURL, idp.Issuer(), jose.SignatureAlgorithm(tc.alg), key.Public())
			})
		}
	})
}
