package secretsource_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/behalf-dev/behalf/internal/egress"
	"github.com/behalf-dev/behalf/internal/secretsource"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/testutil/fakesecretsmanager"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

func TestMember(t *testing.T) {
	for _, tc := range []struct {
		doc, key, want string
		reason         secretsource.Reason
	}{
		{`{"clientSecret":"s3cr3t","other":"x"}`, "clientSecret", "s3cr3t", ""},
		{` { "a" : {"nested": [1, 2]}, "k": "v\u00e9\n" } `, "k", "v\u00e9\n", ""},
		{`{"clientSecret":"s"}`, "ClientSecret", "", secretsource.KeyAbsent},
		{`{}`, "k", "", secretsource.KeyAbsent},
		{`{"k":1}`, "k", "", secretsource.NotString},
		{`{"k":""}`, "k", "", secretsource.NotString},
		{`{"k":null}`, "k", "", secretsource.NotString},
		{`{"k":["v"]}`, "k", "", secretsource.NotString},
		{`{"k":"a","k":"b"}`, "k", "", secretsource.NotJSONObject},
		{`{"x":"a","x":"b","k":"v"}`, "k", "", secretsource.NotJSONObject},
		{`["k","v"]`, "k", "", secretsource.NotJSONObject},
		{`"v"`, "k", "", secretsource.NotJSONObject},
		{`plain-secret`, "k", "", secretsource.NotJSONObject},
		{``, "k", "", secretsource.NotJSONObject},
		{`{"k":"v"} {"k":"w"}`, "k", "", secretsource.NotJSONObject},
		{`{"k":"v"`, "k", "", secretsource.NotJSONObject},
		{`{"k":"v",}`, "k", "", secretsource.NotJSONObject},
	} {
		got, reason := secretsource.Member([]byte(tc.doc), tc.key)
		if string(got) != tc.want || reason != tc.reason {
			t.Errorf("Member(%s, %q) = %q, %q; want %q, %q", tc.doc, tc.key, got, reason, tc.want, tc.reason)
		}
	}
}

