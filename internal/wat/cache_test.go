package wat

import (
	"crypto/sha256"
	"strings"
	"testing"
)

// digestOf is SHA-256 across its buffer's boundaries, and copies nothing
// to the heap.
func TestDigestOf(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 257, 1500} {
		token := strings.Repeat("x", n)
		if got, want := digestOf(token), sha256.Sum256([]byte(token)); got != want {
			t.Errorf("digestOf(%d bytes) = %x, want %x", n, got, want)
		}
	}
	token := strings.Repeat("eyJhbGciOiJkaXIi", 100)
	if allocs := testing.AllocsPerRun(100, func() { digestOf(token) }); allocs != 0 {
		t.Errorf("digestOf allocates %v times", allocs)
	}
}
