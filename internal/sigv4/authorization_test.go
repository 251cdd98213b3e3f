package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	docExample = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
	sig64      = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
	cred       = "Credential=AKIAIOSFODNN7EXAMPLE/20261122/us-east-1/bedrock-agentcore/aws4_request"
	signedHdrs = "SignedHeaders=content-type;host;x-amz-date"
)

func TestParseAuthorization(t *testing.T) {
	valid := []struct {
		name, header string
		want         authorization
	}{
		{"AWS documentation example", docExample, authorization{
			AccessKeyID: "AKIAIOSFODNN7EXAMPLE", Date: "20130524", Region: "us-east-1", Service: "s3",
			Terminator: "aws4_request", SignedHeaders: "host;range;x-amz-date", Signature: sig64}},
		{"components in another order, no space after commas", "AWS4-HMAC-SHA256 Signature=" + sig64 + "," + signedHdrs + "," + cred, authorization{
			AccessKeyID: "AKIAIOSFODNN7EXAMPLE", Date: "20261122", Region: "us-east-1", Service: "bedrock-agentcore",
			Terminator: "aws4_request", SignedHeaders: "content-type;host;x-amz-date", Signature: sig64}},
		{"several spaces after commas, 128-char key id, other terminator", "AWS4-HMAC-SHA256 Credential=" + strings.Repeat("A1", 64) + "/20261122/r/s/x_y,   " + signedHdrs + ",  Signature=" + sig64, authorization{
			AccessKeyID: strings.Repeat("A1", 64), Date: "20261122", Region: "r", Service: "s",
			Terminator: "x_y", SignedHeaders: "content-type;host;x-amz-date", Signature: sig64}},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAuthorization(tt.header)
			if err != nil || got != tt.want {
				t.Fatalf("parseAuthorization = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}

	invalid := []struct {
		name, header string
		want         Kind
	}{
		{"empty", "", KindMalformed},
		{"algorithm only", "AWS4-HMAC-SHA256", KindMalformed},
		{"algorithm and space", "AWS4-HMAC-SHA256 ", KindMalformed},
		{"lowercase algorithm", strings.Replace(docExample, "AWS4-HMAC-SHA256", "aws4-hmac-sha256", 1), KindMalformed},
		{"Bearer", "Bearer abc.def.ghi", KindMalformed},
		{"SigV4a", strings.Replace(docExample, "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1), KindUnsupported},
		{"two spaces after algorithm", strings.Replace(docExample, " ", "  ", 1), KindMalformed},
		{"tab separator", strings.Replace(docExample, ", ", ",\t", 1), KindMalformed},
		{"space before comma", strings.Replace(docExample, ", ", " , ", 1), KindMalformed},
		{"trailing comma", docExample + ",", KindMalformed},
		{"trailing space", docExample + " ", KindMalformed},
		{"missing Signature", "AWS4-HMAC-SHA256 " + cred + ", " + signedHdrs, KindMalformed},
		{"missing Credential", "AWS4-HMAC-SHA256 " + signedHdrs + ", Signature=" + sig64, KindMalformed},
		{"duplicate Signature", docExample + ", Signature=" + sig64, KindMalformed},
		{"duplicate Credential replacing SignedHeaders", "AWS4-HMAC-SHA256 " + cred + ", " + cred + ", Signature=" + sig64, KindMalformed},
		{"unknown component", "AWS4-HMAC-SHA256 " + cred + ", " + signedHdrs + ", Sig=" + sig64, KindMalformed},
		{"lowercase component name", "AWS4-HMAC-SHA256 credential=" + cred[len("Credential="):] + ", " + signedHdrs + ", Signature=" + sig64, KindMalformed},
		{"space around =", "AWS4-HMAC-SHA256 Credential = " + cred[len("Credential="):] + ", " + signedHdrs + ", Signature=" + sig64, KindMalformed},
		{"short key id", strings.Replace(docExample, "AKIAIOSFODNN7EXAMPLE", "AKIA1234", 1), KindMalformed},
		{"lowercase key id", strings.Replace(docExample, "AKIAIOSFODNN7EXAMPLE", "akiaiosfodnn7example", 1), KindMalformed},
		{"129-char key id", strings.Replace(docExample, "AKIAIOSFODNN7EXAMPLE", strings.Repeat("A", 129), 1), KindMalformed},
		{"short date", strings.Replace(docExample, "20130524", "2013052", 1), KindMalformed},
		{"uppercase region", strings.Replace(docExample, "us-east-1", "US-EAST-1", 1), KindMalformed},
		{"empty service", strings.Replace(docExample, "/s3/", "//", 1), KindMalformed},
		{"extra scope part", strings.Replace(docExample, "/aws4_request", "/aws4_request/x", 1), KindMalformed},
		{"missing terminator", strings.Replace(docExample, "/aws4_request", "", 1), KindMalformed},
		{"unsorted SignedHeaders", strings.Replace(docExample, "host;range", "range;host", 1), KindMalformed},
		{"repeated signed header", strings.Replace(docExample, "host;range", "host;host;range", 1), KindMalformed},
		{"uppercase signed header", strings.Replace(docExample, "range", "Range", 1), KindMalformed},
		{"empty signed header", strings.Replace(docExample, "host;range", "host;;range", 1), KindMalformed},
		{"trailing ; in SignedHeaders", strings.Replace(docExample, "x-amz-date", "x-amz-date;", 1), KindMalformed},
		{"no host signed", strings.Replace(docExample, "host;", "", 1), KindMalformed},
		{"no x-amz-date signed", strings.Replace(docExample, ";x-amz-date", "", 1), KindMalformed},
		{"short signature", strings.Replace(docExample, sig64, sig64[:63], 1), KindMalformed},
		{"uppercase signature", strings.Replace(docExample, sig64, strings.ToUpper(sig64), 1), KindMalformed},
		{"too long", "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;" + strings.Repeat("x", maxAuthorizationLen) + ";x-amz-date, Signature=" + sig64, KindMalformed},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			a, err := parseAuthorization(tt.header)
			var e *Error
			if !errors.As(err, &e) || e.Kind != tt.want {
				t.Fatalf("parseAuthorization = %+v, %v; want Kind %v", a, err, tt.want)
			}
		})
	}
}

// Independent statement of the strict rules, used as the fuzz oracle.
var (
	schemeRE     = regexp.MustCompile(`^AWS4-HMAC-SHA256 (.*)$`)
	separatorRE  = regexp.MustCompile(`, *`)
	credentialRE = regexp.MustCompile(`^Credential=([A-Z0-9]{16,128})/([0-9]{8})/([a-z0-9-]{1,64})/([a-z0-9-]{1,64})/([a-z0-9_]{1,32})$`)
	signedHdrsRE = regexp.MustCompile(`^SignedHeaders=([a-z0-9._-]{1,128}(?:;[a-z0-9._-]{1,128})*)$`)
	signatureRE  = regexp.MustCompile(`^Signature=([0-9a-f]{64})$`)
)

// strictParse accepts exactly the headers parseAuthorization must accept.
func strictParse(h string) (authorization, bool) {
	var a authorization
	m := schemeRE.FindStringSubmatch(h)
	if len(h) > maxAuthorizationLen || m == nil {
		return a, false
	}
	parts := separatorRE.Split(m[1], -1)
	if len(parts) != 3 {
		return a, false
	}
	var seen [3]int
	for _, p := range parts {
		switch {
		case credentialRE.MatchString(p):
			c := credentialRE.FindStringSubmatch(p)
			a.AccessKeyID, a.Date, a.Region, a.Service, a.Terminator = c[1], c[2], c[3], c[4], c[5]
			seen[0]++
		case signedHdrsRE.MatchString(p):
			a.SignedHeaders = signedHdrsRE.FindStringSubmatch(p)[1]
			seen[1]++
		case signatureRE.MatchString(p):
			a.Signature = signatureRE.FindStringSubmatch(p)[1]
			seen[2]++
		default:
			return a, false
		}
	}
	if seen != [3]int{1, 1, 1} || len(a.SignedHeaders) > maxSignedHeadersLen {
		return a, false
	}
	names := strings.Split(a.SignedHeaders, ";")
	if len(names) > maxSignedHeaders || !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) ||
		!slices.Contains(names, "host") || !slices.Contains(names, "x-amz-date") {
		return a, false
	}
	return a, true
}

// realHeaders returns Authorization headers produced by the SDK signer.
func realHeaders(f *testing.F) []string {
	at := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	creds := aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	var out []string
	for _, tc := range []struct{ method, url, body string }{
		{"POST", "http://127.0.0.1:8080/identities/CreateWorkloadIdentity", `{"name":"a"}`},
		{"GET", "http://127.0.0.1:8080/tags/arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A1%3Ax", ""},
		{"DELETE", "https://behalf.example/base/tags/x?tagKeys=a&tagKeys=b", ""},
	} {
		req, err := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
		if err != nil {
			f.Fatal(err)
		}
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Amz-Sdk-Invocation-Id", "6c5a2b0e-8f3b-4a51-9f7e-0b4c2f4e2f11")
		req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
		sum := sha256.Sum256([]byte(tc.body))
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "bedrock-agentcore", "us-east-1", at); err != nil {
			f.Fatal(err)
		}
		out = append(out, req.Header.Get("Authorization"))
	}
	return out
}

func FuzzParseAuthorization(f *testing.F) {
	for _, h := range realHeaders(f) {
		f.Add(h)
		f.Add(strings.ReplaceAll(h, ", ", ","))
		f.Add(strings.Replace(h, "host;", "", 1))
		f.Add(h + ", " + h[strings.Index(h, "Signature="):])
	}
	f.Add(docExample)
	f.Add("AWS4-HMAC-SHA256 Signature=" + sig64 + "," + signedHdrs + "," + cred)
	f.Add("AWS4-ECDSA-P256-SHA256 " + cred + ", " + signedHdrs + ", Signature=" + sig64)
	f.Add("Bearer abc")
	f.Add("")
	f.Add("AWS4-HMAC-SHA256 Credential=/, SignedHeaders=;, Signature=")

	f.Fuzz(func(t *testing.T, h string) {
		got, err := parseAuthorization(h)
		want, ok := strictParse(h)
		if err == nil {
			if !ok {
				t.Fatalf("accepted %q, which breaks the strict rules", h)
			}
			if got != want {
				t.Fatalf("parse(%q) = %+v, want %+v", h, got, want)
			}
			if !hasSignedHeader(got.SignedHeaders, "host") || !hasSignedHeader(got.SignedHeaders, "x-amz-date") {
				t.Fatalf("hasSignedHeader disagrees for %q", got.SignedHeaders)
			}
			return
		}
		if ok {
			t.Fatalf("rejected %q, which follows the strict rules: %v", h, err)
		}
		var e *Error
		if !errors.As(err, &e) || (e.Kind != KindMalformed && e.Kind != KindUnsupported) || e.Message == "" {
			t.Fatalf("parse(%q) error = %#v, want a Malformed or Unsupported *Error", h, err)
		}
		if strings.ContainsAny(e.Message, "\r\n") {
			t.Fatalf("message %q has a line break", e.Message)
		}
	})
}

func TestHasSignedHeader(t *testing.T) {
	const list = "amz-sdk-request;content-type;host;x-amz-date"
	for _, name := range strings.Split(list, ";") {
		if !hasSignedHeader(list, name) {
			t.Errorf("hasSignedHeader(%q) = false", name)
		}
	}
	for _, name := range []string{"a", "content", "content-typ", "content-type2", "zz", ""} {
		if hasSignedHeader(list, name) {
			t.Errorf("hasSignedHeader(%q) = true", name)
		}
	}
}

func TestSignedHeaders(t *testing.T) {
	const sig64 = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	const h = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + sig64
	got, err := SignedHeaders(h)
	if err != nil || strings.Join(got, ",") != "content-type,host,x-amz-date" {
		t.Fatalf("SignedHeaders = %v, %v", got, err)
	}
	for _, bad := range []string{"", "Bearer x", strings.Replace(h, "content-type;host", "host;content-type", 1), strings.Replace(h, "host;", "", 1)} {
		var e *Error
		if got, err := SignedHeaders(bad); !errors.As(err, &e) || got != nil {
			t.Errorf("SignedHeaders(%q) = %v, %v; want an *Error", bad, got, err)
		}
	}
}
