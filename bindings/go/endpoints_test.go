package rotator

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCountTokensAndEmbeddingsRotate(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, 2)
	pool := newPool(t, Config{FreeKeys: secrets(keys)})
	client := NewGeminiClient(pool)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		n, err := client.CountTokens(ctx, prompt("one two three"))
		if err != nil || n != 3 {
			t.Fatalf("CountTokens = %d, %v; want 3", n, err)
		}
	}
	v, err := client.EmbedContent(ctx, &EmbedContentRequest{
		Content:              GeminiContent{Parts: []GeminiPart{{Text: "hello"}}},
		OutputDimensionality: 8,
	})
	if err != nil || len(v) != 8 {
		t.Fatalf("EmbedContent = %d values, %v", len(v), err)
	}
	vs, err := client.BatchEmbedContents(ctx, "", []*EmbedContentRequest{
		{Content: GeminiContent{Parts: []GeminiPart{{Text: "a"}}}, OutputDimensionality: 4},
		{Content: GeminiContent{Parts: []GeminiPart{{Text: "b"}}}, OutputDimensionality: 4},
	})
	if err != nil || len(vs) != 2 || len(vs[1]) != 4 {
		t.Fatalf("BatchEmbedContents = %v, %v", vs, err)
	}
	for _, k := range keys {
		if got := emu.keyStats(t, k).Requests; got != 2 {
			t.Errorf("key %s served %d requests, want 2 (rotation)", k.Label, got)
		}
	}
	models := map[string]bool{}
	for _, e := range emu.log(t, keys...) {
		models[e.Model] = true
	}
	if !models[DefaultEmbeddingModel] || !models["gemini-3.6-flash"] {
		t.Errorf("models seen: %v", models)
	}
}

func TestEndpointsCountAgainstTheLimits(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	pool := newPool(t, Config{FreeKeys: []string{key.Key}, FreeRateLimit: 1, Window: time.Minute})
	client := NewGeminiClient(pool)
	if _, err := client.CountTokens(context.Background(), prompt("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CountTokens(context.Background(), prompt("x")); !errors.Is(err, ErrAllKeysRateLimited) {
		t.Fatalf("err = %v, want ErrAllKeysRateLimited", err)
	}
}

func TestListModels(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	models, err := NewGeminiClient(newPool(t, Config{FreeKeys: []string{key.Key}})).ListModels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range models {
		found = found || m.Name == "models/gemini-embedding-001"
	}
	if !found || len(models) < 6 {
		t.Errorf("models = %+v", models)
	}
}

func TestCancellingTheContextStopsAPlainCall(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	addFault(t, emuFault{Label: key.Label, Kind: "delay", Method: "countTokens", LatencyMS: 5000, Count: 1})
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(150*time.Millisecond, cancel)
	started := time.Now()
	if _, err := NewGeminiClient(pool).CountTokens(ctx, prompt("slow")); err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(started); took > time.Second {
		t.Errorf("took %v", took)
	}
	if n := inFlight(t, pool); n != 0 {
		t.Errorf("%d requests in flight: the request was not stopped", n)
	}
}

func TestBadEndpointArguments(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	client := NewGeminiClient(newPool(t, Config{FreeKeys: []string{key.Key}}))
	if _, err := client.CountTokens(context.Background(), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil request: %v", err)
	}
	if _, err := client.BatchEmbedContents(context.Background(), "", []*EmbedContentRequest{nil}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil batch entry: %v", err)
	}
	for _, err := range client.StreamGenerateContent(context.Background(), nil) {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("nil stream request: %v", err)
		}
	}
	if _, _, err := client.pool().call(context.Background(), "generatecontent", "", []byte("{}"), 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad method: %v", err)
	}
}
