package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/oauthvendor"
)

func newProviderCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "provider", Short: "Manage credential providers (OAuth2, remote MCP servers and API keys)"}
	cmd.AddCommand(newOAuth2Command(cf), newAPIKeyCommand(cf), newMCPProviderCommand(cf))
	return cmd
}

type oauth2Flags struct {
	vendor, clientID, clientSecret                     string
	secretID, secretJSONKey                            string
	discoveryURL, issuer, authzEndpoint, tokenEndpoint string
	tenantID, authMethod                               string
	privateKeyARN, signingAlgorithm                    string
	assertionHeaders, assertionClaims                  map[string]string
	tags                                               map[string]string
	// The on-behalf-of token exchange (CustomOauth2 only).
	onBehalfOf, actorToken string
	actorTokenScopes       []string
	onBehalfOfNoClient     bool
}

func (f *oauth2Flags) register(cmd *cobra.Command, withTags bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.vendor, "vendor", "", "vendor, e.g. GithubOauth2, GoogleOauth2, CustomOauth2 (required)")
	fl.StringVar(&f.clientID, "client-id", "", "OAuth2 client id")
	fl.StringVar(&f.clientSecret, "client-secret", "", "OAuth2 client secret: the value, - for standard input, or @FILE")
	fl.StringVar(&f.secretID, "client-secret-id", "", "keep the client secret outside behalf (EXTERNAL): a Secrets Manager secret ARN or name, or an absolute file path, holding a JSON object")
	fl.StringVar(&f.secretJSONKey, "client-secret-json-key", "", "with --client-secret-id: the JSON object's member that holds the client secret")
	fl.StringVar(&f.discoveryURL, "discovery-url", "", "CustomOauth2: the .well-known/openid-configuration or oauth-authorization-server URL")
	fl.StringVar(&f.issuer, "issuer", "", "issuer (tenant-scoped vendors such as OktaOauth2, or CustomOauth2 metadata)")
	fl.StringVar(&f.authzEndpoint, "authorization-endpoint", "", "authorization endpoint (tenant-scoped vendors, or CustomOauth2 metadata)")
	fl.StringVar(&f.tokenEndpoint, "token-endpoint", "", "token endpoint (tenant-scoped vendors, or CustomOauth2 metadata)")
	fl.StringVar(&f.tenantID, "tenant-id", "", "MicrosoftOauth2: the Entra tenant")
	fl.StringVar(&f.authMethod, "client-auth-method", "", "CustomOauth2: how the client authenticates: CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, or\nPRIVATE_KEY_JWT with --private-key-arn (lower-case RFC names such as client_secret_post work too)")
	fl.StringVar(&f.authMethod, "auth-method", "", "")
	_ = fl.MarkDeprecated("auth-method", "use --client-auth-method") // the flag exists
	fl.StringVar(&f.privateKeyARN, "private-key-arn", "", "PRIVATE_KEY_JWT: the key that signs client assertions, in a key-management backend behalf is\nconfigured with: an AWS KMS key ARN (asymmetric, SIGN_VERIFY) or a PKCS#11 URI (pkcs11:...)")
	fl.StringVar(&f.signingAlgorithm, "signing-algorithm", "", "PRIVATE_KEY_JWT: RS256 or PS256 (RSA key), or ES256 (EC P-256 key)")
	fl.StringToStringVar(&f.assertionHeaders, "assertion-header", nil, "PRIVATE_KEY_JWT: a header parameter NAME=VALUE added to each client assertion, e.g. kid\nor x5t#S256 (repeatable; not alg or typ)")
	fl.StringToStringVar(&f.assertionClaims, "assertion-claim", nil, "PRIVATE_KEY_JWT: a claim NAME=VALUE added to each client assertion, e.g. aud=TOKEN_ENDPOINT\nfor a server that wants its token endpoint (repeatable; not iss, sub, jti, exp, iat or nbf)")
	fl.StringVar(&f.onBehalfOf, "on-behalf-of", "", "CustomOauth2: exchange users' JWTs for tokens (ON_BEHALF_OF_TOKEN_EXCHANGE) by TOKEN_EXCHANGE (RFC 8693)\nor JWT_AUTHORIZATION_GRANT (RFC 7523)")
	fl.StringVar(&f.actorToken, "actor-token", "", "with --on-behalf-of TOKEN_EXCHANGE: the actor token, NONE, M2M (the provider's own\nclient-credentials token) or AWS_IAM_ID_TOKEN_JWT (behalf's own workload JWT)")
	fl.StringSliceVar(&f.actorTokenScopes, "actor-token-scope", nil, "with --actor-token M2M: a scope of the actor token (repeatable, or comma-separated)")
	fl.BoolVar(&f.onBehalfOfNoClient, "on-behalf-of-no-client", false, "with --on-behalf-of: send the exchange without the client id and secret (NO_CLIENT)")
	if withTags {
		fl.StringToStringVar(&f.tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	}
}

