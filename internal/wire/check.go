package wire

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Checker collects field errors so that a caller learns every problem with
// a request at once. The zero value is ready to use.
type Checker struct {
	fields []FieldError
}

// Validator is implemented by request shapes; Decode's caller runs it.
type Validator interface {
	Validate(c *Checker)
}

// Failf records a problem with the member name.
func (c *Checker) Failf(name, format string, args ...any) {
	c.fields = append(c.fields, FieldError{Name: name, Message: fmt.Sprintf(format, args...)})
}

// Err returns a ValidationException listing every problem, or nil.
func (c *Checker) Err() error {
	if len(c.fields) == 0 {
		return nil
	}
	msgs := make([]string, len(c.fields))
	for i, f := range c.fields {
		msgs[i] = f.Name + " " + f.Message
	}
	prefix := "1 validation error detected: "
	if len(msgs) > 1 {
		prefix = fmt.Sprintf("%d validation errors detected: ", len(msgs))
	}
	return Validation(prefix+strings.Join(msgs, "; "), c.fields...)
}

// Pattern compiles an AgentCore model pattern anchored at both ends: the
// model's patterns are unanchored, which would let a single valid
// character make any string valid.
func Pattern(p string) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + p + `)$`)
}

// String checks a required string member.
func (c *Checker) String(name, v string, minLen, maxLen int, re *regexp.Regexp) {
	if v == "" && minLen > 0 {
		c.Failf(name, "is required")
		return
	}
	c.str(name, v, minLen, maxLen, re)
}

// OptString checks an optional string member when present.
func (c *Checker) OptString(name string, v *string, minLen, maxLen int, re *regexp.Regexp) {
	if v != nil {
		c.str(name, *v, minLen, maxLen, re)
	}
}

func (c *Checker) str(name, v string, minLen, maxLen int, re *regexp.Regexp) {
	if !utf8.ValidString(v) {
		c.Failf(name, "must be valid UTF-8")
		return
	}
	n := utf8.RuneCountInString(v)
	switch {
	case n < minLen:
		c.Failf(name, "must be at least %d characters long", minLen)
	case maxLen > 0 && n > maxLen:
		c.Failf(name, "must be at most %d characters long", maxLen)
	case re != nil && !re.MatchString(v):
		c.Failf(name, "must match the pattern %s", strings.TrimSuffix(strings.TrimPrefix(re.String(), "^(?:"), ")$"))
	}
}

// Enum checks that a member, when set, is one of allowed; required makes
// an empty value an error.
func (c *Checker) Enum(name, v string, required bool, allowed ...string) {
	if v == "" {
		if required {
			c.Failf(name, "is required")
		}
		return
	}
	if !slices.Contains(allowed, v) {
		c.Failf(name, "must be one of %s", strings.Join(allowed, ", "))
	}
}

// Strings checks each item of a list member and its length.
func (c *Checker) Strings(name string, v []string, minCount, maxCount, minLen, maxLen int, re *regexp.Regexp) {
	if len(v) < minCount {
		c.Failf(name, "must have at least %d items", minCount)
	}
	if maxCount > 0 && len(v) > maxCount {
		c.Failf(name, "must have at most %d items", maxCount)
		return
	}
	for i, s := range v {
		c.str(fmt.Sprintf("%s[%d]", name, i), s, minLen, maxLen, re)
	}
}

// Required records a missing required member.
func (c *Checker) Required(name string, present bool) {
	if !present {
		c.Failf(name, "is required")
	}
}

// Range checks an optional integer member.
func (c *Checker) Range(name string, v *int, lo, hi int) {
	if v != nil && (*v < lo || *v > hi) {
		c.Failf(name, "must be between %d and %d", lo, hi)
	}
}

// OneOf checks that exactly one member of a union is set.
func (c *Checker) OneOf(name string, set ...bool) {
	n := 0
	for _, s := range set {
		if s {
			n++
		}
	}
	switch {
	case n == 0:
		c.Failf(name, "must set exactly one member; none is set")
	case n > 1:
		c.Failf(name, "must set exactly one member; %d are set", n)
	}
}

// Tags patterns (TagResource in the AgentCore Control API reference).
var (
	tagKeyPattern   = Pattern(`[a-zA-Z0-9\s._:/=+@-]*`)
	tagValuePattern = Pattern(`[a-zA-Z0-9\s._:/=+@-]*`)
)

// MaxTags is the most tags a resource may carry.
const MaxTags = 50

// Tags checks a tags map member.
func (c *Checker) Tags(name string, tags map[string]string) {
	if len(tags) > MaxTags {
		c.Failf(name, "must have at most %d entries", MaxTags)
		return
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		c.str(name+" key", k, 1, 128, tagKeyPattern)
		if len(k) >= len(reservedTagPrefix) && strings.EqualFold(k[:len(reservedTagPrefix)], reservedTagPrefix) {
			c.Failf(name+" key", "%q uses the prefix %q, which is reserved for AWS", k, reservedTagPrefix)
		}
		c.str(name+"["+k+"]", tags[k], 0, 256, tagValuePattern)
	}
}

// reservedTagPrefix starts the tag keys AWS keeps for itself; TagResource
// and the Create operations refuse them in any letter case.
const reservedTagPrefix = "aws:"

// TagKeys checks a list of tag keys.
func (c *Checker) TagKeys(name string, keys []string) {
	c.Strings(name, keys, 0, 200, 1, 128, tagKeyPattern)
}
