// Package sqlstore implements storage.Storage over database/sql for SQLite
// (modernc.org/sqlite, pure Go) and PostgreSQL (pgx). Both engines run the
// same portable SQL; the differences (placeholders, row locks, advisory
// locks, migrations) live in dialect.go and the per-dialect migration
// directories.
//
// On SQLite, writes go through a single connection whose transactions begin
// IMMEDIATE, so a read-modify-write never has to upgrade its lock and never
// fails with SQLITE_BUSY; plain reads use a separate query-only pool. On
// PostgreSQL, a read-modify-write locks its row with SELECT … FOR UPDATE.
//
// Replicas on PostgreSQL may start together: migrations run under a session
// advisory lock. Several processes may share a SQLite file too (writers wait
// up to five seconds for each other), but SQLite migrations take no lock
// across processes, so after an upgrade start one process first.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

var _ storage.Storage = (*Store)(nil)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

const (
	defaultPageLimit = 100
	maxPageLimit     = 1000

	// DefaultPostgresMaxOpenConns is the PostgreSQL pool's size unless
	// PostgresMaxOpenConns says otherwise.
	DefaultPostgresMaxOpenConns = 20
)

// Store is a storage.Storage over SQLite or PostgreSQL. It is safe for
// concurrent use.
type Store struct {
	dialect dialect
	// writer runs every transaction; reader runs plain reads. On PostgreSQL
	// both are the same pool.
	writer *sql.DB
	reader *sql.DB
	// readStmts caches prepared reads on SQLite; nil on PostgreSQL.
	readStmts *stmtCache
	// migrations checks, for Ping, that every migration is applied. It reads
	// through the reader pool so that readiness probes never queue behind
	// writes.
	migrations *goose.Provider
	// audit holds the audit writer's statements prepared on SQLite's writer
	// connection; nil on PostgreSQL.
	audit *auditStatements
	// lastAuditHead is the head this Store last moved (see appendAuditAt
	// and appendAuditSQLite).
	lastAuditHead *auditHeadHint
	// bound is the pending audit record of a WithAudit view; nil on the
	// store itself.
	bound *boundAudit
	// now is the clock of stored timestamps and lease decisions.
	now func() time.Time
}

// Option tunes Open.
type Option func(*options)

type options struct {
	postgresMaxOpenConns int
	now                  func() time.Time
}

// PostgresMaxOpenConns sets how many connections to PostgreSQL the store
// keeps open at most; n <= 0 means DefaultPostgresMaxOpenConns. SQLite
// ignores it.
func PostgresMaxOpenConns(n int) Option {
	return func(o *options) { o.postgresMaxOpenConns = n }
}

// Now sets the clock of the timestamps the store sets and of its lease
// decisions; nil means time.Now.
func Now(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Open connects to the database named by dsn, applies pending migrations and
// checks that the result is usable. A dsn starting with postgres:// or
// postgresql:// selects PostgreSQL; anything else is the path of a SQLite
// file, optionally prefixed with sqlite:// or file:, which is created (mode
// 0600, parent directory 0700) when missing.
func Open(ctx context.Context, dsn string, logger *slog.Logger, opts ...Option) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.postgresMaxOpenConns <= 0 {
		o.postgresMaxOpenConns = DefaultPostgresMaxOpenConns
	}
	d, target, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	var s *Store
	if d == dialectPostgres {
		s, err = openPostgres(ctx, target, logger, o.postgresMaxOpenConns)
	} else {
		s, err = openSQLite(ctx, target, logger)
	}
	if err != nil {
		return nil, err
	}
	s.now = o.now
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// parseDSN tells the dialect and returns what its driver needs: the DSN
// itself for PostgreSQL, a file path for SQLite.
func parseDSN(dsn string) (dialect, string, error) {
	lower := strings.ToLower(dsn)
	if strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") {
		return dialectPostgres, dsn, nil
	}
	path := dsn
	for _, prefix := range []string{"sqlite://", "file:"} {
		if strings.HasPrefix(lower, prefix) {
			path = dsn[len(prefix):]
			break
		}
	}
	switch {
	case path == "":
		return 0, "", errors.New("sqlstore: empty database path")
	case strings.ContainsAny(path, "?#"):
		// Query parameters would be ambiguous: the store sets its own.
		return 0, "", errors.New("sqlstore: a SQLite path takes no query parameters")
	case strings.HasPrefix(path, ":memory:"):
		return 0, "", errors.New("sqlstore: in-memory SQLite is not supported; use a file")
	}
	return dialectSQLite, path, nil
}

func openPostgres(ctx context.Context, dsn string, logger *slog.Logger, maxConns int) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	// As many idle connections as open ones: with fewer, a burst of calls
	// closes the surplus as each finishes and opens it again for the next,
	// a new PostgreSQL session (a backend process and authentication) per
	// call under steady load.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)

	// Replicas starting together serialise their migrations on a session
	// advisory lock; the others wait, retrying every second.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlstore: migration lock: %w", err)
	}
	s := &Store{dialect: dialectPostgres, writer: db, reader: db, lastAuditHead: &auditHeadHint{}}
	if err := s.migrate(ctx, logger, goose.DialectPostgres, goose.WithSessionLocker(locker)); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

