package authz

import (
	"errors"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

func TestCheckProviderGrant(t *testing.T) {
	workload := func(grants ...storage.ProviderGrant) storage.WorkloadIdentity {
		return storage.WorkloadIdentity{Name: "w", AllowedProviders: grants}
	}
	anyValue := []string{storage.GrantAny}
	openid := storage.ProviderGrant{Provider: "idp", Scopes: []string{"openid"}}
	// A grant stored before resources, audiences and custom parameters
	// were covered decodes like one that lists none of them.
	legacy := storage.ProviderGrant{Provider: "idp"}
	full := storage.ProviderGrant{Provider: "idp", Scopes: anyValue, Resources: anyValue, Audiences: anyValue, CustomParameters: anyValue}
	listed := storage.ProviderGrant{Provider: "idp", Resources: []string{"https://api.example/"},
		Audiences: []string{"urn:a"}, CustomParameters: []string{"login_hint"}}
	for _, tc := range []struct {
		name   string
		w      storage.WorkloadIdentity
		req    GrantRequest
		denied string // part of the error, "" when allowed
	}{
		{"unrestricted workload", storage.WorkloadIdentity{Name: "w"},
			GrantRequest{Scopes: []string{"x"}, Resources: []string{"r"}, Audiences: []string{"a"}, CustomParameters: map[string]string{"p": "v"}}, ""},
		{"provider not listed", workload(storage.ProviderGrant{Provider: "other"}), GrantRequest{}, "not allowed to use credential provider idp"},
		{"no providers allowed", storage.WorkloadIdentity{Name: "w", AllowedProviders: []storage.ProviderGrant{}}, GrantRequest{}, "not allowed to use"},
		{"listed scope", workload(openid), GrantRequest{Scopes: []string{"openid"}}, ""},
		{"other scope", workload(openid), GrantRequest{Scopes: []string{"openid", "email"}}, `scope "email"`},
		{"no scope under a scope list", workload(openid), GrantRequest{}, "request them explicitly"},
		{"any scope, none listed", workload(legacy), GrantRequest{Scopes: []string{"anything"}}, ""},
		{"any scope, *", workload(full), GrantRequest{Scopes: []string{"anything"}}, ""},
		{"no scope under *", workload(full), GrantRequest{}, ""},
		// The finding: a grant limited to scope openid widened by an
		// audience, a resource or a custom parameter.
		{"audience beyond a scope grant", workload(openid),
			GrantRequest{Scopes: []string{"openid"}, Audiences: []string{"https://payments.internal.example/"}}, `audience "https://payments.internal.example/"`},
		{"resource beyond a scope grant", workload(openid),
			GrantRequest{Scopes: []string{"openid"}, Resources: []string{"https://payments.internal.example/"}}, `resource "https://payments.internal.example/"`},
		{"custom parameter beyond a scope grant", workload(openid),
			GrantRequest{Scopes: []string{"openid"}, CustomParameters: map[string]string{"audience_hint": "x"}}, `custom parameter "audience_hint"`},
		{"legacy grant allows no resource", workload(legacy), GrantRequest{Resources: []string{"r"}}, `resource "r"`},
		{"legacy grant allows no audience", workload(legacy), GrantRequest{Audiences: []string{"a"}}, `audience "a"`},
		{"legacy grant allows no custom parameter", workload(legacy), GrantRequest{CustomParameters: map[string]string{"p": ""}}, `custom parameter "p"`},
		{"* allows any", workload(full),
			GrantRequest{Resources: []string{"r1", "r2"}, Audiences: []string{"a"}, CustomParameters: map[string]string{"p": "v", "q": "w"}}, ""},
		{"listed values", workload(listed),
			GrantRequest{Resources: []string{"https://api.example/"}, Audiences: []string{"urn:a"}, CustomParameters: map[string]string{"login_hint": "kilgore"}}, ""},
		{"unlisted resource", workload(listed), GrantRequest{Resources: []string{"https://api.example/", "https://api.example/admin"}}, `resource "https://api.example/admin"`},
		{"unlisted audience", workload(listed), GrantRequest{Audiences: []string{"urn:b"}}, `audience "urn:b"`},
		{"unlisted custom parameter", workload(listed), GrantRequest{CustomParameters: map[string]string{"login_hint": "x", "prompt_hint": "y"}}, `custom parameter "prompt_hint"`},
		{"a literal * is not any", workload(listed), GrantRequest{Resources: []string{"*"}}, `resource "*"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckProviderGrant(tc.w, "idp", tc.req)
			if tc.denied == "" {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				return
			}
			var we *wire.Error
			if !errors.As(err, &we) || we.Type != "AccessDeniedException" || !strings.Contains(err.Error(), tc.denied) {
				t.Fatalf("got %v, want AccessDeniedException containing %q", err, tc.denied)
			}
		})
	}
}
