package sdk

import (
	"errors"
	"net/http"
	"slices"
	"strings"
)

// challenge is one challenge of a WWW-Authenticate field (RFC 9110
// §11.6.1, formerly RFC 7235 §4.1): a scheme and its auth-params. A
// token68 is read past and not kept: no challenge this package acts on
// has one.
type challenge struct {
	scheme string
	params map[string]string // by lowercased name; quoted-strings unescaped
}

// maxChallengeBytes bounds the WWW-Authenticate field values read, all
// together.
const maxChallengeBytes = 8 << 10

// Bounds of a challenge's scopes: GetResourceOauth2Token's (AWS API
// reference, scopes).
const (
	maxScopes      = 100
	maxScopeLength = 128
)

var errChallenge = errors.New("sdk: malformed WWW-Authenticate field")

// insufficientScope reads the scopes of a Bearer challenge with error
// insufficient_scope (RFC 6750 §3.1); ok is false for any other answer,
// a malformed or oversized one, and scopes GetResourceOauth2Token would
// refuse.
func insufficientScope(h http.Header) (scopes []string, ok bool) {
	cs, err := parseChallenges(h.Values("WWW-Authenticate"))
	if err != nil {
		return nil, false
	}
	i := slices.IndexFunc(cs, func(c challenge) bool { return strings.EqualFold(c.scheme, "Bearer") })
	if i < 0 || cs[i].params["error"] != "insufficient_scope" {
		return nil, false
	}
	scopes = strings.Fields(cs[i].params["scope"])
	if len(scopes) == 0 || len(scopes) > maxScopes ||
		slices.ContainsFunc(scopes, func(s string) bool { return len(s) > maxScopeLength }) {
		return nil, false
	}
	return scopes, true
}

// parseChallenges parses WWW-Authenticate field values, each a
// comma-separated list of challenges (RFC 9110 §11.6.1; several field
// lines are one list, §5.3). A parameter named twice in one challenge is
// refused (§11.2).
func parseChallenges(values []string) ([]challenge, error) {
	total := 0
	var out []challenge
	for _, v := range values {
		if total += len(v); total > maxChallengeBytes {
			return nil, errors.New("sdk: WWW-Authenticate field too large")
		}
		p := &challengeParser{s: v}
		for {
			p.skip(" \t,") // empty list elements, RFC 9110 §5.6.1
			if p.done() {
				break
			}
			c, err := p.challenge()
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

type challengeParser struct {
	s   string
	pos int
}

// challenge reads a scheme and what follows it: nothing, a token68, or
// auth-params up to the next challenge's scheme.
func (p *challengeParser) challenge() (challenge, error) {
	c := challenge{scheme: p.token(), params: map[string]string{}}
	if c.scheme == "" {
		return c, errChallenge
	}
	if p.done() || p.peek() == ',' {
		return c, nil
	}
	if p.skip(" \t") == 0 {
		return c, errChallenge // a scheme is followed by a space
	}
	if p.done() || p.peek() == ',' || p.token68() {
		return c, nil
	}
	for {
		more, err := p.param(&c)
		if err != nil || !more {
			return c, err
		}
	}
}

// param reads one auth-param and the comma after it, and reports whether
// another may follow. A token not followed by "=" is the next
// challenge's scheme: it is left unread.
func (p *challengeParser) param(c *challenge) (more bool, err error) {
	start := p.pos
	name := p.token()
	p.skip(" \t")
	if name == "" || p.done() || p.peek() != '=' {
		if name == "" || len(c.params) == 0 {
			return false, errChallenge
		}
		p.pos = start
		return false, nil
	}
	p.pos++
	p.skip(" \t")
	value, err := p.value()
	if err != nil {
		return false, err
	}
	name = strings.ToLower(name)
	if _, dup := c.params[name]; dup {
		return false, errChallenge
	}
	c.params[name] = value
	p.skip(" \t")
	if p.done() {
		return false, nil
	}
	if p.peek() != ',' {
		return false, errChallenge
	}
	p.skip(" \t,")
	return !p.done(), nil
}

// token68 reads a token68 (RFC 9110 §11.2) when it is all that precedes
// the end or a comma; otherwise it reads nothing.
func (p *challengeParser) token68() bool {
	i := p.pos
	for i < len(p.s) && (isAlnum(p.s[i]) || strings.IndexByte("-._~+/", p.s[i]) >= 0) {
		i++
	}
	if i == p.pos {
		return false
	}
	for i < len(p.s) && p.s[i] == '=' {
		i++
	}
	for i < len(p.s) && (p.s[i] == ' ' || p.s[i] == '\t') {
		i++
	}
	if i < len(p.s) && p.s[i] != ',' {
		return false
	}
	p.pos = i
	return true
}

// value reads a token or a quoted-string (RFC 9110 §5.6.4), unescaping
// its quoted-pairs.
func (p *challengeParser) value() (string, error) {
	if p.done() || p.peek() != '"' {
		if t := p.token(); t != "" {
			return t, nil
		}
		return "", errChallenge
	}
	var b strings.Builder
	for p.pos++; p.pos < len(p.s); p.pos++ {
		switch c := p.s[p.pos]; {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c == '\\' && p.pos+1 < len(p.s) && isQuotedPairChar(p.s[p.pos+1]):
			p.pos++
			b.WriteByte(p.s[p.pos])
		case c == '\t' || c >= 0x20 && c != 0x7f && c != '\\':
			b.WriteByte(c) // qdtext
		default:
			return "", errChallenge
		}
	}
	return "", errChallenge // unterminated
}

// token reads an RFC 9110 §5.6.2 token.
func (p *challengeParser) token() string {
	start := p.pos
	for p.pos < len(p.s) && (isAlnum(p.s[p.pos]) || strings.IndexByte("!#$%&'*+-.^_`|~", p.s[p.pos]) >= 0) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// skip skips the bytes in set and returns how many.
func (p *challengeParser) skip(set string) int {
	start := p.pos
	for p.pos < len(p.s) && strings.IndexByte(set, p.s[p.pos]) >= 0 {
		p.pos++
	}
	return p.pos - start
}

func (p *challengeParser) done() bool { return p.pos >= len(p.s) }
func (p *challengeParser) peek() byte { return p.s[p.pos] }

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isQuotedPairChar is what a backslash may escape: HTAB, SP, VCHAR,
// obs-text (RFC 9110 §5.6.4).
func isQuotedPairChar(c byte) bool { return c == '\t' || c == ' ' || c >= 0x21 && c != 0x7f }
