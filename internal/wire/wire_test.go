package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type inner struct {
	ClientID string            `json:"clientId"`
	Params   map[string]string `json:"params,omitempty"`
}

type paging struct {
	Token *string `json:"nextToken,omitempty"`
}

type shape struct {
	paging
	Name   string          `json:"name"`
	Max    *int            `json:"maxResults,omitempty"`
	List   []inner         `json:"list,omitempty"`
	Union  *inner          `json:"union,omitempty"`
	Free   json.RawMessage `json:"free,omitempty"`
	Hidden string          `json:"-"`
}

func (s *shape) Validate(c *Checker) {
	c.String("name", s.Name, 3, 8, Pattern(`[a-z]+`))
	c.Range("maxResults", s.Max, 1, 20)
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		body    string
		wantErr string
	}{
		{`{"name":"abc"}`, ""},
		{`{"name":"abc","nextToken":"t"}`, ""},
		{``, ""},
		{`  {}  `, ""},
		{`{"name":"abc","list":[{"clientId":"x","params":{"a":"1","A":"2x"}}]}`, "member list[0].params.A appears more than once"},
		{`{"name":"abc","NAME":"x"}`, "member NAME appears more than once"},
		{`{"Name":"abc"}`, "unknown member Name"},
		{`{"name":"a","name":"b"}`, "member name appears more than once"},
		{`{"name":"abc","union":{"clientID":"x"}}`, "unknown member union.clientID"},
		{`{"name":"abc","list":[{},{"extra":1}]}`, "unknown member list[1].extra"},
		{`{"name":"abc","free":{"anything":{"goes":[1,2]}}}`, ""},
		{`{"name":"abc","free":{"a":1,"a":2}}`, "member free.a appears more than once"},
		{`{"name":"abc","Hidden":"x"}`, "unknown member Hidden"},
		{`{"name":"abc"} {}`, "data after the JSON value"},
		{`{"name":"abc"`, "not valid JSON"},
		{`[1,2]`, "expected an object"},
		{`{"name":5}`, "member name: expected a string"},
		{`{"maxResults":"5"}`, "member maxResults: expected a number"},
		{`"str"`, "expected an object"},
		{strings.Repeat(`{"free":`, 40) + `1` + strings.Repeat(`}`, 40), "nests deeper"},
	} {
		var s shape
		err := Decode([]byte(tc.body), &s)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("Decode(%.40q) = %v", tc.body, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Type != TypeValidation || e.Reason != ReasonCannotParse || !strings.Contains(e.Message, tc.wantErr) {
			t.Errorf("Decode(%.40q) = %v, want CannotParse containing %q", tc.body, err, tc.wantErr)
		}
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	var s shape
	err := DecodeAndValidate([]byte(`{"name":"AB","maxResults":50}`), &s)
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonFieldValidation {
		t.Fatalf("got %v", err)
	}
	want := []FieldError{
		{Name: "name", Message: "must be at least 3 characters long"},
		{Name: "maxResults", Message: "must be between 1 and 20"},
	}
	if d := cmp.Diff(want, e.Fields); d != "" {
		t.Fatalf("fields (-want +got):\n%s", d)
	}
	if !strings.HasPrefix(e.Message, "2 validation errors detected") {
		t.Fatalf("message %q", e.Message)
	}
	// Patterns are anchored: one valid character does not validate a string.
	if err := DecodeAndValidate([]byte(`{"name":"abc!"}`), &s); err == nil {
		t.Fatal("an unanchored pattern match was accepted")
	}
}

type allowAll struct{}

func (allowAll) Authenticate(context.Context, *http.Request, []byte) (Caller, error) {
	return Caller{AccessKeyID: "AKIDTEST"}, nil
}
func (allowAll) WorkloadScoped(string) bool   { return false }
func (allowAll) ActsFor(Caller, string) error { return nil }
func (allowAll) Authorize(op string, _ Caller) error {
	if op == "Forbidden" {
		return AccessDenied("no")
	}
	return nil
}

type out struct {
	Name string `json:"name"`
	At   Time   `json:"at"`
}

func testRouter() *http.ServeMux {
	mux := http.NewServeMux()
	rt := NewRouter(mux, allowAll{}, allowAll{}, nil, slog.New(slog.DiscardHandler), Telemetry{})
	rt.Handle(
		JSON("Echo", "/echo", 201, func(_ context.Context, _ *Call, in *shape) (*out, error) {
			return &out{Name: in.Name}, nil
		}),
		JSON("Empty", "/empty", 204, func(context.Context, *Call, *shape) (*struct{}, error) { return nil, nil }),
		JSON("Forbidden", "/forbidden", 200, func(context.Context, *Call, *shape) (*out, error) { return &out{}, nil }),
		JSON("Boom", "/boom", 200, func(context.Context, *Call, *shape) (*out, error) { panic("boom") }),
		JSON("Fail", "/fail", 200, func(context.Context, *Call, *shape) (*out, error) {
			return nil, errors.New("database password is hunter2")
		}),
	)
	return mux
}

// response is what a test reads of a response, its body decoded.
type response struct {
	StatusCode int
	Header     http.Header
}

func do(t *testing.T, h http.Handler, method, path, ctype, body string) (response, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	raw := w.Body.Bytes()
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
	}
	return response{StatusCode: w.Code, Header: w.Header()}, m
}

