// Package portal serves consent portals' pages under /portals/{id}/
// (docs/consent-portals.md): a gateway's users sign in with the portal's
// identity provider (OpenID Connect authorization code with PKCE S256 and
// a nonce), see the OAuth2 providers the gateway's routes need for them
// and the connections they hold, and connect, reconnect or disconnect
// each. Connecting runs USER_FEDERATION for the signed-in user through
// package federation, which the portal completes itself; disconnecting
// revokes at the provider (RFC 7009) and deletes the connection.
//
// The user comes only from the portal's session cookie, never from a URL
// or a form. Every form carries a token derived from the session; pages
// are html/template with oauthwire.WritePage's headers (no script, no
// framing, no referrer). Non-goals: RP-initiated logout at the identity
// provider, and sources other than the gateway this server mounts.
package portal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/dataplane/federation"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/provider"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/webui"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Federation is what the portal asks of package federation.
type Federation interface {
	webui.IDPs
	StartForPortal(ctx context.Context, in federation.PortalRequest) (string, error)
	CompleteForPortal(ctx context.Context, principal, sessionID, returnURL, user string) (string, error)
	RevokeForPortal(ctx context.Context, principal, providerName string, conn storage.Connection) (bool, error)
	PendingScopes(ctx context.Context, k storage.ConnectionKey) ([]string, error)
}

// Options are the portal pages' collaborators.
type Options struct {
	Store      storage.Storage
	Federation Federation
	Signatures webui.Signatures
	// Audit records sign-ins and sign-outs; nil records nothing.
	Audit wire.AuditLog
	// Gateway is the mounted gateway, whose routes say which providers a
	// portal's users need; nil when none is mounted.
	Gateway *config.Gateway
	// PublicURL is the server's public URL, without a trailing slash.
	PublicURL string
	// Key seals the session cookies and derives the sign-in's state,
	// PKCE verifier and nonce and the forms' tokens; at least 32 bytes,
	// the same on every replica.
	Key []byte
	// SessionTTL is how long a sign-in lasts; default
	// config.DefaultPortalSessionTTL.
	SessionTTL time.Duration
	// ReauthenticateAfter is how old a sign-in may be for Connect,
	// Reconnect and Disconnect, which grant or end an agent's access to
	// an account; older, the user signs in again first. 0 for any age.
	ReauthenticateAfter time.Duration
	Now                 func() time.Time
	Log                 *slog.Logger
}

// Server serves the pages of every portal.
type Server struct {
	o   Options
	web *webui.Web
}

// New checks opts.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Federation == nil || opts.Signatures == nil {
		return nil, errors.New("portal: Store, Federation and Signatures are required")
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = config.DefaultPortalSessionTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	web, err := webui.New(webui.Options{Name: "portal", Key: opts.Key, IDPs: opts.Federation, Signatures: opts.Signatures, TokenIDs: opts.Store,
		PublicURL: opts.PublicURL, SessionTTL: opts.SessionTTL, ReauthenticateAfter: opts.ReauthenticateAfter, Audit: opts.Audit, Now: opts.Now, Log: opts.Log})
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	return &Server{o: opts, web: web}, nil
}

// Path is where portal id's pages are served.
func Path(id string) string { return "/portals/" + id + "/" }

// Mount registers the pages.
func (s *Server) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /portals/{id}/{$}", s.portal(s.home))
	mux.HandleFunc("GET /portals/{id}/signin", s.portal(s.signIn))
	mux.HandleFunc("GET /portals/{id}/callback", s.portal(s.callback))
	mux.HandleFunc("GET /portals/{id}/complete", s.portal(s.signedIn(s.complete)))
	mux.HandleFunc("POST /portals/{id}/connect", s.portal(s.signedIn(s.posted(s.recent(s.connect)))))
	mux.HandleFunc("POST /portals/{id}/disconnect", s.portal(s.signedIn(s.posted(s.recent(s.disconnect)))))
	mux.HandleFunc("POST /portals/{id}/signout", s.portal(s.signedIn(s.posted(s.signOut))))
}

// request is one browser request to a portal.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	portal storage.ConsentPortal
	// sess is the signed-in user's session (signedIn handlers only).
	sess webui.Session
	// form is the POST form, its token checked (posted handlers only).
	form map[string][]string
}

func (q *request) ctx() context.Context { return q.r.Context() }

// realm is where the portal's users sign in.
func realm(p storage.ConsentPortal) webui.Realm {
	return webui.Realm{ID: p.ID, Path: Path(p.ID), Provider: p.Provider, Scopes: p.Scopes, Audience: p.Audience}
}

// base is the portal's public URL, with a trailing slash.
func (s *Server) base(p storage.ConsentPortal) string { return s.web.Base(realm(p)) }

