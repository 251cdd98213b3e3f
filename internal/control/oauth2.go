package control

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/oauthvendor"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// CallbackPath is the route the OAuth2 providers redirect browsers to; the
// provider id follows it.
const CallbackPath = "/identities/oauth2/callback/"

// JWKSPath is where the public key of each PRIVATE_KEY_JWT provider is
// published, unauthenticated, as a JWK set (RFC 7517 §5) that its
// authorization server can fetch as the client's jwks_uri; the provider's
// name follows it. It names the provider rather than its id so that the
// URL can be registered at the server before the provider is created;
// a provider created again under the same name publishes its new key.
const JWKSPath = "/identities/oauth2/jwks/"

// OAuth2ClientSecretBinding binds a client secret to its provider record.
func OAuth2ClientSecretBinding(providerID string) vault.Binding {
	return vault.ClientSecretBinding(providerID)
}

// configPath is the request member every provider configuration is in.
const configPath = "oauth2ProviderConfigInput."

var discoveryURLPattern = wire.Pattern(`.+/\.well-known/(openid-configuration|oauth-authorization-server)`)

// vendorConfigInput is the shape shared by the named vendors' members.
type vendorConfigInput struct {
	ClientID           string          `json:"clientId"`
	ClientSecret       *string         `json:"clientSecret,omitempty"`
	ClientSecretConfig *secretRefInput `json:"clientSecretConfig,omitempty"`
	ClientSecretSource *string         `json:"clientSecretSource,omitempty"`
	// TenantID: microsoftOauth2ProviderConfig only.
	TenantID *string `json:"tenantId,omitempty"`
	// Issuer and the endpoints: includedOauth2ProviderConfig only.
	Issuer                *string `json:"issuer,omitempty"`
	AuthorizationEndpoint *string `json:"authorizationEndpoint,omitempty"`
	TokenEndpoint         *string `json:"tokenEndpoint,omitempty"`
}

type customConfigInput struct {
	OAuthDiscovery             *oauthDiscoveryInput `json:"oauthDiscovery"`
	ClientID                   *string              `json:"clientId,omitempty"`
	ClientSecret               *string              `json:"clientSecret,omitempty"`
	ClientSecretConfig         *secretRefInput      `json:"clientSecretConfig,omitempty"`
	ClientSecretSource         *string              `json:"clientSecretSource,omitempty"`
	OnBehalfOf                 *onBehalfOfInput     `json:"onBehalfOfTokenExchangeConfig,omitempty"`
	ClientAuthenticationMethod *string              `json:"clientAuthenticationMethod,omitempty"`
	PrivateKeyJWTConfig        *privateKeyJWTConfig `json:"privateKeyJwtConfig,omitempty"`
	PrivateEndpoint            json.RawMessage      `json:"privateEndpoint,omitempty"`
	PrivateEndpointOverrides   json.RawMessage      `json:"privateEndpointOverrides,omitempty"`
}

// authMethod is the client authentication method the configuration asks
// for: the one named, else PRIVATE_KEY_JWT when privateKeyJwtConfig is
// given ("When specified, the credential provider uses JWT client
// assertions"), else "" for behalf's choice (provider.OAuth2.AuthMethod).
func (cu *customConfigInput) authMethod() string {
	switch {
	case cu.ClientAuthenticationMethod != nil:
		return *cu.ClientAuthenticationMethod
	case cu.PrivateKeyJWTConfig != nil:
		return provider.PrivateKeyJWTAuth
	}
	return ""
}

// privateKeyJwtConfig, in and out: AgentCore's PrivateKeyJwtConfig.
type privateKeyJWTConfig struct {
	PrivateKeySource        *privateKeySource `json:"privateKeySource,omitempty"`
	SigningAlgorithm        *string           `json:"signingAlgorithm,omitempty"`
	AdditionalHeaderClaims  map[string]string `json:"additionalHeaderClaims,omitempty"`
	AdditionalPayloadClaims map[string]string `json:"additionalPayloadClaims,omitempty"`
}

// privateKeySource is the PrivateKeySource union; kmsKeySource its one
// member.
type privateKeySource struct {
	KMSKeySource *kmsKeySource `json:"kmsKeySource,omitempty"`
}

type kmsKeySource struct {
	KMSKeyArn string `json:"kmsKeyArn"`
}

// keyID is the kmsKeyArn given, or "".
func (k *privateKeyJWTConfig) keyID() string {
	if k.PrivateKeySource == nil || k.PrivateKeySource.KMSKeySource == nil {
		return ""
	}
	return k.PrivateKeySource.KMSKeySource.KMSKeyArn
}

var (
	// signingKeyPattern is the model's KmsKeyArn pattern or, a behalf
	// extension, an RFC 7512 PKCS#11 URI: the ids of the key-management
	// backends that hold asymmetric keys.
	signingKeyPattern = wire.Pattern(`arn:aws(|-cn|-us-gov):kms:[a-zA-Z0-9-]*:[0-9]{12}:key/[a-zA-Z0-9-]{36}|pkcs11:\S+`)
	// claimNamePattern is the model's AdditionalClaimName.
	claimNamePattern = wire.Pattern(`[A-Za-z0-9_.:#-]+`)
)

// checkPrivateKeyJWT checks privateKeyJwtConfig at p. Create needs its key
// and algorithm ("On Create: privateKeySource and signingAlgorithm are
// required"); an update may leave either out to keep the stored one.
func checkPrivateKeyJWT(c *wire.Checker, p string, k *privateKeyJWTConfig, onCreate bool) {
	if src := k.PrivateKeySource; src != nil {
		c.OneOf(p+".privateKeySource", src.KMSKeySource != nil)
		if ks := src.KMSKeySource; ks != nil {
			c.String(p+".privateKeySource.kmsKeySource.kmsKeyArn", ks.KMSKeyArn, 1, 2048, signingKeyPattern)
		}
	} else if onCreate {
		c.Failf(p+".privateKeySource", "is required with clientAuthenticationMethod PRIVATE_KEY_JWT")
	}
	if k.SigningAlgorithm != nil {
		c.Enum(p+".signingAlgorithm", *k.SigningAlgorithm, true, oauthclient.SigningAlgorithms...)
	} else if onCreate {
		c.Failf(p+".signingAlgorithm", "is required with clientAuthenticationMethod PRIVATE_KEY_JWT")
	}
	checkClaims(c, p+".additionalHeaderClaims", k.AdditionalHeaderClaims, oauthclient.ReservedHeaderClaims)
	checkClaims(c, p+".additionalPayloadClaims", k.AdditionalPayloadClaims, oauthclient.ReservedPayloadClaims)
}