// input builds the oauth2ProviderConfigInput union member for the vendor.
func (f *oauth2Flags) input(cmd *cobra.Command) (types.Oauth2ProviderConfigInput, error) {
	v, ok := oauthvendor.Lookup(f.vendor)
	if !ok {
		return nil, fmt.Errorf("--vendor %q is not a vendor; use one of %v", f.vendor, oauthvendor.Names())
	}
	secret, src, ref, err := f.secret(cmd)
	if err != nil {
		return nil, err
	}
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return aws.String(s)
	}
	id := opt(f.clientID)
	obo, err := f.onBehalfOfInput(v.ConfigMember)
	if err != nil {
		return nil, err
	}
	switch v.ConfigMember {
	case oauthvendor.MemberCustom:
		c := types.CustomOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret, ClientSecretSource: src, ClientSecretConfig: ref,
			ClientAuthenticationMethod: types.ClientAuthenticationMethodType(strings.ToUpper(f.authMethod)), PrivateKeyJwtConfig: f.privateKeyJWT(),
			OnBehalfOfTokenExchangeConfig: obo}
		if f.discoveryURL != "" {
			c.OauthDiscovery = &types.Oauth2DiscoveryMemberDiscoveryUrl{Value: f.discoveryURL}
		} else {
			c.OauthDiscovery = &types.Oauth2DiscoveryMemberAuthorizationServerMetadata{Value: types.Oauth2AuthorizationServerMetadata{
				Issuer: opt(f.issuer), AuthorizationEndpoint: opt(f.authzEndpoint), TokenEndpoint: opt(f.tokenEndpoint)}}
		}
		return &types.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: c}, nil
	case oauthvendor.MemberGoogle:
		return &types.Oauth2ProviderConfigInputMemberGoogleOauth2ProviderConfig{Value: types.GoogleOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret,
			ClientSecretSource: src, ClientSecretConfig: ref}}, nil
	case oauthvendor.MemberGithub:
		return &types.Oauth2ProviderConfigInputMemberGithubOauth2ProviderConfig{Value: types.GithubOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret,
			ClientSecretSource: src, ClientSecretConfig: ref}}, nil
	case oauthvendor.MemberSlack:
		return &types.Oauth2ProviderConfigInputMemberSlackOauth2ProviderConfig{Value: types.SlackOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret,
			ClientSecretSource: src, ClientSecretConfig: ref}}, nil
	case oauthvendor.MemberSalesforce:
		return &types.Oauth2ProviderConfigInputMemberSalesforceOauth2ProviderConfig{Value: types.SalesforceOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret,
			ClientSecretSource: src, ClientSecretConfig: ref}}, nil
	case oauthvendor.MemberMicrosoft:
		return &types.Oauth2ProviderConfigInputMemberMicrosoftOauth2ProviderConfig{Value: types.MicrosoftOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret,
			ClientSecretSource: src, ClientSecretConfig: ref, TenantId: opt(f.tenantID)}}, nil
	case oauthvendor.MemberAtlassian:
		return &types.Oauth2ProviderConfigInputMemberAtlassianOauth2ProviderConfig{Value: types.AtlassianOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret,
			ClientSecretSource: src, ClientSecretConfig: ref}}, nil
	case oauthvendor.MemberLinkedin:
		return &types.Oauth2ProviderConfigInputMemberLinkedinOauth2ProviderConfig{Value: types.LinkedinOauth2ProviderConfigInput{ClientId: id, ClientSecret: secret,
			ClientSecretSource: src, ClientSecretConfig: ref}}, nil
	}
	return &types.Oauth2ProviderConfigInputMemberIncludedOauth2ProviderConfig{Value: types.IncludedOauth2ProviderConfigInput{
		ClientId: id, ClientSecret: secret, ClientSecretSource: src, ClientSecretConfig: ref,
		Issuer: opt(f.issuer), AuthorizationEndpoint: opt(f.authzEndpoint), TokenEndpoint: opt(f.tokenEndpoint)}}, nil
}

