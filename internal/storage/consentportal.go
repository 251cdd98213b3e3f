package storage

import (
	"context"
	"time"
)

// ConsentPortal is an AgentCore Identity consent portal
// (CreateConsentPortal): where the users of a gateway sign in with an
// identity provider and consent to an agent acting for them.
type ConsentPortal struct {
	// ID is "<name>-<10 random letters and digits>", fixed at creation;
	// the portal's ARN, URL and tags name it.
	ID string
	// Name is unique among portals.
	Name        string
	Description string
	// ExecutionRoleARN is stored and echoed; behalf assumes no IAM role.
	ExecutionRoleARN string
	// Provider names the OAuth2 credential provider users sign in with;
	// Scopes and Audience are what the portal asks it for.
	Provider string
	Scopes   []string
	Audience string
	// Sources are the gateways the portal serves; fixed at creation.
	Sources   []ConsentPortalSource
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ConsentPortalSource is one resource a consent portal serves. It is
// stored as JSON.
type ConsentPortalSource struct {
	Type       string `json:"type"`
	Identifier string `json:"identifier"`
}

// ConsentPortals keeps consent portals. A portal is a taggable resource of
// kind KindConsentPortal named by its ID.
type ConsentPortals interface {
	// CreateConsentPortal stores p and its tags in one transaction, or
	// returns ErrAlreadyExists when p's ID or name is taken. Zero
	// CreatedAt and UpdatedAt mean now.
	CreateConsentPortal(ctx context.Context, p ConsentPortal, tags map[string]string) error
	GetConsentPortal(ctx context.Context, id string) (ConsentPortal, error)
	// ListConsentPortals returns a page of portals in ID order; Page.After
	// is an ID.
	ListConsentPortals(ctx context.Context, page Page) ([]ConsentPortal, error)
	// UpdateConsentPortal runs fn on the locked portal and stores its
	// result, keeping ID, Name, Sources and CreatedAt as stored and
	// setting UpdatedAt to now.
	UpdateConsentPortal(ctx context.Context, id string, fn func(ConsentPortal) (ConsentPortal, error)) (ConsentPortal, error)
	// DeleteConsentPortal also deletes the portal's tags.
	DeleteConsentPortal(ctx context.Context, id string) error
}
