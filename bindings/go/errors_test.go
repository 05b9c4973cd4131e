package rotator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// No error of the package may contain an API key: provoke every kind and look.
func TestNoErrorContainsAnAPIKey(t *testing.T) {
	t.Parallel()
	good := newKeys(t, 3)
	invalid := unknownKeys(t, 2)
	addFault(t, emuFault{Label: good[0].Label, Kind: "leaked"})
	addFault(t, emuFault{Label: good[1].Label, Kind: "bad_request"})
	addFault(t, emuFault{Label: good[2].Label, Kind: "close"})
	all := append(append([]testKey{}, good...), invalid...)

	var errs []error
	collect := func(err error) {
		if err == nil {
			t.Fatal("expected an error")
		}
		errs = append(errs, err)
	}
	call := func(cfg Config) {
		pool := newPool(t, cfg)
		_, err := NewGeminiClient(pool).SimpleTextQuery(context.Background(), "leak?")
		collect(err)
	}
	call(Config{FreeKeys: secrets(invalid)})                                        // no usable keys
	call(Config{FreeKeys: []string{good[0].Key}})                                   // leaked: no usable keys
	call(Config{FreeKeys: []string{good[1].Key}})                                   // API error
	call(Config{FreeKeys: []string{good[2].Key}, MaxRetries: -1})                   // transport
	call(Config{PaidKey: invalid[0].Key + "x", FreeRateLimit: 1, PaidRateLimit: 1}) // paid key invalid
	_, err := NewKeyPool(Config{FreeKeys: []string{good[0].Key, good[0].Key}})      // duplicate
	collect(err)
	_, err = NewKeyPool(Config{FreeKeys: []string{good[1].Key}, PaidKey: good[1].Key}) // paid also free
	collect(err)
	_, err = NewKeyPool(Config{FreeKeys: []string{"\t" + good[2].Key + "\x01"}}) // control character
	collect(err)

	limited := newKeys(t, 1)[0]
	pool := newPool(t, Config{FreeKeys: []string{limited.Key}, FreeRateLimit: 1, Window: time.Hour})
	client := NewGeminiClient(pool)
	client.SimpleTextQuery(context.Background(), "fill")
	_, err = client.SimpleTextQuery(context.Background(), "refused")
	collect(err)
	all = append(all, limited)

	for _, err := range errs {
		for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			for _, k := range all {
				if strings.Contains(text, k.Key) {
					t.Errorf("error %q contains the key %s", text, k.Label)
				}
			}
		}
	}
}

func TestAPIErrorBuiltByHandShowsItsFields(t *testing.T) {
	t.Parallel()
	e := &APIError{StatusCode: 503, Status: "UNAVAILABLE", Message: "The model is overloaded.", KeyFingerprint: "0123456789ab"}
	if got := e.Error(); got != "rotator: Gemini API error 503 UNAVAILABLE: The model is overloaded. (key 0123456789ab)" {
		t.Errorf("Error() = %q", got)
	}
	bare := &APIError{StatusCode: 418, Message: "short and stout"}
	if got := bare.Error(); got != "rotator: Gemini API error 418: short and stout" {
		t.Errorf("Error() without status or key = %q", got)
	}
}

// The fields of an API error come from the library's accessors, not from its message; the
// message is shown as the library wrote it.
func TestAPIErrorFieldsOfABadRequest(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "bad_request"})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})

	_, err := NewGeminiClient(pool).SimpleTextQuery(context.Background(), "malformed")
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want *APIError", err, err)
	}
	if apiErr.StatusCode != 400 || apiErr.Status != "INVALID_ARGUMENT" {
		t.Errorf("status = %d %q, want 400 INVALID_ARGUMENT", apiErr.StatusCode, apiErr.Status)
	}
	if apiErr.KeyFingerprint != key.Fingerprint() {
		t.Errorf("KeyFingerprint = %q, want %q", apiErr.KeyFingerprint, key.Fingerprint())
	}
	checkAPIErrorMessage(t, apiErr, key)
}

func TestAPIErrorFieldsOfA503ThatOutlastsTheRetries(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "http503"})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}, MaxRetries: 2})

	_, err := NewGeminiClient(pool).SimpleTextQuery(context.Background(), "overloaded")
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want *APIError", err, err)
	}
	if apiErr.StatusCode != 503 || apiErr.Status != "UNAVAILABLE" {
		t.Errorf("status = %d %q, want 503 UNAVAILABLE", apiErr.StatusCode, apiErr.Status)
	}
	if apiErr.KeyFingerprint != key.Fingerprint() {
		t.Errorf("KeyFingerprint = %q, want %q", apiErr.KeyFingerprint, key.Fingerprint())
	}
	if got := emu.keyStats(t, key).ByStatus["503"]; got != 3 {
		t.Errorf("emulator answered %d 503s, want 1 + 2 retries", got)
	}
	if ks := keyStats(t, pool, key); ks.Retries != 2 {
		t.Errorf("statistics: %d retries, want 2", ks.Retries)
	}
	checkAPIErrorMessage(t, apiErr, key)
}

// checkAPIErrorMessage: Message is the service's text alone, and Error() is the library's
// message, which ends with it and the key's fingerprint.
func checkAPIErrorMessage(t *testing.T, apiErr *APIError, key testKey) {
	t.Helper()
	if apiErr.Message == "" || strings.HasPrefix(apiErr.Message, "Gemini API error") || strings.Contains(apiErr.Message, "(key ") {
		t.Errorf("Message = %q, want the service's message alone", apiErr.Message)
	}
	wantPrefix := fmt.Sprintf("rotator: Gemini API error %d %s: ", apiErr.StatusCode, apiErr.Status)
	text := apiErr.Error()
	if !strings.HasPrefix(text, wantPrefix) || !strings.Contains(text, apiErr.Message) || !strings.HasSuffix(text, "(key "+key.Fingerprint()+")") {
		t.Errorf("Error() = %q, want %q + the message + the key's fingerprint", text, wantPrefix)
	}
	if strings.Contains(text, key.Key) || strings.Contains(fmt.Sprintf("%#v", apiErr), key.Key) {
		t.Errorf("the error shows the key: %q", text)
	}
}

func TestErrorsMatchTheirSentinelsOnly(t *testing.T) {
	t.Parallel()
	rle := error(&RateLimitError{RetryAfter: time.Second})
	if !errors.Is(rle, ErrAllKeysRateLimited) || errors.Is(rle, ErrNoUsableKeys) {
		t.Error("RateLimitError matches the wrong sentinels")
	}
	if !strings.Contains(rle.Error(), "1s") {
		t.Errorf("RateLimitError without a message = %q, want the retry delay", rle)
	}
	wrapped := fmt.Errorf("calling gemini: %w", rle)
	var got *RateLimitError
	if !errors.As(wrapped, &got) || got.RetryAfter != time.Second {
		t.Error("errors.As through a wrapper")
	}
	timeout := timeoutError()
	if !errors.Is(timeout, ErrTimeout) || !errors.Is(timeout, context.DeadlineExceeded) || errors.Is(timeout, ErrTransport) {
		t.Error("the timeout error matches the wrong sentinels")
	}
	cfg := newError(ErrConfig, "x")
	if !errors.Is(cfg, ErrConfig) || errors.Is(cfg, context.DeadlineExceeded) {
		t.Error("a config error matches the wrong sentinels")
	}
}
