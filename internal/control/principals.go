package control

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/behalf-dev/behalf/internal/authz"
	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Principals are behalf's answer to IAM users: an access key pair that
// signs requests with SigV4, and a role. These operations are behalf
// extensions, served in the same restJson1 style under /behalf/.

var (
	accessKeyIDPattern = wire.Pattern(`[A-Z0-9]{16,128}`)
	secretKeyPattern   = wire.Pattern(`[\x21-\x7e]{16,128}`)
)

const maxGrants = 100

// NewAccessKey generates an access key pair in AWS's format: a 20-character
// id and a 40-character secret (240 bits of entropy).
func NewAccessKey() (id, secret string) {
	idBytes := make([]byte, 10)
	secretBytes := make([]byte, 30)
	rand.Read(idBytes)
	rand.Read(secretBytes)
	return "BHLF" + base32.StdEncoding.EncodeToString(idBytes), base64.RawStdEncoding.EncodeToString(secretBytes)
}

type createPrincipalInput behalfapi.CreatePrincipalInput

func (in *createPrincipalInput) Validate(c *wire.Checker) {
	c.OptString("accessKeyId", in.AccessKeyID, 16, 128, accessKeyIDPattern)
	c.OptString("secretAccessKey", in.SecretAccessKey, 16, 128, secretKeyPattern)
	if (in.AccessKeyID == nil) != (in.SecretAccessKey == nil) {
		c.Failf("secretAccessKey", "accessKeyId and secretAccessKey are given together or not at all")
	}
	checkRole(c, in.Role, true, in.Workloads)
	checkOperations(c, in.Role, in.Operations)
	c.OptString("description", in.Description, 0, 256, nil)
}

// checkOperations accepts a list of data-plane operations for a runtime
// principal, so that, for one, an agent's principal can vend but not
// complete users' sessions (CompleteResourceTokenAuth).
func checkOperations(c *wire.Checker, role string, ops []string) {
	allowed := authz.DataPlaneOperations()
	c.Strings("operations", ops, 0, len(allowed), 1, 128, nil)
	for i, op := range ops {
		if !slices.Contains(allowed, op) {
			c.Failf(fmt.Sprintf("operations[%d]", i), "must be one of %s", strings.Join(allowed, ", "))
		}
	}
	if role == string(storage.RoleAdmin) && len(ops) > 0 {
		c.Failf("operations", "applies to runtime principals only; admin principals may call every operation")
	}
}

func checkRole(c *wire.Checker, role string, required bool, workloads []string) {
	c.Enum("role", role, required, string(storage.RoleAdmin), string(storage.RoleRuntime))
	c.Strings("workloads", workloads, 0, maxGrants, 1, 255, nil)
	for i, w := range workloads {
		if w != authz.AllWorkloads && !workloadNamePattern.MatchString(w) {
			c.Failf(fmt.Sprintf("workloads[%d]", i), "must be a workload identity name or %q", authz.AllWorkloads)
		}
	}
	if role == string(storage.RoleAdmin) && len(workloads) > 0 {
		c.Failf("workloads", "applies to runtime principals only; admin principals act for every workload")
	}
}

func principalOut(p storage.Principal) *behalfapi.Principal {
	ws := p.Workloads
	if ws == nil {
		ws = []string{}
	}
	return &behalfapi.Principal{AccessKeyID: p.AccessKeyID, Role: string(p.Role), Workloads: ws, Operations: p.Operations, Description: p.Description,
		CreatedTime: behalfapi.Time(p.CreatedAt), LastUpdatedTime: behalfapi.Time(p.UpdatedAt)}
}

func (s *Service) createPrincipal(ctx context.Context, c *wire.Call, in *createPrincipalInput) (*behalfapi.Principal, error) {
	id, secret := NewAccessKey()
	if in.AccessKeyID != nil {
		id, secret = *in.AccessKeyID, *in.SecretAccessKey
	}
	c.Audit.Resource = "principal/" + id
	p, err := s.NewPrincipal(ctx, id, secret, storage.Role(in.Role), in.Workloads)
	if err != nil {
		return nil, err
	}
	if in.Description != nil {
		p.Description = *in.Description
	}
	p.Operations = in.Operations
	if err := c.Change(s.store).CreatePrincipal(ctx, p); err != nil {
		return nil, wire.StorageError(err, "principal", id)
	}
	s.PrincipalChanged(id) // forget that the id was unknown
	out := principalOut(p)
	out.SecretAccessKey = secret // shown once, at creation
	return out, nil
}

// NewPrincipal builds a principal record with its secret sealed.
func (s *Service) NewPrincipal(ctx context.Context, id, secret string, role storage.Role, workloads []string) (storage.Principal, error) {
	sealed, err := s.sealFor(ctx, secret, vault.PrincipalSecretBinding(id))
	if err != nil {
		return storage.Principal{}, err
	}
	now := s.Now()
	return storage.Principal{AccessKeyID: id, Secret: sealed, Role: role, Workloads: workloads, CreatedAt: now, UpdatedAt: now}, nil
}

type principalIDInput behalfapi.PrincipalIDInput

