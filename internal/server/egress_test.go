package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// With loopback egress turned off, a discovery URL on a loopback port is
// refused, and the answer is the same for an open port as for a closed
// one, so CreateOauth2CredentialProvider cannot be used as a port scanner.
func TestDiscoveryOnLoopbackRefusedWithoutTellingWhy(t *testing.T) {
	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"http://` + r.Host + `","token_endpoint":"http://` + r.Host + `/token"}`)) //nolint:gosec // G705: a test double's JSON, read by behalf, not a browser
	}))
	defer open.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()

	create := func(s *behalftest.Server, name, addr string) string {
		t.Helper()
		_, err := s.Control().CreateOauth2CredentialProvider(context.Background(), &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String(name), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: &types.Oauth2ProviderConfigInputMemberCustomOauth2ProviderConfig{Value: types.CustomOauth2ProviderConfigInput{
				ClientId: aws.String("c"), ClientSecret: aws.String("s"),
				OauthDiscovery: &types.Oauth2DiscoveryMemberDiscoveryUrl{Value: "http://" + addr + "/.well-known/openid-configuration"}}},
		})
		if err == nil {
			return ""
		}
		var ve *types.ValidationException
		if !errors.As(err, &ve) {
			t.Fatalf("%s: %v, want a ValidationException", addr, err)
		}
		return strings.ReplaceAll(ve.ErrorMessage(), addr, "ADDR")
	}

	openAddr := open.Listener.Addr().String()
	off := false
	strict := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{Edit: func(f *config.File) { f.Egress.AllowLoopback = &off }})
	toOpen, toClosed := create(strict, "open", openAddr), create(strict, "closed", closedAddr)
	if !strings.Contains(toOpen, "could not reach ADDR") {
		t.Fatalf("open loopback port with loopback refused: %q", toOpen)
	}
	if toOpen != toClosed {
		t.Errorf("the answers differ:\nopen:   %s\nclosed: %s", toOpen, toClosed)
	}

	// Listening on loopback allows loopback by default (development).
	dev := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	if msg := create(dev, "open", openAddr); msg != "" {
		t.Errorf("open loopback port while listening on loopback: %s", msg)
	}
	if msg := create(dev, "closed", closedAddr); msg != toClosed {
		t.Errorf("closed port: %q, want %q", msg, toClosed)
	}
}
