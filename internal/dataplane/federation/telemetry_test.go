package federation

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
	"github.com/behalf-dev/behalf/internal/telemetry"
	"github.com/behalf-dev/behalf/internal/testutil/metrictest"
	"github.com/behalf-dev/behalf/internal/testutil/otlptest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

// A refresh shows, under the caller's span, a lease span (with its
// events) and, for the lease holder, a refresh span, each over its storage
// transactions and vault opens; each caller counts one refresh result.
// The caller's span stands in for the server span of an API call.
func TestRefreshSpansAndMetrics(t *testing.T) {
	ctx := t.Context()
	clock := testclock.New(time.Now())
	st, v, k := freshConnection(t, sqlstore.Now(clock.Now))
	rcv := otlptest.New(t)
	tel, err := telemetry.New(ctx, telemetry.Config{Traces: true, SampleRatio: 1, OTLP: telemetry.OTLPConfig{Endpoint: rcv.URL}}, telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.WithoutCancel(ctx)) })
	metrics := metrictest.New(t)
	v.Metrics = metrics.Metrics
	s := New(Deps{Store: st, Vault: v, Now: clock.Now, Metrics: metrics.Metrics}, Options{})
	tracer := tel.Tracers.Tracer("test")

	// The lease is free: this caller holds it and finds the token another
	// refresh left fresh.
	heldCtx, held := tracer.Start(ctx, "held")
	if ts, err := s.refresh(heldCtx, k, access.OAuth2Provider{}); err != nil || ts.AccessToken != "fresh-access-token" {
		t.Fatalf("refresh = %+v, %v", ts, err)
	}
	held.End()

	// Another replica holds the lease: this caller waits and settles for
	// the connection's fresh token.
	if _, err := st.AcquireRefreshLease(ctx, k, "replica-2", clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	waitCtx, waiter := tracer.Start(ctx, "waiter")
	if ts, err := s.refresh(waitCtx, k, access.OAuth2Provider{}); err != nil || ts.AccessToken != "fresh-access-token" {
		t.Fatalf("refresh under another's lease = %+v, %v", ts, err)
	}
	waiter.End()

	if err := tel.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	spans := rcv.Spans()
	heldID, waiterID := held.SpanContext().SpanID(), waiter.SpanContext().SpanID()
	heldLease := childNamed(t, spans, heldID[:], "federation.refresh_lease")
	refresh := childNamed(t, spans, heldID[:], "federation.refresh")
	waitLease := childNamed(t, spans, waiterID[:], "federation.refresh_lease")
	if got := eventNames(heldLease); !slices.Equal(got, []string{eventLeaseAcquired}) {
		t.Errorf("held lease events %v", got)
	}
	if got := eventNames(waitLease); !slices.Equal(got, []string{eventLeaseWaited}) {
		t.Errorf("waited lease events %v", got)
	}
	if tx := childNamed(t, spans, heldLease.SpanId, "storage.tx"); otlptest.Attr(tx, "db.system.name") != "sqlite" {
		t.Errorf("lease transaction attributes %v", tx.Attributes)
	}
	childNamed(t, spans, refresh.SpanId, "storage.tx") // the lease released
	childNamed(t, spans, refresh.SpanId, "vault.open")
	for _, sp := range spans {
		if sp.Name == "federation.refresh" && bytes.Equal(sp.ParentSpanId, waiterID[:]) {
			t.Error("a caller that did not hold the lease has a refresh span")
		}
	}

	want := map[string]int64{telemetry.RefreshShared: 1, telemetry.RefreshLeaseWaited: 1}
	if got := metrics.Counts(t, "behalf.token.refreshes", telemetry.Result); !mapsEqual(got, want) {
		t.Errorf("refreshes %v, want %v", got, want)
	}
	if got := metrics.Counts(t, "behalf.vault.operations", telemetry.VaultOp); got[telemetry.VaultOpen] != 2 {
		t.Errorf("vault operations %v, want 2 opens", got)
	}
}

// childNamed returns the one span named name whose parent is parent.
func childNamed(t *testing.T, spans []*tracepb.Span, parent []byte, name string) *tracepb.Span {
	t.Helper()
	var found []*tracepb.Span
	for _, sp := range spans {
		if sp.Name == name && bytes.Equal(sp.ParentSpanId, parent) {
			found = append(found, sp)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans %s under %x, want 1", len(found), name, parent)
	}
	return found[0]
}

func eventNames(sp *tracepb.Span) []string {
	var names []string
	for _, e := range sp.Events {
		names = append(names, e.Name)
	}
	return names
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
