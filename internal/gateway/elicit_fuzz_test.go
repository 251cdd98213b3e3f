package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/config"
)

// FuzzRPCRequestOf: whatever a client sends, reading its JSON-RPC request
// does not panic; a body the gateway strips of its requestState stays one
// JSON-RPC request of the same id, method and name, without the
// gateway's state; and no requestState but one the gateway sealed for the
// same caller's same call opens.
func FuzzRPCRequestOf(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`,
		`{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","requestState":"behalf1.e30.AAAA","inputResponses":{"behalf_consent":{"action":"accept"},"x":{}},` +
			`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{"url":{}}}}}}`,
		`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{"url":{}}}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a"}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`,
		`{"id":1,"method":"tools/call","params":[]}`,
		`[{"id":1,"method":"tools/list"}]`,
	} {
		f.Add([]byte(seed), "behalf1.e30.AAAA")
	}
	states := requestStates{key: []byte("fuzz-key"), now: time.Now}
	s := &callState{route: &route{GatewayRouteFile: config.GatewayRouteFile{Name: "mcp"}}, user: "jwt:https://idp#alice"}
	f.Fuzz(func(t *testing.T, body []byte, state string) {
		r, err := http.NewRequest(http.MethodPost, "http://gateway/mcp", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		q := rpcRequestOf(r, body)
		if q == nil {
			return
		}
		if states.open(state, states.claims(s, q)) == nil {
			t.Fatalf("a requestState the gateway did not seal opened: %q", state)
		}
		if err := states.open(states.seal(states.claims(s, q)), states.claims(s, q)); err != nil {
			t.Fatalf("the gateway's own requestState did not open: %v", err)
		}
		if q.params == nil {
			return
		}
		stripped, err := q.withoutGatewayState()
		if err != nil {
			t.Fatal(err)
		}
		again := rpcRequestOf(r, stripped)
		if again == nil || !bytes.Equal(again.id, q.id) || again.method != q.method || again.name != q.name || again.requestState != "" || again.accepted {
			t.Fatalf("stripped %s to %s", body, stripped)
		}
		var params map[string]json.RawMessage
		if json.Unmarshal(again.msg["params"], &params) != nil || params["requestState"] != nil {
			t.Fatalf("stripped params: %s", again.msg["params"])
		}
	})
}
