package oauthvendor_test

import (
	"errors"
	"fmt"

	"github.com/behalf-dev/behalf/internal/oauthvendor"
)

func ExampleVendor_Resolve() {
	okta, _ := oauthvendor.Lookup("OktaOauth2")

	// Without an issuer or endpoints a tenant-scoped vendor cannot resolve.
	_, err := okta.Resolve(oauthvendor.ResolveInput{})
	fmt.Println(errors.Is(err, oauthvendor.ErrMissingField))

	// With an issuer only, the caller fetches the discovery document.
	ep, _ := okta.Resolve(oauthvendor.ResolveInput{Issuer: "https://acme.okta.com/oauth2/default"})
	fmt.Println(ep.NeedsDiscovery(), ep.DiscoveryURL)

	ms, _ := oauthvendor.Lookup("MicrosoftOauth2")
	ep, _ = ms.Resolve(oauthvendor.ResolveInput{TenantID: "contoso.onmicrosoft.com"})
	fmt.Println(ep.TokenEndpoint)
	// Output:
	// true
	// true https://acme.okta.com/oauth2/default/.well-known/openid-configuration
	// https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token
}
