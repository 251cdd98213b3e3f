package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The portals section: its defaults, and every problem with its path.
func TestPortals(t *testing.T) {
	c, err := Defaults().Validate()
	if err != nil || c.Portals != (Portals{SessionTTL: DefaultPortalSessionTTL}) {
		t.Fatalf("default: %+v %v", c.Portals, err)
	}
	f := Defaults()
	f.Portals = PortalsFile{SessionTTL: 8 * time.Hour, ReauthenticateAfter: 10 * time.Minute}
	if c, err := f.Validate(); err != nil || c.Portals != (Portals{SessionTTL: 8 * time.Hour, ReauthenticateAfter: 10 * time.Minute}) {
		t.Fatalf("set: %+v %v", c.Portals, err)
	}
	for name, tt := range map[string]struct {
		p  PortalsFile
		at string
	}{
		"short session":        {PortalsFile{SessionTTL: time.Minute}, "portals.sessionTtl:"},
		"endless session":      {PortalsFile{SessionTTL: 13 * time.Hour}, "portals.sessionTtl:"},
		"negative session":     {PortalsFile{SessionTTL: -time.Hour}, "portals.sessionTtl:"},
		"re-auth too soon":     {PortalsFile{ReauthenticateAfter: 30 * time.Second}, "portals.reauthenticateAfter:"},
		"re-auth too late":     {PortalsFile{ReauthenticateAfter: 13 * time.Hour}, "portals.reauthenticateAfter:"},
		"re-auth negative":     {PortalsFile{ReauthenticateAfter: -time.Minute}, "portals.reauthenticateAfter:"},
		"re-auth not a second": {PortalsFile{ReauthenticateAfter: 10*time.Minute + time.Millisecond}, "portals.reauthenticateAfter:"},
	} {
		f := Defaults()
		f.Portals = tt.p
		if _, err := f.Validate(); err == nil || !strings.Contains(err.Error(), tt.at) {
			t.Errorf("%s: %v, want a problem at %s", name, err, tt.at)
		}
	}
	// From the file: durations as YAML strings, unknown keys refused.
	path := filepath.Join(t.TempDir(), "behalf.yaml")
	if err := os.WriteFile(path, []byte("portals:\n  sessionTtl: 2h\n  reauthenticateAfter: 15m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err := Load(path, func(string) string { return "" }); err != nil || f.Portals.ReauthenticateAfter != 15*time.Minute || f.Portals.SessionTTL != 2*time.Hour {
		t.Fatalf("load: %+v %v", f.Portals, err)
	}
	if err := os.WriteFile(path, []byte("portals:\n  reauthenticate: 15m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "portals.reauthenticate") {
		t.Fatalf("unknown key: %v", err)
	}
}
