package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// prunable returns how many records at the start of page are older than
// before and not the head, checking that each continues the chain from
// (after, prev).
func prunable(page []storage.AuditRecord, h *hasher, before time.Time, headSeq, after int64, prev []byte) (int, error) {
	for i := range page {
		r := &page[i]
		if !r.Time.Before(before) || r.Seq >= headSeq {
			return i, nil
		}
		if r.Seq != after+1 || !bytes.Equal(r.PrevHash, prev) || !hmac.Equal(h.sum(r), r.Hash) {
			return 0, fmt.Errorf("audit: prune: record %d does not verify; run behalf audit verify --full", r.Seq)
		}
		after, prev = r.Seq, r.Hash
	}
	return len(page), nil
}

// Prune deletes the records older than before, oldest first, and never the
// newest record. It keeps the chain verifiable: each deletion stores, in
// the same transaction, a "start" checkpoint sealed under the chain key
// with the seq and hash of the last record deleted, from which Verify then
// starts. A published head (Report.Head) stays checkable against the log.
//
// Prune checks every record it deletes (number, link and hash) and stops
// with an error at one that does not verify, so that retention never
// erases the evidence of an edit. It reports how many records it deleted.
func Prune(ctx context.Context, st storage.Storage, key []byte, before time.Time) (int64, error) {
	if len(key) != KeySize {
		return 0, errKeySize
	}
	s, h := sealer{key: key}, newHasher(key)
	var after int64
	var prev []byte
	cp, err := st.GetAuditCheckpoint(ctx, storage.AuditCheckpointStart)
	switch {
	case err == nil:
		if !hmac.Equal(s.seal(storage.AuditCheckpointStart, cp), cp.MAC) {
			return 0, errors.New("audit: prune: the start checkpoint's seal does not verify")
		}
		after, prev = cp.Seq, cp.Hash
	case !errors.Is(err, storage.ErrNotFound):
		return 0, fmt.Errorf("audit: prune: read the start checkpoint: %w", err)
	}
	head, err := st.GetAuditHead(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit: prune: read the head: %w", err)
	}
	var deleted int64
	for {
		page, err := st.ListAudit(ctx, storage.AuditFilter{AfterSeq: after, Limit: verifyPage})
		if err != nil {
			return deleted, fmt.Errorf("audit: prune: list records after %d: %w", after, err)
		}
		old, err := prunable(page, h, before, head.Seq, after, prev)
		if err != nil || old == 0 {
			return deleted, err
		}
		last := page[old-1]
		after, prev = last.Seq, last.Hash
		start := storage.AuditCheckpoint{Seq: last.Seq, Hash: last.Hash}
		start.MAC = s.seal(storage.AuditCheckpointStart, start)
		n, err := st.DeleteAuditThrough(ctx, start)
		deleted += n
		if errors.Is(err, storage.ErrConflict) {
			return deleted, nil // another replica pruned concurrently
		}
		if err != nil {
			return deleted, fmt.Errorf("audit: prune: %w", err)
		}
		if old < len(page) {
			return deleted, nil
		}
	}
}
