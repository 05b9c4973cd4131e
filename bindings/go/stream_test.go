package rotator

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func fivePrompt() *GeminiRequest { return prompt("one two three four five") }

const fiveAnswer = "echo: one two three four five"

func intp(n int) *int { return &n }

func inFlight(t *testing.T, p *KeyPool) int {
	t.Helper()
	n := 0
	for _, k := range poolStats(t, p).Keys {
		n += int(k.InFlight)
	}
	return n
}

func TestStreamEventsArriveAsTheyAreSent(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "delay", Method: "streamGenerateContent", GapMS: 80})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	var texts []string
	var times []time.Time
	var last *GeminiResponse
	for event, err := range NewGeminiClient(pool).StreamGenerateContent(context.Background(), fivePrompt()) {
		if err != nil {
			t.Fatal(err)
		}
		if len(texts) == 0 && inFlight(t, pool) != 1 {
			t.Error("the open stream does not hold its slot")
		}
		times = append(times, time.Now())
		texts = append(texts, event.Text())
		last = event
	}
	if got := strings.Join(texts, ""); got != fiveAnswer || len(texts) != 6 {
		t.Fatalf("events %q, want 6 making %q", texts, fiveAnswer)
	}
	if spread := times[len(times)-1].Sub(times[0]); spread < 5*80*time.Millisecond*8/10 {
		t.Errorf("first to last event took %v: the events did not come as they were sent", spread)
	}
	if last.KeyFingerprint != key.Fingerprint() || last.UsageMetadata == nil || last.UsageMetadata.PromptTokenCount != 5 {
		t.Errorf("last event: %+v", last)
	}
	if n := inFlight(t, pool); n != 0 {
		t.Errorf("%d requests in flight after the end", n)
	}
}

func TestStreamFailoverBeforeTheFirstEventOnly(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, 2)
	pool := newPool(t, Config{FreeKeys: secrets(keys)})
	client := NewGeminiClient(pool)
	// The cursor starts at the first key: a 429 there, served by the second, unseen.
	addFault(t, emuFault{Label: keys[0].Label, Kind: "quota_minute", Count: 1})
	var texts []string
	for event, err := range client.StreamGenerateContent(context.Background(), fivePrompt()) {
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, event.Text())
		if event.KeyFingerprint != keys[1].Fingerprint() {
			t.Errorf("served by %s, want the second key", event.KeyFingerprint)
		}
	}
	if strings.Join(texts, "") != fiveAnswer {
		t.Fatalf("events %q", texts)
	}
	// After the first event: never retried; the error comes after the events delivered.
	before := emu.keyStats(t, keys[0]).Requests + emu.keyStats(t, keys[1]).Requests
	addFault(t, emuFault{Label: keys[0].Label, Kind: "stream_error_mid", AfterEvents: intp(2), Error: "http503", Count: 1})
	addFault(t, emuFault{Label: keys[1].Label, Kind: "stream_error_mid", AfterEvents: intp(2), Error: "http503", Count: 1})
	var events int
	var final error
	for _, err := range client.StreamGenerateContent(context.Background(), fivePrompt()) {
		if err != nil {
			final = err
			break
		}
		events++
	}
	var apiErr *APIError
	if events != 2 || !errors.As(final, &apiErr) || apiErr.StatusCode != 503 {
		t.Fatalf("%d events then %v; want 2 then the service's 503", events, final)
	}
	after := emu.keyStats(t, keys[0]).Requests + emu.keyStats(t, keys[1]).Requests
	if after-before != 1 {
		t.Errorf("%d requests for one stream: it was retried after its first event", after-before)
	}
	if n := inFlight(t, pool); n != 0 {
		t.Errorf("%d requests in flight", n)
	}
}

func TestStreamCutWithoutFinishReasonIsAnError(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "stream_cut", AfterEvents: intp(3), Count: 1})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	var events int
	var final error
	for _, err := range NewGeminiClient(pool).StreamGenerateContent(context.Background(), fivePrompt()) {
		if err != nil {
			final = err
			continue // the sequence ends after the error by itself
		}
		events++
	}
	if events != 3 || !errors.Is(final, ErrIncompleteStream) {
		t.Fatalf("%d events then %v; want 3 then ErrIncompleteStream", events, final)
	}
}

func TestStalledStreamMovesToAnotherKeyWithinTheFirstEventTimeout(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, 2)
	addFault(t, emuFault{Label: keys[0].Label, Kind: "stream_stall_first"})
	pool := newPool(t, Config{FreeKeys: secrets(keys), StreamFirstEventTimeout: 300 * time.Millisecond})
	started := time.Now()
	var first time.Duration
	var texts []string
	for event, err := range NewGeminiClient(pool).StreamGenerateContent(context.Background(), fivePrompt()) {
		if err != nil {
			t.Fatal(err)
		}
		if first == 0 {
			first = time.Since(started)
		}
		texts = append(texts, event.Text())
		if event.KeyFingerprint != keys[1].Fingerprint() {
			t.Errorf("served by %s, want the second key", event.KeyFingerprint)
		}
	}
	if strings.Join(texts, "") != fiveAnswer {
		t.Fatalf("events %q", texts)
	}
	if first < 300*time.Millisecond || first > 1300*time.Millisecond {
		t.Errorf("first event after %v, want just after the 300ms first-event timeout", first)
	}
	if n := inFlight(t, pool); n != 0 {
		t.Errorf("%d requests in flight", n)
	}
}

func TestStoppingTheRangeEarlyFreesTheSlot(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "delay", Method: "streamGenerateContent", GapMS: 300})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	for _, err := range NewGeminiClient(pool).StreamGenerateContent(context.Background(), fivePrompt()) {
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	if n := inFlight(t, pool); n != 0 {
		t.Errorf("%d requests in flight after break", n)
	}
}

func TestCancellingTheContextStopsTheStream(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "stream_stall_mid", AfterEvents: intp(1)})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var events int
	var final error
	var cancelled time.Time
	for _, err := range NewGeminiClient(pool).StreamGenerateContent(ctx, fivePrompt()) {
		if err != nil {
			final = err
			break
		}
		events++
		cancelled = time.Now()
		time.AfterFunc(100*time.Millisecond, cancel)
	}
	if events != 1 || final != context.Canceled {
		t.Fatalf("%d events then %v; want 1 then context.Canceled", events, final)
	}
	if took := time.Since(cancelled); took > time.Second {
		t.Errorf("the stream ended %v after the cancel", took)
	}
	if n := inFlight(t, pool); n != 0 {
		t.Errorf("%d requests in flight after the cancel", n)
	}
}

func TestStreamsRunConcurrently(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, 4)
	for _, k := range keys {
		addFault(t, emuFault{Label: k.Label, Kind: "delay", Method: "streamGenerateContent", GapMS: 100})
	}
	pool := newPool(t, Config{FreeKeys: secrets(keys)})
	client := NewGeminiClient(pool)
	started := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, err := range client.StreamGenerateContent(context.Background(), fivePrompt()) {
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if took := time.Since(started); took > 1500*time.Millisecond {
		t.Errorf("four streams of 600ms took %v", took)
	}
}
