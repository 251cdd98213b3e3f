package wire

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/behalf-dev/behalf/internal/vault"
)

// A vault key that cannot be used is reported as the dependency failure
// it is (502 InternalServerException, with a message), whether the
// handler returned the error as it came or wrapped it in Internal; any
// other error stays a hidden 500.
func TestVaultKeyErrorsAreBadGateway(t *testing.T) {
	for name, tc := range map[string]struct {
		err    error
		status int
		msg    string
	}{
		"unavailable":           {fmt.Errorf("open API key of p: %w", fmt.Errorf("%w: AWS KMS Decrypt arn:…: DisabledException", vault.ErrKeyUnavailable)), http.StatusBadGateway, "key is unavailable"},
		"unavailable, Internal": {Internal(fmt.Errorf("open client secret: %w", vault.ErrKeyUnavailable)), http.StatusBadGateway, "key is unavailable"},
		"gone":                  {fmt.Errorf("open: %w", vault.ErrKeyGone), http.StatusBadGateway, "no longer exists"},
		"other":                 {errors.New("disk on fire"), http.StatusInternalServerError, "internal error"},
		"tampered":              {fmt.Errorf("open: %w", vault.ErrDecrypt), http.StatusInternalServerError, "internal error"},
	} {
		e := AsError(tc.err)
		rec := httptest.NewRecorder()
		if err := WriteError(rec, e); err != nil {
			t.Fatal(err)
		}
		if e.Type != TypeInternal || rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.msg) || e.Err == nil {
			t.Errorf("%s: %d %s (cause %v)", name, rec.Code, rec.Body, e.Err)
		}
		if strings.Contains(rec.Body.String(), "arn:") || strings.Contains(rec.Body.String(), "Disabled") {
			t.Errorf("%s: the answer names the key or its state: %s", name, rec.Body)
		}
	}
}
