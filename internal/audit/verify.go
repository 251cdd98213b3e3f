package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"math"

	"github.com/behalf-dev/behalf/internal/storage"
)

// MaxProblems is how many problems a Report lists; it counts the rest.
const MaxProblems = 1000

// verifyPage is how many records Verify reads at a time.
const verifyPage = 1000

// Problem is one thing wrong with the log.
type Problem struct {
	// Seq is the record the problem shows at: the first record after a
	// gap, or the head's seq for a problem with the head.
	Seq    int64
	Reason string
}

func (p Problem) String() string { return fmt.Sprintf("seq %d: %s", p.Seq, p.Reason) }

// Report is the result of Verify.
type Report struct {
	// From is the seq verification started after: 0 for the whole log, the
	// retention start, or the checkpoint or token it resumed from.
	From int64
	// Records is how many records were read.
	Records int64
	// Head is the head row as last read. Keeping it outside the database
	// lets a later check detect a truncation that moved the head back (see
	// the package documentation).
	Head storage.AuditHead
	// Problems lists the first MaxProblems problems in the order found,
	// which is seq order with the head's last; Omitted counts the rest.
	Problems []Problem
	Omitted  int64
	// Next, when set, is the token to pass as VerifyOptions.Resume to
	// continue: verification stopped after MaxRecords records.
	Next string
}

// OK reports whether the log verified without a problem.
func (r Report) OK() bool { return len(r.Problems) == 0 && r.Omitted == 0 }

// VerifyOptions say where verification starts and how much it does.
type VerifyOptions struct {
	// Full verifies from the start of the log (or from the retention
	// checkpoint, for records retention deleted) rather than from the
	// stored verified checkpoint.
	Full bool
	// Resume continues from Report.Next of an earlier call; it overrides
	// Full and the stored checkpoint.
	Resume string
	// MaxRecords stops after about this many records, leaving Report.Next
	// to resume from; 0 runs to the end.
	MaxRecords int64
	// Anchor, when set, is a head published earlier (an anchor): the run
	// that reaches the end also checks that the record at its Seq is
	// still there with its Hash, so that records deleted or rewritten
	// after it show even when the head row was moved back to match.
	Anchor *storage.AuditHead
}

// ErrBadToken reports a VerifyOptions.Resume that is not a token Verify
// issued under this key.
var ErrBadToken = errors.New("audit: not a verification token issued by this server")

// Verify reads the whole log in seq order and checks every record's link,
// hash and number, and that the head names the last record. See
// VerifyFrom.
func Verify(ctx context.Context, st storage.Storage, key []byte) (Report, error) {
	return VerifyFrom(ctx, st, key, VerifyOptions{Full: true})
}

// VerifyFrom checks the log in seq order: every record's link, hash and
// number, and at the end that the head names the last record. It carries
// on after a problem, so one edit does not hide the next, and holds one
// page of records in memory at a time. The error reports only a failure to
// read the log (or a bad Resume token); what is wrong with the log is in
// the Report.
//
// It starts at the retention checkpoint when records were deleted by
// retention (Prune), and, unless opts.Full, at the stored verified
// checkpoint, so that each run reads only what was appended since the
// last. A checkpoint whose seal does not verify is a problem, and the run
// falls back to the start. A run that reaches the end without a problem,
// including every page before it when resumed, moves the verified
// checkpoint to the head.
//
// Records appended while it runs are verified too: it reads on until the
// end of the log agrees with a head read after it.
func VerifyFrom(ctx context.Context, st storage.Storage, key []byte, opts VerifyOptions) (Report, error) {
	if len(key) != KeySize {
		return Report{}, errKeySize
	}
	v := verifier{st: st, hasher: newHasher(key), sealer: sealer{key: key}, clean: true}
	if err := v.start(ctx, opts); err != nil {
		return v.report, err
	}
	if done, err := v.walk(ctx, opts.MaxRecords); err != nil || !done {
		return v.report, err
	}
	if err := v.finish(ctx); err != nil {
		return v.report, err
	}
	if opts.Anchor != nil {
		return v.report, v.checkAnchor(ctx, *opts.Anchor)
	}
	return v.report, nil
}

// checkAnchor checks that the record at a.Seq is still there and has
// a.Hash.
func (v *verifier) checkAnchor(ctx context.Context, a storage.AuditHead) error {
	if s := v.retained; s != nil && a.Seq <= s.Seq {
		if a.Seq < s.Seq || !bytes.Equal(a.Hash, s.Hash) {
			v.problem(a.Seq, fmt.Sprintf("the anchor cannot be checked: retention deleted the records up to %d and keeps only record %d's hash", s.Seq, s.Seq))
		}
		return nil
	}
	recs, err := v.st.ListAudit(ctx, storage.AuditFilter{AfterSeq: a.Seq - 1, Limit: 1})
	if err != nil {
		return fmt.Errorf("audit: verify: read the anchored record %d: %w", a.Seq, err)
	}
	switch {
	case len(recs) == 0 || recs[0].Seq != a.Seq:
		v.problem(a.Seq, fmt.Sprintf("the anchored record %d is gone, the head is at seq %d: the log was truncated after the anchor was published", a.Seq, v.report.Head.Seq))
	case !bytes.Equal(recs[0].Hash, a.Hash):
		v.problem(a.Seq, fmt.Sprintf("record %d's hash is not the anchor's: the log was rewritten after the anchor was published", a.Seq))
	}
	return nil
}

