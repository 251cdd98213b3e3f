package webui

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

//go:embed layout.html
var layout string

// Pages parses a set of pages beside the shared layout, whose
// {{template "style"}} gives every page the same look (inline style only:
// WritePage's policy allows no script and nothing loaded).
func Pages(name, source string, funcs template.FuncMap) *template.Template {
	return template.Must(template.Must(template.New(name).Funcs(funcs).Parse(layout)).Parse(source))
}

// Render shows the template t named name with data, with
// oauthwire.WritePage's headers.
func Render(w http.ResponseWriter, status int, t *template.Template, name string, data any) {
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		http.Error(w, "cannot render the page", http.StatusInternalServerError)
		return
	}
	oauthwire.WritePage(w, status, b.Bytes())
}
