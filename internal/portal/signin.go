package portal

import (
	"errors"
	"net/http"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/webui"
)

// signIn sends the browser to the portal's identity provider.
func (s *Server) signIn(q *request) {
	if err := s.web.StartSignIn(q.w, q.r, realm(q.portal)); err != nil {
		s.failed(q, err)
	}
}

// callback receives the browser back from the identity provider and
// signs the user in.
func (s *Server) callback(q *request) {
	ctx, p := q.ctx(), q.portal
	rec := storage.AuditRecord{Operation: "PortalSignIn", Principal: principal(p), Provider: p.Provider}
	id, err := s.web.FinishSignIn(q.w, q.r, realm(p))
	var f *webui.Failure
	if errors.As(err, &f) {
		s.web.Record(ctx, rec, f.ErrorType)
	}
	if err != nil {
		s.failed(q, err)
		return
	}
	rec.User = id.User
	if err := s.web.StartSession(q.w, q.r, realm(p), id); err != nil {
		s.internalError(ctx, q.w, "seal a session", err)
		return
	}
	s.web.Record(ctx, rec, "")
	http.Redirect(q.w, q.r, s.base(p), http.StatusSeeOther)
}

// failed shows a sign-in's failure, or nothing of an internal error.
func (s *Server) failed(q *request, err error) {
	f, ok := s.web.Refused(q.ctx(), err)
	if !ok {
		s.internalError(q.ctx(), q.w, "sign in", err)
		return
	}
	s.errorPage(q.w, f.Status, f.Title, f.Body)
}
