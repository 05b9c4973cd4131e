package rotator

// Log events of the library (key cooldowns, disabled keys, paid fallbacks, exhaustion, retries,
// attempts), delivered to a Go function instead of stderr.
//
// How the callback crosses cgo: C is given a C function (rotator_log_shim, below) with a NULL
// user_data, never a Go pointer. The shim calls the exported Go function goRotatorLog
// (log_export.go), which reads the current handler from a package-level atomic. So the handler
// closure lives only in Go memory, and the garbage collector may free an old one as soon as
// SetLogHandler has replaced it: the library guarantees that gr_set_log_callback returns only
// once no call of the previous callback is running.

// #include <pthread.h>
// #include <stdint.h>
// #include "gemini_rotator.h"
//
// extern void goRotatorLog(int32_t level, char *event_json, uintptr_t thread);
//
// // The gr_log_fn given to the library: forwards to Go, with the calling thread's identity (so
// // that SetLogHandler can tell when it is called from inside a handler).
// static void rotator_log_shim(void *user_data, int32_t level, const char *event_json) {
// 	(void)user_data;
// 	goRotatorLog(level, (char *)event_json, (uintptr_t)pthread_self());
// }
//
// static void rotator_install_log_shim(void) { gr_set_log_callback(rotator_log_shim, NULL); }
//
// static uintptr_t rotator_thread_id(void) { return (uintptr_t)pthread_self(); }
import "C"

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
)

// LogLevel is how detailed the library's log events are. Levels are process-wide.
type LogLevel int32

// The log levels, from quiet to detailed. Each level includes the ones above it.
const (
	// LogOff emits nothing (the default, unless GEMINI_ROTATOR_LOG says otherwise).
	LogOff LogLevel = 0
	// LogError: a key was disabled (key_disabled).
	LogError LogLevel = 1
	// LogWarn: a key cools down after a 429 (key_cooldown); every key is at its limit
	// (exhausted).
	LogWarn LogLevel = 2
	// LogInfo: the paid key served because no free key could (paid_fallback); a transient
	// failure is retried (retry).
	LogInfo LogLevel = 3
	// LogDebug: every attempt (attempt).
	LogDebug LogLevel = 4
)

// String is the level's name: "off", "error", "warn", "info" or "debug".
func (l LogLevel) String() string {
	switch l {
	case LogOff:
		return "off"
	case LogError:
		return "error"
	case LogWarn:
		return "warn"
	case LogInfo:
		return "info"
	case LogDebug:
		return "debug"
	}
	return "LogLevel(" + strconv.Itoa(int(l)) + ")"
}

// SetLogLevel sets the most detailed level of events the library emits, for the whole process
// (every pool). [LogOff] stops them. A level outside LogOff..LogDebug is an
// [ErrInvalidArgument]. Pools created with GEMINI_ROTATOR_LOG set change it too.
func SetLogLevel(level LogLevel) error {
	if level < LogOff || level > LogDebug {
		return newError(ErrInvalidArgument, "log level %d: use LogOff, LogError, LogWarn, LogInfo or LogDebug", int32(level))
	}
	var cerr *C.gr_error
	if status := C.gr_set_log_level(C.int32_t(level), &cerr); status != C.GR_OK {
		return takeError(status, cerr, false)
	}
	return nil
}

// LogEvent is one event of the library, such as
// {"level":"warn","event":"key_cooldown","key":"<fingerprint>","tier":"free","cause":"per_minute","cooldown_ms":2000}.
// Keys appear by fingerprint only.
type LogEvent struct {
	// Level is the event's level.
	Level LogLevel
	// Event is its name: key_cooldown, key_disabled, paid_fallback, exhausted, retry, attempt.
	Event string
	// Key is the fingerprint of the key concerned; "" for an event about no single key.
	Key string
	// Fields is the whole event, level, event and key included. Whole numbers are int64 (or
	// uint64 when too large for int64), other numbers float64, text string.
	Fields map[string]any
}

// logHandler is the installed handler (nil: none), read by every event.
var logHandler atomic.Pointer[func(LogEvent)]

// logSetup serialises SetLogHandler; installed says whether the library has our shim.
var logSetup struct {
	sync.Mutex
	installed bool
}

// handlerThreads counts, per OS thread, the handler calls running on it: SetLogHandler called
// from inside a handler would wait for that very call to end.
var handlerThreads threadSet

// threadSet counts running calls per OS thread.
type threadSet struct {
	sync.Mutex
	running map[uintptr]int
}

