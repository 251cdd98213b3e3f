package console

import (
	_ "embed"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/webui"
)

//go:embed console.html
var pageSource string

var pages = webui.Pages("console", pageSource, template.FuncMap{"grants": grantsText})

// pageData fills console.html. Nothing in it is secret but CSRF, the
// page's own: the operations' outputs hold no secret (a provider's shows
// where its secret is kept, never the secret).
type pageData struct {
	Title, Body string
	// SignIn offers a sign-in link on a message page.
	SignIn bool
	// Base is the console's URL; User and CSRF are set once signed in.
	Base, User, CSRF string
	Data             any
	// Next is the link to the next page of a list; empty on the last.
	Next string
}

func (s *Server) render(q *request, status int, name string, d pageData) {
	d.Base = s.web.Base(s.realm)
	if q.sess.ID != "" && name != "message" {
		d.User, d.CSRF = q.sess.User, s.web.CSRF(q.sess)
	}
	webui.Render(q.w, status, pages, name, d)
}

// errorPage tells the operator why something stopped, never why
// internally.
func (s *Server) errorPage(q *request, status int, title, body string) {
	s.render(q, status, "message", pageData{Title: title, Body: body, SignIn: status == http.StatusUnauthorized || status == http.StatusForbidden})
}

// next is the link to the page after this one, keeping q's filters.
func next(q *request, token *string) string {
	if token == nil || *token == "" {
		return ""
	}
	v := url.Values{}
	for k, vs := range q.r.URL.Query() {
		if k != "next" && len(vs) == 1 {
			v.Set(k, vs[0])
		}
	}
	v.Set("next", *token)
	return "?" + v.Encode()
}

// field is one bounded query parameter: a longer one, or one repeated, is
// taken as absent rather than passed on.
func field(q *request, name string, limit int) string {
	vs := q.r.URL.Query()[name]
	if len(vs) != 1 || len(vs[0]) > limit {
		return ""
	}
	return strings.TrimSpace(vs[0])
}

// token is the next-page token of the request, nil for the first page.
func token(q *request) *string {
	if t := field(q, "next", 4096); t != "" {
		return &t
	}
	return nil
}

// intp is a pointer to n, for maxResults.
func intp(n int) *int { return &n }

// item is a named resource in a list.
type item struct {
	Name        string         `json:"name"`
	Vendor      string         `json:"credentialProviderVendor"`
	ProviderARN string         `json:"credentialProviderArn"`
	WorkloadARN string         `json:"workloadIdentityArn"`
	Created     behalfapi.Time `json:"createdTime"`
}

type listOutput struct {
	Workloads []item  `json:"workloadIdentities"`
	Providers []item  `json:"credentialProviders"`
	NextToken *string `json:"nextToken"`
}

// maxCount bounds the pages read to count a kind of resource for the
// overview.
const maxCount = 10

// count counts what a list operation lists, reading at most maxCount
// pages; more says there were more.
func (s *Server) count(q *request, op string, in func(*string) any, n func(raw map[string]any) int) (total int, more bool, err error) {
	var tok *string
	for range maxCount {
		var out map[string]any
		if err := s.call(q, op, in(tok), &out); err != nil {
			return 0, false, err
		}
		total += n(out)
		t, _ := out["nextToken"].(string)
		if t == "" {
			return total, false, nil
		}
		tok = &t
	}
	return total, true, nil
}

// overview counts each kind of resource.
func (s *Server) overview(q *request) {
	type row struct {
		What, Link string
		N          int
		More       bool
	}
	kinds := []struct {
		what, link, op, key string
		size                int
	}{
		{"Workload identities", "workloads", "ListWorkloadIdentities", "workloadIdentities", 20},
		{"OAuth2 credential providers", "providers", "ListOauth2CredentialProviders", "credentialProviders", 20},
		{"API key credential providers", "providers", "ListApiKeyCredentialProviders", "credentialProviders", 100},
		{"Principals", "principals", "ListPrincipals", "principals", 100},
		{"Users' connections", "connections", "ListConnections", "connections", 1000},
	}
	var rows []row
	for _, k := range kinds {
		n, more, err := s.count(q, k.op, func(t *string) any { return behalfapi.ListInput{NextToken: t, MaxResults: intp(k.size)} },
			func(out map[string]any) int { l, _ := out[k.key].([]any); return len(l) })
		if err != nil {
			s.refused(q, "Could not count "+strings.ToLower(k.what), err)
			return
		}
		rows = append(rows, row{What: k.what, Link: k.link, N: n, More: more})
	}
	figures, ok := s.figures(q)
	if !ok {
		return
	}
	s.render(q, http.StatusOK, "overview", pageData{Title: "Overview", Data: struct {
		Rows    []row
		Metrics metricsFigures
		Max     int
	}{rows, figures, maxCount}})
}