// checkClaims checks a map of additional claims (the model's
// AdditionalClaims: 1 to 10 entries, names of 1 to 255 characters, values
// of 1 to 2048), none of which may be one behalf sets itself. Values are
// never quoted: the model marks them sensitive.
func checkClaims(c *wire.Checker, name string, claims map[string]string, reserved []string) {
	if claims == nil {
		return
	}
	if len(claims) < 1 || len(claims) > 10 {
		c.Failf(name, "must have from 1 to 10 entries")
		return
	}
	for _, k := range slices.Sorted(maps.Keys(claims)) {
		if len(k) > 255 || !claimNamePattern.MatchString(k) {
			c.Failf(name, "has a claim name that is not 1 to 255 of the characters A-Z a-z 0-9 _ . : # -")
			continue
		}
		if slices.Contains(reserved, k) {
			c.Failf(name+"."+k, "cannot be added: behalf sets %s itself", k)
		}
		c.String(name+"."+k, claims[k], 1, 2048, nil)
	}
}

type oauthDiscoveryInput struct {
	DiscoveryURL *string            `json:"discoveryUrl,omitempty"`
	Metadata     *metadataInputJSON `json:"authorizationServerMetadata,omitempty"`
}

type metadataInputJSON struct {
	Issuer                   string   `json:"issuer"`
	AuthorizationEndpoint    string   `json:"authorizationEndpoint"`
	TokenEndpoint            string   `json:"tokenEndpoint"`
	ResponseTypes            []string `json:"responseTypes,omitempty"`
	TokenEndpointAuthMethods []string `json:"tokenEndpointAuthMethods,omitempty"`
}

type onBehalfOfInput struct {
	GrantType     string `json:"grantType"`
	TokenExchange *struct {
		ActorTokenContent string   `json:"actorTokenContent"`
		ActorTokenScopes  []string `json:"actorTokenScopes,omitempty"`
	} `json:"tokenExchangeGrantTypeConfig,omitempty"`
	AuthenticationConfig *onBehalfOfAuthConfig `json:"onBehalfOfAuthenticationConfig,omitempty"`
}

// onBehalfOfAuthConfig is OnBehalfOfAuthenticationConfig, in and out.
type onBehalfOfAuthConfig struct {
	ClientAuthenticationMethod string `json:"clientAuthenticationMethod"`
}

// oauth2ConfigInput is the Oauth2ProviderConfigInput union.
type oauth2ConfigInput struct {
	Custom     *customConfigInput `json:"customOauth2ProviderConfig,omitempty"`
	Google     *vendorConfigInput `json:"googleOauth2ProviderConfig,omitempty"`
	Github     *vendorConfigInput `json:"githubOauth2ProviderConfig,omitempty"`
	Slack      *vendorConfigInput `json:"slackOauth2ProviderConfig,omitempty"`
	Salesforce *vendorConfigInput `json:"salesforceOauth2ProviderConfig,omitempty"`
	Microsoft  *vendorConfigInput `json:"microsoftOauth2ProviderConfig,omitempty"`
	Atlassian  *vendorConfigInput `json:"atlassianOauth2ProviderConfig,omitempty"`
	Linkedin   *vendorConfigInput `json:"linkedinOauth2ProviderConfig,omitempty"`
	Included   *vendorConfigInput `json:"includedOauth2ProviderConfig,omitempty"`
}

// member returns the one set member's name and its vendor-shaped value.
func (u *oauth2ConfigInput) members() map[string]*vendorConfigInput {
	return map[string]*vendorConfigInput{
		oauthvendor.MemberGoogle: u.Google, oauthvendor.MemberGithub: u.Github, oauthvendor.MemberSlack: u.Slack,
		oauthvendor.MemberSalesforce: u.Salesforce, oauthvendor.MemberMicrosoft: u.Microsoft,
		oauthvendor.MemberAtlassian: u.Atlassian, oauthvendor.MemberLinkedin: u.Linkedin, oauthvendor.MemberIncluded: u.Included,
	}
}

func (u *oauth2ConfigInput) setMember() string {
	if u.Custom != nil {
		return oauthvendor.MemberCustom
	}
	for name, m := range u.members() {
		if m != nil {
			return name
		}
	}
	return ""
}

type oauth2ProviderInput struct {
	Name   string             `json:"name"`
	Vendor string             `json:"credentialProviderVendor"`
	Config *oauth2ConfigInput `json:"oauth2ProviderConfigInput"`
	Tags   map[string]string  `json:"tags,omitempty"`
}

