package rotator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Log handlers and the log level are process-wide: none of these tests calls t.Parallel, so
// they run alone (Go runs the parallel tests only after every sequential one), and each puts
// the defaults back when it ends.

// resetLogging restores the defaults: no handler (stderr), level off.
func resetLogging(t *testing.T) {
	t.Cleanup(func() {
		SetLogHandler(nil)
		if err := SetLogLevel(LogOff); err != nil {
			t.Errorf("SetLogLevel(LogOff): %v", err)
		}
	})
}

// eventRecorder is a log handler that keeps every event.
type eventRecorder struct {
	mu     sync.Mutex
	events []LogEvent
}

func (r *eventRecorder) handle(ev LogEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *eventRecorder) all() []LogEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LogEvent(nil), r.events...)
}

// find is the first event named name about the key with fingerprint key ("" for any key).
func (r *eventRecorder) find(name, key string) (LogEvent, bool) {
	for _, ev := range r.all() {
		if ev.Event == name && (key == "" || ev.Key == key) {
			return ev, true
		}
	}
	return LogEvent{}, false
}

var fingerprintPattern = regexp.MustCompile(`^[0-9a-f]{12}$`)

// checkNoKeys fails if an event names a key other than by fingerprint, or shows a secret.
func checkNoKeys(t *testing.T, events []LogEvent, keys ...testKey) {
	t.Helper()
	for _, ev := range events {
		text, err := json.Marshal(ev.Fields)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Key != "" && !fingerprintPattern.MatchString(ev.Key) {
			t.Errorf("event %s: key %q is not a fingerprint", text, ev.Key)
		}
		// Every test key of this package contains "key-" (see unknownKeys and
		// setTestEnvironment); fingerprints and event names never do.
		if strings.Contains(string(text), "key-") {
			t.Errorf("event %s shows a key", text)
		}
		for _, k := range keys {
			if strings.Contains(string(text), k.Key) {
				t.Errorf("event %s shows the key %s", text, k.Label)
			}
		}
	}
}

// cooldownAndFallback makes the free key get a 429 (it cools down for 30 s) and the paid key
// serve in its place; it returns the fingerprint that served.
func cooldownAndFallback(t *testing.T, free, paid testKey) string {
	t.Helper()
	addFault(t, emuFault{Label: free.Label, Kind: "quota_minute", Count: 1, RetryDelay: "30s"})
	pool := newPool(t, Config{FreeKeys: []string{free.Key}, PaidKey: paid.Key})
	resp, err := NewGeminiClient(pool).GenerateContent(context.Background(), prompt("cool down"))
	if err != nil {
		t.Fatalf("GenerateContent: %v", err)
	}
	return resp.KeyFingerprint
}

func TestLogEventsReachTheHandlerWithFingerprintsOnly(t *testing.T) {
	resetLogging(t)
	rec := &eventRecorder{}
	SetLogHandler(rec.handle)
	if err := SetLogLevel(LogInfo); err != nil {
		t.Fatal(err)
	}
	keys := newKeys(t, 2)
	free, paid := keys[0], keys[1]

	if served := cooldownAndFallback(t, free, paid); served != paid.Fingerprint() {
		t.Fatalf("served by %s, want the paid key %s", served, paid.Fingerprint())
	}

	cooldown, ok := rec.find("key_cooldown", free.Fingerprint())
	if !ok {
		t.Fatalf("no key_cooldown event for the free key among %+v", rec.all())
	}
	if cooldown.Level != LogWarn || cooldown.Fields["level"] != "warn" || cooldown.Fields["event"] != "key_cooldown" ||
		cooldown.Fields["key"] != free.Fingerprint() || cooldown.Fields["tier"] != "free" || cooldown.Fields["cause"] != "per_minute" {
		t.Errorf("key_cooldown event = %+v", cooldown)
	}
	if ms, ok := cooldown.Fields["cooldown_ms"].(int64); !ok || ms <= 0 || ms > 30_000 {
		t.Errorf("cooldown_ms = %#v, want an int64 in (0, 30000]", cooldown.Fields["cooldown_ms"])
	}
	fallback, ok := rec.find("paid_fallback", paid.Fingerprint())
	if !ok {
		t.Fatalf("no paid_fallback event for the paid key among %+v", rec.all())
	}
	if fallback.Level != LogInfo || fallback.Fields["level"] != "info" {
		t.Errorf("paid_fallback event = %+v", fallback)
	}
	checkNoKeys(t, rec.all(), free, paid)

	// Below the level, nothing arrives.
	if err := SetLogLevel(LogError); err != nil {
		t.Fatal(err)
	}
	before := len(rec.all())
	more := newKeys(t, 2)
	cooldownAndFallback(t, more[0], more[1])
	if got := rec.all(); len(got) != before {
		t.Errorf("at LogError, warn and info events still arrived: %+v", got[before:])
	}

	// Without a handler, nothing arrives either (events go to stderr again).
	if err := SetLogLevel(LogInfo); err != nil {
		t.Fatal(err)
	}
	SetLogHandler(nil)
	last := newKeys(t, 2)
	withStderrCaptured(t, func() { cooldownAndFallback(t, last[0], last[1]) })
	if got := rec.all(); len(got) != before {
		t.Errorf("events arrived after SetLogHandler(nil): %+v", got[before:])
	}
}

