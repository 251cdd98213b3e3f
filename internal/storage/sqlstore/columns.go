package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// collect scans every row of a bounded query.
func collect[T any](rows *sql.Rows, table string, scan func(scanner) (T, error)) ([]T, error) {
	defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read %s: %w", table, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: read %s: %w", table, err)
	}
	return out, nil
}

// Timestamps are stored as unix microseconds.

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// A nullable timestamp column is NULL where the zero time means "unknown"
// or "none" (a token's unknown expiry, an absent lease).

func nullableMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

func fromNullableMicros(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return fromMicros(us.Int64)
}

// asStored is t as a timestamp column returns it: UTC, whole
// microseconds; the zero time stays zero.
func asStored(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return fromMicros(micros(t))
}

// createdTimes fills zero creation and update times with now.
func createdTimes(created, updated *time.Time, now time.Time) {
	if created.IsZero() {
		*created = now
	}
	if updated.IsZero() {
		*updated = now
	}
	*created = fromMicros(micros(*created))
	*updated = fromMicros(micros(*updated))
}

// List columns hold JSON. A nil slice is stored as null and an empty one as
// [], so that "unrestricted" and "none allowed" stay apart.

func encodeJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func decodeJSON(column, text string, v any) error {
	if err := json.Unmarshal([]byte(text), v); err != nil {
		return fmt.Errorf("sqlstore: decode column %s: %w", column, err)
	}
	return nil
}

// bytesColumn scans a nullable BLOB column into *b, keeping NULL (nil)
// and an empty blob ([]byte{}) apart: SQLite's driver returns an empty
// blob as a nil []byte, which a plain *[]byte destination cannot tell from
// NULL.
type bytesColumn struct{ b *[]byte }

func (c bytesColumn) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.b = nil
	case []byte:
		// The driver owns src; copy it, into a non-nil slice even when empty.
		*c.b = append([]byte{}, v...)
	case string:
		*c.b = []byte(v)
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into bytes", src)
	}
	return nil
}

// A sealed secret is a (key id, blob) column pair; both are NULL when no
// secret is stored.

func sealedArgs(s storage.Sealed) (keyID, blob any) {
	if s.IsZero() {
		return nil, nil
	}
	if s.Blob == nil {
		return s.KeyID, []byte{}
	}
	return s.KeyID, s.Blob
}

func sealedFromColumns(keyID sql.NullString, blob []byte) storage.Sealed {
	if !keyID.Valid {
		return storage.Sealed{}
	}
	return storage.Sealed{KeyID: keyID.String, Blob: blob}
}

// secretRefArgs returns the columns of an external secret's reference,
// NULL when there is none.
func secretRefArgs(r *storage.SecretRef) (secretID, jsonKey any) {
	if r == nil {
		return nil, nil
	}
	return r.SecretID, r.JSONKey
}

func secretRefFromColumns(secretID, jsonKey sql.NullString) *storage.SecretRef {
	if !secretID.Valid {
		return nil
	}
	return &storage.SecretRef{SecretID: secretID.String, JSONKey: jsonKey.String}
}
