package portal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/storage"
)

// A portal session is a cookie sealed with AES-256-GCM under a key derived
// from the server's portal key, which every replica holds: any replica
// opens it, and nothing is stored per sign-in. Sign-out records the
// session's id as spent (storage's one-time token ids, until the session
// would have expired), which every replica checks, so a signed-out cookie
// replayed is refused. Each sign-in makes a new random session id: a
// cookie planted before sign-in never becomes the session (fixation).
const (
	sessionCookie = "behalf_portal"
	// loginCookie binds a sign-in to the browser that started it; it is
	// SameSite=Lax, as the session cookie, since the identity provider's
	// redirect back is a top-level GET from another site.
	loginCookie = "behalf_portal_login"
	loginTTL    = 10 * time.Minute
	maxCookie   = 4096
)

// session is the sealed content of the session cookie.
type session struct {
	Portal  string `json:"p"`
	User    string `json:"u"`
	ID      string `json:"s"`
	Expires int64  `json:"e"`
}

// login is the sealed content of the sign-in cookie: the sign-in's id,
// from which state, PKCE verifier and nonce are derived.
type login struct {
	Portal  string `json:"p"`
	ID      string `json:"l"`
	Expires int64  `json:"e"`
}

// spentKey is the one-time token id a signed-out session is kept under.
func spentKey(sessionID string) string { return "portal-session:" + sessionID }

// aead is the cookies' cipher, keyed for purpose.
func (s *Server) aead(purpose string) cipher.AEAD {
	key, _ := base64.RawURLEncoding.DecodeString(oauthwire.MAC(s.o.Key, "portal-cookie-key", purpose))
	block, _ := aes.NewCipher(key) // 32 bytes: AES-256 never fails
	g, _ := cipher.NewGCM(block)
	return g
}

// seal encrypts v for a cookie of name: the name is the associated data,
// so one cookie's value is never accepted as another's.
func (s *Server) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	g := s.aead(name)
	nonce := make([]byte, g.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(g.Seal(nonce, nonce, plain, []byte(name))), nil
}

// open decrypts a cookie of name into v.
func (s *Server) open(r *http.Request, name string, v any) bool {
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > maxCookie {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	g := s.aead(name)
	if err != nil || len(raw) < g.NonceSize() {
		return false
	}
	plain, err := g.Open(nil, raw[:g.NonceSize()], raw[g.NonceSize():], []byte(name))
	return err == nil && json.Unmarshal(plain, v) == nil
}

// setCookie sets a cookie scoped to the portal's pages: HttpOnly,
// SameSite=Lax, Secure when the public URL is https.
func (s *Server) setCookie(w http.ResponseWriter, p storage.ConsentPortal, name, value string, maxAge int) {
	// G124: Secure only over https: a loopback development server is http.
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Path(p.ID), MaxAge: maxAge, HttpOnly: true, //nolint:gosec // G124: see above
		SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(s.o.PublicURL, "https:")})
}

// session returns the browser's live session at portal p.
func (s *Server) session(ctx context.Context, r *http.Request, p storage.ConsentPortal) (session, bool, error) {
	var sess session
	if !s.open(r, sessionCookie, &sess) || sess.Portal != p.ID || sess.User == "" || sess.ID == "" || !s.o.Now().Before(time.Unix(sess.Expires, 0)) {
		return session{}, false, nil
	}
	spent, err := s.o.Store.TokenIDUsed(ctx, spentKey(sess.ID))
	if err != nil || spent {
		return session{}, false, err
	}
	return sess, true, nil
}

// startSession signs user in at p with a new session id.
func (s *Server) startSession(w http.ResponseWriter, p storage.ConsentPortal, user string) error {
	sess := session{Portal: p.ID, User: user, ID: rand.Text() + rand.Text(), Expires: s.o.Now().Add(s.o.SessionTTL).Unix()}
	v, err := s.seal(sessionCookie, sess)
	if err != nil {
		return err
	}
	s.setCookie(w, p, sessionCookie, v, int(s.o.SessionTTL/time.Second))
	return nil
}

// endSession spends the session's id and clears the cookie.
func (s *Server) endSession(ctx context.Context, w http.ResponseWriter, p storage.ConsentPortal, sess session) error {
	err := s.o.Store.UseTokenID(ctx, spentKey(sess.ID), time.Unix(sess.Expires, 0).Add(time.Minute))
	if err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
		return err
	}
	s.setCookie(w, p, sessionCookie, "", -1)
	return nil
}

// csrf is the token of the session's forms.
func (s *Server) csrf(sess session) string {
	return oauthwire.MAC(s.o.Key, "portal-form", sess.Portal, sess.ID)
}
