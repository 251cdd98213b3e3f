package clients

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	stdjson "encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	"github.com/go-jose/go-jose/v4/json"
	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Dynamic client registration (RFC 7591).
const (
	// maxRegistrationBytes bounds a registration request.
	maxRegistrationBytes = 16 << 10
	// OperationRegister is the audit operation of a registration.
	OperationRegister = "OAuthRegisterClient"
)

// serverMembers are what only the server sets in a registration (RFC 7591
// §3.2.1).
var serverMembers = append([]string{"client_id", "client_id_issued_at"}, secretMembers...)

// Register is the client registration endpoint (RFC 7591 §3): POST a JSON
// object of client metadata, get 201 with the registered metadata, a new
// client_id that is not a URL, and, for a client that authenticates with a
// secret, its client_secret, shown this once: only its SHA-256 is kept.
// Registrations are rate-limited per client address (429), and each
// registration is audited in the transaction that stores the client.
func (r *Registry) Register(w http.ResponseWriter, req *http.Request) {
	if !r.o.DynamicRegistration {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthwire.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "registration takes POST"})
		return
	}
	if !r.limiter.Allow(r.o.ClientIP.Of(req)) {
		w.Header().Set("Retry-After", strconv.Itoa(int(60/r.o.RegistrationsPerMinute)+1))
		oauthwire.WriteJSON(w, http.StatusTooManyRequests, map[string]string{
			"error": "too_many_requests", "error_description": "too many registrations from this address; try again later"})
		return
	}
	ctx := req.Context()
	md, oe := readRegistration(w, req)
	if oe == nil {
		var resp map[string]any
		if resp, oe = r.register(ctx, md); oe == nil {
			oauthwire.WriteJSON(w, http.StatusCreated, resp)
			return
		}
	}
	r.recordRefusal(ctx, oe)
	oauthwire.WriteError(w, oe, false, "")
}

// readRegistration reads and validates a registration request.
func readRegistration(w http.ResponseWriter, req *http.Request) (metadata, *oauthwire.Error) {
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return metadata{}, invalidMetadata("the request body must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxRegistrationBytes))
	if err != nil {
		return metadata{}, invalidMetadata("the request body could not be read or is larger than %d bytes", maxRegistrationBytes)
	}
	return parseRegistration(body)
}

// parseRegistration validates the client metadata of a registration
// request and fills in RFC 7591 §2's defaults.
func parseRegistration(body []byte) (metadata, *oauthwire.Error) {
	md, members, err := decodeMetadata(body)
	if err != nil {
		return metadata{}, invalidMetadata("the request body %s", err.Error())
	}
	for _, m := range serverMembers {
		if _, ok := members[m]; ok {
			return metadata{}, invalidMetadata("%s is set by the server, not the client", m)
		}
	}
	if _, ok := members["software_statement"]; ok {
		return metadata{}, oauthwire.Errorf("invalid_software_statement", "software statements are not supported")
	}
	if e := complete(&md, Dynamic); e != nil {
		return metadata{}, e
	}
	md.ClientID = ""
	return md, nil
}

// register stores a validated client with its audit record and returns
// the registration response (RFC 7591 §3.2.1).
func (r *Registry) register(ctx context.Context, md metadata) (map[string]any, *oauthwire.Error) {
	stored, err := json.Marshal(md)
	if err != nil {
		return nil, oauthwire.Errorf("server_error", "the client could not be registered")
	}
	now := r.o.Now()
	c := storage.OAuthClient{ID: randomString(18), Metadata: stored, CreatedAt: now}
	var secret string
	if md.secretBased() {
		secret = randomString(32) // 256 bits
		c.SecretHash = oauthwire.Hash(secret)
	}
	st := r.o.Store
	if r.o.Audit != nil {
		rec := r.record(ctx, "client:"+c.ID, c.ID, "")
		st = r.o.Audit.Bind(st, func() storage.AuditRecord { return rec }, nil)
	}
	if err := st.CreateOAuthClient(ctx, c); err != nil {
		r.o.Log.LogAttrs(ctx, slog.LevelError, "storing a registered client failed", logging.Err(err))
		return nil, oauthwire.Errorf("server_error", "the client could not be registered")
	}
	var resp map[string]any
	if err := stdjson.Unmarshal(stored, &resp); err != nil {
		return nil, oauthwire.Errorf("server_error", "the client could not be registered")
	}
	resp["client_id"] = c.ID
	resp["client_id_issued_at"] = now.Unix()
	if secret != "" {
		resp["client_secret"] = secret
		resp["client_secret_expires_at"] = 0 // never
	}
	return resp, nil
}

// recordRefusal audits a refused registration. A record that cannot be
// written is logged: nothing was registered.
func (r *Registry) recordRefusal(ctx context.Context, oe *oauthwire.Error) {
	if r.o.Audit == nil {
		return
	}
	if err := r.o.Audit.Record(context.WithoutCancel(ctx), r.record(ctx, "", "", oe.Code)); err != nil && !errors.Is(err, context.Canceled) {
		r.o.Log.LogAttrs(ctx, slog.LevelError, "audit record not written", slog.String(logging.KeyOp, OperationRegister), logging.Err(err))
	}
}

func (r *Registry) record(ctx context.Context, principal, resource, errType string) storage.AuditRecord {
	rec := storage.AuditRecord{
		Time: r.o.Now(), RequestID: wire.RequestID(ctx), Principal: principal, Operation: OperationRegister,
		Resource: resource, Outcome: audit.OutcomeSuccess, Trace: trace.SpanContextFromContext(ctx),
	}
	if errType != "" {
		rec.Outcome, rec.ErrorType = audit.OutcomeFailure, errType
	}
	return rec
}

// randomString is n random bytes, base64url: a client_id, never a URL,
// or a client secret.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}
