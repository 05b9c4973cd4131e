package rotator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// Benchmarks (run with -bench; never by the plain test command): the binding's cost per call
// against a plain net/http POST of the same body to the same emulator, on one goroutine and on
// 8, and one bare cgo crossing. benches/run at the repository root runs them in interleaved
// rounds and reports medians and ratios.

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

// BenchmarkPlainHTTP is the comparison point: the same request struct, encoded on every call as
// GenerateContent does, POSTed with net/http, and the answer decoded into a GeminiResponse.
func BenchmarkPlainHTTP(b *testing.B) {
	key := newKeys(b, 1)[0]
	req := benchRequest()
	url := emu.url + "/v1beta/models/gemini-3.6-flash:generateContent"
	client := &http.Client{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := plainPost(client, url, key.Key, req); err != nil {
			b.Fatal(err)
		}
	}
}

// plainPost encodes req, POSTs it with client and decodes and checks the answer.
func plainPost(client *http.Client, url, key string, req *GeminiRequest) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	httpReq, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("x-goog-api-key", key)
	resp, err := client.Do(httpReq)
	if err != nil {
		return err
	}
	var out GeminiResponse
	err = json.NewDecoder(resp.Body).Decode(&out)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || out.Text() != "echo: benchmark prompt" {
		return fmt.Errorf("%s: %v", resp.Status, err)
	}
	return nil
}

// parallelGoroutines is how many goroutines the parallel benchmarks call from (as the Rust and
// Python benchmarks' 8 threads).
const parallelGoroutines = 8

func setParallelism(b *testing.B) {
	p := parallelGoroutines / runtime.GOMAXPROCS(0)
	if p < 1 {
		p = 1
	}
	b.SetParallelism(p)
}

// BenchmarkGenerateContentParallel is GenerateContent from 8 goroutines sharing one client.
func BenchmarkGenerateContentParallel(b *testing.B) {
	key := newKeys(b, 1)[0]
	pool := newPool(b, Config{FreeKeys: []string{key.Key}, FreeRateLimit: 100_000, Window: time.Second})
	client := NewGeminiClient(pool)
	req := benchRequest()
	ctx := context.Background()
	setParallelism(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.GenerateContent(ctx, req)
			if err != nil || resp.Text() != "echo: benchmark prompt" {
				b.Errorf("%v, %v", resp, err)
				return
			}
		}
	})
}

// BenchmarkPlainHTTPParallel is PlainHTTP from 8 goroutines sharing one http.Client, whose
// transport keeps as many idle connections as there are goroutines (the library's HTTP client
// keeps every idle connection too).
func BenchmarkPlainHTTPParallel(b *testing.B) {
	key := newKeys(b, 1)[0]
	req := benchRequest()
	url := emu.url + "/v1beta/models/gemini-3.6-flash:generateContent"
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = parallelGoroutines
	client := &http.Client{Transport: transport}
	setParallelism(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := plainPost(client, url, key.Key, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
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
