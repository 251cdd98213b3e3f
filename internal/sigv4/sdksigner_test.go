package sigv4_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/sigv4"
)

var fuzzMethods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}

// Headers that net/http writes or reads specially, or that Verify gives a
// meaning, so a fuzzed header by these names says nothing about
// canonicalization.
var specialHeaders = map[string]bool{
	"Authorization": true, "X-Amz-Date": true, "X-Amz-Security-Token": true, "X-Amz-Content-Sha256": true,
	"Host": true, "User-Agent": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true,
	"Expect": true, "Connection": true, "Te": true, "Upgrade": true, "Keep-Alive": true, "Proxy-Connection": true,
}

// FuzzVerifyMatchesSDKSigner is a differential test: whatever request the
// SDK's own signer signs must verify after a trip through the HTTP/1.1 wire
// format, whatever its path, query, extra header and body.
func FuzzVerifyMatchesSDKSigner(f *testing.F) {
	f.Add(uint8(1), "identities/CreateWorkloadIdentity", "", "Amz-Sdk-Request", "attempt=1; max=3", []byte(`{"name":"a"}`))
	f.Add(uint8(0), "tags/"+testARNPath, "", "Amz-Sdk-Invocation-Id", "6c5a2b0e-8f3b-4a51-9f7e-0b4c2f4e2f11", []byte(nil))
	f.Add(uint8(3), "tags/"+testARNPath, "tagKeys=a%2Fb&tagKeys=a-b&tagKeys=x+y&tagKeys=%20", "X-Custom", "  a   b  ", []byte(nil))
	f.Add(uint8(2), "a b/%7e~/..//./%2F%252F", "b=2&a=1&a=&c", "x_y.z", "\u00a0nbsp\u00a0", []byte("{}"))
	f.Add(uint8(4), "ünïcode/$&'()*+,;=:@", "k=v;w&é=ü", "X-Tab", "a\t \tb", []byte("x"))
	f.Add(uint8(5), "", "?", "", "", []byte(nil))

	at := time.Date(2026, 11, 22, 23, 59, 59, 0, time.UTC)
	f.Fuzz(func(t *testing.T, m uint8, path, query, name, value string, body []byte) {
		url := "http://behalf.example:8080/" + path
		if query != "" {
			url += "?" + query
		}
		req, err := http.NewRequest(fuzzMethods[int(m)%len(fuzzMethods)], url, bytes.NewReader(body))
		if err != nil || req.URL.Host != "behalf.example:8080" {
			t.Skip("not a request URL")
		}
		req.Header.Set("Content-Type", "application/json")
		if fuzzableHeader(name, value) {
			req.Header.Add(name, value)
		}
		sign(t, req, body, testSecret, at)

		var wire bytes.Buffer
		if err := req.Write(&wire); err != nil {
			t.Skip("not writable")
		}
		r, err := http.ReadRequest(bufio.NewReader(&wire))
		if err != nil {
			t.Skipf("net/http cannot read it back: %v", err)
		}
		got, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}

		v := newVerifier()
		v.Now = func() time.Time { return at }
		if _, err := v.Verify(r, got); err != nil {
			t.Fatalf("Verify(%s %s, header %q=%q): %v\nwire:\n%s", r.Method, r.RequestURI, name, value, err, wireHead(req))
		}
	})
}

func fuzzableHeader(name, value string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	if len(name) > 128 || specialHeaders[textproto.CanonicalMIMEHeaderKey(name)] {
		return false
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func wireHead(req *http.Request) string {
	var b strings.Builder
	b.WriteString(req.Method + " " + req.URL.RequestURI() + "\n")
	req.Header.Write(&b)
	return b.String()
}

// BenchmarkVerify measures one verification of a typical SDK request (the
// derived signing key is cached after the first iteration, as in a server).
func BenchmarkVerify(b *testing.B) {
	at := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	cases := []struct {
		name, method, url, body string
	}{
		{"POST-JSON", "POST", "http://127.0.0.1:8080/identities/oauth2/token",
			`{"oauth2Flow":"M2M","resourceCredentialProviderName":"github","scopes":["repo","read:user"],"workloadIdentityToken":"eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJteS1hZ2VudCJ9.c2lnbmF0dXJl"}`},
		{"DELETE-escaped-path-query", "DELETE", "http://127.0.0.1:8080/tags/" + testARNPath + "?tagKeys=a%2Fb&tagKeys=a-b&tagKeys=team", ""},
	}
	for _, tc := range cases {
		req, err := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
		if err != nil {
			b.Fatal(err)
		}
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Amz-Sdk-Invocation-Id", "6c5a2b0e-8f3b-4a51-9f7e-0b4c2f4e2f11")
		req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
		sign(b, req, []byte(tc.body), testSecret, at)
		r, body := serverSide(b, req)
		v := &sigv4.Verifier{Service: testService, Regions: []string{testRegion}, Lookup: lookup, Now: func() time.Time { return at }}
		if _, err := v.Verify(r, body); err != nil {
			b.Fatal(err)
		}

		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(r, body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Verify(r, body); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
