package console

import (
	"errors"
	"net/http"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/webui"
	"github.com/behalf-dev/behalf/internal/wire"
)

// signIn sends the browser to the organisation's identity provider.
func (s *Server) signIn(q *request) {
	if err := s.web.StartSignIn(q.w, q.r, s.realm); err != nil {
		s.failed(q, err)
	}
}

// callback signs a person in whose ID token carries the admin claim; the
// claim is checked at every sign-in, and a refusal is audited.
func (s *Server) callback(q *request) {
	ctx := q.ctx()
	rec := storage.AuditRecord{Operation: "ConsoleSignIn", Principal: "console:" + s.o.Config.Principal, Provider: s.o.Config.Provider}
	id, err := s.web.FinishSignIn(q.w, q.r, s.realm)
	var f *webui.Failure
	if errors.As(err, &f) {
		s.web.Record(ctx, rec, f.ErrorType)
	}
	if err != nil {
		s.failed(q, err)
		return
	}
	rec.Principal, rec.User = s.principal(id.User), id.User
	if !isAdmin(id.Claims, s.o.Config.ClaimName, s.o.Config.ClaimValue) {
		s.web.Record(ctx, rec, wire.TypeAccessDenied)
		s.errorPage(q, http.StatusForbidden, "You are not an administrator",
			"Your sign-in worked, but your identity provider does not name you an administrator of behalf. Ask for the administrators' group.")
		return
	}
	if err := s.web.StartSession(q.w, q.r, s.realm, id); err != nil {
		s.internalError(q, "seal a session", err)
		return
	}
	s.web.Record(ctx, rec, "")
	http.Redirect(q.w, q.r, s.web.Base(s.realm), http.StatusSeeOther)
}

// failed shows a sign-in's failure, or nothing of an internal error.
func (s *Server) failed(q *request, err error) {
	f, ok := s.web.Refused(q.ctx(), err)
	if !ok {
		s.internalError(q, "sign in", err)
		return
	}
	s.errorPage(q, f.Status, f.Title, f.Body)
}

// signOut ends the session on every replica.
func (s *Server) signOut(q *request) {
	if err := s.web.EndSession(q.ctx(), q.w, s.realm, q.sess); err != nil {
		s.internalError(q, "end a session", err)
		return
	}
	s.web.Record(q.ctx(), storage.AuditRecord{Operation: "ConsoleSignOut", Principal: s.principal(q.sess.User), User: q.sess.User}, "")
	s.render(q, http.StatusOK, "message", pageData{Title: "You are signed out", Body: "Sign in again to use the console.", SignIn: true})
}