// secret reads the client secret flags: the secret, or where it is kept,
// or neither.
func (f *oauth2Flags) secret(cmd *cobra.Command) (*string, types.SecretSourceType, *types.SecretReference, error) {
	src, ref, err := externalSecret("client-secret", f.clientSecret != "", f.secretID, f.secretJSONKey)
	if err != nil || f.clientSecret == "" {
		return nil, src, ref, err
	}
	s, err := readSecret(cmd, "client-secret", f.clientSecret)
	return &s, "", nil, err
}

// externalSecret reads the flags that keep a secret outside behalf
// (source EXTERNAL): a secret id and JSON key, or neither; valueGiven
// says whether the --FLAG value flag is set too, which they exclude.
func externalSecret(flag string, valueGiven bool, id, jsonKey string) (types.SecretSourceType, *types.SecretReference, error) {
	switch {
	case id == "" && jsonKey == "":
		return "", nil, nil
	case id == "":
		return "", nil, fmt.Errorf("--%s-json-key needs --%s-id", flag, flag)
	case jsonKey == "":
		return "", nil, fmt.Errorf("--%s-id needs --%s-json-key: the member of the secret's JSON object that holds it", flag, flag)
	case valueGiven:
		return "", nil, fmt.Errorf("--%s and --%s-id exclude each other: the secret is given, or read from where it is kept", flag, flag)
	}
	return types.SecretSourceTypeExternal, &types.SecretReference{SecretId: aws.String(id), JsonKey: aws.String(jsonKey)}, nil
}

// secretView is where a provider's secret is kept, as the outputs say.
type secretView struct {
	Source  string `json:"secretSource,omitempty"`
	ARN     string `json:"secretArn,omitempty"`
	JSONKey string `json:"secretJsonKey,omitempty"`
}

func newSecretView(arn *types.Secret, source types.SecretSourceType, jsonKey *string) secretView {
	v := secretView{Source: string(source), JSONKey: str(jsonKey)}
	if arn != nil {
		v.ARN = str(arn.SecretArn)
	}
	return v
}

// row is the table's line for the secret: where behalf reads it from,
// for one kept outside behalf.
func (v secretView) row(what string) []string {
	if v.Source == string(types.SecretSourceTypeExternal) {
		return []string{what, fmt.Sprintf("EXTERNAL: %s, JSON key %s", v.ARN, v.JSONKey)}
	}
	return []string{what, v.Source}
}

// onBehalfOfInput builds onBehalfOfTokenExchangeConfig from the flags; the
// server validates the values.
func (f *oauth2Flags) onBehalfOfInput(member string) (*types.OnBehalfOfTokenExchangeConfigType, error) {
	switch {
	case f.onBehalfOf == "" && (f.actorToken != "" || len(f.actorTokenScopes) > 0 || f.onBehalfOfNoClient):
		return nil, fmt.Errorf("--actor-token, --actor-token-scope and --on-behalf-of-no-client need --on-behalf-of")
	case f.onBehalfOf == "":
		return nil, nil
	case member != oauthvendor.MemberCustom:
		return nil, fmt.Errorf("--on-behalf-of is for --vendor CustomOauth2")
	case len(f.actorTokenScopes) > 0 && f.actorToken == "":
		return nil, fmt.Errorf("--actor-token-scope needs --actor-token M2M")
	}
	c := &types.OnBehalfOfTokenExchangeConfigType{GrantType: types.OnBehalfOfTokenExchangeGrantTypeType(f.onBehalfOf)}
	if f.actorToken != "" {
		c.TokenExchangeGrantTypeConfig = &types.TokenExchangeGrantTypeConfigType{
			ActorTokenContent: types.ActorTokenContentType(f.actorToken), ActorTokenScopes: f.actorTokenScopes}
	}
	if f.onBehalfOfNoClient {
		c.OnBehalfOfAuthenticationConfig = &types.OnBehalfOfAuthenticationConfig{ClientAuthenticationMethod: types.OnBehalfOfClientAuthenticationMethodNoClient}
	}
	return c, nil
}

