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

// Connections are users' grants held for workloads. These operations are
// behalf extensions (AgentCore has no way to list or revoke a user's
// stored tokens); they are admin-only.

// ConnectionRevoker revokes a user's tokens at their provider and deletes
// the connection (package federation), the deletion committing with c's
// audit record; revoked reports whether the provider confirmed revocation.
// Forget drops the data plane's cached copy of a connection deleted here,
// ForgetAll every cached connection.
type ConnectionRevoker interface {
	Revoke(ctx context.Context, c *wire.Call, providerName string, conn storage.Connection) (revoked bool, err error)
	Forget(k storage.ConnectionKey)
	ForgetAll()
}

// connectionOperations lists the lifecycle operations.
func (s *Service) connectionOperations() []wire.Operation {
	reads := []wire.Operation{
		wire.JSON("ListConnections", "/behalf/ListConnections", http.StatusOK, s.listConnections),
	}
	return append(reads, wire.Audited(
		wire.JSON("RevokeConnection", "/behalf/RevokeConnection", http.StatusOK, s.revokeConnection),
		wire.JSON("DeleteConnection", "/behalf/DeleteConnection", http.StatusNoContent, s.deleteConnection),
	)...)
}

type listConnectionsInput behalfapi.ListConnectionsInput

func (in *listConnectionsInput) Validate(c *wire.Checker) {
	c.String("provider", in.Provider, 0, 128, nil)
	c.String("workload", in.Workload, 0, 255, nil)
	c.String("user", in.User, 0, 2048, nil)
	c.Range("maxResults", in.MaxResults, 1, 1000)
}

func (s *Service) listConnections(ctx context.Context, _ *wire.Call, in *listConnectionsInput) (*behalfapi.ListConnectionsOutput, error) {
	f := storage.ConnectionFilter{Workload: in.Workload, User: in.User}
	if in.Provider != "" {
		p, err := s.store.GetOAuth2Provider(ctx, in.Provider)
		if errors.Is(err, storage.ErrNotFound) {
			return &behalfapi.ListConnectionsOutput{Connections: []behalfapi.Connection{}}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("OAuth2 credential provider %s: %w", in.Provider, err)
		}
		f.ProviderID = p.ID
	}
	after, err := wire.ParseNextToken("nextToken", in.NextToken)
	if err != nil {
		return nil, err
	}
	if after != "" {
		if f.After, err = decodeConnectionCursor(after); err != nil {
			return nil, wire.Validation("nextToken is not a token returned by this API", wire.FieldError{Name: "nextToken", Message: "is invalid"})
		}
	}
	limit := 100
	if in.MaxResults != nil {
		limit = *in.MaxResults
	}
	f.Limit = limit + 1
	conns, err := s.store.ListConnections(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	out := &behalfapi.ListConnectionsOutput{Connections: []behalfapi.Connection{}}
	if len(conns) > limit {
		conns = conns[:limit]
		out.NextToken = wire.NextToken(encodeConnectionCursor(conns[limit-1].ConnectionKey))
	}
	names := map[string]string{}
	for _, c := range conns {
		name, ok := names[c.ProviderID]
		if !ok {
			if name, err = s.providerName(ctx, c.ProviderID); err != nil {
				return nil, err
			}
			names[c.ProviderID] = name
		}
		o := behalfapi.Connection{Provider: name, Workload: c.Workload, User: c.User, Status: string(c.Status), Scopes: c.Scopes,
			CreatedTime: behalfapi.Time(c.CreatedAt), LastUsedTime: behalfapi.Time(c.LastUsedAt)}
		if o.Scopes == nil {
			o.Scopes = []string{}
		}
		if !c.ExpiresAt.IsZero() {
			t := behalfapi.Time(c.ExpiresAt)
			o.ExpiresAt = &t
		}
		out.Connections = append(out.Connections, o)
	}
	return out, nil
}

func encodeConnectionCursor(k storage.ConnectionKey) string {
	return k.ProviderID + "\x00" + k.Workload + "\x00" + k.User
}

func decodeConnectionCursor(s string) (storage.ConnectionKey, error) {
	var k storage.ConnectionKey
	parts := strings.SplitN(s, "\x00", 3)
	if len(parts) != 3 {
		return k, errors.New("bad cursor")
	}
	return storage.ConnectionKey{ProviderID: parts[0], Workload: parts[1], User: parts[2]}, nil
}

type connectionInput behalfapi.ConnectionInput

func (in *connectionInput) Validate(c *wire.Checker) {
	c.String("provider", in.Provider, 1, 128, providerNamePattern)
	c.String("workload", in.Workload, 3, 255, workloadNamePattern)
	c.String("user", in.User, 1, 2048, nil)
}

func (s *Service) connection(ctx context.Context, c *wire.Call, in *connectionInput) (storage.OAuth2Provider, storage.Connection, error) {
	c.Audit.Provider, c.Audit.Workload, c.Audit.User = in.Provider, in.Workload, in.User
	p, err := s.store.GetOAuth2Provider(ctx, in.Provider)
	if err != nil {
		return p, storage.Connection{}, wire.StorageError(err, "OAuth2 credential provider", in.Provider)
	}
	conn, err := s.store.GetConnection(ctx, storage.ConnectionKey{ProviderID: p.ID, Workload: in.Workload, User: in.User})
	if errors.Is(err, storage.ErrNotFound) {
		return p, conn, wire.NotFound("user %s has no connection to %s for workload identity %s", in.User, in.Provider, in.Workload)
	}
	if err != nil {
		return p, conn, fmt.Errorf("read connection: %w", err)
	}
	return p, conn, nil
}

// revokeConnection revokes the user's tokens at the provider when it
// offers revocation (RFC 7009), then deletes the connection.
func (s *Service) revokeConnection(ctx context.Context, c *wire.Call, in *connectionInput) (*behalfapi.RevokeConnectionOutput, error) {
	p, conn, err := s.connection(ctx, c, in)
	if err != nil {
		return nil, err
	}
	revoked, err := s.Connections.Revoke(ctx, c, p.Name, conn)
	if err != nil {
		return nil, err
	}
	out := &behalfapi.RevokeConnectionOutput{RevokedAtProvider: revoked}
	if revoked {
		out.Message = "revoked at " + p.Name + " and deleted"
	} else {
		out.Message = p.Name + " offers no token revocation; the connection was deleted here, and the user can also revoke access in their " + p.Name + " account"
	}
	return out, nil
}

// providerName names a provider by id; empty when it is gone.
func (s *Service) providerName(ctx context.Context, id string) (string, error) {
	p, err := s.store.GetOAuth2ProviderByID(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("credential provider %s: %w", id, err)
	}
	return p.Name, nil
}

func (s *Service) deleteConnection(ctx context.Context, c *wire.Call, in *connectionInput) (*struct{}, error) {
	_, conn, err := s.connection(ctx, c, in)
	if err != nil {
		return nil, err
	}
	err = c.Change(s.store).DeleteConnection(ctx, conn.ConnectionKey)
	s.Connections.Forget(conn.ConnectionKey)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("delete connection: %w", err)
	}
	return nil, nil
}
