package authz

import (
	"slices"
	"sort"
	"strings"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// GrantRequest is what a request for a provider's credentials asks for:
// everything that widens what the token it gets can do.
type GrantRequest struct {
	Scopes []string
	// Resources are RFC 8707 resource indicators; Audiences the audience
	// parameter of RFC 8693 §2.1 and of providers that take it elsewhere.
	Resources []string
	Audiences []string
	// CustomParameters are sent to the provider as they are; only their
	// names are checked.
	CustomParameters map[string]string
}

// CheckProviderGrant enforces a workload identity's credential-provider
// allow-list, behalf's least-privilege binding of agents to providers: a
// workload without one may use any provider as it likes; otherwise the
// provider must be listed, and every scope, resource, audience and custom
// parameter name of req must be allowed by its grant (docs/data-plane.md).
// An error is an AccessDeniedException.
func CheckProviderGrant(w storage.WorkloadIdentity, provider string, req GrantRequest) error {
	if w.AllowedProviders == nil {
		return nil
	}
	i := slices.IndexFunc(w.AllowedProviders, func(g storage.ProviderGrant) bool { return g.Provider == provider })
	if i < 0 {
		return wire.AccessDenied("workload identity %s is not allowed to use credential provider %s", w.Name, provider)
	}
	g := w.AllowedProviders[i]
	if allowed := g.Scopes; len(allowed) > 0 && !isAny(allowed) {
		if len(req.Scopes) == 0 {
			// Without a scope the provider would apply its defaults, which
			// the grant does not limit (RFC 6749 §3.3).
			return wire.AccessDenied("workload identity %s may use credential provider %s only with scopes from %s; request them explicitly",
				w.Name, provider, strings.Join(allowed, " "))
		}
		if err := checkListed(w.Name, provider, "scope", req.Scopes, allowed); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(req.CustomParameters))
	for k := range req.CustomParameters {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, c := range []struct {
		what           string
		asked, allowed []string
	}{
		{"resource", req.Resources, g.Resources},
		{"audience", req.Audiences, g.Audiences},
		{"custom parameter", names, g.CustomParameters},
	} {
		if isAny(c.allowed) {
			continue
		}
		if err := checkListed(w.Name, provider, c.what, c.asked, c.allowed); err != nil {
			return err
		}
	}
	return nil
}

// checkListed requires every asked value to be in allowed; an empty
// allowed list allows none.
func checkListed(workload, provider, what string, asked, allowed []string) error {
	for _, v := range asked {
		if !slices.Contains(allowed, v) {
			return wire.AccessDenied("workload identity %s is not allowed %s %q of credential provider %s", workload, what, v, provider)
		}
	}
	return nil
}

func isAny(list []string) bool {
	return len(list) == 1 && list[0] == storage.GrantAny
}
