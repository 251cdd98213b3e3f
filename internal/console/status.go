package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// metricsFigures is the overview's metrics section.
type metricsFigures struct {
	// Link is where Prometheus metrics are served; empty when not here.
	Link string
	// On says the figures were read; Since is how long they have counted.
	On      bool
	Summary telemetry.Summary
	Since   string
}

// figures reads the metrics in-process, from the registry /metrics
// serves; off when Prometheus metrics are.
func (s *Server) figures(q *request) (metricsFigures, bool) {
	f := metricsFigures{Link: s.o.Metrics}
	if s.o.Gatherer == nil {
		return f, true
	}
	sum, err := telemetry.Summarize(s.o.Gatherer)
	if err != nil {
		s.internalError(q, "read the metrics", err)
		return f, false
	}
	f.On, f.Summary, f.Since = true, sum, s.o.Now().Sub(s.o.Started).Round(time.Second).String()
	return f, true
}

// keyPurposes says what each rotating key set is for.
var keyPurposes = map[string]string{ //nolint:gosec // G101: what each key set is for, no credential
	"oauth-signing":         "signs the authorization server's access tokens (ES256)",
	"mcp-client-signing":    "signs behalf's MCP clients' assertions (ES256, RFC 7523)",
	"workload-access-token": "encrypts workload access tokens (A256GCM)",
	"workload-jwt":          "signs behalf's own workload JWTs (ES256, GetWorkloadJWT)",
}

// keys shows the keys' rotation through GetKeyRotationStatus: ids and
// dates, never material.
func (s *Server) keys(q *request) {
	var out behalfapi.GetKeyRotationStatusOutput
	if err := s.call(q, "GetKeyRotationStatus", struct{}{}, &out); err != nil {
		s.refused(q, "Could not read the keys' rotation", err)
		return
	}
	s.render(q, http.StatusOK, "keys", pageData{Title: "Key rotation", Data: struct {
		behalfapi.GetKeyRotationStatusOutput
		Uses     map[string]string
		MaxStale int
	}{out, keyPurposes, behalfapi.MaxStaleCount}})
}

// route is a gateway route as the console shows it: where a credential
// is injected, never its value or prefix, and the upstream's scheme and
// host.
type route struct {
	Name, Path, Kind, Workload, Upstream string
	Callers                              []string
	Provider, Type, Header               string
	Scopes                               []string
}

func routesOf(g *config.Gateway) []route {
	routes := make([]route, len(g.Routes))
	for i, r := range g.Routes {
		upstream := ""
		if u, err := url.Parse(r.Upstream); err == nil && u.Host != "" {
			upstream = u.Scheme + "://" + u.Host
		}
		c := r.Credential
		header := c.Header
		if c.QueryParameter != "" {
			header = "query parameter " + c.QueryParameter
		}
		if c.Provider == "" {
			header = ""
		}
		routes[i] = route{Name: r.Name, Path: r.Path, Kind: r.Kind, Workload: r.Workload, Upstream: upstream, Callers: r.Callers,
			Provider: c.Provider, Type: c.Type, Header: header, Scopes: c.Scopes}
	}
	return routes
}

// gateway shows the mounted gateway's routes, from the server's
// configuration.
func (s *Server) gateway(q *request) {
	g := s.o.Gateway
	if g == nil {
		s.render(q, http.StatusOK, "gateway", pageData{Title: "Gateway"})
		return
	}
	s.render(q, http.StatusOK, "gateway", pageData{Title: "Gateway " + g.ID, Data: struct {
		ID, Listen, Principal string
		Routes                []route
	}{g.ID, g.Listen, g.Principal, routesOf(g)}})
}

// anchorOf is the last published anchor, for VerifyAuditLog and the page.
func (s *Server) anchorOf() (a *Anchor, on bool) {
	if s.o.Anchor == nil {
		return nil, false
	}
	if got, ok := s.o.Anchor(); ok {
		return &got, true
	}
	return nil, true
}

// anchorInput is a for VerifyAuditLog, nil when there is none to check.
func anchorInput(a *Anchor) *behalfapi.AuditAnchor {
	if a == nil || a.Seq < 1 || strings.TrimSpace(a.Hash) == "" {
		return nil
	}
	return &behalfapi.AuditAnchor{Seq: a.Seq, Hash: a.Hash}
}
