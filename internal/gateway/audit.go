package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/logging"
)

// recordTimeout bounds the wait for behalf to store a call's record.
const recordTimeout = 10 * time.Second

// errNotRecorded ends a response whose call could not be recorded.
var errNotRecorded = errors.New("gateway: the call could not be recorded")

// callWriter records a call the gateway answers itself when its response
// starts (the proxy records an upstream's answer before forwarding it): no
// response leaves the gateway before its audit record is stored. A call
// that cannot be recorded is answered 500 InternalServerException.
type callWriter struct {
	http.ResponseWriter
	g      *Gateway
	ctx    context.Context // the call's, not cancelled when the caller leaves
	s      *callState
	status int
	// errType is the gateway's error type, or upstream_<status> for an
	// upstream's error passed through; "" on success.
	errType string
	failed  bool
}

func (w *callWriter) WriteHeader(status int) {
	if status < http.StatusOK || w.status != 0 {
		if status < http.StatusOK && !w.failed {
			w.ResponseWriter.WriteHeader(status) // informational (1xx): the response has not started
		}
		return
	}
	w.status = status
	switch {
	case w.s.notRecorded:
		w.errType = "InternalServerException"
	case w.s.recorded: // by the proxy: the upstream's answer
		if status >= http.StatusBadRequest {
			w.errType = "upstream_" + strconv.Itoa(status)
		}
	default:
		w.errType = w.Header().Get("X-Amzn-ErrorType")
		if err := w.g.record(w.ctx, w.s, status, w.errType); err != nil {
			w.g.log.LogAttrs(w.ctx, slog.LevelError, "gateway call not recorded", slog.String(logging.KeyRoute, w.s.route.Name), logging.Err(err))
			w.failed, w.errType = true, "InternalServerException"
			clear(w.Header())
			writeError(w.ResponseWriter, http.StatusInternalServerError, "InternalServerException", "the call could not be recorded")
			return
		}
		w.s.recorded = true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *callWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, errNotRecorded
	}
	return w.ResponseWriter.Write(b)
}

func (w *callWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.failed {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController (and the proxy's flushes) reach the
// connection.
func (w *callWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// record stores the call's audit record with behalf's RecordGatewayCall,
// signed as the gateway's principal like its data-plane calls.
func (g *Gateway) record(ctx context.Context, s *callState, status int, errType string) error {
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	in := behalfapi.RecordGatewayCallInput{Route: s.route.Name, Kind: s.route.Kind, Workload: s.route.Workload, User: s.user,
		Status: status, ErrorType: errType, UpstreamStatus: s.status, Actors: s.actors, Rule: s.rule, Scopes: s.ruleScopes}
	switch {
	case s.route.Kind == config.KindTool:
		in.CallerToken = s.wat // behalf names the caller it was minted for
	case s.route.Kind == config.KindMCP && s.wat != "":
		// behalf names the user as it did when it minted the token: a
		// token of its own authorization server names the user that
		// server's sub names, which the access token's claims do not say.
		in.CallerToken, in.Workload, in.User = s.wat, "", ""
	}
	return g.callExtension(ctx, "RecordGatewayCall", in, nil)
}

// maxExtensionAnswer bounds what the gateway reads of an extension
// operation's answer: a token, a chain and a user, or a typed error.
const maxExtensionAnswer = 256 << 10

// extensionError is behalf's answer to an extension operation other than
// 200: its status and typed error (the restJson1 body every behalf error
// has).
type extensionError struct {
	op, errType, message string
	status               int
}

func (e *extensionError) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.op, e.status, e.errType, e.message)
}

// callExtension calls one of behalf's extension operations, POST
// /behalf/<op>, signed as the gateway's principal with the data-plane
// client's credentials, signer, region and HTTP client, so that it is
// authorized, rate-limited and audited as the gateway's data-plane calls
// are. A 200 answer is decoded into out (nil discards it); any other is
// an *extensionError.
func (g *Gateway) callExtension(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	o := g.data.Options()
	if o.BaseEndpoint == nil {
		return errors.New("the data-plane client has no endpoint")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*o.BaseEndpoint, "/")+"/behalf/"+op, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	creds, err := o.Credentials.Retrieve(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	signer := o.HTTPSignerV4
	if signer == nil {
		signer = v4.NewSigner()
	}
	if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "bedrock-agentcore", o.Region, time.Now()); err != nil {
		return err
	}
	res, err := o.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }() // read only: Close loses nothing
	answer, err := io.ReadAll(io.LimitReader(res.Body, maxExtensionAnswer))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if res.StatusCode != http.StatusOK {
		var typed struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(answer, &typed) // a body that is no typed error leaves both empty
		if typed.Type == "" {
			typed.Type = res.Header.Get("X-Amzn-ErrorType")
		}
		return &extensionError{op: op, status: res.StatusCode, errType: typed.Type, message: typed.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("%s: the answer is not what the operation returns: %w", op, err)
	}
	return nil
}
