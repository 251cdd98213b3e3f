package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// keyed adds a header to every request, as the gateway injects the key.
type keyed struct {
	name, value string
}

func (k keyed) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(k.name, k.value)
	return http.DefaultTransport.RoundTrip(r)
}

func connect(t *testing.T, url string, rt http.RoundTripper) (*mcp.ClientSession, error) {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	return c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: rt}}, nil)
}

func TestToolsWithTheKey(t *testing.T) {
	srv := httptest.NewServer(newHandler("k1"))
	defer srv.Close()
	cs, err := connect(t, srv.URL+"/mcp", keyed{"X-Api-Key", "k1"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cs.Close() }()
	for tool, want := range map[string]string{"forecast": "sunny in Paris", "set_alert": "alert set for Paris"} {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"city": "Paris"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Content[0].(*mcp.TextContent).Text; got != want {
			t.Errorf("%s: got %q, want %q", tool, got, want)
		}
	}
}

func TestRefusals(t *testing.T) {
	srv := httptest.NewServer(newHandler("k1"))
	defer srv.Close()
	for name, rt := range map[string]http.RoundTripper{
		"no key":             http.DefaultTransport,
		"wrong key":          keyed{"X-Api-Key", "k2"},
		"the client's token": both{keyed{"X-Api-Key", "k1"}, "Bearer client-token"},
	} {
		if _, err := connect(t, srv.URL+"/mcp", rt); err == nil {
			t.Errorf("%s: connected", name)
		}
	}
}

// both sends the key and an Authorization header.
type both struct {
	keyed
	authorization string
}

func (b both) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", b.authorization)
	return b.keyed.RoundTrip(r)
}
