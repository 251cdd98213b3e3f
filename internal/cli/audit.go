package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/behalfapi"
)

// parseWhen reads a time as RFC 3339 or as a duration before now ("1h").
func parseWhen(flag, s string) (float64, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return float64(t.UnixMicro()) / 1e6, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return float64(time.Now().Add(-d).UnixMicro()) / 1e6, nil
	}
	return 0, fmt.Errorf("--%s must be an RFC 3339 time (2026-11-22T10:00:00Z) or a duration before now (90m)", flag)
}

func newAuditCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read and verify the tamper-evident audit trail"}

	var workload, user, provider, operation, since, until string
	var limit int
	var oldestFirst bool
	ls := &cobra.Command{
		Use:   "list",
		Short: "List audit records, newest first",
		Example: `  behalf audit list --workload my-agent --since 1h
  behalf audit list --provider github --operation GetResourceOauth2Token -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := map[string]any{"newestFirst": !oldestFirst}
			for k, v := range map[string]string{"workload": workload, "user": user, "provider": provider, "operation": operation} {
				if v != "" {
					in[k] = v
				}
			}
			for flag, v := range map[string]string{"since": since, "until": until} {
				if v != "" {
					t, err := parseWhen(flag, v)
					if err != nil {
						return err
					}
					in[flag] = t
				}
			}
			records := []behalfapi.AuditRecord{}
			t := table{header: []string{"SEQ", "TIME", "PRINCIPAL", "OPERATION", "WORKLOAD", "USER", "PROVIDER", "OUTCOME"}}
			var next *string
			for len(records) < limit {
				in["maxResults"] = min(1000, limit-len(records))
				if next != nil {
					in["nextToken"] = *next
				}
				var page behalfapi.ListAuditRecordsOutput
				if err := cf.call(cmd.Context(), "ListAuditRecords", in, &page); err != nil {
					return err
				}
				for _, r := range page.Records {
					records = append(records, r)
					outcome := r.Outcome
					if r.ErrorType != "" {
						outcome += " (" + r.ErrorType + ")"
					}
					what := r.Provider
					if what == "" {
						what = r.Resource
					}
					t.rows = append(t.rows, []string{strconv.FormatInt(r.Seq, 10), r.Time.String(), r.Principal, r.Operation,
						dash(workloadVia(r)), dash(r.User), dash(what), outcome})
				}
				if next = page.NextToken; next == nil {
					break
				}
			}
			return cf.print(cmd, records, t)
		},
	}
	fl := ls.Flags()
	fl.StringVar(&workload, "workload", "", "only records of this workload identity")
	fl.StringVar(&user, "user", "", "only records of this user key (jwt:<issuer>#<subject> or id:<user id>)")
	fl.StringVar(&provider, "provider", "", "only records of this credential provider")
	fl.StringVar(&operation, "operation", "", "only records of this operation, e.g. GetResourceApiKey")
	fl.StringVar(&since, "since", "", "only records at or after this time (RFC 3339, or a duration before now such as 24h)")
	fl.StringVar(&until, "until", "", "only records before this time")
	fl.IntVar(&limit, "limit", 100, "at most this many records")
	fl.BoolVar(&oldestFirst, "oldest-first", false, "list the oldest records first")

	var full bool
	var anchor string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit chain: exits non-zero if a record was edited, removed or added out of band",
		Long: `Check the audit chain. By default only the records appended since the last
verification that passed are read; --full reads the whole log. Long logs are
verified in several calls to the server, each continuing where the last stopped.

--anchor SEQ:HASH also checks a head the server published earlier (its
"audit chain head" log line, or the audit.anchor OpenTelemetry log record):
the record at SEQ must still be there with that hash. Records deleted or
rewritten after the anchor are found this way even when whoever did it also
moved the head back.`,
		Example: `  behalf audit verify --full
  behalf audit verify --anchor 1042:5f0c…e1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := behalfapi.VerifyAuditLogInput{Incremental: !full}
			if anchor != "" {
				a, err := parseAnchor(anchor)
				if err != nil {
					return err
				}
				in.Anchor = &a
			}
			return verifyAudit(cmd, cf, in)
		},
	}
	verify.Flags().BoolVar(&full, "full", false, "verify the whole log, not only what was appended since the last verification")
	verify.Flags().StringVar(&anchor, "anchor", "", "a published head, SEQ:HASH, whose record must still be in the log unchanged")
	cmd.AddCommand(ls, verify)
	return cmd
}

// workloadVia names a record's workload and, for a call that came through
// an identity chain, the workloads before it: "agent-c (via agent-a >
// agent-b)".
func workloadVia(r behalfapi.AuditRecord) string {
	if len(r.Actors) == 0 {
		return r.Workload
	}
	return r.Workload + " (via " + strings.Join(r.Actors, " > ") + ")"
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// parseAnchor reads SEQ:HASH, as the server publishes it.
func parseAnchor(s string) (behalfapi.AuditAnchor, error) {
	seq, hash, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 1 || hash == "" {
		return behalfapi.AuditAnchor{}, fmt.Errorf("--anchor must be SEQ:HASH as the server publishes it, e.g. 1042:5f0c…, not %q", s)
	}
	return behalfapi.AuditAnchor{Seq: n, Hash: strings.ToLower(hash)}, nil
}

// verifyAudit runs VerifyAuditLog until the server says it is done, and
// prints the sum of its reports.
func verifyAudit(cmd *cobra.Command, cf *clientFlags, in behalfapi.VerifyAuditLogInput) error {
	total := behalfapi.VerifyAuditLogOutput{OK: true, Problems: []behalfapi.AuditProblem{}}
	for first := true; ; first = false {
		var out behalfapi.VerifyAuditLogOutput
		if err := cf.call(cmd.Context(), "VerifyAuditLog", in, &out); err != nil {
			return err
		}
		if first {
			total.From = out.From
		}
		total.OK = total.OK && out.OK
		total.Records += out.Records
		total.Problems = append(total.Problems, out.Problems...)
		total.Omitted += out.Omitted
		total.HeadSeq, total.HeadHash = out.HeadSeq, out.HeadHash
		if in.NextToken = out.NextToken; in.NextToken == nil {
			break
		}
	}
	t := fields("records", strconv.FormatInt(total.Records, 10), "from", fmt.Sprintf("after seq %d", total.From),
		"head", fmt.Sprintf("seq %d, hash %s", total.HeadSeq, total.HeadHash))
	for _, p := range total.Problems {
		t.rows = append(t.rows, []string{"problem", fmt.Sprintf("seq %d: %s", p.Seq, p.Reason)})
	}
	if err := cf.print(cmd, total, t); err != nil {
		return err
	}
	if !total.OK {
		return fmt.Errorf("the audit log failed verification: %d problem(s)", int64(len(total.Problems))+total.Omitted)
	}
	return nil
}
