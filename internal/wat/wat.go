// Package wat mints and opens workload access tokens: the short-lived
// credential that binds an agent (workload identity) to the user it acts
// for and to the principal that asked for it.
//
// A token is a compact JWE (RFC 7516) with direct encryption under
// AES-256-GCM ("dir" + "A256GCM"): encrypted, so the agent cannot read what
// it carries, and authenticated, so it cannot alter it. The format is
// standard (see jwe.go); the codec is behalf's own because it only ever
// reads tokens it wrote, and a generic JOSE parser costs more than all the
// cryptography on this hot path. The keys are
// server keys sealed by the vault and shared through storage by every
// replica. A new key takes over every RotationPeriod; older keys keep
// opening tokens until every token they encrypted has expired, so rotation
// never invalidates a token already issued.
//
// Non-goals: tokens are bearer tokens and are not bound to a sender (DPoP
// or mTLS), and there is no revocation list: they are short-lived instead.
package wat

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/behalf-dev/behalf/internal/signingkeys"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
)

// Purpose names the server keys of workload access tokens.
const Purpose = "workload-access-token"

// Claims is what a token binds.
type Claims struct {
	Workload string `json:"wid"`
	// WorkloadVersion names the incarnation of the workload identity (its
	// creation time in microseconds), so that a token does not outlive a
	// workload identity deleted and created again under the same name.
	WorkloadVersion int64 `json:"wv"`
	// User is the user key (see UserFromJWT, UserFromID); empty when the
	// workload acts for itself.
	User string `json:"usr,omitempty"`
	// UserToken is the user's own JWT when the token was minted from one;
	// the on-behalf-of token exchange (RFC 8693) presents it as the subject
	// token. Encryption keeps it from the agent holding this token.
	UserToken string `json:"ujt,omitempty"`
	// Actors are the workloads the call came through before this token's
	// workload, outermost first: when a user's agent A calls B, which
	// calls C (identity chains, GetWorkloadAccessTokenForChain), B's token
	// has [A] and C's [A, B]. Empty for a token minted for a user or a
	// workload directly. At most MaxActors. Named after RFC 8693 §4.1's
	// act claim, as a flat list: the format is behalf's own.
	Actors    []string `json:"act,omitempty"`
	Principal string   `json:"prn"`
	// PrincipalVersion names the incarnation of the minting principal (its
	// creation time in microseconds), so that a token does not come back
	// to life when a deleted access key id is created again.
	PrincipalVersion int64  `json:"pv"`
	IssuedAt         int64  `json:"iat"`
	Expiry           int64  `json:"exp"`
	ID               string `json:"jti"`
}

// UserFromJWT names a user vouched for by an identity provider. It is
// injective in (issuer, subject), and its "jwt:" namespace never meets the
// "id:" namespace of caller-asserted user ids.
func UserFromJWT(issuer, subject string) string {
	return "jwt:" + strings.NewReplacer("%", "%25", "#", "%23").Replace(issuer) + "#" + subject
}

// UserFromID names a user by a caller-asserted id.
func UserFromID(id string) string { return "id:" + id }

// MaxActors bounds an identity chain: a token names at most this many
// workloads before its own.
const MaxActors = 8

// Errors returned by Open, and by Mint (ErrExpired, ErrChainTooLong).
var (
	ErrInvalid      = errors.New("workload access token is invalid")
	ErrExpired      = errors.New("workload access token has expired")
	ErrChainTooLong = fmt.Errorf("workload access token: an identity chain names at most %d workloads before the last", MaxActors)
)

// Options configure an Issuer.
type Options struct {
	// TTL is the default and maximum lifetime of a token; default 15m.
	TTL time.Duration
	// RotationPeriod is how long a key encrypts new tokens; default 24h.
	RotationPeriod time.Duration
	Now            func() time.Time
	// Metrics counts the lookups of opened tokens; nil counts nothing.
	Metrics *telemetry.Metrics
}

// Issuer mints and opens tokens. It is safe for concurrent use.
type Issuer struct {
	store storage.Storage
	vault *vault.Vault
	opts  Options

	mu       sync.RWMutex
	keys     map[string][]byte   // by key id
	loaded   []storage.ServerKey // the keys' ids and times, oldest first, without material
	current  string
	created  time.Time // of current
	lastLoad time.Time

	opened openedCache
}

