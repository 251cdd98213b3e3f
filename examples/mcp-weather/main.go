// Command mcp-weather is an MCP server (Streamable HTTP, the official MCP
// Go SDK) to put behind behalf gateway's mcp route: the gateway is its
// OAuth resource server, and behalf can be the authorization server its
// clients sign in at. It serves two tools: forecast, which any caller the
// gateway lets through may use, and set_alert, which the route gives a
// scope of its own. It accepts only requests that carry its API key in
// X-Api-Key, which the gateway injects; a request that still carries the
// MCP client's Authorization header is refused, since the gateway must
// never forward it.
//
//	WEATHER_API_KEY=weather-api-key go run ./examples/mcp-weather     # on 127.0.0.1:8091, path /mcp
package main

import (
	"context"
	"crypto/subtle"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	log.SetFlags(0)
	listen := flag.String("listen", "127.0.0.1:8091", "where the MCP server listens")
	flag.Parse()
	key := os.Getenv("WEATHER_API_KEY")
	if key == "" {
		log.Fatal("set WEATHER_API_KEY to the key the server accepts")
	}
	log.Printf("MCP server on http://%s/mcp, accepting only its key in X-Api-Key", *listen)
	srv := &http.Server{Addr: *listen, Handler: newHandler(key), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// newHandler serves the MCP server at /mcp to callers with the key.
func newHandler(key string) http.Handler {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcp-weather", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "forecast", Description: "Tells the weather in a city."}, forecast)
	mcp.AddTool(s, &mcp.Tool{Name: "set_alert", Description: "Sets a weather alert for a city."}, setAlert)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	mux := http.NewServeMux()
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Values("X-Api-Key")
		if len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), []byte(key)) != 1 {
			http.Error(w, "a valid X-Api-Key is required", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "the MCP client's token reached the server: the gateway must not forward it", http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, r)
	}))
	return mux
}

type cityArgs struct {
	City string `json:"city" jsonschema:"the city"`
}

func forecast(_ context.Context, _ *mcp.CallToolRequest, in cityArgs) (*mcp.CallToolResult, any, error) {
	return text(fmt.Sprintf("sunny in %s", in.City)), nil, nil
}

func setAlert(_ context.Context, _ *mcp.CallToolRequest, in cityArgs) (*mcp.CallToolResult, any, error) {
	return text(fmt.Sprintf("alert set for %s", in.City)), nil, nil
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}
