package control_test

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/localkms"
)

// pkjInput is a custom provider's configuration at idp with
// clientAuthenticationMethod method and privateKeyJwtConfig k.
func pkjInput(idp string, method types.ClientAuthenticationMethodType, k *types.PrivateKeyJwtConfig, secret *string) *types.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig {
	return &types.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: types.CustomOauth2ProviderConfigInput{
		ClientId: aws.String("agent-jwt"), ClientSecret: secret, ClientAuthenticationMethod: method, PrivateKeyJwtConfig: k,
		OauthDiscovery: &types.Oauth2DiscoveryMemberDiscoveryUrl{Value: idp + "/.well-known/openid-configuration"}}}
}

func kmsKey(id string) types.PrivateKeySource {
	return &types.PrivateKeySourceMemberKmsKeySource{Value: types.KmsKeySourceType{KmsKeyArn: aws.String(id)}}
}

// customOutput is the custom member of an output union.
func customOutput(t *testing.T, out types.Oauth2ProviderConfigOutput) types.CustomOauth2ProviderConfigOutput {
	t.Helper()
	m, ok := out.(*types.Oauth2ProviderConfigOutputMemberCustomOauth2ProviderConfig)
	if !ok {
		t.Fatalf("output member %T", out)
	}
	return m.Value
}

// providerJWKS fetches a provider's published JWK set.
func providerJWKS(t *testing.T, url string) (int, jose.JSONWebKeySet, http.Header) {
	t.Helper()
	res, err := http.Get(url) //nolint:gosec // G107: the test server's URL
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode, set, res.Header
}

// jwksURLOf reads the jwksUrl extension member of GetOauth2CredentialProvider.
func jwksURLOf(t *testing.T, s *behalftest.Server, name string) string {
	t.Helper()
	res := s.Do(t, behalftest.Raw{Path: "/identities/GetOauth2CredentialProvider", Body: []byte(`{"name":"` + name + `"}`)})
	var out struct {
		JWKSURL string `json:"jwksUrl"`
	}
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &out) != nil {
		t.Fatalf("GetOauth2CredentialProvider %s: %d %s", name, res.Status, res.Body)
	}
	return out.JWKSURL
}

// Keys of local-kms the tests use, by spec.
const (
	ecKey        = "ECC_NIST_P256"
	rsaKey       = "RSA_2048"
	p384Key      = "ECC_NIST_P384"
	symmetricKey = "SYMMETRIC_DEFAULT"
	disabledKey  = "disabled ECC_NIST_P256"
)

