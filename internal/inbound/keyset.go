package inbound

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

// maxKeys bounds how many keys of one JWKS are kept; real IdPs publish a
// handful.
const maxKeys = 100

// errRateLimited: an on-demand fetch was refused by the miss limiter.
var errRateLimited = errors.New("JWKS refetch rate-limited")

// keySet is a cached JWKS (RFC 7517 §5) of one issuer. It exists instead of
// go-oidc's RemoteKeySet, which refetches on every unknown kid, so anyone
// able to send tokens could make behalf hammer the IdP:
//   - concurrent fetches are merged (singleflight);
//   - a fetch on a kid miss happens at most once per miss interval
//     (rate.Limiter, burst 1), except the very first fetch;
//   - a failed fetch keeps the keys already cached;
//   - a background loop refreshes every refresh interval, or the
//     Cache-Control max-age clamped to [5m, 24h].
type keySet struct {
	url      string
	name     string // labels its fetches in telemetry
	client   *http.Client
	now      func() time.Time
	base     context.Context // cancelled by Set.Close
	interval time.Duration
	limiter  *rate.Limiter
	flight   singleflight.Group

	mu          sync.RWMutex
	keys        []verifyKey
	fetched     bool   // a fetch has succeeded
	generation  uint64 // successful fetches: keys changes only with it
	attempts    uint64 // fetches completed, successful or not
	lastErr     error
	lastAttempt time.Time     // real time
	nextAfter   time.Duration // refresh delay set by the last successful fetch
}

// verifyKey is one usable verification key.
type verifyKey struct {
	kid string
	alg string // "" when the JWKS leaves it open
	key crypto.PublicKey
}

