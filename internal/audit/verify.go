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
}

// OK reports whether the log verified without a problem.
func (r Report) OK() bool { return len(r.Problems) == 0 && r.Omitted == 0 }

// Verify reads the whole log in seq order and checks every record's link,
// hash and number, and that the head names the last record. It carries on
// after a problem, so one edit does not hide the next, and holds one page
// of records in memory at a time. The error reports only a failure to read
// the log; what is wrong with it is in the Report.
//
// Records appended while Verify runs are verified too: Verify reads on
// until the end of the log agrees with a head read after it.
func Verify(ctx context.Context, st storage.Storage, key []byte) (Report, error) {
	if len(key) != KeySize {
		return Report{}, errKeySize
	}
	v := verifier{st: st, hasher: newHasher(key), after: math.MinInt64, next: 1}
	if err := v.walk(ctx); err != nil {
		return v.report, err
	}
	for {
		head, err := st.GetAuditHead(ctx)
		if errors.Is(err, storage.ErrNotFound) {
			v.problem(v.lastSeq, "the head row is missing")
			return v.report, nil
		}
		if err != nil {
			return v.report, fmt.Errorf("audit: verify: read the head: %w", err)
		}
		v.report.Head = head
		switch {
		case head.Seq > v.lastSeq:
			// Either records were appended since the walk ended, or the
			// tail is gone.
			n := v.report.Records
			if err := v.walk(ctx); err != nil {
				return v.report, err
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
		return v.report, nil
	}
}

type verifier struct {
	st     storage.Storage
	hasher *hasher
	report Report

	after    int64 // where the next page starts
	next     int64 // the seq the next record should have
	lastSeq  int64
	lastHash []byte
}

// walk reads and checks every record after v.after.
func (v *verifier) walk(ctx context.Context) error {
	for {
		page, err := v.st.ListAudit(ctx, storage.AuditFilter{AfterSeq: v.after, Limit: verifyPage})
		if err != nil {
			return fmt.Errorf("audit: verify: list records after %d: %w", max(v.after, 0), err)
		}
		if len(page) == 0 {
			return nil
		}
		for i := range page {
			v.check(&page[i])
		}
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
		v.problem(r.Seq, fmt.Sprintf("seq %d is out of range: the log starts at 1", r.Seq))
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
