package wire

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxDepth bounds JSON nesting; no AgentCore shape is deeper than a few
// levels.
const maxDepth = 32

// Decode unmarshals a request body into v (a pointer to a struct) and
// refuses ambiguous or unexpected input: members are matched exactly (the
// standard library folds case), duplicate members and unknown members are
// rejected with their path, and nothing may follow the value. An empty
// body decodes as {}.
//
// One pass checks the members and, for the shapes request bodies are made
// of — objects, lists, maps of strings, plain strings and booleans — stores
// the values as it goes. Anything else (a number, null, a string with
// escapes, a raw or interface member, a type with its own
// unmarshaler, a value of the wrong type) leaves the decoding to
// json.Unmarshal, which then runs on the whole body as before; its result
// is the same either way.
func Decode(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	sc := scanner{data: body}
	dst := reflect.ValueOf(v)
	if dst.Kind() != reflect.Pointer || dst.IsNil() {
		dst, sc.slow = reflect.Value{}, true
	}
	if err := sc.value(reflect.TypeOf(v), dst, nil, 0); err != nil {
		return err
	}
	sc.skipSpace()
	if sc.pos != len(sc.data) {
		return CannotParse("request body has data after the JSON value")
	}
	if !sc.slow {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return CannotParse("member %s: expected %s, got JSON %s", memberPath(te.Field), jsonKind(te.Type), te.Value)
		}
		return CannotParse("request body is not valid JSON")
	}
	return nil
}

func memberPath(p string) string {
	if p == "" {
		return "(body)"
	}
	return p
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// path is a member's path, built only when an error names it.
type path struct {
	parent *path
	key    string
	index  int // for list items, when key is ""
}

func (p *path) String() string {
	if p == nil {
		return ""
	}
	parent := p.parent.String()
	if p.key == "" {
		return parent + "[" + strconv.Itoa(p.index) + "]"
	}
	if parent == "" {
		return p.key
	}
	return parent + "." + p.key
}

var errSyntax = CannotParse("request body is not valid JSON")

// scanner walks a JSON text once, checking object members against the
// target type and storing the values it can decode itself. It leaves the
// finer points of JSON syntax (numbers, null, escapes) to json.Unmarshal,
// which runs next when slow is set; it only has to find every member name
// exactly as Unmarshal will.
type scanner struct {
	data []byte
	pos  int
	// slow is set at the first value the scanner does not decode itself;
	// from then on it only checks, and json.Unmarshal decodes.
	slow bool
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value checks one JSON value against t and stores it in dst; a nil t
// accepts any value (still rejecting duplicate members), and an invalid
// dst stores nothing.
func (s *scanner) value(t reflect.Type, dst reflect.Value, at *path, depth int) error {
	if depth > maxDepth {
		return CannotParse("request body nests deeper than %d levels", maxDepth)
	}
	t = checkedType(t)
	s.skipSpace()
	if s.pos >= len(s.data) {
		return errSyntax
	}
	c := s.data[s.pos]
	if s.slow {
		dst = reflect.Value{}
	} else if dst = s.target(dst, c); !dst.IsValid() {
		s.slow = true
	}
	switch c {
	case '{':
		return s.object(t, dst, at, depth)
	case '[':
		return s.list(t, dst, at, depth)
	case '"':
		return s.stringValue(dst, at)
	}
	return s.literal(dst)
}

// checkedType is the type whose members a value is checked against: t
// without pointers, or nil, which accepts any value, for a raw or
// interface member.
func checkedType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t == rawMessageType || t.Kind() == reflect.Interface) {
		return nil
	}
	return t
}

// list checks a JSON array, each item against t's element type, and
// stores it in dst when dst is a slice the scanner can fill.
func (s *scanner) list(t reflect.Type, dst reflect.Value, at *path, depth int) error {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	list := s.listTarget(dst)
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.store(dst, list)
		return nil
	}
	for i := 0; ; i++ {
		var item reflect.Value
		if list.IsValid() && !s.slow {
			list = reflect.Append(list, reflect.Zero(list.Type().Elem()))
			item = list.Index(i)
		}
		if err := s.value(elem, item, &path{parent: at, index: i}, depth+1); err != nil {
			return err
		}
		if done, err := s.next(']'); done || err != nil {
			if done {
				s.store(dst, list)
			}
			return err
		}
	}
}

// listTarget returns a new slice to fill for dst, or an invalid Value when
// dst is invalid or not a slice the scanner can fill.
func (s *scanner) listTarget(dst reflect.Value) reflect.Value {
	if !dst.IsValid() {
		return reflect.Value{}
	}
	if dst.Kind() != reflect.Slice || dst.Type().Elem().Kind() == reflect.Uint8 {
		s.slow = true // an array, base64 bytes, or not a list at all
		return reflect.Value{}
	}
	return reflect.MakeSlice(dst.Type(), 0, 4)
}

