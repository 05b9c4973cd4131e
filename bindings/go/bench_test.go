package rotator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// Benchmarks (run with -bench; never by the plain test command): the binding's cost per call
// against a plain net/http POST of the same body to the same emulator, and one bare cgo
// crossing.

func benchRequest() *GeminiRequest {
	req := prompt("benchmark prompt")
	req.GenerationConfig = &GeminiGenerationConfig{Temperature: Float64Ptr(0.7), MaxOutputTokens: IntPtr(1000)}
	return req
}

func BenchmarkGenerateContent(b *testing.B) {
	key := newKeys(b, 1)[0]
	pool := newPool(b, Config{FreeKeys: []string{key.Key}, FreeRateLimit: 100_000, Window: time.Second})
	client := NewGeminiClient(pool)
	req := benchRequest()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.GenerateContent(ctx, req)
		if err != nil || resp.Text() != "echo: benchmark prompt" {
			b.Fatalf("%v, %v", resp, err)
		}
	}
}

// BenchmarkGenerateContentJSON is the same call without the Go-side JSON encoding and decoding.
func BenchmarkGenerateContentJSON(b *testing.B) {
	key := newKeys(b, 1)[0]
	pool := newPool(b, Config{FreeKeys: []string{key.Key}, FreeRateLimit: 100_000, Window: time.Second})
	client := NewGeminiClient(pool)
	body, err := json.Marshal(benchRequest())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := client.GenerateContentJSON(ctx, "", body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGenerateContentCancellable is GenerateContent with a context that can be cancelled,
// so the C call runs in its own goroutine.
func BenchmarkGenerateContentCancellable(b *testing.B) {
	key := newKeys(b, 1)[0]
	pool := newPool(b, Config{FreeKeys: []string{key.Key}, FreeRateLimit: 100_000, Window: time.Second})
	client := NewGeminiClient(pool)
	req := benchRequest()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := client.GenerateContent(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlainHTTP(b *testing.B) {
	key := newKeys(b, 1)[0]
	body, err := json.Marshal(benchRequest())
	if err != nil {
		b.Fatal(err)
	}
	url := emu.url + "/v1beta/models/gemini-3.6-flash:generateContent"
	client := &http.Client{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("x-goog-api-key", key.Key)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var out GeminiResponse
		err = json.NewDecoder(resp.Body).Decode(&out)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || out.Text() != "echo: benchmark prompt" {
			b.Fatalf("%s: %v", resp.Status, err)
		}
	}
}

func BenchmarkCgoCrossing(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if Version() == "" {
			b.Fatal("empty version")
		}
	}
}

func BenchmarkFingerprint(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if len(Fingerprint("benchmark-key")) != 12 {
			b.Fatal("bad fingerprint")
		}
	}
}
