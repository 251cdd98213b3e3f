// Package secretsource reads the secrets of credential providers that keep
// them outside behalf (AgentCore's clientSecretSource and
// apiKeySecretSource EXTERNAL, with a SecretReference {secretId, jsonKey}):
// the secret id names a JSON object, in AWS Secrets Manager or in a file
// such as a mounted Kubernetes secret, and the JSON key the member of it
// that holds the secret.
//
// Which source a secret id names: "file:" followed by an absolute path, or
// an absolute path, is a file, which must lie inside one of the configured
// directories; anything else is a Secrets Manager secret ARN or name.
//
// A Resolver reads a secret when it is used, keeps what it read in memory
// for a short time, and never stores it. Its errors are *Error values that
// name the secret id and JSON key, never the secret or another member.
package secretsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// MaxSecretBytes bounds a secret document, as Secrets Manager bounds a
// SecretString.
const MaxSecretBytes = 65536

// Reason says why a secret could not be read.
type Reason string

// Reasons.
const (
	// NotConfigured: the source the secret id names is not configured.
	NotConfigured Reason = "NotConfigured"
	// InvalidID: the secret id is neither an absolute path nor a Secrets
	// Manager secret ARN or name.
	InvalidID Reason = "InvalidId"
	// OutsideDirectories: the file, or where its symbolic links lead, is
	// outside the configured directories.
	OutsideDirectories Reason = "OutsideDirectories"
	NotFound           Reason = "NotFound"
	// Denied: the source refused to give the secret (Secrets Manager's
	// AccessDeniedException or DecryptionFailure, a file's permissions).
	Denied        Reason = "Denied"
	TooLarge      Reason = "TooLarge"
	NotJSONObject Reason = "NotJsonObject"
	KeyAbsent     Reason = "KeyAbsent"
	// NotString: the member is not a non-empty JSON string.
	NotString Reason = "NotString"
	// Unavailable: the source failed (an outage, a timeout, throttling);
	// nothing stale is served instead.
	Unavailable Reason = "Unavailable"
)

var reasonText = map[Reason]string{
	NotConfigured:      "is kept in a source behalf is not configured to read (externalSecrets in its configuration)",
	InvalidID:          "is neither an absolute file path nor a Secrets Manager secret ARN or name",
	OutsideDirectories: "is outside the directories externalSecrets.files.directories allows",
	NotFound:           "does not exist",
	Denied:             "may not be read by behalf",
	TooLarge:           fmt.Sprintf("is larger than %d bytes", MaxSecretBytes),
	NotJSONObject:      "is not one JSON object with unique member names",
	KeyAbsent:          "has no member named by the JSON key",
	NotString:          "has a member named by the JSON key that is not a non-empty string",
	Unavailable:        "could not be read: its source is unavailable",
}

// Error is a secret that could not be read. Its text names the secret id
// and JSON key; Err is the cause, for the log, and holds no secret.
type Error struct {
	SecretID, JSONKey string
	Reason            Reason
	Err               error
}

func (e *Error) Error() string { return "secretsource: " + e.Describe() }