// validate checks the request; update requests carry no tags and may omit
// the client secret to keep the stored one.
func (in *oauth2ProviderInput) validate(c *wire.Checker, secretRequired bool) {
	c.String("name", in.Name, 1, 128, providerNamePattern)
	c.Enum("credentialProviderVendor", in.Vendor, true, oauthvendor.Names()...)
	c.Tags("tags", in.Tags)
	const root = "oauth2ProviderConfigInput"
	if in.Config == nil {
		c.Failf(root, "is required")
		return
	}
	set := []bool{in.Config.Custom != nil}
	for _, m := range in.Config.members() {
		set = append(set, m != nil)
	}
	c.OneOf(root, set...)
	member := in.Config.setMember()
	if v, ok := oauthvendor.Lookup(in.Vendor); ok && member != "" && v.ConfigMember != member {
		c.Failf(root, "vendor %s is configured with %s, not %s", in.Vendor, v.ConfigMember, member)
	}
	if cu := in.Config.Custom; cu != nil {
		checkCustom(c, root+"."+oauthvendor.MemberCustom, cu, secretRequired)
		return
	}
	if member == "" {
		return
	}
	m := in.Config.members()[member]
	p := root + "." + member
	c.String(p+".clientId", m.ClientID, 1, 256, nil)
	clientSecret(p, m.ClientSecret, m.ClientSecretSource, m.ClientSecretConfig).check(c, secretRequired)
	if member != oauthvendor.MemberMicrosoft && m.TenantID != nil {
		c.Failf(p+".tenantId", "is not a member of %s", member)
	}
	c.OptString(p+".tenantId", m.TenantID, 1, 2048, nil)
	if member != oauthvendor.MemberIncluded {
		for name, v := range map[string]*string{"issuer": m.Issuer, "authorizationEndpoint": m.AuthorizationEndpoint, "tokenEndpoint": m.TokenEndpoint} {
			if v != nil {
				c.Failf(p+"."+name, "is not a member of %s", member)
			}
		}
	}
	for name, v := range map[string]*string{"issuer": m.Issuer, "authorizationEndpoint": m.AuthorizationEndpoint, "tokenEndpoint": m.TokenEndpoint} {
		c.OptString(p+"."+name, v, 1, 2048, nil)
	}
}

// clientSecret is a client secret as the configuration member at path
// gives it.
func clientSecret(path string, value, source *string, ref *secretRefInput) secretInput {
	return secretInput{value: value, source: source, ref: ref, members: secretMembers{
		value: path + ".clientSecret", source: path + ".clientSecretSource", config: path + ".clientSecretConfig", maxLen: 2048}}
}

func checkCustom(c *wire.Checker, p string, cu *customConfigInput, secretRequired bool) {
	if cu.ClientID == nil || *cu.ClientID == "" {
		c.Failf(p+".clientId", "is required")
	}
	c.OptString(p+".clientId", cu.ClientID, 1, 256, nil)
	checkClientAuthentication(c, p, cu, secretRequired)
	for name, raw := range map[string]json.RawMessage{"privateEndpoint": cu.PrivateEndpoint, "privateEndpointOverrides": cu.PrivateEndpointOverrides} {
		if len(raw) > 0 {
			c.Failf(p+"."+name, "is not supported by behalf: it names AWS VPC Lattice resources; behalf reaches a provider directly, as its egress policy allows")
		}
	}
	if o := cu.OnBehalfOf; o != nil {
		checkOnBehalfOf(c, p+".onBehalfOfTokenExchangeConfig", o)
	}
	checkDiscovery(c, p+".oauthDiscovery", cu.OAuthDiscovery)
}

// checkClientAuthentication checks how a custom provider's client
// authenticates: with its secret (CLIENT_SECRET_BASIC or _POST, or
// behalf's choice), or with a key (PRIVATE_KEY_JWT), when no secret may be
// given. onCreate requires the secret or the key's configuration.
func checkClientAuthentication(c *wire.Checker, p string, cu *customConfigInput, onCreate bool) {
	if m := cu.ClientAuthenticationMethod; m != nil {
		c.Enum(p+".clientAuthenticationMethod", *m, true,
			provider.ClientSecretBasic, provider.ClientSecretPost, provider.AWSIAMIDTokenJWT, provider.PrivateKeyJWTAuth)
		if *m == provider.AWSIAMIDTokenJWT {
			c.Failf(p+".clientAuthenticationMethod", "AWS_IAM_ID_TOKEN_JWT is not supported by behalf: it authenticates the client with "+
				"a workload identity JWT, which behalf does not issue; use CLIENT_SECRET_BASIC, CLIENT_SECRET_POST or PRIVATE_KEY_JWT")
		}
	}
	method := cu.authMethod()
	if method != provider.PrivateKeyJWTAuth {
		if cu.PrivateKeyJWTConfig != nil {
			c.Failf(p+".privateKeyJwtConfig", "is used only with clientAuthenticationMethod PRIVATE_KEY_JWT, not %s", method)
		}
		clientSecret(p, cu.ClientSecret, cu.ClientSecretSource, cu.ClientSecretConfig).check(c, onCreate)
		return
	}
	if clientSecret(p, cu.ClientSecret, cu.ClientSecretSource, cu.ClientSecretConfig).given() {
		c.Failf(p+".clientSecret", "is not used with clientAuthenticationMethod PRIVATE_KEY_JWT: the client authenticates with its key")
	}
	switch {
	case cu.PrivateKeyJWTConfig != nil:
		checkPrivateKeyJWT(c, p+".privateKeyJwtConfig", cu.PrivateKeyJWTConfig, onCreate)
	case onCreate:
		c.Failf(p+".privateKeyJwtConfig", "is required with clientAuthenticationMethod PRIVATE_KEY_JWT")
	}
}

func checkOnBehalfOf(c *wire.Checker, op string, o *onBehalfOfInput) {
	c.Enum(op+".grantType", o.GrantType, true, provider.GrantTokenExchange, provider.GrantJWTAuthorization)
	if te := o.TokenExchange; te != nil {
		tp := op + ".tokenExchangeGrantTypeConfig"
		if o.GrantType == provider.GrantJWTAuthorization {
			c.Failf(tp, "applies to grantType TOKEN_EXCHANGE only")
		}
		c.Enum(tp+".actorTokenContent", te.ActorTokenContent, true, provider.ActorNone, provider.ActorM2M, provider.ActorAWSIAMIDToken)
		c.Strings(tp+".actorTokenScopes", te.ActorTokenScopes, 0, 50, 1, 128, nil)
		if len(te.ActorTokenScopes) > 0 && te.ActorTokenContent != provider.ActorM2M {
			c.Failf(tp+".actorTokenScopes", "is valid only with actorTokenContent M2M")
		}
	}
	if a := o.AuthenticationConfig; a != nil {
		c.Enum(op+".onBehalfOfAuthenticationConfig.clientAuthenticationMethod", a.ClientAuthenticationMethod, true, provider.OnBehalfOfNoClient)
	}
}

