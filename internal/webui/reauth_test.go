package webui

import (
	"errors"
	"testing"
	"time"
)

// auth_time against max_age (OpenID Connect Core §2, §3.1.2.1), and
// Recent against ReauthenticateAfter.
func TestAuthTime(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	w := &Web{o: Options{Now: func() time.Time { return now }, ReauthenticateAfter: 10 * time.Minute}}
	at := func(d time.Duration) float64 { return float64(now.Add(d).Unix()) }
	for name, tt := range map[string]struct {
		authTime float64
		maxAge   int64
		want     time.Time
		stale    bool // errAuthTime
		refused  bool // another error
	}{
		"none, no max_age":   {want: now},
		"none after max_age": {maxAge: 600, stale: true},
		"recent":             {authTime: at(-5 * time.Minute), maxAge: 600, want: now.Add(-5 * time.Minute)},
		"older than max_age": {authTime: at(-12 * time.Minute), maxAge: 600, stale: true},
		"old, no max_age":    {authTime: at(-5 * time.Hour), want: now.Add(-5 * time.Hour)},
		"within the leeway":  {authTime: at(-10*time.Minute - 30*time.Second), maxAge: 600, want: now.Add(-10*time.Minute - 30*time.Second)},
		"a little ahead":     {authTime: at(30 * time.Second), maxAge: 600, want: now},
		"in the future":      {authTime: at(time.Hour), refused: true},
		"beyond int64":       {authTime: 1e300, refused: true},
		"negative":           {authTime: -1, refused: true},
	} {
		got, err := w.authTime(idClaims{AuthTime: tt.authTime}, tt.maxAge)
		switch {
		case tt.stale || tt.refused:
			if err == nil || errors.Is(err, errAuthTime) != tt.stale {
				t.Errorf("%s: %v, %v", name, got, err)
			}
		case err != nil || !got.Equal(tt.want):
			t.Errorf("%s: %v, %v; want %v", name, got, err, tt.want)
		}
	}
	for age, recent := range map[time.Duration]bool{time.Minute: true, 10 * time.Minute: true, 10*time.Minute + time.Second: false} {
		if got := w.Recent(Session{AuthTime: now.Add(-age).Unix()}); got != recent {
			t.Errorf("a sign-in %s old: Recent %v", age, got)
		}
	}
	w.o.ReauthenticateAfter = 0
	if !w.Recent(Session{AuthTime: 1}) {
		t.Error("without ReauthenticateAfter, an old sign-in is not Recent")
	}
}