func TestRouter(t *testing.T) {
	rt := testRouter()
	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
		errType                         string
	}{
		{"ok", "POST", "/echo", "application/json", `{"name":"abc"}`, 201, ""},
		{"empty response", "POST", "/empty", "application/json", `{"name":"abc"}`, 204, ""},
		{"charset", "POST", "/echo", "application/json; charset=utf-8", `{"name":"abc"}`, 201, ""},
		{"unknown path", "POST", "/nope", "application/json", `{}`, 404, TypeUnknownOperation},
		{"wrong method", "GET", "/echo", "", ``, 405, TypeUnknownOperation},
		{"wrong content type", "POST", "/echo", "text/plain", `{"name":"abc"}`, 400, TypeValidation},
		{"missing content type", "POST", "/echo", "", `{"name":"abc"}`, 400, TypeValidation},
		{"malformed", "POST", "/echo", "application/json", `{"name":`, 400, TypeValidation},
		{"too large", "POST", "/echo", "application/json", `{"name":"` + strings.Repeat("a", MaxBody) + `"}`, 413, TypeValidation},
		{"invalid", "POST", "/echo", "application/json", `{"name":"A"}`, 400, TypeValidation},
		{"denied", "POST", "/forbidden", "application/json", `{"name":"abc"}`, 403, TypeAccessDenied},
		{"panic", "POST", "/boom", "application/json", `{"name":"abc"}`, 500, TypeInternal},
		{"internal", "POST", "/fail", "application/json", `{"name":"abc"}`, 500, TypeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := do(t, rt, tc.method, tc.path, tc.ctype, tc.body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %v)", res.StatusCode, tc.status, body)
			}
			if res.Header.Get("X-Amzn-RequestId") == "" {
				t.Error("no request id")
			}
			if tc.errType == "" {
				return
			}
			if got := res.Header.Get("X-Amzn-ErrorType"); got != tc.errType {
				t.Errorf("X-Amzn-ErrorType %q, want %q", got, tc.errType)
			}
			if body["__type"] != tc.errType || body["message"] == "" {
				t.Errorf("body %v", body)
			}
			if msg, _ := body["message"].(string); strings.Contains(msg, "hunter2") || strings.Contains(msg, "boom") {
				t.Errorf("internal detail leaked: %q", msg)
			}
		})
	}
}