// stringValue checks a JSON string and stores it in dst when it needs no
// unescaping and dst is a string.
func (s *scanner) stringValue(dst reflect.Value, at *path) error {
	raw, escaped, err := s.str()
	if err != nil {
		return textError(err, at)
	}
	if dst.IsValid() {
		// str has refused invalid UTF-8; an escaped string still needs
		// unescaping.
		if escaped || dst.Kind() != reflect.String {
			s.slow = true
		} else {
			dst.SetString(string(raw))
		}
	}
	return nil
}

// literal consumes a number, true, false or null, and stores a boolean in
// dst; json.Unmarshal judges the rest.
func (s *scanner) literal(dst reflect.Value) error {
	start := s.pos
	for s.pos < len(s.data) && !isDelimiter(s.data[s.pos]) {
		s.pos++
	}
	if s.pos == start {
		return errSyntax
	}
	if dst.IsValid() {
		switch lit := string(s.data[start:s.pos]); {
		case dst.Kind() == reflect.Bool && (lit == "true" || lit == "false"):
			dst.SetBool(lit == "true")
		default:
			s.slow = true // numbers, null, and anything json.Unmarshal must judge
		}
	}
	return nil
}

// target returns where a JSON value starting with c goes when dst is to
// receive it, allocating pointers as json.Unmarshal does, or an invalid
// Value when json.Unmarshal must decode it.
func (s *scanner) target(dst reflect.Value, c byte) reflect.Value {
	if !dst.IsValid() || c == 'n' { // null has rules of its own
		return reflect.Value{}
	}
	for {
		t := dst.Type()
		if t.Implements(jsonUnmarshalerType) || t.Implements(textUnmarshalerType) ||
			t.Kind() != reflect.Pointer && (reflect.PointerTo(t).Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)) {
			return reflect.Value{}
		}
		switch t.Kind() {
		case reflect.Pointer:
			if dst.IsNil() {
				if !dst.CanSet() {
					return reflect.Value{}
				}
				dst.Set(reflect.New(t.Elem()))
			}
			dst = dst.Elem()
		case reflect.Struct, reflect.Map, reflect.Slice, reflect.String, reflect.Bool:
			if !dst.CanSet() {
				return reflect.Value{}
			}
			return dst
		default:
			return reflect.Value{}
		}
	}
}

// store sets dst to a list built for it, unless decoding has gone slow.
func (s *scanner) store(dst, list reflect.Value) {
	if !s.slow && dst.IsValid() && list.IsValid() {
		dst.Set(list)
	}
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// object checks a JSON object: each member's name exactly once against
// t's fields (a struct) or t's values (a map), each value against its
// member's type. It stores the members in dst, a struct or a map with
// string keys, when the scanner can.
func (s *scanner) object(t reflect.Type, dst reflect.Value, at *path, depth int) error {
	fields, elem := objectShape(t)
	index, dst := s.objectTarget(dst)
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	var seen []string
	for {
		key, err := s.memberName(at, &seen)
		if err != nil {
			return err
		}
		next := elem
		if fields != nil {
			ft, ok := fields[key]
			if !ok {
				return CannotParse("unknown member %s", &path{parent: at, key: key})
			}
			next = ft
		}
		member := s.memberTarget(dst, index, key)
		if err := s.value(next, member, &path{parent: at, key: key}, depth+1); err != nil {
			return err
		}
		if !s.slow && member.IsValid() && index == nil {
			dst.SetMapIndex(reflect.ValueOf(key).Convert(dst.Type().Key()), member)
		}
		if done, err := s.next('}'); done || err != nil {
			return err
		}
	}
}

// objectShape returns what an object's members are checked against: the
// fields of a struct, or the value type of a map (nil for any value).
func objectShape(t reflect.Type) (fields map[string]reflect.Type, elem reflect.Type) {
	switch {
	case t == nil:
	case t.Kind() == reflect.Struct:
		fields = structFields(t)
	case t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	return fields, elem
}

// objectTarget prepares dst to receive an object's members: a struct's
// field index, or a map made when nil. Any other dst goes slow and is
// returned invalid.
func (s *scanner) objectTarget(dst reflect.Value) (map[string][]int, reflect.Value) {
	if !dst.IsValid() {
		return nil, dst
	}
	switch {
	case dst.Kind() == reflect.Struct:
		return structFieldIndex(dst.Type()), dst
	case dst.Kind() == reflect.Map && dst.Type().Key().Kind() == reflect.String:
		if dst.IsNil() {
			dst.Set(reflect.MakeMap(dst.Type()))
		}
		return nil, dst
	}
	s.slow = true
	return nil, reflect.Value{}
}

// memberTarget returns where the member key of an object goes: a field of
// the struct dst, a new value for the map dst, or nowhere (an invalid
// Value) once decoding has gone slow.
func (s *scanner) memberTarget(dst reflect.Value, index map[string][]int, key string) reflect.Value {
	switch {
	case s.slow || !dst.IsValid():
		return reflect.Value{}
	case index != nil:
		return dst.FieldByIndex(index[key])
	}
	return reflect.New(dst.Type().Elem()).Elem()
}

// memberName consumes a member's name and the colon after it, refusing a
// name already in seen (compared as json.Unmarshal matches them, folding
// case) and adding it there.
func (s *scanner) memberName(at *path, seen *[]string) (string, error) {
	s.skipSpace()
	raw, escaped, err := s.str()
	if err != nil {
		return "", textError(err, at)
	}
	key := string(raw)
	if escaped {
		if err := json.Unmarshal(s.data[s.pos-len(raw)-2:s.pos], &key); err != nil {
			return "", errSyntax
		}
		s.slow = true
	}
	for _, k := range *seen {
		if strings.EqualFold(k, key) {
			return "", CannotParse("member %s appears more than once", &path{parent: at, key: key})
		}
	}
	*seen = append(*seen, key)
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != ':' {
		return "", errSyntax
	}
	s.pos++
	return key, nil
}

// next consumes a ',' (more follows) or the closing delimiter (done).
func (s *scanner) next(closing byte) (done bool, err error) {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false, errSyntax
	}
	switch s.data[s.pos] {
	case ',':
		s.pos++
		return false, nil
	case closing:
		s.pos++
		return true, nil
	}
	return false, errSyntax
}

// badText is the problem str found in an otherwise well-formed string.
type badText string

const (
	textNUL         badText = "must not contain NUL characters"
	textInvalidUTF8 badText = "must be valid UTF-8"
)

func (b badText) Error() string { return string(b) }

// textError turns a badText into a ValidationException naming the member
// at; it returns other errors unchanged.
func textError(err error, at *path) error {
	var bad badText
	if !errors.As(err, &bad) {
		return err
	}
	var c Checker
	c.Failf(memberPath(at.String()), "%s", bad)
	return c.Err()
}

// str consumes a string and returns its raw contents, reporting whether
// they hold escapes. Every string of a request passes here, so this is
// where NUL (which PostgreSQL cannot store in text) and invalid UTF-8
// (which encoding/json would silently replace) are refused, for every
// operation at once.
func (s *scanner) str() (raw []byte, escaped bool, err error) {
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return nil, false, errSyntax
	}
	raw, ok, err := unescaped(s.data[s.pos+1:])
	if err != nil {
		return nil, false, err
	}
	if ok {
		s.pos += len(raw) + 2
		return raw, false, nil
	}
	nonASCII := false
	for i := s.pos + 1; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '"':
			raw = s.data[s.pos+1 : i]
			s.pos = i + 1
			if nonASCII && !utf8.Valid(raw) {
				return nil, false, textInvalidUTF8
			}
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			if bytes.HasPrefix(s.data[i+1:], []byte("u0000")) {
				return nil, false, textNUL
			}
			i++
		case c < 0x20:
			return nil, false, errSyntax
		case c >= utf8.RuneSelf:
			nonASCII = true
		}
	}
	return nil, false, errSyntax
}

