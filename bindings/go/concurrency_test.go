package rotator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestTwoHundredGoroutinesShareOneClient(t *testing.T) {
	t.Parallel()
	const goroutines, perGoroutine = 200, 5
	const total = goroutines * perGoroutine
	keys := newKeys(t, 3)
	pool := newPool(t, Config{FreeKeys: secrets(keys), FreeRateLimit: total})
	client := NewGeminiClient(pool)

	var mu sync.Mutex
	answered := 0
	served := map[string]int{}
	var failures []error
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perGoroutine; i++ {
				text := fmt.Sprintf("g%d-%d", g, i)
				resp, err := client.GenerateContent(context.Background(), prompt(text))
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err)
				case resp.Text() != "echo: "+text:
					failures = append(failures, fmt.Errorf("asked %q, got %q", text, resp.Text()))
				default:
					answered++
					served[resp.KeyFingerprint]++
				}
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()

	if len(failures) > 0 {
		t.Fatalf("%d calls failed, first: %v", len(failures), failures[0])
	}
	if answered != total {
		t.Fatalf("answered %d, want %d", answered, total)
	}
	emuTotal, emuOK := 0, 0
	for _, k := range keys {
		e := emu.keyStats(t, k)
		emuTotal += e.Requests
		emuOK += e.OK
		if served[k.Fingerprint()] != e.OK {
			t.Errorf("key %s: %d answers name it, the emulator served %d", k.Label, served[k.Fingerprint()], e.OK)
		}
	}
	if emuTotal != total || emuOK != total {
		t.Errorf("emulator: %d requests, %d ok; want %d each (none lost, none duplicated)", emuTotal, emuOK, total)
	}
	s := poolStats(t, pool)
	if s.Pool.Requests != total || s.Pool.Succeeded != total {
		t.Errorf("pool counters = %+v, want %d requests and successes", s.Pool, total)
	}
	var admitted uint64
	for _, k := range s.Keys {
		admitted += k.Admitted
		if k.InFlight != 0 {
			t.Errorf("key %s still has %d in flight", k.Fingerprint, k.InFlight)
		}
	}
	if admitted != total {
		t.Errorf("keys admitted %d in all, want %d", admitted, total)
	}
}

// Close while many goroutines call: every call either completes or fails with ErrClosed.
func TestCloseWhileGoroutinesCall(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, 2)
	pool := newPool(t, Config{FreeKeys: secrets(keys), FreeRateLimit: 10000})
	client := NewGeminiClient(pool)

	var wg sync.WaitGroup
	errs := make(chan error, 50*20)
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := client.SimpleTextQuery(ctx, "racing close")
				cancel()
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	var closers sync.WaitGroup
	for i := 0; i < 3; i++ {
		closers.Add(1)
		go func() { defer closers.Done(); pool.Close() }()
	}
	closers.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("err = %v, want only ErrClosed", err)
		}
	}
	waitForIdle(t, pool)
	pool.mu.Lock()
	freed := pool.ptr == nil
	pool.mu.Unlock()
	if !freed {
		t.Error("the pool was not freed after its last call")
	}
}
