package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/server"
	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// testCA issues certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a certificate for 127.0.0.1 and its key as PEM files.
func (ca *testCA) issue(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "behalf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// writeFile replaces path atomically, as certificate renewal tools do, and
// moves its modification time on so a change is seen even on file systems
// with coarse timestamps.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	var mtime time.Time
	if fi, err := os.Stat(path); err == nil {
		mtime = fi.ModTime().Add(time.Second)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(tmp, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// controlOverTLS is the official control-plane client trusting only pool,
// on a fresh connection.
func controlOverTLS(url string, pool *x509.CertPool) *bedrockagentcorecontrol.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return bedrockagentcorecontrol.NewFromConfig(behalftest.AWSConfig(behalftest.AdminKeyID, behalftest.AdminSecret), func(o *bedrockagentcorecontrol.Options) {
		o.BaseEndpoint = aws.String(url)
		o.HTTPClient = &http.Client{Transport: tr}
	})
}

func TestNativeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first, second := newTestCA(t, "first CA"), newTestCA(t, "second CA")
	first.issue(t, certFile, keyFile)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := config.Defaults()
	f.DataDir, f.Listen, f.Log.Level = dir, ln.Addr().String(), "warn"
	f.TLS = config.TLSFile{CertFile: certFile, KeyFile: keyFile}
	cfg, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://" + ln.Addr().String(); cfg.PublicURL != want {
		t.Errorf("public URL = %s, want %s", cfg.PublicURL, want)
	}
	getenv := func(k string) string {
		return map[string]string{"BEHALF_BOOTSTRAP_ACCESS_KEY_ID": behalftest.AdminKeyID, "BEHALF_BOOTSTRAP_SECRET_ACCESS_KEY": behalftest.AdminSecret}[k]
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler), server.Options{Getenv: getenv, CertificateCheckInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})

	list := func(pool *x509.CertPool) error {
		_, err := controlOverTLS(cfg.PublicURL, pool).ListWorkloadIdentities(context.Background(), &bedrockagentcorecontrol.ListWorkloadIdentitiesInput{})
		return err
	}
	if err := list(first.pool); err != nil {
		t.Fatalf("over https: %v", err)
	}
	if err := list(second.pool); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client trusting another CA: %v", err)
	}
	res, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: %d", res.StatusCode)
		}
	}

	// A replaced pair is served without a restart.
	second.issue(t, certFile, keyFile)
	if err := list(second.pool); err != nil {
		t.Fatalf("after the certificate was replaced: %v", err)
	}

	// A broken replacement is refused and the current pair kept.
	writeFile(t, keyFile, []byte("not a key"))
	if err := list(second.pool); err != nil {
		t.Fatalf("after a broken key was written: %v", err)
	}

	// TLS 1.1 is refused.
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: second.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}) //nolint:gosec // G402: the old version is what is tested
	if err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
}

func TestTLSConfigMustLoad(t *testing.T) {
	dir := t.TempDir()
	f := config.Defaults()
	f.DataDir = dir
	f.TLS = config.TLSFile{CertFile: filepath.Join(dir, "missing.crt")}
	if _, err := f.Validate(); err == nil || !strings.Contains(err.Error(), "certFile and keyFile must be set together") {
		t.Errorf("cert without key: %v", err)
	}
	f.TLS.KeyFile = filepath.Join(dir, "missing.key")
	if _, err := f.Validate(); err == nil || !strings.Contains(err.Error(), "tls: cannot load") {
		t.Errorf("missing files: %v", err)
	}
}
