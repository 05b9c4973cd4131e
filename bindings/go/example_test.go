package rotator_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	rotator "gemini-rotator/bindings/go"
)

// A pool from the GEMINI_* environment variables, shared by one client. (The examples run
// against the test emulator, which answers "echo: " and the prompt.)
func ExampleNewGeminiClient() {
	pool, err := rotator.NewKeyPoolFromEnv() // GEMINI_FREE_KEYS, GEMINI_PAID_KEY, ...
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	client := rotator.NewGeminiClient(pool)
	client.MaxWait = 5 * time.Second // wait for a key rather than fail when all are busy

	answer, err := client.SimpleTextQuery(context.Background(), "Hello")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(answer)
	// Output: echo: Hello
}

func ExampleGeminiClient_SimpleTextQuery() {
	pool, err := rotator.NewKeyPoolFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	client := rotator.NewGeminiClient(pool)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	response, err := client.SimpleTextQuery(ctx, "Your prompt here")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(response)
	// Output: echo: Your prompt here
}

func ExampleGeminiClient_GenerateContent() {
	pool, err := rotator.NewKeyPoolFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	geminiClient := rotator.NewGeminiClient(pool)

	req := &rotator.GeminiRequest{
		Contents: []rotator.GeminiContent{{Parts: []rotator.GeminiPart{{Text: "Your prompt here"}}}},
		GenerationConfig: &rotator.GeminiGenerationConfig{
			Temperature:     rotator.Float64Ptr(0.7),
			MaxOutputTokens: rotator.IntPtr(1000),
		},
	}
	response, err := geminiClient.GenerateContent(context.Background(), req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(response.Text())
	fmt.Println(response.Candidates[0].FinishReason)
	fmt.Println("served by a key with a fingerprint of", len(response.KeyFingerprint), "hex digits")
	// Output:
	// echo: Your prompt here
	// STOP
	// served by a key with a fingerprint of 12 hex digits
}

// Telling the failures apart.
func ExampleRateLimitError() {
	pool, err := rotator.NewKeyPoolFromEnv()
	if errors.Is(err, rotator.ErrConfig) {
		log.Fatal(err) // names the variable, e.g. GEMINI_FREE_RATE_LIMIT
	}
	defer pool.Close()
	client := rotator.NewGeminiClient(pool)

	_, err = client.SimpleTextQuery(context.Background(), "Your prompt here")
	var rateLimited *rotator.RateLimitError
	var apiErr *rotator.APIError
	switch {
	case err == nil:
		fmt.Println("answered")
	case errors.As(err, &rateLimited):
		fmt.Println("every key is busy; retry in", rateLimited.RetryAfter)
	case errors.Is(err, rotator.ErrNoUsableKeys):
		fmt.Println("every key is disabled: check them")
	case errors.As(err, &apiErr):
		fmt.Println("the service said", apiErr.StatusCode, apiErr.Status, apiErr.Message)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, rotator.ErrTimeout):
		fmt.Println("too slow")
	default:
		fmt.Println("failed:", err)
	}
	// Output: answered
}

// Matching statistics to your keys without printing them.
func ExampleKeyPool_Stats() {
	pool, err := rotator.NewKeyPoolFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	stats, err := pool.Stats()
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range stats.Keys {
		fmt.Println(k.Tier, k.Limit, k.Window, k.Disabled == "")
	}
	// Output:
	// free 60 1m0s true
	// free 60 1m0s true
}
