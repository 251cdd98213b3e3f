package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/behalf-dev/behalf/internal/audit"
	"github.com/behalf-dev/behalf/internal/behalfapi"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// AuditVerifier checks the audit chain; it holds the chain's key.
type AuditVerifier interface {
	Verify(ctx context.Context, opts audit.VerifyOptions) (audit.Report, error)
}

// verifyPerCall is how many records one VerifyAuditLog call reads: a few
// seconds' work, far inside a request's timeout, so that a log of any
// length verifies in a loop of calls.
const verifyPerCall = 500_000

func (s *Service) auditOperations() []wire.Operation {
	return []wire.Operation{
		wire.JSON("ListAuditRecords", "/behalf/ListAuditRecords", http.StatusOK, s.listAuditRecords),
		wire.JSON("VerifyAuditLog", "/behalf/VerifyAuditLog", http.StatusOK, s.verifyAuditLog),
	}
}

type listAuditInput behalfapi.ListAuditRecordsInput

func (in *listAuditInput) Validate(c *wire.Checker) {
	c.String("workload", in.Workload, 0, 255, nil)
	c.String("user", in.User, 0, 2048, nil)
	c.String("provider", in.Provider, 0, 128, nil)
	c.String("operation", in.Operation, 0, 128, nil)
	c.Range("maxResults", in.MaxResults, 1, 1000)
	for name, t := range map[string]*float64{"since": in.Since, "until": in.Until} {
		if t != nil && (*t < 0 || *t > 1<<40 || math.IsNaN(*t)) {
			c.Failf(name, "must be a time in epoch seconds")
		}
	}
}

func epochTime(f *float64) time.Time {
	if f == nil {
		return time.Time{}
	}
	sec, frac := math.Modf(*f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

func (s *Service) listAuditRecords(ctx context.Context, _ *wire.Call, in *listAuditInput) (*behalfapi.ListAuditRecordsOutput, error) {
	cursor, err := wire.ParseNextToken("nextToken", in.NextToken)
	if err != nil {
		return nil, err
	}
	var after int64
	if cursor != "" {
		if after, err = strconv.ParseInt(cursor, 10, 64); err != nil {
			return nil, wire.Validation("nextToken is not a token returned by this API", wire.FieldError{Name: "nextToken", Message: "is invalid"})
		}
	}
	f := storage.AuditFilter{
		Workload: in.Workload, User: in.User, Provider: in.Provider, Operation: in.Operation,
		Since: epochTime(in.Since), Until: epochTime(in.Until), Limit: pageSize(in.MaxResults, 100), NewestFirst: in.NewestFirst,
	}
	from := func(seq int64) {
		if f.NewestFirst {
			f.BeforeSeq = seq
		} else {
			f.AfterSeq = seq
		}
	}
	from(after)
	recs, err := s.store.ListAudit(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list audit records: %w", err)
	}
	var next *string
	if len(recs) == f.Limit {
		// A full page: look one record further, as a page of the maximum
		// size cannot be fetched one longer.
		last := recs[len(recs)-1].Seq
		from(last)
		f.Limit = 1
		more, err := s.store.ListAudit(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("list audit records: %w", err)
		}
		if len(more) > 0 {
			next = wire.NextToken(strconv.FormatInt(last, 10))
		}
	}
	out := &behalfapi.ListAuditRecordsOutput{Records: make([]behalfapi.AuditRecord, len(recs)), NextToken: next}
	for i, r := range recs {
		out.Records[i] = behalfapi.NewAuditRecord(r)
	}
	return out, nil
}

type verifyAuditInput behalfapi.VerifyAuditLogInput

func (in *verifyAuditInput) Validate(c *wire.Checker) {
	c.OptString("nextToken", in.NextToken, 1, 2048, nil)
	if a := in.Anchor; a != nil {
		if a.Seq < 1 {
			c.Failf("anchor.seq", "must be at least 1")
		}
		if h, err := hex.DecodeString(a.Hash); err != nil || len(h) != sha256.Size {
			c.Failf("anchor.hash", "must be %d hex digits", 2*sha256.Size)
		}
	}
}

func (s *Service) verifyAuditLog(ctx context.Context, _ *wire.Call, in *verifyAuditInput) (*behalfapi.VerifyAuditLogOutput, error) {
	opts := audit.VerifyOptions{Full: !in.Incremental, MaxRecords: verifyPerCall}
	if in.NextToken != nil {
		opts.Resume = *in.NextToken
	}
	if a := in.Anchor; a != nil {
		h, _ := hex.DecodeString(a.Hash) // validated
		opts.Anchor = &storage.AuditHead{Seq: a.Seq, Hash: h}
	}
	r, err := s.Audit.Verify(ctx, opts)
	if errors.Is(err, audit.ErrBadToken) {
		return nil, wire.Validation("nextToken is not a token returned by this API", wire.FieldError{Name: "nextToken", Message: "is invalid"})
	}
	if err != nil {
		return nil, fmt.Errorf("verify the audit log: %w", err)
	}
	out := &behalfapi.VerifyAuditLogOutput{OK: r.OK(), From: r.From, Records: r.Records, HeadSeq: r.Head.Seq, HeadHash: hex.EncodeToString(r.Head.Hash),
		Problems: []behalfapi.AuditProblem{}, Omitted: r.Omitted}
	if r.Next != "" {
		out.NextToken = &r.Next
	}
	for _, p := range r.Problems {
		out.Problems = append(out.Problems, behalfapi.AuditProblem{Seq: p.Seq, Reason: p.Reason})
	}
	return out, nil
}
