package authserver

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"

	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/storage"
)

// The operations of the audit records (docs/audit.md). Principal is
// "client:<client_id>", User the user key, Resource the protected
// resource; a refusal's ErrorType is the OAuth error code.
const (
	opAuthorize = "OAuthAuthorize" // a code issued, or the request refused
	opConsent   = "OAuthConsent"   // a consent given, with the scopes it now covers
	opToken     = "OAuthToken"     // Flow: the grant type
	opRevoke    = "OAuthRevoke"
	// OpDeleteConsent names the record of a consent revoked by an admin.
	OpDeleteConsent = "DeleteOAuthConsent"
)

func principal(clientID string) string { return "client:" + clientID }

// claimedClient is the client a token, revocation or introspection
// request names, before it is authenticated: HTTP Basic's user, else
// client_id.
func claimedClient(r *http.Request, form url.Values) string {
	if id, _, ok := r.BasicAuth(); ok {
		if unescaped, err := url.QueryUnescape(id); err == nil {
			return unescaped
		}
	}
	return form.Get("client_id")
}

// prepare fills a record's outcome and trace: a success when errCode is
// empty.
func prepare(ctx context.Context, rec storage.AuditRecord, errCode string) storage.AuditRecord {
	rec.Outcome, rec.ErrorType = audit.OutcomeSuccess, ""
	if errCode != "" {
		rec.Outcome, rec.ErrorType = audit.OutcomeFailure, errCode
	}
	rec.Trace = trace.SpanContextFromContext(ctx)
	return rec
}

// record writes a record of something that changed nothing stored. It
// returns an error when the record could not be written: what it
// describes must then not be handed out.
func (s *Server) record(ctx context.Context, rec storage.AuditRecord, errCode string) error {
	if s.opts.Audit == nil {
		return nil
	}
	err := s.opts.Audit.Record(context.WithoutCancel(ctx), prepare(ctx, rec, errCode))
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "audit record not written", slog.String(logging.KeyOp, rec.Operation), logging.Err(err))
	}
	return err
}

// bind returns the store whose next write commits rec with it; a record
// whose Outcome is already failure keeps it.
func (s *Server) bind(ctx context.Context, rec storage.AuditRecord) storage.Storage {
	if s.opts.Audit == nil {
		return s.opts.Store
	}
	errCode := ""
	if rec.Outcome == audit.OutcomeFailure {
		errCode = rec.ErrorType
	}
	rec = prepare(ctx, rec, errCode)
	return s.opts.Audit.Bind(s.opts.Store, func() storage.AuditRecord { return rec }, nil)
}

// internalError logs a failure of behalf's own and shows a page saying
// so, without detail.
func (s *Server) internalError(ctx context.Context, w http.ResponseWriter, what string, err error) {
	s.log.LogAttrs(ctx, slog.LevelError, "authorization server: "+what, logging.Err(err))
	s.errorPage(w, http.StatusInternalServerError, "Something went wrong", "behalf could not complete the sign-in. Try again from the application.")
}
