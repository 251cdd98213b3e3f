// Package conformance is the test suite every storage.Storage backend must
// pass. A backend's test file calls RunTests and RunConcurrencyTests with a
// constructor that returns a fresh, empty store for each subtest.
package conformance

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/behalf-dev/behalf/internal/storage"
)

// Page sizes the storage contract fixes for every backend.
const (
	defaultPageLimit = 100
	maxPageLimit     = 1000
)

// errRefused is what test updaters return to abort an update.
var errRefused = errors.New("conformance: updater refused")

// RunTests runs the functional suite: CRUD for every entity, updater
// semantics, pagination, uniqueness, not-found errors, tags, the token
// vault, server keys, cached tokens and their cascades, the audit log,
// three-legged OAuth sessions, users' connections with their refresh
// leases and cascades, key-rotation helpers, and the authorization
// server's clients, requests, refresh tokens, consents and token ids, and
// consent portals.
// newStorage must return an empty store and arrange for it to be closed
// when its test ends.
func RunTests(t *testing.T, newStorage func(t *testing.T) storage.Storage) {
	tests := []struct {
		name string
		run  func(t *testing.T, s storage.Storage)
	}{
		{"Principals", testPrincipals},
		{"PrincipalUpdater", testPrincipalUpdater},
		{"BootstrapPrincipal", testBootstrapPrincipal},
		{"WorkloadIdentities", testWorkloadIdentities},
		{"WorkloadIdentityUpdater", testWorkloadIdentityUpdater},
		{"WorkloadIdentityNilVersusEmpty", testWorkloadIdentityNilVersusEmpty},
		{"OAuth2Providers", testOAuth2Providers},
		{"OAuth2ProviderUpdater", testOAuth2ProviderUpdater},
		{"APIKeyProviders", testAPIKeyProviders},
		{"APIKeyProviderUpdater", testAPIKeyProviderUpdater},
		{"ExternalSecretRefs", testExternalSecretRefs},
		{"Timestamps", testTimestamps},
		{"Pagination", testPagination},
		{"PageLimits", testPageLimits},
		{"NotFound", testNotFound},
		{"Tags", testTags},
		{"TagsAreScopedByKind", testTagsAreScopedByKind},
		{"TagLimit", testTagLimit},
		{"TokenVault", testTokenVault},
		{"ListStaleSecrets", testListStaleSecrets},
		{"ListStaleSecretsAfter", testListStaleSecretsAfter},
		{"ReplaceSecret", testReplaceSecret},
		{"ResetTokenVault", testResetTokenVault},
		{"ServerKeys", testServerKeys},
		{"CachedTokens", testCachedTokens},
		{"CachedTokenExpiry", testCachedTokenExpiry},
		{"CachedTokenCascades", testCachedTokenCascades},
		{"AuditAppend", testAuditAppend},
		{"AuditChainRefused", testAuditChainRefused},
		{"AuditList", testAuditList},
		{"AuditPageLimits", testAuditPageLimits},
		{"AuditNewestFirst", testAuditNewestFirst},
		{"AuditedChange", testAuditedChange},
		{"AuditedChangeFails", testAuditedChangeFails},
		{"AuditedChangeChainFails", testAuditedChangeChainFails},
		{"AuditCheckpoints", testAuditCheckpoints},
		{"OAuthSessions", testOAuthSessions},
		{"OpenOAuthSessions", testOpenOAuthSessions},
		{"OAuthSessionUpdater", testOAuthSessionUpdater},
		{"OAuthSessionExpiry", testOAuthSessionExpiry},
		{"StartOAuthSession", testStartOAuthSession},
		{"StartOAuthSessionAdmit", testStartOAuthSessionAdmit},
		{"CompleteOAuthSession", testCompleteOAuthSession},
		{"Connections", testConnections},
		{"ConnectionNilVersusEmpty", testConnectionNilVersusEmpty},
		{"ConnectionUpdater", testConnectionUpdater},
		{"ConnectionVersion", testConnectionVersion},
		{"ListConnections", testListConnections},
		{"ConnectionPageLimits", testConnectionPageLimits},
		{"IdleConnections", testIdleConnections},
		{"RefreshLease", testRefreshLease},
		{"UserGrantCascades", testUserGrantCascades},
		{"RepointCascades", testRepointCascades},
		{"OAuthClients", testOAuthClients},
		{"OAuthClientCascade", testOAuthClientCascade},
		{"AuthRequests", testAuthRequests},
		{"AuthRequestUpdater", testAuthRequestUpdater},
		{"RedeemAuthCode", testRedeemAuthCode},
		{"AuthRequestExpiry", testAuthRequestExpiry},
		{"RefreshTokens", testRefreshTokens},
		{"RefreshRotation", testRefreshRotation},
		{"RefreshRevocation", testRefreshRevocation},
		{"Consents", testConsents},
		{"ConsentCascade", testConsentCascade},
		{"ListConsents", testListConsents},
		{"ConsentPageLimits", testConsentPageLimits},
		{"TokenIDs", testTokenIDs},
		{"AuditedAuthorizationServer", testAuditedAuthorizationServer},
		{"ConsentPortals", testConsentPortals},
		{"ConsentPortalUpdater", testConsentPortalUpdater},
		{"ConsentPortalPagination", testConsentPortalPagination},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStorage(t)) })
	}
}

// past is a creation time in the past, in a non-UTC zone and with
// nanoseconds, so that tests see how a backend normalises times.
func past() time.Time {
	return time.Date(2024, 3, 4, 5, 6, 7, 123456789, time.FixedZone("UTC+2", 2*3600))
}

// asStored is t as every backend must return it: UTC, whole microseconds.
func asStored(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

func mustOK(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t testing.TB, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

func wantDiff(t testing.TB, what string, want, got any) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
}

// checkStoredTime checks that got is want as stored, in UTC.
func checkStoredTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(asStored(want)) || got.Location() != time.UTC {
		t.Errorf("%s = %v, want %v in UTC", what, got, asStored(want))
	}
}

// checkUpdatedAt checks that an update moved the update time from before to
// about now.
func checkUpdatedAt(t testing.TB, what string, got, before time.Time) {
	t.Helper()
	if !got.After(before) || time.Since(got) > time.Minute || got.Location() != time.UTC {
		t.Errorf("%s = %v, want a UTC time after %v and close to now", what, got, before)
	}
}

// checkConcurrentErr reports err, calling out the lock errors a backend
// must never surface under concurrent use.
func checkConcurrentErr(t testing.TB, err error, what string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := strings.ToLower(err.Error())
	if strings.Contains(msg, "locked") || strings.Contains(msg, "busy") {
		t.Errorf("%s: backend let a lock error escape: %v", what, err)
		return
	}
	t.Errorf("%s: %v", what, err)
}
