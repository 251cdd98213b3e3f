package behalfapi

// GetKeyRotationStatusOutput is the output of GetKeyRotationStatus: the
// token vault's key-encryption keys and the rotating signing key sets,
// by id and date; never any key material.
type GetKeyRotationStatusOutput struct {
	Vault       VaultKeys       `json:"vault"`
	SigningKeys []SigningKeySet `json:"signingKeySets"`
}

// VaultKeys are the token vault's key-encryption keys: which seals new
// secrets, the keyring's keys, and how many stored secrets are still
// sealed under another key (re-wrapping in the background), counted up
// to MaxStaleCount.
type VaultKeys struct {
	KeyType          string     `json:"keyType"`
	KMSKeyARN        string     `json:"kmsKeyArn,omitempty"`
	CurrentKeyID     string     `json:"currentKeyId"`
	LastModified     Time       `json:"lastModifiedDate"`
	Keys             []VaultKey `json:"keys"`
	StaleSecrets     int        `json:"staleSecrets"`
	StaleSecretsMore bool       `json:"staleSecretsMore,omitempty"`
}

// MaxStaleCount bounds the count of secrets awaiting re-wrap.
const MaxStaleCount = 1000

// VaultKey is a key of the local keyring.
type VaultKey struct {
	KeyID string `json:"keyId"`
	// KMSKeyARN names a customer key to SetTokenVaultCMK; the service key
	// has none.
	KMSKeyARN string `json:"kmsKeyArn,omitempty"`
	Service   bool   `json:"service,omitempty"`
	Current   bool   `json:"current,omitempty"`
	Created   Time   `json:"createdTime"`
}

// SigningKeySet is a rotating key set: oauth-signing (the authorization
// server's access tokens, when it is on), mcp-client-signing (behalf's
// MCP clients' assertions) and workload-access-token (the encryption of
// workload access tokens).
type SigningKeySet struct {
	Purpose         string       `json:"purpose"`
	RotationSeconds int64        `json:"rotationSeconds"`
	NextRotation    Time         `json:"nextRotationTime"`
	Keys            []SigningKey `json:"keys"`
}

// SigningKey is one key of a set: when it was made, when it began (or
// begins) to sign, when it leaves the set (absent while it has no
// successor), and whether it signs now.
type SigningKey struct {
	KeyID        string `json:"keyId"`
	Created      Time   `json:"createdTime"`
	SigningSince Time   `json:"signingSinceTime"`
	RetireAt     *Time  `json:"retireTime,omitempty"`
	Current      bool   `json:"current,omitempty"`
}

// VaultReset is keyMaterialReset, behalf's extension member of
// ResetTokenVaultKeyMaterial's output: what went with the deleted key.
// The deleted counts are users' connections (access and refresh tokens),
// three-legged OAuth sessions and cached provider tokens; the lost lists
// name the OAuth2 and API key credential providers whose secret must be
// set again.
type VaultReset struct {
	DeletedConnections  int      `json:"deletedConnections"`
	DeletedSessions     int      `json:"deletedSessions"`
	DeletedCachedTokens int      `json:"deletedCachedTokens"`
	LostClientSecrets   []string `json:"lostClientSecrets"`
	LostAPIKeys         []string `json:"lostApiKeys"`
}
