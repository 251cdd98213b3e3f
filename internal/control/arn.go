package control

import (
	"fmt"
	"strings"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// ARNs follows AgentCore's ARN formats (docs/api.md) for one region and
// account.
type ARNs struct {
	Region    string
	AccountID string
}

func (a ARNs) prefix() string {
	return fmt.Sprintf("arn:aws:bedrock-agentcore:%s:%s:", a.Region, a.AccountID)
}

// Resource returns the ARN of a resource.
func (a ARNs) Resource(r storage.Resource) string {
	switch r.Kind {
	case storage.KindWorkloadIdentity:
		return a.prefix() + "workload-identity-directory/default/workload-identity/" + r.Name
	case storage.KindOAuth2Provider, storage.KindAPIKeyProvider:
		return a.prefix() + "token-vault/default/" + string(r.Kind) + "/" + r.Name
	case storage.KindTokenVault:
		return a.prefix() + "token-vault/" + r.Name
	case storage.KindConsentPortal:
		return a.prefix() + "consent-portal/" + r.Name
	}
	panic("control: unknown resource kind " + string(r.Kind))
}

// Workload names a workload identity.
func (a ARNs) Workload(name string) string {
	return a.Resource(storage.Resource{Kind: storage.KindWorkloadIdentity, Name: name})
}

// SecretARN names where a provider's secret lives. behalf keeps secrets in
// its own vault, not in Secrets Manager; the ARN only has the shape the
// API requires and identifies the vault record.
func (a ARNs) SecretARN(kind storage.ResourceKind, name string) string {
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:behalf/%s/%s", a.Region, a.AccountID, kind, name)
}

// KMSKeyARN names a local vault key (its id is a UUID) the way KMS would.
func (a ARNs) KMSKeyARN(uuid string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", a.Region, a.AccountID, uuid)
}

var taggableARN = wire.Pattern(`arn:(?:[^:]+)?:bedrock-agentcore:[a-z0-9-]+:[0-9]{12}:([a-z-]+/[^/]+)(?:/[a-z-]+/[^/]+)*`)

// ParseResource parses a taggable resource ARN of this region and account.
func (a ARNs) ParseResource(arn string) (storage.Resource, error) {
	invalid := func(msg string) (storage.Resource, error) {
		return storage.Resource{}, wire.Validation("resourceArn "+msg, wire.FieldError{Name: "resourceArn", Message: msg})
	}
	if len(arn) < 20 || len(arn) > 1011 || !taggableARN.MatchString(arn) {
		return invalid("is not a bedrock-agentcore resource ARN")
	}
	if !strings.HasPrefix(arn, a.prefix()) {
		return storage.Resource{}, wire.NotFound("%s is not in this server's region %s and account %s", arn, a.Region, a.AccountID)
	}
	if r, ok := a.resourceOf(arn); ok {
		return r, nil
	}
	return invalid("names a resource type behalf cannot tag")
}

// resourceOf returns the taggable resource an ARN of this region and
// account names; false for any other ARN.
func (a ARNs) resourceOf(arn string) (storage.Resource, bool) {
	rest, ok := strings.CutPrefix(arn, a.prefix())
	if !ok {
		return storage.Resource{}, false
	}
	return taggableResource(strings.Split(rest, "/"))
}

// taggableResource names the resource of an ARN's path parts, the
// inverse of Resource.
func taggableResource(parts []string) (storage.Resource, bool) {
	switch {
	case len(parts) == 4 && parts[0] == "workload-identity-directory" && parts[1] == "default" && parts[2] == "workload-identity":
		return storage.Resource{Kind: storage.KindWorkloadIdentity, Name: parts[3]}, true
	case len(parts) == 4 && parts[0] == "token-vault" && parts[1] == "default" &&
		(parts[2] == string(storage.KindOAuth2Provider) || parts[2] == string(storage.KindAPIKeyProvider)):
		return storage.Resource{Kind: storage.ResourceKind(parts[2]), Name: parts[3]}, true
	case len(parts) == 2 && parts[0] == "token-vault":
		return storage.Resource{Kind: storage.KindTokenVault, Name: parts[1]}, true
	case len(parts) == 2 && parts[0] == string(storage.KindConsentPortal) && portalIDPattern.MatchString(parts[1]):
		return storage.Resource{Kind: storage.KindConsentPortal, Name: parts[1]}, true
	}
	return storage.Resource{}, false
}