// run refreshes ks in the background until ctx is done. Its schedule is
// kept in real time, whatever clock Options.Now gives.
func (ks *keySet) run(ctx context.Context) {
	for {
		d := ks.untilRefresh()
		if d <= 0 {
			_ = ks.refresh(ctx, false, 0) // the error is kept in lastErr
			if d = ks.untilRefresh(); d <= 0 {
				d = min(ks.interval, time.Minute) // joined a flight that did not fetch
			}
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// untilRefresh is the time left before the next background refresh: the
// max-age or refresh interval after the last successful fetch, or a minute
// (at most the interval) after a failed one.
func (ks *keySet) untilRefresh() time.Duration {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	switch {
	case ks.attempts == 0:
		return ks.interval // not used yet: no reason to fetch
	case ks.lastErr != nil:
		return time.Until(ks.lastAttempt.Add(min(ks.interval, time.Minute)))
	}
	return time.Until(ks.lastAttempt.Add(ks.nextAfter))
}

// refresh fetches the JWKS, joining a fetch already in flight. An
// on-demand refresh (a kid miss seen after seen completed fetches) is
// skipped when a fetch has completed since, and is otherwise subject to the
// limiter. The limiter is consulted by whichever caller starts the flight,
// so callers that arrive during a fetch share its result instead of being
// refused.
func (ks *keySet) refresh(ctx context.Context, onDemand bool, seen uint64) error {
	if err := ctx.Err(); err != nil {
		return err // an ended request starts no fetch
	}
	ch := ks.flight.DoChan("jwks", func() (any, error) {
		if onDemand {
			ks.mu.RLock()
			attempts, lastErr := ks.attempts, ks.lastErr
			ks.mu.RUnlock()
			switch {
			case attempts != seen:
				return nil, lastErr
			case attempts > 0 && !ks.limiter.AllowN(ks.now(), 1):
				return nil, errRateLimited
			}
		}
		return nil, ks.fetch(fetchContext(ks.base, ctx, ks.name, telemetry.EndpointJWKS))
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ks *keySet) fetch(ctx context.Context) error {
	body, age, err := getJSON(ctx, ks.client, ks.url)
	var keys []verifyKey
	if err == nil {
		keys, err = parseJWKS(body)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.attempts++
	ks.lastAttempt = time.Now()
	if err != nil {
		ks.lastErr = err // keep the keys we have
		return err
	}
	ks.keys, ks.fetched, ks.lastErr = keys, true, nil
	ks.generation++
	ks.nextAfter = ks.interval
	if age > 0 {
		ks.nextAfter = age
	}
	return nil
}

// parseJWKS keeps the keys usable for verifying signatures and skips the
// rest, so that one key of an unknown type does not hide the others.
func parseJWKS(body []byte) ([]verifyKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := strictUnmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("JWKS is not valid JSON: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New(`JWKS has no "keys" array`)
	}
	var keys []verifyKey
	for _, raw := range set.Keys {
		if len(keys) == maxKeys {
			break
		}
		if k, ok := signatureKey(raw); ok {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// signatureKey decodes one JWK and reports whether it may verify
// signatures: a public RSA (2048 bits or more), ECDSA or Ed25519 key, not
// meant for encryption, whose alg, when given, is one behalf allows.
func signatureKey(raw json.RawMessage) (verifyKey, bool) {
	var meta struct {
		Use    string   `json:"use"`
		KeyOps []string `json:"key_ops"`
	}
	var jwk jose.JSONWebKey
	if json.Unmarshal(raw, &meta) != nil || jwk.UnmarshalJSON(raw) != nil {
		return verifyKey{}, false
	}
	// RFC 7517 §4.2 and §4.3: a key meant for encryption is not a
	// signature key (RFC 8725 §3.5 on key reuse).
	if meta.Use != "" && meta.Use != "sig" {
		return verifyKey{}, false
	}
	if meta.KeyOps != nil && !slices.Contains(meta.KeyOps, "verify") {
		return verifyKey{}, false
	}
	if jwk.Algorithm != "" && !isAllowedAlg(jwk.Algorithm) {
		return verifyKey{}, false
	}
	switch k := jwk.Key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 { // RFC 7518 §3.3
			return verifyKey{}, false
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default: // symmetric and private keys have no place in a JWKS
		return verifyKey{}, false
	}
	return verifyKey{kid: jwk.KeyID, alg: jwk.Algorithm, key: jwk.Key}, true
}

// fits reports whether k may verify a signature made with alg: the JWK's
// own alg, when present, must match (RFC 8725 §3.1), and the key type and
// curve must be those of alg (RFC 7518 §3.1).
func (k verifyKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		return slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, alg)
	case *ecdsa.PublicKey:
		return (alg == "ES256" && key.Curve == elliptic.P256()) ||
			(alg == "ES384" && key.Curve == elliptic.P384()) ||
			(alg == "ES512" && key.Curve == elliptic.P521())
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// generationNow is the number of successful fetches so far.
func (ks *keySet) generationNow() uint64 {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.generation
}

// candidates returns the keys to try for a token header, and the number of
// fetches completed when it looked. ok is false on a miss (no keys yet, or
// no key with this kid), which may be cured by a refetch; e is a final
// verdict.
//
// A token without a kid is accepted only when the JWKS holds exactly one
// signature key: trying every key would let one token cost many
// verifications, and a JWKS with several keys is ambiguous without a kid.
func (ks *keySet) candidates(h header) (keys []verifyKey, ok bool, seen, generation uint64, e *Error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	keys, ok, e = ks.lookup(h)
	return keys, ok, ks.attempts, ks.generation, e
}

func (ks *keySet) lookup(h header) (keys []verifyKey, ok bool, e *Error) {
	if !ks.fetched {
		return nil, false, nil
	}
	if h.Kid == "" {
		switch {
		case len(ks.keys) == 0:
			return nil, false, nil
		case len(ks.keys) > 1:
			return nil, false, newError(KindInvalidToken, "token header has no kid, and the issuer publishes %d keys", len(ks.keys))
		case !ks.keys[0].fits(h.Alg):
			return nil, false, newError(KindBadSignature, "the issuer's key does not fit token algorithm %s", h.Alg)
		}
		return ks.keys, true, nil
	}
	var known bool
	for _, k := range ks.keys {
		if k.kid != h.Kid {
			continue
		}
		known = true
		if k.fits(h.Alg) {
			keys = append(keys, k)
		}
	}
	switch {
	case !known:
		return nil, false, nil
	case len(keys) == 0:
		return nil, false, newError(KindBadSignature, "the issuer's key %s does not fit token algorithm %s", quote(h.Kid), h.Alg)
	}
	return keys, true, nil
}

// verify checks the signature of jws (RFC 7515 §5.2) with the issuer's
// keys, refetching the JWKS once, rate-limited, when the kid is unknown. It
// returns the payload and the generation of the keys that verified it.
func (ks *keySet) verify(ctx context.Context, jws *jose.JSONWebSignature, h header) ([]byte, uint64, *Error) {
	keys, ok, seen, generation, e := ks.candidates(h)
	if e != nil {
		return nil, 0, e
	}
	if !ok {
		err := ks.refresh(ctx, true, seen)
		if keys, ok, _, generation, e = ks.candidates(h); e != nil {
			return nil, 0, e
		}
		if !ok {
			return nil, 0, ks.missError(ctx, h, err)
		}
	}
	for _, k := range keys {
		if payload, err := jws.Verify(k.key); err == nil {
			return payload, generation, nil
		}
	}
	return nil, 0, newError(KindBadSignature, "token signature does not verify with the issuer's key")
}

// missError explains a kid that is still unknown after refresh returned
// err.
func (ks *keySet) missError(ctx context.Context, h header, err error) *Error {
	ks.mu.RLock()
	fetched, lastErr := ks.fetched, ks.lastErr
	ks.mu.RUnlock()
	const unavailable = "identity provider unavailable: its signing keys (JWKS) could not be fetched"
	switch {
	case err == nil || errors.Is(err, errRateLimited) && fetched:
		if h.Kid == "" {
			return newError(KindBadSignature, "the issuer publishes no signature keys")
		}
		return newError(KindBadSignature, "token key id %s is not among the issuer's keys", quote(h.Kid))
	case errors.Is(err, errRateLimited):
		return &Error{Kind: KindUnavailable, Message: unavailable, Cause: lastErr}
	case ctx.Err() != nil:
		return &Error{Kind: KindUnavailable, Message: "identity provider unavailable: the request ended while its signing keys were being fetched", Cause: err}
	}
	return &Error{Kind: KindUnavailable, Message: unavailable, Cause: err}
}
