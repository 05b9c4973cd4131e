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

func TestAPIErrorIsSplitIntoItsParts(t *testing.T) {
	t.Parallel()
	e := newAPIError(503, "UNAVAILABLE", "Gemini API error 503 UNAVAILABLE: The model is overloaded. (key 0123456789ab)")
	want := APIError{StatusCode: 503, Status: "UNAVAILABLE", Message: "The model is overloaded.", KeyFingerprint: "0123456789ab"}
	if *e != want {
		t.Errorf("newAPIError = %+v, want %+v", *e, want)
	}
	if got := e.Error(); got != "rotator: Gemini API error 503 UNAVAILABLE: The model is overloaded. (key 0123456789ab)" {
		t.Errorf("Error() = %q", got)
	}
	odd := newAPIError(418, "", "something else entirely")
	if odd.Message != "something else entirely" || odd.KeyFingerprint != "" {
		t.Errorf("a message of another shape was not kept whole: %+v", odd)
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
