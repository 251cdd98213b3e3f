package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"

	"github.com/behalf-dev/behalf/internal/storage"
)

// sealVersion opens every sealed encoding, apart from record hashes'.
const sealVersion = "behalf-audit-checkpoint-v1"

// sealer seals checkpoints and verification tokens under the chain key:
// HMAC-SHA256 of the version, a purpose (a checkpoint's name, or "token"),
// the seq and the hash, each length-prefixed as in encode. The purpose
// keeps a "verified" checkpoint from passing as the retention "start" one.
type sealer struct{ key []byte }

func (s sealer) seal(purpose string, cp storage.AuditCheckpoint) []byte {
	buf := appendString(nil, sealVersion)
	buf = appendString(buf, purpose)
	buf = binary.BigEndian.AppendUint64(buf, uint64(cp.Seq))
	buf = appendString(buf, string(cp.Hash))
	mac := hmac.New(sha256.New, s.key)
	mac.Write(buf)
	return mac.Sum(nil)
}

// token encodes a point to resume verification from, and whether every
// record up to it verified, as opaque base64url: seq, clean, hash, MAC.
func (s sealer) token(cp storage.AuditCheckpoint, clean bool) string {
	purpose := "token/dirty"
	if clean {
		purpose = "token/clean"
	}
	buf := binary.BigEndian.AppendUint64(nil, uint64(cp.Seq))
	buf = append(buf, boolByte(clean))
	buf = appendString(buf, string(cp.Hash))
	buf = append(buf, s.seal(purpose, cp)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// openToken decodes and checks a token from token.
func (s sealer) openToken(t string) (cp storage.AuditCheckpoint, clean, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(raw) < 9+1+sha256.Size {
		return cp, false, false
	}
	cp.Seq, clean = int64(binary.BigEndian.Uint64(raw)), raw[8] == 1
	n, w := binary.Uvarint(raw[9:])
	rest := raw[9:]
	if w <= 0 || uint64(len(rest)-w) != n+sha256.Size {
		return cp, false, false
	}
	cp.Hash = rest[w : w+int(n)]
	if len(cp.Hash) == 0 {
		cp.Hash = nil
	}
	purpose := "token/dirty"
	if clean {
		purpose = "token/clean"
	}
	if raw[8] > 1 || cp.Seq < 0 || !hmac.Equal(s.seal(purpose, cp), rest[w+int(n):]) {
		return storage.AuditCheckpoint{}, false, false
	}
	return cp, clean, true
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
