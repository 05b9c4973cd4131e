package sdktest

// Benchmarks (run with -bench; never by the plain test command): what the pool's HTTPClient
// costs under go-genai, against go-genai alone with a plain *http.Client and one key, the same
// emulator (4 keys it never limits) and the same calls. Each benchmark also reports "p50-ns",
// the median of its timed quantity: a call's latency, or for the streams the time to the first
// event (every stream is then read to its end, so connections are reused alike).
// bench_driver.go runs them in interleaved rounds and reports the ratios:
//
//	cd bindings/go/sdktest && go run bench_driver.go -rounds 5

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	rotator "gemini-rotator/bindings/go"
	"google.golang.org/genai"
)

const (
	benchModel  = "gemini-3.6-flash"
	benchPrompt = "Your prompt here"
	benchAnswer = "echo: Your prompt here"
	benchKeys   = 4
)

// benchService is one emulator per benchmark process, with benchKeys unlimited keys whose
// secrets are unique to the process (key state is host-wide). It exits with the process (its
// stdin is a pipe this process holds).
var benchService = sync.OnceValues(func() (*benchEmulator, error) {
	secrets := make([]string, benchKeys)
	keys := make([]map[string]any, benchKeys)
	for i := range secrets {
		secrets[i] = fmt.Sprintf("bench-sdk-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), i)
		keys[i] = map[string]any{"key": secrets[i], "label": fmt.Sprintf("k%d", i), "limit": nil}
	}
	config, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rotator-sdk-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // the emulator has read its configuration once it prints its address
	path := filepath.Join(dir, "emulator.json")
	if err := os.WriteFile(path, config, 0o600); err != nil {
		return nil, err
	}
	bin := os.Getenv("GEMINI_EMULATOR_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "..", "target", "release", "gemini-emulator")
	}
	cmd := exec.Command(bin, "--config", path, "--exit-on-stdin-eof")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w (cargo build --release --workspace, or set GEMINI_EMULATOR_BIN)", bin, err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		cmd.Process.Kill()
		return nil, fmt.Errorf("%s printed %q, not its address", bin, line)
	}
	return &benchEmulator{url: url, secrets: secrets, stdin: stdin}, nil
})

type benchEmulator struct {
	url     string
	secrets []string
	stdin   io.WriteCloser // held, never closed: the emulator exits when this process does
}

func service(b *testing.B) *benchEmulator {
	e, err := benchService()
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// poolClient is an *http.Client on a pool of the emulator's keys, limits far above the run's.
func poolClient(b *testing.B, e *benchEmulator) *http.Client {
	pool, err := rotator.NewKeyPool(rotator.Config{
		FreeKeys: e.secrets, BaseURL: e.url, Model: benchModel,
		FreeRateLimit: 100_000, Window: time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pool.Close() })
	return pool.HTTPClient()
}

// sdk is go-genai on the pool (the one line), or alone: a plain *http.Client and the
// first key.
func sdk(b *testing.B, onPool bool) *genai.Client {
	e := service(b)
	cfg := &genai.ClientConfig{APIKey: e.secrets[0], Backend: genai.BackendGeminiAPI,
		HTTPClient: &http.Client{}, HTTPOptions: genai.HTTPOptions{BaseURL: e.url}}
	if onPool {
		cfg.APIKey, cfg.HTTPClient = "placeholder-never-sent", poolClient(b, e)
	}
	c, err := genai.NewClient(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// timings collects the timed quantity of every iteration and reports its median as "p50-ns".
type timings []time.Duration

func (t *timings) report(b *testing.B) {
	b.StopTimer()
	slices.Sort(*t)
	b.ReportMetric(float64((*t)[len(*t)/2].Nanoseconds()), "p50-ns")
}

func benchGenerateContent(b *testing.B, onPool bool) {
	c := sdk(b, onPool)
	ctx, contents := context.Background(), genai.Text(benchPrompt)
	t := make(timings, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		started := time.Now()
		resp, err := c.Models.GenerateContent(ctx, benchModel, contents, nil)
		t = append(t, time.Since(started))
		if err != nil || resp.Text() != benchAnswer {
			b.Fatalf("%v, %v", resp, err)
		}
	}
	t.report(b)
}

func BenchmarkSDKGenerateContentPool(b *testing.B)  { benchGenerateContent(b, true) }
func BenchmarkSDKGenerateContentPlain(b *testing.B) { benchGenerateContent(b, false) }

func benchStreamFirstEvent(b *testing.B, onPool bool) {
	c := sdk(b, onPool)
	ctx, contents := context.Background(), genai.Text(benchPrompt)
	t := make(timings, 0, b.N)
	var text strings.Builder
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		text.Reset()
		started, first := time.Now(), true
		for resp, err := range c.Models.GenerateContentStream(ctx, benchModel, contents, nil) {
			if err != nil {
				b.Fatal(err)
			}
			if first {
				t, first = append(t, time.Since(started)), false
			}
			text.WriteString(resp.Text())
		}
		if text.String() != benchAnswer {
			b.Fatalf("stream text %q", text.String())
		}
	}
	t.report(b)
}

func BenchmarkSDKStreamFirstEventPool(b *testing.B)  { benchStreamFirstEvent(b, true) }
func BenchmarkSDKStreamFirstEventPlain(b *testing.B) { benchStreamFirstEvent(b, false) }

// benchPost is the transport without the SDK: a POST of the request's JSON through the pool's
// HTTPClient, or a plain *http.Client with the first key, the answer decoded and checked (as
// the SDK does), to split the SDK's own cost from the transport's.
func benchPost(b *testing.B, onPool bool) {
	e := service(b)
	client, key := &http.Client{}, e.secrets[0]
	if onPool {
		client, key = poolClient(b, e), "placeholder-never-sent"
	}
	url := e.url + "/v1beta/models/" + benchModel + ":generateContent"
	body := []byte(`{"contents":[{"role":"user","parts":[{"text":"` + benchPrompt + `"}]}]}`)
	t := make(timings, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		started := time.Now()
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("x-goog-api-key", key)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var answer genai.GenerateContentResponse
		err = json.NewDecoder(resp.Body).Decode(&answer)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t = append(t, time.Since(started))
		if err != nil || resp.StatusCode != http.StatusOK || answer.Text() != benchAnswer {
			b.Fatalf("%s: %v", resp.Status, err)
		}
	}
	t.report(b)
}

func BenchmarkPostPool(b *testing.B)  { benchPost(b, true) }
func BenchmarkPostPlain(b *testing.B) { benchPost(b, false) }
