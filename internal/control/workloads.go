package control

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// maxReturnURLs bounds a workload identity's allow-list; the model sets no
// limit, but an unbounded list is a storage hazard.
const maxReturnURLs = 50

// Any is the allow-list entry that, alone, removes the restriction.
const Any = "*"

// accessPolicy holds behalf's extension members of a workload identity:
// which inbound authorizers may vouch for its users, and which credential
// providers it may use, and how far (authz.CheckProviderGrant). Absent
// means unrestricted on create and unchanged on update; ["*"] means
// unrestricted.
type accessPolicy struct {
	Authorizers *[]string                  `json:"allowedInboundAuthorizers,omitempty"`
	Providers   *[]behalfapi.ProviderGrant `json:"allowedCredentialProviders,omitempty"`
}

func (p *accessPolicy) validate(c *wire.Checker, configured []string) {
	if p.Authorizers != nil {
		const name = "allowedInboundAuthorizers"
		list := *p.Authorizers
		c.Strings(name, list, 0, 50, 1, 64, nil)
		for i, a := range list {
			switch {
			case a == Any && len(list) > 1:
				c.Failf(name, "%q must stand alone", Any)
			case a != Any && !slices.Contains(configured, a):
				c.Failf(fmt.Sprintf("%s[%d]", name, i), "names no configured inbound authorizer (configured: %s)", listOrNone(configured))
			}
		}
	}
	if p.Providers != nil {
		const name = "allowedCredentialProviders"
		list := *p.Providers
		if len(list) > 50 {
			c.Failf(name, "must have at most 50 items")
			return
		}
		seen := map[string]bool{}
		for i, g := range list {
			member := fmt.Sprintf("%s[%d]", name, i)
			qualified := len(g.Scopes)+len(g.Resources)+len(g.Audiences)+len(g.CustomParameters) > 0
			switch {
			case g.Provider == Any && (len(list) > 1 || qualified):
				c.Failf(member, "%q must stand alone, without scopes, resources, audiences or custom parameters", Any)
			case g.Provider != Any:
				c.String(member+".provider", g.Provider, 1, 128, providerNamePattern)
			}
			if seen[g.Provider] {
				c.Failf(member, "lists provider %s twice", g.Provider)
			}
			seen[g.Provider] = true
			checkGrantList(c, member+".scopes", g.Scopes, 100, 128, nil)
			checkGrantList(c, member+".resources", g.Resources, maxGrantValues, 2048, nil)
			checkGrantList(c, member+".audiences", g.Audiences, maxGrantValues, 2048, nil)
			checkGrantList(c, member+".customParameters", g.CustomParameters, maxGrantValues, 256, customParameterNamePattern)
		}
	}
}

// maxGrantValues bounds the resources, audiences and custom parameter
// names of one provider grant, as a request's are (GetResourceOauth2Token
// takes at most 20 resources, 20 audiences and 50 custom parameters).
const maxGrantValues = 50

var customParameterNamePattern = wire.Pattern(`[a-zA-Z0-9\-_\.]+|\*`)

