package authserver

import (
	"bytes"
	"crypto/subtle"
	_ "embed"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"

	"github.com/behalf-dev/behalf/internal/authserver/clients"
	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
)

//go:embed consent.html
var pageSource string

var page = template.Must(template.New("consent").Parse(pageSource))

// pageData fills consent.html: a consent form, or a message (Title, Body).
type pageData struct {
	Title, Body                                                     string
	Client, ClientID, Resource, RedirectHost, Action, Request, CSRF string
	Scopes                                                          []string
	LocalOnly                                                       bool
}

// consentPage shows the consent form of a request waiting for consent in
// this browser.
func (s *Server) consentPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.URL.Query().Get("request")
	ar, err := s.opts.Store.GetAuthRequest(ctx, id)
	ok, err := s.live(r, ar, err, storage.AuthRequestConsent)
	if err != nil {
		s.internalError(ctx, w, "read an authorization request", err)
		return
	}
	if !ok {
		s.errorPage(w, http.StatusBadRequest, "This consent page has expired", "It was already answered, has expired, or was opened in another browser. Start again from the application.")
		return
	}
	client, e := s.opts.Clients.Resolve(ctx, ar.ClientID)
	if e != nil {
		s.errorPage(w, http.StatusBadRequest, "This application is no longer known", "Start again from the application.")
		return
	}
	c, _ := r.Cookie(bindingCookie) // present: live checked it
	u, _ := url.Parse(ar.RedirectURI)
	d := pageData{Client: client.Name, ClientID: client.ID, Resource: ar.Resource, RedirectHost: u.Scheme + "://" + u.Host,
		Action: s.cfg.Issuer + PathConsent, Request: ar.ID, CSRF: s.mac("consent", ar.ID, c.Value), Scopes: ar.Scopes,
		LocalOnly: client.Kind == clients.MetadataDocument && localOnly(client.RedirectURIs)}
	if d.Client == "" {
		d.Client, d.ClientID = client.ID, ""
	}
	s.render(w, http.StatusOK, d)
}

// localOnly reports whether every redirect URI is on a loopback host: the
// client's identity then proves little about who receives the code.
func localOnly(uris []string) bool {
	return len(uris) > 0 && !slices.ContainsFunc(uris, func(s string) bool {
		u, err := url.Parse(s)
		if err != nil {
			return true
		}
		h := u.Hostname()
		ip := net.ParseIP(h)
		return h != "localhost" && (ip == nil || !ip.IsLoopback())
	})
}

// consent receives the consent form: the request must wait for consent
// in this browser, and the form's token must be the one derived from the
// request and the browser's binding cookie.
func (s *Server) consent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, e := oauthwire.PostForm(w, r)
	if e != nil {
		s.errorPage(w, http.StatusBadRequest, "This consent form is not valid", "Start again from the application.")
		return
	}
	ar, err := s.opts.Store.GetAuthRequest(ctx, form.Get("request"))
	ok, err := s.live(r, ar, err, storage.AuthRequestConsent)
	if err != nil {
		s.internalError(ctx, w, "read an authorization request", err)
		return
	}
	rec := storage.AuditRecord{Operation: opConsent, Principal: principal(ar.ClientID), User: ar.User, Resource: ar.Resource,
		Scopes: ar.Scopes, Flow: config.GrantAuthorizationCode}
	c, _ := r.Cookie(bindingCookie)
	if !ok || c == nil || subtle.ConstantTimeCompare([]byte(form.Get("csrf")), []byte(s.mac("consent", ar.ID, c.Value))) != 1 {
		_ = s.record(ctx, rec, "invalid_request")
		s.errorPage(w, http.StatusBadRequest, "This consent form has expired", "It was already answered, has expired, or was not sent from this browser. Start again from the application.")
		return
	}
	authRec := rec
	authRec.Operation = opAuthorize
	switch form.Get("action") {
	case "deny":
		s.endRequest(w, r, ar, authRec, oauthwire.Errorf("access_denied", "the user denied the request"))
		return
	case "allow":
	default:
		s.errorPage(w, http.StatusBadRequest, "This consent form is not valid", "Choose Allow or Deny.")
		return
	}
	if err := s.remember(r, ar, rec); err != nil {
		s.internalError(ctx, w, "store a consent", err)
		return
	}
	s.issueCode(w, r, ar, authRec)
}

// remember stores the user's consent, the union of what they allowed
// before and now, committing rec with it.
func (s *Server) remember(r *http.Request, ar storage.AuthRequest, rec storage.AuditRecord) error {
	ctx := r.Context()
	prev, err := s.opts.Store.GetConsent(ctx, ar.User, ar.ClientID, ar.Resource)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	scopes := oauthwire.UnionScopes(prev.Scopes, ar.Scopes)
	rec.Scopes = scopes
	return s.bind(ctx, rec).PutConsent(ctx, storage.OAuthConsent{User: ar.User, ClientID: ar.ClientID, Resource: ar.Resource, Scopes: scopes})
}

// render shows consent.html (oauthwire.WritePage's headers).
func (s *Server) render(w http.ResponseWriter, status int, d pageData) {
	var b bytes.Buffer
	if err := page.Execute(&b, d); err != nil {
		http.Error(w, "cannot render the page", http.StatusInternalServerError)
		return
	}
	oauthwire.WritePage(w, status, b.Bytes())
}

// errorPage tells the user why the flow stopped, without redirecting.
func (s *Server) errorPage(w http.ResponseWriter, status int, title, body string) {
	s.render(w, status, pageData{Title: title, Body: body})
}
