package behalfapi

import (
	"encoding/hex"

	"github.com/behalf-dev/behalf/internal/storage"
)

// ListAuditRecordsInput is the input of ListAuditRecords. Since and Until
// are epoch seconds; zero members match everything. Records come oldest
// first unless NewestFirst; a NextToken continues in the order it was
// issued for.
type ListAuditRecordsInput struct {
	NewestFirst bool     `json:"newestFirst,omitempty"`
	Workload    string   `json:"workload,omitempty"`
	User        string   `json:"user,omitempty"`
	Provider    string   `json:"provider,omitempty"`
	Operation   string   `json:"operation,omitempty"`
	Since       *float64 `json:"since,omitempty"`
	Until       *float64 `json:"until,omitempty"`
	NextToken   *string  `json:"nextToken,omitempty"`
	MaxResults  *int     `json:"maxResults,omitempty"`
}

// AuditRecord is one audit record as the API shows it: storage's record
// with its time in epoch seconds and its hash in hex.
type AuditRecord struct {
	Seq       int64    `json:"seq"`
	Time      Time     `json:"time"`
	RequestID string   `json:"requestId"`
	Principal string   `json:"principal,omitempty"`
	Operation string   `json:"operation"`
	Workload  string   `json:"workload,omitempty"`
	User      string   `json:"user,omitempty"`
	Provider  string   `json:"provider,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	Flow      string   `json:"flow,omitempty"`
	Resource  string   `json:"resource,omitempty"`
	Outcome   string   `json:"outcome"`
	ErrorType string   `json:"errorType,omitempty"`
	// Actors is the identity chain: the workloads the call came through
	// before Workload, outermost first; absent when there were none.
	Actors []string `json:"actors,omitempty"`
	Hash   string   `json:"hash"`
}

// NewAuditRecord shows r as the API does.
func NewAuditRecord(r storage.AuditRecord) AuditRecord {
	return AuditRecord{Seq: r.Seq, Time: Time(r.Time), RequestID: r.RequestID, Principal: r.Principal,
		Operation: r.Operation, Workload: r.Workload, User: r.User, Provider: r.Provider, Scopes: r.Scopes, Flow: r.Flow,
		Resource: r.Resource, Outcome: r.Outcome, ErrorType: r.ErrorType, Actors: r.Actors, Hash: hex.EncodeToString(r.Hash)}
}

// ListAuditRecordsOutput is the output of ListAuditRecords.
type ListAuditRecordsOutput struct {
	Records   []AuditRecord `json:"records"`
	NextToken *string       `json:"nextToken,omitempty"`
}

// VerifyAuditLogInput is the input of VerifyAuditLog. By default the
// whole log is verified; Incremental resumes from the last checkpoint that
// verified. A call verifies a bounded number of records; NextToken
// continues where the previous call stopped. Anchor, when set, is a head
// the server published earlier (docs/audit.md, "Anchors"): the call that
// finishes also checks that the record at its seq still has its hash.
type VerifyAuditLogInput struct {
	Incremental bool         `json:"incremental,omitempty"`
	NextToken   *string      `json:"nextToken,omitempty"`
	Anchor      *AuditAnchor `json:"anchor,omitempty"`
}

// AuditAnchor is a published head of the audit chain: a record's seq and
// its hash in hex.
type AuditAnchor struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// VerifyAuditLogOutput is the output of VerifyAuditLog. When NextToken is
// set, verification is not finished: call again with it. OK covers only
// the records this call read; HeadSeq and HeadHash are set by the last
// call.
type VerifyAuditLogOutput struct {
	OK        bool           `json:"ok"`
	From      int64          `json:"from"`
	NextToken *string        `json:"nextToken,omitempty"`
	Records   int64          `json:"records"`
	HeadSeq   int64          `json:"headSeq"`
	HeadHash  string         `json:"headHash"`
	Problems  []AuditProblem `json:"problems"`
	Omitted   int64          `json:"omittedProblems,omitempty"`
}

// AuditProblem is one finding of VerifyAuditLog.
type AuditProblem struct {
	Seq    int64  `json:"seq"`
	Reason string `json:"reason"`
}
