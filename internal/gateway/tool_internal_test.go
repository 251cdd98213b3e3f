package gateway

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// A URL a tool echoes loses the credential's query parameter however it
// is written; one that does not parse, or whose query does not, is not
// passed on as it was.
func TestWithoutParameter(t *testing.T) {
	for _, tt := range []struct {
		ref, want string
		had       bool
	}{
		{"/a/?city=Paris", "/a/?city=Paris", false},
		{"/a/?city=Paris&key=secret", "/a/?city=Paris", true},
		{"https://tool.example/a?k%65y=secret&key=again", "https://tool.example/a", true},
		{"/a?key=secret;city=Paris", "/a", true},
		{"/a?city=Paris&x=1;key=secret", "/a?city=Paris", true},
		{"http://[::1%zz]/?key=secret", "", true},
		{"/a", "/a", false},
	} {
		got, had := withoutParameter(tt.ref, "key")
		if got != tt.want || had != tt.had {
			t.Errorf("%s: %q %v, want %q %v", tt.ref, got, had, tt.want, tt.had)
		}
	}
}

// A tool receives none of the headers it must not, however the caller
// spells their names: CGI-style servers read underscores as dashes.
func TestToolHeadersUnderAnySpelling(t *testing.T) {
	in := http.Header{}
	for _, k := range []string{"X_Api_Key", "x-api-key", "X_Amz_Bedrock_AgentCore_Identity_WAT", "WORKLOAD_ACCESS_TOKEN",
		"Workloadaccesstoken", "X_Behalf_Identity_Chain", "Proxy_Authorization", "Accept", "X-City"} {
		in.Add(k, "v") // as net/http reads them, canonicalised
	}
	out := toolHeaders(in, "X-Api-Key")
	if len(out) != 3 || out.Get("Accept") == "" || out.Get("X-City") == "" || out.Get("Workload_access_token") == "" {
		t.Errorf("headers a tool receives: %v", out)
	}
}

// Only a bearer challenge with error insufficient_scope and scopes behalf
// would take steps up.
func TestInsufficientScope(t *testing.T) {
	long, many := strings.Repeat("a", 129), strings.Repeat("s ", 101)
	for _, tt := range []struct {
		header string
		want   []string
	}{
		{`Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://x.example/m"`, []string{"files:read", "files:write"}},
		{`Basic realm="x", Bearer error="insufficient_scope", scope="a"`, []string{"a"}},
		{`Bearer error="invalid_token", scope="a"`, nil},
		{`Bearer error="insufficient_scope"`, nil},
		{`Bearer error="insufficient_scope", scope="` + long + `"`, nil},
		{`Bearer error="insufficient_scope", scope="` + many + `"`, nil},
		{`Bearer error="insufficient_scope", scope="a`, nil},
		{``, nil},
	} {
		h := http.Header{}
		if tt.header != "" {
			h.Set("WWW-Authenticate", tt.header)
		}
		got, ok := insufficientScope(h)
		if ok != (tt.want != nil) || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v %v, want %v", tt.header, got, ok, tt.want)
		}
	}
}
