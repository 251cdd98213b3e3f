package telemetry

import (
	"os"
	"regexp"
	"testing"
)

// metricRow is a row of the metrics table in docs/observability.md: the
// OpenTelemetry name, then the Prometheus name.
var metricRow = regexp.MustCompile("(?m)^\\| `([a-z0-9_.]+)` \\| `([a-z0-9_]+)` \\|")

// TestEveryMetricIsDocumented fails when an instrument is missing from
// the documentation's table, or documented under another Prometheus name
// than /metrics exposes, or documented but gone.
func TestEveryMetricIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for _, m := range metricRow.FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = m[2]
	}
	family := exposed(t).family
	for _, md := range instruments(t) {
		prom, ok := documented[md.Name]
		switch {
		case !ok:
			t.Errorf("%s (%s) is not in docs/observability.md's metrics table", md.Name, md.Description)
		case prom != family[md.Name]:
			t.Errorf("docs/observability.md: %s is exposed to Prometheus as %s, not %s", md.Name, family[md.Name], prom)
		}
		delete(documented, md.Name)
	}
	for name := range documented {
		t.Errorf("docs/observability.md documents %s, which behalf does not emit", name)
	}
}
