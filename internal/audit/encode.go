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
//	[ | uvarint(len(Actors)) | str(actor)… ]
//
// where str and bytes are a uvarint length followed by the bytes and the
// integers are big-endian two's complement. Every field is delimited, so no
// two records share an encoding. Time has microsecond precision, as stored;
// a nil and an empty Scopes or PrevHash encode alike.
//
// Actors came later, as a trailing field written only when there is at
// least one: a record without actors encodes as it always did, so every
// hash already in a log still verifies under the same version. It stays
// injective because the encoding is the whole HMAC input, never followed
// by anything: after Resource, either the input ends (no actors) or a
// count of at least one follows with exactly that many delimited strings
// and then the end. Two records that differ in their actors thus differ in
// the bytes after Resource, or in whether there are any. A nil and an
// empty Actors encode alike, as storage keeps them.
func encode(buf []byte, r *storage.AuditRecord) []byte {
	buf = appendString(buf, encodingVersion)
	buf = appendString(buf, string(r.PrevHash))
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.Seq)) //nolint:gosec // G115: two's complement, as the encoding above says
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.Time.UnixMicro()))
	for _, s := range []string{r.RequestID, r.Principal, r.Workload, r.User, r.Operation, r.Provider} {
		buf = appendString(buf, s)
	}
	buf = appendStrings(buf, r.Scopes)
	for _, s := range []string{r.Flow, r.Outcome, r.ErrorType, r.Resource} {
		buf = appendString(buf, s)
	}
	if len(r.Actors) > 0 {
		buf = appendStrings(buf, r.Actors)
	}
	return buf
}

// appendStrings appends a count and then each string.
func appendStrings(buf []byte, list []string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(list)))
	for _, s := range list {
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
