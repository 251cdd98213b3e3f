package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
)

// maxDepth bounds JSON nesting; no AgentCore shape is deeper than a few
// levels.
const maxDepth = 32

// Decode unmarshals a request body into v (a pointer to a struct) and
// refuses ambiguous or unexpected input: members are matched exactly (the
// standard library folds case), duplicate members and unknown members are
// rejected with their path, and nothing may follow the value. An empty
// body decodes as {}.
func Decode(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := checkShape(dec, reflect.TypeOf(v), "", 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return CannotParse("request body has data after the JSON value")
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

// checkShape reads one JSON value from dec and checks its object members
// against t. A nil t accepts any value (still rejecting duplicates).
func checkShape(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	if depth > maxDepth {
		return CannotParse("request body nests deeper than %d levels", maxDepth)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t == rawMessageType || t.Kind() == reflect.Interface) {
		t = nil
	}
	tok, err := dec.Token()
	if err != nil {
		return CannotParse("request body is not valid JSON")
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar; its type is checked by Unmarshal
	}
	switch delim {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := checkShape(dec, elem, path+"["+itoa(i)+"]", depth+1); err != nil {
				return err
			}
		}
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		switch {
		case t == nil:
		case t.Kind() == reflect.Struct:
			fields = structFields(t)
		case t.Kind() == reflect.Map:
			elem = t.Elem()
		}
		seen := make(map[string]bool)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return CannotParse("request body is not valid JSON")
			}
			key := tok.(string)
			folded := strings.ToLower(key)
			if seen[folded] {
				return CannotParse("member %s appears more than once", joinPath(path, key))
			}
			seen[folded] = true
			next := elem
			if fields != nil {
				ft, ok := fields[key]
				if !ok {
					return CannotParse("unknown member %s", joinPath(path, key))
				}
				next = ft
			}
			if err := checkShape(dec, next, joinPath(path, key), depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return CannotParse("request body is not valid JSON")
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

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