// NewIssuer loads the keys, creating the first one if there is none.
func NewIssuer(ctx context.Context, st storage.Storage, v *vault.Vault, opts Options) (*Issuer, error) {
	if opts.TTL <= 0 {
		opts.TTL = 15 * time.Minute
	}
	if opts.RotationPeriod <= 0 {
		opts.RotationPeriod = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	i := &Issuer{store: st, vault: v, opts: opts}
	if err := i.Rotate(ctx); err != nil {
		return nil, err
	}
	return i, nil
}

// Rotate keeps the key ring current: it creates a key when the newest is
// older than RotationPeriod, deletes keys that can no longer have live
// tokens, and reloads. Replicas call it periodically; two replicas racing
// to create a key both succeed, and both then use the newest.
func (i *Issuer) Rotate(ctx context.Context) error {
	keys, err := i.store.ListServerKeys(ctx, Purpose)
	if err != nil {
		return fmt.Errorf("wat: list keys: %w", err)
	}
	now := i.opts.Now()
	if len(keys) == 0 || now.Sub(keys[len(keys)-1].CreatedAt) >= i.opts.RotationPeriod {
		if err := i.createKey(ctx, now); err != nil {
			return err
		}
		if keys, err = i.store.ListServerKeys(ctx, Purpose); err != nil {
			return fmt.Errorf("wat: list keys: %w", err)
		}
	}
	// A key stops encrypting when its successor appears; after that it must
	// still open tokens for TTL (plus a minute of clock skew).
	for n, k := range keys[:len(keys)-1] {
		retired := keys[n+1].CreatedAt
		if now.Sub(retired) > i.opts.TTL+time.Minute {
			if err := i.store.DeleteServerKey(ctx, Purpose, k.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("wat: delete retired key: %w", err)
			}
		}
	}
	return i.load(ctx, keys)
}

func (i *Issuer) createKey(ctx context.Context, now time.Time) error {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	defer clear(raw)
	id := uuid.Must(uuid.NewV7()).String()
	sealed, err := i.vault.Seal(ctx, raw, vault.ServerKeyBinding(Purpose, id))
	if err != nil {
		return fmt.Errorf("wat: seal key: %w", err)
	}
	if err := i.store.CreateServerKey(ctx, storage.ServerKey{Purpose: Purpose, ID: id, Key: sealed, CreatedAt: now}); err != nil {
		return fmt.Errorf("wat: store key: %w", err)
	}
	return nil
}

func (i *Issuer) load(ctx context.Context, keys []storage.ServerKey) error {
	opened := make(map[string][]byte, len(keys))
	for _, k := range keys {
		raw, err := i.vault.Open(ctx, k.Key, vault.ServerKeyBinding(Purpose, k.ID))
		if err != nil {
			return fmt.Errorf("wat: open key %s: %w", k.ID, err)
		}
		if len(raw) != 32 {
			return fmt.Errorf("wat: key %s has the wrong size", k.ID)
		}
		opened[k.ID] = raw
	}
	newest := keys[len(keys)-1]
	loaded := make([]storage.ServerKey, len(keys))
	for n, k := range keys {
		loaded[n] = storage.ServerKey{Purpose: Purpose, ID: k.ID, CreatedAt: k.CreatedAt}
	}
	i.mu.Lock()
	i.keys, i.loaded, i.current, i.created, i.lastLoad = opened, loaded, newest.ID, newest.CreatedAt, i.opts.Now()
	i.mu.Unlock()
	return nil
}

// Mint issues a token for c. Workload, User, Actors and Principal come
// from c; the lifetime is TTL, shortened to notAfter when that is earlier
// (the inbound JWT's expiry, or the calling workload's token's). IssuedAt,
// Expiry and ID are set here. A chain longer than MaxActors is
// ErrChainTooLong.
func (i *Issuer) Mint(c Claims, notAfter time.Time) (token string, expiry time.Time, err error) {
	if len(c.Actors) > MaxActors {
		return "", time.Time{}, ErrChainTooLong
	}
	now := i.opts.Now()
	expiry = now.Add(i.opts.TTL)
	if !notAfter.IsZero() && notAfter.Before(expiry) {
		expiry = notAfter
	}
	if !expiry.After(now) {
		return "", time.Time{}, ErrExpired
	}
	c.IssuedAt, c.Expiry, c.ID = now.Unix(), expiry.Unix(), uuid.NewString()
	payload, err := json.Marshal(c)
	if err != nil {
		return "", time.Time{}, err
	}
	i.mu.RLock()
	kid, key := i.current, i.keys[i.current]
	i.mu.RUnlock()
	token, err = seal(kid, key, payload)
	return token, expiry, err
}

// maxToken bounds what Open parses: a token is a few hundred bytes, or a
// few kilobytes when it carries a user's JWT (itself at most 16 KiB).
const maxToken = 64 << 10

// Open authenticates and decrypts a token and checks its expiry. The
// claims of a token that opened are cached (openedCache) until it expires.
func (i *Issuer) Open(ctx context.Context, token string) (Claims, error) {
	if len(token) > maxToken {
		return Claims{}, ErrInvalid
	}
	digest := digestOf(token)
	c, ok := i.opened.get(digest)
	i.opts.Metrics.CacheLookup(ctx, telemetry.CacheWorkloadToken, ok)
	if !ok {
		var err error
		if c, err = i.decrypt(ctx, token); err != nil {
			return Claims{}, err
		}
	}
	now := i.opts.Now().Unix()
	if now >= c.Expiry {
		return Claims{}, ErrExpired
	}
	if !ok && len(token) <= maxCachedToken {
		i.opened.put(digest, c, now)
	}
	return c, nil
}

// decrypt authenticates and decrypts a token and checks that its claims
// name a workload, a principal and an expiry, and at most MaxActors.
func (i *Issuer) decrypt(ctx context.Context, token string) (Claims, error) {
	jwe, err := parse(token)
	if err != nil {
		return Claims{}, ErrInvalid
	}
	key, err := i.key(ctx, jwe.kid)
	if err != nil {
		return Claims{}, err
	}
	payload, err := jwe.open(key)
	if err != nil {
		return Claims{}, ErrInvalid
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil || c.Workload == "" || c.Principal == "" || c.Expiry == 0 || len(c.Actors) > MaxActors {
		return Claims{}, ErrInvalid
	}
	return c, nil
}

// key finds a key by id, re-reading the ring (at most once a second) when
// another replica may have created it since.
func (i *Issuer) key(ctx context.Context, kid string) ([]byte, error) {
	i.mu.RLock()
	key, ok := i.keys[kid]
	stale := i.opts.Now().Sub(i.lastLoad) > time.Second
	i.mu.RUnlock()
	if ok {
		return key, nil
	}
	if _, err := uuid.Parse(kid); err != nil || !stale {
		return nil, ErrInvalid
	}
	keys, err := i.store.ListServerKeys(ctx, Purpose)
	if err != nil {
		return nil, fmt.Errorf("wat: list keys: %w", err)
	}
	if !slices.ContainsFunc(keys, func(k storage.ServerKey) bool { return k.ID == kid }) {
		i.mu.Lock()
		i.lastLoad = i.opts.Now()
		i.mu.Unlock()
		return nil, ErrInvalid
	}
	if err := i.load(ctx, keys); err != nil {
		return nil, err
	}
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.keys[kid], nil
}

// Status is the loaded keys' schedule now: a key encrypts from when it is
// made until its successor is, and opens tokens for TTL (and a minute of
// clock skew) after that.
func (i *Issuer) Status() signingkeys.SetStatus {
	i.mu.RLock()
	keys := slices.Clone(i.loaded)
	i.mu.RUnlock()
	return signingkeys.Schedule(keys, signingkeys.Options{Purpose: Purpose, Rotation: i.opts.RotationPeriod, Retain: i.opts.TTL}, i.opts.Now())
}

// CurrentKeyID names the key that encrypts new tokens.
func (i *Issuer) CurrentKeyID() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.current
}
