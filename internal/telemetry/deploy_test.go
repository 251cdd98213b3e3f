package telemetry

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	dashboardFile = "../../deploy/grafana/behalf-dashboard.json"
	alertsFile    = "../../deploy/prometheus/behalf-alerts.yml"
)

// TestOperatorArtefactsUseExposedMetrics fails when a query of the Grafana
// dashboard or of the alerting rules names a metric or a label that
// behalf's /metrics does not expose: a renamed instrument or attribute
// would otherwise leave a panel empty and an alert silent.
func TestOperatorArtefactsUseExposedMetrics(t *testing.T) {
	e := exposed(t)
	// Labels Prometheus itself adds, or the exporter adds to every series.
	for _, l := range []string{"job", "instance", "otel_scope_name", "otel_scope_version"} {
		e.labels[l] = true
	}
	queries := append(dashboardQueries(t), alertQueries(t)...)
	if len(queries) < 20 {
		t.Fatalf("only %d queries found in the dashboard and the rules", len(queries))
	}
	used := map[string]bool{}
	for _, q := range queries {
		metrics, labels := promqlNames(q)
		if len(metrics) == 0 {
			t.Errorf("%q names no metric", q)
		}
		for _, m := range metrics {
			used[m] = true
			if !e.series[m] {
				t.Errorf("%q uses %s, which behalf does not expose", q, m)
			}
		}
		for _, l := range labels {
			if !e.labels[l] {
				t.Errorf("%q uses the label %s, which behalf's metrics do not have", q, l)
			}
		}
	}
	for name, family := range e.family {
		if !used[family] && !used[family+"_bucket"] && !used[family+"_count"] && !used[family+"_sum"] {
			t.Errorf("no panel or alert shows %s (%s)", name, family)
		}
	}
}

// TestDashboardQueriesParse checks the dashboard's PromQL with promtool,
// as recording rules (promtool check rules parses them). CI installs
// promtool; elsewhere the test is skipped without it.
func TestDashboardQueriesParse(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed; CI must check the dashboard's queries")
		}
		t.Skip("promtool is not installed (Debian package prometheus)")
	}
	var rules []map[string]string
	for i, q := range dashboardQueries(t) {
		rules = append(rules, map[string]string{"record": fmt.Sprintf("behalf:dashboard_query_%d", i), "expr": q})
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.CommandContext(t.Context(), promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s", err, msg)
	}
}

// grafanaVariables are the dashboard's variables, replaced by values a
// query can be parsed with.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$provider", ".*")

// labelValues is a dashboard variable's query.
var labelValues = regexp.MustCompile(`^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// dashboardQueries returns the PromQL of every panel of the dashboard,
// and of its variables as a selector of the metric and label they read.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var queries []string
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			if target.Expr == "" {
				t.Errorf("panel %q has a target without a query", p.Title)
			}
			queries = append(queries, grafanaVariables.Replace(target.Expr))
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable query %q is not label_values(metric, label)", v.Definition)
			continue
		}
		queries = append(queries, m[1]+"{"+m[2]+`!=""}`)
	}
	return queries
}

// alertQueries returns the expression of every alerting rule.
func alertQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var queries []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			queries = append(queries, r.Expr)
		}
	}
	return queries
}

var (
	promqlString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promqlMatchers = regexp.MustCompile(`\{([^}]*)\}`)
	promqlMatcher  = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	promqlRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlToken    = regexp.MustCompile(`[0-9][0-9a-zA-Z.]*|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?`)
	promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "inf", "nan"}
)

// promqlNames returns the metric names and the label names a PromQL
// expression uses. It is a lexer, not a parser: promtool checks the
// syntax.
func promqlNames(expr string) (metrics, labels []string) {
	expr = promqlString.ReplaceAllString(expr, `""`)
	for _, m := range promqlMatchers.FindAllStringSubmatch(expr, -1) {
		for matcher := range strings.SplitSeq(m[1], ",") {
			if l := promqlMatcher.FindStringSubmatch(matcher); l != nil {
				labels = append(labels, l[1])
			}
		}
	}
	expr = promqlMatchers.ReplaceAllString(expr, " ")
	for _, m := range promqlGrouping.FindAllStringSubmatch(expr, -1) {
		for l := range strings.SplitSeq(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
	}
	expr = promqlGrouping.ReplaceAllString(expr, " ")
	expr = promqlRange.ReplaceAllString(expr, " ")
	for _, tok := range promqlToken.FindAllStringSubmatch(expr, -1) {
		name, call := tok[1], tok[2] != ""
		if name == "" || call || slices.Contains(promqlKeywords, name) {
			continue // a number, a function or an operator
		}
		metrics = append(metrics, name)
	}
	return metrics, labels
}

func TestPromQLNames(t *testing.T) {
	metrics, labels := promqlNames(`sum by (le, behalf_provider) (rate(behalf_x_bucket{behalf_outcome=~"a|b", oauth_error!="x,y"}[5m])) / on(job) group_left() sum(rate(behalf_y_total[1h] offset 5m)) > 0.5 and up2 == bool 3e2`)
	if want := []string{"behalf_x_bucket", "behalf_y_total", "up2"}; !slices.Equal(metrics, want) {
		t.Errorf("metrics %v, want %v", metrics, want)
	}
	if want := []string{"behalf_outcome", "oauth_error", "le", "behalf_provider", "job"}; !slices.Equal(labels, want) {
		t.Errorf("labels %v, want %v", labels, want)
	}
}
