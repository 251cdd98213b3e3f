// Package workloadjwt is behalf's own issuer of workload identity JWTs,
// the self-hosted counterpart of AWS STS GetWebIdentityToken: short-lived
// ES256 JWTs whose subject is a workload identity's ARN, for relying
// parties that federate workload identities with no shared secret (RFC
// 7523 §2.1's jwt-bearer grant, the MCP workload identity federation
// extension, RFC 8693 §2.1 actor tokens). They find its keys as those
// specifications say: the OpenID Connect Discovery 1.0 §4 document under
// the issuer, then the JWK set at its jwks_uri (RFC 7517 §5).
//
// The issuer is <publicUrl>/workload-identity, not the public URL itself:
// the authorization server (package authserver) owns the discovery
// documents at the root, whose jwks_uri holds its access tokens' keys, and
// an issuer has one jwks_uri (OpenID Connect Discovery 1.0 §3). Sharing it
// would let a JWT whose audience the agent chose pass for an access token
// wherever the resource server does not check typ (RFC 8725 §2.8, §3.12).
//
// The keys are server keys sealed by the vault (package signingkeys),
// rotated weekly: a new key is published an hour before it signs, and an
// old one stays published for as long as a JWT it signed can live.
package workloadjwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/vault"
)

// Purpose names the server keys that sign workload JWTs.
const Purpose = "workload-jwt"

// Paths, under the public URL: the issuer's own, its discovery document
// (OpenID Connect Discovery 1.0 §4.1 appends the well-known segment to the
// issuer) and its JWK set.
const (
	Path          = "/workload-identity"
	DiscoveryPath = Path + "/.well-known/openid-configuration"
	JWKSPath      = Path + "/jwks"
)

// Lifetimes of a JWT: GetWebIdentityToken's DurationSeconds bounds and
// default.
const (
	MinLifetime     = time.Minute
	DefaultLifetime = 5 * time.Minute
	MaxLifetime     = time.Hour
)

const (
	keyRotation = 7 * 24 * time.Hour
	// keyPrepublish: a verifier that caches the JWK set for up to an hour
	// (it says max-age 300) has a new key before its first JWT, and every
	// replica has loaded it (maintenance runs every five minutes).
	keyPrepublish = time.Hour
	// keyRetain: a key stays published as long as a JWT it signed lives.
	keyRetain = MaxLifetime
)

// ErrExpired is returned by Sign for a JWT that would expire at once: what
// it was asked for with has expired.
var ErrExpired = errors.New("workloadjwt: the JWT would expire at once")

// Options configure an Issuer.
type Options struct {
	Store     signingkeys.Store
	Vault     *vault.Vault
	PublicURL string
	// Subject names a workload identity in sub: its ARN.
	Subject func(workload string) string
	Now     func() time.Time
}

// Issuer signs workload JWTs and publishes their keys. It is safe for
// concurrent use.
type Issuer struct {
	keys      *signingkeys.Set
	issuer    string
	subject   func(string) string
	now       func() time.Time
	discovery []byte
}

// New returns the issuer, without keys until Rotate.
func New(o Options) *Issuer {
	if o.Now == nil {
		o.Now = time.Now
	}
	i := &Issuer{
		keys: signingkeys.New(o.Store, o.Vault, signingkeys.Options{Purpose: Purpose, Rotation: keyRotation,
			Prepublish: keyPrepublish, Retain: keyRetain, Now: o.Now}),
		issuer: o.PublicURL + Path, subject: o.Subject, now: o.Now,
	}
	// What OpenID Connect Discovery 1.0 §3 requires of an issuer of JWTs
	// that no one signs in at: there is no authorization or token
	// endpoint (JWTs come from the signed API), so there is none to name.
	doc, err := json.Marshal(map[string]any{
		"issuer":                                i.issuer,
		"jwks_uri":                              o.PublicURL + JWKSPath,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"},
	})
	if err != nil {
		panic("workloadjwt: discovery document: " + err.Error())
	}
	i.discovery = doc
	return i
}

// Issuer is the issuer identifier, the JWTs' iss.
func (i *Issuer) Issuer() string { return i.issuer }

// Rotate makes a new key when the newest is a week old and drops those no
// JWT can need; call it at start and periodically.
func (i *Issuer) Rotate(ctx context.Context) error { return i.keys.Rotate(ctx) }

// Status is the keys' schedule, without their material.
func (i *Issuer) Status() signingkeys.SetStatus { return i.keys.Status() }

// Mount serves the discovery document and the JWK set, unauthenticated.
func (i *Issuer) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET "+DiscoveryPath, i.serveDiscovery)
	mux.HandleFunc("GET "+JWKSPath, i.keys.ServeJWKS)
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(signingkeys.MaxAge/time.Second)))
	_, _ = w.Write(i.discovery) // the verifier has gone: nothing to do
}

// Token is a signed workload JWT.
type Token struct {
	JWT    string
	ID     string // its jti
	Expiry time.Time
}

// Sign signs a JWT for workload (RFC 7519 §4.1: iss, sub its ARN, aud,
// iat, nbf, exp, a random jti) that lives lifetime, and no later than
// notAfter (zero: no bound), so that it does not outlive what it was asked
// for with. One audience is a string, several an array (RFC 7519 §4.1.3).
func (i *Issuer) Sign(workload string, audience []string, lifetime time.Duration, notAfter time.Time) (Token, error) {
	now := i.now()
	exp := now.Add(lifetime)
	if !notAfter.IsZero() && notAfter.Before(exp) {
		exp = notAfter
	}
	// NumericDate has whole seconds: exp is cut down to one.
	exp = exp.Truncate(time.Second)
	if !exp.After(now) {
		return Token{}, ErrExpired
	}
	signer, err := i.keys.Signer("JWT")
	if err != nil {
		return Token{}, err
	}
	id := uuid.NewString()
	claims := jwt.Claims{
		Issuer: i.issuer, Subject: i.subject(workload), Audience: jwt.Audience(audience), ID: id,
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(exp),
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return Token{}, fmt.Errorf("workloadjwt: sign: %w", err)
	}
	return Token{JWT: raw, ID: id, Expiry: exp}, nil
}
