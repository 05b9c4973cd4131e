package rotator

// The cgo boundary: C strings in and out, and C errors into Go errors. Everything here copies,
// so C never keeps a Go pointer and Go never keeps a C pointer after a call returns.

// #include <stdlib.h>
// #include <string.h>
// #include "gemini_rotator.h"
import "C"

import (
	"bytes"
	"context"
	"strings"
	"time"
	"unsafe"
)

// cString copies s into C memory, to be released with C.free. A Go string may contain NUL
// bytes, which a C string cannot carry: that is an ErrInvalidArgument naming what.
func cString(s, what string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, newError(ErrInvalidArgument, "%s contains a NUL byte", what)
	}
	return C.CString(s), nil
}

// cBytes copies b into a NUL-terminated C string, to be released with C.free.
func cBytes(b []byte, what string) (*C.char, error) {
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, newError(ErrInvalidArgument, "%s contains a NUL byte", what)
	}
	p := (*C.char)(C.malloc(C.size_t(len(b) + 1)))
	buf := unsafe.Slice((*byte)(unsafe.Pointer(p)), len(b)+1)
	copy(buf, b)
	buf[len(b)] = 0
	return p, nil
}

// stringCall is a library function that writes a string to its `char **` out-param
// (gr_stats_json, gr_metrics_prometheus, gr_key_fingerprint, ...), with its other arguments
// already bound.
type stringCall func(out **C.char, cerr **C.gr_error) C.gr_status

// callString runs call and returns the string it wrote, copied once into Go memory and freed
// with gr_free; a failure is the call's error (deadline budget: none).
func callString(call stringCall) ([]byte, error) {
	var out *C.char
	var cerr *C.gr_error
	if status := call(&out, &cerr); status != C.GR_OK {
		return nil, takeError(status, cerr, false)
	}
	defer C.gr_free(out)
	return C.GoBytes(unsafe.Pointer(out), C.int(C.strlen(out))), nil
}

// takeResponse copies a gr_response's answer and key fingerprint into Go memory (one copy
// of the answer, its NUL bytes included) and frees the response.
func takeResponse(resp *C.gr_response) (body []byte, fingerprint string) {
	defer C.gr_response_free(resp)
	var n C.size_t
	data := C.gr_response_body(resp, &n)
	return C.GoBytes(unsafe.Pointer(data), C.int(n)), C.GoString(C.gr_response_key_fingerprint(resp))
}

// takeError turns a failed call's status and error object into a Go error, and frees the
// error object. deadlineBudget says whether the context's deadline set the call's time budget,
// so that a timeout also matches context.DeadlineExceeded.
func takeError(status C.gr_status, cerr *C.gr_error, deadlineBudget bool) error {
	defer C.gr_error_free(cerr)
	msg := C.GoString(C.gr_error_message(cerr))
	if cerr == nil || msg == "" {
		msg = C.GoString(C.gr_status_name(C.int32_t(status)))
	}
	switch status {
	case C.GR_ERR_ALL_KEYS_RATE_LIMITED:
		retry := time.Duration(C.gr_error_retry_after_ms(cerr)) * time.Millisecond
		if retry <= 0 {
			retry = time.Millisecond
		}
		return &RateLimitError{RetryAfter: retry, msg: msg}
	case C.GR_ERR_API:
		var n C.size_t
		body := C.gr_error_api_body(cerr, &n)
		return &APIError{
			Body:           C.GoBytes(unsafe.Pointer(body), C.int(n)),
			StatusCode:     int(C.gr_error_http_status(cerr)),
			Status:         C.GoString(C.gr_error_rpc_status(cerr)),
			Message:        C.GoString(C.gr_error_api_message(cerr)),
			KeyFingerprint: C.GoString(C.gr_error_key_fingerprint(cerr)),
			msg:            msg,
		}
	case C.GR_ERR_NO_USABLE_KEYS:
		return &statusError{sentinel: ErrNoUsableKeys, msg: msg}
	case C.GR_ERR_CONFIG:
		return &statusError{sentinel: ErrConfig, msg: msg}
	case C.GR_ERR_TIMEOUT:
		e := &statusError{sentinel: ErrTimeout, msg: msg}
		if deadlineBudget {
			e.cause = context.DeadlineExceeded
		}
		return e
	case C.GR_ERR_TRANSPORT:
		return &statusError{sentinel: ErrTransport, msg: msg}
	case C.GR_ERR_STATE:
		return &statusError{sentinel: ErrState, msg: msg}
	case C.GR_ERR_INCOMPLETE_STREAM:
		return &statusError{sentinel: ErrIncompleteStream, msg: msg}
	case C.GR_ERR_CANCELLED:
		return &statusError{sentinel: ErrCancelled, msg: msg}
	case C.GR_ERR_MODEL_UNAVAILABLE:
		return &statusError{sentinel: ErrModelUnavailable, msg: msg}
	case C.GR_ERR_NULL_ARGUMENT, C.GR_ERR_INVALID_UTF8, C.GR_ERR_INVALID_JSON, C.GR_ERR_INVALID_ARGUMENT:
		return &statusError{sentinel: ErrInvalidArgument, msg: msg}
	default: // GR_ERR_PANIC, or a status this binding does not know yet.
		return &statusError{sentinel: ErrInternal, msg: msg}
	}
}

// Version is the version of the linked gemini-rotator library, e.g. "0.2.0".
func Version() string {
	return C.GoString(C.gr_version())
}

// Fingerprint is the fingerprint the library shows for key (12 hex digits): match statistics
// and errors to your keys with it, without ever printing a key. Surrounding whitespace is
// ignored, as in the configuration. It returns "" for a string that cannot be a key (one with a
// NUL byte or invalid UTF-8).
func Fingerprint(key string) string {
	ckey, err := cString(key, "key")
	if err != nil {
		return ""
	}
	defer C.free(unsafe.Pointer(ckey))
	fp, err := callString(func(out **C.char, cerr **C.gr_error) C.gr_status {
		return C.gr_key_fingerprint(ckey, out, cerr)
	})
	if err != nil {
		return ""
	}
	return string(fp)
}
