package telemetry

import (
	"context"
	"log/slog"
	"slices"

	"go.opentelemetry.io/contrib/bridges/otelslog"

	"github.com/behalf-dev/behalf/internal/logging"
)

// Logger is log with every line logged with a call's context carrying
// what attrs finds there (its request id and, when traced, its trace and
// span ids); when logs are exported, each line is also sent over OTLP
// with the trace and span of its context.
func (t *Telemetry) Logger(log *slog.Logger, attrs func(context.Context) []slog.Attr) *slog.Logger {
	h := log.Handler()
	written := logging.ContextHandler{Inner: h, Attrs: attrs}
	if !t.LogsOTLP {
		return slog.New(written)
	}
	// An OTLP log record carries its trace and span natively: the
	// exported line gets the other attributes only.
	otlp := logging.ContextHandler{
		Inner: otelslog.NewHandler(ScopeName, otelslog.WithLoggerProvider(t.Loggers)),
		Attrs: func(ctx context.Context) []slog.Attr {
			return slices.DeleteFunc(attrs(ctx), func(a slog.Attr) bool {
				return a.Key == logging.KeyTraceID || a.Key == logging.KeySpanID
			})
		},
	}
	return slog.New(slog.NewMultiHandler(written, sameLevel{Handler: otlp, as: h}))
}

// sameLevel exports the lines its sibling writes, and no others: the log
// level configured for the log holds for its export too.
type sameLevel struct {
	slog.Handler
	as slog.Handler
}

func (h sameLevel) Enabled(ctx context.Context, l slog.Level) bool { return h.as.Enabled(ctx, l) }

func (h sameLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return sameLevel{Handler: h.Handler.WithAttrs(attrs), as: h.as.WithAttrs(attrs)}
}

func (h sameLevel) WithGroup(name string) slog.Handler {
	return sameLevel{Handler: h.Handler.WithGroup(name), as: h.as.WithGroup(name)}
}
