package sdk

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"golang.org/x/oauth2"
)

// ConsentRequired is the error of a USER_FEDERATION request the user has
// not yet authorized: show AuthorizationURL to the user, then Wait (or
// return the error to your caller and wait later).
type ConsentRequired struct {
	Provider         string
	AuthorizationURL string
	SessionURI       string // GetResourceOauth2Token's sessionUri, polled by Wait

	source *TokenSource
}

func (c *ConsentRequired) Error() string {
	return "sdk: the user must authorize access to " + c.Provider + " at the authorization URL"
}

// ErrConsentFailed is returned by Wait when the authorization session
// failed: the user declined, or the session expired.
var ErrConsentFailed = errors.New("sdk: the user's authorization session failed")

// Backoff bounds the interval between Wait's polls: it starts at Initial
// and doubles up to Max.
type Backoff struct{ Initial, Max time.Duration }

// DefaultBackoff is Wait's backoff when none is given.
var DefaultBackoff = Backoff{Initial: time.Second, Max: 10 * time.Second}

// Wait polls GetResourceOauth2Token with the session URI until the user has
// consented (it returns the token, which the token source then reuses),
// the session fails (ErrConsentFailed), or ctx ends (ctx's error). At most
// one backoff may be given.
func (c *ConsentRequired) Wait(ctx context.Context, backoff ...Backoff) (*oauth2.Token, error) {
	b := DefaultBackoff
	if len(backoff) > 0 {
		b = backoff[0]
	}
	s := c.source
	s.mu.Lock()
	in := s.in
	s.mu.Unlock()
	in.ForceAuthentication = nil
	in.SessionUri = &c.SessionURI
	delay := b.Initial
	for {
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
		out, err := s.api.GetResourceOauth2Token(ctx, &in)
		switch {
		case err != nil:
			return nil, err
		case out.AccessToken != nil:
			return s.keep(*out.AccessToken), nil
		case out.SessionStatus == types.SessionStatusFailed:
			return nil, ErrConsentFailed
		}
		if out.SessionUri != nil {
			in.SessionUri = out.SessionUri
		}
		delay = min(2*delay, max(b.Max, b.Initial))
	}
}
