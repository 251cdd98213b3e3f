package gateway

import (
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzMCPCallsOf: whatever a client sends, reading the JSON-RPC calls of
// a body does not panic, leaves the body as it was (it is forwarded), and
// what it reads is what the body says — the
// method and, for tools/call, the tool name a plain decoder finds under
// exactly those member names — so that a tool's scope rule is never
// applied to another tool than the upstream will call.
func FuzzMCPCallsOf(f *testing.F) {
	for _, seed := range []struct{ body, method, name string }{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`, "", ""},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`, "tools/call", "echo"},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"secret"}}`, "tools/call", "=?base64?c2VjcmV0?="},
		{`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}]`, "", ""},
		{`{"method":"tools/call","Method":"tools/list","params":{"name":"a","Name":"b"}}`, "", ""},
		{`{"method":"tools/call","params":{"name":"a","name":"b"}}`, "", ""},
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, "", ""},
		{`[]`, "", ""},
		{`{"method":1}`, "", ""},
	} {
		f.Add([]byte(seed.body), seed.method, seed.name)
	}
	f.Fuzz(func(t *testing.T, body []byte, method, name string) {
		r, err := http.NewRequest(http.MethodPost, "http://gateway/mcp", nil)
		if err != nil {
			t.Fatal(err)
		}
		if method != "" {
			r.Header.Set("Mcp-Method", method)
		}
		if name != "" {
			r.Header.Set("Mcp-Name", name)
		}
		sent := string(body)
		calls, err := mcpCallsOf(r, body)
		if string(body) != sent {
			t.Fatalf("reading the calls changed the body, which is forwarded: %q, was %q", body, sent)
		}
		if err != nil {
			return
		}
		var msgs []map[string]json.RawMessage
		if json.Unmarshal(body, &msgs) != nil {
			var one map[string]json.RawMessage
			if json.Unmarshal(body, &one) != nil {
				t.Fatalf("read %+v from a body that is no JSON object or array: %q", calls, body)
			}
			msgs = []map[string]json.RawMessage{one}
		}
		if len(msgs) != len(calls) {
			t.Fatalf("%d calls read from %d messages: %q", len(calls), len(msgs), body)
		}
		for i, msg := range msgs {
			var m string
			if raw, ok := msg["method"]; ok {
				_ = json.Unmarshal(raw, &m)
			}
			if calls[i].method != m {
				t.Fatalf("message %d: method %q read, the body says %q: %q", i, calls[i].method, m, body)
			}
			if m != "tools/call" {
				continue
			}
			var params map[string]json.RawMessage
			var n string
			if json.Unmarshal(msg["params"], &params) != nil || json.Unmarshal(params["name"], &n) != nil || calls[i].name != n {
				t.Fatalf("message %d: tool %q read, the body says %q: %q", i, calls[i].name, n, body)
			}
		}
	})
}

// FuzzAccessTokenClaims: an access token's unverified claims are read
// without panicking, and only with an issuer and a subject.
func FuzzAccessTokenClaims(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCIsInN1YiI6ImEiLCJhdWQiOlsiciJdLCJzY29wZSI6InJlYWQifQ.c2ln")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		if c, ok := accessTokenClaims(token); ok && (c.Issuer == "" || c.Subject == "") {
			t.Fatalf("claims without issuer or subject accepted: %+v", c)
		}
	})
}
