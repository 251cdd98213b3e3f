package federation

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/wire"
)

// sessionsUnreadable is storage that cannot read sessions.
type sessionsUnreadable struct{ storage.Storage }

func (sessionsUnreadable) GetOAuthSessionByState(context.Context, []byte) (storage.OAuthSession, error) {
	return storage.OAuthSession{}, errors.New("database unavailable")
}

// A callback whose session cannot be read is an internal error, logged
// with the callback's request id, not a sign-in link "not valid".
func TestCallbackStorageFailureIsLoggedNotHidden(t *testing.T) {
	st, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "behalf.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var logs bytes.Buffer
	s := New(Deps{Store: sessionsUnreadable{st}, Now: time.Now, Log: slog.New(logging.ContextHandler{Inner: slog.NewTextHandler(&logs, nil), Attrs: wire.LogAttrs})}, Options{})

	w := httptest.NewRecorder()
	s.Callback(w, httptest.NewRequest(http.MethodGet, "/identities/oauth2/callback/provider-1?state=some-state&code=c", nil))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500; page: %s", w.Code, w.Body)
	}
	if line := logs.String(); !strings.Contains(line, "database unavailable") || !strings.Contains(line, "request_id=browser-") {
		t.Errorf("log %q lacks the cause or the request id", line)
	}
}

func (sessionsUnreadable) GetOAuthSession(context.Context, string) (storage.OAuthSession, error) {
	return storage.OAuthSession{}, errors.New("database unavailable")
}

// The development page, like the callback, reports a session it cannot
// read as an internal error, logged with its request id, not as an
// unknown session.
func TestDevPageStorageFailureIsLoggedNotHidden(t *testing.T) {
	st, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "behalf.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var logs bytes.Buffer
	s := New(Deps{Store: sessionsUnreadable{st}, Now: time.Now, Log: slog.New(logging.ContextHandler{Inner: slog.NewTextHandler(&logs, nil), Attrs: wire.LogAttrs})},
		Options{Development: true})

	w := httptest.NewRecorder()
	s.DevComplete(w, httptest.NewRequest(http.MethodGet, "/dev/complete?session_id="+SessionURIPrefix+"some-session", nil))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500; page: %s", w.Code, w.Body)
	}
	if line := logs.String(); !strings.Contains(line, "database unavailable") || !strings.Contains(line, "request_id=browser-") {
		t.Errorf("log %q lacks the cause or the request id", line)
	}
}