// finish checks the end of the log against the head, reading on while
// records are appended, and moves the verified checkpoint to the head when
// everything verified.
func (v *verifier) finish(ctx context.Context) error {
	st := v.st
	for {
		head, err := st.GetAuditHead(ctx)
		if errors.Is(err, storage.ErrNotFound) {
			v.problem(v.lastSeq, "the head row is missing")
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: verify: read the head: %w", err)
		}
		v.report.Head = head
		switch {
		case head.Seq > v.lastSeq:
			// Either records were appended since the walk ended, or the
			// tail is gone.
			n := v.report.Records
			if _, err := v.walk(ctx, 0); err != nil {
				return err
			}
			if v.report.Records > n {
				continue
			}
			v.problem(head.Seq, fmt.Sprintf("the head is at seq %d but the last record is %d: records were deleted from the end", head.Seq, v.lastSeq))
		case head.Seq < v.lastSeq:
			v.problem(head.Seq, fmt.Sprintf("records after seq %d, up to %d, are beyond the head: they were added without it", head.Seq, v.lastSeq))
		case !bytes.Equal(head.Hash, v.lastHash):
			v.problem(head.Seq, "the head's hash is not the last record's")
		}
		if v.clean && v.report.OK() && head.Seq > 0 {
			cp := storage.AuditCheckpoint{Seq: head.Seq, Hash: head.Hash}
			cp.MAC = v.sealer.seal(storage.AuditCheckpointVerified, cp)
			if err := st.PutAuditCheckpoint(ctx, storage.AuditCheckpointVerified, cp); err != nil {
				return fmt.Errorf("audit: verify: store the checkpoint: %w", err)
			}
		}
		return nil
	}
}

// start sets where the walk begins.
func (v *verifier) start(ctx context.Context, opts VerifyOptions) error {
	v.after, v.next = math.MinInt64, 1 // from the very first row, so that a seq below 1 shows
	from, err := v.checkpoint(ctx, storage.AuditCheckpointStart)
	if err != nil {
		return err
	}
	v.retained = from
	switch {
	case opts.Resume != "":
		cp, clean, ok := v.sealer.openToken(opts.Resume)
		if !ok {
			return ErrBadToken
		}
		from, v.clean = &cp, clean
	case !opts.Full:
		verified, err := v.checkpoint(ctx, storage.AuditCheckpointVerified)
		if err != nil {
			return err
		}
		if verified != nil && (from == nil || verified.Seq >= from.Seq) {
			from = verified
		}
	}
	if from != nil {
		v.after, v.next, v.lastSeq, v.lastHash = from.Seq, from.Seq+1, from.Seq, from.Hash
		v.report.From = from.Seq
	}
	return nil
}

// checkpoint returns the named checkpoint if it is stored and its seal
// verifies; a forged one is a problem and is ignored.
func (v *verifier) checkpoint(ctx context.Context, name string) (*storage.AuditCheckpoint, error) {
	cp, err := v.st.GetAuditCheckpoint(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: verify: read the %s checkpoint: %w", name, err)
	}
	if !hmac.Equal(v.sealer.seal(name, cp), cp.MAC) {
		v.problem(cp.Seq, fmt.Sprintf("the %s checkpoint's seal does not verify: it was forged or edited", name))
		return nil, nil
	}
	return &cp, nil
}

type verifier struct {
	st     storage.Storage
	hasher *hasher
	sealer sealer
	report Report
	// retained is the retention checkpoint: the log starts after it.
	retained *storage.AuditCheckpoint
	// clean is false once a problem was found, in this run or in the runs
	// a resumed token continues.
	clean bool

	after    int64 // where the next page starts
	next     int64 // the seq the next record should have
	lastSeq  int64
	lastHash []byte
}

// walk reads and checks every record after v.after. With a limit, it
// stops after about limit records, sets Report.Next and reports false.
func (v *verifier) walk(ctx context.Context, limit int64) (done bool, err error) {
	var read int64
	for {
		if limit > 0 && read >= limit {
			cp := storage.AuditCheckpoint{Seq: v.lastSeq, Hash: v.lastHash}
			v.report.Next = v.sealer.token(cp, v.clean && v.report.OK())
			return false, nil
		}
		page, err := v.st.ListAudit(ctx, storage.AuditFilter{AfterSeq: v.after, Limit: verifyPage})
		if err != nil {
			return false, fmt.Errorf("audit: verify: list records after %d: %w", max(v.after, 0), err)
		}
		if len(page) == 0 {
			return true, nil
		}
		for i := range page {
			v.check(&page[i])
		}
		read += int64(len(page))
		v.after = page[len(page)-1].Seq
	}
}

func (v *verifier) check(r *storage.AuditRecord) {
	v.report.Records++
	switch {
	case r.Seq > v.next && r.Seq == v.next+1:
		v.problem(r.Seq, fmt.Sprintf("record %d is missing", v.next))
	case r.Seq > v.next:
		v.problem(r.Seq, fmt.Sprintf("records %d to %d are missing", v.next, r.Seq-1))
	case r.Seq < v.next:
		v.problem(r.Seq, fmt.Sprintf("seq %d is out of range: the log starts at %d", r.Seq, v.report.From+1))
	case !bytes.Equal(r.PrevHash, v.lastHash):
		// After a gap the link cannot match; the gap is the problem then.
		v.problem(r.Seq, fmt.Sprintf("its previous hash is not record %d's hash", r.Seq-1))
	}
	if !hmac.Equal(v.hasher.sum(r), r.Hash) {
		v.problem(r.Seq, "its hash does not match its contents: the record was changed, or the key is wrong")
	}
	if r.Seq < v.next {
		return
	}
	v.next = r.Seq + 1
	v.lastSeq = r.Seq
	v.lastHash = bytes.Clone(r.Hash)
}

func (v *verifier) problem(seq int64, reason string) {
	if len(v.report.Problems) >= MaxProblems {
		v.report.Omitted++
		return
	}
	v.report.Problems = append(v.report.Problems, Problem{Seq: seq, Reason: reason})
}