func TestReplacingTheHandlerSendsLaterEventsToTheNewOne(t *testing.T) {
	resetLogging(t)
	first, second := &eventRecorder{}, &eventRecorder{}
	SetLogHandler(first.handle)
	if err := SetLogLevel(LogWarn); err != nil {
		t.Fatal(err)
	}
	a := newKeys(t, 2)
	cooldownAndFallback(t, a[0], a[1])
	SetLogHandler(second.handle)
	b := newKeys(t, 2)
	cooldownAndFallback(t, b[0], b[1])

	if _, ok := first.find("key_cooldown", a[0].Fingerprint()); !ok {
		t.Error("the first handler missed its event")
	}
	if _, ok := first.find("key_cooldown", b[0].Fingerprint()); ok {
		t.Error("the first handler still got events after it was replaced")
	}
	if _, ok := second.find("key_cooldown", b[0].Fingerprint()); !ok {
		t.Error("the second handler missed its event")
	}
	if _, ok := first.find("paid_fallback", ""); ok {
		t.Error("an info event arrived at LogWarn")
	}
}

// The handler is called from many goroutines at once (go test -race checks the delivery), and
// a panicking handler neither breaks the calls nor reaches the library.
func TestConcurrentEventsAndAPanickingHandler(t *testing.T) {
	resetLogging(t)
	if err := SetLogLevel(LogWarn); err != nil {
		t.Fatal(err)
	}
	var seen atomic.Int64
	SetLogHandler(func(ev LogEvent) {
		if ev.Event == "key_cooldown" {
			seen.Add(1)
		}
		panic("a handler bug")
	})
	const n = 8
	errs := make(chan error, n)
	var pools []*KeyPool
	for i := 0; i < n; i++ {
		keys := newKeys(t, 2)
		addFault(t, emuFault{Label: keys[0].Label, Kind: "quota_minute", Count: 1, RetryDelay: "30s"})
		pools = append(pools, newPool(t, Config{FreeKeys: []string{keys[0].Key}, PaidKey: keys[1].Key}))
	}
	stderr := withStderrCaptured(t, func() {
		var wg sync.WaitGroup
		for _, pool := range pools {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := NewGeminiClient(pool).SimpleTextQuery(context.Background(), "in parallel")
				errs <- err
			}()
		}
		wg.Wait()
	})
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a call failed: %v", err)
		}
	}
	if got := seen.Load(); got != n {
		t.Errorf("the handler saw %d cooldowns, want %d", got, n)
	}
	// Each panic is reported on stderr: one per call (its cooldown; the paid fallback is an
	// info event, below LogWarn).
	if got := strings.Count(stderr, "rotator: the log handler panicked (event dropped): a handler bug"); got != n {
		t.Errorf("stderr reports %d panics, want %d: %q", got, n, stderr)
	}
}

// C never holds the handler: once it is removed the garbage collector frees it, and events
// after that are safe.
func TestRemovedHandlerIsCollected(t *testing.T) {
	resetLogging(t)
	if err := SetLogLevel(LogWarn); err != nil {
		t.Fatal(err)
	}
	collected := make(chan struct{})
	func() {
		state := &eventRecorder{}
		runtime.SetFinalizer(state, func(*eventRecorder) { close(collected) })
		SetLogHandler(state.handle)
		keys := newKeys(t, 2)
		cooldownAndFallback(t, keys[0], keys[1])
		if _, ok := state.find("key_cooldown", keys[0].Fingerprint()); !ok {
			t.Error("the handler missed its event")
		}
	}()
	SetLogHandler(func(LogEvent) {}) // replaced...
	SetLogHandler(nil)               // ...then removed
	deadline := time.Now().Add(10 * time.Second)
	for done := false; !done; {
		runtime.GC()
		select {
		case <-collected:
			done = true
		case <-time.After(10 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("the removed handler was never collected")
			}
		}
	}
	keys := newKeys(t, 2)
	withStderrCaptured(t, func() { cooldownAndFallback(t, keys[0], keys[1]) })
}

