// Package storage defines behalf's persistence contract: one domain-typed
// interface, value types in and out, and sentinel errors. Backends live in
// sub-packages and never import the rest of behalf; the conformance
// sub-package holds the suite every backend must pass.
//
// Storage is treated as untrusted: every secret reaches it already sealed by
// the vault package (see Sealed), so a backend never sees plaintext.
package storage

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Sentinel errors. Backends wrap them with %w; callers test with errors.Is.
var (
	ErrNotFound      = errors.New("storage: not found")
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrConflict reports a failed precondition: a compare-and-swap lost a
	// race or an updater refused the current state.
	ErrConflict = errors.New("storage: conflict")
	// ErrTooManyTags reports that a resource would carry more than MaxTags
	// tags; the change that would have caused it is not applied.
	ErrTooManyTags = errors.New("storage: too many tags")
)

// MaxTags is the most tags one resource may carry (AgentCore's limit).
const MaxTags = 50

// Sealed is an envelope-encrypted secret as produced by the vault package.
// KeyID names the key-encryption key that wraps the record's data key; it is
// kept in its own column so that rotation can find stale records.
type Sealed struct {
	KeyID string
	Blob  []byte
}

// IsZero reports whether no secret is stored.
func (s Sealed) IsZero() bool { return s.KeyID == "" && len(s.Blob) == 0 }

// Lost reports a secret whose key-encryption key was deleted: the record
// keeps the key id and has no ciphertext (ResetTokenVault removed it), so
// the secret must be set again.
func (s Sealed) Lost() bool { return s.KeyID != "" && len(s.Blob) == 0 }

// Page selects a window of a name-ordered listing.
type Page struct {
	// After is an exclusive cursor: only names greater than After are listed.
	After string
	// Limit caps the number of items; backends treat <= 0 as 100.
	Limit int
}

// Role is what a principal may do; see package authz for the table.
type Role string

// The roles: an admin manages every resource and principal (the control
// plane); a runtime principal acts for the workloads it is granted (the
// data plane).
const (
	RoleAdmin   Role = "admin"
	RoleRuntime Role = "runtime"
)

