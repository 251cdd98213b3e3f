// Package fakesecretsmanager is a fake AWS Secrets Manager for tests: no
// Secrets Manager server runs here, so this one speaks the service's
// protocol (awsJson1_1) for GetSecretValue, the one operation behalf
// calls, on a loopback listener. It checks each call's SigV4 signature
// (service secretsmanager) with behalf's own verifier, so a test proves
// the official client signed with credentials from its default chain.
package fakesecretsmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/sigv4"
)

// Account is the account id in the fake's ARNs.
const Account = "123456789012"

// The access key the fake accepts by default.
const (
	KeyID     = "AKIDSECRETSREADER000"
	SecretKey = "secrets-reader-secret-key-0123456789"
)

// Server is a running fake.
type Server struct {
	URL    string
	Region string
	srv    *httptest.Server
	verify *sigv4.Verifier

	mu      sync.Mutex
	secrets map[string]*secret // by name
	down    bool
	calls   atomic.Int64
}

type secret struct {
	value  *string
	binary []byte
	deny   bool
	arn    string
}

// Start runs a fake in region until the test ends. It accepts calls
// signed with KeyID, which the default AWS credential chain then finds
// in the environment (Environment).
func Start(t testing.TB, region string) *Server {
	t.Helper()
	Environment(t, KeyID, SecretKey)
	s := &Server{Region: region, secrets: map[string]*secret{}}
	s.verify = &sigv4.Verifier{Service: "secretsmanager", Regions: []string{region},
		Lookup: func(_ context.Context, id string) (string, error) {
			if id != KeyID {
				return "", sigv4.ErrUnknownKey
			}
			return SecretKey, nil
		}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Environment makes the default AWS credential chain find keyID and
// secret in the environment, and nothing in shared files or at a metadata
// service.
func Environment(t testing.TB, keyID, secret string) {
	t.Setenv("AWS_ACCESS_KEY_ID", keyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// ARN is the ARN of the secret named name.
func (s *Server) ARN(name string) string {
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", s.Region, Account, name)
}

// Put stores (or replaces) the secret named name with a SecretString.
func (s *Server) Put(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name] = &secret{value: &value, arn: s.ARN(name)}
}

// PutBinary stores the secret named name with a SecretBinary.
func (s *Server) PutBinary(name string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name] = &secret{binary: value, arn: s.ARN(name)}
}

// Deny makes reading the secret named name an AccessDeniedException, as
// an IAM policy would.
func (s *Server) Deny(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec, ok := s.secrets[name]; ok {
		sec.deny = true
	}
}

// SetDown makes every call fail with InternalServiceError (status 500),
// an outage, or serve again.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Calls counts the GetSecretValue calls received, signed or not.
func (s *Server) Calls() int64 { return s.calls.Load() }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
		fail(w, http.StatusBadRequest, "InvalidRequestException", "only GetSecretValue is served")
		return
	}
	s.calls.Add(1)
	if _, err := s.verify.Verify(r, body); err != nil {
		fail(w, http.StatusBadRequest, "UnrecognizedClientException", err.Error())
		return
	}
	var in struct{ SecretId string } //nolint:revive // the member's name on the wire
	if err := json.Unmarshal(body, &in); err != nil || in.SecretId == "" {
		fail(w, http.StatusBadRequest, "InvalidParameterException", "SecretId is required")
		return
	}
	s.mu.Lock()
	down := s.down
	var found *secret
	for name, sec := range s.secrets {
		if in.SecretId == name || in.SecretId == sec.arn {
			found = sec
		}
	}
	s.mu.Unlock()
	switch {
	case down:
		fail(w, http.StatusInternalServerError, "InternalServiceError", "the fake is down")
	case found == nil:
		fail(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	case found.deny:
		fail(w, http.StatusBadRequest, "AccessDeniedException", "User is not authorized to perform: secretsmanager:GetSecretValue")
	default:
		out := map[string]any{"ARN": found.arn, "Name": strings.TrimSuffix(found.arn[strings.LastIndex(found.arn, ":")+1:], "-AbCdEf"),
			"VersionId": "00000000-0000-0000-0000-000000000001", "VersionStages": []string{"AWSCURRENT"},
			"CreatedDate": float64(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())}
		if found.value != nil {
			out["SecretString"] = *found.value
		} else {
			out["SecretBinary"] = found.binary // base64, as encoding/json writes []byte
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(out)
	}
}

func fail(w http.ResponseWriter, status int, typ, message string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": message})
}
