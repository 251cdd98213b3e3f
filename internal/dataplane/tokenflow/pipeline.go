package tokenflow

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"time"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/vault"
)

// A Grant is what varies between the flows that ask a token endpoint for
// a token on the workload's behalf (RFC 6749 §4.4, RFC 8693 §2.1).
type Grant interface {
	// Check refuses, before any token is looked up, a request the
	// provider or the workload access token cannot serve.
	Check(p access.OAuth2Provider, v access.Verified) error
	// CacheKey adds to the request's cache key what else tells tokens of
	// this grant apart (the user of an exchanged token); "" when nothing.
	CacheKey(v access.Verified) string
	// Form returns grant_type and the grant's own parameters; a grant
	// that must first obtain its assertion elsewhere does so here.
	Form(ctx context.Context, v access.Verified) (url.Values, error)
	// NoClient reports whether the request goes without the client's id
	// and credentials (onBehalfOfAuthenticationConfig NO_CLIENT).
	NoClient() bool
}

// issue returns a token for the request, from the cache when a fresh one
// is kept; concurrent callers for the same entry share one upstream
// request.
//
// GetResourceOauth2Token documents forceAuthentication as starting a new
// three-legged flow; for the flows served here, which have no user to
// ask, it means the caller's token was refused: the cache is skipped and
// the provider's new token replaces the cached one. Concurrent forced
// callers share one upstream request of their own, so that none of them
// is handed the token that was refused.
func (s *Service) issue(ctx context.Context, g Grant, v access.Verified, p access.OAuth2Provider, in *Request) (string, error) {
	if err := g.Check(p, v); err != nil {
		return "", err
	}
	e := cacheEntry{providerID: p.ID, workload: v.Workload.Name, key: cacheKey(in, p.UpdatedAt, v.Workload.CreatedAt) + g.CacheKey(v)}
	forced := in.ForceAuthentication != nil && *in.ForceAuthentication
	flight := e.id()
	if forced {
		flight = "forced\x00" + flight
	} else {
		token, ok, err := s.cachedToken(ctx, e)
		if err == nil {
			s.Metrics.CacheLookup(ctx, telemetry.CacheM2MToken, ok)
		}
		if ok || err != nil {
			return token, err
		}
	}
	fetched, err, _ := s.inflight.Do(flight, func() (any, error) {
		if !forced {
			// Another caller may have filled the cache while this one waited.
			if token, ok, err := s.cachedToken(ctx, e); ok || err != nil {
				return token, err
			}
		}
		return s.fetch(ctx, g, v, p, in, e)
	})
	if err != nil {
		return "", err
	}
	return fetched.(string), nil
}

