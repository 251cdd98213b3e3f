package federation

import (
	"bytes"
	"context"
	_ "embed"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/oauthwire"
)

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// page answers a browser (oauthwire.WritePage's headers). Nothing it
// shows is secret: titles are fixed and bodies hold only provider error
// codes and descriptions.
func (s *Service) page(ctx context.Context, w http.ResponseWriter, status int, title, body string) {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, struct{ Title, Body string }{title, body}); err != nil {
		s.logger().LogAttrs(ctx, slog.LevelWarn, "browser page not rendered", logging.Err(err))
		http.Error(w, "cannot render the page", http.StatusInternalServerError)
		return
	}
	oauthwire.WritePage(w, status, b.Bytes())
}
