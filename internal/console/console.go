// Package console serves the admin console at /console/ (docs/console.md):
// operators sign in at the organisation's identity provider through
// package webui, and a person whose ID token carries the configured admin
// claim may use it. Every page runs the API's operations in-process
// (wire.Router.Invoke) with the configured principal's authorization, and
// every call's audit record names the person with that principal:
// console:<access key id>/<user>. There is no other path to storage for
// what the pages show or change.
//
// The console changes a few things: it revokes users' connections, sets
// credential providers' secrets and edits workload identities'
// credential-provider allow-lists, and deletes workload identities. Non-goals: other edits (the API and
// CLI make them), and client-side script of any kind.
package console

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/webui"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Path is where the console is served.
const Path = "/console/"

// API runs operations in-process (wire.Router.Invoke).
type API interface {
	Invoke(ctx context.Context, in wire.Invocation) (json.RawMessage, error)
}

// Options are the console's collaborators.
type Options struct {
	Config     config.Console
	Store      storage.Storage
	IDPs       webui.IDPs
	Signatures webui.Signatures
	API        API
	// Audit records sign-ins and sign-outs; nil records nothing.
	Audit wire.AuditLog
	// PublicURL is the server's public URL, without a trailing slash.
	PublicURL string
	// Key seals the console's cookies; at least 32 bytes, the same on
	// every replica, and not the consent portals'.
	Key []byte
	// Metrics is where Prometheus metrics are served, for the overview's
	// link; empty when they are not.
	Metrics string
	// Gatherer is the registry Prometheus metrics are served from, read
	// in-process for the overview's figures; nil when they are off.
	Gatherer prometheus.Gatherer
	// Started is when the metrics began to count.
	Started time.Time
	// Gateway is the mounted gateway's configuration; nil when there is
	// none.
	Gateway *config.Gateway
	// Anchor is the audit chain head the server last published, and
	// whether it has published one yet; nil when it publishes none.
	Anchor func() (Anchor, bool)
	Now    func() time.Time
	Log    *slog.Logger
}

// Anchor is a published head of the audit chain (docs/audit.md,
// "Anchors").
type Anchor struct {
	Seq       int64
	Hash      string
	Published time.Time
}

// Server serves the console.
type Server struct {
	o     Options
	web   *webui.Web
	realm webui.Realm
}

// New checks opts.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.API == nil {
		return nil, errors.New("console: Store and API are required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	web, err := webui.New(webui.Options{Name: "console", Key: opts.Key, IDPs: opts.IDPs, Signatures: opts.Signatures, TokenIDs: opts.Store,
		PublicURL: opts.PublicURL, SessionTTL: opts.Config.SessionTTL, Audit: opts.Audit, Now: opts.Now, Log: opts.Log})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return &Server{o: opts, web: web, realm: webui.Realm{ID: "console", Path: Path, Provider: opts.Config.Provider, Scopes: opts.Config.Scopes}}, nil
}

// Mount registers the pages.
func (s *Server) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /console/signin", s.page(s.signIn))
	mux.HandleFunc("GET /console/callback", s.page(s.callback))
	mux.HandleFunc("POST /console/signout", s.page(s.signedIn(s.posted(s.signOut))))
	mux.HandleFunc("GET /console/{$}", s.page(s.signedIn(s.overview)))
	mux.HandleFunc("GET /console/workloads", s.page(s.signedIn(s.workloads)))
	mux.HandleFunc("GET /console/workloads/{name}", s.page(s.signedIn(s.workload)))
	mux.HandleFunc("GET /console/workloads/{name}/delete", s.page(s.signedIn(s.confirmDelete)))
	mux.HandleFunc("POST /console/workloads/{name}/delete", s.page(s.signedIn(s.posted(s.deleteWorkload))))
	mux.HandleFunc("POST /console/workloads/{name}/providers", s.page(s.signedIn(s.posted(s.setAllowList))))
	mux.HandleFunc("GET /console/providers", s.page(s.signedIn(s.providers)))
	mux.HandleFunc("GET /console/providers/{name}", s.page(s.signedIn(s.provider)))
	mux.HandleFunc("POST /console/providers/{name}/secret", s.page(s.signedIn(s.posted(s.setClientSecret))))
	mux.HandleFunc("GET /console/apikeys/{name}", s.page(s.signedIn(s.apiKeyProvider)))
	mux.HandleFunc("POST /console/apikeys/{name}/key", s.page(s.signedIn(s.posted(s.setAPIKey))))
	mux.HandleFunc("GET /console/principals", s.page(s.signedIn(s.principals)))
	mux.HandleFunc("GET /console/connections", s.page(s.signedIn(s.connections)))
	mux.HandleFunc("POST /console/connections/revoke", s.page(s.signedIn(s.posted(s.revoke))))
	mux.HandleFunc("GET /console/audit", s.page(s.signedIn(s.audit)))
	mux.HandleFunc("GET /console/keys", s.page(s.signedIn(s.keys)))
	mux.HandleFunc("GET /console/gateway", s.page(s.signedIn(s.gateway)))
	mux.HandleFunc("/console/", s.page(func(q *request) {
		s.errorPage(q, http.StatusNotFound, "No such page", "This address names no page of the console.")
	}))
}

