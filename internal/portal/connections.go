package portal

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/behalf-dev/behalf/internal/dataplane/federation"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Statuses of a row of the connections page.
const (
	statusConnected    = "Connected"
	statusNeedsConsent = "Needs consent"
	statusExpired      = "Expired: needs re-authorization"
	statusNeedsScope   = "Needs more scope"
)

// row is one provider and workload on the connections page. Scopes are
// what Connect asks for: the routes' scopes and, for a connection that
// lacks some (Missing), those of the step-ups the user has been asked
// for.
type row struct {
	Provider, Workload, Status, LastUsed string
	Scopes, Missing                      []string
	Connected                            bool
}

// maxConnections bounds the connections read for one user's page.
const maxConnections = 1000

// connections shows the providers the portal's gateway needs for the
// signed-in user, and the connections they hold at those providers.
func (s *Server) connections(q *request) {
	ctx := q.ctx()
	rows, err := s.rows(q)
	if err != nil {
		s.internalError(ctx, q.w, "list connections", err)
		return
	}
	s.render(q.w, http.StatusOK, pageData{Portal: q.portal.Name, Base: s.base(q.portal), CSRF: s.web.CSRF(q.sess), Rows: rows, SignedIn: true})
}

func (s *Server) rows(q *request) ([]row, error) {
	ctx := q.ctx()
	needs, err := s.needs(ctx, q.portal)
	if err != nil {
		return nil, err
	}
	conns, err := s.o.Store.ListConnections(ctx, storage.ConnectionFilter{User: q.sess.User, Limit: maxConnections})
	if err != nil {
		return nil, err
	}
	ids, err := s.providerIDs(ctx, needs)
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, n := range needs {
		rows = append(rows, row{Provider: n.Provider, Workload: n.Workload, Scopes: n.Scopes, Status: statusNeedsConsent})
	}
	for _, c := range conns {
		name := ""
		for n, id := range ids {
			if id != "" && id == c.ProviderID {
				name = n
			}
		}
		if name == "" {
			continue // a provider this portal's gateway does not use
		}
		i := slices.IndexFunc(rows, func(r row) bool { return r.Provider == name && r.Workload == c.Workload })
		if i < 0 {
			rows = append(rows, row{Provider: name, Workload: c.Workload})
			i = len(rows) - 1
		}
		r := &rows[i]
		r.Connected, r.LastUsed = true, c.LastUsedAt.UTC().Format(time.RFC3339)
		r.Status = statusConnected
		if len(r.Scopes) == 0 {
			r.Scopes = c.Scopes
		}
		if c.Status != storage.ConnectionActive {
			r.Status = statusExpired
			continue
		}
		if err := s.stepUps(ctx, r, c); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// providerIDs maps the needed providers' names to their ids ("" for one
// that does not exist).
func (s *Server) providerIDs(ctx context.Context, needs []need) (map[string]string, error) {
	ids := map[string]string{}
	for _, n := range needs {
		if _, ok := ids[n.Provider]; ok {
			continue
		}
		p, err := s.o.Store.GetOAuth2Provider(ctx, n.Provider)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			ids[n.Provider] = ""
		case err != nil:
			return nil, err
		default:
			ids[n.Provider] = p.ID
		}
	}
	return ids, nil
}

// stepUps marks an active connection's row "Needs more scope" when it
// was granted less than the routes need or than an agent's step-up (a
// session of the user still in progress) asked for. Reconnect then asks
// for all of it; package federation adds what the user granted for an
// MCP server provider, as the broker's step-up does.
func (s *Server) stepUps(ctx context.Context, r *row, c storage.Connection) error {
	pending, err := s.o.Federation.PendingScopes(ctx, c.ConnectionKey)
	if err != nil {
		return err
	}
	wanted := oauthwire.UnionScopes(r.Scopes, pending)
	if r.Missing = federation.MissingScopes(c.Scopes, wanted); len(r.Missing) > 0 {
		r.Status, r.Scopes = statusNeedsScope, wanted
	}
	return nil
}

// posted checks a POST form's token: it must be the one derived from the
// browser's session (a cross-site form cannot know it).
func (s *Server) posted(h func(*request)) func(*request) {
	return func(q *request) {
		form, ok := s.web.Form(q.w, q.r, q.sess)
		if !ok {
			s.errorPage(q.w, http.StatusForbidden, "This form has expired", "It was not sent from this portal's page, or your sign-in changed. Go back to the portal's page and try again.")
			return
		}
		q.form = form
		h(q)
	}
}

// chosen is the row a form names; only rows of the page may be chosen.
func (s *Server) chosen(q *request) (row, bool) {
	get := func(k string) string {
		if v := q.form[k]; len(v) == 1 {
			return v[0]
		}
		return ""
	}
	provider, workload := get("provider"), get("workload")
	rows, err := s.rows(q)
	if err != nil {
		s.internalError(q.ctx(), q.w, "list connections", err)
		return row{}, false
	}
	i := slices.IndexFunc(rows, func(r row) bool { return r.Provider == provider && r.Workload == workload })
	if i < 0 {
		s.errorPage(q.w, http.StatusBadRequest, "Not a connection of this portal", "Go back to the portal's page and choose one of its connections.")
		return row{}, false
	}
	return rows[i], true
}

// completeURL is the portal's completion route, the return URL of its
// sessions.
func (s *Server) completeURL(q *request) string { return s.base(q.portal) + "complete" }

// connect starts the provider's authorization for the signed-in user and
// the row's workload, and sends the browser to the provider.
func (s *Server) connect(q *request) {
	r, ok := s.chosen(q)
	if !ok {
		return
	}
	to, err := s.o.Federation.StartForPortal(q.ctx(), federation.PortalRequest{Principal: principal(q.portal), Provider: r.Provider,
		Workload: r.Workload, User: q.sess.User, Scopes: r.Scopes, ReturnURL: s.completeURL(q)})
	if err != nil {
		s.refused(q, "Could not connect", err)
		return
	}
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
}

// complete binds the session the provider's callback sent the browser
// back with to the signed-in user, who must be the user it was started
// for.
func (s *Server) complete(q *request) {
	id := q.r.URL.Query().Get("session_id")
	if id == "" || len(id) > 256 {
		s.errorPage(q.w, http.StatusBadRequest, "Not completed", "The link names no authorization. Go back to the portal's page.")
		return
	}
	provider, err := s.o.Federation.CompleteForPortal(q.ctx(), principal(q.portal), id, s.completeURL(q), q.sess.User)
	if errors.Is(err, federation.ErrNotPortalSession) {
		s.errorPage(q.w, http.StatusBadRequest, "Not completed", "This authorization was not meant to be completed here.")
		return
	}
	if err != nil {
		s.refused(q, "Not completed", err)
		return
	}
	s.o.Log.LogAttrs(q.ctx(), slog.LevelInfo, "consent portal completed a session", slog.String(logging.KeyProvider, provider))
	http.Redirect(q.w, q.r, s.base(q.portal), http.StatusSeeOther)
}

// disconnect revokes the user's tokens at the provider where it offers
// revocation (RFC 7009) and deletes the connection.
func (s *Server) disconnect(q *request) {
	r, ok := s.chosen(q)
	if !ok {
		return
	}
	ctx := q.ctx()
	if !r.Connected {
		http.Redirect(q.w, q.r, s.base(q.portal), http.StatusSeeOther)
		return
	}
	p, err := s.o.Store.GetOAuth2Provider(ctx, r.Provider)
	var conn storage.Connection
	if err == nil {
		conn, err = s.o.Store.GetConnection(ctx, storage.ConnectionKey{ProviderID: p.ID, Workload: r.Workload, User: q.sess.User})
	}
	if errors.Is(err, storage.ErrNotFound) {
		http.Redirect(q.w, q.r, s.base(q.portal), http.StatusSeeOther) // gone meanwhile
		return
	}
	if err != nil {
		s.internalError(ctx, q.w, "read a connection", err)
		return
	}
	if _, err := s.o.Federation.RevokeForPortal(ctx, principal(q.portal), r.Provider, conn); err != nil {
		s.refused(q, "Could not disconnect", err)
		return
	}
	http.Redirect(q.w, q.r, s.base(q.portal), http.StatusSeeOther)
}

// signOut ends the session.
func (s *Server) signOut(q *request) {
	ctx := q.ctx()
	if err := s.web.EndSession(ctx, q.w, realm(q.portal), q.sess); err != nil {
		s.internalError(ctx, q.w, "end a session", err)
		return
	}
	s.web.Record(ctx, storage.AuditRecord{Operation: "PortalSignOut", Principal: principal(q.portal), User: q.sess.User}, "")
	s.render(q.w, http.StatusOK, pageData{Portal: q.portal.Name, Base: s.base(q.portal), Title: "You are signed out",
		Body: "Your connections stay as they are."})
}

// refused shows why an operation failed: an API error's message, which
// never holds a secret, or nothing of an internal one.
func (s *Server) refused(q *request, title string, err error) {
	e := wire.AsError(err)
	if e.Hidden() {
		s.internalError(q.ctx(), q.w, title, err)
		return
	}
	s.errorPage(q.w, e.Status, title, e.Message+".")
}