// privateKeyJWT is the privateKeyJwtConfig the flags give, nil for none.
func (f *oauth2Flags) privateKeyJWT() *types.PrivateKeyJwtConfig {
	if f.privateKeyARN == "" && f.signingAlgorithm == "" && f.assertionHeaders == nil && f.assertionClaims == nil {
		return nil
	}
	k := &types.PrivateKeyJwtConfig{SigningAlgorithm: types.SigningAlgorithm(f.signingAlgorithm),
		AdditionalHeaderClaims: f.assertionHeaders, AdditionalPayloadClaims: f.assertionClaims}
	if f.privateKeyARN != "" {
		k.PrivateKeySource = &types.PrivateKeySourceMemberKmsKeySource{Value: types.KmsKeySourceType{KmsKeyArn: aws.String(f.privateKeyARN)}}
	}
	return k
}

type oauth2View struct {
	Name            string     `json:"name"`
	Vendor          string     `json:"credentialProviderVendor,omitempty"`
	Arn             string     `json:"credentialProviderArn"`
	CallbackURL     string     `json:"callbackUrl"`
	ClientID        string     `json:"clientId,omitempty"`
	Discovery       string     `json:"discovery,omitempty"`
	ClientAuth      string     `json:"clientAuthenticationMethod,omitempty"`
	SigningKey      string     `json:"signingKey,omitempty"`
	JWKSURL         string     `json:"jwksUrl,omitempty"`
	OnBehalfOf      *oboView   `json:"onBehalfOf,omitempty"`
	Status          string     `json:"status,omitempty"`
	FailureReason   string     `json:"failureReason,omitempty"`
	ClientSecret    secretView `json:"clientSecret"`
	CreatedTime     *time.Time `json:"createdTime,omitempty"`
	LastUpdatedTime *time.Time `json:"lastUpdatedTime,omitempty"`
}

func (v oauth2View) table() table {
	t := fields("name", v.Name, "vendor", v.Vendor, "arn", v.Arn, "callback URL", v.CallbackURL,
		"client id", v.ClientID, "discovery", v.Discovery)
	for _, row := range [][]string{{"client auth", v.ClientAuth}, {"signing key", v.SigningKey}, {"JWKS URL", v.JWKSURL}} {
		if row[1] != "" {
			t.rows = append(t.rows, row)
		}
	}
	t.rows = append(t.rows, []string{"status", v.Status})
	if v.OnBehalfOf != nil {
		t.rows = append(t.rows, []string{"on behalf of", v.OnBehalfOf.String()})
	}
	if v.FailureReason != "" {
		t.rows = append(t.rows, []string{"failure reason", v.FailureReason})
	}
	// A PRIVATE_KEY_JWT client has no secret; the output names behalf's
	// record for one all the same (clientSecretArn is a required member).
	if v.ClientSecret.Source != "" && v.ClientAuth != string(types.ClientAuthenticationMethodTypePrivateKeyJwt) {
		t.rows = append(t.rows, v.ClientSecret.row("secret"))
	}
	if v.CreatedTime != nil {
		t.rows = append(t.rows, []string{"created", when(v.CreatedTime)}, []string{"updated", when(v.LastUpdatedTime)})
	}
	return t
}

// newOAuth2View is the view of a provider: the output's members, and
// behalf's jwksUrl from the raw response ext kept.
func newOAuth2View(name, vendor, arn, callback string, status types.Status, cfg types.Oauth2ProviderConfigOutput, ext *extensions) oauth2View {
	v := oauth2View{Name: name, Vendor: vendor, Arn: arn, CallbackURL: callback, Status: string(status)}
	v.ClientID, v.Discovery = summarize(cfg)
	if m, ok := cfg.(*types.Oauth2ProviderConfigOutputMemberCustomOauth2ProviderConfig); ok {
		v.ClientAuth = string(m.Value.ClientAuthenticationMethod)
		if k := m.Value.PrivateKeyJwtConfig; k != nil {
			if src, ok := k.PrivateKeySource.(*types.PrivateKeySourceMemberKmsKeySource); ok {
				v.SigningKey = str(src.Value.KmsKeyArn) + " (" + string(k.SigningAlgorithm) + ")"
			}
		}
	}
	var members struct {
		JWKSURL string `json:"jwksUrl"`
	}
	_ = json.Unmarshal(ext.raw, &members) // a response without it names none
	v.JWKSURL = members.JWKSURL
	v.OnBehalfOf = onBehalfOf(cfg)
	return v
}

