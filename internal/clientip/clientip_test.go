package clientip

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	proxies := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")})
	for _, c := range []struct {
		name     string
		resolver Resolver
		peer     string
		xff      []string
		want     string
	}{
		{"no proxy trusted", Resolver{}, "10.1.2.3:4000", []string{"198.51.100.7"}, "10.1.2.3"},
		{"untrusted peer's header ignored", proxies, "192.0.2.9:4000", []string{"198.51.100.7"}, "192.0.2.9"},
		{"one proxy", proxies, "10.1.2.3:4000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"the client's own entries ignored", proxies, "10.1.2.3:4000", []string{"203.0.113.66, 198.51.100.7"}, "198.51.100.7"},
		{"a chain of proxies", proxies, "10.1.2.3:4000", []string{"198.51.100.7, 10.9.9.9", "10.8.8.8"}, "198.51.100.7"},
		{"spoofed proxy address left of the client", proxies, "10.1.2.3:4000", []string{"10.5.5.5, 198.51.100.7"}, "198.51.100.7"},
		{"no header", proxies, "10.1.2.3:4000", nil, "10.1.2.3"},
		{"empty entries skipped", proxies, "10.1.2.3:4000", []string{"198.51.100.7, ,"}, "198.51.100.7"},
		{"garbage stops at the proxy", proxies, "10.1.2.3:4000", []string{"198.51.100.7, not-an-address"}, "10.1.2.3"},
		{"entry with a port", proxies, "10.1.2.3:4000", []string{"198.51.100.7:5555"}, "198.51.100.7"},
		{"IPv6 proxy and client", proxies, "[2001:db8::1]:443", []string{"2001:db8:ffff::9, [2600::1]:8080"}, "2600::1"},
		{"IPv4-mapped peer", proxies, "[::ffff:10.1.2.3]:4000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"peer without a port", Resolver{}, "198.51.100.7", nil, "198.51.100.7"},
		{"unparseable peer", proxies, "pipe", []string{"198.51.100.7"}, "pipe"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
			for _, v := range c.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			before := strings.Join(req.Header.Values("X-Forwarded-For"), "|")
			if got := c.resolver.Of(req); got != c.want {
				t.Errorf("Of = %q, want %q", got, c.want)
			}
			if after := strings.Join(req.Header.Values("X-Forwarded-For"), "|"); after != before {
				t.Errorf("the header changed: %q, was %q", after, before)
			}
		})
	}
}

// A header longer than maxHops trusted entries stops after maxHops: the
// walk is bounded whatever the header holds.
func TestOfBoundsTheWalk(t *testing.T) {
	proxies := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	entries := []string{"198.51.100.7"}
	for range 2 * maxHops {
		entries = append(entries, "10.0.0.1")
	}
	req := &http.Request{RemoteAddr: "10.1.2.3:4000", Header: http.Header{"X-Forwarded-For": {strings.Join(entries, ",")}}}
	if got := proxies.Of(req); got != "10.0.0.1" {
		t.Errorf("Of = %q, want the trusted address where the walk stopped", got)
	}
}

// FuzzOf: whatever the header, Of returns the peer or one of the header's
// addresses, and never a trusted proxy's unless the walk stopped there.
func FuzzOf(f *testing.F) {
	for _, s := range []string{"198.51.100.7", "1.2.3.4, 10.0.0.1", "[::1]:80,,x", "10.0.0.1,10.0.0.2,203.0.113.1"} {
		f.Add("10.1.2.3:4000", s)
	}
	proxies := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	f.Fuzz(func(t *testing.T, peer, xff string) {
		req := &http.Request{RemoteAddr: peer, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := proxies.Of(req)
		if got == peer {
			return
		}
		if a, err := parse(peer); err == nil && got == a.String() {
			return
		}
		found := false
		for _, e := range strings.Split(xff, ",") {
			if a, err := parse(strings.TrimSpace(e)); err == nil && a.String() == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("Of(%q, %q) = %q: neither the peer nor an entry", peer, xff, got)
		}
	})
}