func checkDiscovery(c *wire.Checker, dp string, d *oauthDiscoveryInput) {
	if d == nil {
		c.Failf(dp, "is required")
		return
	}
	c.OneOf(dp, d.DiscoveryURL != nil, d.Metadata != nil)
	c.OptString(dp+".discoveryUrl", d.DiscoveryURL, 1, 2048, discoveryURLPattern)
	if m := d.Metadata; m != nil {
		mp := dp + ".authorizationServerMetadata"
		c.String(mp+".issuer", m.Issuer, 1, 2048, nil)
		c.String(mp+".authorizationEndpoint", m.AuthorizationEndpoint, 1, 2048, nil)
		c.String(mp+".tokenEndpoint", m.TokenEndpoint, 1, 2048, nil)
		c.Strings(mp+".responseTypes", m.ResponseTypes, 0, 10, 1, 64, nil)
		c.Strings(mp+".tokenEndpointAuthMethods", m.TokenEndpointAuthMethods, 0, 2, 1, 64, wire.Pattern(`client_secret_post|client_secret_basic`))
	}
}

func (in *oauth2ProviderInput) Validate(c *wire.Checker) { in.validate(c, true) }

type updateOAuth2ProviderInput struct{ oauth2ProviderInput }

func (in *updateOAuth2ProviderInput) Validate(c *wire.Checker) {
	if len(in.Tags) > 0 {
		c.Failf("tags", "is not a member of UpdateOauth2CredentialProvider; use TagResource")
	}
	in.validate(c, false)
}

// resolve turns a validated request into the stored configuration,
// fetching discovery documents where the endpoints come from one. It
// returns the client secret as given (given() false when it is not).
func (s *Service) resolve(ctx context.Context, in *oauth2ProviderInput) (provider.OAuth2, secretInput, error) {
	v, _ := oauthvendor.Lookup(in.Vendor)
	member := in.Config.setMember()
	cfg := provider.OAuth2{Vendor: v.Name, Member: member}
	var ri oauthvendor.ResolveInput
	var secret secretInput
	if cu := in.Config.Custom; cu != nil {
		ri, secret = customConfig(&cfg, cu)
	} else {
		ri, secret = vendorConfig(&cfg, member, in.Config.members()[member])
	}

	ep, err := v.Resolve(ri)
	if err != nil {
		return provider.OAuth2{}, secret, vendorError(err, member)
	}
	r := provider.Metadata{Issuer: ep.Issuer, AuthorizationEndpoint: ep.AuthorizationEndpoint, TokenEndpoint: ep.TokenEndpoint, RevocationEndpoint: ep.RevocationEndpoint}
	if cfg.Metadata != nil {
		r.ResponseTypesSupported, r.TokenEndpointAuthMethodsSupported = cfg.Metadata.ResponseTypes, cfg.Metadata.TokenEndpointAuthMethods
	}
	// Built-in vendors' endpoints are known; fetch a document only when
	// the configuration points at one or leaves endpoints to it.
	if ep.DiscoveryURL != "" && (ep.NeedsDiscovery() || cfg.DiscoveryURL != "" || (v.TenantScoped && cfg.Issuer != "")) {
		d, err := provider.Discover(telemetry.WithOutbound(ctx, in.Name, telemetry.EndpointDiscovery), s.HTTP, ep.DiscoveryURL)
		if err != nil {
			field := "oauth2ProviderConfigInput." + member + ".oauthDiscovery.discoveryUrl"
			if member != oauthvendor.MemberCustom {
				field = "oauth2ProviderConfigInput." + member + ".issuer"
			}
			return provider.OAuth2{}, secret, wire.Validation(err.Error(), wire.FieldError{Name: field, Message: err.Error()})
		}
		r = mergeDiscovered(r, d)
	}
	if r.TokenEndpoint == "" {
		return provider.OAuth2{}, secret, wire.Validation("the provider has no token endpoint",
			wire.FieldError{Name: "oauth2ProviderConfigInput." + member, Message: "names no token endpoint"})
	}
	cfg.Resolved = r
	return cfg, secret, nil
}

// customConfig fills cfg from a custom provider's configuration and
// returns what its endpoints are resolved from, and its client secret.
func customConfig(cfg *provider.OAuth2, cu *customConfigInput) (ri oauthvendor.ResolveInput, secret secretInput) {
	cfg.ClientID = *cu.ClientID
	secret = clientSecret(configPath+oauthvendor.MemberCustom, cu.ClientSecret, cu.ClientSecretSource, cu.ClientSecretConfig)
	cfg.ClientAuthenticationMethod = cu.authMethod()
	if k := cu.PrivateKeyJWTConfig; k != nil {
		cfg.PrivateKeyJWT = &provider.PrivateKeyJWT{KeyID: k.keyID(), SigningAlgorithm: aws.ToString(k.SigningAlgorithm),
			HeaderClaims: k.AdditionalHeaderClaims, PayloadClaims: k.AdditionalPayloadClaims}
	}
	if o := cu.OnBehalfOf; o != nil {
		cfg.OnBehalfOf = &provider.OnBehalfOfExchange{GrantType: o.GrantType}
		if te := o.TokenExchange; te != nil {
			cfg.OnBehalfOf.ActorTokenContent, cfg.OnBehalfOf.ActorTokenScopes = te.ActorTokenContent, te.ActorTokenScopes
		}
		if a := o.AuthenticationConfig; a != nil {
			cfg.OnBehalfOf.ClientAuthenticationMethod = a.ClientAuthenticationMethod
		}
	}
	if d := cu.OAuthDiscovery.DiscoveryURL; d != nil {
		cfg.DiscoveryURL, ri.DiscoveryURL = *d, *d
		return ri, secret
	}
	m := cu.OAuthDiscovery.Metadata
	cfg.Metadata = &provider.ConfiguredMetadata{Issuer: m.Issuer, AuthorizationEndpoint: m.AuthorizationEndpoint,
		TokenEndpoint: m.TokenEndpoint, ResponseTypes: m.ResponseTypes, TokenEndpointAuthMethods: m.TokenEndpointAuthMethods}
	ri.Issuer, ri.AuthorizationEndpoint, ri.TokenEndpoint = m.Issuer, m.AuthorizationEndpoint, m.TokenEndpoint
	return ri, secret
}

