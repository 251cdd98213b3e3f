package portal

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"

	"github.com/behalf-dev/behalf/internal/oauthwire"
)

//go:embed portal.html
var pageSource string

var page = template.Must(template.New("portal").Parse(pageSource))

// pageData fills portal.html: the connections page, or a message (Title,
// Body). Nothing in it is secret but CSRF, which is the page's own.
type pageData struct {
	Portal, Base, CSRF string
	Title, Body        string
	Rows               []row
	SignedIn           bool
}

// render shows portal.html with oauthwire.WritePage's headers.
func (s *Server) render(w http.ResponseWriter, status int, d pageData) {
	var b bytes.Buffer
	if err := page.Execute(&b, d); err != nil {
		http.Error(w, "cannot render the page", http.StatusInternalServerError)
		return
	}
	oauthwire.WritePage(w, status, b.Bytes())
}

// errorPage tells the user why something stopped, never why internally.
func (s *Server) errorPage(w http.ResponseWriter, status int, title, body string) {
	s.render(w, status, pageData{Title: title, Body: body})
}
