package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/behalf-dev/behalf/internal/logging"
)

// certReloader serves a certificate pair from files and picks up a
// replaced pair without a restart (as certificate renewal tools write
// them), checking the files' modification times at most once per
// interval. A new pair that does not load is logged and the old one kept.
type certReloader struct {
	certFile, keyFile string
	interval          time.Duration
	now               func() time.Time
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   fileStamps
	checked time.Time
}

type fileStamps struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// newCertReloader loads the certificate; nil when none is configured.
func newCertReloader(certFile, keyFile string, interval time.Duration, now func() time.Time, log *slog.Logger) (*certReloader, error) {
	if certFile == "" {
		return nil, nil // serving plain HTTP
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, interval: interval, now: now, log: log}
	stamp, err := r.stat()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", certFile, keyFile, err)
	}
	r.cert, r.stamp, r.checked = &cert, stamp, now()
	return r, nil
}

func (r *certReloader) stat() (fileStamps, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return fileStamps{}, err
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return fileStamps{}, err
	}
	return fileStamps{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// GetCertificate is tls.Config's hook, called on each handshake.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= r.interval {
		r.checked = now
		r.reloadIfChanged()
	}
	return r.cert, nil
}

func (r *certReloader) reloadIfChanged() {
	stamp, err := r.stat()
	if err != nil {
		r.log.LogAttrs(context.Background(), slog.LevelWarn, "tls: cannot check the certificate files; keeping the current certificate", logging.Err(err))
		return
	}
	if stamp == r.stamp {
		return
	}
	// Remember the new stamps even when the pair does not load, so a
	// half-written pair is retried when the other file changes, not logged
	// on every handshake.
	r.stamp = stamp
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.log.LogAttrs(context.Background(), slog.LevelWarn, "tls: the changed certificate files do not load; keeping the current certificate", logging.Err(err))
		return
	}
	r.cert = &cert
	r.log.LogAttrs(context.Background(), slog.LevelInfo, "tls: certificate reloaded", slog.String(logging.KeyCertFile, r.certFile))
}