// summarize reads the output union: the client id and how endpoints are
// found.
func summarize(out types.Oauth2ProviderConfigOutput) (clientID, discovery string) {
	var d types.Oauth2Discovery
	switch m := out.(type) {
	case *types.Oauth2ProviderConfigOutputMemberCustomOauth2ProviderConfig:
		clientID, d = str(m.Value.ClientId), m.Value.OauthDiscovery
	case *types.Oauth2ProviderConfigOutputMemberGoogleOauth2ProviderConfig:
		clientID, d = str(m.Value.ClientId), m.Value.OauthDiscovery
	case *types.Oauth2ProviderConfigOutputMemberGithubOauth2ProviderConfig:
		clientID, d = str(m.Value.ClientId), m.Value.OauthDiscovery
	case *types.Oauth2ProviderConfigOutputMemberSlackOauth2ProviderConfig:
		clientID, d = str(m.Value.ClientId), m.Value.OauthDiscovery
	case *types.Oauth2ProviderConfigOutputMemberSalesforceOauth2ProviderConfig:
		clientID, d = str(m.Value.ClientId), m.Value.OauthDiscovery
	case *types.Oauth2ProviderConfigOutputMemberMicrosoftOauth2ProviderConfig:
		clientID, d = str(m.Value.ClientId), m.Value.OauthDiscovery
	case *types.Oauth2ProviderConfigOutputMemberAtlassianOauth2ProviderConfig:
		clientID, d = str(m.Value.ClientId), m.Value.OauthDiscovery
	case *types.Oauth2ProviderConfigOutputMemberLinkedinOauth2ProviderConfig:
		clientID, d = str(m.Value.ClientId), m.Value.OauthDiscovery
	case *types.Oauth2ProviderConfigOutputMemberIncludedOauth2ProviderConfig:
		clientID, d = str(m.Value.ClientId), m.Value.OauthDiscovery
	}
	switch d := d.(type) {
	case *types.Oauth2DiscoveryMemberDiscoveryUrl:
		discovery = d.Value
	case *types.Oauth2DiscoveryMemberAuthorizationServerMetadata:
		discovery = "token endpoint " + str(d.Value.TokenEndpoint)
	}
	return clientID, discovery
}

// oboView is a CustomOauth2 provider's onBehalfOfTokenExchangeConfig.
type oboView struct {
	GrantType        string   `json:"grantType"`
	ActorToken       string   `json:"actorToken,omitempty"`
	ActorTokenScopes []string `json:"actorTokenScopes,omitempty"`
	NoClient         bool     `json:"noClient,omitempty"`
}

// onBehalfOf reads the output union's on-behalf-of configuration; nil when
// there is none.
func onBehalfOf(out types.Oauth2ProviderConfigOutput) *oboView {
	m, ok := out.(*types.Oauth2ProviderConfigOutputMemberCustomOauth2ProviderConfig)
	if !ok || m.Value.OnBehalfOfTokenExchangeConfig == nil {
		return nil
	}
	c := m.Value.OnBehalfOfTokenExchangeConfig
	v := &oboView{GrantType: string(c.GrantType)}
	if te := c.TokenExchangeGrantTypeConfig; te != nil {
		v.ActorToken, v.ActorTokenScopes = string(te.ActorTokenContent), te.ActorTokenScopes
	}
	if a := c.OnBehalfOfAuthenticationConfig; a != nil {
		v.NoClient = a.ClientAuthenticationMethod == types.OnBehalfOfClientAuthenticationMethodNoClient
	}
	return v
}

// String is the table's line, e.g. "TOKEN_EXCHANGE, actor token M2M
// (scopes openid), no client".
func (v *oboView) String() string {
	s := v.GrantType
	if v.ActorToken != "" {
		s += ", actor token " + v.ActorToken
		if len(v.ActorTokenScopes) > 0 {
			s += " (scopes " + strings.Join(v.ActorTokenScopes, " ") + ")"
		}
	}
	if v.NoClient {
		s += ", no client"
	}
	return s
}

