package server

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/trace"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// Event names of the audit trail's OpenTelemetry log records.
const (
	eventAuditRecord = "audit.record"
	eventAuditAnchor = "audit.anchor"
)

// auditExport sends each committed audit record to the exporter as an
// OpenTelemetry log record, and appends it to a JSON Lines file
// (docs/audit.md). The file is written but not synced: a record lost in a
// crash is still in the database, whose chain is the trail of record.
type auditExport struct {
	logger otellog.Logger // nil: no OTLP export
	log    *slog.Logger

	mu   sync.Mutex // orders lines in file
	file *os.File   // nil: no file
}

// newAuditExport returns the export cfg asks for, nil for none.
func newAuditExport(tel *telemetry.Telemetry, file string, log *slog.Logger) (*auditExport, error) {
	e := &auditExport{log: log}
	if tel.AuditOTLP {
		e.logger = tel.Loggers.Logger(telemetry.ScopeName + "/audit")
	}
	if file != "" {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600) //nolint:gosec // G304: the operator's configured path
		if err != nil {
			return nil, fmt.Errorf("audit export file: %w", err)
		}
		e.file = f
	}
	if e.logger == nil && e.file == nil {
		return nil, nil
	}
	return e, nil
}

// auditLine is one record in the JSON Lines file: the record as
// ListAuditRecords shows it, with its time as RFC 3339 text and the trace
// of the call.
type auditLine struct {
	behalfapi.AuditRecord
	Time    string `json:"time"` // shadows the record's epoch seconds
	TraceID string `json:"traceId,omitempty"`
}

// hook is the export as audit.Options.Export; nil when there is none.
func (e *auditExport) hook() func([]storage.AuditRecord) {
	if e == nil {
		return nil
	}
	return e.export
}

// export is audit.Options.Export.
func (e *auditExport) export(recs []storage.AuditRecord) {
	if e.logger != nil {
		for i := range recs {
			e.emit(&recs[i])
		}
	}
	if e.file != nil {
		e.write(recs)
	}
}

// emit sends r as a log record in the trace of the call that produced it.
func (e *auditExport) emit(r *storage.AuditRecord) {
	var rec otellog.Record
	rec.SetEventName(eventAuditRecord)
	rec.SetTimestamp(r.Time)
	rec.SetSeverity(otellog.SeverityInfo)
	rec.SetBody(attribute.StringValue(r.Operation + " " + r.Outcome))
	rec.AddAttributes(
		attribute.Int64("behalf.audit.seq", r.Seq),
		attribute.String("behalf.audit.hash", hex.EncodeToString(r.Hash)),
		attribute.String("behalf.request_id", r.RequestID),
		telemetry.Operation.String(r.Operation),
		telemetry.Outcome.String(r.Outcome),
		telemetry.ErrorType.String(r.ErrorType),
		telemetry.Principal.String(r.Principal),
		telemetry.Workload.String(r.Workload),
		telemetry.Provider.String(r.Provider),
		telemetry.Flow.String(r.Flow),
		attribute.StringSlice("behalf.scopes", r.Scopes),
		attribute.String("behalf.resource", r.Resource),
		// The audit trail is where users are named; its export is too.
		attribute.String("behalf.audit.user", r.User),
	)
	if len(r.Actors) > 0 {
		rec.AddAttributes(telemetry.Actors.StringSlice(r.Actors))
	}
	e.logger.Emit(trace.ContextWithSpanContext(context.Background(), r.Trace), rec)
}

func (e *auditExport) write(recs []storage.AuditRecord) {
	var buf []byte
	for _, r := range recs {
		line := auditLine{AuditRecord: behalfapi.NewAuditRecord(r), Time: r.Time.UTC().Format("2006-01-02T15:04:05.000000Z")}
		if r.Trace.HasTraceID() {
			line.TraceID = r.Trace.TraceID().String()
		}
		b, err := json.Marshal(line)
		if err != nil {
			continue // cannot happen: every field is a string, a number or strings
		}
		buf = append(append(buf, b...), '\n')
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.file.Write(buf); err != nil {
		e.log.LogAttrs(context.Background(), slog.LevelError, "audit export file not written", logging.Err(err))
	}
}

// anchor publishes the chain's head (docs/audit.md, "Anchors").
func (e *auditExport) anchor(head storage.AuditHead) {
	if e == nil || e.logger == nil {
		return
	}
	var rec otellog.Record
	rec.SetEventName(eventAuditAnchor)
	rec.SetSeverity(otellog.SeverityInfo)
	rec.SetBody(attribute.StringValue(anchorString(head)))
	rec.AddAttributes(attribute.Int64("behalf.audit.seq", head.Seq), attribute.String("behalf.audit.hash", hex.EncodeToString(head.Hash)))
	e.logger.Emit(context.Background(), rec)
}

// anchorString is head as `behalf audit verify --anchor` takes it.
func anchorString(head storage.AuditHead) string {
	return fmt.Sprintf("%d:%s", head.Seq, hex.EncodeToString(head.Hash))
}

func (e *auditExport) close() error {
	if e == nil || e.file == nil {
		return nil
	}
	return e.file.Close()
}
