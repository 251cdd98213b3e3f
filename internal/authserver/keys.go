package authserver

import (
	"github.com/behalf-dev/behalf/internal/signingkeys"
)

// SigningKeyPurpose names the server keys that sign access tokens.
const SigningKeyPurpose = "oauth-signing"

// newSigningKeys is the set of the access tokens' ES256 keys: the newest
// signs at once (resource servers fetch the key set again for a kid they
// do not know); an older one stays in the JWKS until every token it
// signed has expired, as workload access token keys do (package wat).
func newSigningKeys(opts Options) *signingkeys.Set {
	return signingkeys.New(opts.Store, opts.Vault, signingkeys.Options{Purpose: SigningKeyPurpose,
		Rotation: opts.Config.SigningKeyRotation, Retain: opts.Config.AccessTokenTTL, Now: opts.Now})
}
