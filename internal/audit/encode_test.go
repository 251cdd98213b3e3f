package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/behalf-dev/behalf/internal/storage"
)

// decode is encode's inverse. It accepts only canonical encodings (minimal
// varints, nothing left over), so that encode(decode(b)) == b whenever it
// succeeds.
func decode(b []byte) (storage.AuditRecord, error) {
	d := decoder{b: b}
	if d.str() != encodingVersion {
		return storage.AuditRecord{}, errors.New("unknown version")
	}
	var r storage.AuditRecord
	if prev := d.str(); prev != "" {
		r.PrevHash = []byte(prev)
	}
	r.Seq = int64(d.u64())                        //nolint:gosec // G115: two's complement, as encode writes it
	r.Time = time.UnixMicro(int64(d.u64())).UTC() //nolint:gosec // G115: as above
	for _, f := range []*string{&r.RequestID, &r.Principal, &r.Workload, &r.User, &r.Operation, &r.Provider} {
		*f = d.str()
	}
	if n := d.uvarint(); n > 0 {
		if n > uint64(len(d.b)) { // each scope takes at least a byte
			return storage.AuditRecord{}, errors.New("too many scopes")
		}
		r.Scopes = make([]string, n)
		for i := range r.Scopes {
			r.Scopes[i] = d.str()
		}
	}
	for _, f := range []*string{&r.Flow, &r.Outcome, &r.ErrorType, &r.Resource} {
		*f = d.str()
	}
	if d.err == nil && len(d.b) != 0 { // the actors, written only when there are some
		n := d.uvarint()
		if n == 0 || n > uint64(len(d.b)) {
			return storage.AuditRecord{}, errors.Join(d.err, errors.New("an empty or too long list of actors"))
		}
		r.Actors = make([]string, n)
		for i := range r.Actors {
			r.Actors[i] = d.str()
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	return r, d.err
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
		d.err = errors.New("bad or non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.err = errors.Join(d.err, errors.New("short integer"))
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errors.Join(d.err, errors.New("short string"))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// normalized is r as decode returns it: empty lists as nil, UTC time.
func normalized(r storage.AuditRecord) storage.AuditRecord {
	if len(r.PrevHash) == 0 {
		r.PrevHash = nil
	}
	if len(r.Scopes) == 0 {
		r.Scopes = nil
	}
	if len(r.Actors) == 0 {
		r.Actors = nil
	}
	r.Time = time.UnixMicro(r.Time.UnixMicro()).UTC()
	r.Hash = nil
	return r
}

func sampleRecord() storage.AuditRecord {
	return storage.AuditRecord{
		Seq:       42,
		Time:      time.Date(2025, 7, 1, 12, 30, 0, 123456000, time.UTC),
		RequestID: "req-1",
		Principal: "AKIARUNTIME",
		Workload:  "agent",
		User:      "alice",
		Operation: "GetResourceOauth2Token",
		Provider:  "github",
		Scopes:    []string{"repo", "read:user"},
		Flow:      "USER_FEDERATION",
		Outcome:   OutcomeSuccess,
		PrevHash:  bytes.Repeat([]byte{0xab}, 32),
	}
}

// TestEncodingIsStable pins the format: records already in a log must
// verify with every later build.
func TestEncodingIsStable(t *testing.T) {
	r := sampleRecord()
	key := bytes.Repeat([]byte{7}, KeySize)
	const want = "2187a15046d1c84c29ad59968c83c13588fbd7e84974056b4219f74168a41c47"
	if got := hex.EncodeToString(newHasher(key).sum(&r)); got != want {
		t.Errorf("hash of the sample record = %s, want %s; a format change needs a new version label", got, want)
	}
	// An empty list of actors is no actors: the hash is the one above.
	r.Actors = []string{}
	if got := hex.EncodeToString(newHasher(key).sum(&r)); got != want {
		t.Errorf("hash of the sample record with empty actors = %s, want %s", got, want)
	}
	r.Actors = []string{"agent-a", "agent-b"}
	const withActors = "81a33bc852e4dee74a1ed99f0e351835077cb71f0248fe892b4ada03cfc4d539"
	if got := hex.EncodeToString(newHasher(key).sum(&r)); got != withActors {
		t.Errorf("hash of the sample record with actors = %s, want %s", got, withActors)
	}
}

// TestEncodingSeparatesFields checks the cases a naive concatenation would
// confuse.
func TestEncodingSeparatesFields(t *testing.T) {
	base := sampleRecord()
	variants := map[string]func(r *storage.AuditRecord){
		"scope boundary":    func(r *storage.AuditRecord) { r.Scopes = []string{"rep", "oread:user"} },
		"scopes joined":     func(r *storage.AuditRecord) { r.Scopes = []string{"reporead:user"} },
		"scope added":       func(r *storage.AuditRecord) { r.Scopes = append(r.Scopes, "") },
		"scopes reordered":  func(r *storage.AuditRecord) { r.Scopes = []string{"read:user", "repo"} },
		"field boundary":    func(r *storage.AuditRecord) { r.Workload, r.User = "agenta", "lice" },
		"fields swapped":    func(r *storage.AuditRecord) { r.Workload, r.User = r.User, r.Workload },
		"seq":               func(r *storage.AuditRecord) { r.Seq++ },
		"time":              func(r *storage.AuditRecord) { r.Time = r.Time.Add(time.Microsecond) },
		"prev hash":         func(r *storage.AuditRecord) { r.PrevHash[0]++ },
		"outcome":           func(r *storage.AuditRecord) { r.Outcome = OutcomeFailure },
		"error moved":       func(r *storage.AuditRecord) { r.Flow, r.ErrorType = "", r.Flow },
		"resource":          func(r *storage.AuditRecord) { r.Resource = "principal/AKID" },
		"resource moved":    func(r *storage.AuditRecord) { r.Outcome, r.Resource = "", r.Outcome },
		"request id":        func(r *storage.AuditRecord) { r.RequestID = "req-2" },
		"principal":         func(r *storage.AuditRecord) { r.Principal = "" },
		"provider into ops": func(r *storage.AuditRecord) { r.Operation, r.Provider = r.Operation+r.Provider, "" },
		"actor added":       func(r *storage.AuditRecord) { r.Actors = []string{"agent-a"} },
		"empty actor":       func(r *storage.AuditRecord) { r.Actors = []string{""} },
	}
	want := encode(nil, &base)
	for name, change := range variants {
		r := sampleRecord()
		r.Scopes = append([]string(nil), base.Scopes...)
		change(&r)
		if bytes.Equal(encode(nil, &r), want) {
			t.Errorf("%s: two different records share an encoding", name)
		}
	}
	chained := sampleRecord()
	chained.Actors = []string{"agent-a", "agent-b"}
	wantChained := encode(nil, &chained)
	for name, actors := range map[string][]string{
		"actor boundary": {"agent-aa", "gent-b"}, "actors joined": {"agent-aagent-b"}, "actors reordered": {"agent-b", "agent-a"},
		"actor dropped": {"agent-a"}, "actor added": {"agent-a", "agent-b", ""}, "actor moved to resource": {"agent-a"},
	} {
		r := sampleRecord()
		r.Actors = actors
		if name == "actor moved to resource" {
			r.Resource = "agent-b"
		}
		if bytes.Equal(encode(nil, &r), wantChained) {
			t.Errorf("%s: two different chains share an encoding", name)
		}
	}
	// The hash is not part of its own input.
	withHash := sampleRecord()
	withHash.Hash = []byte("anything")
	if !bytes.Equal(encode(nil, &withHash), want) {
		t.Error("the encoding depends on Hash")
	}
}

// FuzzEncodingRoundTrip checks that decode(encode(r)) == r: encode loses
// nothing, so two different records never share an encoding.
func FuzzEncodingRoundTrip(f *testing.F) {
	s := sampleRecord()
	f.Add(s.Seq, s.Time.UnixMicro(), s.PrevHash, s.RequestID, s.Principal, s.Workload, s.User, s.Operation, s.Provider,
		strings.Join(s.Scopes, "\x00"), false, s.Flow, s.Outcome, s.ErrorType, "principal/AKID", "")
	f.Add(int64(1), int64(0), []byte(nil), "", "", "", "", "", "", "", true, "", "", "", "", "agent-a\x00agent-b")
	f.Add(int64(-1), int64(-62135596800000000), []byte{0}, "\x00", "é", "\xff", "a", "b", "c", "\x00\x00", false, "", "failure", "X", "\x00", "\x00")
	f.Fuzz(func(t *testing.T, seq, us int64, prev []byte, requestID, principal, workload, user, operation, provider,
		scopes string, noScopes bool, flow, outcome, errorType, resource, actors string) {
		r := storage.AuditRecord{
			Seq: seq, Time: time.UnixMicro(us).UTC(), PrevHash: prev,
			RequestID: requestID, Principal: principal, Workload: workload, User: user,
			Operation: operation, Provider: provider, Flow: flow, Outcome: outcome, ErrorType: errorType, Resource: resource,
		}
		if !noScopes {
			r.Scopes = strings.Split(scopes, "\x00")
		}
		if actors != "" {
			r.Actors = strings.Split(actors, "\x00")
		}
		enc := encode(nil, &r)
		got, err := decode(enc)
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", r, err)
		}
		if diff := cmp.Diff(normalized(r), got); diff != "" {
			t.Fatalf("round trip changed the record (-want +got):\n%s", diff)
		}
	})
}

// FuzzEncodingDecode feeds arbitrary bytes to the strict decoder: whatever
// it accepts must be exactly encode's output for the decoded record, so
// every encoding belongs to one record only.
func FuzzEncodingDecode(f *testing.F) {
	s := sampleRecord()
	f.Add(encode(nil, &s))
	f.Add([]byte{})
	f.Add(append(encode(nil, &s), 0))
	s.Actors = []string{"agent-a"}
	f.Add(encode(nil, &s))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decode(b)
		if err != nil {
			return
		}
		if enc := encode(nil, &r); !bytes.Equal(enc, b) {
			t.Fatalf("decode accepted %x, which encodes back as %x", b, enc)
		}
	})
}
