package sdk

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Status is an agent's health as its /ping reports it.
type Status string

// The statuses of AgentCore Runtime's /ping contract.
const (
	Healthy     Status = "Healthy"
	HealthyBusy Status = "HealthyBusy" // the agent is working on background tasks
)

// Ping serves GET /ping as AgentCore Runtime expects:
// 200 {"status":"Healthy"|"HealthyBusy","time_of_last_update":<epoch seconds>},
// where the time moves only when the status changes. The status is the
// forced one if set, else HealthyBusy while a tracked task runs, else
// Healthy. The zero value is ready to use.
type Ping struct {
	Now func() time.Time // defaults to time.Now

	mu      sync.Mutex
	forced  Status
	tasks   int
	last    Status
	changed time.Time
}

// Force sets the status regardless of tasks; Force("") clears it.
func (p *Ping) Force(s Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forced = s
}

// Track marks a background task as running, so that /ping says
// HealthyBusy, until done is called.
func (p *Ping) Track() (done func()) {
	p.mu.Lock()
	p.tasks++
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.tasks--
			p.mu.Unlock()
		})
	}
}

// Status returns the current status and when it last changed.
func (p *Ping) Status() (Status, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Healthy
	switch {
	case p.forced != "":
		s = p.forced
	case p.tasks > 0:
		s = HealthyBusy
	}
	if s != p.last || p.changed.IsZero() {
		now := time.Now
		if p.Now != nil {
			now = p.Now
		}
		p.last, p.changed = s, now()
	}
	return s, p.changed
}

func (p *Ping) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s, changed := p.Status()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Status Status `json:"status"`
		Time   int64  `json:"time_of_last_update"`
	}{s, changed.Unix()})
}
