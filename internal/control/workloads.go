package control

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// maxReturnURLs bounds a workload identity's allow-list; the model sets no
// limit, but an unbounded list is a storage hazard.
const maxReturnURLs = 50

type createWorkloadIdentityInput struct {
	Name       string            `json:"name"`
	ReturnURLs []string          `json:"allowedResourceOauth2ReturnUrls,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
}

func (in *createWorkloadIdentityInput) Validate(c *wire.Checker) {
	c.String("name", in.Name, 3, 255, workloadNamePattern)
	checkReturnURLs(c, in.ReturnURLs)
	c.Tags("tags", in.Tags)
}

// checkReturnURLs checks allowedResourceOauth2ReturnUrls. Beyond the
// model's pattern, behalf accepts only absolute https URLs, or http on a
// loopback host for development: the server redirects browsers there with
// a session id, so an open or script scheme would be a hazard.
func checkReturnURLs(c *wire.Checker, urls []string) {
	const name = "allowedResourceOauth2ReturnUrls"
	c.Strings(name, urls, 0, maxReturnURLs, 1, 2048, returnURLPattern)
	seen := map[string]bool{}
	for i, raw := range urls {
		member := fmt.Sprintf("%s[%d]", name, i)
		if seen[raw] {
			c.Failf(member, "is listed twice")
		}
		seen[raw] = true
		if err := CheckReturnURL(raw); err != nil {
			c.Failf(member, "%v", err)
		}
	}
}

// CheckReturnURL applies behalf's rules for a return URL.
func CheckReturnURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("must be an absolute URL")
	}
	if u.Fragment != "" || u.User != nil {
		return fmt.Errorf("must not contain a fragment or user information")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("must use https (plain http is allowed only for localhost, 127.0.0.1 or ::1)")
	}
	return fmt.Errorf("must use https")
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type workloadIdentityOutput struct {
	Name              string     `json:"name"`
	Arn               string     `json:"workloadIdentityArn"`
	AllowedReturnURLs []string   `json:"allowedResourceOauth2ReturnUrls,omitempty"`
	CreatedTime       *wire.Time `json:"createdTime,omitempty"`
	LastUpdatedTime   *wire.Time `json:"lastUpdatedTime,omitempty"`
}

func (s *Service) workloadOutput(w storage.WorkloadIdentity, withTimes bool) *workloadIdentityOutput {
	out := &workloadIdentityOutput{Name: w.Name, Arn: s.cfg.ARNs.Workload(w.Name), AllowedReturnURLs: w.AllowedReturnURLs}
	if withTimes {
		created, updated := epoch(w.CreatedAt), epoch(w.UpdatedAt)
		out.CreatedTime, out.LastUpdatedTime = &created, &updated
	}
	return out
}

func (s *Service) createWorkloadIdentity(ctx context.Context, _ *wire.Call, in *createWorkloadIdentityInput) (*workloadIdentityOutput, error) {
	now := time.Now()
	w := storage.WorkloadIdentity{Name: in.Name, AllowedReturnURLs: in.ReturnURLs, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateWorkloadIdentity(ctx, w, in.Tags); err != nil {
		return nil, storageError(err, "workload identity", in.Name)
	}
	return s.workloadOutput(w, false), nil
}

type workloadNameInput struct {
	Name string `json:"name"`
}

func (in *workloadNameInput) Validate(c *wire.Checker) {
	c.String("name", in.Name, 3, 255, workloadNamePattern)
}

func (s *Service) getWorkloadIdentity(ctx context.Context, _ *wire.Call, in *workloadNameInput) (*workloadIdentityOutput, error) {
	w, err := s.store.GetWorkloadIdentity(ctx, in.Name)
	if err != nil {
		return nil, storageError(err, "workload identity", in.Name)
	}
	return s.workloadOutput(w, true), nil
}

type updateWorkloadIdentityInput struct {
	Name string `json:"name"`
	// A present list replaces the stored one; an absent one leaves it.
	ReturnURLs *[]string `json:"allowedResourceOauth2ReturnUrls,omitempty"`
}

func (in *updateWorkloadIdentityInput) Validate(c *wire.Checker) {
	c.String("name", in.Name, 3, 255, workloadNamePattern)
	if in.ReturnURLs != nil {
		checkReturnURLs(c, *in.ReturnURLs)
	}
}

func (s *Service) updateWorkloadIdentity(ctx context.Context, _ *wire.Call, in *updateWorkloadIdentityInput) (*workloadIdentityOutput, error) {
	w, err := s.store.UpdateWorkloadIdentity(ctx, in.Name, func(w storage.WorkloadIdentity) (storage.WorkloadIdentity, error) {
		if in.ReturnURLs != nil {
			w.AllowedReturnURLs = *in.ReturnURLs
		}
		return w, nil
	})
	if err != nil {
		return nil, storageError(err, "workload identity", in.Name)
	}
	return s.workloadOutput(w, true), nil
}

func (s *Service) deleteWorkloadIdentity(ctx context.Context, _ *wire.Call, in *workloadNameInput) (*struct{}, error) {
	return nil, storageError(s.store.DeleteWorkloadIdentity(ctx, in.Name), "workload identity", in.Name)
}

type listInput struct {
	NextToken  *string `json:"nextToken,omitempty"`
	MaxResults *int    `json:"maxResults,omitempty"`
}

type listWorkloadIdentitiesInput struct{ listInput }

func (in *listWorkloadIdentitiesInput) Validate(c *wire.Checker) {
	c.Range("maxResults", in.MaxResults, 1, 20)
}

type workloadIdentityItem struct {
	Name string `json:"name"`
	Arn  string `json:"workloadIdentityArn"`
}

type listWorkloadIdentitiesOutput struct {
	Items     []workloadIdentityItem `json:"workloadIdentities"`
	NextToken *string                `json:"nextToken,omitempty"`
}

func (s *Service) listWorkloadIdentities(ctx context.Context, _ *wire.Call, in *listWorkloadIdentitiesInput) (*listWorkloadIdentitiesOutput, error) {
	after, err := wire.ParseNextToken("nextToken", in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults, 20)
	ws, err := s.store.ListWorkloadIdentities(ctx, storage.Page{After: after, Limit: limit + 1})
	if err != nil {
		return nil, wire.Internal(err)
	}
	ws, next := paginate(ws, limit, func(w storage.WorkloadIdentity) string { return w.Name })
	out := &listWorkloadIdentitiesOutput{Items: make([]workloadIdentityItem, len(ws)), NextToken: next}
	for i, w := range ws {
		out.Items[i] = workloadIdentityItem{Name: w.Name, Arn: s.cfg.ARNs.Workload(w.Name)}
	}
	return out, nil
}
