package rotator

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestCloseIsIdempotentAndLaterCallsFail(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	pool, err := NewKeyPool(Config{FreeKeys: []string{key.Key}, BaseURL: emu.url, State: testState})
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := pool.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	client := NewGeminiClient(pool)
	if _, err := client.SimpleTextQuery(context.Background(), "closed"); !errors.Is(err, ErrClosed) {
		t.Errorf("SimpleTextQuery after Close: %v, want ErrClosed", err)
	}
	if _, _, err := client.GenerateContentJSON(context.Background(), "", []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Errorf("GenerateContentJSON after Close: %v, want ErrClosed", err)
	}
	if _, err := pool.Stats(); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats after Close: %v, want ErrClosed", err)
	}
	if got := emu.keyStats(t, key).Requests; got != 0 {
		t.Errorf("the emulator saw %d requests from a closed pool", got)
	}
}

func TestNilPoolsAreClosedPools(t *testing.T) {
	t.Parallel()
	var pool *KeyPool
	if err := pool.Close(); err != nil {
		t.Errorf("Close of a nil pool: %v", err)
	}
	if _, err := pool.Stats(); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats of a nil pool: %v", err)
	}
	for _, client := range []*GeminiClient{NewGeminiClient(nil), NewGeminiClient(pool), nil} {
		if _, err := client.SimpleTextQuery(context.Background(), "x"); !errors.Is(err, ErrClosed) {
			t.Errorf("call without a pool: %v, want ErrClosed", err)
		}
	}
}

// Close during a call: Close returns at once, and the pool is freed when the C call ends.
// (Cancelling a call stops it in the library, so the call returns only once C has.)
func TestCloseDefersTheFreeUntilTheLastCallEnds(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "delay", LatencyMS: 500})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	done := make(chan error, 1)
	go func() {
		_, err := NewGeminiClient(pool).SimpleTextQuery(context.Background(), "slow")
		done <- err
	}()
	waitFor(t, "the request to be in flight", func() bool { return keyStats(t, pool, key).InFlight == 1 })

	pool.Close()
	pool.mu.Lock()
	stillHeld := pool.ptr != nil && pool.calls == 1
	pool.mu.Unlock()
	if !stillHeld {
		t.Fatal("Close freed the pool while a C call was running on it")
	}
	if err := <-done; err != nil {
		t.Fatalf("the running call failed: %v", err)
	}
	waitForIdle(t, pool)
	pool.mu.Lock()
	freed := pool.ptr == nil
	pool.mu.Unlock()
	if !freed {
		t.Error("the pool was not freed when its last call ended")
	}
	if got := emu.keyStats(t, key); got.OK != 1 {
		t.Errorf("emulator: %+v, want the running request answered", got)
	}
}

// The finalizer releases a pool nobody closed. (A safety net only: close pools yourself.)
// Not parallel: it swaps the finalizer that every new pool gets.
func TestFinalizerClosesAnUnreachablePool(t *testing.T) {
	key := newKeys(t, 1)[0]
	finalized := make(chan bool, 1)
	real := finalizeKeyPool
	finalizeKeyPool = func(p *KeyPool) {
		real(p)
		p.mu.Lock()
		defer p.mu.Unlock()
		finalized <- p.closed && p.ptr == nil
	}
	func() {
		pool, err := NewKeyPool(Config{FreeKeys: []string{key.Key}, BaseURL: emu.url, State: testState})
		finalizeKeyPool = real
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Stats(); err != nil {
			t.Fatal(err)
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		runtime.GC()
		select {
		case freed := <-finalized:
			if !freed {
				t.Error("the finalizer ran but did not free the pool")
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the pool was never finalized")
		}
	}
}
