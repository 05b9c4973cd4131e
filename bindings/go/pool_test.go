package rotator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRoundRobinSpreadsRequestsOverFreeKeys(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, 3)
	pool := newPool(t, Config{FreeKeys: secrets(keys)})
	client := NewGeminiClient(pool)

	const n = 31
	served := map[string]int{}
	for i := 0; i < n; i++ {
		resp, err := client.GenerateContent(context.Background(), prompt(fmt.Sprintf("question %d", i)))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got, want := resp.Text(), fmt.Sprintf("echo: question %d", i); got != want {
			t.Fatalf("request %d: answer %q, want %q", i, got, want)
		}
		served[resp.KeyFingerprint]++
	}

	stats := poolStats(t, pool)
	total := 0
	for _, k := range keys {
		emuCount := emu.keyStats(t, k).Requests
		ks := stats.Key(k.Fingerprint())
		if ks == nil {
			t.Fatalf("no statistics for key %s", k.Fingerprint())
		}
		for what, got := range map[string]int{
			"emulator requests":   emuCount,
			"Stats().Admitted":    int(ks.Admitted),
			"Stats().Succeeded":   int(ks.Succeeded),
			"response.KeyFingerp": served[k.Fingerprint()],
		} {
			if got < n/3 || got > n/3+1 {
				t.Errorf("key %s: %s = %d, want %d±1", k.Label, what, got, n/3)
			}
		}
		total += emuCount
	}
	if total != n {
		t.Errorf("emulator saw %d requests in all, want %d", total, n)
	}
	if stats.Pool.Requests != n || stats.Pool.Succeeded != n || stats.Pool.Failed != 0 {
		t.Errorf("pool counters = %+v, want %d requests, all succeeded", stats.Pool, n)
	}
	if stats.Pool.PaidFallbacks != 0 {
		t.Errorf("PaidFallbacks = %d with no paid key", stats.Pool.PaidFallbacks)
	}
}

