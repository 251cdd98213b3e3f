package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/behalf-dev/behalf/internal/storage"
)

// errAuthServerPending marks the authorization server's storage as not
// yet built; replaced by its implementation.
var errAuthServerPending = errors.New("sqlstore: authorization server storage is not built yet")

func (s *Store) CreateOAuthClient(context.Context, storage.OAuthClient) error {
	return errAuthServerPending
}
func (s *Store) GetOAuthClient(context.Context, string) (storage.OAuthClient, error) {
	return storage.OAuthClient{}, errAuthServerPending
}
func (s *Store) DeleteOAuthClient(context.Context, string) error { return errAuthServerPending }
func (s *Store) CreateAuthRequest(context.Context, storage.AuthRequest) error {
	return errAuthServerPending
}
func (s *Store) GetAuthRequestByLoginState(context.Context, []byte) (storage.AuthRequest, error) {
	return storage.AuthRequest{}, errAuthServerPending
}
func (s *Store) GetAuthRequest(context.Context, string) (storage.AuthRequest, error) {
	return storage.AuthRequest{}, errAuthServerPending
}
func (s *Store) UpdateAuthRequest(context.Context, string, func(storage.AuthRequest) (storage.AuthRequest, error)) (storage.AuthRequest, error) {
	return storage.AuthRequest{}, errAuthServerPending
}
func (s *Store) RedeemAuthCode(context.Context, []byte, string) (storage.AuthRequest, error) {
	return storage.AuthRequest{}, errAuthServerPending
}
func (s *Store) DeleteEndedAuthRequests(context.Context, time.Time) (int, error) {
	return 0, errAuthServerPending
}
func (s *Store) CreateRefreshToken(context.Context, storage.OAuthRefreshToken) error {
	return errAuthServerPending
}
func (s *Store) GetRefreshToken(context.Context, []byte) (storage.OAuthRefreshToken, error) {
	return storage.OAuthRefreshToken{}, errAuthServerPending
}
func (s *Store) RotateRefreshToken(context.Context, []byte, storage.OAuthRefreshToken) (storage.OAuthRefreshToken, error) {
	return storage.OAuthRefreshToken{}, errAuthServerPending
}
func (s *Store) RevokeRefreshFamily(context.Context, string) (int, error) {
	return 0, errAuthServerPending
}
func (s *Store) DeleteExpiredRefreshTokens(context.Context, time.Time) (int, error) {
	return 0, errAuthServerPending
}
func (s *Store) PutConsent(context.Context, storage.OAuthConsent) error { return errAuthServerPending }
func (s *Store) GetConsent(context.Context, string, string, string) (storage.OAuthConsent, error) {
	return storage.OAuthConsent{}, errAuthServerPending
}
func (s *Store) ListConsents(context.Context, storage.ConsentFilter) ([]storage.OAuthConsent, error) {
	return nil, errAuthServerPending
}
func (s *Store) DeleteConsent(context.Context, string, string, string) error {
	return errAuthServerPending
}
func (s *Store) UseTokenID(context.Context, string, time.Time) error { return errAuthServerPending }
func (s *Store) TokenIDUsed(context.Context, string) (bool, error) {
	return false, errAuthServerPending
}
func (s *Store) DeleteExpiredTokenIDs(context.Context, time.Time) (int, error) {
	return 0, errAuthServerPending
}