func newOAuth2Command(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "oauth2", Short: "Manage OAuth2 credential providers"}

	var cflags oauth2Flags
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an OAuth2 credential provider",
		Example: `  behalf provider oauth2 create github --vendor GithubOauth2 --client-id Iv1.abc --client-secret @github-secret.txt
  behalf provider oauth2 create corp --vendor CustomOauth2 --client-id agent --client-secret - \
      --discovery-url https://idp.example.com/.well-known/openid-configuration
  behalf provider oauth2 create corp-obo --vendor CustomOauth2 --client-id agent --client-secret - \
      --discovery-url https://idp.example.com/.well-known/openid-configuration \
      --on-behalf-of TOKEN_EXCHANGE --actor-token M2M --actor-token-scope agents
  behalf provider oauth2 create corp-jwt --vendor CustomOauth2 --client-id agent \
      --discovery-url https://idp.example.com/.well-known/openid-configuration --client-auth-method PRIVATE_KEY_JWT \
      --private-key-arn arn:aws:kms:us-east-1:111122223333:key/0b7c1c1e-... --signing-algorithm ES256
  behalf provider oauth2 create slack --vendor SlackOauth2 --client-id 123.456 \
      --client-secret-id prod/slack --client-secret-json-key clientSecret`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := cflags.input(cmd)
			if err != nil {
				return err
			}
			c, err := cf.control()
			if err != nil {
				return err
			}
			ext := &extensions{}
			out, err := c.CreateOauth2CredentialProvider(cmd.Context(), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
				Name: aws.String(args[0]), CredentialProviderVendor: types.CredentialProviderVendorType(cflags.vendor),
				Oauth2ProviderConfigInput: cfg, Tags: cflags.tags,
			}, ext.option)
			if err != nil {
				return cf.describe(err)
			}
			v := newOAuth2View(str(out.Name), cflags.vendor, str(out.CredentialProviderArn), str(out.CallbackUrl), out.Status, out.Oauth2ProviderConfigOutput, ext)
			v.ClientSecret = newSecretView(out.ClientSecretArn, out.ClientSecretSource, out.ClientSecretJsonKey)
			return cf.print(cmd, v, v.table())
		},
	}
	cflags.register(create, true)

	var uflags oauth2Flags
	update := &cobra.Command{
		Use:   "update NAME",
		Short: "Replace an OAuth2 credential provider's configuration (the stored client secret is kept unless --client-secret is given)",
		Long: `Replace an OAuth2 credential provider's configuration. The stored client secret
(or where it is kept) is kept unless --client-secret or --client-secret-id is given,
except when the update moves the provider
to another authorization server (another vendor, tenant, issuer, discovery URL or
endpoint): the stored secret is only ever sent to the server it was given for, so
such an update needs --client-secret or --client-secret-id, and it deletes the provider's users'
connections and open sessions, whose tokens the old server issued.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := uflags.input(cmd)
			if err != nil {
				return err
			}
			c, err := cf.control()
			if err != nil {
				return err
			}
			ext := &extensions{}
			out, err := c.UpdateOauth2CredentialProvider(cmd.Context(), &bedrockagentcorecontrol.UpdateOauth2CredentialProviderInput{
				Name: aws.String(args[0]), CredentialProviderVendor: types.CredentialProviderVendorType(uflags.vendor), Oauth2ProviderConfigInput: cfg,
			}, ext.option)
			if err != nil {
				return cf.describe(err)
			}
			v := newOAuth2View(str(out.Name), string(out.CredentialProviderVendor), str(out.CredentialProviderArn), str(out.CallbackUrl), out.Status, out.Oauth2ProviderConfigOutput, ext)
			v.CreatedTime, v.LastUpdatedTime = out.CreatedTime, out.LastUpdatedTime
			v.ClientSecret = newSecretView(out.ClientSecretArn, out.ClientSecretSource, out.ClientSecretJsonKey)
			return cf.print(cmd, v, v.table())
		},
	}
	uflags.register(update, false)

	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show an OAuth2 credential provider (never its secret)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			ext := &extensions{}
			out, err := c.GetOauth2CredentialProvider(cmd.Context(), &bedrockagentcorecontrol.GetOauth2CredentialProviderInput{Name: aws.String(args[0])}, ext.option)
			if err != nil {
				return cf.describe(err)
			}
			v := newOAuth2View(str(out.Name), string(out.CredentialProviderVendor), str(out.CredentialProviderArn), str(out.CallbackUrl), out.Status, out.Oauth2ProviderConfigOutput, ext)
			v.FailureReason, v.CreatedTime, v.LastUpdatedTime = str(out.FailureReason), out.CreatedTime, out.LastUpdatedTime
			v.ClientSecret = newSecretView(out.ClientSecretArn, out.ClientSecretSource, out.ClientSecretJsonKey)
			return cf.print(cmd, v, v.table())
		},
	}

	del := deleteCommand(cf, "Delete an OAuth2 credential provider", func(ctx context.Context, c *bedrockagentcorecontrol.Client, name string) error {
		_, err := c.DeleteOauth2CredentialProvider(ctx, &bedrockagentcorecontrol.DeleteOauth2CredentialProviderInput{Name: aws.String(name)})
		return err
	})
	ls := listCommand(cf, "List OAuth2 credential providers", []string{"NAME", "VENDOR", "ARN"},
		func(c *bedrockagentcorecontrol.Client) pages[*bedrockagentcorecontrol.ListOauth2CredentialProvidersOutput] {
			return bedrockagentcorecontrol.NewListOauth2CredentialProvidersPaginator(c, &bedrockagentcorecontrol.ListOauth2CredentialProvidersInput{})
		},
		func(page *bedrockagentcorecontrol.ListOauth2CredentialProvidersOutput) (views []oauth2View, rows [][]string) {
			for _, it := range page.CredentialProviders {
				views = append(views, oauth2View{Name: str(it.Name), Vendor: string(it.CredentialProviderVendor), Arn: str(it.CredentialProviderArn),
					CreatedTime: it.CreatedTime, LastUpdatedTime: it.LastUpdatedTime})
				rows = append(rows, []string{str(it.Name), string(it.CredentialProviderVendor), str(it.CredentialProviderArn)})
			}
			return views, rows
		})
	cmd.AddCommand(create, get, update, del, ls)
	return cmd
}

type apiKeyView struct {
	Name            string     `json:"name"`
	Arn             string     `json:"credentialProviderArn"`
	APIKey          secretView `json:"apiKey"`
	CreatedTime     *time.Time `json:"createdTime,omitempty"`
	LastUpdatedTime *time.Time `json:"lastUpdatedTime,omitempty"`
	// Status and FailureReason are behalf's extension members, set when
	// the key was lost with a deleted vault key.
	Status        string `json:"status,omitempty"`
	FailureReason string `json:"failureReason,omitempty"`
}

func (v apiKeyView) table() table {
	t := fields("name", v.Name, "arn", v.Arn)
	if v.APIKey.Source != "" {
		t.rows = append(t.rows, v.APIKey.row("API key"))
	}
	if v.Status != "" {
		t.rows = append(t.rows, []string{"status", v.Status}, []string{"failure reason", v.FailureReason})
	}
	if v.CreatedTime != nil {
		t.rows = append(t.rows, []string{"created", when(v.CreatedTime)}, []string{"updated", when(v.LastUpdatedTime)})
	}
	return t
}

// apiKeyFlags give an API key: its value, or where it is kept (EXTERNAL).
type apiKeyFlags struct{ value, secretID, secretJSONKey string }

func (f *apiKeyFlags) register(cmd *cobra.Command, what string) {
	fl := cmd.Flags()
	fl.StringVar(&f.value, "api-key", "", what+": the value, - for standard input, or @FILE")
	fl.StringVar(&f.secretID, "api-key-secret-id", "", "keep the key outside behalf (EXTERNAL): a Secrets Manager secret ARN or name, or an absolute file path, holding a JSON object")
	fl.StringVar(&f.secretJSONKey, "api-key-secret-json-key", "", "with --api-key-secret-id: the JSON object's member that holds the key")
}

// read returns the key, or the source and reference of one kept outside
// behalf.
func (f *apiKeyFlags) read(cmd *cobra.Command) (*string, types.SecretSourceType, *types.SecretReference, error) {
	src, ref, err := externalSecret("api-key", f.value != "", f.secretID, f.secretJSONKey)
	switch {
	case err != nil:
		return nil, "", nil, err
	case ref != nil:
		return nil, src, ref, nil
	case f.value == "":
		return nil, "", nil, fmt.Errorf("--api-key (the value, - for standard input, or @FILE) or --api-key-secret-id is required")
	}
	k, err := readSecret(cmd, "api-key", f.value)
	return &k, "", nil, err
}

func newAPIKeyCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Manage API-key credential providers"}

	var key apiKeyFlags
	var tags map[string]string
	create := &cobra.Command{
		Use:   "create NAME (--api-key (VALUE | - | @FILE) | --api-key-secret-id ID --api-key-secret-json-key KEY)",
		Short: "Create an API-key credential provider; the key is stored encrypted and never shown again, or read where it is kept",
		Example: "  printf %s \"$OPENAI_API_KEY\" | behalf provider apikey create openai --api-key -\n" +
			"  behalf provider apikey create weather --api-key-secret-id /var/run/secrets/behalf/weather.json --api-key-secret-json-key apiKey",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, src, ref, err := key.read(cmd)
			if err != nil {
				return err
			}
			c, err := cf.control()
			if err != nil {
				return err
			}
			out, err := c.CreateApiKeyCredentialProvider(cmd.Context(), &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{
				Name: aws.String(args[0]), ApiKey: k, ApiKeySecretSource: src, ApiKeySecretConfig: ref, Tags: tags,
			})
			if err != nil {
				return cf.describe(err)
			}
			v := apiKeyView{Name: str(out.Name), Arn: str(out.CredentialProviderArn),
				APIKey: newSecretView(out.ApiKeySecretArn, out.ApiKeySecretSource, out.ApiKeySecretJsonKey)}
			return cf.print(cmd, v, v.table())
		},
	}
	key.register(create, "the API key")
	create.Flags().StringToStringVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")

	var newKey apiKeyFlags
	update := &cobra.Command{
		Use:   "update NAME (--api-key (VALUE | - | @FILE) | --api-key-secret-id ID --api-key-secret-json-key KEY)",
		Short: "Replace the stored API key, or where it is kept",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, src, ref, err := newKey.read(cmd)
			if err != nil {
				return err
			}
			c, err := cf.control()
			if err != nil {
				return err
			}
			out, err := c.UpdateApiKeyCredentialProvider(cmd.Context(), &bedrockagentcorecontrol.UpdateApiKeyCredentialProviderInput{
				Name: aws.String(args[0]), ApiKey: k, ApiKeySecretSource: src, ApiKeySecretConfig: ref})
			if err != nil {
				return cf.describe(err)
			}
			v := apiKeyView{Name: str(out.Name), Arn: str(out.CredentialProviderArn), CreatedTime: out.CreatedTime, LastUpdatedTime: out.LastUpdatedTime,
				APIKey: newSecretView(out.ApiKeySecretArn, out.ApiKeySecretSource, out.ApiKeySecretJsonKey)}
			return cf.print(cmd, v, v.table())
		},
	}
	newKey.register(update, "the new API key")

	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show an API-key credential provider (never its key)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			ext := &extensions{}
			out, err := c.GetApiKeyCredentialProvider(cmd.Context(), &bedrockagentcorecontrol.GetApiKeyCredentialProviderInput{Name: aws.String(args[0])}, ext.option)
			if err != nil {
				return cf.describe(err)
			}
			v := apiKeyView{Name: str(out.Name), Arn: str(out.CredentialProviderArn), CreatedTime: out.CreatedTime, LastUpdatedTime: out.LastUpdatedTime,
				APIKey: newSecretView(out.ApiKeySecretArn, out.ApiKeySecretSource, out.ApiKeySecretJsonKey)}
			v.Status, v.FailureReason = ext.providerStatus()
			return cf.print(cmd, v, v.table())
		},
	}

	del := deleteCommand(cf, "Delete an API-key credential provider", func(ctx context.Context, c *bedrockagentcorecontrol.Client, name string) error {
		_, err := c.DeleteApiKeyCredentialProvider(ctx, &bedrockagentcorecontrol.DeleteApiKeyCredentialProviderInput{Name: aws.String(name)})
		return err
	})
	ls := listCommand(cf, "List API-key credential providers", []string{"NAME", "ARN"},
		func(c *bedrockagentcorecontrol.Client) pages[*bedrockagentcorecontrol.ListApiKeyCredentialProvidersOutput] {
			return bedrockagentcorecontrol.NewListApiKeyCredentialProvidersPaginator(c, &bedrockagentcorecontrol.ListApiKeyCredentialProvidersInput{})
		},
		func(page *bedrockagentcorecontrol.ListApiKeyCredentialProvidersOutput) (views []apiKeyView, rows [][]string) {
			for _, it := range page.CredentialProviders {
				views = append(views, apiKeyView{Name: str(it.Name), Arn: str(it.CredentialProviderArn), CreatedTime: it.CreatedTime, LastUpdatedTime: it.LastUpdatedTime})
				rows = append(rows, []string{str(it.Name), str(it.CredentialProviderArn)})
			}
			return views, rows
		})
	cmd.AddCommand(create, get, update, del, ls)
	return cmd
}