func (in *principalIDInput) Validate(c *wire.Checker) {
	c.String("accessKeyId", in.AccessKeyID, 16, 128, accessKeyIDPattern)
}

func (s *Service) getPrincipal(ctx context.Context, _ *wire.Call, in *principalIDInput) (*behalfapi.Principal, error) {
	p, err := s.store.GetPrincipal(ctx, in.AccessKeyID)
	if err != nil {
		return nil, wire.StorageError(err, "principal", in.AccessKeyID)
	}
	return principalOut(p), nil
}

type listPrincipalsInput behalfapi.ListPrincipalsInput

func (in *listPrincipalsInput) Validate(c *wire.Checker) {
	c.Range("maxResults", in.MaxResults, 1, 100)
}

func (s *Service) listPrincipals(ctx context.Context, _ *wire.Call, in *listPrincipalsInput) (*behalfapi.ListPrincipalsOutput, error) {
	after, err := wire.ParseNextToken("nextToken", in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults, 100)
	ps, err := s.store.ListPrincipals(ctx, storage.Page{After: after, Limit: limit + 1})
	if err != nil {
		return nil, fmt.Errorf("list principals: %w", err)
	}
	ps, next := paginate(ps, limit, func(p storage.Principal) string { return p.AccessKeyID })
	out := &behalfapi.ListPrincipalsOutput{Principals: make([]*behalfapi.Principal, len(ps)), NextToken: next}
	for i, p := range ps {
		out.Principals[i] = principalOut(p)
	}
	return out, nil
}

type updatePrincipalInput behalfapi.UpdatePrincipalInput

func (in *updatePrincipalInput) Validate(c *wire.Checker) {
	c.String("accessKeyId", in.AccessKeyID, 16, 128, accessKeyIDPattern)
	role := ""
	if in.Role != nil {
		role = *in.Role
		c.Enum("role", role, true, string(storage.RoleAdmin), string(storage.RoleRuntime))
	}
	if in.Workloads != nil {
		checkRole(c, role, false, *in.Workloads)
	}
	if in.Operations != nil {
		checkOperations(c, role, *in.Operations)
	}
	c.OptString("description", in.Description, 0, 256, nil)
}

func (s *Service) updatePrincipal(ctx context.Context, c *wire.Call, in *updatePrincipalInput) (*behalfapi.Principal, error) {
	c.Audit.Resource = "principal/" + in.AccessKeyID
	if in.Role != nil && *in.Role != string(storage.RoleAdmin) {
		if err := s.keepAnAdmin(ctx, in.AccessKeyID); err != nil {
			return nil, err
		}
	}
	p, err := c.Change(s.store).UpdatePrincipal(ctx, in.AccessKeyID, func(p storage.Principal) (storage.Principal, error) {
		if in.Role != nil {
			p.Role = storage.Role(*in.Role)
		}
		if in.Workloads != nil {
			p.Workloads = *in.Workloads
		}
		if in.Operations != nil {
			p.Operations = *in.Operations
		}
		if in.Description != nil {
			p.Description = *in.Description
		}
		if p.Role == storage.RoleAdmin && len(p.Workloads) > 0 {
			return p, wire.Validation("admin principals act for every workload; remove workloads or keep the runtime role",
				wire.FieldError{Name: "workloads", Message: "applies to runtime principals only"})
		}
		if p.Role == storage.RoleAdmin && len(p.Operations) > 0 {
			return p, wire.Validation("admin principals may call every operation; remove operations or keep the runtime role",
				wire.FieldError{Name: "operations", Message: "applies to runtime principals only"})
		}
		return p, nil
	})
	if err != nil {
		return nil, wire.StorageError(err, "principal", in.AccessKeyID)
	}
	s.PrincipalChanged(in.AccessKeyID)
	return principalOut(p), nil
}

func (s *Service) deletePrincipal(ctx context.Context, c *wire.Call, in *principalIDInput) (*struct{}, error) {
	c.Audit.Resource = "principal/" + in.AccessKeyID
	if err := s.keepAnAdmin(ctx, in.AccessKeyID); err != nil {
		return nil, err
	}
	err := c.Change(s.store).DeletePrincipal(ctx, in.AccessKeyID)
	s.PrincipalChanged(in.AccessKeyID)
	return nil, wire.StorageError(err, "principal", in.AccessKeyID)
}

// keepAnAdmin refuses to remove the last admin principal, which would lock
// every operator out of the control plane.
func (s *Service) keepAnAdmin(ctx context.Context, leaving string) error {
	p, err := s.store.GetPrincipal(ctx, leaving)
	if err != nil {
		return wire.StorageError(err, "principal", leaving)
	}
	if p.Role != storage.RoleAdmin {
		return nil
	}
	after := ""
	for {
		ps, err := s.store.ListPrincipals(ctx, storage.Page{After: after, Limit: 500})
		if err != nil {
			return fmt.Errorf("list principals: %w", err)
		}
		for _, p := range ps {
			if p.Role == storage.RoleAdmin && p.AccessKeyID != leaving {
				return nil
			}
		}
		if len(ps) < 500 {
			return wire.Conflict("principal %s is the last admin; create another admin principal first", leaving)
		}
		after = ps[len(ps)-1].AccessKeyID
	}
}
