package server

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/google/uuid"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
)

// Purposes of server keys.
const (
	// auditKeyPurpose names the key of the audit chain's HMAC.
	auditKeyPurpose = "audit-chain"
	// telemetryUserKeyPurpose names the key that hashes user ids in
	// telemetry (telemetry.UserHasher).
	telemetryUserKeyPurpose = "telemetry-user"
	// gatewayStateKeyPurpose names the key that signs the mounted
	// gateway's requestStates (gateway.Options.StateKey).
	gatewayStateKeyPurpose = "gateway-request-state"
	// portalKeyPurpose names the key that seals consent portals' session
	// cookies and derives their sign-in state and form tokens.
	portalKeyPurpose = "consent-portal"
	// consoleKeyPurpose names the key that seals the admin console's
	// session cookies and derives its sign-in state and form tokens.
	consoleKeyPurpose = "admin-console"
)

// serverKey returns the oldest server key of a purpose, creating one if
// none exists. Replicas that race to create one agree on the oldest.
func serverKey(ctx context.Context, st storage.Storage, v *vault.Vault, purpose string) ([]byte, error) {
	keys, err := st.ListServerKeys(ctx, purpose)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		id := uuid.Must(uuid.NewV7()).String()
		sealed, err := v.Seal(ctx, raw, vault.ServerKeyBinding(purpose, id))
		clear(raw)
		if err != nil {
			return nil, err
		}
		if err := st.CreateServerKey(ctx, storage.ServerKey{Purpose: purpose, ID: id, Key: sealed}); err != nil {
			return nil, err
		}
		if keys, err = st.ListServerKeys(ctx, purpose); err != nil {
			return nil, err
		}
	}
	k := keys[0]
	raw, err := v.Open(ctx, k.Key, vault.ServerKeyBinding(purpose, k.ID))
	if err != nil {
		return nil, fmt.Errorf("open %s key: %w", purpose, err)
	}
	return raw, nil
}

// serverKeys returns the audit chain's key and the key that hashes user
// ids in telemetry.
func (s *Server) serverKeys(ctx context.Context) (auditKey, userKey []byte, err error) {
	if auditKey, err = serverKey(ctx, s.store, s.vault, auditKeyPurpose); err != nil {
		return nil, nil, fmt.Errorf("audit chain key: %w", err)
	}
	if userKey, err = serverKey(ctx, s.store, s.vault, telemetryUserKeyPurpose); err != nil {
		return nil, nil, fmt.Errorf("telemetry user key: %w", err)
	}
	return auditKey, userKey, nil
}

// auditReader lets the control plane list and verify the log.
type auditReader struct {
	store storage.Storage
	key   []byte
}

func (a auditReader) Verify(ctx context.Context, opts audit.VerifyOptions) (audit.Report, error) {
	return audit.VerifyFrom(ctx, a.store, a.key, opts)
}
