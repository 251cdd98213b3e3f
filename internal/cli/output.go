package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

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
			if _, err := fmt.Fprintln(tw, strings.Join(r, "\t")); err != nil {
				return err
			}
		}
		return tw.Flush()
	}
	return fmt.Errorf("--output must be table or json, not %q", cf.output)
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
