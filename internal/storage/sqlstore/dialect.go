package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
)

// dialect is the SQL engine a Store talks to. Queries are written once, in
// the SQL both engines accept, with ? placeholders.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

func (d dialect) String() string {
	if d == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// system is the dialect's db.system.name (OpenTelemetry semantic
// conventions).
func (d dialect) system() string {
	if d == dialectPostgres {
		return "postgresql"
	}
	return "sqlite"
}

// rebind rewrites ? placeholders to PostgreSQL's $1, $2, …. A ? inside a
// single-quoted literal is left alone.
func (d dialect) rebind(query string) string {
	if d != dialectPostgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n, quoted := 0, false
	for _, r := range query {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// forUpdate is appended to a SELECT that reads a row a transaction will
// change. SQLite needs none: its write transactions start IMMEDIATE and so
// already exclude every other writer.
func (d dialect) forUpdate() string {
	if d == dialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// forShare is appended to a SELECT that checks a row must go on existing
// until the transaction ends: PostgreSQL's FOR SHARE blocks updates and
// deletes of the row but not other readers holding the same lock.
func (d dialect) forShare() string {
	if d == dialectPostgres {
		return " FOR SHARE"
	}
	return ""
}

type querier interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs portable SQL on a pool or a transaction, rebinding placeholders
// for its dialect.
type conn struct {
	q       querier
	dialect dialect
	// stmts, when set, prepares each query once: SQLite otherwise parses
	// the SQL text on every call, a large share of a read's cost. (pgx
	// caches prepared statements per connection by itself.)
	stmts *stmtCache
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.dialect.rebind(query), args...)
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if stmt := c.stmts.get(ctx, query); stmt != nil {
		return stmt.QueryContext(ctx, args...)
	}
	return c.q.QueryContext(ctx, c.dialect.rebind(query), args...)
}

func (c conn) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if stmt := c.stmts.get(ctx, query); stmt != nil {
		return stmt.QueryRowContext(ctx, args...)
	}
	return c.q.QueryRowContext(ctx, c.dialect.rebind(query), args...)
}

// stmtCache holds prepared statements of one pool, by query text. Queries
// built per call (filters, multi-row inserts) pass through once the cache
// is full.
type stmtCache struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

const maxCachedStmts = 256

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}}
}

// get returns the prepared statement for query, or nil to run it unprepared.
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	stmt, ok := c.m[query]
	c.mu.RUnlock()
	if ok {
		return stmt
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if stmt, ok := c.m[query]; ok {
		return stmt
	}
	if len(c.m) >= maxCachedStmts {
		return nil
	}
	stmt, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // the unprepared path reports the error
	}
	c.m[query] = stmt
	return stmt
}

func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, stmt := range c.m {
		// The store closes its pool next, which releases the statement on
		// every connection whatever this reports.
		_ = stmt.Close()
	}
	clear(c.m)
}

// execOne runs a statement that must touch exactly one row and reports
// whether it did.
func (c conn) execOne(ctx context.Context, query string, args ...any) (bool, error) {
	n, err := c.execCount(ctx, query, args...)
	return n == 1, err
}

// execCount runs a statement and reports how many rows it touched.
func (c conn) execCount(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := c.exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
