// Package testsite is a real HTTP server on loopback whose answer for each
// path a test sets, counting the requests for each path: a provider's
// documents, well-behaved or hostile case by case.
package testsite

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Site serves what Handle set for a path and 404 elsewhere.
type Site struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	hits   map[string]int
}

// New starts a site that the test's end closes.
func New(t testing.TB) *Site {
	t.Helper()
	s := &Site{routes: map[string]http.HandlerFunc{}, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		h := s.routes[r.URL.Path]
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// Handle serves h at path (nil: 404 again) and returns the path's URL.
func (s *Site) Handle(path string, h http.HandlerFunc) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h == nil {
		delete(s.routes, path)
	} else {
		s.routes[path] = h
	}
	return s.URL + path
}

// Hits is how many requests path has had.
func (s *Site) Hits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}
