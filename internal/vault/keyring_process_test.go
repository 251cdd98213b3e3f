package vault

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// keyringHelperEnv makes the test binary, re-executed by
// TestKeyringCreateAcrossProcesses, create keys in a shared keyring instead
// of running tests.
const keyringHelperEnv = "BEHALF_KEYRING_HELPER_PATH"

func TestMain(m *testing.M) {
	if path := os.Getenv(keyringHelperEnv); path != "" {
		os.Exit(createKeysHelper(path, os.Getenv("BEHALF_KEYRING_HELPER_COUNT")))
	}
	os.Exit(m.Run())
}

func createKeysHelper(path, count string) int {
	n, err := strconv.Atoi(count)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	kr, err := OpenLocalKeyring(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for range n {
		id, err := kr.Create()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(id)
	}
	return 0
}

// Processes sharing one keyring file must not lose each other's keys: a
// lost key leaves every secret sealed under it unreadable.
func TestKeyringCreateAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "keyring.json")
	if _, err := OpenLocalKeyring(path); err != nil {
		t.Fatal(err)
	}
	const processes, perProcess = 4, 25
	outputs := make([][]byte, processes)
	var wg sync.WaitGroup
	for i := range processes {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$") //nolint:gosec // G702: the test binary runs itself as a second process
			cmd.Env = append(os.Environ(), keyringHelperEnv+"="+path, "BEHALF_KEYRING_HELPER_COUNT="+strconv.Itoa(perProcess))
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("helper process %d: %v", i, err)
			}
			outputs[i] = out
		})
	}
	wg.Wait()
	kr, err := OpenLocalKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	created, lost := 0, 0
	for _, out := range outputs {
		for _, id := range strings.Fields(string(out)) {
			created++
			if !kr.Has(t.Context(), id) {
				lost++
			}
		}
	}
	if created != processes*perProcess || lost != 0 {
		t.Fatalf("created %d keys in %d processes, %d lost from the keyring file", created, processes, lost)
	}
}