// vendorConfig fills cfg from a built-in vendor's configuration member and
// returns what its endpoints are resolved from, and its client secret.
func vendorConfig(cfg *provider.OAuth2, member string, m *vendorConfigInput) (ri oauthvendor.ResolveInput, secret secretInput) {
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	cfg.ClientID = m.ClientID
	secret = clientSecret(configPath+member, m.ClientSecret, m.ClientSecretSource, m.ClientSecretConfig)
	cfg.TenantID, cfg.Issuer = deref(m.TenantID), deref(m.Issuer)
	cfg.AuthorizationEndpoint, cfg.TokenEndpoint = deref(m.AuthorizationEndpoint), deref(m.TokenEndpoint)
	ri = oauthvendor.ResolveInput{TenantID: cfg.TenantID, Issuer: cfg.Issuer, AuthorizationEndpoint: cfg.AuthorizationEndpoint, TokenEndpoint: cfg.TokenEndpoint}
	return ri, secret
}

// mergeDiscovered fills what the configuration left unset from a discovery
// document; explicitly configured endpoints win.
func mergeDiscovered(r, d provider.Metadata) provider.Metadata {
	keep := func(configured, discovered string) string {
		if configured != "" {
			return configured
		}
		return discovered
	}
	d.Issuer = keep(r.Issuer, d.Issuer)
	d.AuthorizationEndpoint = keep(r.AuthorizationEndpoint, d.AuthorizationEndpoint)
	d.TokenEndpoint = keep(r.TokenEndpoint, d.TokenEndpoint)
	d.RevocationEndpoint = keep(r.RevocationEndpoint, d.RevocationEndpoint)
	return d
}

// vendorError turns oauthvendor's field errors into a ValidationException.
func vendorError(err error, member string) error {
	var fields []wire.FieldError
	var walk func(error)
	walk = func(err error) {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *oauthvendor.FieldError
		if errors.As(err, &fe) {
			name := fe.Field
			if !strings.HasPrefix(name, "oauth2ProviderConfigInput") {
				name = "oauth2ProviderConfigInput." + name
			}
			fields = append(fields, wire.FieldError{Name: name, Message: fe.Reason})
			return
		}
		fields = append(fields, wire.FieldError{Name: "oauth2ProviderConfigInput." + member, Message: err.Error()})
	}
	walk(err)
	msgs := make([]string, len(fields))
	for i, f := range fields {
		msgs[i] = f.Name + " " + f.Message
	}
	return wire.Validation(strings.Join(msgs, "; "), fields...)
}

// Output shapes.

type metadataOutput struct {
	Issuer                   string   `json:"issuer"`
	AuthorizationEndpoint    string   `json:"authorizationEndpoint"`
	TokenEndpoint            string   `json:"tokenEndpoint"`
	ResponseTypes            []string `json:"responseTypes,omitempty"`
	TokenEndpointAuthMethods []string `json:"tokenEndpointAuthMethods,omitempty"`
}

type oauthDiscoveryOutput struct {
	DiscoveryURL *string         `json:"discoveryUrl,omitempty"`
	Metadata     *metadataOutput `json:"authorizationServerMetadata,omitempty"`
}

type onBehalfOfOutput struct {
	GrantType     string `json:"grantType"`
	TokenExchange *struct {
		ActorTokenContent string   `json:"actorTokenContent"`
		ActorTokenScopes  []string `json:"actorTokenScopes,omitempty"`
	} `json:"tokenExchangeGrantTypeConfig,omitempty"`
	AuthenticationConfig *onBehalfOfAuthConfig `json:"onBehalfOfAuthenticationConfig,omitempty"`
}

type memberOutput struct {
	OAuthDiscovery             oauthDiscoveryOutput `json:"oauthDiscovery"`
	ClientID                   string               `json:"clientId,omitempty"`
	ClientAuthenticationMethod string               `json:"clientAuthenticationMethod,omitempty"`
	PrivateKeyJWT              *privateKeyJWTConfig `json:"privateKeyJwtConfig,omitempty"`
	OnBehalfOf                 *onBehalfOfOutput    `json:"onBehalfOfTokenExchangeConfig,omitempty"`
}

type oauth2ProviderOutput struct {
	SecretARN     secretARN `json:"clientSecretArn"`
	SecretSource  string    `json:"clientSecretSource"`
	SecretJSONKey *string   `json:"clientSecretJsonKey,omitempty"`
	Name          string    `json:"name"`
	Vendor        string    `json:"credentialProviderVendor,omitempty"`
	Arn           string    `json:"credentialProviderArn"`
	CallbackURL   string    `json:"callbackUrl"`
	// JWKSURL: where the public key of a PRIVATE_KEY_JWT provider is
	// published, to register as its client's jwks_uri (a behalf
	// extension).
	JWKSURL string                  `json:"jwksUrl,omitempty"`
	Config  map[string]memberOutput `json:"oauth2ProviderConfigOutput"`
	Status  string                  `json:"status"`
	// FailureReason says why the status is UPDATE_FAILED.
	FailureReason *string `json:"failureReason,omitempty"`
	// McpServer: an MCP server provider's server and registration (a
	// behalf extension).
	McpServer       *behalfapi.McpServer `json:"mcpServer,omitempty"`
	CreatedTime     *wire.Time           `json:"createdTime,omitempty"`
	LastUpdatedTime *wire.Time           `json:"lastUpdatedTime,omitempty"`
}

