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
	dec := json.NewDecoder(bytes.NewReader(doc))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, NotJSONObject
	}
	seen := map[string]bool{}
	var value json.RawMessage
	found := false
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		if err != nil || !ok || seen[name] {
			return nil, NotJSONObject
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, NotJSONObject
		}
		if name == key {
			value, found = raw, true
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, NotJSONObject
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, NotJSONObject // trailing data
	}
	if !found {
		return nil, KeyAbsent
	}
	var s string
	if len(value) == 0 || value[0] != '"' || json.Unmarshal(value, &s) != nil || s == "" {
		return nil, NotString
	}
	return []byte(s), ""
}
