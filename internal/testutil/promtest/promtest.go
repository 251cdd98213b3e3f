// Package promtest scrapes a Prometheus endpoint in tests: it parses the
// exposition with Prometheus' own text parser, checks it with promtool
// when that is installed, and reads counters by name and labels.
package promtest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families is a parsed scrape, by metric family name.
type Families map[string]*dto.MetricFamily

// ScrapeHandler scrapes h in process.
func ScrapeHandler(t testing.TB, h http.Handler) Families {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	return Parse(t, rec.Body.Bytes())
}

// Scrape fetches url and parses it.
func Scrape(t testing.TB, url string) Families {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d: %s", url, resp.StatusCode, body)
	}
	return Parse(t, body)
}

// Parse parses a text exposition, failing the test if it does not parse.
func Parse(t testing.TB, body []byte) Families {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, body)
	}
	return fams
}

// Promtool runs `promtool check metrics` on body; it skips the test when
// promtool is not installed (Debian's prometheus package has it; CI
// installs it).
func Promtool(t testing.TB, body []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not on PATH (apt-get install prometheus): `promtool check metrics` not run")
	}
	cmd := exec.CommandContext( //nolint:gosec // G204: promtool as found on PATH
		context.WithoutCancel(t.Context()), path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// Value returns the value of the counter or gauge name whose labels
// include labels; 0 when there is none. It fails the test if more than one
// series matches.
func (f Families) Value(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	fam, ok := f[name]
	if !ok {
		return 0
	}
	var found []float64
	for _, m := range fam.GetMetric() {
		if matches(m, labels) {
			switch {
			case m.GetCounter() != nil:
				found = append(found, m.GetCounter().GetValue())
			case m.GetGauge() != nil:
				found = append(found, m.GetGauge().GetValue())
			default:
				t.Fatalf("%s is neither a counter nor a gauge", name)
			}
		}
	}
	switch len(found) {
	case 0:
		return 0
	case 1:
		return found[0]
	}
	t.Fatalf("%d series of %s match %v", len(found), name, labels)
	return 0
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := labels[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}
