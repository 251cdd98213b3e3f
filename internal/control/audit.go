package control

import (
	"context"
	"encoding/hex"
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
	Verify(ctx context.Context) (audit.Report, error)
}

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
	limit := pageSize(in.MaxResults, 100)
	recs, err := s.store.ListAudit(ctx, storage.AuditFilter{
		Workload: in.Workload, User: in.User, Provider: in.Provider, Operation: in.Operation,
		Since: epochTime(in.Since), Until: epochTime(in.Until), AfterSeq: after, Limit: limit + 1,
	})
	if err != nil {
		return nil, wire.Internal(err)
	}
	recs, next := paginate(recs, limit, func(r storage.AuditRecord) string { return strconv.FormatInt(r.Seq, 10) })
	out := &behalfapi.ListAuditRecordsOutput{Records: make([]behalfapi.AuditRecord, len(recs)), NextToken: next}
	for i, r := range recs {
		out.Records[i] = behalfapi.AuditRecord{Seq: r.Seq, Time: behalfapi.Time(r.Time), RequestID: r.RequestID, Principal: r.Principal,
			Operation: r.Operation, Workload: r.Workload, User: r.User, Provider: r.Provider, Scopes: r.Scopes, Flow: r.Flow,
			Resource: r.Resource, Outcome: r.Outcome, ErrorType: r.ErrorType, Hash: hex.EncodeToString(r.Hash)}
	}
	return out, nil
}

func (s *Service) verifyAuditLog(ctx context.Context, _ *wire.Call, _ *struct{}) (*behalfapi.VerifyAuditLogOutput, error) {
	r, err := s.Audit.Verify(ctx)
	if err != nil {
		return nil, wire.Internal(err)
	}
	out := &behalfapi.VerifyAuditLogOutput{OK: r.OK(), Records: r.Records, HeadSeq: r.Head.Seq, HeadHash: hex.EncodeToString(r.Head.Hash),
		Problems: []behalfapi.AuditProblem{}, Omitted: r.Omitted}
	for _, p := range r.Problems {
		out.Problems = append(out.Problems, behalfapi.AuditProblem{Seq: p.Seq, Reason: p.Reason})
	}
	return out, nil
}
