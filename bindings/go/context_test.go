package rotator

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCancelledContextReturnsWithoutCallingTheLibrary(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := NewGeminiClient(pool).SimpleTextQuery(ctx, "never sent")
	if err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled itself", err)
	}
	if s := poolStats(t, pool); s.Pool.Requests != 0 {
		t.Errorf("the library saw %d requests, want 0", s.Pool.Requests)
	}
	if got := emu.keyStats(t, key).Requests; got != 0 {
		t.Errorf("the emulator saw %d requests, want 0", got)
	}
}

// deadlineOnly is a context with a deadline that never signals Done: only the library's own
// timeout (timeout_ms, from the deadline) can end a call made with it.
type deadlineOnly struct {
	context.Context
	deadline time.Time
}

func (c deadlineOnly) Deadline() (time.Time, bool) { return c.deadline, true }

func TestContextDeadlineBecomesTheLibrarysTimeout(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "delay", LatencyMS: 3000})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	ctx := deadlineOnly{Context: context.Background(), deadline: time.Now().Add(300 * time.Millisecond)}

	// Without timeout_ms the call would wait out the delay and succeed.
	_, err := NewGeminiClient(pool).SimpleTextQuery(ctx, "slow")
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout from the library", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v does not match context.DeadlineExceeded", err)
	}
	if ks := keyStats(t, pool, key); ks.Timeouts != 1 {
		t.Errorf("key statistics = %+v, want one timeout", ks)
	}
}

func TestContextDeadlineEndsTheCall(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "delay", LatencyMS: 3000})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()

	resp, err := NewGeminiClient(pool).GenerateContent(ctx, prompt("slow"))
	if resp != nil || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("resp, err = %v, %v; want a timeout matching context.DeadlineExceeded and ErrTimeout", resp, err)
	}
	waitForIdle(t, pool)
}

// The one timing assertion: a cancelled call returns promptly while its HTTP request is in
// flight, and the cancellation stops the request itself (its slot is freed at once).
func TestCancelReturnsPromptlyWhileTheRequestIsInFlight(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "delay", LatencyMS: 2000, Count: 1})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	ctx, cancel := context.WithCancel(context.Background())

	type result struct {
		err      error
		returned time.Time
	}
	done := make(chan result, 1)
	go func() {
		_, err := NewGeminiClient(pool).SimpleTextQuery(ctx, "slow")
		done <- result{err, time.Now()}
	}()
	waitFor(t, "the request to be in flight", func() bool { return keyStats(t, pool, key).InFlight == 1 })

	cancelled := time.Now()
	cancel()
	r := <-done
	if r.err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", r.err)
	}
	took := r.returned.Sub(cancelled)
	if took >= 100*time.Millisecond {
		t.Errorf("returned %v after cancel, want under 100ms", took)
	}
	t.Logf("returned %v after cancel", took)

	// The request was stopped, not left to finish: nothing is left running, the service
	// never answered it, and the pool stays usable.
	waitForIdle(t, pool)
	if ks := keyStats(t, pool, key); ks.Succeeded != 0 || ks.InFlight != 0 {
		t.Errorf("key statistics = %+v, want the cancelled request stopped", ks)
	}
	if got := emu.keyStats(t, key).OK; got != 0 {
		t.Errorf("the emulator answered %d requests, want 0", got)
	}
	if answer, err := NewGeminiClient(pool).SimpleTextQuery(context.Background(), "after"); err != nil || answer != "echo: after" {
		t.Errorf("pool unusable after a cancellation: %q, %v", answer, err)
	}
}

// A call waiting for a key (MaxWait) is a call in flight too: cancelling ends it.
func TestCancelEndsAWaitForAKey(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	pool := newPool(t, Config{FreeKeys: []string{key.Key}, FreeRateLimit: 1, Window: 3 * time.Second})
	client := NewGeminiClient(pool)
	client.MaxWait = 10 * time.Second
	if _, err := client.SimpleTextQuery(context.Background(), "use the only slot"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := client.SimpleTextQuery(ctx, "wait"); err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled to end the wait", err)
	}
	waitForIdle(t, pool)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitForIdle waits until no C call runs on the pool (abandoned ones included).
func waitForIdle(t *testing.T, p *KeyPool) {
	t.Helper()
	waitFor(t, "the pool's calls to finish", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.calls == 0
	})
}
