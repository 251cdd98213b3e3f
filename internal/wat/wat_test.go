package wat

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/vault"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func setup(t *testing.T) (storage.Storage, *vault.Vault) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlstore.Open(context.Background(), filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := vault.OpenLocalKeyring(filepath.Join(dir, "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(context.Background(), kr, kr.ServiceKeyID())
	if err != nil {
		t.Fatal(err)
	}
	return st, v
}

func newIssuer(t *testing.T, st storage.Storage, v *vault.Vault, c *clock) *Issuer {
	t.Helper()
	i, err := NewIssuer(context.Background(), st, v, Options{TTL: 15 * time.Minute, RotationPeriod: 24 * time.Hour, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestMintOpen(t *testing.T) {
	st, v := setup(t)
	c := &clock{t: time.Now()}
	i := newIssuer(t, st, v, c)
	ctx := context.Background()

	tok, exp, err := i.Mint(Claims{Workload: "agent", User: UserFromJWT("https://idp", "alice"), Principal: "AKID"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got := exp.Sub(c.Now()); got != 15*time.Minute {
		t.Fatalf("lifetime %v", got)
	}
	claims, err := i.Open(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Workload != "agent" || claims.User != "jwt:https://idp#alice" || claims.Principal != "AKID" || claims.ID == "" {
		t.Fatalf("%+v", claims)
	}
	// The agent cannot read what its token binds.
	for _, part := range strings.Split(tok, ".") {
		raw, _ := base64.RawURLEncoding.DecodeString(part)
		if strings.Contains(string(raw), "agent") || strings.Contains(string(raw), "alice") {
			t.Fatalf("token reveals its claims: %q", raw)
		}
	}

	// Never past the user's own token.
	_, exp, _ = i.Mint(Claims{Workload: "agent", Principal: "AKID"}, c.Now().Add(2*time.Minute))
	if exp.Sub(c.Now()) != 2*time.Minute {
		t.Fatalf("capped expiry %v", exp.Sub(c.Now()))
	}
	if _, _, err := i.Mint(Claims{Workload: "agent", Principal: "AKID"}, c.Now().Add(-time.Second)); !errors.Is(err, ErrExpired) {
		t.Fatalf("minting past an expired user token: %v", err)
	}

	c.Add(15*time.Minute + time.Second)
	if _, err := i.Open(ctx, tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired token: %v", err)
	}
}

func TestTamperedTokensAreInvalid(t *testing.T) {
	st, v := setup(t)
	i := newIssuer(t, st, v, &clock{t: time.Now()})
	tok, _, _ := i.Mint(Claims{Workload: "agent", User: "id:alice", Principal: "AKID"}, time.Time{})
	ctx := context.Background()
	for n := 0; n < len(tok); n++ {
		if tok[n] == '.' {
			continue
		}
		b := []byte(tok)
		if b[n] == 'A' {
			b[n] = 'B'
		} else {
			b[n] = 'A'
		}
		if c, err := i.Open(ctx, string(b)); err == nil {
			if c.User != "id:alice" || c.Workload != "agent" {
				t.Fatalf("altering byte %d changed the claims to %+v", n, c)
			}
			// Base64 padding bits can change without changing the bytes.
			continue
		}
	}
	for _, bad := range []string{"", "a.b.c", "a.b.c.d.e", strings.Repeat("a", 9000), tok + "x"} {
		if _, err := i.Open(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%.20q: %v", bad, err)
		}
	}
	// A token from another deployment (other keys) is invalid here.
	st2, v2 := setup(t)
	other := newIssuer(t, st2, v2, &clock{t: time.Now()})
	foreign, _, _ := other.Mint(Claims{Workload: "agent", Principal: "AKID"}, time.Time{})
	if _, err := i.Open(ctx, foreign); !errors.Is(err, ErrInvalid) {
		t.Fatalf("foreign token: %v", err)
	}
}

func TestRotationKeepsIssuedTokens(t *testing.T) {
	st, v := setup(t)
	c := &clock{t: time.Now()}
	a := newIssuer(t, st, v, c)
	b := newIssuer(t, st, v, c) // a second replica on the same database
	ctx := context.Background()
	if a.CurrentKeyID() != b.CurrentKeyID() {
		t.Fatal("replicas disagree on the first key")
	}
	first := a.CurrentKeyID()

	c.Add(24*time.Hour - 5*time.Minute)
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if a.CurrentKeyID() != first {
		t.Fatal("rotated before the period ended")
	}
	old, _, _ := a.Mint(Claims{Workload: "agent", Principal: "AKID"}, time.Time{})
	c.Add(10 * time.Minute)
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if a.CurrentKeyID() == first {
		t.Fatal("did not rotate")
	}
	fresh, _, _ := a.Mint(Claims{Workload: "agent", Principal: "AKID"}, time.Time{})
	// Replica b has not reloaded yet; it finds the new key on demand.
	b.mu.Lock()
	b.lastLoad = time.Time{}
	b.mu.Unlock()
	for name, tok := range map[string]string{"old": old, "fresh": fresh} {
		for replica, i := range map[string]*Issuer{"a": a, "b": b} {
			if _, err := i.Open(ctx, tok); err != nil {
				t.Errorf("%s token on replica %s: %v", name, replica, err)
			}
		}
	}
	// Once every token of the first key has expired, the key goes.
	c.Add(15*time.Minute + 2*time.Minute)
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	keys, _ := st.ListServerKeys(ctx, Purpose)
	if len(keys) != 1 || keys[0].ID == first {
		t.Fatalf("retired key kept: %d keys", len(keys))
	}
}

func TestUserKeysAreInjective(t *testing.T) {
	pairs := [][2]string{{"https://a", "b#c"}, {"https://a#b", "c"}, {"https://a%23b", "c"}, {"https://a", "b"}}
	seen := map[string][2]string{}
	for _, p := range pairs {
		k := UserFromJWT(p[0], p[1])
		if prev, dup := seen[k]; dup {
			t.Fatalf("%v and %v share the key %q", prev, p, k)
		}
		seen[k] = p
	}
	if UserFromID("jwt:x#y") == UserFromJWT("x", "y") {
		t.Fatal("the id and jwt namespaces collide")
	}
}

func FuzzOpen(f *testing.F) {
	st, v := setupFuzz(f)
	i, err := NewIssuer(context.Background(), st, v, Options{})
	if err != nil {
		f.Fatal(err)
	}
	tok, _, _ := i.Mint(Claims{Workload: "w", Principal: "p"}, time.Time{})
	f.Add(tok)
	f.Add("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0....")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := i.Open(context.Background(), s)
		if err == nil && s != tok && (c.Workload != "w" || c.Principal != "p") {
			t.Fatalf("forged claims %+v", c)
		}
	})
}

func setupFuzz(f *testing.F) (storage.Storage, *vault.Vault) {
	dir := f.TempDir()
	st, err := sqlstore.Open(context.Background(), filepath.Join(dir, "db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	kr, _ := vault.OpenLocalKeyring(filepath.Join(dir, "keyring.json"))
	v, _ := vault.New(context.Background(), kr, kr.ServiceKeyID())
	return st, v
}

// The tokens are standard compact JWEs: go-jose, an independent
// implementation, opens them with the key.
func TestTokensAreStandardJWE(t *testing.T) {
	st, v := setup(t)
	i := newIssuer(t, st, v, &clock{t: time.Now()})
	tok, _, err := i.Mint(Claims{Workload: "agent", User: "id:bob", Principal: "AKID"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseEncryptedCompact(tok, []jose.KeyAlgorithm{jose.DIRECT}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	i.mu.RLock()
	key := i.keys[obj.Header.KeyID]
	i.mu.RUnlock()
	payload, err := obj.Decrypt(key)
	if err != nil || !strings.Contains(string(payload), `"usr":"id:bob"`) {
		t.Fatalf("go-jose: %q %v", payload, err)
	}
	// And behalf opens what go-jose seals under its key and header.
	enc, _ := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: key, KeyID: obj.Header.KeyID},
		(&jose.EncrypterOptions{}).WithType(tokenType))
	sealed, _ := enc.Encrypt([]byte(`{"wid":"agent","prn":"AKID","exp":` + strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10) + `}`))
	compact, _ := sealed.CompactSerialize()
	if c, err := i.Open(context.Background(), compact); err != nil || c.Workload != "agent" {
		t.Fatalf("a go-jose token: %+v %v", c, err)
	}
}

// A token opened once is opened again from the cache, which still refuses
// it once it has expired and never stands in for a token that differs by a
// character.
func TestOpenCachesOpenedTokens(t *testing.T) {
	st, v := setup(t)
	c := &clock{t: time.Now()}
	i := newIssuer(t, st, v, c)
	ctx := context.Background()
	tok, _, err := i.Mint(Claims{Workload: "agent", User: UserFromID("alice"), Principal: "AKID"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := i.Open(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := i.opened.get(sha256.Sum256([]byte(tok))); !ok {
		t.Fatal("an opened token is not cached")
	}
	// With the key ring gone only the cache can open the token.
	i.mu.Lock()
	i.keys = map[string][]byte{}
	i.mu.Unlock()
	again, err := i.Open(ctx, tok)
	if err != nil || !reflect.DeepEqual(again, first) {
		t.Fatalf("cached open: %+v, %v; want %+v", again, err, first)
	}
	if _, err := i.Open(ctx, tok[:len(tok)-1]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a truncated token of a cached one: %v", err)
	}
	c.Add(15*time.Minute + time.Second)
	if _, err := i.Open(ctx, tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("an expired cached token: %v", err)
	}
}

func TestOpenedCacheIsBounded(t *testing.T) {
	var cache openedCache
	for n := range maxOpened + 10 {
		cache.put(sha256.Sum256([]byte(strconv.Itoa(n))), Claims{Expiry: 100}, 50)
	}
	if len(cache.entries) > maxOpened {
		t.Fatalf("%d entries, want at most %d", len(cache.entries), maxOpened)
	}
	// Expired entries go first: a full cache of expired tokens keeps the
	// live one put after them.
	cache = openedCache{}
	for n := range maxOpened {
		cache.put(sha256.Sum256([]byte(strconv.Itoa(n))), Claims{Expiry: 10}, 50)
	}
	live := sha256.Sum256([]byte("live"))
	cache.put(live, Claims{Expiry: 100}, 50)
	cache.put(sha256.Sum256([]byte("another")), Claims{Expiry: 100}, 50)
	if _, ok := cache.get(live); !ok || len(cache.entries) != 2 {
		t.Fatalf("after evicting expired entries: %d entries, live cached %v", len(cache.entries), ok)
	}
}

// TestActors: a token carries its identity chain in order, up to
// MaxActors; a longer chain is never minted, nor opened.
func TestActors(t *testing.T) {
	st, v := setup(t)
	c := &clock{t: time.Now()}
	i := newIssuer(t, st, v, c)
	ctx := context.Background()

	chain := []string{"agent-a", "agent-b"}
	tok, _, err := i.Mint(Claims{Workload: "agent-c", User: UserFromID("alice"), Actors: chain, Principal: "AKID"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := i.Open(ctx, tok)
	if err != nil || strings.Join(claims.Actors, ">") != "agent-a>agent-b" || claims.Workload != "agent-c" {
		t.Fatalf("opened %+v, %v", claims, err)
	}

	full := make([]string, MaxActors)
	for n := range full {
		full[n] = "agent-" + strconv.Itoa(n)
	}
	if _, _, err := i.Mint(Claims{Workload: "w", Principal: "AKID", Actors: full}, time.Time{}); err != nil {
		t.Fatalf("a chain of %d: %v", MaxActors, err)
	}
	if _, _, err := i.Mint(Claims{Workload: "w", Principal: "AKID", Actors: append(full, "one-more")}, time.Time{}); !errors.Is(err, ErrChainTooLong) {
		t.Fatalf("a chain of %d: %v", MaxActors+1, err)
	}

	// A token that somehow names a longer chain does not open.
	i.mu.RLock()
	kid, key := i.current, i.keys[i.current]
	i.mu.RUnlock()
	long, err := seal(kid, key, []byte(`{"wid":"w","prn":"AKID","exp":`+strconv.FormatInt(c.Now().Add(time.Minute).Unix(), 10)+
		`,"act":["a","b","c","d","e","f","g","h","i"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := i.Open(ctx, long); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a token with a chain of 9: %v", err)
	}
}