func TestSetLogHandlerFromAHandlerPanicsInsteadOfDeadlocking(t *testing.T) {
	resetLogging(t)
	if err := SetLogLevel(LogWarn); err != nil {
		t.Fatal(err)
	}
	recovered := make(chan any, 4)
	SetLogHandler(func(LogEvent) {
		defer func() { recovered <- recover() }()
		SetLogHandler(nil)
	})
	keys := newKeys(t, 2)
	cooldownAndFallback(t, keys[0], keys[1])
	select {
	case r := <-recovered:
		if s, _ := r.(string); !strings.Contains(s, "inside a log handler") {
			t.Errorf("recovered %v, want the SetLogHandler panic", r)
		}
	default:
		t.Fatal("the handler never ran")
	}
}

func TestSlogHandlerWritesThroughALogger(t *testing.T) {
	resetLogging(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	SetLogHandler(SlogHandler(logger))
	if err := SetLogLevel(LogInfo); err != nil {
		t.Fatal(err)
	}
	keys := newKeys(t, 2)
	free, paid := keys[0], keys[1]
	cooldownAndFallback(t, free, paid)
	SetLogHandler(nil)

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	var records []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("slog wrote %q: %v", line, err)
		}
		records = append(records, r)
	}
	var cooldown, fallback map[string]any
	for _, r := range records {
		switch {
		case r["msg"] == "key_cooldown" && r["key"] == free.Fingerprint():
			cooldown = r
		case r["msg"] == "paid_fallback" && r["key"] == paid.Fingerprint():
			fallback = r
		}
	}
	if cooldown == nil || cooldown["level"] != "WARN" || cooldown["tier"] != "free" || cooldown["cause"] != "per_minute" {
		t.Errorf("key_cooldown record = %v (all: %s)", cooldown, out)
	}
	if ms, _ := cooldown["cooldown_ms"].(float64); ms <= 0 {
		t.Errorf("cooldown_ms attribute = %v", cooldown["cooldown_ms"])
	}
	if fallback == nil || fallback["level"] != "INFO" {
		t.Errorf("paid_fallback record = %v (all: %s)", fallback, out)
	}
	if strings.Contains(out, free.Key) || strings.Contains(out, paid.Key) {
		t.Errorf("slog output shows a key: %s", out)
	}
}

// lockedWriter serialises writes: the handler may run on several goroutines at once.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestSetLogLevelRejectsUnknownLevels(t *testing.T) {
	resetLogging(t)
	for _, level := range []LogLevel{-1, 5, 100} {
		if err := SetLogLevel(level); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("SetLogLevel(%d) = %v, want ErrInvalidArgument", level, err)
		}
	}
	names := map[LogLevel]string{LogOff: "off", LogError: "error", LogWarn: "warn", LogInfo: "info", LogDebug: "debug"}
	for level, name := range names {
		if err := SetLogLevel(level); err != nil {
			t.Errorf("SetLogLevel(%v): %v", level, err)
		}
		if level.String() != name {
			t.Errorf("%d.String() = %q, want %q", int(level), level.String(), name)
		}
	}
}

func TestDecodeLogEventKeepsNumbersExact(t *testing.T) {
	ev := decodeLogEvent(LogWarn, `{"level":"warn","event":"key_cooldown","key":"0123456789ab","cooldown_ms":18446744073709551615,"ratio":0.5,"n":3}`)
	if ev.Event != "key_cooldown" || ev.Key != "0123456789ab" || ev.Level != LogWarn {
		t.Errorf("decoded %+v", ev)
	}
	if ev.Fields["cooldown_ms"] != uint64(18446744073709551615) || ev.Fields["ratio"] != 0.5 || ev.Fields["n"] != int64(3) {
		t.Errorf("numbers: %#v", ev.Fields)
	}
	odd := decodeLogEvent(LogError, "not json")
	if odd.Fields["raw"] != "not json" || odd.Level != LogError {
		t.Errorf("an unparsable event was lost: %+v", odd)
	}
}
