package server

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// RedactDSN hides the password in a storage DSN, in any form: a URL's
// user information or password parameter, a key=value "password=", and
// (when the URL does not parse) everything between "://" and the last "@".
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		if i := strings.Index(dsn, "://"); i >= 0 {
			if j := strings.LastIndex(dsn[i+3:], "@"); j >= 0 {
				dsn = dsn[:i+3] + "REDACTED" + dsn[i+3+j:]
			}
		}
		return passwordParam.ReplaceAllString(dsn, "${1}REDACTED")
	}
	if u.Opaque != "" {
		return u.Scheme + ":REDACTED"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// passwordParam is a libpq key=value connection string's password, quoted
// or not, or a URL query's.
var passwordParam = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]*)`)

// dsnSecrets lists the substrings of dsn that may be its password, to
// scrub from errors that quote it.
func dsnSecrets(dsn string) []string {
	var secrets []string
	if i := strings.Index(dsn, "://"); i >= 0 {
		if j := strings.LastIndex(dsn[i+3:], "@"); j >= 0 {
			userinfo := dsn[i+3 : i+3+j]
			if _, pw, ok := strings.Cut(userinfo, ":"); ok {
				secrets = append(secrets, pw)
				if unescaped, err := url.PathUnescape(pw); err == nil {
					secrets = append(secrets, unescaped)
				}
			}
		}
	}
	for _, m := range passwordParam.FindAllStringSubmatch(dsn, -1) {
		secrets = append(secrets, strings.Trim(m[2], "'"))
	}
	return slices.DeleteFunc(secrets, func(s string) bool { return s == "" })
}

// redactedError is err with the storage DSN's password removed from its
// text.
type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

func redactDSNError(dsn string, err error) error {
	text := err.Error()
	for _, s := range dsnSecrets(dsn) {
		text = strings.ReplaceAll(text, s, "REDACTED")
	}
	return &redactedError{text: text, err: err}
}
