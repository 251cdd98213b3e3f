package inbound

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

// provider is one discovery URL, shared by the authorizers that name it.
// Its document is fetched on first use and then kept for the life of the
// Set; only the JWKS is refreshed.
type provider struct {
	set          *Set
	name         string // of the first authorizer naming it, for telemetry
	discoveryURL string
	issuer       string // derived from discoveryURL, without a trailing "/"
	limiter      *rate.Limiter
	flight       singleflight.Group

	mu        sync.Mutex
	docIssuer string // the discovery document's issuer, exactly
	keys      *keySet
	lastErr   error
}

// resolve returns the provider's key set and exact issuer, discovering them
// on first use. Discovery is attempted at most once per miss interval, so a
// down IdP is not asked again for every token.
func (p *provider) resolve(ctx context.Context) (*keySet, string, *Error) {
	p.mu.Lock()
	ks, iss := p.keys, p.docIssuer
	p.mu.Unlock()
	if ks != nil {
		return ks, iss, nil
	}
	if err := ctx.Err(); err != nil {
		// An ended request starts no fetch (and a select below between
		// its end and a fetch already done would choose at random).
		return nil, "", &Error{Kind: KindUnavailable, Message: "identity provider unavailable: the request ended before its discovery document was fetched", Cause: err}
	}
	ch := p.flight.DoChan("discovery", func() (any, error) {
		p.mu.Lock()
		done := p.keys != nil // by a flight that ended after we looked
		p.mu.Unlock()
		if done {
			return nil, nil
		}
		if !p.limiter.AllowN(p.set.now(), 1) {
			p.mu.Lock()
			lastErr := p.lastErr
			p.mu.Unlock()
			if lastErr == nil {
				lastErr = errRateLimited
			}
			return nil, lastErr
		}
		err := p.discover(fetchContext(p.set.base, ctx, p.name, telemetry.EndpointDiscovery))
		p.mu.Lock()
		p.lastErr = err
		p.mu.Unlock()
		return nil, err
	})
	var err error
	select {
	case r := <-ch:
		err = r.Err
	case <-ctx.Done():
		return nil, "", &Error{Kind: KindUnavailable, Message: "identity provider unavailable: the request ended while its discovery document was being fetched", Cause: ctx.Err()}
	}
	if err != nil {
		return nil, "", &Error{Kind: KindUnavailable, Message: "identity provider unavailable: its discovery document could not be fetched or is invalid", Cause: err}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys, p.docIssuer, nil
}

func (p *provider) discover(ctx context.Context) error {
	body, _, err := getJSON(ctx, p.set.client, p.discoveryURL)
	if err != nil {
		return err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := strictUnmarshal(body, &doc); err != nil {
		return fmt.Errorf("discovery document %s is not valid JSON: %w", p.discoveryURL, err)
	}
	// OpenID Connect Discovery 1.0 §4.3 and RFC 8414 §3.3: the issuer in
	// the document must be the one the URL was formed from (a trailing "/"
	// on the issuer is removed before appending the well-known path).
	if strings.TrimSuffix(doc.Issuer, "/") != p.issuer || doc.Issuer == "" {
		return fmt.Errorf("discovery document %s names issuer %q, which does not match its URL", p.discoveryURL, doc.Issuer)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || doc.JWKSURI == "" || u.Host == "" {
		return fmt.Errorf("discovery document %s has no valid jwks_uri", p.discoveryURL)
	}
	if msg := checkFetchURL(u); msg != "" {
		return fmt.Errorf("discovery document %s: jwks_uri %s", p.discoveryURL, msg)
	}
	ks, err := p.set.keySetFor(u.String(), p.name)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.keys, p.docIssuer = ks, doc.Issuer
	p.mu.Unlock()
	return nil
}
