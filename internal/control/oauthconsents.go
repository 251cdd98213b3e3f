package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Users' consents to the authorization server's clients (package
// authserver). These operations are behalf extensions; they are
// admin-only. Deleting a consent also deletes the refresh tokens granted
// under it; access tokens already issued live out their short lifetime.

func (s *Service) oauthConsentOperations() []wire.Operation {
	return append([]wire.Operation{
		wire.JSON("ListOAuthConsents", "/behalf/ListOAuthConsents", http.StatusOK, s.listOAuthConsents),
	}, wire.Audited(
		wire.JSON("DeleteOAuthConsent", "/behalf/DeleteOAuthConsent", http.StatusNoContent, s.deleteOAuthConsent),
	)...)
}

type listOAuthConsentsInput behalfapi.ListOAuthConsentsInput

func (in *listOAuthConsentsInput) Validate(c *wire.Checker) {
	c.String("user", in.User, 1, 2048, nil)
	c.Range("maxResults", in.MaxResults, 1, 1000)
}

func (s *Service) listOAuthConsents(ctx context.Context, _ *wire.Call, in *listOAuthConsentsInput) (*behalfapi.ListOAuthConsentsOutput, error) {
	f := storage.ConsentFilter{User: in.User, Limit: 100}
	if in.MaxResults != nil {
		f.Limit = *in.MaxResults
	}
	after, err := wire.ParseNextToken("nextToken", in.NextToken)
	if err != nil {
		return nil, err
	}
	if after != "" {
		var ok bool
		if f.AfterClientID, f.AfterResource, ok = strings.Cut(after, "\x00"); !ok {
			return nil, wire.Validation("nextToken is not a token returned by this API", wire.FieldError{Name: "nextToken", Message: "is invalid"})
		}
	}
	limit := f.Limit
	f.Limit++
	consents, err := s.store.ListConsents(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list consents: %w", err)
	}
	out := &behalfapi.ListOAuthConsentsOutput{Consents: []behalfapi.OAuthConsent{}}
	if len(consents) > limit {
		consents = consents[:limit]
		last := consents[limit-1]
		out.NextToken = wire.NextToken(last.ClientID + "\x00" + last.Resource)
	}
	for _, c := range consents {
		out.Consents = append(out.Consents, behalfapi.OAuthConsent{User: c.User, ClientID: c.ClientID, Resource: c.Resource,
			Scopes: append([]string{}, c.Scopes...), CreatedTime: behalfapi.Time(c.CreatedAt), UpdatedTime: behalfapi.Time(c.UpdatedAt)})
	}
	return out, nil
}

type deleteOAuthConsentInput behalfapi.DeleteOAuthConsentInput

func (in *deleteOAuthConsentInput) Validate(c *wire.Checker) {
	c.String("user", in.User, 1, 2048, nil)
	c.String("clientId", in.ClientID, 1, 2048, nil)
	c.String("resource", in.Resource, 1, 2048, nil)
}

// deleteOAuthConsent revokes a user's consent and, with it, the refresh
// tokens granted under it; the record names the user, and the client and
// resource as oauth-consent/<client id> <resource>.
func (s *Service) deleteOAuthConsent(ctx context.Context, c *wire.Call, in *deleteOAuthConsentInput) (*struct{}, error) {
	c.Audit.User, c.Audit.Resource = in.User, "oauth-consent/"+in.ClientID+" "+in.Resource
	err := c.Change(s.store).DeleteConsent(ctx, in.User, in.ClientID, in.Resource)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, wire.NotFound("user %s has no consent to client %s for %s", in.User, in.ClientID, in.Resource)
	}
	if err != nil {
		return nil, fmt.Errorf("delete consent: %w", err)
	}
	return nil, nil
}
