package webui

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
)

// A session is a cookie sealed with AES-256-GCM under a key derived from
// Options.Key, which every replica holds: any replica opens it, and
// nothing is stored per sign-in. Sign-out records the session's id as
// spent (storage's one-time token ids, until the session would have
// expired), which every replica checks, so a signed-out cookie replayed
// is refused. Each sign-in makes a new random session id: a cookie planted
// before sign-in never becomes the session (fixation).
const (
	// loginTTL is how long a person has to sign in at the provider.
	loginTTL  = 10 * time.Minute
	maxCookie = 4096
)

// Session is a signed-in person's session.
type Session struct {
	Realm   string `json:"p"`
	User    string `json:"u"`
	ID      string `json:"s"`
	Expires int64  `json:"e"`
	// AuthTime is when the person last authenticated at the identity
	// provider (Identity.AuthTime), in Unix seconds.
	AuthTime int64 `json:"a"`
}

// login is the sealed content of the sign-in cookie: the sign-in's id,
// from which state, PKCE verifier and nonce are derived, and the max_age
// it asked for (0 for none), which the ID token's auth_time must meet.
type login struct {
	Realm   string `json:"p"`
	ID      string `json:"l"`
	Expires int64  `json:"e"`
	MaxAge  int64  `json:"m,omitempty"`
}

// sessionCookie and loginCookie are the cookies' names; the sign-in
// cookie binds a sign-in to the browser that started it. Both are
// SameSite=Lax, since the identity provider's redirect back is a
// top-level GET from another site.
func (w *Web) sessionCookie() string { return "behalf_" + w.o.Name }
func (w *Web) loginCookie() string   { return "behalf_" + w.o.Name + "_login" }

// spentKey is the one-time token id a signed-out session is kept under.
func (w *Web) spentKey(sessionID string) string { return w.o.Name + "-session:" + sessionID }

// aead is the cookies' cipher, keyed for purpose.
func (w *Web) aead(purpose string) cipher.AEAD {
	key, _ := base64.RawURLEncoding.DecodeString(oauthwire.MAC(w.o.Key, w.o.Name+"-cookie-key", purpose))
	block, _ := aes.NewCipher(key) // 32 bytes: AES-256 never fails
	g, _ := cipher.NewGCM(block)
	return g
}

// seal encrypts v for a cookie of name: the name is the associated data,
// so one cookie's value is never accepted as another's.
func (w *Web) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	g := w.aead(name)
	nonce := make([]byte, g.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(g.Seal(nonce, nonce, plain, []byte(name))), nil
}

// open decrypts a cookie of name into v.
func (w *Web) open(r *http.Request, name string, v any) bool {
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > maxCookie {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	g := w.aead(name)
	if err != nil || len(raw) < g.NonceSize() {
		return false
	}
	plain, err := g.Open(nil, raw[:g.NonceSize()], raw[g.NonceSize():], []byte(name))
	return err == nil && json.Unmarshal(plain, v) == nil
}

// setCookie sets a cookie scoped to the realm's pages: HttpOnly,
// SameSite=Lax, Secure when the public URL is https.
func (w *Web) setCookie(rw http.ResponseWriter, realm Realm, name, value string, maxAge int) {
	// G124: Secure only over https: a loopback development server is http.
	http.SetCookie(rw, &http.Cookie{Name: name, Value: value, Path: realm.Path, MaxAge: maxAge, HttpOnly: true, //nolint:gosec // G124: see above
		SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(w.o.PublicURL, "https:")})
}

// Session returns the browser's live session in realm.
func (w *Web) Session(ctx context.Context, r *http.Request, realm Realm) (Session, bool, error) {
	var sess Session
	if !w.open(r, w.sessionCookie(), &sess) || sess.Realm != realm.ID || sess.User == "" || sess.ID == "" || !w.o.Now().Before(time.Unix(sess.Expires, 0)) {
		return Session{}, false, nil
	}
	spent, err := w.o.TokenIDs.TokenIDUsed(ctx, w.spentKey(sess.ID))
	if err != nil || spent {
		return Session{}, false, err
	}
	return sess, true, nil
}

// StartSession signs id's person in at realm with a new session id. A
// live session the browser already had, its own or another person's, is
// spent: the cookie replaced is never accepted again.
func (w *Web) StartSession(rw http.ResponseWriter, r *http.Request, realm Realm, id Identity) error {
	old, ok, err := w.Session(r.Context(), r, realm)
	if err != nil {
		return err
	}
	if ok {
		if err := w.spend(r.Context(), old); err != nil {
			return err
		}
	}
	sess := Session{Realm: realm.ID, User: id.User, ID: rand.Text() + rand.Text(), Expires: w.o.Now().Add(w.o.SessionTTL).Unix(),
		AuthTime: id.AuthTime.Unix()}
	v, err := w.seal(w.sessionCookie(), sess)
	if err != nil {
		return err
	}
	w.setCookie(rw, realm, w.sessionCookie(), v, int(w.o.SessionTTL/time.Second))
	return nil
}

// EndSession spends the session's id and clears the cookie.
func (w *Web) EndSession(ctx context.Context, rw http.ResponseWriter, realm Realm, sess Session) error {
	if err := w.spend(ctx, sess); err != nil {
		return err
	}
	w.setCookie(rw, realm, w.sessionCookie(), "", -1)
	return nil
}

// spend records the session's id as spent until it would have expired.
func (w *Web) spend(ctx context.Context, sess Session) error {
	err := w.o.TokenIDs.UseTokenID(ctx, w.spentKey(sess.ID), time.Unix(sess.Expires, 0).Add(time.Minute))
	if err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
		return err
	}
	return nil
}

// Recent reports whether the session's sign-in is recent enough for a
// sensitive action: no older than Options.ReauthenticateAfter (always,
// when that is 0).
func (w *Web) Recent(sess Session) bool {
	return w.o.ReauthenticateAfter <= 0 || !w.o.Now().After(time.Unix(sess.AuthTime, 0).Add(w.o.ReauthenticateAfter))
}

// CSRF is the token of the session's forms.
func (w *Web) CSRF(sess Session) string {
	return oauthwire.MAC(w.o.Key, w.o.Name+"-form", sess.Realm, sess.ID)
}

// Form reads a POST form whose token must be the one derived from the
// browser's session (a cross-site form cannot know it); false when it is
// not, or the form is malformed or repeats a field.
func (w *Web) Form(rw http.ResponseWriter, r *http.Request, sess Session) (url.Values, bool) {
	form, e := oauthwire.PostForm(rw, r)
	if e != nil || subtle.ConstantTimeCompare([]byte(form.Get("csrf")), []byte(w.CSRF(sess))) != 1 {
		return nil, false
	}
	return form, true
}
