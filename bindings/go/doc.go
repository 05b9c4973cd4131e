// Package rotator sends Gemini generateContent requests through a pool of API keys, using the
// gemini-rotator library through cgo.
//
// Free keys are used round-robin, each held to an exact rolling-window rate limit; the paid key
// is used only when every free key is full; when nothing can admit a request the call fails with
// [ErrAllKeysRateLimited] (a [*RateLimitError] saying when to retry), or waits up to the
// client's MaxWait. Keys that the service reports as invalid or leaked are disabled, keys that
// get a 429 cool down, and transient 5xx and connection failures are retried with backoff.
//
// Create one [KeyPool] per process, from the environment or a [Config], and share it:
//
//	pool, err := rotator.NewKeyPoolFromEnv() // GEMINI_FREE_KEYS, GEMINI_PAID_KEY, ...
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer pool.Close()
//
//	client := rotator.NewGeminiClient(pool)
//	answer, err := client.SimpleTextQuery(ctx, "Your prompt here")
//
// Every call takes a [context.Context]: its deadline becomes the call's time budget, and
// cancelling it returns ctx.Err() at once, even while the HTTP request is in flight.
//
// Observability: [KeyPool.MetricsHandler] serves the pool's statistics to Prometheus (mount it
// on /metrics), and [SetLogLevel] with [SetLogHandler] (or [SlogHandler] for log/slog) delivers
// the library's events (key cooldowns, disabled keys, paid fallbacks, exhaustion, retries).
//
// No error, statistic or log event of this package contains an API key: keys are named by
// their [Fingerprint].
package rotator
