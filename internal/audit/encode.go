package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"

	"github.com/behalf-dev/behalf/internal/storage"
)

// encodingVersion opens every encoding, so that a later format can never
// produce the bytes of a different record under this one.
const encodingVersion = "behalf-audit-v1"

// encode appends to buf the canonical encoding of every field of r but
// Hash, in this order:
//
//	str(version) | bytes(PrevHash) | u64(Seq) | u64(Time as unix µs) |
//	str(RequestID) | str(Principal) | str(Workload) | str(User) |
//	str(Operation) | str(Provider) | uvarint(len(Scopes)) | str(scope)… |
//	str(Flow) | str(Outcome) | str(ErrorType) | str(Resource)
//
// where str and bytes are a uvarint length followed by the bytes and the
// integers are big-endian two's complement. Every field is delimited, so no
// two records share an encoding. Time has microsecond precision, as stored;
// a nil and an empty Scopes or PrevHash encode alike.
func encode(buf []byte, r *storage.AuditRecord) []byte {
	buf = appendString(buf, encodingVersion)
	buf = appendString(buf, string(r.PrevHash))
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.Seq)) //nolint:gosec // G115: two's complement, as the encoding above says
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.Time.UnixMicro()))
	for _, s := range []string{r.RequestID, r.Principal, r.Workload, r.User, r.Operation, r.Provider} {
		buf = appendString(buf, s)
	}
	buf = binary.AppendUvarint(buf, uint64(len(r.Scopes)))
	for _, s := range r.Scopes {
		buf = appendString(buf, s)
	}
	for _, s := range []string{r.Flow, r.Outcome, r.ErrorType, r.Resource} {
		buf = appendString(buf, s)
	}
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// hasher computes record hashes: HMAC-SHA256 under the chain key of the
// record's encoding, which starts with the predecessor's hash. It is not
// safe for concurrent use.
type hasher struct {
	mac hash.Hash
	buf []byte
}

func newHasher(key []byte) *hasher {
	return &hasher{mac: hmac.New(sha256.New, key)}
}

func (h *hasher) sum(r *storage.AuditRecord) []byte {
	h.buf = encode(h.buf[:0], r)
	h.mac.Reset()
	h.mac.Write(h.buf)
	return h.mac.Sum(nil)
}