func (s *Service) oauth2Output(p storage.OAuth2Provider, full bool) (*oauth2ProviderOutput, error) {
	cfg, err := provider.Decode(p.Config)
	if err != nil {
		return nil, fmt.Errorf("OAuth2 credential provider %s: %w", p.Name, err)
	}
	m := memberOutput{ClientID: cfg.ClientID, ClientAuthenticationMethod: cfg.ClientAuthenticationMethod, PrivateKeyJWT: privateKeyJWTOutput(cfg.PrivateKeyJWT)}
	switch {
	case cfg.DiscoveryURL != "":
		u := cfg.DiscoveryURL
		m.OAuthDiscovery.DiscoveryURL = &u
	case cfg.Metadata != nil:
		md := cfg.Metadata
		m.OAuthDiscovery.Metadata = &metadataOutput{Issuer: md.Issuer, AuthorizationEndpoint: md.AuthorizationEndpoint,
			TokenEndpoint: md.TokenEndpoint, ResponseTypes: md.ResponseTypes, TokenEndpointAuthMethods: md.TokenEndpointAuthMethods}
	default:
		r := cfg.Resolved
		m.OAuthDiscovery.Metadata = &metadataOutput{Issuer: r.Issuer, AuthorizationEndpoint: r.AuthorizationEndpoint,
			TokenEndpoint: r.TokenEndpoint, ResponseTypes: []string{"code"}}
		if m.OAuthDiscovery.Metadata.Issuer == "" {
			m.OAuthDiscovery.Metadata.Issuer = originOf(r.AuthorizationEndpoint, r.TokenEndpoint)
		}
	}
	if o := cfg.OnBehalfOf; o != nil {
		m.OnBehalfOf = &onBehalfOfOutput{GrantType: o.GrantType}
		if o.ActorTokenContent != "" {
			m.OnBehalfOf.TokenExchange = &struct {
				ActorTokenContent string   `json:"actorTokenContent"`
				ActorTokenScopes  []string `json:"actorTokenScopes,omitempty"`
			}{o.ActorTokenContent, o.ActorTokenScopes}
		}
		if o.ClientAuthenticationMethod != "" {
			m.OnBehalfOf.AuthenticationConfig = &onBehalfOfAuthConfig{o.ClientAuthenticationMethod}
		}
	}
	out := &oauth2ProviderOutput{
		Name:        p.Name,
		Arn:         s.cfg.ARNs.Resource(storage.Resource{Kind: storage.KindOAuth2Provider, Name: p.Name}),
		CallbackURL: s.cfg.PublicURL + CallbackPath + p.ID,
		Config:      map[string]memberOutput{cfg.Member: m},
		Status:      "READY",
	}
	out.SecretARN, out.SecretSource, out.SecretJSONKey = s.secretOutput(storage.KindOAuth2Provider, p.Name, p.ExternalSecret)
	if p.ClientSecret.Lost() {
		out.Status, out.FailureReason = statusUpdateFailed, lostSecretReason("client credential", cfg.UpdateOperation())
	}
	if cfg.MCP != nil {
		ms := mcpServerOutput(cfg)
		out.McpServer = &ms
	}
	if cfg.PrivateKeyJWT != nil {
		out.JWKSURL = s.cfg.PublicURL + JWKSPath + p.Name
	}
	if full {
		created, updated := epoch(p.CreatedAt), epoch(p.UpdatedAt)
		out.Vendor, out.CreatedTime, out.LastUpdatedTime = p.Vendor, &created, &updated
	}
	return out, nil
}

// privateKeyJWTOutput echoes a provider's privateKeyJwtConfig: none of it
// is secret.
func privateKeyJWTOutput(k *provider.PrivateKeyJWT) *privateKeyJWTConfig {
	if k == nil {
		return nil
	}
	return &privateKeyJWTConfig{PrivateKeySource: &privateKeySource{KMSKeySource: &kmsKeySource{KMSKeyArn: k.KeyID}},
		SigningAlgorithm: &k.SigningAlgorithm, AdditionalHeaderClaims: k.HeaderClaims, AdditionalPayloadClaims: k.PayloadClaims}
}

// originOf names a vendor that has no issuer (GitHub, for one) by the
// origin of its endpoints, since the output's issuer is required.
func originOf(urls ...string) string {
	for _, u := range urls {
		if i := strings.Index(u, "://"); i >= 0 {
			if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
				return u[:i+3+j]
			}
			return u
		}
	}
	return ""
}

func (s *Service) createOAuth2Provider(ctx context.Context, c *wire.Call, in *oauth2ProviderInput) (*oauth2ProviderOutput, error) {
	c.Audit.Provider = in.Name
	cfg, secret, err := s.resolve(ctx, in)
	if err != nil {
		return nil, err
	}
	if err := s.checkSigningKey(ctx, cfg); err != nil {
		return nil, err
	}
	now := s.Now()
	p := storage.OAuth2Provider{ID: uuid.NewString(), Name: in.Name, Vendor: in.Vendor, Config: cfg.Encode(), CreatedAt: now, UpdatedAt: now}
	// A client that authenticates with its key has no secret: its slot
	// holds an empty one (keepSecret).
	stored, err := s.keepSecret(ctx, secret, OAuth2ClientSecretBinding(p.ID))
	if err != nil {
		return nil, err
	}
	p.ClientSecret, p.ExternalSecret = stored.sealed, stored.ref
	auditSecret(c, stored.ref)
	if err := c.Change(s.store).CreateOAuth2Provider(ctx, p, in.Tags); err != nil {
		return nil, wire.StorageError(err, "OAuth2 credential provider", in.Name)
	}
	return s.oauth2Output(p, false)
}

func (s *Service) getOAuth2Provider(ctx context.Context, _ *wire.Call, in *providerNameInput) (*oauth2ProviderOutput, error) {
	p, err := s.store.GetOAuth2Provider(ctx, in.Name)
	if err != nil {
		return nil, wire.StorageError(err, "OAuth2 credential provider", in.Name)
	}
	return s.oauth2Output(p, true)
}

