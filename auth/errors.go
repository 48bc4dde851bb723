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
	// (HTTP 403).
	ErrForbidden = errors.New("auth: forbidden")
	// ErrInvalidInput means a request argument was rejected (an empty or
	// over-long name, an unknown scope, too many app passwords).
	ErrInvalidInput = errors.New("auth: invalid input")
)

// ThrottleError is returned by a [Limiter] when an attempt is refused.
// It matches [ErrThrottled] with errors.Is.
type ThrottleError struct {
	RetryAfter time.Duration
}

// Error says how long to wait.
func (e *ThrottleError) Error() string {
	return fmt.Sprintf("auth: too many attempts, retry after %s", e.RetryAfter.Round(time.Second))
}

// Is reports whether target is [ErrThrottled].
func (e *ThrottleError) Is(target error) bool { return target == ErrThrottled }
