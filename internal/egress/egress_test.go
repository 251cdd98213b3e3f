package egress_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/egress"
)

func TestPolicyCheck(t *testing.T) {
	strict := egress.Policy{}
	open := egress.Policy{AllowLoopback: true, AllowPrivate: true}
	listed := egress.Policy{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, AllowHosts: []string{"idp.internal"}}
	tests := []struct {
		addr                 string
		host                 string
		strict, open, listed bool // allowed under each policy
	}{
		{"93.184.215.14", "", true, true, true},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", "", true, true, true},
		{"127.0.0.1", "", false, true, false},
		{"127.8.9.10", "", false, true, false},
		{"::1", "", false, true, false},
		{"::ffff:127.0.0.1", "", false, true, false},
		{"10.0.0.1", "", false, true, false},
		{"10.1.2.3", "", false, true, true},
		{"172.16.0.1", "", false, true, false},
		{"172.31.255.255", "", false, true, false},
		{"172.32.0.1", "", true, true, true},
		{"192.168.1.1", "", false, true, false},
		{"::ffff:192.168.1.1", "", false, true, false},
		{"fd12:3456::1", "", false, true, false},
		{"100.64.0.1", "", false, true, false},
		{"10.9.9.9", "idp.internal", false, true, true},
		{"10.9.9.9", "IDP.Internal", false, true, true},
		// Always refused, whatever the policy.
		{"169.254.169.254", "", false, false, false},
		{"169.254.169.254", "idp.internal", false, false, false},
		{"::ffff:169.254.169.254", "", false, false, false},
		{"64:ff9b::a9fe:a9fe", "", false, false, false}, // NAT64 of 169.254.169.254
		{"64:ff9b::7f00:1", "", false, true, false},     // NAT64 of 127.0.0.1
		{"fd00:ec2::254", "", false, false, false},
		{"100.100.100.200", "", false, false, false},
		{"192.0.0.192", "", false, false, false},
		{"fe80::1", "", false, false, false},
		{"fe80::1%eth0", "", false, false, false},
		{"0.0.0.0", "", false, false, false},
		{"0.1.2.3", "", false, false, false},
		{"::", "", false, false, false},
		{"224.0.0.1", "", false, false, false},
		{"239.255.255.250", "", false, false, false},
		{"255.255.255.255", "", false, false, false},
		{"ff02::1", "", false, false, false},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.addr)
		for _, c := range []struct {
			name string
			p    egress.Policy
			want bool
		}{{"strict", strict, tt.strict}, {"open", open, tt.open}, {"listed", listed, tt.listed}} {
			if err := c.p.Check(tt.host, ip); (err == nil) != c.want {
				t.Errorf("%s policy, %s (host %q): err = %v, want allowed = %v", c.name, tt.addr, tt.host, err, c.want)
			}
		}
	}
	if err := strict.Check("", netip.Addr{}); err == nil {
		t.Error("the zero address is allowed")
	}
}

// fakeDNS answers every A query with ip and every other query with no
// records (RFC 1035 §4.1), so a host name can resolve to any address.
func fakeDNS(t *testing.T, ip netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			end := 12
			for end < len(q) && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5 // the root label, QTYPE and QCLASS
			if end > len(q) {
				continue
			}
			qtype := binary.BigEndian.Uint16(q[end-4:])
			resp := append([]byte{}, q[:end]...)
			binary.BigEndian.PutUint16(resp[2:], 0x8180) // response, recursion available, NOERROR
			binary.BigEndian.PutUint16(resp[6:], 0)      // ANCOUNT
			binary.BigEndian.PutUint16(resp[8:], 0)
			binary.BigEndian.PutUint16(resp[10:], 0)
			if qtype == 1 {
				binary.BigEndian.PutUint16(resp[6:], 1)
				a := ip.As4()
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
				resp = append(resp, a[:]...)
			}
			pc.WriteTo(resp, from)
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// A name that resolves to a refused address is refused at connection
// time, even when a CIDR-free policy would let the name itself through.
func TestClientChecksResolvedAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "reached") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	metadata := egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true, AllowPrivate: true}, Resolver: fakeDNS(t, netip.MustParseAddr("169.254.169.254")), Timeout: 2 * time.Second})
	if res, err := metadata.Get("http://metadata.example.test:" + port + "/latest/meta-data/"); err == nil {
		res.Body.Close()
		t.Fatal("a name resolving to 169.254.169.254 was dialled")
	}

	loop := fakeDNS(t, netip.MustParseAddr("127.0.0.1"))
	refused := egress.NewClient(egress.Options{Resolver: loop})
	res, err := refused.Get("http://rebind.example.test:" + port + "/")
	if err == nil {
		res.Body.Close()
	}
	var ue *egress.UnreachableError
	if !errors.As(err, &ue) || ue.Host != "rebind.example.test:"+port {
		t.Fatalf("a name resolving to loopback: err = %v, want an UnreachableError", err)
	}

	allowed := egress.NewClient(egress.Options{Resolver: loop, Policy: egress.Policy{AllowHosts: []string{"rebind.example.test"}}})
	res, err = allowed.Get("http://rebind.example.test:" + port + "/")
	if err != nil {
		t.Fatalf("an allow-listed host: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "reached" {
		t.Errorf("body = %q", body)
	}
}

// The error text is the same whatever the cause, so callers cannot tell
// an open port from a closed one, a refused address, or a silent server.
func TestClientErrorsDoNotTellWhy(t *testing.T) {
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	go func() {
		for {
			c, err := open.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accepts and never answers
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	text := func(p egress.Policy, url string) string {
		t.Helper()
		c := egress.NewClient(egress.Options{Policy: p, Timeout: 300 * time.Millisecond})
		res, err := c.Get(url)
		if err == nil {
			res.Body.Close()
			t.Fatalf("GET %s succeeded", url)
		}
		var ue *egress.UnreachableError
		if !errors.As(err, &ue) {
			t.Fatalf("GET %s: %v is not an UnreachableError", url, err)
		}
		return ue.Error()
	}
	// Same host:port text, different causes.
	openAddr := open.Addr().String()
	byPolicy := text(egress.Policy{}, "https://"+openAddr+"/")
	byTimeout := text(egress.Policy{AllowLoopback: true}, "https://"+openAddr+"/")
	if byPolicy != byTimeout || byPolicy != "could not reach "+openAddr {
		t.Errorf("refused by policy: %q; timed out: %q", byPolicy, byTimeout)
	}
	byPolicy = text(egress.Policy{}, "http://"+closedAddr+"/")
	byConnRefused := text(egress.Policy{AllowLoopback: true}, "http://"+closedAddr+"/")
	if byPolicy != byConnRefused {
		t.Errorf("refused by policy: %q; connection refused: %q", byPolicy, byConnRefused)
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	target := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/target" {
			target = true
		}
		http.Redirect(w, r, "/target", http.StatusFound)
	}))
	defer srv.Close()
	res, err := egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}}).Get(srv.URL + "/start")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || target {
		t.Errorf("status %d, redirect followed: %v", res.StatusCode, target)
	}
}

func TestClientIgnoresProxyEnvironment(t *testing.T) {
	proxied := false
	proxy := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { proxied = true }))
	defer proxy.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	res, err := egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true}}).Get(strings.Replace(srv.URL, "127.0.0.1", "localhost", 1))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if proxied {
		t.Error("the call went through HTTP_PROXY")
	}
}
