package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/behalf-dev/behalf/internal/logging"
	"github.com/behalf-dev/behalf/internal/storage/sqlstore"
)

// minFreeBytes is the free space below which a server on SQLite reports
// itself not ready: writes, the write-ahead log's checkpoints and audit
// records would soon start failing, and a load balancer should send the
// traffic to a replica that can still commit.
const minFreeBytes = 32 << 20

// Health routes, probed too often to be worth a span.
const (
	healthPath = "/healthz"
	readyPath  = "/readyz"
)

func isHealthPath(p string) bool { return p == healthPath || p == readyPath }

// mountHealth serves /healthz (the process answers) and /readyz (it can
// serve: storage answers and, on SQLite, its disk has room and takes
// writes).
func (s *Server) mountHealth(mux *http.ServeMux) {
	mux.HandleFunc("GET "+healthPath, func(w http.ResponseWriter, r *http.Request) {
		s.writeStatus(w, r, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET "+readyPath, s.ready)
	if s.freeSpace == nil {
		s.freeSpace = statfsFree
	}
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "not ready", logging.Err(err))
		s.writeStatus(w, r, http.StatusServiceUnavailable, "storage unavailable")
		return
	}
	// PostgreSQL's disk is the database server's to watch; the ping covers it.
	if file, ok := sqlstore.SQLiteFile(s.cfg.Storage); ok {
		if err := s.diskReady(filepath.Dir(file)); err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "not ready", logging.Err(err))
			s.writeStatus(w, r, http.StatusServiceUnavailable, "storage disk full or not writable")
			return
		}
	}
	s.writeStatus(w, r, http.StatusOK, "ready")
}

// diskReady checks that dir has minFreeBytes free and takes a small write.
func (s *Server) diskReady(dir string) error {
	free, err := s.freeSpace(dir)
	if err != nil {
		return fmt.Errorf("free space of %s: %w", dir, err)
	}
	if free < minFreeBytes {
		return fmt.Errorf("%s has %d bytes free, less than %d", dir, free, minFreeBytes)
	}
	return writeProbe(dir)
}

// statfsFree returns the bytes of dir's file system available to this
// (unprivileged) process.
func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	if st.Bsize < 0 {
		return 0, fmt.Errorf("statfs %s: block size %d", dir, st.Bsize)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// writeProbe writes, syncs and removes a small file in dir: free space can
// be reported while writes still fail (a read-only remount, quotas, no
// inodes left).
func writeProbe(dir string) error {
	f, err := os.CreateTemp(dir, ".readyz-*")
	if err != nil {
		return fmt.Errorf("write probe in %s: %w", dir, err)
	}
	_, werr := f.Write(make([]byte, 4096))
	serr := f.Sync()
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if err := errors.Join(werr, serr, cerr, rerr); err != nil {
		return fmt.Errorf("write probe in %s: %w", dir, err)
	}
	return nil
}

// writeStatus answers a health check; a failed write means the checker
// went away, which only a debug line tells.
func (s *Server) writeStatus(w http.ResponseWriter, r *http.Request, code int, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(map[string]string{"status": status}); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "health status not written", logging.Err(err))
	}
}
