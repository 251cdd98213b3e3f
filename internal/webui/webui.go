// Package webui is what behalf's server-rendered pages share: people
// signing in at an OpenID provider registered as an OAuth2 credential
// provider (OpenID Connect Core §3.1, authorization code with PKCE S256
// and a nonce), sealed session cookies revocable on sign-out, forms bound
// to the session by a token, and pages rendered by html/template with
// oauthwire.WritePage's headers. Sensitive actions can ask for a recent
// sign-in (Recent, Reauthenticate: OpenID Connect max_age, auth_time
// checked). The consent portals (package portal) and
// the admin console (package console) are its users; each names its own
// realms, the places people sign in.
//
// Non-goals: RP-initiated logout at the identity provider, and any state
// kept per sign-in other than the one-time token ids that make sign-ins
// and sign-outs single use.
package webui

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"time"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/inbound"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthclient"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// IDPs finds the credential provider people sign in at and redeems its
// codes (package federation).
type IDPs interface {
	Provider(ctx context.Context, name string) (access.OAuth2Provider, error)
	Exchange(ctx context.Context, p access.OAuth2Provider, form url.Values) (*oauthclient.Token, error)
}

// Signatures verifies ID tokens' signatures (inbound.Set.VerifySignature:
// its algorithm allow-list, the issuer's keys).
type Signatures interface {
	VerifySignature(ctx context.Context, token, issuer, jwksURL, name string) ([]byte, *inbound.Error)
}

// TokenIDs are storage's one-time token ids: a sign-in spent, a session
// signed out.
type TokenIDs interface {
	UseTokenID(ctx context.Context, key string, expiresAt time.Time) error
	TokenIDUsed(ctx context.Context, key string) (bool, error)
}

// Options configure New.
type Options struct {
	// Name prefixes the cookies ("behalf_<name>"), the purposes keys are
	// derived for and the one-time token ids, so that one user's cookies
	// and forms are never another's.
	Name string
	// Key seals the cookies and derives the sign-in's state, PKCE verifier
	// and nonce and the forms' tokens; at least 32 bytes, the same on
	// every replica.
	Key        []byte
	IDPs       IDPs
	Signatures Signatures
	TokenIDs   TokenIDs
	// PublicURL is the server's public URL, without a trailing slash.
	PublicURL string
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration
	// ReauthenticateAfter is how old a sign-in may be for a sensitive
	// action (Recent, Reauthenticate); 0 for any age.
	ReauthenticateAfter time.Duration
	// Audit records sign-ins and sign-outs (Record); nil records nothing.
	Audit wire.AuditLog
	Now   func() time.Time
	Log   *slog.Logger
}

// Web signs people in and keeps their sessions.
type Web struct{ o Options }

// New checks opts.
func New(opts Options) (*Web, error) {
	switch {
	case len(opts.Key) < 32:
		return nil, errors.New("webui: Key must have at least 32 bytes")
	case opts.Name == "" || opts.IDPs == nil || opts.Signatures == nil || opts.TokenIDs == nil:
		return nil, errors.New("webui: Name, IDPs, Signatures and TokenIDs are required")
	case opts.SessionTTL <= 0:
		return nil, errors.New("webui: SessionTTL must be positive")
	case opts.ReauthenticateAfter < 0 || opts.ReauthenticateAfter > 0 && opts.ReauthenticateAfter < time.Second:
		return nil, errors.New("webui: ReauthenticateAfter must be 0 or at least a second")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Web{o: opts}, nil
}

// Realm is one place people sign in: a set of pages under Path, whose
// people sign in at Provider.
type Realm struct {
	// ID names the realm in its cookies and tokens (a portal's id).
	ID string
	// Path is where the realm's pages are, with a trailing slash: its
	// cookies' path.
	Path string
	// Provider names the OAuth2 credential provider people sign in at,
	// with Scopes ("openid" is added) and, when set, Audience.
	Provider string
	Scopes   []string
	Audience string
}

// Base is the realm's public URL, with a trailing slash.
func (w *Web) Base(r Realm) string { return w.o.PublicURL + r.Path }

// Record writes the audit record of a sign-in or sign-out, a failure when
// errType is set; one that cannot be written is logged, as what it
// describes has happened.
func (w *Web) Record(ctx context.Context, rec storage.AuditRecord, errType string) {
	if w.o.Audit == nil {
		return
	}
	rec.RequestID, rec.Outcome = wire.RequestID(ctx), "success"
	if errType != "" {
		rec.Outcome, rec.ErrorType = "failure", errType
	}
	if err := w.o.Audit.Record(context.WithoutCancel(ctx), rec); err != nil {
		w.o.Log.LogAttrs(ctx, slog.LevelError, "audit record not written", slog.String(logging.KeyOp, rec.Operation), logging.Err(err))
	}
}

// Refused is the failure a sign-in's error is, its cause logged; false
// for an internal error, which the caller reports as such.
func (w *Web) Refused(ctx context.Context, err error) (*Failure, bool) {
	var f *Failure
	if !errors.As(err, &f) {
		return nil, false
	}
	if f.Err != nil {
		w.o.Log.LogAttrs(ctx, slog.LevelWarn, w.o.Name+": sign-in refused", logging.Err(f.Err))
	}
	return f, true
}
