package federation

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/behalf-dev/behalf/internal/logging"
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
	ctx := wire.WithRequestID(r.Context(), "browser-"+randomToken()[:16])
	id, _ := strings.CutPrefix(r.URL.Query().Get("session_id"), SessionURIPrefix)
	if len(id) > 256 {
		s.page(ctx, w, http.StatusNotFound, "Unknown session", "No session has that id.")
		return
	}
	sess, err := s.Store.GetOAuthSession(ctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.logger().LogAttrs(ctx, slog.LevelError, "development page: session not read", logging.Err(err))
		s.page(ctx, w, http.StatusInternalServerError, "Not completed", "behalf could not read the session because of an internal error.")
		return
	}
	if err != nil {
		s.page(ctx, w, http.StatusNotFound, "Unknown session", "No session has that id.")
		return
	}
	userID, ok := strings.CutPrefix(sess.User, "id:")
	if !ok {
		s.page(ctx, w, http.StatusForbidden, "Not for this session", "The development page completes only sessions started with GetWorkloadAccessTokenForUserId. A session for a JWT user must be completed by your application with the user's token.")
		return
	}
	provider := s.providerName(ctx, sess.ProviderID)
	tr := s.newTrail(ctx, storage.AuditRecord{Operation: "CompleteResourceTokenAuth", Principal: "development-page", RequestID: wire.RequestID(ctx),
		Workload: sess.Workload, User: sess.User, Provider: provider})
	if err := s.bind(ctx, tr.changeFailing, sess, sess.User); err != nil {
		e := wire.AsError(err)
		tr.finish(ctx, e.Type)
		status := http.StatusConflict
		if e.Hidden() {
			s.logger().LogAttrs(ctx, slog.LevelError, "development page: session not completed", slog.String(logging.KeySession, sess.ID), logging.Err(err))
			status = http.StatusInternalServerError
		}
		s.page(ctx, w, status, "Not completed", e.Message+".")
		return
	}
	tr.finish(ctx, "")
	s.logger().LogAttrs(ctx, slog.LevelInfo, "development page completed a session",
		slog.String(logging.KeyWorkload, sess.Workload), slog.String(logging.KeyUser, sess.User))
	s.page(ctx, w, http.StatusOK, "Connected", fmt.Sprintf("%s is connected for user %s and workload %s. The agent can fetch its token now; you can close this tab.",
		provider, userID, sess.Workload))
}
