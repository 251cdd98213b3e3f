package webui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wat"
)

// The sign-in is OpenID Connect Core §3.1 (authorization code) at the
// realm's identity provider, with PKCE S256 (RFC 7636) and a nonce. The
// state, verifier and nonce are derived by HMAC from a random sign-in id
// sealed in the browser's sign-in cookie, so nothing is stored until the
// callback spends the id (one use).

// idTokenLeeway is the clock skew allowed on an ID token's exp and iat.
const idTokenLeeway = time.Minute

// Failure is a sign-in that ended without a session: what the person is
// told (never why internally) and the error type of its audit record.
type Failure struct {
	Status      int
	Title, Body string
	ErrorType   string
	// Err is the cause, for the log only.
	Err error
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return f.Title + ": " + f.Err.Error()
	}
	return f.Title
}

func (f *Failure) Unwrap() error { return f.Err }

// Identity is a person the identity provider signed in: the user key (the
// one a workload access token minted from the same issuer's JWT for the
// same subject carries), the ID token's claims, and when the person
// authenticated: the ID token's auth_time, or else the time of the
// callback.
type Identity struct {
	User     string
	Claims   map[string]json.RawMessage
	AuthTime time.Time
}

// errAuthTime is an ID token whose auth_time does not meet the max_age
// the sign-in asked for.
var errAuthTime = errors.New("ID token auth_time")

// RedirectURI is the realm's callback, where the provider sends the
// browser back.
func (w *Web) RedirectURI(realm Realm) string { return w.Base(realm) + "callback" }

func (w *Web) derive(purpose string, l login) string {
	return oauthwire.MAC(w.o.Key, w.o.Name+"-"+purpose, l.Realm, l.ID)
}

// StartSignIn sends the browser to the realm's identity provider; a
// *Failure when the provider cannot be used for sign-in.
func (w *Web) StartSignIn(rw http.ResponseWriter, r *http.Request, realm Realm) error {
	return w.startSignIn(rw, r, realm, 0)
}

// Reauthenticate sends the browser to sign in again at the realm's
// identity provider, for a sensitive action whose session is not Recent:
// with max_age, ReauthenticateAfter in seconds (OpenID Connect Core
// §3.1.2.1), so the provider authenticates the person afresh when its
// own sign-in is older, and the ID token must carry an auth_time within
// it. Not prompt=login: max_age asks for the same freshness and, unlike
// prompt, makes auth_time required (§2), so behalf can check that the
// provider did what was asked. The action is not carried over: back at
// the realm's pages, the person repeats it. A *Failure as StartSignIn.
func (w *Web) Reauthenticate(rw http.ResponseWriter, r *http.Request, realm Realm) error {
	return w.startSignIn(rw, r, realm, int64(w.o.ReauthenticateAfter/time.Second))
}

func (w *Web) startSignIn(rw http.ResponseWriter, r *http.Request, realm Realm, maxAge int64) error {
	idp, err := w.o.IDPs.Provider(r.Context(), realm.Provider)
	if err != nil || idp.Config.Resolved.AuthorizationEndpoint == "" || idp.Config.Resolved.Issuer == "" {
		if err == nil {
			err = errors.New("the provider has no authorization endpoint or issuer")
		}
		return &Failure{Status: http.StatusServiceUnavailable, Title: "Sign-in is unavailable",
			Body: "The identity provider cannot be used for sign-in. Tell your administrator.", Err: err}
	}
	l := login{Realm: realm.ID, ID: rand.Text(), Expires: w.o.Now().Add(loginTTL).Unix(), MaxAge: maxAge}
	v, err := w.seal(w.loginCookie(), l)
	if err != nil {
		return err
	}
	w.setCookie(rw, realm, w.loginCookie(), v, int(loginTTL/time.Second))
	scopes := slices.Clone(realm.Scopes)
	if !slices.Contains(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...) // OpenID Connect Core §3.1.2.1
	}
	verifier := w.derive("verifier", l)
	params := url.Values{"response_type": {"code"}, "client_id": {idp.Config.ClientID}, "redirect_uri": {w.RedirectURI(realm)},
		"scope": {strings.Join(scopes, " ")}, "state": {w.derive("state", l)}, "nonce": {w.derive("nonce", l)},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
	if realm.Audience != "" {
		params.Set("audience", realm.Audience)
	}
	if maxAge > 0 {
		params.Set("max_age", strconv.FormatInt(maxAge, 10))
	}
	endpoint := idp.Config.Resolved.AuthorizationEndpoint
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
	}
	// 303 so that a sensitive action's POST becomes a GET (RFC 9110 §15.4.4).
	http.Redirect(rw, r, endpoint+sep+params.Encode(), http.StatusSeeOther)
	return nil
}

