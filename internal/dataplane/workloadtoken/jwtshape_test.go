package workloadtoken

import (
	"regexp"
	"testing"
)

// userTokenPattern is UserTokenType's pattern, anchored as the server
// applied it before isCompactJWT replaced it.
var userTokenPattern = regexp.MustCompile(`^(?:[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+)$`)

func TestIsCompactJWT(t *testing.T) {
	for _, s := range []string{
		"a.b.c", "eyJh.eyJz.sig", "A-_=.0.9", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.", "", ".", "..", "a.b.c ", "a b.c.d",
		"a.b.c\n", "a/b.c.d", "a+b.c.d", "é.b.c", "a.b.c\x00", "===.===.===",
	} {
		if got, want := isCompactJWT(s), userTokenPattern.MatchString(s); got != want {
			t.Errorf("isCompactJWT(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}

func FuzzIsCompactJWT(f *testing.F) {
	f.Add("a.b.c")
	f.Add("a..c")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isCompactJWT(s), userTokenPattern.MatchString(s); got != want {
			t.Fatalf("isCompactJWT(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}

func BenchmarkIsCompactJWT(b *testing.B) {
	token := "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWxpY2UiLCJleHAiOjE5MDAwMDAwMDB9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJl"
	for b.Loop() {
		isCompactJWT(token)
	}
}
