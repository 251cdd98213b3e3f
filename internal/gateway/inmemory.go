package gateway

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
)

// HandlerTransport serves each request with h in memory, without a
// socket: a gateway mounted inside `behalf serve` reaches the server's own
// handler through it, signed and audited like any other caller. Responses
// are buffered; the data plane's are small JSON documents. It is also the
// HTTP client (Do) that the AWS SDK's HTTPClient option takes.
func HandlerTransport(h http.Handler) InMemory { return InMemory{h} }

// InMemory serves requests with a handler; see HandlerTransport.
type InMemory struct{ h http.Handler }

// Do is RoundTrip: the data plane answers without redirects.
func (t InMemory) Do(req *http.Request) (*http.Response, error) { return t.RoundTrip(req) }

// RoundTrip serves req with the handler.
func (t InMemory) RoundTrip(req *http.Request) (*http.Response, error) {
	in := req.Clone(req.Context())
	in.RequestURI, in.RemoteAddr = req.URL.RequestURI(), "127.0.0.1:0"
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	if in.Body == nil {
		in.Body = http.NoBody
	}
	// What net/http's client would put on the wire, and a signature covers.
	if in.ContentLength > 0 || (in.ContentLength == 0 && (in.Method == http.MethodPost || in.Method == http.MethodPut || in.Method == http.MethodPatch)) {
		in.Header.Set("Content-Length", strconv.FormatInt(in.ContentLength, 10))
	}
	w := &bufferedResponse{header: http.Header{}}
	t.h.ServeHTTP(w, in)
	w.WriteHeader(http.StatusOK)
	return &http.Response{
		Status: http.StatusText(w.status), StatusCode: w.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.sent, Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()), Request: req,
	}, nil
}

// bufferedResponse is an http.ResponseWriter that keeps what is written.
type bufferedResponse struct {
	header http.Header
	sent   http.Header // header as of WriteHeader
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
		w.sent = w.header.Clone() // later changes to Header are not sent, as on the wire
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
