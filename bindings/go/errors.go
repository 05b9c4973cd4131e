package rotator

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Every error the package returns matches one of them with [errors.Is], except
// [*APIError] (use [errors.As]) and the context's own errors.
var (
	// ErrAllKeysRateLimited: no key can admit the request now. The error is a
	// [*RateLimitError] whose RetryAfter says when one can.
	ErrAllKeysRateLimited = errors.New("rotator: all API keys have reached their rate limits")

	// ErrNoUsableKeys: every key of the pool is disabled (invalid, leaked, suspended, API not
	// enabled). Retrying will not help; fix the keys.
	ErrNoUsableKeys = errors.New("rotator: no usable API keys")

	// ErrConfig: the configuration is invalid. The message names the [Config] field or the
	// environment variable.
	ErrConfig = errors.New("rotator: invalid configuration")

	// ErrTimeout: the call's time budget ran out (the pool's Timeout or the context's
	// deadline). When the context's deadline was the budget, the error also matches
	// [context.DeadlineExceeded].
	ErrTimeout = errors.New("rotator: request timed out")

	// ErrTransport: the connection to the service failed, after the allowed retries.
	ErrTransport = errors.New("rotator: transport error")

	// ErrClosed: the call was made on a closed (or nil) [*KeyPool].
	ErrClosed = errors.New("rotator: key pool is closed")

	// ErrInvalidArgument: a call's argument was unusable (a model name that is not one, a
	// request body that is not JSON, a string containing a NUL byte).
	ErrInvalidArgument = errors.New("rotator: invalid argument")

	// ErrState: the shared key-state store is unusable.
	ErrState = errors.New("rotator: key state store is unusable")
	// ErrStateUnavailable: the same sentinel, by the name the Redis documentation uses: a
	// Redis server that is unreachable or did not answer in time (GR_ERR_STATE; the message
	// names its address, never its password). errors.Is(err, ErrStateUnavailable) holds for
	// every unusable store.
	ErrStateUnavailable = ErrState

	// ErrIncompleteStream: a stream ended without finishReason after the events already
	// delivered; they are an incomplete answer, not a success.
	ErrIncompleteStream = errors.New("rotator: the stream ended without finishReason")

	// ErrCancelled: the call or stream was cancelled while it ran (by its context, which
	// then also matches: errors.Is(err, context.Canceled)).
	ErrCancelled = errors.New("rotator: cancelled")

	// ErrModelUnavailable: no key of the pool has the model nor any of its fallbacks (the
	// service answered "limit: 0": the model is not on their tier). Waiting does not help.
	ErrModelUnavailable = errors.New("rotator: model unavailable")

	// ErrInternal: a bug in the library (a panic caught at its boundary). Please report it.
	ErrInternal = errors.New("rotator: internal error")
)

// RateLimitError is returned when every key has reached its rate limit. It matches
// [ErrAllKeysRateLimited] with [errors.Is].
type RateLimitError struct {
	// RetryAfter is how long until a key can admit a request again (always positive).
	RetryAfter time.Duration

	msg string
}

func (e *RateLimitError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("%s; retry in %s", ErrAllKeysRateLimited, e.RetryAfter)
	}
	return "rotator: " + e.msg
}

// Is reports whether target is [ErrAllKeysRateLimited].
func (e *RateLimitError) Is(target error) bool { return target == ErrAllKeysRateLimited }

// APIError is an error answer of the Gemini API that is the caller's to handle (a 4xx about the
// request, or a 5xx that persisted through the retries). Keys are never named, only their
// fingerprints.
type APIError struct {
	// StatusCode is the HTTP status, e.g. 400 or 503.
	StatusCode int
	// Status is the RPC status of the error body, e.g. "INVALID_ARGUMENT"; "" if none.
	Status string
	// Message is the service's own message, without the status prefix of Error() (any key in
	// it is redacted by the library).
	Message string
	// KeyFingerprint is the fingerprint of the key that got the answer; "" if unknown.
	KeyFingerprint string
	// Body is the service's error body byte for byte as received (its JSON, every details
	// entry included); nil for an APIError built by hand.
	Body []byte

	// msg is the library's one-line message, which Error() shows as it is.
	msg string
}

// Error is the library's message: "rotator: Gemini API error 400 INVALID_ARGUMENT: <the
// service's message> (key <fingerprint>)". An APIError built by hand shows its fields in the
// same shape.
func (e *APIError) Error() string {
	if e.msg != "" {
		return "rotator: " + e.msg
	}
	var b strings.Builder
	fmt.Fprintf(&b, "rotator: Gemini API error %d", e.StatusCode)
	if e.Status != "" {
		b.WriteString(" " + e.Status)
	}
	b.WriteString(": " + e.Message)
	if e.KeyFingerprint != "" {
		b.WriteString(" (key " + e.KeyFingerprint + ")")
	}
	return b.String()
}

// statusError is every other failure: a message from the library, the sentinel it matches,
// and optionally a cause (context.DeadlineExceeded for a context-driven timeout).
type statusError struct {
	sentinel error
	msg      string
	cause    error
}

func (e *statusError) Error() string { return "rotator: " + e.msg }

func (e *statusError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.sentinel, e.cause}
	}
	return []error{e.sentinel}
}

// newError builds an error matching sentinel, with a message in fmt.Sprintf style.
func newError(sentinel error, format string, args ...any) error {
	return &statusError{sentinel: sentinel, msg: fmt.Sprintf(format, args...)}
}
