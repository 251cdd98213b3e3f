package clients

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-
// document; the MCP authorization specification's preferred registration).
const (
	// maxDocumentBytes is the draft's recommended 5 KB bound.
	maxDocumentBytes = 5 << 10
	// A document is kept for its Cache-Control max-age within these
	// bounds, or defaultTTL without one.
	minTTL     = 5 * time.Minute
	maxTTL     = 24 * time.Hour
	defaultTTL = 10 * time.Minute
	// fetchTimeout bounds a fetch shared by several requests.
	fetchTimeout = 10 * time.Second
	// outboundName labels fetches from clients' URLs in telemetry: one
	// label for every client, so that clients cannot grow the metrics.
	outboundName = "oauth-client"
)

// document resolves a client named by the URL of its metadata document.
func (r *Registry) document(ctx context.Context, clientID string) (entry, *oauthwire.Error) {
	if msg := CheckDocumentURL(clientID); msg != "" {
		return entry{}, oauthwire.Errorf("invalid_client", "client_id is a URL but not a client metadata document URL: it %s", msg)
	}
	return r.documents.load(ctx, clientID, func(ctx context.Context) (entry, time.Duration, *oauthwire.Error) {
		return r.fetchDocument(ctx, clientID)
	})
}

// CheckDocumentURL applies the draft's rules to a client_id URL: https
// (http only on a loopback host, which the egress policy must also allow,
// for development), a path, no "." or ".." segment, no fragment, no user
// information, and no query (which the draft discourages; behalf refuses
// it). It returns what is wrong, or "".
func CheckDocumentURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || len(raw) > maxURIBytes:
		return "is not a URL of at most 2000 bytes"
	case !fetchableURL(raw):
		return "must be an https URL with a host and without user information or fragment"
	case u.RawQuery != "" || u.ForceQuery:
		return "must not have a query"
	case u.Path == "" || u.Path == "/":
		return "must have a path"
	case hasDotSegment(u):
		return "must not have a . or .. path segment"
	}
	return ""
}

// hasDotSegment reports whether u's path has a "." or ".." segment, even
// percent-encoded.
func hasDotSegment(u *url.URL) bool {
	for seg := range strings.SplitSeq(u.EscapedPath(), "/") {
		if dec, err := url.PathUnescape(seg); err != nil || dec == "." || dec == ".." {
			return true
		}
	}
	return false
}

// fetchDocument fetches and validates a metadata document; its answer is
// cached only when valid.
func (r *Registry) fetchDocument(ctx context.Context, docURL string) (entry, time.Duration, *oauthwire.Error) {
	body, ttl, err := r.fetch(ctx, docURL, maxDocumentBytes, telemetry.EndpointDiscovery)
	if err != nil {
		r.o.Log.LogAttrs(ctx, slog.LevelInfo, "client metadata document not fetched", slog.String(logging.KeyPrincipal, "client:"+docURL), logging.Err(err))
		return entry{}, 0, oauthwire.Errorf("invalid_client", "the client metadata document could not be fetched: %s", err.Error())
	}
	e, oe := parseDocument(docURL, body)
	if oe != nil {
		return entry{}, 0, oauthwire.Errorf("invalid_client", "the client metadata document is invalid: %s", oe.Description)
	}
	return e, ttl, nil
}

// parseDocument validates the metadata document of the client docURL.
func parseDocument(docURL string, body []byte) (entry, *oauthwire.Error) {
	md, members, err := decodeMetadata(body)
	if err != nil {
		return entry{}, invalidMetadata("it %s", err.Error())
	}
	for _, m := range secretMembers {
		if _, ok := members[m]; ok {
			return entry{}, invalidMetadata("it must not contain %s", m)
		}
	}
	switch {
	case md.ClientID != docURL: // the draft: simple string comparison
		return entry{}, invalidMetadata("its client_id is not exactly its URL")
	case md.ClientName == "":
		return entry{}, invalidMetadata("client_name is required")
	case len(md.RedirectURIs) == 0:
		return entry{}, invalidMetadata("redirect_uris is required")
	}
	if e := complete(&md, MetadataDocument); e != nil {
		return entry{}, e
	}
	return md.entry(MetadataDocument), nil
}

// fetch GETs u through the egress-policed client: status 200 only, no
// redirect, at most limit bytes. It returns the body and how long it may
// be kept. Its errors say nothing the client could not learn itself.
func (r *Registry) fetch(ctx context.Context, u string, limit int, endpoint string) ([]byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(telemetry.WithOutbound(ctx, outboundName, endpoint), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil) //nolint:gosec // G704: the client's URL, dialled through the egress policy
	if err != nil {
		return nil, 0, errors.New("not a valid URL")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.o.HTTP.Do(req) //nolint:gosec // G704: Options.HTTP is the egress-policed client
	if err != nil {
		if ue, ok := errors.AsType[*egress.UnreachableError](err); ok {
			return nil, 0, ue // names the host only, the same for every cause
		}
		return nil, 0, fmt.Errorf("could not reach %s", req.URL.Host)
	}
	defer func() { _ = resp.Body.Close() }() // read only
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("HTTP status %d, not 200", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	switch {
	case err != nil:
		return nil, 0, errors.New("the body could not be read")
	case len(body) > limit:
		return nil, 0, fmt.Errorf("larger than %d bytes", limit)
	}
	return body, ttlOf(resp.Header.Get("Cache-Control")), nil
}

// ttlOf is how long a response may be kept: its Cache-Control max-age
// (RFC 9111 §5.2.2.1) clamped to [minTTL, maxTTL], or defaultTTL.
func ttlOf(cacheControl string) time.Duration {
	for d := range strings.SplitSeq(cacheControl, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		if strings.EqualFold(name, "max-age") {
			n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
			if err != nil || n < 0 {
				return defaultTTL
			}
			return min(max(time.Duration(min(n, int64(maxTTL/time.Second)))*time.Second, minTTL), maxTTL)
		}
	}
	return defaultTTL
}