// updateOAuth2Provider replaces the configuration; a request without a
// client secret keeps the stored one, unless the update moves the provider
// to another authorization server: the stored secret is never sent to a
// server it was not given for, so such an update must supply the secret
// again, and it deletes the provider's users' connections and open
// sessions, whose tokens the old server issued (docs/api.md).
func (s *Service) updateOAuth2Provider(ctx context.Context, c *wire.Call, in *updateOAuth2ProviderInput) (*oauth2ProviderOutput, error) {
	c.Audit.Provider = in.Name
	current, err := s.store.GetOAuth2Provider(ctx, in.Name)
	if err != nil {
		return nil, wire.StorageError(err, "OAuth2 credential provider", in.Name)
	}
	currentCfg, err := provider.Decode(current.Config)
	if err != nil {
		return nil, fmt.Errorf("OAuth2 credential provider %s: %w", in.Name, err)
	}
	if currentCfg.MCP != nil {
		return nil, wire.Validation("OAuth2 credential provider "+in.Name+" is an MCP server provider; use UpdateMcpServerCredentialProvider",
			wire.FieldError{Name: "name", Message: "is an MCP server provider"})
	}
	cfg, secret, err := s.resolve(ctx, &in.oauth2ProviderInput)
	if err != nil {
		return nil, err
	}
	if err := keepSigningKey(&cfg, currentCfg); err != nil {
		return nil, err
	}
	if err := s.checkSigningKey(ctx, cfg); err != nil {
		return nil, err
	}
	repoint := serverOf(currentCfg) != serverOf(cfg)
	switch {
	case cfg.PrivateKeyJWT != nil:
		// The client authenticates with its key: no stored secret, nor a
		// reference to one, stays.
		secret = secretInput{value: aws.String(""), members: secret.members}
	case !secret.given() && currentCfg.PrivateKeyJWT != nil:
		field := secret.members.value
		const msg = "is required: the provider authenticated with its key (PRIVATE_KEY_JWT) and has no stored secret"
		return nil, wire.Validation(field+" "+msg, wire.FieldError{Name: field, Message: msg})
	}
	if repoint && !secret.given() {
		field := secret.members.value
		const msg = "(or clientSecretSource EXTERNAL with clientSecretConfig) is required when the update changes the provider's authorization server " +
			"(vendor, tenant, issuer, discovery URL or endpoints): the stored secret is sent only to the server it was given for"
		return nil, wire.Validation(field+" "+msg, wire.FieldError{Name: field, Message: msg})
	}
	var stored *storedSecret
	if secret.given() {
		v, err := s.keepSecret(ctx, secret, OAuth2ClientSecretBinding(current.ID))
		if err != nil {
			return nil, err
		}
		stored = &v
		auditSecret(c, v.ref)
	}
	p, err := s.replaceProvider(ctx, c, current, repoint, in.Vendor, cfg.Encode(), stored)
	if err != nil {
		return nil, err
	}
	return s.oauth2Output(p, true)
}

// replaceProvider stores a provider's new vendor, configuration and, when
// given, client secret (sealed, or where it is kept outside behalf, the
// other dropped), but only over the stored configuration the update
// was decided against (else ErrConflict); repoint also deletes the
// provider's sessions and connections in the same change
// (RepointOAuth2Provider), since the old server issued their tokens.
func (s *Service) replaceProvider(ctx context.Context, c *wire.Call, current storage.OAuth2Provider, repoint bool,
	vendor string, config []byte, secret *storedSecret) (storage.OAuth2Provider, error) {
	change := c.Change(s.store)
	update := change.UpdateOAuth2Provider
	if repoint {
		update = change.RepointOAuth2Provider
	}
	defer s.changed(storage.KindOAuth2Provider, current.Name)
	p, err := update(ctx, current.Name, func(p storage.OAuth2Provider) (storage.OAuth2Provider, error) {
		if p.ID != current.ID || !bytes.Equal(p.Config, current.Config) {
			return p, storage.ErrConflict
		}
		p.Vendor, p.Config = vendor, config
		if secret != nil {
			p.ClientSecret, p.ExternalSecret = secret.sealed, secret.ref
		}
		return p, nil
	})
	if err != nil {
		return storage.OAuth2Provider{}, wire.StorageError(err, "OAuth2 credential provider", current.Name)
	}
	return p, nil
}

// keepSigningKey completes the privateKeyJwtConfig of an update with the
// stored key and algorithm it leaves out.
func keepSigningKey(cfg *provider.OAuth2, current provider.OAuth2) error {
	k := cfg.PrivateKeyJWT
	if cfg.ClientAuthenticationMethod != provider.PrivateKeyJWTAuth {
		return nil
	}
	stored := current.PrivateKeyJWT
	if stored == nil {
		stored = &provider.PrivateKeyJWT{}
	}
	if k == nil {
		k = &provider.PrivateKeyJWT{HeaderClaims: stored.HeaderClaims, PayloadClaims: stored.PayloadClaims}
		cfg.PrivateKeyJWT = k
	}
	k.KeyID = cmp.Or(k.KeyID, stored.KeyID)
	k.SigningAlgorithm = cmp.Or(k.SigningAlgorithm, stored.SigningAlgorithm)
	p := "oauth2ProviderConfigInput." + oauthvendor.MemberCustom + ".privateKeyJwtConfig"
	const msg = "is required: the provider has no stored one to keep"
	switch {
	case k.KeyID == "":
		return wire.Validation(p+".privateKeySource "+msg, wire.FieldError{Name: p + ".privateKeySource", Message: msg})
	case k.SigningAlgorithm == "":
		return wire.Validation(p+".signingAlgorithm "+msg, wire.FieldError{Name: p + ".signingAlgorithm", Message: msg})
	}
	return nil
}

