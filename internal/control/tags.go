package control

import (
	"context"
	"net/http"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// The tagging operations are the only ones with a path label, the URL-escaped
// resource ARN, and (for UntagResource) a query parameter.

type tagResourceInput struct {
	Tags map[string]string `json:"tags"`
}

func (in *tagResourceInput) Validate(c *wire.Checker) {
	c.Required("tags", in.Tags != nil)
	c.Tags("tags", in.Tags)
}

func (s *Service) resourceFrom(c *wire.Call) (storage.Resource, error) {
	arn := c.Request.PathValue("resourceArn")
	r, err := s.cfg.ARNs.ParseResource(arn)
	if err == nil {
		c.Audit.Resource = arn // a refused ARN is not recorded
	}
	return r, err
}

func (s *Service) tagResource(ctx context.Context, c *wire.Call) (int, any, error) {
	r, err := s.resourceFrom(c)
	if err != nil {
		return 0, nil, err
	}
	var in tagResourceInput
	if err := wire.DecodeAndValidate(c.Body, &in); err != nil {
		return 0, nil, err
	}
	if err := c.Change(s.store).TagResource(ctx, r, in.Tags); err != nil {
		return 0, nil, wire.StorageError(err, string(r.Kind), r.Name)
	}
	return http.StatusNoContent, nil, nil
}

func (s *Service) untagResource(ctx context.Context, c *wire.Call) (int, any, error) {
	r, err := s.resourceFrom(c)
	if err != nil {
		return 0, nil, err
	}
	keys := c.Request.URL.Query()["tagKeys"]
	var check wire.Checker
	check.TagKeys("tagKeys", keys)
	if err := check.Err(); err != nil {
		return 0, nil, err
	}
	if err := c.Change(s.store).UntagResource(ctx, r, keys); err != nil {
		return 0, nil, wire.StorageError(err, string(r.Kind), r.Name)
	}
	return http.StatusNoContent, nil, nil
}

type listTagsOutput struct {
	Tags map[string]string `json:"tags"`
}

func (s *Service) listTags(ctx context.Context, c *wire.Call) (int, any, error) {
	r, err := s.resourceFrom(c)
	if err != nil {
		return 0, nil, err
	}
	tags, err := s.store.ListTags(ctx, r)
	if err != nil {
		return 0, nil, wire.StorageError(err, string(r.Kind), r.Name)
	}
	if tags == nil {
		tags = map[string]string{}
	}
	return http.StatusOK, listTagsOutput{Tags: tags}, nil
}