// SetLogHandler sends the library's log events to handler instead of stderr; nil restores
// stderr. It is process-wide: the last call wins.
//
// Events are emitted only at or above the level set by [SetLogLevel] (off by default). The
// handler runs on the goroutine of the call that caused the event, possibly on several at
// once: it must be safe for concurrent use, should be quick, and must not use a [KeyPool] or
// call SetLogHandler (which panics if it does). A panic in the handler is recovered and
// reported on stderr; it never reaches the library.
//
// When SetLogHandler returns, the previous handler is not running and will not be called
// again, so whatever it writes to may be released.
func SetLogHandler(handler func(LogEvent)) {
	if handlerThreads.isCurrent(uintptr(C.rotator_thread_id())) {
		panic("rotator: SetLogHandler called from inside a log handler")
	}
	logSetup.Lock()
	defer logSetup.Unlock()
	if handler == nil {
		if logSetup.installed {
			C.gr_set_log_callback(nil, nil) // returns once no handler call is running
			logSetup.installed = false
		}
		logHandler.Store(nil)
		return
	}
	logHandler.Store(&handler)
	// Installing the shim, or installing it again, waits for running calls of the previous
	// handler to end.
	C.rotator_install_log_shim()
	logSetup.installed = true
}

func (h *threadSet) isCurrent(thread uintptr) bool {
	h.Lock()
	defer h.Unlock()
	return h.running[thread] > 0
}

func (h *threadSet) enter(thread uintptr) {
	h.Lock()
	if h.running == nil {
		h.running = map[uintptr]int{}
	}
	h.running[thread]++
	h.Unlock()
}

func (h *threadSet) leave(thread uintptr) {
	h.Lock()
	if h.running[thread]--; h.running[thread] <= 0 {
		delete(h.running, thread)
	}
	h.Unlock()
}

// deliverLogEvent is the Go side of every event: decode it and call the handler.
func deliverLogEvent(level int32, eventJSON string, thread uintptr) {
	handler := logHandler.Load()
	if handler == nil {
		return
	}
	handlerThreads.enter(thread)
	defer handlerThreads.leave(thread)
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "rotator: the log handler panicked (event dropped): %v\n", r)
		}
	}()
	(*handler)(decodeLogEvent(LogLevel(level), eventJSON))
}

// decodeLogEvent turns the library's JSON object into a LogEvent.
func decodeLogEvent(level LogLevel, eventJSON string) LogEvent {
	ev := LogEvent{Level: level}
	dec := json.NewDecoder(bytes.NewReader([]byte(eventJSON)))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil || fields == nil {
		// Not expected from the library; keep the text rather than lose the event.
		ev.Fields = map[string]any{"level": level.String(), "event": "", "raw": eventJSON}
		return ev
	}
	for name, value := range fields {
		if n, ok := value.(json.Number); ok {
			fields[name] = number(n)
		}
	}
	ev.Fields = fields
	ev.Event, _ = fields["event"].(string)
	ev.Key, _ = fields["key"].(string)
	return ev
}

// number is a JSON number as int64, uint64 or float64, whichever holds it exactly.
func number(n json.Number) any {
	if i, err := n.Int64(); err == nil {
		return i
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return u
	}
	if f, err := n.Float64(); err == nil {
		return f
	}
	return string(n)
}

// SlogHandler returns a handler for [SetLogHandler] that writes each event to logger (the
// default logger if nil): the event name is the message, the level maps to slog's (debug,
// info, warn, error), and every other field (key, tier, cause, cooldown_ms, ...) becomes an
// attribute, in name order.
//
//	rotator.SetLogLevel(rotator.LogInfo)
//	rotator.SetLogHandler(rotator.SlogHandler(slog.Default()))
func SlogHandler(logger *slog.Logger) func(LogEvent) {
	return func(ev LogEvent) {
		l := logger
		if l == nil {
			l = slog.Default()
		}
		level := slogLevel(ev.Level)
		ctx := context.Background()
		if !l.Enabled(ctx, level) {
			return
		}
		names := make([]string, 0, len(ev.Fields))
		for name := range ev.Fields {
			if name != "level" && name != "event" {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		attrs := make([]slog.Attr, 0, len(names))
		for _, name := range names {
			attrs = append(attrs, slog.Any(name, ev.Fields[name]))
		}
		l.LogAttrs(ctx, level, ev.Event, attrs...)
	}
}

// slogLevel is the slog level of a library level.
func slogLevel(l LogLevel) slog.Level {
	switch {
	case l <= LogError:
		return slog.LevelError
	case l == LogWarn:
		return slog.LevelWarn
	case l == LogInfo:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
