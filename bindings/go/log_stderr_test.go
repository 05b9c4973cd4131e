package rotator

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

// withStderrCaptured runs f with file descriptor 2 sent to a file, and returns what was
// written there: the library writes its log lines to stderr when no handler is set. Only
// tests that do not run in parallel may use it.
func withStderrCaptured(t *testing.T, f func()) string {
	t.Helper()
	file, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(saved)
	if err := syscall.Dup3(int(file.Fd()), 2, 0); err != nil {
		t.Fatal(err)
	}
	func() {
		defer syscall.Dup3(saved, 2, 0)
		f()
	}()
	data, err := os.ReadFile(file.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestWithoutAHandlerEventsGoToStderr(t *testing.T) {
	resetLogging(t)
	rec := &eventRecorder{}
	SetLogHandler(rec.handle)
	SetLogHandler(nil)
	if err := SetLogLevel(LogWarn); err != nil {
		t.Fatal(err)
	}
	keys := newKeys(t, 2)
	out := withStderrCaptured(t, func() { cooldownAndFallback(t, keys[0], keys[1]) })
	if !strings.Contains(out, "event=key_cooldown") || !strings.Contains(out, keys[0].Fingerprint()) {
		t.Errorf("stderr = %q, want a key_cooldown line naming %s", out, keys[0].Fingerprint())
	}
	if strings.Contains(out, keys[0].Key) || strings.Contains(out, keys[1].Key) {
		t.Errorf("stderr shows a key: %q", out)
	}
	if len(rec.all()) != 0 {
		t.Errorf("the removed handler got events: %+v", rec.all())
	}
}
