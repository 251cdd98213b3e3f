package sdk

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	for _, c := range []struct {
		values []string
		want   string // scheme{name=value,…} per challenge, or "error"
	}{
		{[]string{`Bearer error="insufficient_scope", scope="a b", resource_metadata="https://x/m"`}, `Bearer{error=insufficient_scope,resource_metadata=https://x/m,scope=a b}`},
		{[]string{`Basic realm="a, b=c", Bearer scope=s, Negotiate abc==`}, `Basic{realm=a, b=c} Bearer{scope=s} Negotiate{}`},
		{[]string{`Negotiate`, `bearer  realm = "q \"x\" \\" ,, error=e,`}, `Negotiate{} bearer{error=e,realm=q "x" \}`},
		{[]string{`Newauth, Bearer a=b`}, `Newauth{} Bearer{a=b}`},
		{[]string{``, `, ,`}, ``},
		{[]string{`Bearer a=b, a=c`}, `error`},
		{[]string{`Bearer A=b, a=c`}, `error`},
		{[]string{`Bearer scope="unterminated`}, `error`},
		{[]string{`Bearer scope="bad \` + "\x01" + `"`}, `error`},
		{[]string{`Bearer scope="` + "\x7f" + `"`}, `error`},
		{[]string{`Bearer a=b c`}, `error`},
		{[]string{`Bearer=x`}, `error`},
		{[]string{`Bearer a=`}, `Bearer{}`}, // a token68
		{[]string{`Bearer a=b, c=`}, `error`},
		{[]string{`"Bearer"`}, `error`},
		{[]string{`Bearer realm=x`, strings.Repeat("a", maxChallengeBytes)}, `error`},
	} {
		cs, err := parseChallenges(c.values)
		got := "error"
		if err == nil {
			var parts []string
			for _, ch := range cs {
				var ps []string
				for _, k := range slices.Sorted(mapKeys(ch.params)) {
					ps = append(ps, k+"="+ch.params[k])
				}
				parts = append(parts, ch.scheme+"{"+strings.Join(ps, ",")+"}")
			}
			got = strings.Join(parts, " ")
		}
		if got != c.want {
			t.Errorf("%q: %s, want %s", c.values, got, c.want)
		}
	}
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Only a Bearer challenge with error insufficient_scope and scopes
// GetResourceOauth2Token takes is a step-up.
func TestInsufficientScope(t *testing.T) {
	many := strings.TrimSpace(strings.Repeat("s ", maxScopes+1))
	for value, want := range map[string][]string{
		`Bearer error="insufficient_scope", scope="files:read files:write"`:                        {"files:read", "files:write"},
		`Basic realm="x", Bearer error=insufficient_scope, scope=a`:                                {"a"},
		`Bearer error="invalid_token", scope="a"`:                                                  nil,
		`Bearer error="insufficient_scope"`:                                                        nil,
		`Bearer error="insufficient_scope", scope="  "`:                                            nil,
		`DPoP error="insufficient_scope", scope="a"`:                                               nil,
		`Bearer error="insufficient_scope", scope="` + many + `"`:                                  nil,
		`Bearer error="insufficient_scope", scope="` + strings.Repeat("x", maxScopeLength+1) + `"`: nil,
		`Bearer error="insufficient_scope", scope="a`:                                              nil,
	} {
		h := http.Header{"Www-Authenticate": {value}}
		got, ok := insufficientScope(h)
		if !slices.Equal(got, want) || ok != (want != nil) {
			t.Errorf("%.60q: %q %v, want %q", value, got, ok, want)
		}
	}
}

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{
		`Bearer error="insufficient_scope", scope="a b", resource_metadata="https://x/m"`,
		`Basic realm="a, b", Bearer scope="s", Negotiate abc==`,
		"Bearer realm = \"a \\\"q\\\" \\\\ v\" ,, scope=x\nNegotiate",
		`Bearer scope="unterminated`, `Bearer a=b, a=c`, `, ,`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		values := strings.SplitN(s, "\n", 2) // two field lines
		cs, err := parseChallenges(values)
		if err != nil {
			return
		}
		for _, c := range cs {
			if c.scheme == "" || !strings.Contains(s, c.scheme) || c.params == nil {
				t.Fatalf("%q: challenge %+v", s, c)
			}
			for k := range c.params {
				if k == "" || k != strings.ToLower(k) {
					t.Fatalf("%q: parameter name %q", s, k)
				}
			}
		}
		_, _ = insufficientScope(http.Header{"Www-Authenticate": values})
	})
}
