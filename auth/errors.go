package auth

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Check them with [errors.Is]; backends wrap them with their own
// prefix ("sqlstore: get credential: %w").
var (
	// ErrInvalidCredentials means access is denied: unknown user, wrong or
	// malformed password, revoked, expired, or a disabled owner. It deliberately
	// does not say which (HTTP 401).
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
	// ErrNotFound means the named record does not exist for that owner.
	ErrNotFound = errors.New("auth: not found")
	// ErrAlreadyExists means a record with the same ID or hash already exists.
	ErrAlreadyExists = errors.New("auth: already exists")
	// ErrThrottled means too many recent failures; retry later (HTTP 429).
	// A [*ThrottleError] carries the delay.
	ErrThrottled = errors.New("auth: too many attempts")
	// ErrUnavailable means a store or directory could not answer (HTTP 503).
	// It never means the credentials are wrong.
	ErrUnavailable = errors.New("auth: service unavailable")
	// ErrForbidden means the credential is valid but lacks a required scope
	// (HTTP 403). It means nothing else.
	ErrForbidden = errors.New("auth: forbidden")
	// ErrInvalidInput means a request argument was rejected (an empty or
	// over-long name, an unknown scope, too many app passwords). From the
	// [Manager] it is an [*InputError], whose Message may be shown to the
	// person.
	ErrInvalidInput = errors.New("auth: invalid input")
)

// ThrottleError is returned by a [Limiter] when an attempt is refused.
// It matches [ErrThrottled] with errors.Is.
type ThrottleError struct {
	// RetryAfter is how long the client should wait before trying again
	// (package httpauth sends it as Retry-After, rounded up to whole seconds).
	RetryAfter time.Duration
}

// Error says how long to wait.
func (e *ThrottleError) Error() string {
	return fmt.Sprintf("auth: too many attempts, retry after %s", e.RetryAfter.Round(time.Second))
}

// Is reports whether target is [ErrThrottled].
func (e *ThrottleError) Is(target error) bool { return target == ErrThrottled }

// InputError is a request argument the [Manager] refused. It matches
// [ErrInvalidInput] with errors.Is.
type InputError struct {
	// Message says what is wrong in words fit to show to the person who
	// sent it ("name is longer than 100 characters"). It holds no secret.
	Message string
}

// Error returns "auth: invalid input: " and the Message.
func (e *InputError) Error() string { return "auth: invalid input: " + e.Message }

// Is reports whether target is [ErrInvalidInput].
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

// invalidInput returns an [*InputError] with a formatted Message.
func invalidInput(format string, args ...any) error {
	return &InputError{Message: fmt.Sprintf(format, args...)}
}
