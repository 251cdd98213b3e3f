package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/behalf-dev/behalf/internal/storage"
)

// sealVersion opens every sealed encoding, apart from record hashes'.
const sealVersion = "behalf-audit-checkpoint-v1"

// sealer seals checkpoints and verification tokens under the chain key:
// HMAC-SHA256 of the version, a purpose (a checkpoint's name, or a
// token's), the seq in decimal and the hash, each length-prefixed as in
// encode. The purpose keeps a "verified" checkpoint from passing as the
// retention "start" one.
type sealer struct{ key []byte }

func (s sealer) seal(purpose string, cp storage.AuditCheckpoint) []byte {
	buf := appendString(nil, sealVersion)
	buf = appendString(buf, purpose)
	buf = appendString(buf, strconv.FormatInt(cp.Seq, 10))
	buf = appendString(buf, string(cp.Hash))
	mac := hmac.New(sha256.New, s.key)
	mac.Write(buf)
	return mac.Sum(nil)
}

// tokenPurpose seals a token; clean says every record up to it verified.
func tokenPurpose(clean bool) string {
	if clean {
		return "token/clean"
	}
	return "token/dirty"
}

// token encodes a point to resume verification from as
// seq.clean.hash.mac, the last two in hex.
func (s sealer) token(cp storage.AuditCheckpoint, clean bool) string {
	return strings.Join([]string{strconv.FormatInt(cp.Seq, 10), strconv.FormatBool(clean),
		hex.EncodeToString(cp.Hash), hex.EncodeToString(s.seal(tokenPurpose(clean), cp))}, ".")
}

// openToken decodes and checks a token from token.
func (s sealer) openToken(t string) (cp storage.AuditCheckpoint, clean, ok bool) {
	parts := strings.Split(t, ".")
	if len(parts) != 4 {
		return cp, false, false
	}
	seq, errSeq := strconv.ParseInt(parts[0], 10, 64)
	clean, errClean := strconv.ParseBool(parts[1])
	hash, errHash := hex.DecodeString(parts[2])
	mac, errMAC := hex.DecodeString(parts[3])
	if errSeq != nil || errClean != nil || errHash != nil || errMAC != nil || seq < 0 {
		return cp, false, false
	}
	cp = storage.AuditCheckpoint{Seq: seq, Hash: hash}
	if len(hash) == 0 {
		cp.Hash = nil
	}
	if !hmac.Equal(s.seal(tokenPurpose(clean), cp), mac) {
		return storage.AuditCheckpoint{}, false, false
	}
	return cp, clean, true
}
