package federation

import (
	"container/list"
	"sync"
	"time"
)

// Limiter says whether one more event for key may happen now. Each new
// consent session passes two: one keyed by the user (with the workload),
// one by the calling principal.
type Limiter interface {
	Allow(key string) bool
}

// Default limits on new consent sessions, a minute. A session is a row kept
// for up to twice the session TTL, so a caller looping with users' tokens
// must not grow storage at request rate; one person consents to a provider
// a few times a minute at most, and one agent's users far fewer than 120
// times a minute.
const (
	DefaultNewSessionsPerUser      = 10
	DefaultNewSessionsPerPrincipal = 120
)

// maxLimiterKeys bounds a perMinute limiter's memory.
const maxLimiterKeys = 100_000

// perMinute allows n events a minute per key, n of them at once (a token
// bucket per key, counted in time: each event costs a minute/n of credit,
// and a key holds up to a minute of it). Keys are kept in
// least-recently-used order and the oldest goes when maxLimiterKeys are
// tracked: a key unused for a minute has a full bucket, as a new one does,
// so dropping it changes nothing.
type perMinute struct {
	cost time.Duration
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	recent  list.List                // most recently used first
}

type bucket struct {
	key    string
	credit time.Duration
	last   time.Time
}

// newPerMinute returns a limiter of n events a minute per key.
func newPerMinute(n int, now func() time.Time) *perMinute {
	return &perMinute{cost: time.Minute / time.Duration(max(n, 1)), now: now, buckets: map[string]*list.Element{}}
}

func (l *perMinute) Allow(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.buckets[key]
	if ok {
		l.recent.MoveToFront(e)
	} else {
		if len(l.buckets) >= maxLimiterKeys {
			oldest := l.recent.Back()
			delete(l.buckets, oldest.Value.(*bucket).key)
			l.recent.Remove(oldest)
		}
		e = l.recent.PushFront(&bucket{key: key, credit: time.Minute, last: now})
		l.buckets[key] = e
	}
	b := e.Value.(*bucket)
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.credit = min(time.Minute, b.credit+elapsed)
		b.last = now
	}
	if b.credit < l.cost {
		return false
	}
	b.credit -= l.cost
	return true
}
