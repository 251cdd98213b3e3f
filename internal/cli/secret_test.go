package cli

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// openPTY opens a real pseudo-terminal pair: the controller side, where a
// person's keystrokes arrive, and the terminal the command reads.
func openPTY(t *testing.T) (controller, tty *os.File) {
	t.Helper()
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { controller.Close() })
	fd := int(controller.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return controller, tty
}

func TestReadSecretPromptsOnATerminal(t *testing.T) {
	controller, tty := openPTY(t)
	var stderr bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetIn(tty)
	cmd.SetErr(&stderr)
	go controller.Write([]byte("s3cret-value\r"))

	got, err := readSecret(cmd, "client-secret", "-")
	if err != nil {
		t.Fatal(err)
	}
	if got != "s3cret-value" {
		t.Fatalf("secret = %q", got)
	}
	if !strings.Contains(stderr.String(), "client-secret (input hidden") {
		t.Fatalf("no prompt on standard error: %q", stderr.String())
	}
	if strings.Contains(stderr.String(), "s3cret") {
		t.Fatal("the secret was printed")
	}
}

func TestReadSecretFromAPipeDoesNotPrompt(t *testing.T) {
	var stderr bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetIn(strings.NewReader("from-a-pipe\n"))
	cmd.SetErr(&stderr)
	got, err := readSecret(cmd, "api-key", "-")
	if err != nil || got != "from-a-pipe" {
		t.Fatalf("readSecret = %q, %v", got, err)
	}
	if stderr.Len() != 0 {
		t.Fatalf("prompted on a pipe: %q", stderr.String())
	}
}