func TestTimeIsEpochSeconds(t *testing.T) {
	rt := testRouter()
	_, body := do(t, rt, "POST", "/echo", "application/json", `{"name":"abc"}`)
	if _, ok := body["at"].(float64); !ok {
		t.Fatalf("at = %#v, want a JSON number", body["at"])
	}
}

func TestNextToken(t *testing.T) {
	tok := NextToken("agent-7")
	got, err := ParseNextToken("nextToken", tok)
	if err != nil || got != "agent-7" {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	bad := "garbage"
	if _, err := ParseNextToken("nextToken", &bad); err == nil {
		t.Fatal("a forged token was accepted")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"name":"abc","list":[{"clientId":"x","params":{"a":"b"}}],"free":{"x":[1,{"y":null}]}}`))
	f.Add([]byte(`{"name":"a","name":"b"}`))
	f.Add([]byte(`[[[[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var s shape
		if err := Decode(body, &s); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Type != TypeValidation {
				t.Fatalf("untyped error %v", err)
			}
		}
	})
}

// refCheck is the straightforward algorithm the scanner replaced: walk
// json.Decoder tokens, checking each object's members against the type.
func refCheck(dec *json.Decoder, t reflect.Type, depth int) bool {
	if depth > maxDepth {
		return false
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t == rawMessageType || t.Kind() == reflect.Interface) {
		t = nil
	}
	tok, err := dec.Token()
	if err != nil {
		return false
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return true
	}
	switch delim {
	case '[':
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		for dec.More() {
			if !refCheck(dec, elem, depth+1) {
				return false
			}
		}
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = structFields(t)
		} else if t != nil && t.Kind() == reflect.Map {
			elem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return false
			}
			key := tok.(string)
			if seen[strings.ToLower(key)] {
				return false
			}
			seen[strings.ToLower(key)] = true
			next := elem
			if fields != nil {
				ft, ok := fields[key]
				if !ok {
					return false
				}
				next = ft
			}
			if !refCheck(dec, next, depth+1) {
				return false
			}
		}
	}
	_, err = dec.Token()
	return err == nil
}

// FuzzDecodeMatchesReference: the scanner accepts exactly what the
// token-based reference accepts (on bodies the standard library decodes).
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, seed := range []string{`{"name":"abc","list":[{"clientId":"x","params":{"a":"b"}}]}`, `{"name":"a\u0062c"}`,
		`{"na\u006de":"x","name":"y"}`, `{"free":{"a":[1,{"b":"\"}"}]}}`, `{"maxResults":1e3}`, `{"NAME":1}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var s shape
		got := Decode(body, &s) == nil
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 {
			trimmed = []byte("{}")
		}
		var probe shape
		if json.Unmarshal(trimmed, &probe) != nil {
			if got {
				t.Fatalf("accepted what encoding/json refuses: %q", body)
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		want := refCheck(dec, reflect.TypeOf(&s), 0)
		if _, err := dec.Token(); err != io.EOF {
			want = false
		}
		if got != want {
			t.Fatalf("Decode accepted=%v, reference accepted=%v for %q", got, want, body)
		}
	})
}

// readAll returns the whole body whether or not the request declared its
// length, and refuses one longer than MaxBody either way.
func TestReadAll(t *testing.T) {
	body := strings.Repeat("b", 3000)
	for _, size := range []int64{int64(len(body)), -1} {
		got, err := readAll(strings.NewReader(body), size)
		if err != nil || string(got) != body {
			t.Errorf("size %d: %d bytes, %v", size, len(got), err)
		}
	}
	long := strings.Repeat("b", MaxBody+1)
	for _, size := range []int64{MaxBody, -1} {
		w := httptest.NewRecorder()
		_, err := readAll(http.MaxBytesReader(w, io.NopCloser(strings.NewReader(long)), MaxBody), size)
		if tooBig := (*http.MaxBytesError)(nil); !errors.As(err, &tooBig) {
			t.Errorf("size %d: %v, want *http.MaxBytesError", size, err)
		}
	}
}
