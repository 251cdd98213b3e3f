package gateway

import "testing"

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