// fetch asks the provider for a token and caches it in place of e's.
func (s *Service) fetch(ctx context.Context, g Grant, v access.Verified, p access.OAuth2Provider, in *Request, e cacheEntry) (string, error) {
	form, err := g.Form(ctx, v)
	if err != nil {
		return "", err
	}
	if len(in.Scopes) > 0 {
		form.Set("scope", p.Config.VendorInfo().JoinScopes(in.Scopes))
	}
	AddRequestParameters(form, in)
	if rs := p.Config.Resources(in.Resources); len(rs) > 0 {
		form["resource"] = rs // an MCP server's tokens are for it alone
	}
	send := s.Endpoint.Request
	if g.NoClient() {
		send = s.Endpoint.RequestNoClient
	}
	tok, err := send(context.WithoutCancel(ctx), p, form)
	if err != nil {
		return "", UpstreamError(p.Name, err)
	}
	if err := s.putCachedToken(ctx, e, tok.AccessToken, tok.Expiry); err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// cacheEntry names one cached token.
type cacheEntry struct {
	providerID, workload, key string
}

func (e cacheEntry) id() string { return e.providerID + "\x00" + e.workload + "\x00" + e.key }

func (e cacheEntry) binding() vault.Binding {
	return vault.CachedTokenBinding(e.providerID, e.workload, e.key)
}

// cacheRefreshMargin is how long before expiry a token is replaced: a
// minute, or a tenth of its lifetime when that is shorter, so that a
// provider's short-lived tokens are still used for most of their life.
const cacheRefreshMargin = time.Minute

// RefreshMargin is how long before it expires a token of the given
// lifetime is replaced.
func RefreshMargin(lifetime time.Duration) time.Duration {
	if lifetime > 0 && lifetime/10 < cacheRefreshMargin {
		return lifetime / 10
	}
	return cacheRefreshMargin
}

// defaultTokenLifetime is assumed for a token whose response gave no
// expires_in.
const defaultTokenLifetime = 5 * time.Minute

// cachedToken returns the cached token of e while it is fresh (ok). A
// cached token that does not open is logged and replaced by a new one
// rather than failing every call until it expires.
func (s *Service) cachedToken(ctx context.Context, e cacheEntry) (token string, ok bool, err error) {
	ct, err := s.tokens.Get(ctx, e.id(), func(ctx context.Context, _ string) (storage.CachedToken, error) {
		return s.Store.GetCachedToken(ctx, e.providerID, e.workload, e.key)
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("read cached token: %w", err)
	case s.Now().Add(RefreshMargin(ct.ExpiresAt.Sub(ct.CreatedAt))).After(ct.ExpiresAt):
		s.tokens.Invalidate(e.id())
		return "", false, nil
	}
	raw, err := s.Vault.Open(ctx, ct.Token, e.binding())
	if err != nil {
		s.logger().LogAttrs(ctx, slog.LevelWarn, "cached token does not open; fetching a new one",
			slog.String(logging.KeyWorkload, e.workload), logging.Err(err))
		s.tokens.Invalidate(e.id())
		return "", false, nil
	}
	return string(raw), true, nil
}

// putCachedToken keeps a token, sealed, until shortly before it expires.
func (s *Service) putCachedToken(ctx context.Context, e cacheEntry, token string, expiry time.Time) error {
	if expiry.IsZero() {
		expiry = s.Now().Add(defaultTokenLifetime)
	}
	sealed, err := s.Vault.Seal(ctx, []byte(token), e.binding())
	if err != nil {
		return fmt.Errorf("seal token for the cache: %w", err)
	}
	err = s.Store.PutCachedToken(ctx, storage.CachedToken{ProviderID: e.providerID, Workload: e.workload, Key: e.key, Token: sealed,
		ExpiresAt: expiry, CreatedAt: s.Now()})
	if err != nil {
		return fmt.Errorf("store cached token: %w", err)
	}
	s.tokens.Invalidate(e.id())
	return nil
}

// AddRequestParameters adds RFC 8707 resource indicators, audiences and
// the caller's custom parameters (which validation keeps from overriding
// standard ones).
func AddRequestParameters(form url.Values, in *Request) {
	for _, r := range in.Resources {
		form.Add("resource", r)
	}
	for _, a := range in.Audiences {
		form.Add("audience", a)
	}
	for k, v := range in.CustomParameters {
		form.Set(k, v)
	}
}

// cacheKey identifies what a token was requested for: the scope set, the
// resources and audiences, and the custom parameters — and under which
// version of the provider and the workload, so that a token fetched while
// either changed lands where no one looks. Order does not matter and the
// encoding is unambiguous.
func cacheKey(in *Request, providerVersion, workloadVersion time.Time) string {
	h := sha256.New()
	// The bytes binary.Write wrote before: big-endian int64 versions and
	// uint32 lengths, so that keys cached by earlier versions still match.
	var buf []byte
	buf = binary.BigEndian.AppendUint64(buf, uint64(providerVersion.UnixMicro()))
	buf = binary.BigEndian.AppendUint64(buf, uint64(workloadVersion.UnixMicro()))
	h.Write(buf)
	writeString := func(s string) {
		h.Write(length(len(s)))
		h.Write([]byte(s))
	}
	write := func(label string, items []string) {
		items = slices.Clone(items)
		slices.Sort(items)
		items = slices.Compact(items)
		writeString(label)
		h.Write(length(len(items)))
		for _, it := range items {
			writeString(it)
		}
	}
	write("scopes", in.Scopes)
	write("resources", in.Resources)
	write("audiences", in.Audiences)
	params := make([]string, 0, len(in.CustomParameters))
	for k, v := range in.CustomParameters {
		params = append(params, k+"\x00"+v)
	}
	write("parameters", params)
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// length encodes n as a big-endian uint32; validation bounds every length
// far below its limit.
func length(n int) []byte {
	if n < 0 || n > math.MaxUint32 {
		panic("tokenflow: length out of range")
	}
	return binary.BigEndian.AppendUint32(nil, uint32(n))
}