// FuzzMember: Member never panics, and what it returns is what
// encoding/json reads from the same document.
func FuzzMember(f *testing.F) {
	for _, seed := range []string{`{"k":"v"}`, `{"k":"v","k":"w"}`, `{"a":[1,{"b":"c"}],"k":"\ud83d\ude00"}`, `{"k":1}`, `[]`, `{`} {
		f.Add([]byte(seed), "k")
	}
	f.Fuzz(func(t *testing.T, doc []byte, key string) {
		got, reason := secretsource.Member(doc, key)
		if reason != "" {
			if got != nil {
				t.Fatalf("a value with reason %s", reason)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			t.Fatalf("Member accepted a document encoding/json refuses: %v", err)
		}
		if s, ok := m[key].(string); !ok || s != string(got) || s == "" {
			t.Fatalf("Member = %q, encoding/json has %#v", got, m[key])
		}
	})
}

func TestIsFile(t *testing.T) {
	for id, want := range map[string]bool{
		"file:/run/secrets/a.json": true, "/run/secrets/a.json": true, "file:relative": true,
		"prod/github": false, "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf": false,
	} {
		if secretsource.IsFile(id) != want {
			t.Errorf("IsFile(%q) != %v", id, want)
		}
	}
}

// secretDir lays out a directory as Kubernetes mounts a secret volume
// (each key a link into ..data, itself a link to a timestamped
// directory), next to a file standing for behalf's keyring, which no
// secret id may reach.
func secretDir(t *testing.T) (dir, keyring string) {
	t.Helper()
	base := t.TempDir()
	keyring = filepath.Join(base, "keyring.json")
	write(t, keyring, `{"k":"keyring-material"}`)
	dir = filepath.Join(base, "secrets")
	write(t, filepath.Join(dir, "..2026_01_01", "corp.json"), `{"clientSecret":"k8s-secret","other":"not-this"}`)
	link(t, "..2026_01_01", filepath.Join(dir, "..data"))
	link(t, filepath.Join("..data", "corp.json"), filepath.Join(dir, "corp.json"))
	write(t, filepath.Join(dir, "plain.json"), `{"apiKey":"plain-key"}`)
	write(t, filepath.Join(dir, "text.txt"), `not json`)
	write(t, filepath.Join(dir, "big.json"), `{"k":"`+strings.Repeat("x", secretsource.MaxSecretBytes)+`"}`)
	link(t, filepath.Join("..", "keyring.json"), filepath.Join(dir, "escape.json"))
	link(t, keyring, filepath.Join(dir, "absolute-escape.json"))
	link(t, base, filepath.Join(dir, "up"))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir, keyring
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

func TestFiles(t *testing.T) {
	dir, keyring := secretDir(t)
	files, err := secretsource.NewFiles([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	r := secretsource.New(secretsource.Options{Files: files})
	for _, tc := range []struct {
		id, key, want string
		reason        secretsource.Reason
	}{
		{"file:" + dir + "/corp.json", "clientSecret", "k8s-secret", ""},
		{dir + "/corp.json", "clientSecret", "k8s-secret", ""},
		{"file:" + dir + "/plain.json", "apiKey", "plain-key", ""},
		{"file:" + dir + "/./sub/../plain.json", "apiKey", "plain-key", ""},
		{"file:" + dir + "/corp.json", "missing", "", secretsource.KeyAbsent},
		{"file:" + dir + "/text.txt", "k", "", secretsource.NotJSONObject},
		{"file:" + dir + "/big.json", "k", "", secretsource.TooLarge},
		{"file:" + dir + "/absent.json", "k", "", secretsource.NotFound},
		{"file:" + dir + "/sub", "k", "", secretsource.NotFound},
		{"file:" + dir + "/../keyring.json", "k", "", secretsource.OutsideDirectories},
		{"file:" + keyring, "k", "", secretsource.OutsideDirectories},
		{"file:" + dir, "k", "", secretsource.OutsideDirectories},
		{"file:" + dir + "/escape.json", "k", "", secretsource.OutsideDirectories},
		{"file:" + dir + "/absolute-escape.json", "k", "", secretsource.OutsideDirectories},
		{"file:" + dir + "/up/keyring.json", "k", "", secretsource.OutsideDirectories},
		{"file:relative/corp.json", "k", "", secretsource.InvalidID},
		{"file:" + dir + "/a\x00b", "k", "", secretsource.InvalidID},
	} {
		got, err := r.Resolve(t.Context(), storage.SecretRef{SecretID: tc.id, JSONKey: tc.key})
		if string(got) != tc.want || secretsource.ReasonOf(err) != tc.reason {
			t.Errorf("%s %s: %q, %v; want %q, %s", tc.id, tc.key, got, err, tc.want, tc.reason)
		}
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("%q", tc.id)) || !strings.Contains(msg, fmt.Sprintf("%q", tc.key)) {
				t.Errorf("%s: the error does not name the secret id and key: %s", tc.id, msg)
			}
			for _, v := range []string{"keyring-material", "not-this", "k8s-secret"} {
				if strings.Contains(msg, v) {
					t.Errorf("%s: the error shows a secret: %s", tc.id, msg)
				}
			}
		}
	}
	// Check judges the path as written; it reads nothing.
	if err := r.Check("file:" + dir + "/not-yet-there.json"); err != nil {
		t.Errorf("Check of a file inside the directory: %v", err)
	}
	if secretsource.ReasonOf(r.Check("file:"+keyring)) != secretsource.OutsideDirectories {
		t.Error("Check allowed a file outside the directories")
	}
	if secretsource.ReasonOf(r.Check("prod/github")) != secretsource.NotConfigured {
		t.Error("Check allowed a Secrets Manager id with no Secrets Manager configured")
	}
}

// countingSource is a Source whose documents the test sets, counting
// reads.
type countingSource struct {
	mu    sync.Mutex
	docs  map[string]string
	reads int
}

func (s *countingSource) Check(string) error { return nil }

func (s *countingSource) Read(_ context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	doc, ok := s.docs[id]
	if !ok {
		return nil, &secretsource.Error{SecretID: id, Reason: secretsource.NotFound}
	}
	return []byte(doc), nil
}

func (s *countingSource) set(id, doc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs[id] = doc
}

func (s *countingSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func TestResolverCache(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	src := &countingSource{docs: map[string]string{"db": `{"password":"v1"}`}}
	r := secretsource.New(secretsource.Options{SecretsManager: src, TTL: time.Minute, Now: clock.Now})
	ref := storage.SecretRef{SecretID: "db", JSONKey: "password"}
	get := func() string {
		t.Helper()
		v, err := r.Resolve(t.Context(), ref)
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	if get() != "v1" || src.count() != 1 {
		t.Fatal("first read")
	}
	// The caller owns what it gets: clearing it leaves the cache intact.
	v, _ := r.Resolve(t.Context(), ref)
	clear(v)
	src.set("db", `{"password":"v2"}`)
	clock.Advance(59 * time.Second)
	if get() != "v1" || src.count() != 1 {
		t.Fatal("a value younger than the TTL was read again")
	}
	clock.Advance(2 * time.Second)
	if get() != "v2" || src.count() != 2 {
		t.Fatal("the rotated value was not read after the TTL")
	}

	// A failure is kept for ErrorTTL, not the TTL.
	missing := storage.SecretRef{SecretID: "absent", JSONKey: "k"}
	for range 3 {
		if _, err := r.Resolve(t.Context(), missing); secretsource.ReasonOf(err) != secretsource.NotFound {
			t.Fatalf("missing secret: %v", err)
		}
	}
	if src.count() != 3 {
		t.Fatalf("%d reads, want 3: a failure is answered from memory for a moment", src.count())
	}
	src.set("absent", `{"k":"now-there"}`)
	clock.Advance(secretsource.ErrorTTL)
	if v, err := r.Resolve(t.Context(), missing); err != nil || string(v) != "now-there" {
		t.Fatalf("a fixed secret was not seen after ErrorTTL: %q %v", v, err)
	}

	// Concurrent callers all get the value.
	clock.Advance(time.Hour)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if v, err := r.Resolve(t.Context(), ref); err != nil || string(v) != "v2" {
				t.Errorf("concurrent read: %q %v", v, err)
			}
		})
	}
	wg.Wait()
}

func TestResolverWithoutSources(t *testing.T) {
	var nilResolver *secretsource.Resolver
	ref := storage.SecretRef{SecretID: "prod/github", JSONKey: "k"}
	if _, err := nilResolver.Resolve(t.Context(), ref); secretsource.ReasonOf(err) != secretsource.NotConfigured {
		t.Errorf("nil resolver: %v", err)
	}
	if secretsource.ReasonOf(nilResolver.Check("/run/x.json")) != secretsource.NotConfigured {
		t.Error("nil resolver checked a file")
	}
	r := secretsource.New(secretsource.Options{})
	_, err := r.Resolve(t.Context(), ref)
	var e *secretsource.Error
	if !errors.As(err, &e) || e.Reason != secretsource.NotConfigured || e.SecretID != "prod/github" || e.JSONKey != "k" {
		t.Errorf("no sources: %#v", err)
	}
}

func TestSecretsManager(t *testing.T) {
	fake := fakesecretsmanager.Start(t, "eu-west-1")
	fake.Put("prod/github", `{"clientSecret":"gh-secret","unrelated":"other-value"}`)
	fake.Put("denied", `{"k":"v"}`)
	fake.Deny("denied")
	fake.PutBinary("binary", []byte(`{"k":"v"}`))
	open := func(policy egress.Policy) *secretsource.Resolver {
		sm, err := secretsource.NewSecretsManager(t.Context(), secretsource.SecretsManagerOptions{
			Region: "eu-west-1", Endpoint: fake.URL, HTTP: egress.NewClient(egress.Options{Policy: policy, Timeout: 2 * time.Second})})
		if err != nil {
			t.Fatal(err)
		}
		return secretsource.New(secretsource.Options{SecretsManager: sm, Timeout: 5 * time.Second})
	}
	r := open(egress.Policy{AllowLoopback: true})
	for _, tc := range []struct {
		id, key, want string
		reason        secretsource.Reason
	}{
		{"prod/github", "clientSecret", "gh-secret", ""},
		{fake.ARN("prod/github"), "clientSecret", "gh-secret", ""},
		{"prod/github", "clientsecret", "", secretsource.KeyAbsent},
		{"prod/absent", "k", "", secretsource.NotFound},
		{"denied", "k", "", secretsource.Denied},
		{"binary", "k", "", secretsource.NotJSONObject},
		{"has space", "k", "", secretsource.InvalidID},
		{"arn:aws:kms:eu-west-1:123456789012:key/abc", "k", "", secretsource.InvalidID},
	} {
		got, err := r.Resolve(t.Context(), storage.SecretRef{SecretID: tc.id, JSONKey: tc.key})
		if string(got) != tc.want || secretsource.ReasonOf(err) != tc.reason {
			t.Errorf("%s %s: %q, %v; want %q, %s", tc.id, tc.key, got, err, tc.want, tc.reason)
		}
		if err != nil && (strings.Contains(err.Error(), "gh-secret") || strings.Contains(err.Error(), "other-value")) {
			t.Errorf("the error shows a secret: %v", err)
		}
	}

	// An outage fails closed.
	fake.SetDown(true)
	if _, err := r.Resolve(t.Context(), storage.SecretRef{SecretID: "prod/down", JSONKey: "k"}); secretsource.ReasonOf(err) != secretsource.Unavailable {
		t.Errorf("outage: %v", err)
	}
	fake.SetDown(false)

	// Calls go through the egress policy: with loopback refused, the fake
	// is never reached.
	before := fake.Calls()
	if _, err := open(egress.Policy{}).Resolve(t.Context(), storage.SecretRef{SecretID: "prod/github", JSONKey: "clientSecret"}); secretsource.ReasonOf(err) != secretsource.Unavailable {
		t.Errorf("egress refusal: %v", err)
	}
	if fake.Calls() != before {
		t.Error("a call reached the fake through a policy that refuses loopback")
	}

	// Other credentials than the fake accepts are refused, as Denied.
	fakesecretsmanager.Environment(t, "AKIDSOMEONEELSE00000", fakesecretsmanager.SecretKey)
	if _, err := open(egress.Policy{AllowLoopback: true}).Resolve(t.Context(), storage.SecretRef{SecretID: "prod/github", JSONKey: "clientSecret"}); secretsource.ReasonOf(err) != secretsource.Denied {
		t.Errorf("unknown credentials: %v", err)
	}
}
