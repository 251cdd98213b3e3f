package inbound

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/telemetry"
)

// maxDocumentBytes caps discovery documents and JWKS (go-oidc reads them
// unbounded).
const maxDocumentBytes = 1 << 20

// Cache-Control max-age is honoured within these bounds, so an IdP can
// neither make behalf poll it constantly nor pin keys for days.
const (
	minMaxAge = 5 * time.Minute
	maxMaxAge = 24 * time.Hour
)

// fetchTimeout bounds one fetch even when the caller's HTTP client has no
// timeout: fetches are shared between requests and must end.
const fetchTimeout = 30 * time.Second

// fetchContext is the context of a fetch made for the call ctx: bounded by
// base (the Set's life), not by the call, since callers share the fetch;
// labelled for telemetry; and traced as part of the call that started it.
func fetchContext(base, ctx context.Context, name, endpoint string) context.Context {
	return telemetry.WithOutbound(trace.ContextWithSpan(base, trace.SpanFromContext(ctx)), name, endpoint)
}

// getJSON fetches u and returns its body (at most maxDocumentBytes) and the
// Cache-Control max-age, clamped, or 0 when there is none.
func getJSON(ctx context.Context, client *http.Client, u string) ([]byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = resp.Body.Close() }() // read only: Close loses nothing
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, 0, fmt.Errorf("GET %s: HTTP status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxDocumentBytes {
		return nil, 0, fmt.Errorf("GET %s: body exceeds %d bytes", u, maxDocumentBytes)
	}
	return body, maxAge(resp.Header.Get("Cache-Control")), nil
}

// maxAge returns the RFC 9111 §5.2.2.1 max-age of a Cache-Control value,
// clamped to [minMaxAge, maxMaxAge], or 0 when absent or malformed.
// no-store and no-cache count as the minimum.
func maxAge(cc string) time.Duration {
	var age time.Duration
	for _, d := range strings.Split(cc, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return minMaxAge
		case "max-age":
			n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
			if err != nil || n < 0 {
				return 0
			}
			age = time.Duration(min(n, int64(maxMaxAge/time.Second))) * time.Second
		}
	}
	if age == 0 {
		return 0
	}
	return min(max(age, minMaxAge), maxMaxAge)
}
