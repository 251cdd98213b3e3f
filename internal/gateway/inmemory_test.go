package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/gateway"
)

func TestHandlerTransport(t *testing.T) {
	var seen *http.Request
	var seenBody string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		b, _ := io.ReadAll(r.Body)
		seenBody = string(b)
		w.Header().Set("X-Answer", "42")
		w.WriteHeader(http.StatusTeapot)
		w.Header().Set("X-Late", "not sent")
		_, _ = io.WriteString(w, "short and stout")
	})
	client := &http.Client{Transport: gateway.HandlerTransport(h)}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://behalf.internal/a/b?c=d", strings.NewReader("payload"))
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusTeapot || res.Header.Get("X-Answer") != "42" || res.Header.Get("X-Late") != "" || string(body) != "short and stout" {
		t.Errorf("response: %d %v %q", res.StatusCode, res.Header, body)
	}
	if seen.RequestURI != "/a/b?c=d" || seen.Host != "behalf.internal" || seenBody != "payload" || seen.RemoteAddr == "" || seen.Header.Get("Content-Length") != "7" {
		t.Errorf("request: %q %q %q %q", seen.RequestURI, seen.Host, seenBody, seen.RemoteAddr)
	}
	res2, err := client.Get("http://behalf.internal/")
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	if res2.StatusCode != http.StatusTeapot || seen.Body == nil {
		t.Errorf("a GET without a body: %d", res2.StatusCode)
	}
}
