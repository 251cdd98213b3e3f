package secretsource

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// Member returns the value of the member named key of doc, which must be
// exactly one JSON object (RFC 8259 §4) whose member names are unique, and
// the member a non-empty string, as Secrets Manager's JSON secrets are
// written. Names match exactly, case included. A document with a repeated
// name is refused whichever member repeats: which of them a reader takes
// is not defined. On failure it returns no value and the reason.
func Member(doc []byte, key string) ([]byte, Reason) {
	value, found := objectMember(doc, key)
	switch {
	case value == nil && found:
		return nil, NotJSONObject
	case !found:
		return nil, KeyAbsent
	}
	var s string
	if value[0] != '"' || json.Unmarshal(value, &s) != nil || s == "" {
		return nil, NotString
	}
	return []byte(s), ""
}

// objectMember returns the raw value of doc's member key, and whether it
// has one; a document that is not one object with unique member names is
// (nil, true).
func objectMember(doc []byte, key string) (value json.RawMessage, found bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, true
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		var raw json.RawMessage
		if err != nil || !ok || seen[name] || dec.Decode(&raw) != nil {
			return nil, true
		}
		seen[name] = true
		if name == key {
			value = raw
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, true
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, true // trailing data
	}
	return value, value != nil
}
