package config

import (
	"strings"
	"testing"
	"time"
)

// The console section: off by default, its default session, and every
// problem reported with its path.
func TestConsole(t *testing.T) {
	if c, err := Defaults().Validate(); err != nil || c.Console != nil {
		t.Fatalf("default: %+v %v", c.Console, err)
	}
	valid := func() File {
		f := Defaults()
		f.Console = ConsoleFile{Enabled: true, Provider: "corp", Scopes: []string{"openid", "groups"},
			AdminClaim: ConsoleClaimFile{Name: "groups", Value: "behalf-admins"}, Principal: "BEHALFCONSOLEADMIN1"}
		return f
	}
	c, err := valid().Validate()
	if err != nil {
		t.Fatal(err)
	}
	if k := c.Console; k == nil || k.SessionTTL != DefaultConsoleSessionTTL || k.ClaimName != "groups" || k.ClaimValue != "behalf-admins" || k.Principal != "BEHALFCONSOLEADMIN1" {
		t.Errorf("console: %+v", c.Console)
	}
	off := valid()
	off.Console.Enabled, off.Console.Provider = false, ""
	if c, err := off.Validate(); err != nil || c.Console != nil {
		t.Errorf("disabled: %+v %v", c.Console, err)
	}
	for name, tt := range map[string]struct {
		edit func(*File)
		at   string
	}{
		"no provider":     {func(f *File) { f.Console.Provider = "" }, "console.provider:"},
		"bad provider":    {func(f *File) { f.Console.Provider = "a b" }, "console.provider:"},
		"bad scope":       {func(f *File) { f.Console.Scopes = []string{"a b"} }, "console.scopes:"},
		"no claim":        {func(f *File) { f.Console.AdminClaim.Name = "" }, "console.adminClaim.name:"},
		"no claim value":  {func(f *File) { f.Console.AdminClaim.Value = "" }, "console.adminClaim.value:"},
		"no principal":    {func(f *File) { f.Console.Principal = "" }, "console.principal:"},
		"bad principal":   {func(f *File) { f.Console.Principal = "short" }, "console.principal:"},
		"short session":   {func(f *File) { f.Console.SessionTTL = time.Second }, "console.sessionTtl:"},
		"endless session": {func(f *File) { f.Console.SessionTTL = 24 * time.Hour }, "console.sessionTtl:"},
	} {
		f := valid()
		tt.edit(&f)
		_, err := f.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.at) {
			t.Errorf("%s: %v, want a problem at %s", name, err, tt.at)
		}
	}
}
