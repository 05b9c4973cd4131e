// Package sdktest runs Google's go-genai SDK on the pool's HTTPClient against the emulator. It
// is a module of its own so that the binding's module does not depend on the SDK.
package sdktest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rotator "gemini-rotator/bindings/go"
	"google.golang.org/genai"
)

const (
	model  = "gemini-2.5-flash"
	five   = "one two three four five"
	answer = "echo: one two three four five"
)

type emulator struct {
	url    string
	prefix string // the keys' secrets are unique to the test: the pool's state is host-wide
	cmd    *exec.Cmd
}

// startEmulator starts the emulator with keys k0..k{n-1} (labels l0..) and the given faults.
func startEmulator(t *testing.T, n int, faults ...map[string]any) *emulator {
	t.Helper()
	prefix := uniquePrefix(t)
	keys := make([]map[string]any, n)
	for i := range keys {
		keys[i] = map[string]any{"key": fmt.Sprintf("%s-%d", prefix, i), "label": fmt.Sprintf("l%d", i)}
	}
	e := startEmulatorWith(t, keys, faults...)
	e.prefix = prefix
	return e
}

// uniquePrefix names the test's keys (and projects): the pool's state is host-wide.
func uniquePrefix(t *testing.T) string {
	return fmt.Sprintf("secret-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

// startEmulatorWith starts the emulator with the given key entries and faults.
func startEmulatorWith(t *testing.T, keys []map[string]any, faults ...map[string]any) *emulator {
	t.Helper()
	config, _ := json.Marshal(map[string]any{"keys": keys, "faults": append([]map[string]any{}, faults...), "record_bodies": true})
	path := filepath.Join(t.TempDir(), "emulator.json")
	if err := os.WriteFile(path, config, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("GEMINI_EMULATOR_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "..", "target", "release", "gemini-emulator")
	}
	cmd := exec.Command(bin, "--config", path, "--exit-on-stdin-eof")
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v (cargo build --release --workspace)", bin, err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		cmd.Process.Kill()
		t.Fatalf("the emulator printed %q: %v", line, err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	return &emulator{url: url, cmd: cmd}
}

type stats struct {
	Keys map[string]struct {
		Requests int `json:"requests"`
		OK       int `json:"ok"`
	} `json:"keys"`
	UnknownKey int `json:"unknown_key"`
}

func (e *emulator) stats(t *testing.T) stats {
	t.Helper()
	resp, err := http.Get(e.url + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// client is the one-line form, the SDK's base URL pointed at the emulator.
func client(t *testing.T, e *emulator, n int, cfg rotator.Config) (*genai.Client, *rotator.KeyPool) {
	t.Helper()
	for i := 0; i < n; i++ {
		cfg.FreeKeys = append(cfg.FreeKeys, fmt.Sprintf("%s-%d", e.prefix, i))
	}
	return sdkClient(t, e, cfg, "")
}

// sdkClient is the SDK on a pool of cfg (its keys given), in API version apiVersion ("": the
// SDK's default), both pointed at the emulator.
func sdkClient(t *testing.T, e *emulator, cfg rotator.Config, apiVersion string) (*genai.Client, *rotator.KeyPool) {
	t.Helper()
	cfg.BaseURL = e.url
	cfg.RetryBase = time.Millisecond
	pool, err := rotator.NewKeyPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: "placeholder-never-sent", Backend: genai.BackendGeminiAPI, HTTPClient: pool.HTTPClient(),
		HTTPOptions: genai.HTTPOptions{BaseURL: e.url, APIVersion: apiVersion},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, pool
}

func TestGenerateContentRotatesAndNeverSendsThePlaceholder(t *testing.T) {
	e := startEmulator(t, 3)
	c, _ := client(t, e, 3, rotator.Config{})
	for i := 0; i < 6; i++ {
		resp, err := c.Models.GenerateContent(context.Background(), model, genai.Text(five), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text() != answer {
			t.Fatalf("text %q", resp.Text())
		}
	}
	s := e.stats(t)
	for i := 0; i < 3; i++ {
		if got := s.Keys[fmt.Sprintf("l%d", i)].OK; got != 2 {
			t.Fatalf("key l%d served %d, want 2 (%+v)", i, got, s)
		}
	}
	if s.UnknownKey != 0 {
		t.Fatalf("%d requests came with a key the emulator does not know", s.UnknownKey)
	}
}

func TestA429FailsOverToAnotherKey(t *testing.T) {
	e := startEmulator(t, 2, map[string]any{"label": "l0", "kind": "quota_minute", "count": 1})
	c, _ := client(t, e, 2, rotator.Config{})
	resp, err := c.Models.GenerateContent(context.Background(), model, genai.Text(five), nil)
	if err != nil || resp.Text() != answer {
		t.Fatalf("%v %v", resp, err)
	}
	s := e.stats(t)
	if s.Keys["l0"].Requests != 1 || s.Keys["l1"].OK != 1 {
		t.Fatalf("%+v", s)
	}
}

func TestThePoolsErrorThroughTheSDK(t *testing.T) {
	e := startEmulator(t, 1)
	c, _ := client(t, e, 1, rotator.Config{FreeRateLimit: 1})
	if _, err := c.Models.GenerateContent(context.Background(), model, genai.Text(five), nil); err != nil {
		t.Fatal(err)
	}
	_, err := c.Models.GenerateContent(context.Background(), model, genai.Text(five), nil)
	if !errors.Is(err, rotator.ErrAllKeysRateLimited) {
		t.Fatalf("err = %v (%T), want ErrAllKeysRateLimited through the SDK", err, err)
	}
	if got := e.stats(t).Keys["l0"].Requests; got != 1 {
		t.Fatalf("the emulator saw %d requests, want 1", got)
	}
}

func TestTheServicesOwnErrorIsTheSDKs(t *testing.T) {
	e := startEmulator(t, 1)
	c, _ := client(t, e, 1, rotator.Config{})
	_, err := c.Models.GenerateContent(context.Background(), "gemini-1.0-pro", genai.Text(five), nil)
	var api genai.APIError
	if !errors.As(err, &api) || api.Code != 404 {
		t.Fatalf("err = %v (%T), want the SDK's APIError 404", err, err)
	}
}

func TestGenerateContentStream(t *testing.T) {
	e := startEmulator(t, 2, map[string]any{"label": "l0", "kind": "quota_minute", "count": 1},
		map[string]any{"label": "l1", "kind": "stream_error_mid", "after_events": 0, "error": "http503", "count": 1})
	c, _ := client(t, e, 2, rotator.Config{})
	var text strings.Builder
	events := 0
	for resp, err := range c.Models.GenerateContentStream(context.Background(), model, genai.Text(five), nil) {
		if err != nil {
			t.Fatal(err)
		}
		events++
		text.WriteString(resp.Text())
	}
	if text.String() != answer || events < 2 {
		t.Fatalf("%d events, text %q", events, text.String())
	}
}

func TestStreamErrorAfterTheFirstEventIsTypedAndNotRetried(t *testing.T) {
	e := startEmulator(t, 2, map[string]any{"label": "l0", "kind": "stream_error_mid", "after_events": 2, "error": "http503", "count": 1},
		map[string]any{"label": "l1", "kind": "stream_error_mid", "after_events": 2, "error": "http503", "count": 1})
	c, _ := client(t, e, 2, rotator.Config{})
	events := 0
	var last error
	for _, err := range c.Models.GenerateContentStream(context.Background(), model, genai.Text(five), nil) {
		if err != nil {
			last = err
			break
		}
		events++
	}
	var api *rotator.APIError
	if events != 2 || !errors.As(last, &api) || api.StatusCode != 503 {
		t.Fatalf("%d events then %v (%T)", events, last, last)
	}
	s := e.stats(t)
	if s.Keys["l0"].Requests+s.Keys["l1"].Requests != 1 {
		t.Fatalf("retried after the first event: %+v", s)
	}
}

func TestCountTokensAndEmbedContent(t *testing.T) {
	e := startEmulator(t, 2)
	c, _ := client(t, e, 2, rotator.Config{})
	tokens, err := c.Models.CountTokens(context.Background(), model, genai.Text(five), nil)
	if err != nil || tokens.TotalTokens != 5 {
		t.Fatalf("%v %v", tokens, err)
	}
	emb, err := c.Models.EmbedContent(context.Background(), "gemini-embedding-001", genai.Text("a b"), nil)
	if err != nil || len(emb.Embeddings) != 1 || len(emb.Embeddings[0].Values) == 0 {
		t.Fatalf("%v %v", emb, err)
	}
	s := e.stats(t)
	if s.Keys["l0"].OK != 1 || s.Keys["l1"].OK != 1 {
		t.Fatalf("not one on each key: %+v", s)
	}
}
