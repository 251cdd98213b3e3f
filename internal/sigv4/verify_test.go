package sigv4_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/behalf-dev/behalf/internal/sigv4"
)

const jsonBody = `{"name":"my-agent"}`

// sign signs req the way the SDK does, with the SDK's own signer.
func sign(t testing.TB, req *http.Request, body []byte, secret string, at time.Time) {
	t.Helper()
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), testService, testRegion, at); err != nil {
		t.Fatal(err)
	}
}

// newSigned builds and signs a request for base+target. header is applied
// before signing, so all of it is signed.
func newSigned(t testing.TB, method, url, body string, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	sign(t, req, []byte(body), testSecret, time.Now())
	return req
}

func editAuthorization(r *http.Request, from, to string) {
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), from, to, 1))
}

func setBody(r *http.Request, body string) {
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
}

// TestVerifyHandSigned sends requests signed by the SDK signer, then
// altered, through a real HTTP server.
func TestVerifyHandSigned(t *testing.T) {
	post := func(mutate func(*http.Request)) func(t *testing.T, base string) *http.Request {
		return func(t *testing.T, base string) *http.Request {
			r := newSigned(t, "POST", base+"/identities/CreateWorkloadIdentity", jsonBody, http.Header{"X-Custom": {"one"}})
			mutate(r)
			return r
		}
	}
	del := func(mutate func(*http.Request)) func(t *testing.T, base string) *http.Request {
		return func(t *testing.T, base string) *http.Request {
			r := newSigned(t, "DELETE", base+"/tags/"+testARNPath+"?tagKeys=b&tagKeys=a%20c", "", nil)
			mutate(r)
			return r
		}
	}
	nothing := func(*http.Request) {}

	tests := []struct {
		name     string
		req      func(t *testing.T, base string) *http.Request
		wantKind sigv4.Kind // 0: accepted
	}{
		{name: "baseline POST", req: post(nothing)},
		{name: "baseline DELETE with query", req: del(nothing)},
		{name: "query sent in another order with + for space", req: del(func(r *http.Request) {
			r.URL.RawQuery = "tagKeys=b&tagKeys=a+c"
		})},
		{name: "unsigned header added after signing", req: post(func(r *http.Request) {
			r.Header.Set("X-Forwarded-For", "192.0.2.1")
		})},
		{name: "multi-value signed header", req: func(t *testing.T, base string) *http.Request {
			return newSigned(t, "POST", base+"/identities/GetWorkloadIdentity", jsonBody,
				http.Header{"X-Custom": {"first", "  second   value "}, "X-Other": {"a,b"}})
		}},
		{name: "reserved characters in path", req: func(t *testing.T, base string) *http.Request {
			return newSigned(t, "GET", base+"/tags/a~b.c_d-e/$&'()*+,;=:@/%20x%2Fy/", "", nil)
		}},
		{name: "matching X-Amz-Content-Sha256", req: func(t *testing.T, base string) *http.Request {
			sum := sha256.Sum256([]byte(jsonBody))
			return newSigned(t, "POST", base+"/identities/GetWorkloadIdentity", jsonBody,
				http.Header{"X-Amz-Content-Sha256": {hex.EncodeToString(sum[:])}})
		}},

		{name: "body tampered", wantKind: sigv4.KindSignatureMismatch, req: post(func(r *http.Request) {
			setBody(r, strings.Replace(jsonBody, "my-agent", "my-agenT", 1))
		})},
		{name: "signed header changed", wantKind: sigv4.KindSignatureMismatch, req: post(func(r *http.Request) {
			r.Header.Set("X-Custom", "two")
		})},
		{name: "content-type changed", wantKind: sigv4.KindSignatureMismatch, req: post(func(r *http.Request) {
			r.Header.Set("Content-Type", "text/plain")
		})},
		{name: "x-amz-date moved by a second", wantKind: sigv4.KindSignatureMismatch, req: post(func(r *http.Request) {
			d, _ := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
			r.Header.Set("X-Amz-Date", d.Add(-time.Second).Format("20060102T150405Z"))
			if d.Second() == 0 && d.Minute() == 0 && d.Hour() == 0 {
				t.Skip("signed at midnight; the date would change")
			}
		})},
		{name: "header removed from SignedHeaders", wantKind: sigv4.KindSignatureMismatch, req: post(func(r *http.Request) {
			editAuthorization(r, ";x-custom,", ",")
		})},
		{name: "signed header dropped from request", wantKind: sigv4.KindSignatureMismatch, req: post(func(r *http.Request) {
			r.Header.Del("X-Custom")
		})},
		{name: "query parameter added", wantKind: sigv4.KindSignatureMismatch, req: del(func(r *http.Request) {
			r.URL.RawQuery += "&tagKeys=d"
		})},
		{name: "path changed", wantKind: sigv4.KindSignatureMismatch, req: post(func(r *http.Request) {
			r.URL.Path = "/identities/DeleteWorkloadIdentity"
		})},
		{name: "method changed", wantKind: sigv4.KindSignatureMismatch, req: post(func(r *http.Request) {
			r.Method = http.MethodPut
		})},
		{name: "wrong X-Amz-Content-Sha256", wantKind: sigv4.KindSignatureMismatch, req: func(t *testing.T, base string) *http.Request {
			sum := sha256.Sum256([]byte("{}"))
			return newSigned(t, "POST", base+"/identities/GetWorkloadIdentity", jsonBody,
				http.Header{"X-Amz-Content-Sha256": {hex.EncodeToString(sum[:])}})
		}},

		{name: "missing Authorization", wantKind: sigv4.KindMissingAuth, req: post(func(r *http.Request) {
			r.Header.Del("Authorization")
		})},
		{name: "garbage Authorization", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			r.Header.Set("Authorization", "garbage!! Credential==/, ,")
		})},
		{name: "Bearer token", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
		})},
		{name: "truncated Authorization", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			r.Header.Set("Authorization", r.Header.Get("Authorization")[:60])
		})},
		{name: "duplicated Signature component", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a+", "+a[strings.Index(a, "Signature="):])
		})},
		{name: "duplicated Credential component", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			a := r.Header.Get("Authorization")
			cred := a[strings.Index(a, "Credential="):strings.Index(a, ",")]
			r.Header.Set("Authorization", a+", "+cred)
		})},
		{name: "unsorted SignedHeaders", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			editAuthorization(r, "host;x-amz-date;x-custom", "host;x-custom;x-amz-date")
		})},
		{name: "uppercase SignedHeaders", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			editAuthorization(r, "host;", "Host;")
		})},
		{name: "content-type removed from SignedHeaders", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			editAuthorization(r, "content-type;", "")
		})},
		{name: "host removed from SignedHeaders", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			editAuthorization(r, "host;", "")
		})},
		{name: "body without signed content-type", wantKind: sigv4.KindMalformed, req: func(t *testing.T, base string) *http.Request {
			r := newSigned(t, "POST", base+"/identities/GetWorkloadIdentity", "", nil)
			setBody(r, jsonBody) // unsigned body, no content-type
			return r
		}},
		{name: "uppercase hex Signature", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			a := r.Header.Get("Authorization")
			i := strings.Index(a, "Signature=") + len("Signature=")
			r.Header.Set("Authorization", a[:i]+strings.ToUpper(a[i:]))
		})},
		{name: "two Authorization headers", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
		})},
		{name: "missing X-Amz-Date", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			r.Header.Del("X-Amz-Date")
		})},
		{name: "X-Amz-Date in RFC 1123 form", wantKind: sigv4.KindMalformed, req: post(func(r *http.Request) {
			r.Header.Set("X-Amz-Date", time.Now().UTC().Format(http.TimeFormat))
		})},
		{name: "malformed query string", wantKind: sigv4.KindMalformed, req: del(func(r *http.Request) {
			r.URL.RawQuery += "&x=%zz"
		})},

		{name: "credential date differs from X-Amz-Date", wantKind: sigv4.KindWrongScope, req: post(func(r *http.Request) {
			d := r.Header.Get("X-Amz-Date")[:8]
			editAuthorization(r, "/"+d+"/", "/20200101/")
		})},
		{name: "wrong terminator", wantKind: sigv4.KindWrongScope, req: post(func(r *http.Request) {
			editAuthorization(r, "/aws4_request,", "/aws5_request,")
		})},

		{name: "SigV4a algorithm", wantKind: sigv4.KindUnsupported, req: post(func(r *http.Request) {
			editAuthorization(r, "AWS4-HMAC-SHA256 ", "AWS4-ECDSA-P256-SHA256 ")
		})},
		{name: "SigV2", wantKind: sigv4.KindUnsupported, req: post(func(r *http.Request) {
			r.Header.Set("Authorization", "AWS "+testAKID+":frJIUN8DYpKDtOLCwo//yllqDzg=")
		})},
		{name: "session token header", wantKind: sigv4.KindUnsupported, req: post(func(r *http.Request) {
			r.Header.Set("X-Amz-Security-Token", "FwoGZXIvYXdzEXAMPLE")
		})},
		{name: "presigned URL", wantKind: sigv4.KindUnsupported, req: func(t *testing.T, base string) *http.Request {
			req, err := http.NewRequest("GET", base+"/tags/"+testARNPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(nil)
			creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
			u, hdr, err := v4.NewSigner().PresignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), testService, testRegion, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			req, err = http.NewRequest("GET", u, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range hdr {
				if k != "Host" {
					req.Header[k] = vs
				}
			}
			return req
		}},
		{name: "presigned query next to Authorization", wantKind: sigv4.KindUnsupported, req: del(func(r *http.Request) {
			r.URL.RawQuery += "&X-Amz-Signature=" + strings.Repeat("0", 64)
		})},
		{name: "UNSIGNED-PAYLOAD", wantKind: sigv4.KindUnsupported, req: func(t *testing.T, base string) *http.Request {
			return newSigned(t, "POST", base+"/identities/GetWorkloadIdentity", jsonBody,
				http.Header{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, newVerifier(), "")
			resp, err := ts.Client().Do(tt.req(t, ts.URL))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			calls := ts.Calls()
			if len(calls) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(calls))
			}
			c := calls[0]
			if tt.wantKind == 0 {
				if c.err != nil || c.accessKeyID != testAKID {
					t.Fatalf("Verify = %q, %v; want %q, nil", c.accessKeyID, c.err, testAKID)
				}
				return
			}
			var e *sigv4.Error
			if !errors.As(c.err, &e) || e.Kind != tt.wantKind {
				t.Fatalf("Verify error = %v, want Kind %v", c.err, tt.wantKind)
			}
			if c.accessKeyID != "" {
				t.Errorf("Verify returned access key %q with an error", c.accessKeyID)
			}
			assertSafeMessage(t, e.Message)
			if sig := signatureOf(c.authorization); sig != "" && strings.Contains(e.Message, sig) {
				t.Errorf("message %q contains the signature", e.Message)
			}
		})
	}
}

