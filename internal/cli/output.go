package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// table is the human rendering of a result: a list with a header, or,
// for a single object, FIELD/VALUE rows.
type table struct {
	header []string
	rows   [][]string
}

func fields(kv ...string) table {
	t := table{header: []string{"FIELD", "VALUE"}}
	for i := 0; i+1 < len(kv); i += 2 {
		t.rows = append(t.rows, []string{kv[i], kv[i+1]})
	}
	return t
}

// print writes v as JSON or t as a table, per --output.
func (cf *clientFlags) print(cmd *cobra.Command, v any, t table) error {
	out := cmd.OutOrStdout()
	switch cf.output {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "table":
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, r := range append([][]string{t.header}, t.rows...) {
			cells := make([]string, len(r))
			for i, c := range r {
				cells[i] = printable(c)
			}
			if _, err := fmt.Fprintln(tw, strings.Join(cells, "\t")); err != nil {
				return err
			}
		}
		return tw.Flush()
	}
	return fmt.Errorf("--output must be table or json, not %q", cf.output)
}

// printable escapes what a terminal would act on rather than show: control
// characters (escape sequences, newlines that fake rows, tabs that shift
// columns), and invisible format characters such as bidirectional
// overrides. Values come from callers, a runtime principal among them (a
// user id, a workload name).
func printable(s string) string {
	clean := utf8.ValidString(s)
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func when(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}