// TestPrivateKeyJWTProviders: on SQLite and PostgreSQL, through the
// official SDK, a custom provider authenticates with PRIVATE_KEY_JWT and a
// key AWS KMS holds (local-kms): Create, Get and Update echo
// privateKeyJwtConfig; the key's public half is published at the jwksUrl
// the output names, under its RFC 7638 thumbprint, and served from the
// cache while KMS is down; every invalid configuration is a
// ValidationException naming its member, and a key KMS cannot use now (it
// is down, or the key disabled) a 502 naming the key.
func TestPrivateKeyJWTProviders(t *testing.T) {
	lk := localkms.Start(t, localkms.Options{})
	localkms.Env(t)
	key := map[string]string{}
	for _, spec := range []kmstypes.KeySpec{kmstypes.KeySpecEccNistP256, kmstypes.KeySpecRsa2048, kmstypes.KeySpecEccNistP384} {
		key[string(spec)] = lk.CreateKey(t.Context(), spec, kmstypes.KeyUsageTypeSignVerify)
	}
	key[symmetricKey] = lk.CreateSymmetricKey(t.Context())
	key[disabledKey] = lk.CreateKey(t.Context(), kmstypes.KeySpecEccNistP256, kmstypes.KeyUsageTypeSignVerify)
	if _, err := lk.Client().DisableKey(t.Context(), &kms.DisableKeyInput{KeyId: aws.String(key[disabledKey])}); err != nil {
		t.Fatal(err)
	}
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{Edit: func(f *config.File) {
			f.Vault.AWSKMS = &config.AWSKMSFile{Region: localkms.Region, Endpoint: lk.URL}
		}})
		c := s.Control()
		idp := discoveryServer(t, nil)

		es256 := &types.PrivateKeyJwtConfig{PrivateKeySource: kmsKey(key[ecKey]), SigningAlgorithm: types.SigningAlgorithmEs256,
			AdditionalHeaderClaims: map[string]string{"x5t#S256": "thumb"}, AdditionalPayloadClaims: map[string]string{"tenant": "t-1"}}
		created, err := c.CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("jwt"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: pkjInput(idp.URL, types.ClientAuthenticationMethodTypePrivateKeyJwt, es256, nil),
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.GetOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String("jwt")})
		if err != nil {
			t.Fatal(err)
		}
		for name, out := range map[string]types.Oauth2ProviderConfigOutput{"Create": created.Oauth2ProviderConfigOutput, "Get": got.Oauth2ProviderConfigOutput} {
			m := customOutput(t, out)
			k := m.PrivateKeyJwtConfig
			src, _ := k.PrivateKeySource.(*types.PrivateKeySourceMemberKmsKeySource)
			if m.ClientAuthenticationMethod != types.ClientAuthenticationMethodTypePrivateKeyJwt || k == nil || src == nil ||
				aws.ToString(src.Value.KmsKeyArn) != key[ecKey] || k.SigningAlgorithm != types.SigningAlgorithmEs256 ||
				k.AdditionalHeaderClaims["x5t#S256"] != "thumb" || k.AdditionalPayloadClaims["tenant"] != "t-1" {
				t.Errorf("%s echoed %+v", name, m)
			}
		}

		// The JWK set: the key's public half under its thumbprint.
		jwksURL := jwksURLOf(t, s, "jwt")
		if jwksURL != s.URL+"/identities/oauth2/jwks/jwt" {
			t.Fatalf("jwksUrl %q", jwksURL)
		}
		status, set, h := providerJWKS(t, jwksURL)
		if status != http.StatusOK || len(set.Keys) != 1 || h.Get("Content-Type") != "application/jwk-set+json" || !strings.Contains(h.Get("Cache-Control"), "max-age=") {
			t.Fatalf("JWKS: %d %+v %v", status, set, h)
		}
		jwk := set.Keys[0]
		want := jose.JSONWebKey{Key: lk.PublicKey(t.Context(), key[ecKey])}
		tp, _ := want.Thumbprint(crypto.SHA256)
		if !jwk.IsPublic() || jwk.Algorithm != "ES256" || jwk.Use != "sig" || !jwk.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(want.Key) {
			t.Errorf("JWK %+v", jwk)
		}
		if jwk.KeyID != base64.RawURLEncoding.EncodeToString(tp) {
			t.Errorf("kid %q is not the key's RFC 7638 thumbprint", jwk.KeyID)
		}
		// Cached: with KMS down the set is still served; a creation is a
		// 502 naming the key, as is one with a disabled key.
		lk.Stop()
		if status, _, _ := providerJWKS(t, jwksURL); status != http.StatusOK {
			t.Errorf("JWKS with KMS down: %d", status)
		}
		wantBadGateway(t, c, idp.URL, es256, key[ecKey])
		lk.Restart()
		disabled := &types.PrivateKeyJwtConfig{PrivateKeySource: kmsKey(key[disabledKey]), SigningAlgorithm: types.SigningAlgorithmEs256}
		wantBadGateway(t, c, idp.URL, disabled, "Disabled")

		// privateKeyJwtConfig alone means PRIVATE_KEY_JWT; RSA keys sign
		// RS256 and PS256.
		for name, alg := range map[string]types.SigningAlgorithm{"rs": types.SigningAlgorithmRs256, "ps": types.SigningAlgorithmPs256} {
			out, err := c.CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
				Name: aws.String(name), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
				Oauth2ProviderConfigInput: pkjInput(idp.URL, "", &types.PrivateKeyJwtConfig{PrivateKeySource: kmsKey(key[rsaKey]), SigningAlgorithm: alg}, nil),
			})
			if err != nil {
				t.Fatalf("%s: %v", alg, err)
			}
			if m := customOutput(t, out.Oauth2ProviderConfigOutput); m.ClientAuthenticationMethod != types.ClientAuthenticationMethodTypePrivateKeyJwt {
				t.Errorf("%s: method %q", alg, m.ClientAuthenticationMethod)
			}
		}

		testPrivateKeyJWTRefusals(t, c, idp.URL, key)
		testPrivateKeyJWTUpdates(t, s, idp.URL, key)
	})
}