func openSQLite(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	if err := createSQLiteFile(path, logger); err != nil {
		return nil, err
	}
	// The -wal and -shm files SQLite creates take the database file's mode.
	writer, err := sql.Open("sqlite", sqliteURI(path,
		"_pragma=busy_timeout(5000)", // milliseconds
		"_pragma=journal_mode(WAL)",
		// FULL: a commit is durable before it returns, so a just-rotated
		// refresh token survives a power loss.
		"_pragma=synchronous(FULL)",
		"_pragma=foreign_keys(1)",
		"_txlock=immediate",
	))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)

	reader, err := sql.Open("sqlite", sqliteURI(path,
		"_pragma=busy_timeout(5000)",
		"_pragma=query_only(1)",
	))
	if err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)

	s := &Store{dialect: dialectSQLite, writer: writer, reader: reader, readStmts: newStmtCache(reader), lastAuditHead: &auditHeadHint{}}
	if err := s.migrate(ctx, logger, goose.DialectSQLite3); err != nil {
		_ = s.Close()
		return nil, err
	}
	if s.audit, err = prepareAuditStatements(ctx, writer); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// createSQLiteFile creates the database file and its directory with
// owner-only permissions before SQLite would create them with the umask's.
// An existing file keeps its mode; a warning says when others can read it.
func createSQLiteFile(path string, logger *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sqlstore: create database directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // G304: the database path the operator configured
	if err != nil {
		return fmt.Errorf("sqlstore: create database file: %w", err)
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.LogAttrs(context.Background(), slog.LevelWarn, "SQLite database file is accessible to other users",
			slog.String(logging.KeyPath, path), slog.String(logging.KeyMode, fi.Mode().Perm().String()))
	}
	return f.Close()
}

// sqliteURI builds a file: URI for path, escaping the characters a URI
// would read as syntax.
func sqliteURI(path string, params ...string) string {
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + escaped + "?" + strings.Join(params, "&")
}

func (s *Store) migrate(ctx context.Context, logger *slog.Logger, d goose.Dialect, opts ...goose.ProviderOption) error {
	dir, err := fs.Sub(migrationFiles, "migrations/"+s.dialect.String())
	if err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	common := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true), goose.WithSlog(logger)}
	p, err := goose.NewProvider(d, s.writer, dir, append(opts, common...)...)
	if err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	// Checking first, without the lock, spares replicas restarting together
	// the wait for each other when there is nothing to apply.
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: check %s migrations: %w", s.dialect, err)
	}
	if pending {
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("sqlstore: apply %s migrations: %w", s.dialect, err)
		}
	}
	if s.migrations, err = goose.NewProvider(d, s.reader, dir, common...); err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	return nil
}

// Ping reports whether the database is reachable and every migration this
// build knows is applied.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.reader.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping %s: %w", s.dialect, err)
	}
	pending, err := s.migrations.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: check %s migrations: %w", s.dialect, err)
	}
	if pending {
		return fmt.Errorf("sqlstore: %s database has pending migrations", s.dialect)
	}
	return nil
}

// Close closes the database pools.
func (s *Store) Close() error {
	s.readStmts.close()
	var err error
	if s.audit != nil {
		err = s.audit.close()
	}
	err = errors.Join(err, s.writer.Close())
	if s.reader != s.writer {
		err = errors.Join(err, s.reader.Close())
	}
	return err
}

// reads runs plain reads outside any transaction.
func (s *Store) reads() conn { return conn{q: s.reader, dialect: s.dialect, stmts: s.readStmts} }

// inTx runs fn in a write transaction and commits if fn returns nil. fn's
// error is returned as it is, so callers' sentinels survive. In a WithAudit
// view, the first transaction to succeed also appends the view's record
// before it commits.
func (s *Store) inTx(ctx context.Context, fn func(tx conn) error) error {
	if b := s.bound; b != nil {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !b.appended {
			return s.runTx(ctx, fn, b)
		}
	}
	return s.runTx(ctx, fn, nil)
}

// runTx runs commitTx under a storage.tx span when the call is traced;
// an untraced call pays one check.
func (s *Store) runTx(ctx context.Context, fn func(tx conn) error, b *boundAudit) error {
	if !telemetry.Recording(ctx) {
		return s.commitTx(ctx, fn, b)
	}
	ctx, span := telemetry.Start(ctx, "storage.tx", telemetry.DBSystem.String(s.dialect.system()), telemetry.AuditBound.Bool(b != nil))
	err := s.commitTx(ctx, fn, b)
	telemetry.End(span, err, txErrorType(err))
	return err
}

// txErrorType names a failed transaction's error by its storage sentinel.
func txErrorType(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, storage.ErrNotFound):
		return "not_found"
	case errors.Is(err, storage.ErrConflict):
		return "conflict"
	case errors.Is(err, storage.ErrAlreadyExists):
		return "already_exists"
	}
	return "storage_error"
}

func (s *Store) commitTx(ctx context.Context, fn func(tx conn) error, b *boundAudit) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin transaction: %w", err)
	}
	c := conn{q: tx, dialect: s.dialect}
	err = fn(c)
	if err == nil && b != nil {
		err = s.appendAudit(ctx, c, []storage.AuditRecord{b.binding.Record()}, b.binding.Chain)
	}
	if err != nil {
		// The rollback's own error adds nothing: the transaction is
		// abandoned either way and fn's error is the one that matters.
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	if b != nil {
		b.appended = true
		if b.binding.Committed != nil {
			b.binding.Committed()
		}
	}
	return nil
}

// timestamp returns the current time as stored: UTC, whole microseconds.
func (s *Store) timestamp() time.Time { return fromMicros(s.now().UnixMicro()) }

func pageLimit(limit int) int {
	switch {
	case limit <= 0:
		return defaultPageLimit
	case limit > maxPageLimit:
		return maxPageLimit
	}
	return limit
}