func signatureOf(authorization string) string {
	_, sig, _ := strings.Cut(authorization, "Signature=")
	return sig
}

// serverSide turns a client request into what net/http's server hands a
// handler: it is written to the wire and parsed back.
func serverSide(t testing.TB, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, body
}

func verifyErr(t *testing.T, v *sigv4.Verifier, r *http.Request, body []byte) *sigv4.Error {
	t.Helper()
	id, err := v.Verify(r, body)
	if err == nil {
		t.Fatalf("Verify = %q, nil; want an error", id)
	}
	var e *sigv4.Error
	if !errors.As(err, &e) {
		t.Fatalf("Verify error %v (%T) is not a *sigv4.Error", err, err)
	}
	return e
}

func TestVerifyInProcess(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	signedAt := func(t *testing.T, secret string) (*http.Request, []byte) {
		req, err := http.NewRequest("POST", "http://behalf.example:8080/identities/GetWorkloadIdentity", strings.NewReader(jsonBody))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		sign(t, req, []byte(jsonBody), secret, at)
		return serverSide(t, req)
	}
	fixed := func(v *sigv4.Verifier) *sigv4.Verifier {
		v.Now = func() time.Time { return at }
		return v
	}

	t.Run("accepts and needs no network", func(t *testing.T) {
		r, body := signedAt(t, testSecret)
		if id, err := fixed(newVerifier()).Verify(r, body); err != nil || id != testAKID {
			t.Fatalf("Verify = %q, %v", id, err)
		}
	})
	t.Run("skew boundaries", func(t *testing.T) {
		r, body := signedAt(t, testSecret)
		for _, tc := range []struct {
			offset time.Duration
			ok     bool
		}{{5 * time.Minute, true}, {-5 * time.Minute, true}, {5*time.Minute + time.Second, false}, {-5*time.Minute - time.Second, false}} {
			v := newVerifier()
			v.Now = func() time.Time { return at.Add(tc.offset) }
			_, err := v.Verify(r, body)
			var e *sigv4.Error
			if tc.ok != (err == nil) || !tc.ok && (!errors.As(err, &e) || e.Kind != sigv4.KindTimeSkew) {
				t.Errorf("offset %v: Verify error = %v, want ok=%v or KindTimeSkew", tc.offset, err, tc.ok)
			}
		}
	})
	t.Run("custom MaxSkew", func(t *testing.T) {
		r, body := signedAt(t, testSecret)
		v := newVerifier()
		v.MaxSkew = time.Minute
		v.Now = func() time.Time { return at.Add(2 * time.Minute) }
		if e := verifyErr(t, v, r, body); e.Kind != sigv4.KindTimeSkew {
			t.Fatalf("Kind = %v", e.Kind)
		}
	})
	t.Run("missing Host", func(t *testing.T) {
		r, body := signedAt(t, testSecret)
		r.Host = ""
		if e := verifyErr(t, fixed(newVerifier()), r, body); e.Kind != sigv4.KindMalformed {
			t.Fatalf("Kind = %v", e.Kind)
		}
	})
	t.Run("body read by caller differs", func(t *testing.T) {
		r, _ := signedAt(t, testSecret)
		if e := verifyErr(t, fixed(newVerifier()), r, []byte(`{"name":"other"}`)); e.Kind != sigv4.KindSignatureMismatch {
			t.Fatalf("Kind = %v", e.Kind)
		}
	})
	t.Run("lookup failure is an internal error", func(t *testing.T) {
		r, body := signedAt(t, testSecret)
		boom := errors.New("database is down")
		v := fixed(newVerifier())
		v.Lookup = func(context.Context, string) (string, error) { return "", boom }
		_, err := v.Verify(r, body)
		var e *sigv4.Error
		if !errors.Is(err, boom) || errors.As(err, &e) {
			t.Fatalf("Verify error = %v; want it to wrap the Lookup error and not be a *sigv4.Error", err)
		}
	})
	t.Run("empty secret is an internal error", func(t *testing.T) {
		r, body := signedAt(t, testSecret)
		v := fixed(newVerifier())
		v.Lookup = func(context.Context, string) (string, error) { return "", nil }
		_, err := v.Verify(r, body)
		var e *sigv4.Error
		if err == nil || errors.As(err, &e) {
			t.Fatalf("Verify error = %v; want a non-*sigv4.Error", err)
		}
	})
	t.Run("misconfigured verifier fails closed", func(t *testing.T) {
		r, body := signedAt(t, testSecret)
		for _, v := range []*sigv4.Verifier{
			{Regions: []string{testRegion}, Lookup: lookup},
			{Service: testService, Lookup: lookup},
			{Service: testService, Regions: []string{testRegion}},
		} {
			_, err := v.Verify(r, body)
			var e *sigv4.Error
			if err == nil || errors.As(err, &e) {
				t.Errorf("Verify error = %v; want a non-*sigv4.Error", err)
			}
		}
	})
	t.Run("rotated secret is not served from the key cache", func(t *testing.T) {
		const rotated = "rotated/secret/0123456789abcdefEXAMPLE"
		current := testSecret
		v := fixed(newVerifier())
		v.Lookup = func(context.Context, string) (string, error) { return current, nil }
		r, body := signedAt(t, testSecret)
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
		current = rotated
		if e := verifyErr(t, v, r, body); e.Kind != sigv4.KindSignatureMismatch {
			t.Fatalf("old secret after rotation: Kind = %v", e.Kind)
		}
		r, body = signedAt(t, rotated)
		if _, err := v.Verify(r, body); err != nil {
			t.Fatalf("new secret after rotation: %v", err)
		}
	})
	t.Run("second region accepted", func(t *testing.T) {
		req, err := http.NewRequest("POST", "http://behalf.example/identities/GetWorkloadIdentity", strings.NewReader(jsonBody))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		sum := sha256.Sum256([]byte(jsonBody))
		creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), testService, "eu-west-1", at); err != nil {
			t.Fatal(err)
		}
		r, body := serverSide(t, req)
		v := fixed(newVerifier())
		if e := verifyErr(t, v, r, body); e.Kind != sigv4.KindWrongScope {
			t.Fatalf("Kind = %v", e.Kind)
		}
		v = fixed(newVerifier())
		v.Regions = []string{testRegion, "eu-west-1"}
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	})
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		kind            sigv4.Kind
		unauthenticated bool
	}{
		{sigv4.KindMissingAuth, true},
		{sigv4.KindMalformed, true},
		{sigv4.KindUnknownKey, true},
		{sigv4.KindWrongScope, false},
		{sigv4.KindTimeSkew, false},
		{sigv4.KindSignatureMismatch, false},
		{sigv4.KindUnsupported, false},
	}
	for _, tt := range tests {
		e := &sigv4.Error{Kind: tt.kind, Message: "m"}
		if got := e.Unauthenticated(); got != tt.unauthenticated {
			t.Errorf("%v: Unauthenticated() = %v, want %v", tt.kind, got, tt.unauthenticated)
		}
		if s := tt.kind.String(); s == "" || s == "unknown kind" {
			t.Errorf("Kind(%d).String() = %q", tt.kind, s)
		}
		if want := "sigv4: " + tt.kind.String() + ": m"; e.Error() != want {
			t.Errorf("Error() = %q, want %q", e.Error(), want)
		}
	}
}