// testPrivateKeyJWTRefusals: every invalid PRIVATE_KEY_JWT configuration
// is a ValidationException naming its member, and never quotes a claim's
// value (the model marks them sensitive).
func testPrivateKeyJWTRefusals(t *testing.T, c *bedrockagentcorecontrol.Client, idp string, key map[string]string) {
	t.Helper()
	cfg := func(id string, alg types.SigningAlgorithm) *types.PrivateKeyJwtConfig {
		return &types.PrivateKeyJwtConfig{PrivateKeySource: kmsKey(id), SigningAlgorithm: alg}
	}
	ec := key[ecKey]
	withClaims := func(h, p map[string]string) *types.PrivateKeyJwtConfig {
		k := cfg(ec, types.SigningAlgorithmEs256)
		k.AdditionalHeaderClaims, k.AdditionalPayloadClaims = h, p
		return k
	}
	tooMany := map[string]string{}
	for _, n := range strings.Split("a b c d e f g h i j k", " ") {
		tooMany[n] = "v"
	}
	const secretValue = "claim-value-SENSITIVE-0123456789"
	long := strings.Repeat("x", 2049)
	const p = "oauth2ProviderConfigInput.customOauth2ProviderConfig."
	const pk = p + "privateKeyJwtConfig."
	const arn = pk + "privateKeySource.kmsKeySource.kmsKeyArn"
	pkj := types.ClientAuthenticationMethodTypePrivateKeyJwt
	for name, tc := range map[string]struct {
		in    types.Oauth2ProviderConfigInput
		field string
		says  string
	}{
		"no privateKeyJwtConfig":       {pkjInput(idp, pkj, nil, nil), p + "privateKeyJwtConfig", "is required"},
		"no privateKeySource":          {pkjInput(idp, pkj, &types.PrivateKeyJwtConfig{SigningAlgorithm: types.SigningAlgorithmEs256}, nil), pk + "privateKeySource", "is required"},
		"no signingAlgorithm":          {pkjInput(idp, pkj, &types.PrivateKeyJwtConfig{PrivateKeySource: kmsKey(ec)}, nil), pk + "signingAlgorithm", "is required"},
		"unknown signingAlgorithm":     {pkjInput(idp, pkj, cfg(ec, "HS256"), nil), pk + "signingAlgorithm", "must be one of"},
		"a client secret too":          {pkjInput(idp, pkj, cfg(ec, types.SigningAlgorithmEs256), aws.String("s")), p + "clientSecret", "is not used"},
		"config with a secret method":  {pkjInput(idp, types.ClientAuthenticationMethodTypeClientSecretPost, cfg(ec, types.SigningAlgorithmEs256), aws.String("s")), p + "privateKeyJwtConfig", "CLIENT_SECRET_POST"},
		"AWS_IAM_ID_TOKEN_JWT":         {pkjInput(idp, types.ClientAuthenticationMethodTypeAwsIamIdTokenJwt, nil, aws.String("s")), p + "clientAuthenticationMethod", "workload identity JWT"},
		"header alg":                   {pkjInput(idp, pkj, withClaims(map[string]string{"alg": secretValue}, nil), nil), pk + "additionalHeaderClaims.alg", "behalf sets alg"},
		"header typ":                   {pkjInput(idp, pkj, withClaims(map[string]string{"typ": secretValue}, nil), nil), pk + "additionalHeaderClaims.typ", "behalf sets typ"},
		"payload iss":                  {pkjInput(idp, pkj, withClaims(nil, map[string]string{"iss": secretValue}), nil), pk + "additionalPayloadClaims.iss", "behalf sets iss"},
		"payload exp":                  {pkjInput(idp, pkj, withClaims(nil, map[string]string{"exp": secretValue}), nil), pk + "additionalPayloadClaims.exp", "behalf sets exp"},
		"payload nbf":                  {pkjInput(idp, pkj, withClaims(nil, map[string]string{"nbf": secretValue}), nil), pk + "additionalPayloadClaims.nbf", "behalf sets nbf"},
		"11 claims":                    {pkjInput(idp, pkj, withClaims(nil, tooMany), nil), pk + "additionalPayloadClaims", "from 1 to 10"},
		"no claims":                    {pkjInput(idp, pkj, withClaims(map[string]string{}, nil), nil), pk + "additionalHeaderClaims", "from 1 to 10"},
		"claim name":                   {pkjInput(idp, pkj, withClaims(nil, map[string]string{"has space": secretValue}), nil), pk + "additionalPayloadClaims", "claim name"},
		"claim value too long":         {pkjInput(idp, pkj, withClaims(nil, map[string]string{"tenant": long}), nil), pk + "additionalPayloadClaims.tenant", "at most 2048"},
		"not a key ARN":                {pkjInput(idp, pkj, cfg("alias/my-key", types.SigningAlgorithmEs256), nil), arn, "pattern"},
		"a key of another region":      {pkjInput(idp, pkj, cfg("arn:aws:kms:eu-west-3:111122223333:key/00000000-0000-0000-0000-000000000000", types.SigningAlgorithmEs256), nil), arn, "configured key-management backend"},
		"a key KMS does not have":      {pkjInput(idp, pkj, cfg(localkms.KeyARN("00000000-0000-0000-0000-000000000000"), types.SigningAlgorithmEs256), nil), arn, "does not exist"},
		"a PKCS#11 key no backend has": {pkjInput(idp, pkj, cfg("pkcs11:token=behalf;object=agent", types.SigningAlgorithmEs256), nil), arn, "configured key-management backend"},
		"a symmetric key":              {pkjInput(idp, pkj, cfg(key[symmetricKey], types.SigningAlgorithmEs256), nil), arn, "cannot sign"},
		"EC key, RS256":                {pkjInput(idp, pkj, cfg(ec, types.SigningAlgorithmRs256), nil), arn, "signs with ES256, not RS256"},
		"RSA key, ES256":               {pkjInput(idp, pkj, cfg(key[rsaKey], types.SigningAlgorithmEs256), nil), arn, "RS256 or PS256, not ES256"},
		"P-384 key":                    {pkjInput(idp, pkj, cfg(key[p384Key], types.SigningAlgorithmEs256), nil), arn, "P-384"},
	} {
		_, err := c.CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("refused"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2, Oauth2ProviderConfigInput: tc.in,
		})
		var ve *types.ValidationException
		if !errors.As(err, &ve) {
			t.Errorf("%s: %v, want ValidationException", name, err)
			continue
		}
		found := false
		for _, f := range ve.FieldList {
			found = found || (aws.ToString(f.Name) == tc.field && strings.Contains(aws.ToString(f.Message), tc.says))
		}
		if !found {
			t.Errorf("%s: fields %s, want %s %q", name, fieldsOf(ve), tc.field, tc.says)
		}
		if strings.Contains(err.Error(), secretValue) || strings.Contains(err.Error(), long) {
			t.Errorf("%s: the error quotes a claim's value: %v", name, err)
		}
	}
}

