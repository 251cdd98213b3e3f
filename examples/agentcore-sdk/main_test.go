package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// The example runs as the README says: credentials from the admin
// credentials file through the SDK's default chain.
func TestExample(t *testing.T) {
	s := behalftest.Start(t, behalftest.Backends[0], behalftest.Options{})
	creds := filepath.Join(t.TempDir(), "admin-credentials")
	os.WriteFile(creds, []byte("[default]\naws_access_key_id = "+behalftest.AdminKeyID+"\naws_secret_access_key = "+behalftest.AdminSecret+"\n"), 0o600)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), cfg, s.URL, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "now: 1 workload identities, 1 OAuth2 providers, 1 API-key providers") {
		t.Fatalf("first run:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), cfg, s.URL, &out); err != nil {
		t.Fatalf("second run (resources exist): %v", err)
	}
}
