package testnet_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/behalf-dev/behalf/internal/testutil/testnet"
)

func TestFreeAddrCanBeListenedOn(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		addr := testnet.FreeAddr(t)
		_, port, err := net.SplitHostPort(addr)
		if n, _ := strconv.Atoi(port); err != nil || n < 20000 || n >= 32768 {
			t.Fatalf("%s: not a port below the ephemeral range", addr)
		}
		ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", addr)
		if err != nil {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		_ = ln.Close()
		seen[addr] = true
	}
	if len(seen) < 15 {
		t.Errorf("%d distinct addresses of 20", len(seen))
	}
}
