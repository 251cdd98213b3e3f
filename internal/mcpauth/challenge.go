package mcpauth

import (
	"errors"
	"strings"
)

// Challenge is one challenge of a WWW-Authenticate header (RFC 9110
// §11.6.1): an auth scheme with either auth-params or a token68.
type Challenge struct {
	// Scheme is as sent; compare it case-insensitively.
	Scheme string
	// Params holds the auth-params by lowercased name, quoted-string
	// values unescaped.
	Params  map[string]string
	Token68 string
}

// maxChallengeHeader bounds the WWW-Authenticate fields ParseChallenges
// reads, all together.
const maxChallengeHeader = 16 << 10

var errChallenge = errors.New("malformed WWW-Authenticate header")

// ParseChallenges parses WWW-Authenticate field values, each holding one
// or more comma-separated challenges (RFC 9110 §11.6.1, §5.3: several
// field lines are one list). A parameter named twice in one challenge is
// refused (RFC 9110 §11.2).
func ParseChallenges(values []string) ([]Challenge, error) {
	total := 0
	var out []Challenge
	for _, v := range values {
		if total += len(v); total > maxChallengeHeader {
			return nil, errors.New("WWW-Authenticate header is too large")
		}
		cs, err := parseChallengeList(v)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// BearerChallenge returns the first Bearer challenge (RFC 6750 §3).
func BearerChallenge(cs []Challenge) (Challenge, bool) {
	for _, c := range cs {
		if strings.EqualFold(c.Scheme, "Bearer") {
			return c, true
		}
	}
	return Challenge{}, false
}

type challengeScanner struct {
	s   string
	pos int
}

func parseChallengeList(v string) ([]Challenge, error) {
	sc := &challengeScanner{s: v}
	var out []Challenge
	for {
		sc.skipListSeparators()
		if sc.done() {
			return out, nil
		}
		scheme := sc.token()
		if scheme == "" {
			return nil, errChallenge
		}
		c := Challenge{Scheme: scheme, Params: map[string]string{}}
		if err := sc.challengeBody(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// challengeBody reads what follows a scheme: nothing, a token68, or
// auth-params up to the next challenge's scheme.
func (sc *challengeScanner) challengeBody(c *Challenge) error {
	if sc.done() || sc.peek() == ',' {
		return nil
	}
	if !sc.skipSpace() {
		return errChallenge // the scheme must be followed by a space
	}
	if sc.done() || sc.peek() == ',' {
		return nil
	}
	if t68, ok := sc.token68(); ok {
		c.Token68 = t68
		return nil
	}
	for {
		more, err := sc.param(c)
		if err != nil || !more {
			return err
		}
	}
}

// param reads one auth-param and the comma after it, and reports whether
// another may follow. A token not followed by "=" is the next
// challenge's scheme: it is left unread.
func (sc *challengeScanner) param(c *Challenge) (more bool, err error) {
	start := sc.pos
	name := sc.token()
	if name == "" {
		return false, errChallenge
	}
	sc.skipSpace()
	if sc.done() || sc.peek() != '=' {
		if len(c.Params) == 0 {
			return false, errChallenge
		}
		sc.pos = start
		return false, nil
	}
	sc.pos++
	sc.skipSpace()
	value, err := sc.paramValue()
	if err != nil {
		return false, err
	}
	key := strings.ToLower(name)
	if _, dup := c.Params[key]; dup {
		return false, errors.New("WWW-Authenticate challenge names parameter " + key + " twice")
	}
	c.Params[key] = value
	sc.skipSpace()
	if sc.done() {
		return false, nil
	}
	if sc.peek() != ',' {
		return false, errChallenge
	}
	sc.skipListSeparators()
	return !sc.done(), nil
}

// token68 reads a token68 when one is all that precedes the end or a
// comma; otherwise it reads nothing.
func (sc *challengeScanner) token68() (string, bool) {
	i := sc.pos
	for i < len(sc.s) && isToken68Char(sc.s[i]) {
		i++
	}
	if i == sc.pos {
		return "", false
	}
	j := i
	for j < len(sc.s) && sc.s[j] == '=' {
		j++
	}
	k := j
	for k < len(sc.s) && (sc.s[k] == ' ' || sc.s[k] == '\t') {
		k++
	}
	if k < len(sc.s) && sc.s[k] != ',' {
		return "", false
	}
	t := sc.s[sc.pos:j]
	sc.pos = k
	return t, true
}

func (sc *challengeScanner) paramValue() (string, error) {
	if sc.done() {
		return "", errChallenge
	}
	if sc.peek() == '"' {
		sc.pos++
		return sc.quotedString()
	}
	if t := sc.token(); t != "" {
		return t, nil
	}
	return "", errChallenge
}

// quotedString reads the rest of an RFC 9110 §5.6.4 quoted-string,
// unescaping its quoted-pairs.
func (sc *challengeScanner) quotedString() (string, error) {
	var b strings.Builder
	for sc.pos < len(sc.s) {
		c := sc.s[sc.pos]
		sc.pos++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\':
			if sc.pos >= len(sc.s) || !isQuotedPairChar(sc.s[sc.pos]) {
				return "", errChallenge
			}
			b.WriteByte(sc.s[sc.pos])
			sc.pos++
		case isQDText(c):
			b.WriteByte(c)
		default:
			return "", errChallenge
		}
	}
	return "", errChallenge // unterminated
}

// isQDText is RFC 9110 §5.6.4's qdtext.
func isQDText(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80
}

func (sc *challengeScanner) token() string {
	start := sc.pos
	for sc.pos < len(sc.s) && isTChar(sc.s[sc.pos]) {
		sc.pos++
	}
	return sc.s[start:sc.pos]
}

func (sc *challengeScanner) skipSpace() bool {
	start := sc.pos
	for sc.pos < len(sc.s) && (sc.s[sc.pos] == ' ' || sc.s[sc.pos] == '\t') {
		sc.pos++
	}
	return sc.pos > start
}

// skipListSeparators skips OWS and empty list elements (RFC 9110 §5.6.1).
func (sc *challengeScanner) skipListSeparators() {
	for sc.pos < len(sc.s) && (sc.s[sc.pos] == ' ' || sc.s[sc.pos] == '\t' || sc.s[sc.pos] == ',') {
		sc.pos++
	}
}

func (sc *challengeScanner) done() bool { return sc.pos >= len(sc.s) }
func (sc *challengeScanner) peek() byte { return sc.s[sc.pos] }

// isTChar is RFC 9110 §5.6.2's tchar.
func isTChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isToken68Char is RFC 9110 §11.2's token68 character, before the
// trailing "=" padding.
func isToken68Char(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

// isQuotedPairChar is what a backslash may escape: HTAB, SP, VCHAR,
// obs-text (RFC 9110 §5.6.4).
func isQuotedPairChar(c byte) bool { return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f) }
