package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/smithy-go"
)

// credentials resolves the key pair to sign with: flags, then the AWS
// environment variables, then the shared-credentials file.
func (cf *clientFlags) credentials() (aws.Credentials, error) {
	id, secret := cf.accessKeyID, cf.secretAccessKey
	if id == "" {
		id = os.Getenv("AWS_ACCESS_KEY_ID")
	}
	if secret == "" {
		secret = os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	if id != "" && secret != "" {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "flags or environment"}, nil
	}
	if id != "" || secret != "" {
		return aws.Credentials{}, errors.New("an access key id needs its secret access key (set both, as flags or AWS_* variables)")
	}
	path := cf.credentialsFile
	if path == "" {
		path = filepath.Join(cf.dataDir, "admin-credentials")
	}
	creds, err := readSharedCredentials(path, cf.profile)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("no credentials: %w (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or --credentials-file, or run `behalf serve` to create %s)", err, filepath.Join(cf.dataDir, "admin-credentials"))
	}
	return creds, nil
}

// readSharedCredentials reads one profile of an AWS shared-credentials
// (INI) file.
func readSharedCredentials(path, profile string) (aws.Credentials, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the operator names the credentials file
	if err != nil {
		return aws.Credentials{}, err
	}
	defer func() { _ = f.Close() }() // read only: Close loses nothing
	var creds aws.Credentials
	section := ""
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
		case section == profile:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "aws_access_key_id":
				creds.AccessKeyID = strings.TrimSpace(v)
			case "aws_secret_access_key":
				creds.SecretAccessKey = strings.TrimSpace(v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return aws.Credentials{}, err
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return aws.Credentials{}, fmt.Errorf("profile [%s] in %s has no aws_access_key_id and aws_secret_access_key", profile, path)
	}
	creds.Source = path
	return creds, nil
}

func (cf *clientFlags) awsConfig() (aws.Config, error) {
	creds, err := cf.credentials()
	if err != nil {
		return aws.Config{}, err
	}
	return aws.Config{
		Region:      cf.region,
		Credentials: credentials.StaticCredentialsProvider{Value: creds},
		// An interactive command should fail fast when the server is down.
		RetryMaxAttempts: 1,
	}, nil
}

// control returns the official AgentCore control-plane client.
func (cf *clientFlags) control() (*bedrockagentcorecontrol.Client, error) {
	cfg, err := cf.awsConfig()
	if err != nil {
		return nil, err
	}
	return bedrockagentcorecontrol.NewFromConfig(cfg, func(o *bedrockagentcorecontrol.Options) {
		o.BaseEndpoint = aws.String(cf.endpoint)
	}), nil
}

// call invokes a behalf extension operation: a SigV4-signed JSON POST to
// /behalf/<op>, in the same protocol as the AgentCore operations.
func (cf *clientFlags) call(ctx context.Context, op string, in, out any) error {
	cfg, err := cf.awsConfig()
	if err != nil {
		return err
	}
	creds, _ := cfg.Credentials.Retrieve(ctx)
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(cf.endpoint, "/")+"/behalf/"+op, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "bedrock-agentcore", cf.region, time.Now()); err != nil {
		return err
	}
	res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return cf.describe(err)
	}
	defer func() { _ = res.Body.Close() }() // read only: Close loses nothing
	raw, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &e)
		if e.Type == "" {
			e.Type = res.Header.Get("X-Amzn-ErrorType")
		}
		return fmt.Errorf("%s: %s", e.Type, e.Message)
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// describe turns client errors into one actionable line.
func (cf *clientFlags) describe(err error) error {
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %s", apiErr.ErrorCode(), apiErr.ErrorMessage())
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return fmt.Errorf("cannot reach the behalf server at %s (is `behalf serve` running? set --endpoint or BEHALF_ENDPOINT)", cf.endpoint)
	}
	return err
}
