package storage

import (
	"context"
	"time"
)

// What behalf keeps as an OAuth 2.1 authorization server for MCP clients
// (package authserver): clients registered dynamically, authorization
// requests on their way to a code, refresh tokens, users' consents, and
// the ids of one-time tokens. Every token and code is stored as the
// SHA-256 of its value, never the value.

// OAuthClient is a client registered through dynamic client registration
// (RFC 7591). Pre-registered clients live in configuration and clients
// named by a metadata document URL in their documents: neither is stored.
type OAuthClient struct {
	// ID is the client_id behalf issued; it never starts with "https://".
	ID string
	// Metadata is the client's registered metadata (RFC 7591 §2) as
	// JSON, as behalf validated and completed it.
	Metadata []byte
	// SecretHash is the SHA-256 of the client secret; empty for a public
	// client.
	SecretHash []byte
	CreatedAt  time.Time
}

// AuthRequestStatus is where an authorization request is.
type AuthRequestStatus string

// An authorization request waits for the user's login at the identity
// provider, then for the user's consent, then for its code to be
// redeemed; a redeemed code is final.
const (
	AuthRequestLogin    AuthRequestStatus = "LOGIN"
	AuthRequestConsent  AuthRequestStatus = "CONSENT"
	AuthRequestCode     AuthRequestStatus = "CODE"
	AuthRequestRedeemed AuthRequestStatus = "REDEEMED"
)

