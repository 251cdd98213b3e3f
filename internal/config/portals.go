package config

import "time"

// PortalsFile configures the consent portals' pages
// (docs/consent-portals.md), which every portal shares.
type PortalsFile struct {
	// SessionTTL is how long a user's sign-in lasts; default 1h.
	SessionTTL time.Duration `yaml:"sessionTtl"`
	// ReauthenticateAfter, when set, is how old a sign-in may be for
	// Connect, Reconnect and Disconnect; an older one signs in again at
	// the identity provider first (OpenID Connect max_age). 0, the
	// default, never asks.
	ReauthenticateAfter time.Duration `yaml:"reauthenticateAfter"`
}

// Portals is the validated portals configuration.
type Portals struct {
	SessionTTL          time.Duration
	ReauthenticateAfter time.Duration
}

// DefaultPortalSessionTTL is how long a portal sign-in lasts by default.
const DefaultPortalSessionTTL = time.Hour

// validatePortals checks the portals section.
func (f File) validatePortals(c *Config, probs *Problems) {
	p := f.Portals
	if p.SessionTTL == 0 {
		p.SessionTTL = DefaultPortalSessionTTL
	}
	if p.SessionTTL < 5*time.Minute || p.SessionTTL > 12*time.Hour {
		probs.add("portals.sessionTtl", "must be between 5m and 12h")
	}
	// Whole seconds: it is sent as max_age, a number of seconds.
	if r := p.ReauthenticateAfter; r != 0 && (r < time.Minute || r > 12*time.Hour || r%time.Second != 0) {
		probs.add("portals.reauthenticateAfter", "must be 0 (never ask) or whole seconds between 1m and 12h")
	}
	c.Portals = Portals(p)
}
