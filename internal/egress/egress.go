// Package egress is the one way behalf makes outbound HTTP calls: to
// identity providers' discovery documents and JWKS, token and revocation
// endpoints, and any URL a caller names. Its client checks every address
// it connects to against a Policy at connection time, after DNS
// resolution, so neither a host name that resolves to an internal address
// nor a redirect can reach one; it never follows redirects, bounds every
// call in time, and answers every failure to connect with one error whose
// text does not say why, so it cannot be used to map a network. The cause
// is logged. See docs/security.md.
package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// Policy says which addresses outbound calls may connect to. Link-local,
// cloud metadata, unspecified, multicast and broadcast addresses are
// always refused; loopback and private addresses only as allowed here.
type Policy struct {
	// AllowLoopback allows 127.0.0.0/8 and ::1.
	AllowLoopback bool
	// AllowPrivate allows 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16,
	// fc00::/7 (RFC 4193) and 100.64.0.0/10 (RFC 6598 shared space).
	AllowPrivate bool
	// AllowCIDRs allows loopback or private addresses in these prefixes.
	AllowCIDRs []netip.Prefix
	// AllowHosts allows loopback or private addresses when the URL names
	// one of these hosts (case-insensitive, exact).
	AllowHosts []string
}

// DefaultTimeout bounds a call when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

var (
	// alwaysDenied are never dialled, whatever the policy: link-local
	// (where cloud metadata services live), known metadata addresses
	// outside link-local, and addresses that are not a host.
	alwaysDenied = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),          // "this network" (RFC 791); Linux dials 0.0.0.0 as loopback
		netip.MustParsePrefix("169.254.0.0/16"),     // IPv4 link-local (RFC 3927): 169.254.169.254 metadata
		netip.MustParsePrefix("fe80::/10"),          // IPv6 link-local (RFC 4291 §2.5.6)
		netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS IMDS over IPv6
		netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
		netip.MustParsePrefix("192.0.0.192/32"),     // Oracle Cloud Classic metadata
		netip.MustParsePrefix("224.0.0.0/4"),        // IPv4 multicast
		netip.MustParsePrefix("255.255.255.255/32"), // limited broadcast
		netip.MustParsePrefix("ff00::/8"),           // IPv6 multicast
		netip.MustParsePrefix("::/128"),             // unspecified
	}
	loopback = []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
	}
	private = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("fc00::/7"),
		netip.MustParsePrefix("100.64.0.0/10"),
	}
	// nat64 embeds an IPv4 address in its last 32 bits (RFC 6052 §2.1),
	// which a NAT64 gateway then dials.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
)

// Check reports why host's address ip may not be dialled, or nil.
func (p Policy) Check(host string, ip netip.Addr) error {
	if !ip.IsValid() {
		return errors.New("egress: not an IP address")
	}
	ip = ip.Unmap().WithZone("")
	if nat64.Contains(ip) {
		b := ip.As16()
		embedded := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		if err := p.Check(host, embedded); err != nil {
			return fmt.Errorf("%w (embedded in NAT64 address %s)", err, ip)
		}
	}
	if in(alwaysDenied, ip) || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLinkLocalUnicast() {
		return fmt.Errorf("egress: %s is a link-local, metadata or non-host address, always refused", ip)
	}
	return p.checkInternal(host, ip)
}

// checkInternal allows a loopback or private address only when the policy
// allows its range, its CIDR or host, and any other address.
func (p Policy) checkInternal(host string, ip netip.Addr) error {
	isLoopback, isPrivate := in(loopback, ip), in(private, ip)
	if !isLoopback && !isPrivate {
		return nil
	}
	if in(p.AllowCIDRs, ip) || slices.ContainsFunc(p.AllowHosts, func(h string) bool { return strings.EqualFold(h, host) }) {
		return nil
	}
	if isLoopback && !p.AllowLoopback {
		return fmt.Errorf("egress: %s is a loopback address and egress.allowLoopback is off", ip)
	}
	if isPrivate && !p.AllowPrivate {
		return fmt.Errorf("egress: %s is a private address and egress.allowPrivate is off", ip)
	}
	return nil
}

func in(prefixes []netip.Prefix, ip netip.Addr) bool {
	return slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(ip) })
}

// UnreachableError is the only error a Client's transport returns: the
// same text whether the policy refused the address, the connection was
// refused or reset, TLS failed, or the call timed out.
type UnreachableError struct {
	Host string
}

func (e *UnreachableError) Error() string { return "could not reach " + e.Host }

// Options configure a Client.
type Options struct {
	Policy Policy
	// Timeout bounds a whole call, reading the body included; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Log receives the cause of each failed call; nil discards it.
	Log *slog.Logger
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// Metrics counts each call by the provider and endpoint its context
	// is labelled with (telemetry.WithOutbound), and with it each call
	// gets a CLIENT span under the caller's span. Nil leaves calls
	// uninstrumented, as the telemetry exporter's own client must be.
	Metrics *telemetry.Metrics
	// Propagator gives each call a CLIENT span, even without Metrics, and
	// writes its trace context into the call, for upstreams that join
	// behalf's traces (the gateway's agents); nil for third parties, who
	// learn nothing of them.
	Propagator propagation.TextMapPropagator
	// Spans gives each call a CLIENT span even without Metrics or a
	// Propagator, sending no trace context (the gateway's tools).
	Spans bool
}

// NewClient returns the HTTP client for outbound calls. It never follows a
// redirect (which could carry a client secret to another host) and ignores
// HTTP_PROXY and HTTPS_PROXY, whose address the policy could not judge.
func NewClient(o Options) *http.Client {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	base := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer(o.Policy, o.Resolver),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: o.Timeout,
	}
	var rt http.RoundTripper = &transport{base: base, timeout: o.Timeout, log: o.Log}
	if o.Metrics != nil || o.Propagator != nil || o.Spans {
		rt = &instrumented{base: rt, metrics: o.Metrics, propagator: o.Propagator}
	}
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// dialer checks each resolved address in the socket's Control hook, just
// before connect(2), so the address checked is the address dialled.
func dialer(p Policy, r *net.Resolver) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		d := &net.Dialer{
			Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: r,
			Control: func(_, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return fmt.Errorf("egress: %w", err)
				}
				return p.Check(host, ap.Addr())
			},
		}
		return d.DialContext(ctx, network, addr)
	}
}

type transport struct {
	base    http.RoundTripper
	timeout time.Duration
	log     *slog.Logger
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	res, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		t.log.LogAttrs(req.Context(), slog.LevelWarn, "outbound call failed",
			slog.String(logging.KeyMethod, req.Method), slog.String(logging.KeyHost, req.URL.Host), slog.String(logging.KeyPath, req.URL.Path), logging.Err(err))
		return nil, &UnreachableError{Host: req.URL.Host}
	}
	res.Body = &cancelOnClose{ReadCloser: res.Body, cancel: cancel}
	return res, nil
}

// cancelOnClose keeps the call's deadline running until its body is read
// and closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
