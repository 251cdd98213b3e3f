package control

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/behalf-dev/behalf/internal/secretsource"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
	"github.com/behalf-dev/behalf/internal/wire"
)

// Secret sources (SecretSourceType): behalf keeps the secret sealed in
// its vault, or reads it from outside behalf when it is used.
const (
	sourceManaged  = "MANAGED"
	sourceExternal = "EXTERNAL"
)

// secretRefInput is AgentCore's SecretReference.
type secretRefInput struct {
	SecretID string `json:"secretId"`
	JSONKey  string `json:"jsonKey"`
}

// secretInput is a provider's secret as a request gives it: the value
// (source MANAGED, the default), or with source EXTERNAL where it is kept;
// members names the request's members for it.
type secretInput struct {
	value, source *string
	ref           *secretRefInput
	members       secretMembers
}

// secretMembers name a secret's members in a request: clientSecret… or
// apiKey…, with their path.
type secretMembers struct {
	value, source, config string
	maxLen                int
}

func (in secretInput) external() bool { return in.source != nil && *in.source == sourceExternal }

// given reports whether the request gives the secret at all: an update
// that does not keeps the stored one.
func (in secretInput) given() bool { return in.value != nil || in.source != nil || in.ref != nil }

// check validates the secret's members: EXTERNAL takes the reference
// ("Required when … EXTERNAL") and no value; MANAGED the value and no
// reference. required is false for an update, which may leave all out.
func (in secretInput) check(c *wire.Checker, required bool) {
	m := in.members
	if !required && !in.given() {
		return
	}
	if in.source != nil {
		c.Enum(m.source, *in.source, true, sourceManaged, sourceExternal)
	}
	if in.external() {
		if in.ref == nil {
			c.Failf(m.config, "is required when %s is EXTERNAL", m.source)
		} else {
			c.String(m.config+".secretId", in.ref.SecretID, 1, 2048, nil)
			c.String(m.config+".jsonKey", in.ref.JSONKey, 1, 128, nil)
		}
		if in.value != nil {
			c.Failf(m.value, "must be absent when %s is EXTERNAL: behalf reads the secret from %s", m.source, m.config)
		}
		return
	}
	if in.ref != nil {
		c.Failf(m.config, "is valid only with %s EXTERNAL", m.source)
	}
	if in.value == nil || *in.value == "" {
		c.Failf(m.value, "is required")
		return
	}
	c.OptString(m.value, in.value, 1, m.maxLen, nil)
}

// storedSecret is a provider's secret as storage keeps it: sealed, or the
// reference to where it is kept outside behalf. Exactly one is set.
type storedSecret struct {
	sealed storage.Sealed
	ref    *storage.SecretRef
}

// keepSecret turns a validated secret into what storage keeps: the value
// sealed for binding b, or the reference once the external secrets
// configuration can read it (else a ValidationException: behalf would
// never be able to use it). The secret is not read here; the first use
// reads it.
func (s *Service) keepSecret(ctx context.Context, in secretInput, b vault.Binding) (storedSecret, error) {
	if !in.external() {
		// A client that authenticates with its key (PRIVATE_KEY_JWT) gives
		// no secret: its slot holds an empty one.
		sealed, err := s.sealFor(ctx, aws.ToString(in.value), b)
		return storedSecret{sealed: sealed}, err
	}
	ref := &storage.SecretRef{SecretID: in.ref.SecretID, JSONKey: in.ref.JSONKey}
	if err := s.Secrets.Check(ref.SecretID); err != nil {
		var e *secretsource.Error
		if !errors.As(err, &e) {
			return storedSecret{}, err
		}
		field := in.members.config + ".secretId"
		return storedSecret{}, wire.Validation(field+": "+e.Describe(), wire.FieldError{Name: field, Message: e.Describe()})
	}
	return storedSecret{ref: ref}, nil
}

// auditSecret names an external secret's reference in the change's
// record; never the secret.
func auditSecret(c *wire.Call, ref *storage.SecretRef) {
	if ref != nil {
		c.Audit.Resource = secretsource.AuditName(*ref)
	}
}

// secretOutput is where a provider's secret is kept, as the outputs
// give it: for MANAGED, the Secrets Manager-shaped ARN of behalf's own
// record; for EXTERNAL, the secret id as given (the ARN when it is one)
// and the JSON key.
func (s *Service) secretOutput(kind storage.ResourceKind, name string, ref *storage.SecretRef) (arn secretARN, source string, jsonKey *string) {
	if ref == nil {
		return secretARN{s.cfg.ARNs.SecretARN(kind, name)}, sourceManaged, nil
	}
	key := ref.JSONKey
	return secretARN{ref.SecretID}, sourceExternal, &key
}