// checkGrantList checks one list of a provider grant: at most maxCount
// values of 1..maxLen bytes, none twice, and "*" (any value) only alone.
func checkGrantList(c *wire.Checker, name string, list []string, maxCount, maxLen int, pattern *regexp.Regexp) {
	c.Strings(name, list, 0, maxCount, 1, maxLen, pattern)
	seen := map[string]bool{}
	for i, v := range list {
		if v == Any && len(list) > 1 {
			c.Failf(name, "%q must stand alone", Any)
		}
		if seen[v] {
			c.Failf(fmt.Sprintf("%s[%d]", name, i), "is listed twice")
		}
		seen[v] = true
	}
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// apply stores the policy on w.
func (p *accessPolicy) apply(w *storage.WorkloadIdentity) {
	if p.Authorizers != nil {
		w.AllowedAuthorizers = slices.Clone(*p.Authorizers)
		if slices.Equal(w.AllowedAuthorizers, []string{Any}) {
			w.AllowedAuthorizers = nil
		} else if w.AllowedAuthorizers == nil {
			w.AllowedAuthorizers = []string{}
		}
	}
	if p.Providers != nil {
		w.AllowedProviders = make([]storage.ProviderGrant, 0, len(*p.Providers))
		for _, g := range *p.Providers {
			if g.Provider == Any {
				w.AllowedProviders = nil
				break
			}
			// The wire and the stored grant have one shape; the
			// conversion fails to compile if they drift apart.
			w.AllowedProviders = append(w.AllowedProviders, storage.ProviderGrant(g))
		}
	}
}

type createWorkloadIdentityInput struct {
	Name       string            `json:"name"`
	ReturnURLs []string          `json:"allowedResourceOauth2ReturnUrls,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	accessPolicy
}

func (in *createWorkloadIdentityInput) validate(c *wire.Checker, authorizers []string) {
	c.String("name", in.Name, 3, 255, workloadNamePattern)
	checkReturnURLs(c, in.ReturnURLs)
	c.Tags("tags", in.Tags)
	in.accessPolicy.validate(c, authorizers)
}

// checkReturnURLs checks allowedResourceOauth2ReturnUrls. Beyond the
// model's pattern, behalf accepts only absolute https URLs, or http on a
// loopback host for development: the server redirects browsers there with
// a session id, so an open or script scheme would be a hazard.
func checkReturnURLs(c *wire.Checker, urls []string) {
	const name = "allowedResourceOauth2ReturnUrls"
	c.Strings(name, urls, 0, maxReturnURLs, 1, 2048, returnURLPattern)
	seen := map[string]bool{}
	for i, raw := range urls {
		member := fmt.Sprintf("%s[%d]", name, i)
		if seen[raw] {
			c.Failf(member, "is listed twice")
		}
		seen[raw] = true
		if err := CheckReturnURL(raw); err != nil {
			c.Failf(member, "%v", err)
		}
	}
}

// CheckReturnURL applies behalf's rules for a return URL.
func CheckReturnURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("must be an absolute URL")
	}
	if u.Fragment != "" || u.User != nil {
		return fmt.Errorf("must not contain a fragment or user information")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("must use https (plain http is allowed only for localhost, 127.0.0.1 or ::1)")
	}
	return fmt.Errorf("must use https")
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type workloadIdentityOutput struct {
	Name              string     `json:"name"`
	Arn               string     `json:"workloadIdentityArn"`
	AllowedReturnURLs []string   `json:"allowedResourceOauth2ReturnUrls,omitempty"`
	CreatedTime       *wire.Time `json:"createdTime,omitempty"`
	LastUpdatedTime   *wire.Time `json:"lastUpdatedTime,omitempty"`
	// Absent when unrestricted; an empty list allows nothing.
	Authorizers *[]string                  `json:"allowedInboundAuthorizers,omitempty"`
	Providers   *[]behalfapi.ProviderGrant `json:"allowedCredentialProviders,omitempty"`
}

func (s *Service) workloadOutput(w storage.WorkloadIdentity, withTimes bool) *workloadIdentityOutput {
	out := &workloadIdentityOutput{Name: w.Name, Arn: s.cfg.ARNs.Workload(w.Name), AllowedReturnURLs: w.AllowedReturnURLs}
	if w.AllowedAuthorizers != nil {
		a := append([]string{}, w.AllowedAuthorizers...)
		out.Authorizers = &a
	}
	if w.AllowedProviders != nil {
		p := make([]behalfapi.ProviderGrant, len(w.AllowedProviders))
		for i, g := range w.AllowedProviders {
			p[i] = behalfapi.ProviderGrant(g)
		}
		out.Providers = &p
	}
	if withTimes {
		created, updated := epoch(w.CreatedAt), epoch(w.UpdatedAt)
		out.CreatedTime, out.LastUpdatedTime = &created, &updated
	}
	return out
}

func (s *Service) createWorkloadIdentity(ctx context.Context, c *wire.Call, in *createWorkloadIdentityInput) (*workloadIdentityOutput, error) {
	var check wire.Checker
	in.validate(&check, s.cfg.InboundAuthorizers)
	if err := check.Err(); err != nil {
		return nil, err // a refused name is not recorded
	}
	c.Audit.Workload = in.Name
	now := s.Now()
	w := storage.WorkloadIdentity{Name: in.Name, AllowedReturnURLs: in.ReturnURLs, CreatedAt: now, UpdatedAt: now}
	in.apply(&w)
	if err := c.Change(s.store).CreateWorkloadIdentity(ctx, w, in.Tags); err != nil {
		return nil, wire.StorageError(err, "workload identity", in.Name)
	}
	return s.workloadOutput(w, false), nil
}

type workloadNameInput struct {
	Name string `json:"name"`
}

func (in *workloadNameInput) Validate(c *wire.Checker) {
	c.String("name", in.Name, 3, 255, workloadNamePattern)
}

func (s *Service) getWorkloadIdentity(ctx context.Context, _ *wire.Call, in *workloadNameInput) (*workloadIdentityOutput, error) {
	w, err := s.store.GetWorkloadIdentity(ctx, in.Name)
	if err != nil {
		return nil, wire.StorageError(err, "workload identity", in.Name)
	}
	return s.workloadOutput(w, true), nil
}

type updateWorkloadIdentityInput struct {
	Name string `json:"name"`
	// A present list replaces the stored one; an absent one leaves it.
	ReturnURLs *[]string `json:"allowedResourceOauth2ReturnUrls,omitempty"`
	accessPolicy
}

func (s *Service) updateWorkloadIdentity(ctx context.Context, c *wire.Call, in *updateWorkloadIdentityInput) (*workloadIdentityOutput, error) {
	var check wire.Checker
	check.String("name", in.Name, 3, 255, workloadNamePattern)
	if in.ReturnURLs != nil {
		checkReturnURLs(&check, *in.ReturnURLs)
	}
	in.validate(&check, s.cfg.InboundAuthorizers)
	if err := check.Err(); err != nil {
		return nil, err // a refused name is not recorded
	}
	c.Audit.Workload = in.Name
	defer s.changed(storage.KindWorkloadIdentity, in.Name)
	w, err := c.Change(s.store).UpdateWorkloadIdentity(ctx, in.Name, func(w storage.WorkloadIdentity) (storage.WorkloadIdentity, error) {
		if in.ReturnURLs != nil {
			w.AllowedReturnURLs = *in.ReturnURLs
		}
		in.apply(&w)
		return w, nil
	})
	if err != nil {
		return nil, wire.StorageError(err, "workload identity", in.Name)
	}
	return s.workloadOutput(w, true), nil
}

func (s *Service) deleteWorkloadIdentity(ctx context.Context, c *wire.Call, in *workloadNameInput) (*struct{}, error) {
	c.Audit.Workload = in.Name
	defer s.changed(storage.KindWorkloadIdentity, in.Name)
	return nil, wire.StorageError(c.Change(s.store).DeleteWorkloadIdentity(ctx, in.Name), "workload identity", in.Name)
}

type listInput struct {
	NextToken  *string `json:"nextToken,omitempty"`
	MaxResults *int    `json:"maxResults,omitempty"`
}

type listWorkloadIdentitiesInput struct{ listInput }

func (in *listWorkloadIdentitiesInput) Validate(c *wire.Checker) {
	c.Range("maxResults", in.MaxResults, 1, 20)
}

type workloadIdentityItem struct {
	Name string `json:"name"`
	Arn  string `json:"workloadIdentityArn"`
}

type listWorkloadIdentitiesOutput struct {
	Items     []workloadIdentityItem `json:"workloadIdentities"`
	NextToken *string                `json:"nextToken,omitempty"`
}

func (s *Service) listWorkloadIdentities(ctx context.Context, _ *wire.Call, in *listWorkloadIdentitiesInput) (*listWorkloadIdentitiesOutput, error) {
	after, err := wire.ParseNextToken("nextToken", in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults, 20)
	ws, err := s.store.ListWorkloadIdentities(ctx, storage.Page{After: after, Limit: limit + 1})
	if err != nil {
		return nil, fmt.Errorf("list workload identities: %w", err)
	}
	ws, next := paginate(ws, limit, func(w storage.WorkloadIdentity) string { return w.Name })
	out := &listWorkloadIdentitiesOutput{Items: make([]workloadIdentityItem, len(ws)), NextToken: next}
	for i, w := range ws {
		out.Items[i] = workloadIdentityItem{Name: w.Name, Arn: s.cfg.ARNs.Workload(w.Name)}
	}
	return out, nil
}