// Principal is an API caller authenticated with AWS Signature Version 4.
type Principal struct {
	AccessKeyID string
	Secret      Sealed // the secret access key
	Role        Role
	// Workloads lists the workload identities a runtime principal may act
	// for. Admin principals ignore it.
	Workloads []string
	// Operations limits a runtime principal to these data-plane
	// operations; empty allows all. Admin principals ignore it.
	Operations  []string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// WorkloadIdentity is an agent's identity in the directory.
type WorkloadIdentity struct {
	Name              string
	AllowedReturnURLs []string
	// AllowedAuthorizers limits which configured inbound JWT authorizers may
	// vouch for this workload's users. Nil means all of them.
	AllowedAuthorizers []string
	// AllowedProviders limits which credential providers (and scopes) this
	// workload may use. Nil means any.
	AllowedProviders []ProviderGrant
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// ProviderGrant allows one credential provider and says how far a request
// for its tokens may reach. It is stored as JSON; its wire twin,
// behalfapi.ProviderGrant, has the same fields, so the two convert.
type ProviderGrant struct {
	Provider string `json:"provider"`
	// Scopes, when non-empty, is the set of scopes that may be requested;
	// empty allows any scope (as before resources and audiences were
	// covered, so that grants stored then keep their meaning).
	Scopes []string `json:"scopes,omitempty"`
	// Resources (RFC 8707), Audiences and CustomParameters (the names of
	// the customParameters members) are the values a request may carry.
	// Unlike Scopes, empty allows none, and so does a grant stored before
	// these members existed; GrantAny alone allows any.
	Resources        []string `json:"resources,omitempty"`
	Audiences        []string `json:"audiences,omitempty"`
	CustomParameters []string `json:"customParameters,omitempty"`
}

// GrantAny is the value that, alone in a ProviderGrant list, allows any
// value.
const GrantAny = "*"

// OAuth2Provider is an OAuth2 credential provider.
type OAuth2Provider struct {
	// ID is a random identifier fixed at creation. It names the provider's
	// callback route and binds its secrets, so a provider deleted and created
	// again under the same name never inherits the old one's tokens.
	ID     string
	Name   string
	Vendor string
	// Config is the provider's non-secret configuration, owned and encoded
	// by the control plane; storage keeps it opaque.
	Config       []byte
	ClientSecret Sealed
	// ExternalSecret, when set, names where the client secret is kept
	// outside behalf (clientSecretSource EXTERNAL); ClientSecret is then
	// empty.
	ExternalSecret *SecretRef
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// APIKeyProvider is an API-key credential provider.
type APIKeyProvider struct {
	ID     string
	Name   string
	APIKey Sealed
	// ExternalSecret, when set, names where the key is kept outside
	// behalf (apiKeySecretSource EXTERNAL); APIKey is then empty.
	ExternalSecret *SecretRef
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// SecretRef names a secret kept outside behalf: AgentCore's
// SecretReference, a JSON object (SecretID) and the member holding the
// secret (JSONKey). It is configuration, never the secret.
type SecretRef struct {
	SecretID string
	JSONKey  string
}

// ResourceKind names the taggable resource types.
type ResourceKind string

// The taggable resource types, named as in their ARNs.
const (
	KindWorkloadIdentity ResourceKind = "workload-identity"
	KindOAuth2Provider   ResourceKind = "oauth2credentialprovider"
	KindAPIKeyProvider   ResourceKind = "apikeycredentialprovider" //nolint:gosec // G101: a kind's name, not a credential
	KindTokenVault       ResourceKind = "token-vault"
	KindConsentPortal    ResourceKind = "consent-portal"
)

// Resource identifies a taggable resource.
type Resource struct {
	Kind ResourceKind
	Name string
}

// TokenVault records which key-encryption key seals new secrets.
type TokenVault struct {
	ID string
	// KeyType is "ServiceManagedKey" or "CustomerManagedKey" (AgentCore's
	// KeyType enum).
	KeyType   string
	KMSKeyARN string
	// KeyID is the vault key id that KeyType/KMSKeyARN resolve to.
	KeyID        string
	LastModified time.Time
}

// SecretKind tells which record a sealed secret belongs to. The vault binds
// each ciphertext to its kind and owner through associated data.
type SecretKind string

// The kinds of sealed secret. A principal's secret is owned by its access
// key id; a provider's client secret or API key by the provider's id.
const (
	SecretPrincipal          SecretKind = "principal-secret"
	SecretOAuth2ClientSecret SecretKind = "oauth2-client-secret" //nolint:gosec // G101: a kind's name, not a credential
	SecretAPIKey             SecretKind = "api-key"
	// SecretServerKey is a server key; Owner is "<purpose>/<id>".
	SecretServerKey SecretKind = "server-key"
	// SecretCachedToken is a cached provider token; Owner is the provider
	// id, Workload the workload, User the cache key.
	SecretCachedToken SecretKind = "cached-token"
	// SecretSession is a session's secrets; Owner is the session id.
	SecretSession SecretKind = "oauth-session" //nolint:gosec // G101: a kind's name, not a credential
	// SecretConnection is a connection's tokens; Owner is the provider id,
	// Workload and User the connection's.
	SecretConnection SecretKind = "connection"
)

// KeyTarget names the key id the secrets of each kind belong under; a
// secret sealed under another key is stale (see vault.Vault.Targets).
type KeyTarget func(SecretKind) string

// AllUnder targets every kind of secret at keyID.
func AllUnder(keyID string) KeyTarget { return func(SecretKind) string { return keyID } }

// VaultReset reports what ResetTokenVault removed with a deleted key.
type VaultReset struct {
	// Connections, Sessions and CachedTokens count the users' connections
	// (access and refresh tokens), the three-legged OAuth sessions (PKCE
	// verifiers, and tokens not yet bound to a user) and the cached
	// provider tokens deleted.
	Connections, Sessions, CachedTokens int
	// ClientSecrets and APIKeys name, in order, the OAuth2 and API key
	// providers whose secret was removed (now Lost); the providers stay.
	ClientSecrets, APIKeys []string
}

// SealedRef locates one sealed secret for key rotation.
type SealedRef struct {
	Kind SecretKind
	// Owner identifies the owning record (access key id, provider id, …)
	// exactly as the vault binding for Kind expects it. Workload and User
	// complete the binding for secrets held for a (workload, user) pair;
	// they are empty for the kinds above.
	Owner    string
	Workload string
	User     string
	Sealed   Sealed
}

// ServerKey is a key behalf generates for its own use (encrypting workload
// access tokens, keying the audit chain), sealed by the vault and shared by
// every replica.
type ServerKey struct {
	Purpose   string
	ID        string
	Key       Sealed
	CreatedAt time.Time
}

// CachedToken is an access token obtained from a provider and kept until
// shortly before it expires.
type CachedToken struct {
	ProviderID string
	Workload   string
	// Key identifies the request the token answers (scopes, resources,
	// audiences, parameters); callers derive it.
	Key       string
	Token     Sealed
	ExpiresAt time.Time
	CreatedAt time.Time
}

// AuditRecord is one entry of the audit log. Records form a chain: each
// carries its predecessor's hash, and Hash covers the record and PrevHash.
type AuditRecord struct {
	Seq       int64
	Time      time.Time
	RequestID string
	Principal string
	Workload  string
	User      string
	Operation string
	Provider  string
	Scopes    []string
	Flow      string
	// Resource names what a control-plane change changed when it is not a
	// workload or provider (a principal, a key, a tagged ARN).
	Resource string
	// Outcome is "success" or "failure"; ErrorType names the API error.
	Outcome   string
	ErrorType string
	// Actors is the identity chain of a call made with a chained workload
	// access token: the workloads the call came through before Workload,
	// outermost first. Nil for a call that came through none; an empty
	// list is stored as nil.
	Actors   []string
	PrevHash []byte
	Hash     []byte
	// Trace is the span of the call that produced the record, for its
	// export (audit.Options.Export). It is neither stored nor hashed: it
	// says where to look, not what happened.
	Trace trace.SpanContext
}

// AuditHead is the end of the audit chain: the last sequence number and
// hash (0 and nil for an empty log).
type AuditHead struct {
	Seq  int64
	Hash []byte
}

// AuditFilter selects audit records; zero fields match everything. Records
// come back in sequence order, starting after AfterSeq, or, when
// NewestFirst is set, in reverse order, starting before BeforeSeq (zero:
// from the newest record).
type AuditFilter struct {
	Workload    string
	User        string
	Provider    string
	Operation   string
	Since       time.Time // inclusive
	Until       time.Time // exclusive
	AfterSeq    int64
	NewestFirst bool
	BeforeSeq   int64
	Limit       int // <= 0 means 100; capped at 1000
}

// AuditCheckpoint seals a point of the chain: the record at Seq and its
// Hash. MAC is the audit package's seal over both under the chain key, so
// that a checkpoint cannot be forged without the key. Storage keeps
// checkpoints by name and does not interpret them.
type AuditCheckpoint struct {
	Seq  int64
	Hash []byte
	MAC  []byte
}

// Names of the audit checkpoints.
const (
	// AuditCheckpointStart is the last record deleted by retention: the
	// log now starts after it, and its hash is the first kept record's
	// PrevHash.
	AuditCheckpointStart = "start"
	// AuditCheckpointVerified is the last record a verification reached.
	AuditCheckpointVerified = "verified"
)

// AuditBinding is the audit record of a change, carried into the
// transaction that makes the change (see Storage.WithAudit).
type AuditBinding struct {
	// Record returns the record to append. It is called inside the
	// transaction, after the change's own writes succeeded, so it carries
	// what the caller learned by then.
	Record func() AuditRecord
	// Chain numbers, links and hashes the record, as for AppendAudit.
	Chain func(head AuditHead, recs []AuditRecord) error
	// Committed, when set, is called once the transaction holding the
	// record has committed.
	Committed func()
}

// SessionStatus is the state of a three-legged OAuth session.
type SessionStatus string

const (
	// SessionInProgress means the user has not come back from the provider
	// yet.
	SessionInProgress SessionStatus = "IN_PROGRESS"
	// SessionExchanging means the provider called back and one request is
	// redeeming the code.
	SessionExchanging SessionStatus = "EXCHANGING"
	// SessionAuthorized means the provider called back and the tokens are
	// held in the session, unusable until the user is bound to them.
	SessionAuthorized SessionStatus = "AUTHORIZED"
	// SessionCompleted means the tokens moved to a connection; single use.
	SessionCompleted SessionStatus = "COMPLETED"
	// SessionFailed means the user denied consent at the provider, the code
	// exchange failed, or another user tried to complete the session.
	SessionFailed SessionStatus = "FAILED"
)

// OAuthSession is a three-legged OAuth authorization for one user of one
// workload at one provider.
type OAuthSession struct {
	// ID is the suffix of the session URI
	// (urn:ietf:params:oauth:request_uri:<ID>).
	ID string
	// StateHash is the SHA-256 of the state sent to the provider; unique.
	StateHash  []byte
	ProviderID string
	Workload   string
	User       string
	Status     SessionStatus
	// FailureReason says why a session failed; safe to show.
	FailureReason string
	// Request holds the request's non-secret details (scopes, return URL,
	// resources, …), encoded by the data plane.
	Request []byte
	// RequestKey, when set, names the request the session answers, its
	// provider, workload and user included: StartOAuthSession reuses an
	// open session with the same key instead of storing another. Nil for a
	// session never to be reused.
	RequestKey []byte
	// Secrets holds the PKCE verifier, the caller's custom state and
	// parameters and, once authorized, the tokens; sealed.
	Secrets   Sealed
	CreatedAt time.Time
	UpdatedAt time.Time
	ExpiresAt time.Time
}

// ConnectionStatus is the state of a user's connection.
type ConnectionStatus string

const (
	// ConnectionActive means the tokens are served and refreshed as they
	// expire.
	ConnectionActive ConnectionStatus = "ACTIVE"
	// ConnectionNeedsConsent means the provider refused the refresh token
	// (invalid_grant); the next request starts a new authorization.
	ConnectionNeedsConsent ConnectionStatus = "NEEDS_CONSENT"
)

// ConnectionKey names a connection: a user's tokens for a workload at a
// provider.
type ConnectionKey struct {
	ProviderID string
	Workload   string
	User       string
}

// Connection is a user's grant, as tokens, to a workload at a provider.
type Connection struct {
	ConnectionKey
	Status ConnectionStatus
	// Scopes were granted; Details holds other non-secret grant details
	// (resources, audiences), encoded by the data plane.
	Scopes  []string
	Details []byte
	// Tokens is the sealed token set (access and refresh tokens).
	Tokens Sealed
	// ExpiresAt is the access token's expiry; zero when unknown.
	ExpiresAt time.Time
	// Version increases with every change of Tokens or Status. Re-wrapping
	// the tokens for key rotation (ReplaceSecret) changes neither and
	// leaves Version and UpdatedAt alone.
	Version int64
	// LeaseOwner holds the refresh lease until LeaseUntil; LeaseToken
	// fences its holder: a refresh result is stored only with the token
	// the lease was acquired with.
	LeaseOwner string
	LeaseUntil time.Time
	LeaseToken int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// LastUsedAt drives DeleteIdleConnections.
	LastUsedAt time.Time
}

// ConnectionFilter selects connections; zero fields match all. Listings are
// ordered by (provider id, workload, user), bytewise, and continue after
// After (an exclusive cursor that need not name a connection; the zero key
// starts at the beginning).
type ConnectionFilter struct {
	ProviderID string
	Workload   string
	User       string
	After      ConnectionKey
	Limit      int // <= 0 means 100; capped at 1000
}

// Storage is behalf's persistence contract. Every method is safe for
// concurrent use. Updater functions passed to Update* run inside the
// backend's transaction and may run more than once; they must not have side
// effects. An updater that returns an error aborts the update with it.
type Storage interface {
	// Principals.
	CreatePrincipal(ctx context.Context, p Principal) error
	// BootstrapPrincipal creates p only if no principal exists yet, atomically
	// across replicas. It reports whether p was created.
	BootstrapPrincipal(ctx context.Context, p Principal) (bool, error)
	GetPrincipal(ctx context.Context, accessKeyID string) (Principal, error)
	ListPrincipals(ctx context.Context, page Page) ([]Principal, error)
	UpdatePrincipal(ctx context.Context, accessKeyID string, fn func(Principal) (Principal, error)) (Principal, error)
	DeletePrincipal(ctx context.Context, accessKeyID string) error

	// Workload identities.
	CreateWorkloadIdentity(ctx context.Context, w WorkloadIdentity, tags map[string]string) error
	GetWorkloadIdentity(ctx context.Context, name string) (WorkloadIdentity, error)
	ListWorkloadIdentities(ctx context.Context, page Page) ([]WorkloadIdentity, error)
	UpdateWorkloadIdentity(ctx context.Context, name string, fn func(WorkloadIdentity) (WorkloadIdentity, error)) (WorkloadIdentity, error)
	// DeleteWorkloadIdentity also deletes the identity's tags.
	DeleteWorkloadIdentity(ctx context.Context, name string) error

	// OAuth2 credential providers.
	CreateOAuth2Provider(ctx context.Context, p OAuth2Provider, tags map[string]string) error
	GetOAuth2Provider(ctx context.Context, name string) (OAuth2Provider, error)
	GetOAuth2ProviderByID(ctx context.Context, id string) (OAuth2Provider, error)
	ListOAuth2Providers(ctx context.Context, page Page) ([]OAuth2Provider, error)
	UpdateOAuth2Provider(ctx context.Context, name string, fn func(OAuth2Provider) (OAuth2Provider, error)) (OAuth2Provider, error)
	// RepointOAuth2Provider is UpdateOAuth2Provider for a change of the
	// authorization server the provider's secrets go to: in the same
	// transaction it also deletes the provider's sessions and connections,
	// whose tokens the old server issued. If fn fails, nothing changes.
	RepointOAuth2Provider(ctx context.Context, name string, fn func(OAuth2Provider) (OAuth2Provider, error)) (OAuth2Provider, error)
	// DeleteOAuth2Provider also deletes the provider's tags.
	DeleteOAuth2Provider(ctx context.Context, name string) error

	// API-key credential providers.
	CreateAPIKeyProvider(ctx context.Context, p APIKeyProvider, tags map[string]string) error
	GetAPIKeyProvider(ctx context.Context, name string) (APIKeyProvider, error)
	ListAPIKeyProviders(ctx context.Context, page Page) ([]APIKeyProvider, error)
	UpdateAPIKeyProvider(ctx context.Context, name string, fn func(APIKeyProvider) (APIKeyProvider, error)) (APIKeyProvider, error)
	// DeleteAPIKeyProvider also deletes the provider's tags.
	DeleteAPIKeyProvider(ctx context.Context, name string) error

	// Tags. Each returns ErrNotFound when the resource does not exist.
	TagResource(ctx context.Context, r Resource, tags map[string]string) error
	UntagResource(ctx context.Context, r Resource, keys []string) error
	ListTags(ctx context.Context, r Resource) (map[string]string, error)

	// Token vault. GetTokenVault returns ErrNotFound before the first
	// UpdateTokenVault.
	GetTokenVault(ctx context.Context, id string) (TokenVault, error)
	// UpdateTokenVault creates the vault record when absent (fn then receives
	// a zero TokenVault with ID set).
	UpdateTokenVault(ctx context.Context, id string, fn func(TokenVault) (TokenVault, error)) (TokenVault, error)

	// Server keys. CreateServerKey refuses an empty purpose or id, a purpose
	// containing "/" (the vault binds a key to "<purpose>/<id>") and a key
	// without a secret.
	CreateServerKey(ctx context.Context, k ServerKey) error
	// ListServerKeys returns a purpose's keys, oldest first.
	ListServerKeys(ctx context.Context, purpose string) ([]ServerKey, error)
	DeleteServerKey(ctx context.Context, purpose, id string) error

	// Cached provider tokens. Deleting a provider or a workload identity
	// deletes its cached tokens, and so does updating a provider.
	GetCachedToken(ctx context.Context, providerID, workload, key string) (CachedToken, error)
	// PutCachedToken inserts or replaces the token for its (provider,
	// workload, key). It returns ErrNotFound when the provider id or the
	// workload identity does not exist, so that a token fetched while either
	// is deleted is never left behind.
	PutCachedToken(ctx context.Context, t CachedToken) error
	// DeleteExpiredCachedTokens removes tokens that expired before t and
	// reports how many.
	DeleteExpiredCachedTokens(ctx context.Context, t time.Time) (int, error)

	// Audit log. AppendAudit appends recs as one atomic, ordered batch:
	// inside the transaction that holds the chain's head (exclusive across
	// replicas), it calls chain with the current head, and chain must set
	// Seq, PrevHash and Hash of every record, continuing from the head. The
	// stored records and the new head are exactly what chain set; chain sees
	// times as they are stored (UTC, whole microseconds). If chain fails or
	// does not continue the head, nothing is stored.
	AppendAudit(ctx context.Context, recs []AuditRecord, chain func(head AuditHead, recs []AuditRecord) error) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error)
	GetAuditHead(ctx context.Context) (AuditHead, error)
	// WithAudit returns a view of the store whose first write transaction
	// to commit also appends b's record to the chain, in that same
	// transaction: the change and its record commit together or not at
	// all. A write that fails stores neither; a failing Chain fails the
	// write. Later writes through the view, and every read, are the
	// store's own.
	WithAudit(b AuditBinding) Storage
	// GetAuditCheckpoint returns the named checkpoint, or ErrNotFound.
	GetAuditCheckpoint(ctx context.Context, name string) (AuditCheckpoint, error)
	// PutAuditCheckpoint inserts or replaces the named checkpoint.
	PutAuditCheckpoint(ctx context.Context, name string, cp AuditCheckpoint) error
	// DeleteAuditThrough deletes the records up to and including start.Seq
	// and stores start as the AuditCheckpointStart checkpoint, in one
	// transaction. It reports how many records it deleted. It refuses with
	// ErrConflict a start at or beyond the head (the newest record is
	// always kept) or at or before the stored start checkpoint.
	DeleteAuditThrough(ctx context.Context, start AuditCheckpoint) (int64, error)

	// Three-legged OAuth sessions. Deleting a provider or a workload
	// identity deletes its sessions and connections, and so does
	// RepointOAuth2Provider; UpdateOAuth2Provider leaves them (a refresh
	// token the provider no longer accepts turns the connection to
	// ConnectionNeedsConsent).
	//
	// CreateOAuthSession refuses an empty ID, a StateHash that is not 32
	// bytes long and a zero ExpiresAt; zero CreatedAt and UpdatedAt mean
	// now. It returns ErrAlreadyExists when the ID or the StateHash is
	// taken, and ErrNotFound when the provider id or the workload identity
	// does not exist, so that a session is never left behind by a
	// concurrent delete of either.
	CreateOAuthSession(ctx context.Context, s OAuthSession) error
	// StartOAuthSession is CreateOAuthSession for a session with a
	// RequestKey, unless an open session has the same key — status
	// SessionInProgress, expiring after reuseUntil — in which case it
	// stores nothing and returns that session with reused true. Of
	// concurrent calls with one key, one stores and the others reuse. A
	// session that left SessionInProgress, or expires at or before
	// reuseUntil, is no longer reused (it stays as it is otherwise).
	// admit, if not nil, is called once before a new session is kept, and
	// never for a reused one; its error is returned and nothing is stored.
	StartOAuthSession(ctx context.Context, s OAuthSession, reuseUntil time.Time, admit func() error) (stored OAuthSession, reused bool, err error)
	// GetOAuthSession and GetOAuthSessionByState (which takes the raw
	// 32-byte SHA-256 of the state) return expired sessions too; the
	// caller checks ExpiresAt.
	GetOAuthSession(ctx context.Context, id string) (OAuthSession, error)
	GetOAuthSessionByState(ctx context.Context, stateHash []byte) (OAuthSession, error)
	// ListOpenOAuthSessions returns k's sessions still in progress
	// (SessionInProgress) that expire after t, newest first, at most
	// limit (<= 0 means 100; capped at 1000): the authorizations the user
	// has been asked for and not finished.
	ListOpenOAuthSessions(ctx context.Context, k ConnectionKey, t time.Time, limit int) ([]OAuthSession, error)
	// UpdateOAuthSession keeps ID, StateHash, ProviderID, Workload, User
	// and CreatedAt as stored and sets UpdatedAt; fn may not set a zero
	// ExpiresAt. A completed session is final: UpdateOAuthSession returns
	// ErrConflict for it without calling fn, and returns ErrConflict,
	// storing nothing, when fn sets SessionCompleted (only
	// CompleteOAuthSession completes a session).
	UpdateOAuthSession(ctx context.Context, id string, fn func(OAuthSession) (OAuthSession, error)) (OAuthSession, error)
	// CompleteOAuthSession atomically moves a session from
	// SessionAuthorized to SessionCompleted and inserts or replaces the
	// connection c (Version set to the previous version + 1, lease cleared).
	// It returns ErrConflict, storing nothing, when the session is not
	// SessionAuthorized.
	//
	// c's key must be the session's (ProviderID, Workload, User), else it
	// fails, storing nothing. The completed session's Secrets are cleared:
	// the tokens then live in the connection only. The connection is
	// stored as c, except that a zero Status means ConnectionActive, zero
	// CreatedAt and LastUsedAt mean now, UpdatedAt is now, and of the
	// lease only LeaseToken survives a replacement (a new connection starts
	// at 0), so that a lease token is never granted twice. It returns
	// ErrNotFound when the session, the provider id or the workload
	// identity does not exist. It does not look at the session's
	// ExpiresAt; the caller does.
	CompleteOAuthSession(ctx context.Context, sessionID string, c Connection) error
	// DeleteEndedOAuthSessions removes sessions that expired before t,
	// whatever their status, and failed sessions last updated before t,
	// and reports how many.
	DeleteEndedOAuthSessions(ctx context.Context, before time.Time) (int, error)

	// Connections. They are created (and replaced) by CompleteOAuthSession
	// only.
	GetConnection(ctx context.Context, k ConnectionKey) (Connection, error)
	ListConnections(ctx context.Context, f ConnectionFilter) ([]Connection, error)
	// UpdateConnection runs fn on the connection; the lease fields are
	// kept as stored whatever fn returns, and Version increases when fn
	// changed Tokens or Status. The key and CreatedAt are kept as stored,
	// fn's Version is ignored, UpdatedAt is set to now, and a zero
	// LastUsedAt keeps the stored one.
	UpdateConnection(ctx context.Context, k ConnectionKey, fn func(Connection) (Connection, error)) (Connection, error)
	DeleteConnection(ctx context.Context, k ConnectionKey) error
	// AcquireRefreshLease gives owner the connection's refresh lease until
	// until, if no one holds it or the holder's lease has run out, and
	// returns the connection with its new LeaseToken. It returns
	// ErrConflict, with the connection as stored, while another owner
	// holds an unexpired lease.
	//
	// A lease is held while the backend's clock is before LeaseUntil, so
	// replicas' clocks must agree to well within a lease's length; an
	// until already past grants a lease that has run out at once. The same
	// owner holding an unexpired lease also gets ErrConflict: a process
	// must not take its own lease twice (it deduplicates its own refreshes,
	// with singleflight say). Every grant sets LeaseToken to the previous
	// one + 1. Owner must not be empty and until not zero. Taking the lease
	// leaves Version and UpdatedAt alone. A missing connection is
	// ErrNotFound.
	AcquireRefreshLease(ctx context.Context, k ConnectionKey, owner string, until time.Time) (Connection, error)
	// RenewRefreshLease extends the lease owner acquired with leaseToken to
	// until, so that a holder still waiting on its provider keeps it while
	// a dead holder's lease runs out. It returns ErrConflict if owner no
	// longer holds that lease (released, or taken over), storing nothing;
	// a lease that ran out but that no one took over is renewed. It leaves
	// Version and UpdatedAt alone. A missing connection is ErrNotFound.
	RenewRefreshLease(ctx context.Context, k ConnectionKey, owner string, leaseToken int64, until time.Time) error
	// FinishRefresh runs fn and releases the lease, in one transaction, but
	// only if owner still holds the lease acquired with leaseToken (else
	// ErrConflict, storing nothing). Whatever fn stores — a new access token
	// with the rotated refresh token, or a changed status — is durable
	// when FinishRefresh returns.
	//
	// A lease that has run out but that no one took over is still held:
	// its holder's result, whose refresh token may be the only valid one
	// left, is stored. On ErrConflict FinishRefresh returns the connection
	// as stored (with the newer result, if any). fn sees and may change
	// what UpdateConnection's fn may, with the same rules; releasing
	// clears LeaseOwner and LeaseUntil and keeps LeaseToken. To release
	// the lease without a change, fn returns the connection unchanged; if
	// fn fails, nothing is stored and the lease stays held until it runs
	// out. A missing connection is ErrNotFound.
	FinishRefresh(ctx context.Context, k ConnectionKey, owner string, leaseToken int64, fn func(Connection) (Connection, error)) (Connection, error)
	// DeleteIdleConnections removes connections last used before t,
	// whatever their lease, and reports how many.
	DeleteIdleConnections(ctx context.Context, before time.Time) (int, error)

	// Key rotation. ListStaleSecrets returns up to limit sealed secrets whose
	// key id is not the one target names for their kind; Lost secrets are
	// never listed. ListStaleSecretsAfter lists them in a fixed order
	// starting after the record after names (its Sealed is ignored; a zero
	// after starts at the beginning), so that a walk can pass records it
	// cannot re-wrap. ReplaceSecret swaps ref's ciphertext for next only if
	// it is still ref.Sealed, else it returns ErrConflict (or ErrNotFound
	// when the owner is gone).
	ListStaleSecrets(ctx context.Context, target KeyTarget, limit int) ([]SealedRef, error)
	ListStaleSecretsAfter(ctx context.Context, target KeyTarget, after SealedRef, limit int) ([]SealedRef, error)
	ReplaceSecret(ctx context.Context, ref SealedRef, next Sealed) error
	// ResetTokenVault forgets what the token vault sealed under keyID, a
	// key that was deleted (ResetTokenVaultKeyMaterial). In one
	// transaction, and only while the vault id is still under keyID (else
	// ErrConflict), it deletes the connections, sessions and cached tokens
	// sealed under keyID, removes the ciphertext of the client secrets and
	// API keys sealed under it (they become Lost; their providers stay,
	// and UpdatedAt is set), then runs fn with what it removed and stores
	// fn's vault as UpdateTokenVault does. If fn fails, nothing changes.
	// Principals' secrets and server keys are not the token vault's and
	// are left as they are.
	ResetTokenVault(ctx context.Context, id, keyID string, fn func(TokenVault, VaultReset) (TokenVault, error)) (TokenVault, VaultReset, error)

	// The OAuth authorization server's clients, requests, tokens and
	// consents.
	AuthorizationServer

	// Consent portals.
	ConsentPortals

	// Ping reports whether the backend is reachable and fully migrated.
	Ping(ctx context.Context) error
	Close() error
}
