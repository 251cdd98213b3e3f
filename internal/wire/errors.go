// Package wire speaks AWS restJson1, the protocol of both AgentCore
// Identity planes: it routes operations by method and path, authenticates
// and authorizes each call, decodes bodies strictly, validates fields, and
// renders typed errors in the shape the AWS SDKs decode
// (X-Amzn-ErrorType plus {"__type","message"}).
package wire

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/vault"
)

// Error is an API error. Type names a modeled AWS error shape; Message is
// the text the caller sees; Err is a private cause that is logged with the
// request id and never sent.
type Error struct {
	Type    string
	Status  int
	Message string
	// Reason and Fields are set on ValidationException.
	Reason string
	Fields []FieldError
	Err    error
	// hidden replaces Message with a request id on the wire.
	hidden bool
}

// FieldError names one invalid input member.
type FieldError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Type, e.Message, e.Err)
	}
	return e.Type + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Error types. The statuses are those of the AgentCore API reference's
// Errors sections (docs/api.md).
const (
	TypeValidation             = "ValidationException"
	TypeUnauthorized           = "UnauthorizedException"
	TypeAccessDenied           = "AccessDeniedException"
	TypeNotFound               = "ResourceNotFoundException"
	TypeConflict               = "ConflictException"
	TypeConcurrentModification = "ConcurrentModificationException"
	TypeServiceQuota           = "ServiceQuotaExceededException"
	TypeThrottling             = "ThrottlingException"
	TypeInternal               = "InternalServerException"
	TypeUnknownOperation       = "UnknownOperationException"
)

// ValidationException reasons.
const (
	ReasonCannotParse      = "CannotParse"
	ReasonFieldValidation  = "FieldValidationFailed"
	ReasonResourceConflict = "ResourceConflict"
)

func newError(typ string, status int, format string, args []any) *Error {
	return &Error{Type: typ, Status: status, Message: fmt.Sprintf(format, args...)}
}

// Validation reports invalid fields.
func Validation(message string, fields ...FieldError) *Error {
	return &Error{Type: TypeValidation, Status: http.StatusBadRequest, Message: message, Reason: ReasonFieldValidation, Fields: fields}
}

// CannotParse reports a body that is not the expected JSON.
func CannotParse(format string, args ...any) *Error {
	e := newError(TypeValidation, http.StatusBadRequest, format, args)
	e.Reason = ReasonCannotParse
	return e
}

// Unauthorized reports a call whose credentials do not authenticate it.
func Unauthorized(format string, args ...any) *Error {
	return newError(TypeUnauthorized, http.StatusUnauthorized, format, args)
}

// AccessDenied reports an authenticated caller that may not do what it asked.
func AccessDenied(format string, args ...any) *Error {
	return newError(TypeAccessDenied, http.StatusForbidden, format, args)
}

// NotFound reports a resource that does not exist.
func NotFound(format string, args ...any) *Error {
	return newError(TypeNotFound, http.StatusNotFound, format, args)
}

// Conflict reports a resource that already exists.
func Conflict(format string, args ...any) *Error {
	return newError(TypeConflict, http.StatusConflict, format, args)
}

// ConcurrentModification reports a change that raced another; a retry may
// succeed.
func ConcurrentModification(format string, args ...any) *Error {
	return newError(TypeConcurrentModification, http.StatusConflict, format, args)
}

// ServiceQuotaExceeded reports a change past a limit (the tags of a
// resource).
func ServiceQuotaExceeded(format string, args ...any) *Error {
	return newError(TypeServiceQuota, http.StatusPaymentRequired, format, args)
}

// Throttling reports a caller over its request rate.
func Throttling(format string, args ...any) *Error {
	return newError(TypeThrottling, http.StatusTooManyRequests, format, args)
}

// Internal hides cause from the caller, who gets only the request id to
// quote; the cause is logged. A cause that is a vault key that cannot be
// used is no internal fault but a dependency's: it is keyUnavailable.
func Internal(cause error) *Error {
	if e := keyUnavailable(cause); e != nil {
		return e
	}
	return &Error{Type: TypeInternal, Status: http.StatusInternalServerError, Message: "internal error", Err: cause, hidden: true}
}

// keyUnavailable reports a call that needed a vault key which cannot be
// used (vault.ErrKeyUnavailable: its key-management service unreachable,
// the key disabled or pending deletion; vault.ErrKeyGone: deleted) as
// BadGateway, so the caller knows to retry later and gets no credential.
// Which key and why are in the cause, logged for the operator. nil when
// cause is no such error.
func keyUnavailable(cause error) *Error {
	switch {
	case errors.Is(cause, vault.ErrKeyUnavailable):
		return BadGateway("the token vault's key is unavailable: a secret this call needs is sealed under a key that cannot be used now " +
			"(its key-management service is unreachable, or the key is disabled or pending deletion); try again later").WithCause(cause)
	case errors.Is(cause, vault.ErrKeyGone):
		return BadGateway("the token vault's key no longer exists: a secret this call needs was sealed under a deleted key and cannot be opened").WithCause(cause)
	}
	return nil
}

// BadGateway reports that a service behalf depends on failed — an
// identity provider, a token endpoint. It is typed InternalServerException
// (the only server fault AgentCore models) with status 502, and unlike
// Internal its message is shown: the caller needs to know which upstream
// failed and how.
func BadGateway(format string, args ...any) *Error {
	return newError(TypeInternal, http.StatusBadGateway, format, args)
}

// Hidden reports whether the message is withheld from callers (Internal).
func (e *Error) Hidden() bool { return e.hidden }

// WithCause attaches a private cause for the log.
func (e *Error) WithCause(err error) *Error {
	e.Err = err
	return e
}

// AsError converts any error into an *Error, treating unknown errors as
// internal faults.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err)
}

// StorageError maps the storage sentinels to API errors about the resource
// named name, of kind what ("workload identity"). An *Error passes
// unchanged; any other error is wrapped with the resource it concerns, and
// the router reports it as an internal error.
func StorageError(err error, what, name string) error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return NotFound("%s %s does not exist", what, name)
	case errors.Is(err, storage.ErrAlreadyExists):
		return Conflict("%s %s already exists", what, name)
	case errors.Is(err, storage.ErrTooManyTags):
		return ServiceQuotaExceeded("%s %s would carry more than %d tags", what, name, storage.MaxTags)
	case errors.Is(err, storage.ErrConflict):
		return ConcurrentModification("%s %s was changed concurrently; retry", what, name)
	case errors.As(err, &e):
		return e
	}
	return fmt.Errorf("%s %s: %w", what, name, err)
}
