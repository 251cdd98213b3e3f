package federation

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// DevComplete serves the development completion page
// (GET /dev/complete?session_id=…), for a userId-based session: it does
// what an application's return-URL endpoint does after checking who is
// signed in — CompleteResourceTokenAuth for the session's own user — so a
// newcomer can run the whole flow without writing one. Anyone holding the
// session URI can complete it here, which is why it exists only with
// development mode on, and never for sessions of JWT users.
func (s *Service) DevComplete(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, _ := strings.CutPrefix(r.URL.Query().Get("session_id"), SessionURIPrefix)
	sess, err := s.Store.GetOAuthSession(ctx, id)
	if err != nil || len(id) > 256 {
		s.page(w, http.StatusNotFound, "Unknown session", "No session has that id.")
		return
	}
	userID, ok := strings.CutPrefix(sess.User, "id:")
	if !ok {
		s.page(w, http.StatusForbidden, "Not for this session", "The development page completes only sessions started with GetWorkloadAccessTokenForUserId. A session for a JWT user must be completed by your application with the user's token.")
		return
	}
	provider := s.Access.ProviderName(ctx, sess.ProviderID)
	tr := s.newTrail(storage.AuditRecord{Operation: "CompleteResourceTokenAuth", Principal: "development-page", RequestID: "browser-" + randomToken()[:16],
		Workload: sess.Workload, User: sess.User, Provider: provider})
	if err := s.bind(ctx, tr.changeFailing, sess, sess.User); err != nil {
		e := wire.AsError(err)
		tr.finish(ctx, e.Type)
		s.page(w, http.StatusConflict, "Not completed", e.Message+".")
		return
	}
	tr.finish(ctx, "")
	if s.Log != nil {
		s.Log.LogAttrs(ctx, slog.LevelInfo, "development page completed a session", slog.String("workload", sess.Workload), slog.String("user", sess.User))
	}
	s.page(w, http.StatusOK, "Connected", fmt.Sprintf("%s is connected for user %s and workload %s. The agent can fetch its token now; you can close this tab.",
		provider, userID, sess.Workload))
}