// unescaped reads, from just after its opening quote, a string that holds
// no escape: most strings, and a token is a kilobyte or more. Its first
// quote, when no backslash comes before it, is the closing one. ok is
// false for a string that str must read byte by byte.
func unescaped(rest []byte) (raw []byte, ok bool, err error) {
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, false, nil
	}
	raw = rest[:end]
	switch plain := plainASCII(raw); {
	case !plain && bytes.ContainsFunc(raw, func(r rune) bool { return r < 0x20 }):
		return nil, false, errSyntax
	case !plain && !utf8.Valid(raw):
		return nil, false, textInvalidUTF8
	}
	return raw, true, nil
}

// plainASCII reports whether every byte of b is ASCII and none a control
// character below 0x20, eight bytes at a time: subtracting 0x20 from a
// byte below 0x20 borrows into its high bit, and a byte from 0x80 has it
// set already.
func plainASCII(b []byte) bool {
	const lows, highs = 0x2020202020202020, 0x8080808080808080
	for ; len(b) >= 8; b = b[8:] {
		x := binary.LittleEndian.Uint64(b)
		if ((x-lows)|x)&highs != 0 {
			return false
		}
	}
	for _, c := range b {
		if c < 0x20 || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ':', ' ', '\t', '\n', '\r', '"', '{', '[':
		return true
	}
	return false
}

var (
	fieldCache sync.Map // reflect.Type → map[string]reflect.Type
	indexCache sync.Map // reflect.Type → map[string][]int
)

// structFieldIndex maps the exact JSON member names of t to their field
// index, for reflect.Value.FieldByIndex.
func structFieldIndex(t reflect.Type) map[string][]int {
	if m, ok := indexCache.Load(t); ok {
		return m.(map[string][]int)
	}
	m := make(map[string][]int)
	var embedded []reflect.StructField
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			embedded = append(embedded, f)
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Index
	}
	// A promoted member never hides one of t's own, as in encoding/json.
	for _, f := range embedded {
		for k, idx := range structFieldIndex(f.Type) {
			if _, ok := m[k]; !ok {
				m[k] = append([]int{f.Index[0]}, idx...)
			}
		}
	}
	indexCache.Store(t, m)
	return m
}

// structFields maps the exact JSON member names of t to their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := make(map[string]reflect.Type)
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			// encoding/json promotes an embedded struct's members.
			for k, v := range structFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	fieldCache.Store(t, m)
	return m
}