// AuthRequest is an authorization request (RFC 6749 §4.1.1) from the
// authorization endpoint to the redemption of its code.
type AuthRequest struct {
	ID string
	// LoginStateHash is the SHA-256 of the state behalf sent to the login
	// identity provider with the user; unique, 32 bytes.
	LoginStateHash []byte
	// CodeHash is the SHA-256 of the authorization code, set when the
	// code is issued; unique when set.
	CodeHash []byte
	Status   AuthRequestStatus
	ClientID string
	// RedirectURI, State, CodeChallenge, Resource and Scopes are the
	// client's request as accepted.
	RedirectURI   string
	State         string
	CodeChallenge string
	Resource      string
	Scopes        []string
	// User is the signed-in user, set when the login comes back.
	User string
	// RefreshFamily is the family of the refresh tokens the code was
	// redeemed for, so that a replayed code revokes them (RFC 6749
	// §4.1.2).
	RefreshFamily string
	ExpiresAt     time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// OAuthRefreshToken is a refresh token (RFC 6749 §6) of one grant. Each
// use rotates it: the token is marked rotated and a successor of the same
// family is issued; a rotated token presented again revokes the family
// (OAuth 2.1 §4.3.1, reuse detection).
type OAuthRefreshToken struct {
	// Hash is the SHA-256 of the token; the key.
	Hash []byte
	// Family names the grant: every rotation keeps it.
	Family    string
	ClientID  string
	User      string
	Resource  string
	Scopes    []string
	RotatedAt time.Time // zero while current
	ExpiresAt time.Time
	CreatedAt time.Time
}

// OAuthConsent is a user's consent to a client's access to a resource
// with a set of scopes.
type OAuthConsent struct {
	User      string
	ClientID  string
	Resource  string
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ConsentFilter selects a user's consents; Limit <= 0 means 100, capped
// at 1000. Listings are ordered by (client id, resource) and continue
// after (AfterClientID, AfterResource), exclusive.
type ConsentFilter struct {
	User          string
	AfterClientID string
	AfterResource string
	Limit         int
}

// AuthorizationServer is the storage of package authserver; every method
// is safe for concurrent use and atomic across replicas.
type AuthorizationServer interface {
	// CreateOAuthClient stores a dynamically registered client; an
	// empty id or metadata is refused, a taken id is ErrAlreadyExists.
	CreateOAuthClient(ctx context.Context, c OAuthClient) error
	GetOAuthClient(ctx context.Context, id string) (OAuthClient, error)
	// DeleteOAuthClient also deletes its consents, authorization
	// requests and refresh tokens.
	DeleteOAuthClient(ctx context.Context, id string) error

	// CreateAuthRequest refuses an empty id, a LoginStateHash that is
	// not 32 bytes, a zero ExpiresAt and a status other than
	// AuthRequestLogin; a taken id or login state is ErrAlreadyExists.
	CreateAuthRequest(ctx context.Context, a AuthRequest) error
	// GetAuthRequestByLoginState takes the raw 32-byte SHA-256 of the
	// login state. Expired requests are returned too; the caller checks
	// ExpiresAt.
	GetAuthRequestByLoginState(ctx context.Context, loginStateHash []byte) (AuthRequest, error)
	GetAuthRequest(ctx context.Context, id string) (AuthRequest, error)
	// UpdateAuthRequest runs fn on the request and stores what it
	// returns, keeping ID, LoginStateHash, ClientID, RedirectURI, State,
	// CodeChallenge and CreatedAt as stored; UpdatedAt is set to now. A
	// request in AuthRequestRedeemed is final: ErrConflict without
	// calling fn. fn may not set AuthRequestRedeemed (ErrConflict,
	// nothing stored): only RedeemAuthCode redeems. A CodeHash that
	// another request holds is ErrAlreadyExists.
	UpdateAuthRequest(ctx context.Context, id string, fn func(AuthRequest) (AuthRequest, error)) (AuthRequest, error)
	// RedeemAuthCode moves the request whose CodeHash is codeHash from
	// AuthRequestCode to AuthRequestRedeemed, sets its RefreshFamily to
	// family, and returns it as it was before. A request already
	// redeemed is ErrConflict, returned with the request as stored (its
	// RefreshFamily names what to revoke); an unknown code is
	// ErrNotFound. It does not look at ExpiresAt; the caller does.
	RedeemAuthCode(ctx context.Context, codeHash []byte, family string) (AuthRequest, error)
	// DeleteEndedAuthRequests removes requests that expired before t,
	// whatever their status, and reports how many.
	DeleteEndedAuthRequests(ctx context.Context, before time.Time) (int, error)

	// CreateRefreshToken refuses a Hash that is not 32 bytes, an empty
	// Family and a zero ExpiresAt; a taken hash is ErrAlreadyExists.
	CreateRefreshToken(ctx context.Context, t OAuthRefreshToken) error
	// GetRefreshToken takes the raw 32-byte SHA-256 of the token.
	GetRefreshToken(ctx context.Context, hash []byte) (OAuthRefreshToken, error)
	// RotateRefreshToken, in one transaction, marks the current token
	// hash rotated and stores next, which must be of the same family.
	// An unknown hash is ErrNotFound. A token already rotated is reuse:
	// the whole family is deleted and ErrConflict is returned with the
	// token as it was stored. It does not look at ExpiresAt.
	RotateRefreshToken(ctx context.Context, hash []byte, next OAuthRefreshToken) (OAuthRefreshToken, error)
	// RevokeRefreshFamily deletes every token of a family and reports
	// how many; none is not an error.
	RevokeRefreshFamily(ctx context.Context, family string) (int, error)
	// DeleteExpiredRefreshTokens removes tokens that expired before t.
	DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int, error)

	// PutConsent inserts or replaces the consent of (User, ClientID,
	// Resource); zero CreatedAt means now on insert, and a replacement
	// keeps the stored CreatedAt. UpdatedAt is set to now.
	PutConsent(ctx context.Context, c OAuthConsent) error
	GetConsent(ctx context.Context, user, clientID, resource string) (OAuthConsent, error)
	ListConsents(ctx context.Context, f ConsentFilter) ([]OAuthConsent, error)
	// DeleteConsent also deletes the refresh tokens of (user, clientID,
	// resource), in the same transaction: revoking consent ends the
	// grants made under it. A missing consent is ErrNotFound.
	DeleteConsent(ctx context.Context, user, clientID, resource string) error

	// UseTokenID records a one-time token id (an assertion's jti, scoped
	// by its issuer, or a revoked access token's) until expiresAt. One
	// already recorded and unexpired is ErrAlreadyExists; an expired one
	// is replaced. Keys are at most 1024 bytes.
	UseTokenID(ctx context.Context, key string, expiresAt time.Time) error
	// TokenIDUsed reports whether key is recorded and unexpired at now.
	TokenIDUsed(ctx context.Context, key string) (bool, error)
	// DeleteExpiredTokenIDs removes ids that expired before t.
	DeleteExpiredTokenIDs(ctx context.Context, before time.Time) (int, error)
}
