package rotator

import (
	"context"
	"errors"
	"testing"
)

// Every class of upstream failure, as the emulator answers it.

// serveAll sends n requests and returns the fingerprints of the keys that served them.
func serveAll(t *testing.T, client *GeminiClient, n int) map[string]int {
	t.Helper()
	served := map[string]int{}
	for i := 0; i < n; i++ {
		resp, err := client.GenerateContent(context.Background(), prompt("hello"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.Text() != "echo: hello" {
			t.Fatalf("request %d: answer %q", i, resp.Text())
		}
		served[resp.KeyFingerprint]++
	}
	return served
}

func TestUpstream429CoolsTheKeyDownAndMovesToAnother(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, 2)
	a, b := keys[0], keys[1]
	addFault(t, emuFault{Label: a.Label, Kind: "quota_minute", Count: 1, RetryDelay: "30s"})
	pool := newPool(t, Config{FreeKeys: secrets(keys)})

	served := serveAll(t, NewGeminiClient(pool), 4)

	if served[b.Fingerprint()] != 4 {
		t.Errorf("served = %v, want all 4 by the key that was not cooling down (%s)", served, b.Fingerprint())
	}
	ea := emu.keyStats(t, a)
	if ea.Requests != 1 || ea.ByStatus["429"] != 1 {
		t.Errorf("emulator: key a = %+v, want exactly one request, answered 429", ea)
	}
	ks := keyStats(t, pool, a)
	if ks.Upstream429 != 1 || ks.CooldownRemaining <= 0 || ks.CooldownCause != "per_minute" || ks.Disabled != "" {
		t.Errorf("key a statistics = %+v, want one 429, cooling down per minute, not disabled", ks)
	}
}

func TestInvalidKeyIsDisabledAndTheCallMovesOn(t *testing.T) {
	t.Parallel()
	invalid := unknownKeys(t, 1)[0] // the emulator answers 400 API_KEY_INVALID
	good := newKeys(t, 1)[0]
	pool := newPool(t, Config{FreeKeys: []string{invalid.Key, good.Key}})

	served := serveAll(t, NewGeminiClient(pool), 4)

	if served[good.Fingerprint()] != 4 {
		t.Errorf("served = %v, want all 4 by the valid key", served)
	}
	ks := keyStats(t, pool, invalid)
	if ks.Disabled != "API_KEY_INVALID" || ks.InvalidKey != 1 {
		t.Errorf("invalid key statistics = %+v, want disabled API_KEY_INVALID after one answer", ks)
	}
}

func TestLeakedKeyIsDisabledAndTheCallMovesOn(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, 2)
	leaked, good := keys[0], keys[1]
	addFault(t, emuFault{Label: leaked.Label, Kind: "leaked"})
	pool := newPool(t, Config{FreeKeys: secrets(keys)})

	served := serveAll(t, NewGeminiClient(pool), 4)

	if served[good.Fingerprint()] != 4 {
		t.Errorf("served = %v, want all 4 by the good key", served)
	}
	if got := emu.keyStats(t, leaked); got.Requests != 1 || got.ByStatus["403"] != 1 {
		t.Errorf("emulator: leaked key = %+v, want one request answered 403", got)
	}
	ks := keyStats(t, pool, leaked)
	if ks.Disabled != "LEAKED" || ks.PermissionDenied != 1 {
		t.Errorf("leaked key statistics = %+v, want disabled LEAKED", ks)
	}
}

func TestEveryKeyDisabledIsErrNoUsableKeys(t *testing.T) {
	t.Parallel()
	keys := unknownKeys(t, 2)
	pool := newPool(t, Config{FreeKeys: secrets(keys)})
	client := NewGeminiClient(pool)
	for i := 0; i < 2; i++ {
		_, err := client.SimpleTextQuery(context.Background(), "anyone?")
		if !errors.Is(err, ErrNoUsableKeys) {
			t.Fatalf("call %d: err = %v, want ErrNoUsableKeys", i, err)
		}
	}
	for _, k := range keys {
		if ks := keyStats(t, pool, k); ks.Disabled != "API_KEY_INVALID" {
			t.Errorf("key %s: Disabled = %q", k.Label, ks.Disabled)
		}
	}
}

func TestTransient503IsRetriedThenSucceeds(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "http503", Count: 2})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}, MaxRetries: 3})

	answer, err := NewGeminiClient(pool).SimpleTextQuery(context.Background(), "again")
	if err != nil || answer != "echo: again" {
		t.Fatalf("%q, %v; want the answer after two retries", answer, err)
	}
	e := emu.keyStats(t, key)
	if e.ByStatus["503"] != 2 || e.ByStatus["200"] != 1 || e.Requests != 3 {
		t.Errorf("emulator: %+v, want two 503s then a 200", e)
	}
	ks := keyStats(t, pool, key)
	if ks.Retries != 2 || ks.ServerErrors != 2 || ks.Succeeded != 1 || ks.Disabled != "" {
		t.Errorf("statistics = %+v, want 2 retries, 2 server errors, 1 success, not disabled", ks)
	}
}