// Describe says what failed, for a caller: the secret id and JSON key and
// the reason, never a value.
func (e *Error) Describe() string {
	key := ""
	if e.JSONKey != "" {
		key = fmt.Sprintf(" (JSON key %q)", e.JSONKey)
	}
	return fmt.Sprintf("secret %q%s %s", e.SecretID, key, reasonText[e.Reason])
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the reason of an *Error in err's chain, or "".
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func fail(id string, r Reason, cause error) *Error {
	return &Error{SecretID: id, Reason: r, Err: cause}
}

// Source reads the secret documents of one kind of secret id.
type Source interface {
	// Check reports, without reading anything, an id this source can
	// never read.
	Check(secretID string) error
	// Read returns the secret document id names, at most MaxSecretBytes.
	Read(ctx context.Context, secretID string) ([]byte, error)
}

// IsFile reports whether a secret id names a file rather than a Secrets
// Manager secret.
func IsFile(secretID string) bool {
	return strings.HasPrefix(secretID, filePrefix) || strings.HasPrefix(secretID, "/")
}

// AuditName is how audit records name where a provider's secret is kept:
// the reference, never the secret.
func AuditName(ref storage.SecretRef) string {
	return "external-secret/" + ref.SecretID + " " + ref.JSONKey
}

// Options configure a Resolver.
type Options struct {
	// SecretsManager reads ids that are not files; nil refuses them.
	SecretsManager Source
	// Files reads ids that are files; nil refuses them.
	Files Source
	// TTL is how long a value read is used before it is read again;
	// zero means DefaultTTL. A failure is kept for at most ErrorTTL.
	TTL time.Duration
	// Timeout bounds one read, retries included; zero means 10s.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics counts cache lookups; nil counts nothing.
	Metrics *telemetry.Metrics
}

// DefaultTTL is how long a secret read is used when Options.TTL is zero.
const DefaultTTL = time.Minute

// ErrorTTL bounds how long a failed read is answered from memory, so that
// a missing secret does not make every call reach the source, and a fixed
// one is seen soon.
const ErrorTTL = 5 * time.Second

// maxEntries bounds the cache; past it, expired entries go, then all.
const maxEntries = 1000

// Resolver reads external secrets from the configured sources. A nil
// *Resolver has no source: it refuses every secret id as NotConfigured.
type Resolver struct {
	sources map[bool]Source // by IsFile
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time
	metrics *telemetry.Metrics

	mu      sync.Mutex
	entries map[storage.SecretRef]entry
	reads   singleflight.Group
}

type entry struct {
	value   []byte
	err     error
	expires time.Time
}

// New returns a resolver over the sources in o.
func New(o Options) *Resolver {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Resolver{sources: map[bool]Source{}, ttl: o.TTL, timeout: o.Timeout, now: o.Now, metrics: o.Metrics,
		entries: map[storage.SecretRef]entry{}}
	if o.SecretsManager != nil {
		r.sources[false] = o.SecretsManager
	}
	if o.Files != nil {
		r.sources[true] = o.Files
	}
	return r
}

func (r *Resolver) source(secretID string) (Source, error) {
	var s Source
	if r != nil {
		s = r.sources[IsFile(secretID)]
	}
	if s == nil {
		return nil, fail(secretID, NotConfigured, nil)
	}
	return s, nil
}

// Check reports, without reading anything, a secret id that can never be
// read: its source is not configured, or the source refuses its form (a
// file outside the configured directories).
func (r *Resolver) Check(secretID string) error {
	s, err := r.source(secretID)
	if err != nil {
		return err
	}
	return s.Check(secretID)
}

// Resolve returns the secret ref names: the string member JSONKey of the
// JSON object SecretID names. Values are read again once older than the
// TTL; concurrent reads of one reference are made once. The caller owns
// the returned bytes.
func (r *Resolver) Resolve(ctx context.Context, ref storage.SecretRef) ([]byte, error) {
	if r == nil {
		return nil, withRef(fail(ref.SecretID, NotConfigured, nil), ref)
	}
	r.mu.Lock()
	e, ok := r.entries[ref]
	r.mu.Unlock()
	hit := ok && r.now().Before(e.expires)
	r.metrics.CacheLookup(ctx, telemetry.CacheExternalSecret, hit)
	if !hit {
		v, _, _ := r.reads.Do(ref.SecretID+"\x00"+ref.JSONKey, func() (any, error) {
			return r.read(ctx, ref), nil
		})
		e = v.(entry)
	}
	if e.err != nil {
		return nil, e.err
	}
	return bytes.Clone(e.value), nil
}

// read reads ref from its source and keeps the result. The read outlives
// a caller that gives up, since others may be waiting for it.
func (r *Resolver) read(ctx context.Context, ref storage.SecretRef) entry {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	e := entry{expires: r.now().Add(r.ttl)}
	s, err := r.source(ref.SecretID)
	if err == nil {
		var doc []byte
		if doc, err = s.Read(ctx, ref.SecretID); err == nil {
			var reason Reason
			e.value, reason = Member(doc, ref.JSONKey)
			clear(doc)
			if reason != "" {
				err = fail(ref.SecretID, reason, nil)
			}
		}
	}
	if err != nil {
		e.value, e.err = nil, withRef(err, ref)
		e.expires = r.now().Add(min(r.ttl, ErrorTTL))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.entries) >= maxEntries {
		now := r.now()
		for k, old := range r.entries {
			if !now.Before(old.expires) {
				delete(r.entries, k)
			}
		}
		if len(r.entries) >= maxEntries {
			clear(r.entries)
		}
	}
	r.entries[ref] = e
	return e
}

// withRef names the JSON key in a source's *Error; any other error is a
// source failure.
func withRef(err error, ref storage.SecretRef) error {
	var e *Error
	if !errors.As(err, &e) {
		return &Error{SecretID: ref.SecretID, JSONKey: ref.JSONKey, Reason: Unavailable, Err: err}
	}
	named := *e
	named.JSONKey = ref.JSONKey
	return &named
}
