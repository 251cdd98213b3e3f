package portal

import (
	_ "embed"
	"net/http"

	"github.com/behalf-dev/behalf/internal/webui"
)

//go:embed portal.html
var pageSource string

var page = webui.Pages("portal", pageSource, nil)

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
	webui.Render(w, status, page, "portal", d)
}

// errorPage tells the user why something stopped, never why internally.
func (s *Server) errorPage(w http.ResponseWriter, status int, title, body string) {
	s.render(w, status, pageData{Title: title, Body: body})
}
