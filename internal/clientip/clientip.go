// Package clientip finds the address of the client behind a request: the
// connection's peer, or, behind reverse proxies the operator trusts, the
// address they name in X-Forwarded-For. Per-address rate limits key on
// it, so that clients behind one proxy do not share one limit.
package clientip

import (
	"net/http"
	"net/netip"
	"strings"
)

// maxHops bounds how many X-Forwarded-For entries are read.
const maxHops = 16

// Resolver finds a request's client address. The zero value trusts no
// proxy: the client is the connection's peer.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that believes X-Forwarded-For from peers in
// trusted.
func New(trusted []netip.Prefix) Resolver {
	return Resolver{trusted: trusted}
}

// Of returns the address of req's client. When the connection's peer is a
// trusted proxy, X-Forwarded-For is read from its end, where each proxy
// appends the address it received the request from, and the first address
// that is not a trusted proxy's is the client's. An entry that does not
// parse stops the walk at the last address read: what lies before it was
// written by someone not trusted. Everything left of the client's entry
// is the client's own say and is ignored.
func (r Resolver) Of(req *http.Request) string {
	addr, err := parse(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	values := req.Header.Values("X-Forwarded-For")
	for hops := 0; r.trusts(addr) && hops < maxHops; hops++ {
		var entry string
		if entry, values = last(values); entry == "" {
			break
		}
		next, err := parse(entry)
		if err != nil {
			break
		}
		addr = next
	}
	return addr.String()
}

func (r Resolver) trusts(addr netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// last removes the last comma-separated entry of the header's values and
// returns it, trimmed; "" when none is left.
func last(values []string) (string, []string) {
	for len(values) > 0 {
		v := values[len(values)-1]
		i := strings.LastIndexByte(v, ',')
		entry := strings.TrimSpace(v[i+1:])
		if i < 0 {
			values = values[:len(values)-1]
		} else {
			values = append(values[:len(values)-1:len(values)-1], v[:i])
		}
		if entry != "" {
			return entry, values
		}
	}
	return "", nil
}

// parse reads an address, with or without a port (RemoteAddr has one;
// some proxies write one), as a plain IPv4 address when it is an
// IPv4-mapped IPv6 one.
func parse(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err
}