// TestVerifyPayloadHash: a request verified by the SHA-256 of its body,
// read by another party, passes every check Verify makes, and a hash of
// another body is a signature mismatch.
func TestVerifyPayloadHash(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	hashOf := func(body string) string {
		sum := sha256.Sum256([]byte(body))
		return hex.EncodeToString(sum[:])
	}
	signedAt := func(t *testing.T, method, body string, header http.Header) *http.Request {
		req, err := http.NewRequest(method, "http://behalf.example:8080/runtimes/"+testARNPath+"/invocations?qualifier=DEFAULT", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range header {
			req.Header[k] = vs
		}
		sign(t, req, []byte(body), testSecret, at)
		r, _ := serverSide(t, req)
		return r
	}
	v := newVerifier()
	v.Now = func() time.Time { return at }
	json := http.Header{"Content-Type": {"application/json"}}

	r := signedAt(t, "POST", jsonBody, json)
	if id, err := v.VerifyPayloadHash(r, hashOf(jsonBody)); err != nil || id != testAKID {
		t.Fatalf("VerifyPayloadHash = %q, %v", id, err)
	}
	if id, err := v.VerifyPayloadHash(signedAt(t, "GET", "", nil), hashOf("")); err != nil || id != testAKID {
		t.Fatalf("an empty body: VerifyPayloadHash = %q, %v", id, err)
	}
	late := newVerifier()
	late.Now = func() time.Time { return at.Add(5*time.Minute + time.Second) }
	for _, tc := range []struct {
		name string
		v    *sigv4.Verifier
		r    *http.Request
		hash string
		want sigv4.Kind
	}{
		{"another body", v, r, hashOf(`{"name":"other"}`), sigv4.KindSignatureMismatch},
		{"no body", v, r, hashOf(""), sigv4.KindSignatureMismatch},
		{"uppercase hash", v, r, strings.ToUpper(hashOf(jsonBody)), sigv4.KindMalformed},
		{"short hash", v, r, hashOf(jsonBody)[:63], sigv4.KindMalformed},
		{"no hash", v, r, "", sigv4.KindMalformed},
		{"outside the clock skew", late, r, hashOf(jsonBody), sigv4.KindTimeSkew},
		{"a body without a signed Content-Type", v, signedAt(t, "POST", "x", nil), hashOf("x"), sigv4.KindMalformed},
		{"X-Amz-Content-Sha256 of another body", v, signedAt(t, "POST", jsonBody, http.Header{"Content-Type": {"application/json"},
			"X-Amz-Content-Sha256": {hashOf("other")}}), hashOf(jsonBody), sigv4.KindSignatureMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.v.VerifyPayloadHash(tc.r, tc.hash)
			var e *sigv4.Error
			if !errors.As(err, &e) || e.Kind != tc.want {
				t.Fatalf("VerifyPayloadHash = %q, %v; want Kind %v", id, err, tc.want)
			}
		})
	}
}