// request is one browser request to the console.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	sess webui.Session
	form map[string][]string
}

func (q *request) ctx() context.Context { return q.r.Context() }

func (s *Server) page(h func(*request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(wire.WithRequestID(r.Context(), "console-"+rand.Text()[:16]))
		h(&request{w: w, r: r})
	}
}

// signedIn runs h for a signed-in operator; a browser without a live
// session is sent to sign in (a GET) or refused (a POST).
func (s *Server) signedIn(h func(*request)) func(*request) {
	return func(q *request) {
		sess, ok, err := s.web.Session(q.ctx(), q.r, s.realm)
		if err != nil {
			s.internalError(q, "read a console session", err)
			return
		}
		if !ok {
			if q.r.Method != http.MethodGet {
				s.errorPage(q, http.StatusUnauthorized, "You are signed out", "Your sign-in has ended. Sign in again.")
				return
			}
			http.Redirect(q.w, q.r, s.web.Base(s.realm)+"signin", http.StatusSeeOther)
			return
		}
		q.sess = sess
		h(q)
	}
}

// posted checks a POST form's session-bound token.
func (s *Server) posted(h func(*request)) func(*request) {
	return func(q *request) {
		form, ok := s.web.Form(q.w, q.r, q.sess)
		if !ok {
			s.errorPage(q, http.StatusForbidden, "This form has expired", "It was not sent from the console's page, or your sign-in changed. Go back and try again.")
			return
		}
		q.form = form
		h(q)
	}
}

// principal names a person acting through the console in audit records:
// the console's principal and the person's user key.
func (s *Server) principal(user string) string {
	return "console:" + s.o.Config.Principal + "/" + user
}

// call runs op as the signed-in person with the console principal's
// authorization, decoding its output into out (nil: none).
func (s *Server) call(q *request, op string, in, out any) error {
	ctx := q.ctx()
	p, err := s.o.Store.GetPrincipal(ctx, s.o.Config.Principal)
	if errors.Is(err, storage.ErrNotFound) {
		return wire.AccessDenied("the console's principal %s does not exist", s.o.Config.Principal)
	}
	if err != nil {
		return fmt.Errorf("console principal: %w", err)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return wire.Internal(err)
	}
	raw, err := s.o.API.Invoke(ctx, wire.Invocation{Op: op, Body: body, Principal: s.principal(q.sess.User),
		Caller: wire.Caller{AccessKeyID: p.AccessKeyID, Role: p.Role, Workloads: p.Workloads, Operations: p.Operations, CreatedAt: p.CreatedAt}})
	if err != nil || out == nil || raw == nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return wire.Internal(fmt.Errorf("%s output: %w", op, err))
	}
	return nil
}

// refused shows why an operation failed: an API error's message, which
// never holds a secret, or nothing of an internal one.
func (s *Server) refused(q *request, title string, err error) {
	e := wire.AsError(err)
	if e.Hidden() {
		s.internalError(q, title, err)
		return
	}
	s.errorPage(q, e.Status, title, e.Message+".")
}

// internalError logs err and shows a page that says nothing of it.
func (s *Server) internalError(q *request, what string, err error) {
	s.o.Log.LogAttrs(q.ctx(), slog.LevelError, "console: could not "+what, slog.String(logging.KeyRequestID, wire.RequestID(q.ctx())), logging.Err(err))
	s.errorPage(q, http.StatusInternalServerError, "Something went wrong", "behalf could not finish this because of an internal error. Try again in a moment.")
}

// isAdmin reports whether claims carry the admin claim: a string equal
// to the value, or an array of strings containing it.
func isAdmin(claims map[string]json.RawMessage, name, value string) bool {
	raw, ok := claims[name]
	if !ok {
		return false
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == value
	}
	var many []string
	return json.Unmarshal(raw, &many) == nil && slices.Contains(many, value)
}

// InvokeFunc is an API of a function, for a router built after the
// console.
type InvokeFunc func(ctx context.Context, in wire.Invocation) (json.RawMessage, error)

// Invoke implements API.
func (f InvokeFunc) Invoke(ctx context.Context, in wire.Invocation) (json.RawMessage, error) {
	return f(ctx, in)
}
