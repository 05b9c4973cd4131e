// One prompt through a pool of Gemini API keys, configured by the environment.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	rotator "gemini-rotator/bindings/go"
)

func main() {
	pool, err := rotator.NewKeyPoolFromEnv() // or rotator.NewKeyPool(rotator.Config{...})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	ctx := context.Background()
	gemini := rotator.NewGeminiClient(pool) // or any value with a KeyPool() *KeyPool method
	text, err := gemini.SimpleTextQuery(ctx, "Your prompt here")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(text)

	resp, err := gemini.GenerateContent(ctx, &rotator.GeminiRequest{
		Contents: []rotator.GeminiContent{{Parts: []rotator.GeminiPart{{Text: "Your prompt here"}}}},
		GenerationConfig: &rotator.GeminiGenerationConfig{
			Temperature:     rotator.Float64Ptr(0.7),
			MaxOutputTokens: rotator.IntPtr(1000),
		},
	})
	var limited *rotator.RateLimitError
	if errors.As(err, &limited) {
		log.Fatalf("every key is at its limit: retry in %s", limited.RetryAfter)
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (key %s)\n", resp.Text(), resp.KeyFingerprint)
}