// FinishSignIn takes the browser back from the identity provider (OpenID
// Connect Core §3.1.2.5): the state must be the one derived from this
// browser's sign-in cookie, unspent. It returns the person signed in, a
// *Failure, or another error (internal). It starts no session: the caller
// decides whether the person may have one.
func (w *Web) FinishSignIn(rw http.ResponseWriter, r *http.Request, realm Realm) (Identity, error) {
	ctx, in := r.Context(), r.URL.Query()
	var l login
	if !w.open(r, w.loginCookie(), &l) || l.Realm != realm.ID || !w.o.Now().Before(time.Unix(l.Expires, 0)) ||
		len(in["state"]) != 1 || subtle.ConstantTimeCompare([]byte(in.Get("state")), []byte(w.derive("state", l))) != 1 {
		return Identity{}, &Failure{Status: http.StatusBadRequest, ErrorType: "invalid_request", Title: "This sign-in link is not valid here",
			Body: "It was already used, has expired, or was started in another browser. Sign in again."}
	}
	w.setCookie(rw, realm, w.loginCookie(), "", -1)
	switch err := w.o.TokenIDs.UseTokenID(ctx, w.o.Name+"-login:"+l.ID, time.Unix(l.Expires, 0)); {
	case errors.Is(err, storage.ErrAlreadyExists):
		return Identity{}, &Failure{Status: http.StatusBadRequest, ErrorType: "invalid_request:replayed",
			Title: "This sign-in link was already used", Body: "Sign in again."}
	case err != nil:
		return Identity{}, fmt.Errorf("record a sign-in: %w", err)
	}
	if in.Get("error") != "" || in.Get("code") == "" || len(in.Get("code")) > 4096 {
		return Identity{}, &Failure{Status: http.StatusForbidden, ErrorType: "access_denied", Title: "You did not sign in",
			Body: "The identity provider did not sign you in. Sign in again."}
	}
	id, err := w.identify(ctx, realm, l, in)
	if errors.Is(err, errAuthTime) {
		return Identity{}, &Failure{Status: http.StatusForbidden, ErrorType: "access_denied:auth_time", Title: "Your sign-in could not be confirmed as recent",
			Body: fmt.Sprintf("This needs a sign-in within the last %s, and the identity provider did not say when you signed in, or says it was earlier. "+
				"Sign in again. If this keeps happening, tell your administrator: the identity provider must honour OpenID Connect's max_age.",
				time.Duration(l.MaxAge)*time.Second), Err: err}
	}
	if err != nil {
		return Identity{}, &Failure{Status: http.StatusForbidden, ErrorType: "access_denied", Title: "The sign-in could not be verified",
			Body: "Sign in again.", Err: err}
	}
	return id, nil
}

// identify redeems the code and verifies the ID token: its signature with
// the issuer's keys and the allow-listed algorithms, iss (the provider's
// issuer), aud (the provider's client id), azp, exp, iat and the nonce.
func (w *Web) identify(ctx context.Context, realm Realm, l login, in url.Values) (Identity, error) {
	idp, err := w.o.IDPs.Provider(ctx, realm.Provider)
	if err != nil {
		return Identity{}, err
	}
	md := idp.Config.Resolved
	// RFC 9207 §2.4: an iss sent must be the provider's, and one promised
	// must be sent.
	if iss, sent := in["iss"]; sent && (len(iss) != 1 || iss[0] != md.Issuer) || !sent && md.AuthorizationResponseIssParameterSupported {
		return Identity{}, errors.New("the authorization response names another issuer")
	}
	tok, err := w.o.IDPs.Exchange(ctx, idp, url.Values{"grant_type": {"authorization_code"}, "code": {in.Get("code")},
		"redirect_uri": {w.RedirectURI(realm)}, "code_verifier": {w.derive("verifier", l)}})
	if err != nil {
		return Identity{}, fmt.Errorf("code exchange: %w", err)
	}
	if tok.IDToken == "" {
		return Identity{}, errors.New("the identity provider returned no ID token")
	}
	return w.verifyIDToken(ctx, idp, tok.IDToken, w.derive("nonce", l), l.MaxAge)
}

