package rotator

// Quotas as Google applies them (issue 10), end to end from Go against the emulator: per
// (quota group, model) cooldowns, the daily limit, project groups, "limit: 0", and model
// fallback with GeminiResponse.Model. Each test checks what the emulator saw as well as what
// the binding returned.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // America/Los_Angeles whatever the host has installed
)

const (
	defaultModel = "gemini-3.6-flash" // the pool's default
	otherModel   = "gemini-3.1-flash-lite"
	proModel     = "gemini-3-pro"
)

// pacific is the zone whose midnight ends the quota day.
var pacific = func() *time.Location {
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		panic(err) // time/tzdata is linked in: cannot happen
	}
	return loc
}()

// nextPacificMidnight is the first midnight in Los Angeles after t (daylight saving included:
// time.Date normalises the day after).
func nextPacificMidnight(t time.Time) time.Time {
	y, m, d := t.In(pacific).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, pacific)
}

// awayFromPacificMidnight waits past the next Pacific midnight when it is less than a minute
// away, so that a test's requests and its expectations fall on one quota day.
func awayFromPacificMidnight(t *testing.T) {
	t.Helper()
	if left := time.Until(nextPacificMidnight(time.Now())); left < time.Minute {
		t.Logf("Pacific midnight is %s away: waiting for the new day", left)
		time.Sleep(left + time.Second)
	}
}

// checkUntilPacificMidnight checks that a refusal between before and after said to retry at
// the next Pacific midnight (to the second, give or take the call's own duration).
func checkUntilPacificMidnight(t *testing.T, err error, before, after time.Time) {
	t.Helper()
	var limited *RateLimitError
	if !errors.As(err, &limited) {
		t.Fatalf("err = %v, want a *RateLimitError", err)
	}
	midnight := nextPacificMidnight(before)
	latest, earliest := midnight.Sub(before), midnight.Sub(after)
	if limited.RetryAfter > latest+time.Second || limited.RetryAfter < earliest-time.Second {
		t.Errorf("RetryAfter = %s, want the time to the next Pacific midnight (%s), between %s and %s",
			limited.RetryAfter, midnight.Format(time.RFC3339), earliest, latest)
	}
}

func ask(ctx context.Context, c *GeminiClient, model string) (*GeminiResponse, error) {
	req := prompt("hello there")
	req.Model = model
	return c.GenerateContent(ctx, req)
}

// modelStats is the key's group's statistics of a model, or a fatal error.
func modelStats(t *testing.T, p *KeyPool, k testKey, model string) *ModelStats {
	t.Helper()
	m := keyStats(t, p, k).Model(model)
	if m == nil {
		t.Fatalf("key %s has no statistics for %s", k.Label, model)
	}
	return m
}

// logSummary is the emulator's log of these keys as "label model status" lines.
func logSummary(t *testing.T, keys ...testKey) []string {
	t.Helper()
	var lines []string
	for _, e := range emu.log(t, keys...) {
		lines = append(lines, fmt.Sprintf("%s %s %d", *e.Label, e.Model, e.Status))
	}
	return lines
}

