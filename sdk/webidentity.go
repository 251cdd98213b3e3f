package sdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/smithy-go"
)

// WorkloadJWT says which workload JWT to get: behalf's GetWorkloadJWT
// input.
type WorkloadJWT struct {
	// Audiences are the relying parties the JWT is for (its aud), 1 to 10:
	// for an authorization server's jwt-bearer grant, the token endpoint
	// or issuer it expects.
	Audiences []string
	// Duration is the JWT's lifetime, one minute to one hour, in whole
	// seconds; zero means behalf's default, five minutes. It never
	// outlives the workload token.
	Duration time.Duration
	// WorkloadToken defaults to the context's (sdk.WorkloadToken).
	WorkloadToken string
}

// GetWorkloadJWT asks behalf for a JWT of its own naming the agent's
// workload identity (sub: its ARN), for relying parties that trust
// behalf's workload JWT issuer (<behalf>/workload-identity, with its
// OpenID Connect discovery document): an authorization server taking it
// as an RFC 7523 jwt-bearer assertion, as the MCP workload identity
// federation extension does, with no client secret. It is behalf's
// counterpart of AWS STS GetWebIdentityToken, and a behalf extension: api
// must have behalf as its BaseEndpoint. It returns the JWT and when it
// expires. A refusal is a smithy.APIError (ValidationException,
// AccessDeniedException, …).
func GetWorkloadJWT(ctx context.Context, api *bedrockagentcore.Client, w WorkloadJWT) (jwt string, expiry time.Time, err error) {
	in := struct {
		WorkloadIdentityToken string   `json:"workloadIdentityToken"`
		Audience              []string `json:"audience"`
		DurationSeconds       *int64   `json:"durationSeconds,omitempty"`
	}{w.WorkloadToken, w.Audiences, nil}
	if in.WorkloadIdentityToken == "" {
		in.WorkloadIdentityToken = WorkloadToken(ctx)
	}
	if in.WorkloadIdentityToken == "" {
		return "", time.Time{}, ErrNoWorkloadToken
	}
	if w.Duration != 0 {
		s := int64(w.Duration / time.Second)
		in.DurationSeconds = &s
	}
	var out struct {
		JWT       string  `json:"jwt"`
		ExpiresAt float64 `json:"expiresAt"`
	}
	if err := callBehalf(ctx, api, "GetWorkloadJWT", in, &out); err != nil {
		return "", time.Time{}, err
	}
	sec, frac := math.Modf(out.ExpiresAt)
	return out.JWT, time.Unix(int64(sec), int64(frac*1e9)), nil
}

// maxResponse bounds what a behalf extension answers.
const maxResponse = 1 << 20

// callBehalf calls a behalf extension operation with api's endpoint,
// credentials, signer and HTTP client: a SigV4-signed JSON POST to
// /behalf/<op>, the protocol of the AgentCore operations.
func callBehalf(ctx context.Context, api *bedrockagentcore.Client, op string, in, out any) error {
	o := api.Options()
	if o.BaseEndpoint == nil || o.Credentials == nil {
		return fmt.Errorf("sdk: %s is behalf's: the client needs behalf as its BaseEndpoint, and credentials", op)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*o.BaseEndpoint, "/")+"/behalf/"+op, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	creds, err := o.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("sdk: %s: credentials: %w", op, err)
	}
	sum := sha256.Sum256(body)
	if err := o.HTTPSignerV4.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "bedrock-agentcore", o.Region, time.Now()); err != nil {
		return fmt.Errorf("sdk: %s: sign: %w", op, err)
	}
	res, err := o.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("sdk: %s: %w", op, err)
	}
	defer func() { _ = res.Body.Close() }() // read only: Close loses nothing
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("sdk: %s: %w", op, err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &e) // a body that is no error shape leaves the header's type
		if e.Type == "" {
			e.Type = res.Header.Get("X-Amzn-ErrorType")
		}
		if e.Type == "" {
			e.Type = http.StatusText(res.StatusCode)
		}
		fault := smithy.FaultClient
		if res.StatusCode >= http.StatusInternalServerError {
			fault = smithy.FaultServer
		}
		return &smithy.GenericAPIError{Code: e.Type, Message: e.Message, Fault: fault}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return errors.New("sdk: " + op + ": the answer is not its JSON output")
	}
	return nil
}