func TestPersistent503IsAnAPIErrorAfterTheRetries(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "http503"})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}, MaxRetries: 2})

	_, err := NewGeminiClient(pool).SimpleTextQuery(context.Background(), "overloaded")
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want *APIError", err, err)
	}
	if apiErr.StatusCode != 503 || apiErr.Status != "UNAVAILABLE" || apiErr.Message == "" {
		t.Errorf("APIError = %+v, want 503 UNAVAILABLE with the service's message", apiErr)
	}
	if got := emu.keyStats(t, key).Requests; got != 3 {
		t.Errorf("emulator saw %d requests, want 1 + 2 retries", got)
	}
	if ks := keyStats(t, pool, key); ks.Disabled != "" {
		t.Errorf("a 503 disabled the key: %+v", ks)
	}
}

func TestBadRequestIsReturnedAtOnceWithoutRetry(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, 2)
	for _, k := range keys {
		addFault(t, emuFault{Label: k.Label, Kind: "bad_request"})
	}
	pool := newPool(t, Config{FreeKeys: secrets(keys), MaxRetries: 3})

	_, err := NewGeminiClient(pool).SimpleTextQuery(context.Background(), "malformed")
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want *APIError", err, err)
	}
	if apiErr.StatusCode != 400 || apiErr.Status != "INVALID_ARGUMENT" {
		t.Errorf("APIError = %+v, want 400 INVALID_ARGUMENT", apiErr)
	}
	if fp := apiErr.KeyFingerprint; fp != keys[0].Fingerprint() && fp != keys[1].Fingerprint() {
		t.Errorf("KeyFingerprint = %q, want one of the pool's keys", fp)
	}
	total := emu.keyStats(t, keys[0]).Requests + emu.keyStats(t, keys[1]).Requests
	if total != 1 {
		t.Errorf("emulator saw %d requests, want exactly 1 (no retry, no other key)", total)
	}
	for _, k := range keys {
		if ks := keyStats(t, pool, k); ks.Disabled != "" {
			t.Errorf("a bad request disabled key %s", k.Label)
		}
	}
}

func TestUnsupportedLocationIsAnAPIErrorThatKeepsTheKey(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "location", Count: 1})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	client := NewGeminiClient(pool)

	_, err := client.SimpleTextQuery(context.Background(), "where")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Status != "FAILED_PRECONDITION" {
		t.Fatalf("err = %v, want a 400 FAILED_PRECONDITION *APIError", err)
	}
	if answer, err := client.SimpleTextQuery(context.Background(), "still here"); err != nil || answer != "echo: still here" {
		t.Fatalf("the key was not kept: %q, %v", answer, err)
	}
}

func TestSafetyBlockIsASuccess(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "safety_block", Count: 2})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	client := NewGeminiClient(pool)

	resp, err := client.GenerateContent(context.Background(), prompt("something unsafe"))
	if err != nil {
		t.Fatalf("a safety block is an error: %v", err)
	}
	if resp.PromptFeedback == nil || resp.PromptFeedback.BlockReason != "SAFETY" {
		t.Errorf("PromptFeedback = %+v, want blockReason SAFETY", resp.PromptFeedback)
	}
	if len(resp.Candidates) != 0 || resp.Text() != "" || resp.KeyFingerprint != key.Fingerprint() {
		t.Errorf("response = %+v, want no candidates, no text, served by the key", resp)
	}
	answer, err := client.SimpleTextQuery(context.Background(), "again")
	if err != nil || answer != "" {
		t.Errorf("SimpleTextQuery of a blocked prompt = %q, %v; want \"\", nil", answer, err)
	}
	if ks := keyStats(t, pool, key); ks.Succeeded != 2 || ks.Disabled != "" || ks.CooldownRemaining != 0 {
		t.Errorf("statistics = %+v, want two successes and a healthy key", ks)
	}
}

func TestClosedConnectionIsErrTransport(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "close"})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}, MaxRetries: 1})

	_, err := NewGeminiClient(pool).SimpleTextQuery(context.Background(), "hang up")
	if !errors.Is(err, ErrTransport) {
		t.Fatalf("err = %v, want ErrTransport", err)
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		t.Errorf("a transport error is also an *APIError: %v", err)
	}
	if got := emu.keyStats(t, key).ByStatus["0"]; got != 2 {
		t.Errorf("emulator closed %d connections, want 1 + 1 retry", got)
	}
	if ks := keyStats(t, pool, key); ks.TransportErrors != 2 || ks.Disabled != "" {
		t.Errorf("statistics = %+v, want 2 transport errors, key kept", ks)
	}
}