func fieldsOf(ve *types.ValidationException) string {
	var b strings.Builder
	for _, f := range ve.FieldList {
		b.WriteString(aws.ToString(f.Name) + ": " + aws.ToString(f.Message) + "; ")
	}
	return b.String()
}

// testPrivateKeyJWTUpdates: an update may keep the stored key and
// algorithm by leaving them out, or move to another key; moving to a
// client secret needs the secret; and a secret provider cannot keep a key
// it never had. The JWK set follows.
func testPrivateKeyJWTUpdates(t *testing.T, s *behalftest.Server, idp string, key map[string]string) {
	t.Helper()
	c := s.Control()
	update := func(in types.Oauth2ProviderConfigInput) (*bedrockagentcorecontrol.UpdateOauth2CredentialProviderOutput, error) {
		return c.UpdateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
			Name: aws.String("jwt"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2, Oauth2ProviderConfigInput: in})
	}
	pkj := types.ClientAuthenticationMethodTypePrivateKeyJwt
	// The method alone keeps the key, the algorithm and the claims.
	out, err := update(pkjInput(idp, pkj, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	k := customOutput(t, out.Oauth2ProviderConfigOutput).PrivateKeyJwtConfig
	if src, _ := k.PrivateKeySource.(*types.PrivateKeySourceMemberKmsKeySource); src == nil || aws.ToString(src.Value.KmsKeyArn) != key[ecKey] ||
		k.SigningAlgorithm != types.SigningAlgorithmEs256 || k.AdditionalPayloadClaims["tenant"] != "t-1" {
		t.Errorf("kept: %+v", k)
	}
	// Another key: the JWK set publishes it, with its algorithm and the
	// kid given.
	out, err = update(pkjInput(idp, pkj, &types.PrivateKeyJwtConfig{PrivateKeySource: kmsKey(key[rsaKey]), SigningAlgorithm: types.SigningAlgorithmPs256,
		AdditionalHeaderClaims: map[string]string{"kid": "idp-assigned"}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if k := customOutput(t, out.Oauth2ProviderConfigOutput).PrivateKeyJwtConfig; k.SigningAlgorithm != types.SigningAlgorithmPs256 || k.AdditionalPayloadClaims != nil {
		t.Errorf("moved: %+v", k)
	}
	jwksURL := jwksURLOf(t, s, "jwt")
	if status, set, _ := providerJWKS(t, jwksURL); status != http.StatusOK || len(set.Keys) != 1 || set.Keys[0].Algorithm != "PS256" || set.Keys[0].KeyID != "idp-assigned" {
		t.Errorf("JWKS after the move: %d %+v", status, set)
	}
	// A secret method needs the secret: none is stored.
	secretPost := pkjInput(idp, types.ClientAuthenticationMethodTypeClientSecretPost, nil, nil)
	_, err = update(secretPost)
	if ve := wantAPIError[*types.ValidationException](t, err); !strings.Contains(fieldsOf(ve), "clientSecret: is required") {
		t.Errorf("to a secret without one: %s", fieldsOf(ve))
	}
	secretPost.Value.ClientSecret = aws.String("now-a-secret")
	out, err = update(secretPost)
	if err != nil {
		t.Fatal(err)
	}
	if m := customOutput(t, out.Oauth2ProviderConfigOutput); m.PrivateKeyJwtConfig != nil || m.ClientAuthenticationMethod != types.ClientAuthenticationMethodTypeClientSecretPost {
		t.Errorf("to a secret: %+v", m)
	}
	if u := jwksURLOf(t, s, "jwt"); u != "" {
		t.Errorf("a secret provider names a JWK set: %s", u)
	}
	if status, _, _ := providerJWKS(t, jwksURL); status != http.StatusNotFound {
		t.Errorf("JWKS of a secret provider: %d", status)
	}
	// Back to a key: nothing stored to keep.
	_, err = update(pkjInput(idp, pkj, nil, nil))
	if ve := wantAPIError[*types.ValidationException](t, err); !strings.Contains(fieldsOf(ve), "privateKeySource: is required") {
		t.Errorf("to a key without one: %s", fieldsOf(ve))
	}
	if status, _, _ := providerJWKS(t, s.URL+"/identities/oauth2/jwks/no-such-provider"); status != http.StatusNotFound {
		t.Errorf("JWKS of no provider: %d", status)
	}
}

// wantBadGateway: creating a provider with k is a 502
// InternalServerException whose message has says.
func wantBadGateway(t *testing.T, c *bedrockagentcorecontrol.Client, idp string, k *types.PrivateKeyJwtConfig, says string) {
	t.Helper()
	_, err := c.CreateOauth2CredentialProvider(ctx(t), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
		Name: aws.String("jwt-unusable"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
		Oauth2ProviderConfigInput: pkjInput(idp, types.ClientAuthenticationMethodTypePrivateKeyJwt, k, nil),
	})
	ise := wantAPIError[*types.InternalServerException](t, err)
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadGateway || !strings.Contains(ise.ErrorMessage(), says) {
		t.Errorf("want a 502 saying %q: %v", says, err)
	}
}
