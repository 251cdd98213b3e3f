package behalftest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Response is a raw HTTP response with its body read.
type Response struct {
	Status  int
	Header  http.Header
	Body    []byte
	ErrType string
}

// JSON decodes the body into a map.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response body is not a JSON object: %q", r.Body)
	}
	return m
}

// Raw describes a hand-made request, for inputs the SDK would never send.
type Raw struct {
	Method      string
	Path        string
	Body        []byte
	ContentType string // default application/json when Body is set
	KeyID       string // default the admin key
	Secret      string
	Region      string    // default us-east-1
	SignedAt    time.Time // default the server's clock
	// Tamper changes the request after it is signed.
	Tamper func(*http.Request)
	// Unsigned sends no Authorization header.
	Unsigned bool
}

// Do sends a SigV4-signed request built from r.
func (s *Server) Do(t testing.TB, r Raw) Response {
	t.Helper()
	if r.Method == "" {
		r.Method = http.MethodPost
	}
	if r.KeyID == "" {
		r.KeyID, r.Secret = AdminKeyID, AdminSecret
	}
	if r.Region == "" {
		r.Region = "us-east-1"
	}
	if r.SignedAt.IsZero() {
		r.SignedAt = time.Now()
		if s.Now != nil { // nil for a Server naming another process's URL
			r.SignedAt = s.Now()
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), r.Method, s.URL+r.Path, bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	if r.ContentType == "" && r.Body != nil {
		r.ContentType = "application/json"
	}
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	if !r.Unsigned {
		sum := sha256.Sum256(r.Body)
		creds := aws.Credentials{AccessKeyID: r.KeyID, SecretAccessKey: r.Secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "bedrock-agentcore", r.Region, r.SignedAt); err != nil {
			t.Fatal(err)
		}
	}
	if r.Tamper != nil {
		r.Tamper(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	body, _ := io.ReadAll(res.Body)
	return Response{Status: res.StatusCode, Header: res.Header, Body: body, ErrType: res.Header.Get("X-Amzn-ErrorType")}
}

// Recorder is an HTTP client for SDK clients that keeps every response
// body, so tests can assert that no secret ever came back.
type Recorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

// Do implements the SDK's HTTPClient.
func (r *Recorder) Do(req *http.Request) (*http.Response, error) {
	res, err := http.DefaultClient.Do(req) //nolint:gosec // G704: the SDK client's request to the test server
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	r.mu.Unlock()
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}

// Contains reports whether any recorded body contains s.
func (r *Recorder) Contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bodies {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// Last returns the body of the last response recorded.
func (r *Recorder) Last() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) == 0 {
		return nil
	}
	return r.bodies[len(r.bodies)-1]
}

// Count returns how many responses were recorded.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// JWTClaims decodes a JWT's payload without verifying it (the server under
// test does the verifying).
func JWTClaims(t testing.TB, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %.40s…", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