// checkSigningKey checks the key a PRIVATE_KEY_JWT provider's assertions
// are signed with, as its backend has it now (Check, then its signer): it
// exists, is asymmetric, and suits the signing algorithm (ECDSA P-256 for
// ES256, RSA of at least 2048 bits for RS256 and PS256). A key that does
// not is a ValidationException on kmsKeyArn; a backend that cannot use it
// now (unreachable, or the key disabled or pending deletion) an
// InternalServerException (502) that says so.
func (s *Service) checkSigningKey(ctx context.Context, cfg provider.OAuth2) error {
	k := cfg.PrivateKeyJWT
	if k == nil {
		return nil
	}
	field := "oauth2ProviderConfigInput." + oauthvendor.MemberCustom + ".privateKeyJwtConfig.privateKeySource.kmsKeySource.kmsKeyArn"
	invalid := func(msg string) error {
		return wire.Validation(field+" "+msg, wire.FieldError{Name: field, Message: msg})
	}
	if s.Keys == nil || s.HeldKeys == nil {
		return invalid("cannot be used: this server has no key-management backend for signing keys")
	}
	err := s.Keys.Check(ctx, k.KeyID)
	var signer crypto.Signer
	if err == nil {
		signer, err = s.HeldKeys.Load(ctx, k.KeyID)
	}
	switch {
	case errors.Is(err, vault.ErrUnknownKey):
		return invalid("is not a key of any configured key-management backend: " + err.Error())
	case errors.Is(err, vault.ErrKeyGone):
		return invalid("names a key that does not exist")
	case errors.Is(err, vault.ErrNotSigningKey):
		return invalid("cannot sign client assertions: " + err.Error())
	case err != nil:
		return wire.BadGateway("key %s cannot be used now (its key-management backend is unreachable, or the key is disabled or pending deletion): %v",
			k.KeyID, err).WithCause(err)
	}
	if _, err := oauthclient.KeyAlgorithm(signer.Public(), k.SigningAlgorithm); err != nil {
		return invalid(err.Error())
	}
	return nil
}

// publicProvider reads the provider an unauthenticated route's path names
// (its id or name, at most maxLen bytes) with get. It answers 404 for one
// that does not exist or does not decode, and 500 for a storage failure,
// and then reports false.
func (s *Service) publicProvider(w http.ResponseWriter, r *http.Request, maxLen int,
	get func(context.Context, string) (storage.OAuth2Provider, error)) (storage.OAuth2Provider, provider.OAuth2, bool) {
	key := r.PathValue("provider")
	if len(key) > maxLen {
		http.Error(w, "not found", http.StatusNotFound)
		return storage.OAuth2Provider{}, provider.OAuth2{}, false
	}
	p, err := get(r.Context(), key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return storage.OAuth2Provider{}, provider.OAuth2{}, false
	}
	cfg, decodeErr := provider.Decode(p.Config)
	if err != nil || decodeErr != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return storage.OAuth2Provider{}, provider.OAuth2{}, false
	}
	return p, cfg, true
}

// serveProviderJWKS publishes a PRIVATE_KEY_JWT provider's public key:
// one JWK of its signing algorithm whose kid its assertions name
// (oauthclient.AssertionKeyID). Every other name is not found; a key its
// backend cannot give now is 503, so that a verifier keeps its cached
// copy.
func (s *Service) serveProviderJWKS(w http.ResponseWriter, r *http.Request) {
	_, cfg, ok := s.publicProvider(w, r, 128, s.store.GetOAuth2Provider)
	if !ok {
		return
	}
	if cfg.PrivateKeyJWT == nil || s.HeldKeys == nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	k := cfg.PrivateKeyJWT
	signer, err := s.HeldKeys.Signer(r.Context(), k.KeyID)
	if err != nil {
		http.Error(w, "the provider's key is unavailable", http.StatusServiceUnavailable)
		return
	}
	kid, err := oauthclient.AssertionKeyID(signer.Public(), k.HeaderClaims)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	signingkeys.WriteJWKS(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{oauthclient.PublicJWK(signer.Public(), k.SigningAlgorithm, kid)}})
}

// authorizationServer is where a provider's client secret and its users'
// tokens are sent: what the administrator configured to find the server,
// and the endpoints resolved from it.
type authorizationServer struct {
	vendor, tenant, discoveryURL             string
	issuer, authorization, token, revocation string
}

func serverOf(c provider.OAuth2) authorizationServer {
	r := c.Resolved
	return authorizationServer{vendor: c.Vendor, tenant: c.TenantID, discoveryURL: c.DiscoveryURL,
		issuer: r.Issuer, authorization: r.AuthorizationEndpoint, token: r.TokenEndpoint, revocation: r.RevocationEndpoint}
}

func (s *Service) deleteOAuth2Provider(ctx context.Context, c *wire.Call, in *providerNameInput) (*struct{}, error) {
	c.Audit.Provider = in.Name
	defer s.changed(storage.KindOAuth2Provider, in.Name)
	return nil, wire.StorageError(c.Change(s.store).DeleteOAuth2Provider(ctx, in.Name), "OAuth2 credential provider", in.Name)
}

type listOAuth2ProvidersInput struct{ listInput }

func (in *listOAuth2ProvidersInput) Validate(c *wire.Checker) {
	c.Range("maxResults", in.MaxResults, 1, 20)
}

func (s *Service) listOAuth2Providers(ctx context.Context, _ *wire.Call, in *listOAuth2ProvidersInput) (*listProvidersOutput, error) {
	after, err := wire.ParseNextToken("nextToken", in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults, 20)
	ps, err := s.store.ListOAuth2Providers(ctx, storage.Page{After: after, Limit: limit + 1})
	if err != nil {
		return nil, fmt.Errorf("list OAuth2 credential providers: %w", err)
	}
	ps, next := paginate(ps, limit, func(p storage.OAuth2Provider) string { return p.Name })
	out := &listProvidersOutput{Items: make([]providerItem, len(ps)), NextToken: next}
	for i, p := range ps {
		out.Items[i] = providerItem{
			Name: p.Name, Vendor: p.Vendor,
			Arn:         s.cfg.ARNs.Resource(storage.Resource{Kind: storage.KindOAuth2Provider, Name: p.Name}),
			CreatedTime: epoch(p.CreatedAt), LastUpdatedTime: epoch(p.UpdatedAt),
		}
	}
	return out, nil
}
