package server_test

import (
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// /readyz fails when the SQLite database's disk is full, on a real full
// disk: a small tmpfs (skipped where mounting is not permitted).
func TestReadinessOnAFullDisk(t *testing.T) {
	dataDir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", dataDir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dataDir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dataDir, err, out)
		}
	})
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{DataDir: dataDir})
	if code := getStatus(t, s.URL+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz on a disk with room: %d", code)
	}

	filler, err := os.Create(filepath.Join(dataDir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	if code := getStatus(t, s.URL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz on a full disk: %d, want 503", code)
	}
	if code := getStatus(t, s.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz on a full disk: %d, want 200 (the process is alive)", code)
	}
	filler.Close()
	os.Remove(filler.Name())
	if code := getStatus(t, s.URL+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz once space is freed: %d", code)
	}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}