// principal names the portal in audit records.
func principal(p storage.ConsentPortal) string { return "portal:" + p.ID }

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,50}-[A-Za-z0-9]{10}$`)

// portal loads the portal the path names.
func (s *Server) portal(h func(*request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := wire.WithRequestID(r.Context(), "portal-"+rand.Text()[:16])
		r = r.WithContext(ctx)
		id := r.PathValue("id")
		if !idPattern.MatchString(id) {
			s.errorPage(w, http.StatusNotFound, "No such portal", "This address names no consent portal.")
			return
		}
		p, err := s.o.Store.GetConsentPortal(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			s.errorPage(w, http.StatusNotFound, "No such portal", "This address names no consent portal.")
			return
		}
		if err != nil {
			s.internalError(ctx, w, "read a consent portal", err)
			return
		}
		h(&request{w: w, r: r, portal: p})
	}
}

// signedIn runs h for the portal's signed-in user; a browser without a
// live session is sent to sign in (a GET) or refused (a POST).
func (s *Server) signedIn(h func(*request)) func(*request) {
	return func(q *request) {
		sess, ok, err := s.web.Session(q.ctx(), q.r, realm(q.portal))
		if err != nil {
			s.internalError(q.ctx(), q.w, "read a portal session", err)
			return
		}
		if !ok {
			if q.r.Method != http.MethodGet {
				s.errorPage(q.w, http.StatusUnauthorized, "You are signed out", "Your sign-in has ended. Sign in again from the portal's page.")
				return
			}
			http.Redirect(q.w, q.r, s.base(q.portal)+"signin", http.StatusSeeOther)
			return
		}
		q.sess = sess
		h(q)
	}
}

// recent runs h, a sensitive action, only for a sign-in no older than
// ReauthenticateAfter; for an older one it does nothing and sends the
// browser to sign in again (webui.Web.Reauthenticate), back to the
// connections page, where the user repeats the action: a POST is never
// replayed after a sign-in.
func (s *Server) recent(h func(*request)) func(*request) {
	return func(q *request) {
		if s.web.Recent(q.sess) {
			h(q)
			return
		}
		if err := s.web.Reauthenticate(q.w, q.r, realm(q.portal)); err != nil {
			s.failed(q, err)
		}
	}
}

// home shows the connections page, or sends a browser with no session
// to sign in.
func (s *Server) home(q *request) { s.signedIn(s.connections)(q) }

// internalError logs err and shows a page that says nothing of it.
func (s *Server) internalError(ctx context.Context, w http.ResponseWriter, what string, err error) {
	s.o.Log.LogAttrs(ctx, slog.LevelError, "consent portal: could not "+what, slog.String(logging.KeyRequestID, wire.RequestID(ctx)), logging.Err(err))
	s.errorPage(w, http.StatusInternalServerError, "Something went wrong", "behalf could not finish this because of an internal error. Try again in a moment.")
}

// needs lists the (provider, workload) pairs the portal's gateway needs
// users' consent for, with their scopes: the providers its routes use
// USER_FEDERATION for — an mcp route's own workload; a tool route's
// callers present their own workload access tokens, so it is paired with
// each agent route's workload, the agents the gateway fronts — and the
// OAuth2 providers those agents' workload identities may ask users'
// tokens of (agentGrants).
func (s *Server) needs(ctx context.Context, p storage.ConsentPortal) ([]need, error) {
	g := s.o.Gateway
	if g == nil || !slices.ContainsFunc(p.Sources, func(src storage.ConsentPortalSource) bool {
		return src.Identifier == g.ID || strings.HasSuffix(src.Identifier, ":gateway/"+g.ID)
	}) {
		return nil, nil
	}
	agents := agentWorkloads(g)
	var out []need
	add := func(provider, workload string, scopes []string) {
		i := slices.IndexFunc(out, func(n need) bool { return n.Provider == provider && n.Workload == workload })
		if i < 0 {
			out = append(out, need{Provider: provider, Workload: workload})
			i = len(out) - 1
		}
		out[i].Scopes = oauthwire.UnionScopes(out[i].Scopes, scopes)
	}
	for _, r := range g.Routes {
		if r.Credential.Type != config.CredentialUser {
			continue
		}
		switch r.Kind {
		case config.KindMCP:
			add(r.Credential.Provider, r.Workload, r.Credential.Scopes)
		case config.KindTool:
			for _, w := range agents {
				add(r.Credential.Provider, w, r.Credential.Scopes)
			}
		}
	}
	if err := s.agentGrants(ctx, agents, add); err != nil {
		return nil, err
	}
	return out, nil
}

// agentGrants adds, for each agent workload, the OAuth2 providers its
// workload identity's grants name that can ask users' consent (they have
// an authorization endpoint), with the grant's scopes. A workload allowed
// every provider names none: listing every provider of the server would
// say nothing of what the agent uses. MCP server providers are left to
// their routes.
func (s *Server) agentGrants(ctx context.Context, agents []string, add func(provider, workload string, scopes []string)) error {
	var granted []storage.WorkloadIdentity
	for _, name := range agents {
		w, err := s.o.Store.GetWorkloadIdentity(ctx, name)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			continue // a route whose workload identity is not created yet
		case err != nil:
			return err
		case w.AllowedProviders != nil:
			granted = append(granted, w)
		}
	}
	for _, w := range granted {
		for _, g := range w.AllowedProviders {
			p, err := s.o.Store.GetOAuth2Provider(ctx, g.Provider)
			if errors.Is(err, storage.ErrNotFound) {
				continue // an API-key provider, or one deleted since
			}
			if err != nil {
				return err
			}
			if cfg, err := provider.Decode(p.Config); err == nil && cfg.MCP == nil && cfg.Resolved.AuthorizationEndpoint != "" {
				add(p.Name, w.Name, g.Scopes)
			}
		}
	}
	return nil
}

// agentWorkloads are the workloads of g's agent routes.
func agentWorkloads(g *config.Gateway) []string {
	var agents []string
	for _, r := range g.Routes {
		if r.Kind == config.KindAgent && !slices.Contains(agents, r.Workload) {
			agents = append(agents, r.Workload)
		}
	}
	return agents
}

// need is a provider a workload needs the user's consent to.
type need struct {
	Provider, Workload string
	Scopes             []string
}

func (n need) String() string { return fmt.Sprintf("%s for %s", n.Provider, n.Workload) }