// idClaims are the ID token claims checked (OpenID Connect Core §2).
type idClaims struct {
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"`
	Audience json.RawMessage `json:"aud"`
	AZP      string          `json:"azp"`
	Expiry   float64         `json:"exp"`
	IssuedAt float64         `json:"iat"`
	Nonce    string          `json:"nonce"`
	AuthTime float64         `json:"auth_time"`
}

func (w *Web) verifyIDToken(ctx context.Context, idp access.OAuth2Provider, raw, nonce string, maxAge int64) (Identity, error) {
	md := idp.Config.Resolved
	payload, e := w.o.Signatures.VerifySignature(ctx, raw, md.Issuer, md.JWKSURI, idp.Name)
	if e != nil {
		return Identity{}, fmt.Errorf("ID token: %w", e)
	}
	var c idClaims
	var all map[string]json.RawMessage
	if err := json.Unmarshal(payload, &c); err != nil {
		return Identity{}, fmt.Errorf("ID token claims: %w", err)
	}
	if err := json.Unmarshal(payload, &all); err != nil {
		return Identity{}, fmt.Errorf("ID token claims: %w", err)
	}
	aud, err := audience(c.Audience)
	if err != nil {
		return Identity{}, err
	}
	if err := w.checkTimes(c); err != nil {
		return Identity{}, err
	}
	switch {
	case c.Subject == "" || len(c.Subject) > 255:
		return Identity{}, errors.New("ID token has no usable sub")
	case !slices.Contains(aud, idp.Config.ClientID):
		return Identity{}, errors.New("ID token was not issued to this client")
	case len(aud) > 1 && c.AZP != idp.Config.ClientID || c.AZP != "" && c.AZP != idp.Config.ClientID:
		return Identity{}, errors.New("ID token azp is another client")
	case subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1:
		return Identity{}, errors.New("ID token nonce does not match the sign-in")
	}
	authTime, err := w.authTime(c, maxAge)
	if err != nil {
		return Identity{}, err
	}
	return Identity{User: wat.UserFromJWT(c.Issuer, c.Subject), Claims: all, AuthTime: authTime}, nil
}

// authTime is when the person authenticated: auth_time, not in the
// future, or else now. After a request with max_age, auth_time is
// required and must be no older than max_age, within idTokenLeeway
// (OpenID Connect Core §2, §3.1.2.1).
func (w *Web) authTime(c idClaims, maxAge int64) (time.Time, error) {
	now := w.o.Now()
	if c.AuthTime == 0 {
		if maxAge > 0 {
			return time.Time{}, fmt.Errorf("%w: none, after a request with max_age", errAuthTime)
		}
		return now, nil
	}
	// Compared as numbers first: a float beyond int64 has no time.
	if c.AuthTime < 0 || c.AuthTime > float64(now.Add(idTokenLeeway).Unix()) {
		return time.Time{}, errors.New("ID token auth_time is in the future")
	}
	at := time.Unix(int64(c.AuthTime), 0)
	switch {
	case maxAge > 0 && now.After(at.Add(time.Duration(maxAge)*time.Second+idTokenLeeway)):
		return time.Time{}, fmt.Errorf("%w: older than max_age", errAuthTime)
	case at.After(now):
		return now, nil
	}
	return at, nil
}

// audience reads aud, a string or an array of strings (RFC 7519 §4.1.3).
func audience(raw json.RawMessage) ([]string, error) {
	var aud []string
	if json.Unmarshal(raw, &aud) == nil {
		return aud, nil
	}
	var one string
	if json.Unmarshal(raw, &one) != nil {
		return nil, errors.New("ID token aud is neither a string nor an array")
	}
	return []string{one}, nil
}

// checkTimes requires exp in the future and iat not in it, within
// idTokenLeeway (OpenID Connect Core §3.1.3.7).
func (w *Web) checkTimes(c idClaims) error {
	now := w.o.Now()
	switch {
	case c.Expiry == 0 || now.After(time.Unix(int64(c.Expiry), 0).Add(idTokenLeeway)):
		return errors.New("ID token expired")
	case c.IssuedAt == 0 || time.Unix(int64(c.IssuedAt), 0).After(now.Add(idTokenLeeway)):
		return errors.New("ID token issued in the future")
	}
	return nil
}
