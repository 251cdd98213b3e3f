package federation

import (
	"context"
	_ "embed"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/behalf-dev/behalf/internal/logging"
)

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// page answers a browser. Nothing it shows is secret: titles are fixed and
// bodies hold only provider error codes and descriptions.
func (s *Service) page(ctx context.Context, w http.ResponseWriter, status int, title, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := pageTemplate.Execute(w, struct{ Title, Body string }{title, body}); err != nil {
		s.logger().LogAttrs(ctx, slog.LevelWarn, "browser page not written", logging.Err(err))
	}
}
