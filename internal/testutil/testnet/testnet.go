// Package testnet gives tests loopback addresses to listen on.
package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// FreeAddr returns a loopback address whose port no one listens on, for a
// server a test must name before it listens (a configuration file, a
// redirect URI). The port is drawn below Linux's ephemeral range
// (net.ipv4.ip_local_port_range, 32768-60999 by default), where
// a port taken from :0 would be: there, the kernel can hand the same port
// to any outgoing connection before the server binds it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 200 {
		port := 20000 + rand.IntN(12000) //nolint:gosec // G404: a port to try, not a secret
		ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken: draw again
		}
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		return addr
	}
	t.Fatal("testnet: no free port on 127.0.0.1 between 20000 and 32000")
	return ""
}
