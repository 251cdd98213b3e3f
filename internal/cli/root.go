// Package cli implements the behalf command. Every subcommand except serve
// talks to a running server through the official aws-sdk-go-v2 AgentCore
// clients (or, for behalf's own extensions, the same SigV4-signed JSON),
// exactly as any AWS program would. Commands take their I/O from the
// cobra command, so tests drive them in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Execute runs the behalf command line and returns the process exit code.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := NewRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		_, _ = fmt.Fprintln(stderr, "behalf: "+oneLine(err)) // nowhere left to report a failure
		return 1
	}
	return 0
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// clientFlags are the flags of every command that calls a server.
type clientFlags struct {
	endpoint        string
	region          string
	dataDir         string
	credentialsFile string
	profile         string
	accessKeyID     string
	secretAccessKey string
	output          string
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "behalf",
		Short:         "behalf: identity and credentials for AI agents, wire-compatible with AgentCore Identity",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cf := &clientFlags{}
	pf := root.PersistentFlags()
	pf.StringVar(&cf.endpoint, "endpoint", envOr("BEHALF_ENDPOINT", "http://127.0.0.1:8787"), "behalf server URL (env BEHALF_ENDPOINT)")
	pf.StringVar(&cf.region, "region", envOr("AWS_REGION", "us-east-1"), "signing region; must match the server's (env AWS_REGION)")
	pf.StringVar(&cf.dataDir, "data-dir", envOr("BEHALF_DATA_DIR", "./behalf-data"), "data directory; the CLI reads <data-dir>/admin-credentials (env BEHALF_DATA_DIR)")
	pf.StringVar(&cf.credentialsFile, "credentials-file", "", "AWS shared-credentials file to sign with (default <data-dir>/admin-credentials)")
	pf.StringVar(&cf.profile, "profile", envOr("AWS_PROFILE", "default"), "profile in the credentials file (env AWS_PROFILE)")
	pf.StringVar(&cf.accessKeyID, "access-key-id", "", "access key id to sign with (else env AWS_ACCESS_KEY_ID, else the credentials file)")
	pf.StringVar(&cf.secretAccessKey, "secret-access-key", "", "secret access key; prefer env AWS_SECRET_ACCESS_KEY, as flags are visible to other users")
	pf.StringVarP(&cf.output, "output", "o", "table", "output format: table or json")

	root.AddCommand(
		newServeCommand(),
		newGatewayCommand(cf),
		newIdentityCommand(cf),
		newProviderCommand(cf),
		newPrincipalCommand(cf),
		newVaultCommand(cf),
		newTagCommand(cf),
		newAuditCommand(cf),
		newConnectionCommand(cf),
		newOAuthConsentCommand(cf),
		newConsentPortalCommand(cf),
		newMCPCommand(cf),
		newBenchCommand(),
		newDevIDPCommand(),
		newDevCollectorCommand(),
	)
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// readSecret reads a secret given as a flag value: "-" reads standard
// input (prompting, without echo, when it is a terminal), "@path" reads a
// file, anything else is the value itself.
func readSecret(cmd *cobra.Command, flag, value string) (string, error) {
	var raw []byte
	var err error
	switch {
	case value == "-":
		raw, err = readStdinSecret(cmd, flag)
	case strings.HasPrefix(value, "@"):
		raw, err = os.ReadFile(value[1:])
	default:
		return value, nil
	}
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	s := strings.TrimRight(string(raw), "\r\n")
	if s == "" {
		return "", errors.New("--" + flag + " is empty")
	}
	return s, nil
}

// maxSecret bounds a secret read from standard input.
const maxSecret = 1 << 20

// readStdinSecret reads a secret from standard input. On a terminal it
// asks for it on standard error and turns echo off, so that a command
// waiting for input never looks hung and the secret never shows.
func readStdinSecret(cmd *cobra.Command, flag string) ([]byte, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if _, err := fmt.Fprintf(cmd.ErrOrStderr(), "%s (input hidden, then Enter): ", flag); err != nil {
			return nil, err
		}
		raw, err := term.ReadPassword(int(f.Fd()))
		// The Enter that ended the input was not echoed.
		if _, nlErr := fmt.Fprintln(cmd.ErrOrStderr()); err == nil {
			err = nlErr
		}
		if err != nil {
			return nil, err
		}
		if len(raw) > maxSecret {
			return nil, fmt.Errorf("longer than %d bytes", maxSecret)
		}
		return raw, nil
	}
	return io.ReadAll(io.LimitReader(in, maxSecret))
}
