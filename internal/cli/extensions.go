package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/behalf-dev/behalf/internal/behalfapi"
)

// extensions lets the official SDK client carry behalf's extension members:
// it merges add into the JSON request body after the SDK serialized it (and
// before it is signed), and keeps the raw response body for members the
// SDK's model does not know.
type extensions struct {
	add map[string]any
	raw []byte
}

func (e *extensions) option(o *bedrockagentcorecontrol.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		if len(e.add) > 0 {
			if err := s.Serialize.Add(middleware.SerializeMiddlewareFunc("behalfExtensionMembers", e.serialize), middleware.After); err != nil {
				return err
			}
		}
		return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("behalfRawResponse", e.deserialize), middleware.After)
	})
}

func (e *extensions) serialize(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
	req, ok := in.Request.(*smithyhttp.Request)
	if !ok {
		return next.HandleSerialize(ctx, in)
	}
	body := map[string]any{}
	if stream := req.GetStream(); stream != nil {
		raw, err := io.ReadAll(stream)
		if err != nil {
			return middleware.SerializeOutput{}, middleware.Metadata{}, err
		}
		if len(bytes.TrimSpace(raw)) > 0 {
			if err := json.Unmarshal(raw, &body); err != nil {
				return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("extension members: %w", err)
			}
		}
	}
	for k, v := range e.add {
		body[k] = v
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return middleware.SerializeOutput{}, middleware.Metadata{}, err
	}
	if req, err = req.SetStream(bytes.NewReader(raw)); err != nil {
		return middleware.SerializeOutput{}, middleware.Metadata{}, err
	}
	in.Request = req
	return next.HandleSerialize(ctx, in)
}

func (e *extensions) deserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleDeserialize(ctx, in)
	if res, ok := out.RawResponse.(*smithyhttp.Response); ok && res.Body != nil {
		raw, readErr := io.ReadAll(io.LimitReader(res.Body, 8<<20))
		_ = res.Body.Close() // read to the end; Close loses nothing
		e.raw = raw
		res.Body = io.NopCloser(bytes.NewReader(raw))
		if readErr != nil && err == nil {
			err = readErr
		}
	}
	return out, md, err
}

// policyMembers are behalf's workload identity extension members; nil
// means unrestricted, empty allows nothing.
type policyMembers struct {
	Authorizers *[]string                  `json:"allowedInboundAuthorizers,omitempty"`
	Providers   *[]behalfapi.ProviderGrant `json:"allowedCredentialProviders,omitempty"`
}

func (e *extensions) policy() policyMembers {
	var p policyMembers
	_ = json.Unmarshal(e.raw, &p)
	return p
}

// providerStatus is an API key provider's status and failureReason,
// behalf's extension members (an OAuth2 provider's are modeled).
func (e *extensions) providerStatus() (status, reason string) {
	var out struct {
		Status        string `json:"status"`
		FailureReason string `json:"failureReason"`
	}
	_ = json.Unmarshal(e.raw, &out)
	return out.Status, out.FailureReason
}

// vaultReset is ResetTokenVaultKeyMaterial's extension member.
func (e *extensions) vaultReset() behalfapi.VaultReset {
	var out struct {
		Reset behalfapi.VaultReset `json:"keyMaterialReset"`
	}
	_ = json.Unmarshal(e.raw, &out)
	return out.Reset
}