func equalLines(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

// A per-minute or per-day 429 for one model cools that model of the key's group only: the
// same key goes on serving another model at once.
func TestA429ForOneModelLeavesAnotherModelOfTheKeyUsable(t *testing.T) {
	for _, tc := range []struct {
		kind, cause string
		// cooldown: what is left of the cooldown, at most and at least
		most, least func() time.Duration
	}{
		{"quota_minute", "per_minute",
			func() time.Duration { return 30 * time.Second },
			func() time.Duration { return 20 * time.Second }},
		{"quota_day", "per_day", // until midnight, not the fault's short retryDelay
			func() time.Duration { return time.Until(nextPacificMidnight(time.Now())) + time.Second },
			func() time.Duration { return time.Until(nextPacificMidnight(time.Now())) - time.Minute }},
	} {
		t.Run(tc.cause, func(t *testing.T) {
			t.Parallel()
			awayFromPacificMidnight(t)
			key := newKeys(t, 1)[0]
			pool := newPool(t, Config{FreeKeys: []string{key.Key}})
			client := NewGeminiClient(pool)
			ctx := context.Background()
			addFault(t, emuFault{Label: key.Label, Model: defaultModel, Kind: tc.kind, RetryDelay: "30s", Count: 1})

			if _, err := ask(ctx, client, ""); !errors.Is(err, ErrAllKeysRateLimited) {
				t.Fatalf("the 429'd model: err = %v, want ErrAllKeysRateLimited", err)
			}
			resp, err := ask(ctx, client, otherModel)
			if err != nil {
				t.Fatalf("the other model on the same key: %v", err)
			}
			if resp.Model != otherModel || resp.KeyFingerprint != key.Fingerprint() {
				t.Errorf("served by %s on key %s, want %s on %s", resp.Model, resp.KeyFingerprint, otherModel, key.Fingerprint())
			}
			// The cooled model is refused here, without a request.
			if _, err := ask(ctx, client, defaultModel); !errors.Is(err, ErrAllKeysRateLimited) {
				t.Fatalf("the cooled model again: err = %v, want ErrAllKeysRateLimited", err)
			}

			want := []string{key.Label + " " + defaultModel + " 429", key.Label + " " + otherModel + " 200"}
			if got := logSummary(t, key); !equalLines(got, want) {
				t.Errorf("the emulator saw %q, want %q", got, want)
			}
			cooled := modelStats(t, pool, key, defaultModel)
			if cooled.CooldownCause != tc.cause || cooled.CooldownRemaining > tc.most() || cooled.CooldownRemaining < tc.least() {
				t.Errorf("%s: cooldown %s (%s), want %s within [%s, %s]", defaultModel,
					cooled.CooldownRemaining, cooled.CooldownCause, tc.cause, tc.least(), tc.most())
			}
			if free := modelStats(t, pool, key, otherModel); free.CooldownCause != "" || free.CooldownRemaining != 0 || free.InWindow != 1 {
				t.Errorf("%s: %+v, want no cooldown and 1 request in the window", otherModel, free)
			}
		})
	}
}

// The daily limit: the N+1st request of the Pacific day is never sent, and the refusal says to
// retry at the next Pacific midnight.
func TestTheDailyLimitNeverSendsTheNextRequestOfTheDay(t *testing.T) {
	t.Parallel()
	awayFromPacificMidnight(t)
	const daily = 3
	key := newKeysLike(t, 1, emuKey{DailyLimit: intp(daily)})[0]
	pool := newPool(t, Config{FreeKeys: []string{key.Key}, FreeDailyLimit: daily})
	client := NewGeminiClient(pool)
	ctx := context.Background()
	for i := 0; i < daily; i++ {
		if _, err := ask(ctx, client, ""); err != nil {
			t.Fatalf("request %d of the day: %v", i+1, err)
		}
	}
	before := time.Now()
	_, err := ask(ctx, client, "")
	after := time.Now()
	checkUntilPacificMidnight(t, err, before, after)

	s := emu.keyStats(t, key)
	if s.Requests != daily || s.RateLimited != 0 {
		t.Errorf("the emulator saw %d requests (%d refused), want %d and none refused", s.Requests, s.RateLimited, daily)
	}
	if today := emu.stats(t).Projects[key.Label].Models[defaultModel].Today; today != daily {
		t.Errorf("the emulator counts %d today, want %d", today, daily)
	}
	m := modelStats(t, pool, key, defaultModel)
	if m.Today != daily || m.DailyLimit == nil || *m.DailyLimit != daily {
		t.Errorf("stats: today %d of %v, want %d of %d", m.Today, m.DailyLimit, daily, daily)
	}
	left := poolStats(t, pool).Model(defaultModel)
	if left == nil || left.RequestsLeftToday == nil || *left.RequestsLeftToday != 0 {
		t.Errorf("pool-wide %s: %+v, want 0 requests left today", defaultModel, left)
	}
	// Another model has a day of its own.
	if _, err := ask(ctx, client, otherModel); err != nil {
		t.Errorf("%s, on the same day: %v", otherModel, err)
	}
}

// Two keys of one project share one quota: the pool sends at most the project's limit over
// both, while a key of another project adds its own.
func TestKeysOfOneProjectShareOneQuota(t *testing.T) {
	t.Parallel()
	const limit = 2
	project := uniqueProject()
	shared := newKeysLike(t, 2, emuKey{Project: project, Limit: intp(limit), WindowMS: 60_000})
	alone := newKeysLike(t, 1, emuKey{Limit: intp(limit), WindowMS: 60_000})[0]
	pool := newPool(t, Config{
		FreeKeys:      []string{project + ":" + shared[0].Key, project + ":" + shared[1].Key, alone.Key},
		FreeRateLimit: limit,
		Window:        time.Minute,
	})
	client := NewGeminiClient(pool)
	ctx := context.Background()
	for i := 0; i < 2*limit; i++ {
		if _, err := ask(ctx, client, ""); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	if _, err := ask(ctx, client, ""); !errors.Is(err, ErrAllKeysRateLimited) {
		t.Fatalf("request %d: err = %v, want ErrAllKeysRateLimited", 2*limit+1, err)
	}

	st := emu.stats(t)
	if got := st.Projects[project].Models[defaultModel]; got.Requests != limit || got.RateLimited != 0 {
		t.Errorf("the emulator's project %s got %d requests (%d refused), want %d, none refused", project, got.Requests, got.RateLimited, limit)
	}
	if got := st.Keys[alone.Label]; got.Requests != limit || got.RateLimited != 0 {
		t.Errorf("the key of its own project got %d requests (%d refused), want %d", got.Requests, got.RateLimited, limit)
	}
	for _, k := range shared {
		ks := keyStats(t, pool, k)
		if ks.Group != project || ks.Model(defaultModel).InWindow != limit || ks.Admitted != 1 {
			t.Errorf("key %s: group %q, %d in the group's window, %d admitted; want %q, %d, 1 (counters stay per key)",
				k.Label, ks.Group, ks.Model(defaultModel).InWindow, ks.Admitted, project, limit)
		}
	}
	if g := keyStats(t, pool, alone).Group; g == project || g == "" {
		t.Errorf("the key without a project is in group %q, want one of its own", g)
	}
}

// "limit: 0": a key whose tier lacks the model is asked once, then skipped at once; with no key
// having it, the error is ErrModelUnavailable naming the model, not a rate limit.
func TestAModelNotOnAKeysTier(t *testing.T) {
	t.Parallel()
	zero := emuKey{Models: map[string]emuModelLimits{proModel: {Limit: intp(0)}}}
	lacking := newKeysLike(t, 1, zero)[0]
	having := newKeys(t, 1)[0]
	pool := newPool(t, Config{FreeKeys: []string{lacking.Key, having.Key}})
	client := NewGeminiClient(pool)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		resp, err := ask(ctx, client, proModel)
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if resp.KeyFingerprint != having.Fingerprint() || resp.Model != proModel {
			t.Errorf("call %d served by key %s as %s, want %s as %s", i+1, resp.KeyFingerprint, resp.Model, having.Fingerprint(), proModel)
		}
	}
	if got := emu.keyStats(t, lacking); got.Requests != 1 || got.RateLimited != 1 {
		t.Errorf("the key without the model was asked %d times (%d refused), want once", got.Requests, got.RateLimited)
	}
	if got := emu.keyStats(t, having).Requests; got != 3 {
		t.Errorf("the key with the model served %d, want 3", got)
	}
	if m := modelStats(t, pool, lacking, proModel); !m.Unavailable || m.UnavailableRemaining < 23*time.Hour {
		t.Errorf("%s on the key without it: unavailable %v for %s, want true for about a day", proModel, m.Unavailable, m.UnavailableRemaining)
	}
	// The key still serves its other models.
	if _, err := ask(ctx, client, defaultModel); err != nil {
		t.Fatal(err)
	}

	none := newKeysLike(t, 2, zero)
	pool = newPool(t, Config{FreeKeys: secrets(none)})
	client = NewGeminiClient(pool)
	for i := 0; i < 2; i++ {
		_, err := ask(ctx, client, proModel)
		if !errors.Is(err, ErrModelUnavailable) || errors.Is(err, ErrAllKeysRateLimited) {
			t.Fatalf("call %d: err = %v, want ErrModelUnavailable (and not a rate limit)", i+1, err)
		}
		if !strings.Contains(err.Error(), proModel) {
			t.Errorf("the error does not name the model: %v", err)
		}
	}
	if got := len(emu.log(t, none...)); got != 2 {
		t.Errorf("the emulator saw %d requests, want 2 (each key asked once)", got)
	}
}

// A configured fallback serves the call when no key can serve the model: Model says which,
// on GenerateContent and on a stream's events, and the statistics count the fallbacks.
func TestAFallbackServesTheCallAndSaysSo(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	pool := newPool(t, Config{FreeKeys: []string{key.Key}, Models: map[string]ModelLimits{
		defaultModel: {FreeDailyLimit: 1, Fallback: []string{otherModel}},
	}})
	client := NewGeminiClient(pool)
	ctx := context.Background()
	var served []string
	for i := 0; i < 2; i++ {
		resp, err := ask(ctx, client, "")
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		served = append(served, resp.Model)
	}
	if want := []string{defaultModel, otherModel}; !equalLines(served, want) {
		t.Errorf("served by %q, want %q", served, want)
	}
	var events int
	for event, err := range client.StreamGenerateContent(ctx, prompt("one two three")) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		events++
		if event.Model != otherModel {
			t.Errorf("stream event %d served by %q, want %q", events, event.Model, otherModel)
		}
	}
	if events == 0 {
		t.Fatal("the stream had no events")
	}

	var seen []string
	for _, e := range emu.log(t, key) {
		seen = append(seen, e.Method+" "+e.Model)
	}
	want := []string{"generateContent " + defaultModel, "generateContent " + otherModel, "streamGenerateContent " + otherModel}
	if !equalLines(seen, want) {
		t.Errorf("the emulator saw %q, want %q", seen, want)
	}
	s := poolStats(t, pool)
	if s.Pool.ModelFallbacks != 2 {
		t.Errorf("Pool.ModelFallbacks = %d, want 2", s.Pool.ModelFallbacks)
	}
	if m := s.Model(otherModel); m == nil || m.Fallbacks != 2 {
		t.Errorf("pool-wide %s: %+v, want 2 fallbacks", otherModel, m)
	}
	if m := s.Model(defaultModel); m == nil || m.Fallbacks != 0 || m.RequestsLeftToday == nil || *m.RequestsLeftToday != 0 {
		t.Errorf("pool-wide %s: %+v, want no fallbacks and 0 left today", defaultModel, m)
	}
	if m := modelStats(t, pool, key, "models/"+otherModel); m.Fallbacks != 2 {
		t.Errorf("the key's %s served %d fallbacks, want 2", otherModel, m.Fallbacks)
	}
}