func TestPaidKeyOnlyAfterFreeKeysAreFullThenExhaustion(t *testing.T) {
	t.Parallel()
	free := newKeys(t, 2)
	paid := newKeys(t, 1)[0]
	window := 10 * time.Minute
	pool := newPool(t, Config{
		FreeKeys: secrets(free), PaidKey: paid.Key,
		FreeRateLimit: 2, PaidRateLimit: 3, Window: window,
	})
	client := NewGeminiClient(pool)
	freeFPs := map[string]bool{free[0].Fingerprint(): true, free[1].Fingerprint(): true}

	for i := 0; i < 4; i++ {
		resp, err := client.GenerateContent(context.Background(), prompt("free"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !freeFPs[resp.KeyFingerprint] {
			t.Fatalf("request %d served by %s while a free key had room", i, resp.KeyFingerprint)
		}
	}
	for i := 0; i < 3; i++ {
		resp, err := client.GenerateContent(context.Background(), prompt("paid"))
		if err != nil {
			t.Fatalf("paid request %d: %v", i, err)
		}
		if resp.KeyFingerprint != paid.Fingerprint() {
			t.Fatalf("paid request %d served by %s, want the paid key %s", i, resp.KeyFingerprint, paid.Fingerprint())
		}
	}

	_, err := client.SimpleTextQuery(context.Background(), "one too many")
	if !errors.Is(err, ErrAllKeysRateLimited) {
		t.Fatalf("err = %v, want ErrAllKeysRateLimited", err)
	}
	var rle *RateLimitError
	if !errors.As(err, &rle) {
		t.Fatalf("err = %T, want *RateLimitError", err)
	}
	// The first slot frees when the oldest request leaves the window: about one window from now.
	if rle.RetryAfter < window-time.Minute || rle.RetryAfter > window+time.Second {
		t.Errorf("RetryAfter = %v, want about %v", rle.RetryAfter, window)
	}
	if !strings.Contains(err.Error(), "all API keys have reached their rate limits") {
		t.Errorf("message %q does not say that all keys are rate-limited", err)
	}

	if got := emu.keyStats(t, paid).Requests; got != 3 {
		t.Errorf("emulator: paid key got %d requests, want 3", got)
	}
	for _, k := range free {
		if got := emu.keyStats(t, k).Requests; got != 2 {
			t.Errorf("emulator: free key %s got %d requests, want 2", k.Label, got)
		}
	}
	stats := poolStats(t, pool)
	if stats.Pool.PaidFallbacks != 3 || stats.Pool.Exhausted != 1 {
		t.Errorf("PaidFallbacks = %d, Exhausted = %d; want 3 and 1", stats.Pool.PaidFallbacks, stats.Pool.Exhausted)
	}
	ps := stats.Key(paid.Fingerprint())
	if ps == nil || ps.Tier != TierPaid || ps.Limit != 3 || ps.InWindow != 3 || ps.Window != window {
		t.Errorf("paid key statistics = %+v", ps)
	}
	fs := stats.Key(free[0].Fingerprint())
	if fs == nil || fs.Tier != TierFree || fs.Limit != 2 || fs.InWindow != 2 || fs.Refused == 0 {
		t.Errorf("free key statistics = %+v (want tier free, limit 2, 2 in window, refusals)", fs)
	}
}

func TestMaxWaitWaitsForAKeyInsteadOfFailing(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, 1)
	pool := newPool(t, Config{FreeKeys: secrets(keys), FreeRateLimit: 1, Window: 300 * time.Millisecond})
	impatient := NewGeminiClient(pool)
	patient := NewGeminiClient(pool)
	patient.MaxWait = 10 * time.Second

	if _, err := impatient.SimpleTextQuery(context.Background(), "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := impatient.SimpleTextQuery(context.Background(), "second"); !errors.Is(err, ErrAllKeysRateLimited) {
		t.Fatalf("without MaxWait: err = %v, want ErrAllKeysRateLimited", err)
	}
	answer, err := patient.SimpleTextQuery(context.Background(), "third")
	if err != nil || answer != "echo: third" {
		t.Fatalf("with MaxWait: %q, %v; want the answer", answer, err)
	}
	if got := emu.keyStats(t, keys[0]).Requests; got != 2 {
		t.Errorf("emulator saw %d requests, want 2", got)
	}
}

// The statistics JSON must decode into the binding's types with no field left over, so a new
// field in the library shows up here rather than being silently dropped.
func TestStatsCoverEveryFieldOfTheLibrary(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, 1)
	pool := newPool(t, Config{FreeKeys: secrets(keys)})
	if _, err := NewGeminiClient(pool).SimpleTextQuery(context.Background(), "hi"); err != nil {
		t.Fatal(err)
	}
	raw, err := pool.statsJSON()
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var strict statsJSON
	if err := dec.Decode(&strict); err != nil {
		t.Fatalf("the statistics have a field the binding does not know: %v\n%s", err, raw)
	}

	s := poolStats(t, pool)
	if s.Version != Version() || s.State != testState {
		t.Errorf("Version, State = %q, %q", s.Version, s.State)
	}
	k := s.Key(keys[0].Fingerprint())
	if k == nil || k.Admitted != 1 || k.Succeeded != 1 || k.Disabled != "" || k.CooldownCause != "" || k.Window != time.Minute || k.Limit != 60 {
		t.Errorf("key statistics = %+v", k)
	}
	if s.Key("000000000000") != nil {
		t.Error("Key found a fingerprint that is not in the pool")
	}
	lat := s.Pool.Latency
	if lat.Count != 1 || lat.SumSeconds <= 0 || len(lat.Buckets) < 2 {
		t.Fatalf("latency = %+v, want one observation", lat)
	}
	last := lat.Buckets[len(lat.Buckets)-1]
	if !math.IsInf(last.UpperBound, 1) || last.Count != 1 {
		t.Errorf("last bucket = %+v, want +Inf with the one observation", last)
	}
	for i := 1; i < len(lat.Buckets); i++ {
		if lat.Buckets[i].UpperBound <= lat.Buckets[i-1].UpperBound || lat.Buckets[i].Count < lat.Buckets[i-1].Count {
			t.Errorf("buckets not cumulative and increasing: %+v", lat.Buckets)
		}
	}
	// A Stats value can be served as JSON (the +Inf bound is written as a string).
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("json.Marshal(Stats): %v", err)
	}
	if !strings.Contains(string(out), `{"UpperBound":"+Inf","Count":1}`) {
		t.Errorf("marshalled stats lack the +Inf bucket: %s", out)
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	fp := Fingerprint("some-key")
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(fp) {
		t.Fatalf("Fingerprint = %q, want 12 hex digits", fp)
	}
	if Fingerprint("  some-key\n") != fp {
		t.Error("surrounding whitespace changed the fingerprint")
	}
	if Fingerprint("other-key") == fp {
		t.Error("two keys share a fingerprint")
	}
	if got := Fingerprint("some\x00key"); got != "" {
		t.Errorf("Fingerprint of a string with NUL = %q, want \"\"", got)
	}
	if got := Fingerprint("bad\xffutf8"); got != "" {
		t.Errorf("Fingerprint of invalid UTF-8 = %q, want \"\"", got)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	if v := Version(); !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(v) {
		t.Errorf("Version() = %q", v)
	}
}

func TestNewKeyPoolFromEnvironment(t *testing.T) {
	t.Parallel()
	pool, err := NewKeyPoolFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := poolStats(t, pool)
	if len(s.Keys) != len(envKeys) || s.Keys[0].Fingerprint != Fingerprint(envKeys[0]) {
		t.Fatalf("pool keys = %+v, want the GEMINI_FREE_KEYS of TestMain", s.Keys)
	}
	answer, err := NewGeminiClient(pool).SimpleTextQuery(context.Background(), "env")
	if err != nil || answer != "echo: env" {
		t.Fatalf("%q, %v", answer, err)
	}
}
