package rotator

// The test harness: one gemini-emulator process for the whole test binary, started by
// TestMain, and helpers that give every test its own keys (key state is per key and shared by
// every pool in the process, so tests never share a key).

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// emu is the emulator every test talks to.
var emu *emulator

// envKeys are the keys NewKeyPoolFromEnv sees (the examples use them).
var envKeys []string

// testState is the key-state store of this test run: a shared-memory state file of its own,
// so that the run neither fills nor reads the host's default one.
var testState string

func TestMain(m *testing.M) {
	var err error
	emu, err = startEmulator()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start the Gemini emulator:", err)
		os.Exit(1)
	}
	if err := setTestEnvironment(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot set up the environment:", err)
		emu.stop()
		os.Exit(1)
	}
	stateDir, err := os.MkdirTemp("", "rotator-go-state")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot make a state directory:", err)
		emu.stop()
		os.Exit(1)
	}
	testState = "shm:" + filepath.Join(stateDir, "gemini-rotator.state")
	os.Setenv("GEMINI_ROTATOR_STATE", testState)
	code := m.Run()
	emu.stop()
	os.RemoveAll(stateDir)
	os.Exit(code)
}

// setTestEnvironment points NewKeyPoolFromEnv at the emulator, with keys of this run only. Any
// GEMINI_* variable of the developer's shell is cleared first, so no test can reach the real
// service.
func setTestEnvironment() error {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "GEMINI_") && name != "GEMINI_EMULATOR_BIN" {
			os.Unsetenv(name)
		}
	}
	id := uniqueID()
	for i := 0; i < 2; i++ {
		key := fmt.Sprintf("env-key-%s-%d", id, i)
		if err := emu.addKey(emuKey{Key: key, Label: fmt.Sprintf("env-%s-%d", id, i)}); err != nil {
			return err
		}
		envKeys = append(envKeys, key)
	}
	os.Setenv("GEMINI_FREE_KEYS", strings.Join(envKeys, ","))
	os.Setenv("GEMINI_BASE_URL", emu.url)
	os.Setenv("GEMINI_RETRY_BASE_MS", "1")
	os.Setenv("GEMINI_RETRY_MAX_MS", "5")
	return nil
}

type emulator struct {
	url   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// emulatorBinary is $GEMINI_EMULATOR_BIN, or the one `cargo build --release --workspace` makes.
func emulatorBinary() string {
	if bin := os.Getenv("GEMINI_EMULATOR_BIN"); bin != "" {
		return bin
	}
	return filepath.Join("..", "..", "target", "release", "gemini-emulator")
}

func startEmulator() (*emulator, error) {
	bin := emulatorBinary()
	dir, err := os.MkdirTemp("", "rotator-go-test")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	config := filepath.Join(dir, "emulator.json")
	if err := os.WriteFile(config, []byte(`{"keys":[],"worker_threads":4,"record_bodies":true}`), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config", config, "--exit-on-stdin-eof")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // the emulator exits when this test process does
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w (build it with `cargo build --release --workspace`, or set GEMINI_EMULATOR_BIN)", bin, err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("%s printed no address: %w", bin, err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		cmd.Process.Kill()
		return nil, fmt.Errorf("%s printed %q, not its address", bin, line)
	}
	return &emulator{url: url, cmd: cmd, stdin: stdin}, nil
}

func (e *emulator) stop() {
	e.stdin.Close()
	done := make(chan struct{})
	go func() { e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		e.cmd.Process.Kill()
		<-done
	}
}

// emuKey is the emulator's key spec. Quotas belong to the key's project (its label when
// Project is ""), per model: every key of a project must carry the same quota fields.
type emuKey struct {
	Key        string `json:"key"`
	Label      string `json:"label"`
	Project    string `json:"project,omitempty"`
	Limit      *int   `json:"limit"`
	WindowMS   int    `json:"window_ms,omitempty"`
	DailyLimit *int   `json:"daily_limit,omitempty"`
	TokenLimit *int64 `json:"token_limit,omitempty"`
	// Models overrides the quotas above per model (a limit of 0: not on the project's tier).
	Models map[string]emuModelLimits `json:"models,omitempty"`
}

// emuModelLimits is one model's quotas in an emuKey (nil: the key's own field).
type emuModelLimits struct {
	Limit      *int   `json:"limit,omitempty"`
	DailyLimit *int   `json:"daily_limit,omitempty"`
	TokenLimit *int64 `json:"token_limit,omitempty"`
}

// emuFault is the emulator's fault spec.
type emuFault struct {
	Label      string `json:"label,omitempty"`
	Kind       string `json:"kind"`
	Count      int    `json:"count,omitempty"`
	Skip       int    `json:"skip,omitempty"`
	LatencyMS  int    `json:"latency_ms,omitempty"`
	RetryDelay string `json:"retry_delay,omitempty"`
	// Model restricts the fault to one model.
	Model string `json:"model,omitempty"`
	// Streams and other methods (see emulator/README.md, Faults).
	Method      string `json:"method,omitempty"`
	GapMS       int    `json:"gap_ms,omitempty"`
	AfterEvents *int   `json:"after_events,omitempty"`
	StallMS     int    `json:"stall_ms,omitempty"`
	Error       string `json:"error,omitempty"`
}

type emuKeyStats struct {
	Project     string         `json:"project"`
	Requests    int            `json:"requests"`
	OK          int            `json:"ok"`
	RateLimited int            `json:"rate_limited"`
	Injected    int            `json:"injected"`
	ByStatus    map[string]int `json:"by_status"`
}

// emuProjectModel is what the emulator counted for one (project, model).
type emuProjectModel struct {
	Requests    int `json:"requests"`
	OK          int `json:"ok"`
	RateLimited int `json:"rate_limited"`
	InWindow    int `json:"in_window"`
	Today       int `json:"today"`
}

type emuProject struct {
	Keys   []string                   `json:"keys"`
	Models map[string]emuProjectModel `json:"models"`
}

type emuStats struct {
	OpenStreams int                    `json:"open_streams"`
	Total       int                    `json:"total"`
	UnknownKey  int                    `json:"unknown_key"`
	Keys        map[string]emuKeyStats `json:"keys"`
	Projects    map[string]emuProject  `json:"projects"`
}

func (e *emulator) post(path string, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := http.Post(e.url+path, "application/json", bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, answer)
	}
	return nil
}

func (e *emulator) addKey(k emuKey) error { return e.post("/_emulator/keys", k) }

func (e *emulator) get(t testing.TB, path string) []byte {
	t.Helper()
	resp, err := http.Get(e.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body
}

// lastBody is the last request body the emulator received with this key.
func (e *emulator) lastBody(t testing.TB, k testKey) []byte {
	t.Helper()
	return e.get(t, "/_emulator/last_body?label="+url.QueryEscape(k.Label))
}

type emuLogEntry struct {
	Label   *string `json:"label"`
	Project *string `json:"project"`
	Status  int     `json:"status"`
	Model   string  `json:"model"`
	Method  string  `json:"method"`
	Fault   *string `json:"fault"`
}

// log is the emulator's request log, restricted to these keys.
func (e *emulator) log(t testing.TB, keys ...testKey) []emuLogEntry {
	t.Helper()
	var all []emuLogEntry
	if err := json.Unmarshal(e.get(t, "/_emulator/log"), &all); err != nil {
		t.Fatal(err)
	}
	var mine []emuLogEntry
	for _, entry := range all {
		for _, k := range keys {
			if entry.Label != nil && *entry.Label == k.Label {
				mine = append(mine, entry)
			}
		}
	}
	return mine
}

func (e *emulator) stats(t testing.TB) emuStats {
	t.Helper()
	var s emuStats
	if err := json.Unmarshal(e.get(t, "/_emulator/stats"), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// keyStats is the emulator's counters of one key (zero if it saw none of its requests).
func (e *emulator) keyStats(t testing.TB, k testKey) emuKeyStats {
	t.Helper()
	return e.stats(t).Keys[k.Label]
}

// uniqueID tells this run's keys from any other's.
func uniqueID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// testKey is one API key of one test: the secret, and the label the emulator shows it under.
type testKey struct {
	Key   string
	Label string
}

// Fingerprint is the key's fingerprint.
func (k testKey) Fingerprint() string { return Fingerprint(k.Key) }

// newKeys makes n keys unique to this test and run, known to the emulator, with no limit there.
func newKeys(t testing.TB, n int) []testKey {
	t.Helper()
	return newLimitedKeys(t, n, nil, 0)
}

// newLimitedKeys is newKeys with an emulator-side limit per window.
func newLimitedKeys(t testing.TB, n int, limit *int, windowMS int) []testKey {
	t.Helper()
	return newKeysLike(t, n, emuKey{Limit: limit, WindowMS: windowMS})
}

// newKeysLike makes n keys unique to this test, known to the emulator with spec's project and
// quotas (its Key and Label are filled in per key).
func newKeysLike(t testing.TB, n int, spec emuKey) []testKey {
	t.Helper()
	keys := unknownKeys(t, n)
	for _, k := range keys {
		spec.Key, spec.Label = k.Key, k.Label
		if err := emu.addKey(spec); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// uniqueProject is a project name of this test and run alone: the pool's quota records belong
// to (project, model) in the state file every test of the run shares, and the emulator's to
// (project, model) too.
func uniqueProject() string {
	return "p-" + uniqueID()
}

// unknownKeys makes n keys unique to this test that the emulator does not know (it answers
// them with 400 API_KEY_INVALID).
func unknownKeys(t testing.TB, n int) []testKey {
	t.Helper()
	id := uniqueID()
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	keys := make([]testKey, n)
	for i := range keys {
		keys[i] = testKey{
			Key:   fmt.Sprintf("key-%s-%s-%d", name, id, i),
			Label: fmt.Sprintf("%s-%s-%d", name, id, i),
		}
	}
	return keys
}

// addFault injects a fault; tests always give a label, so that faults stay within the test.
func addFault(t testing.TB, f emuFault) {
	t.Helper()
	if f.Label == "" {
		t.Fatal("a fault without a label would hit other tests")
	}
	if err := emu.post("/_emulator/faults", f); err != nil {
		t.Fatal(err)
	}
}

func secrets(keys []testKey) []string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = k.Key
	}
	return s
}

// newPool makes a pool against the emulator with fast retries, closed when the test ends.
func newPool(t testing.TB, cfg Config) *KeyPool {
	t.Helper()
	if cfg.BaseURL == "" {
		cfg.BaseURL = emu.url
	}
	if cfg.State == "" {
		cfg.State = testState
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 5 * time.Millisecond
	}
	p, err := NewKeyPool(cfg)
	if err != nil {
		t.Fatalf("NewKeyPool: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// poolStats is p.Stats() or a fatal error.
func poolStats(t testing.TB, p *KeyPool) *Stats {
	t.Helper()
	s, err := p.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// keyStats is the pool's statistics of one key.
func keyStats(t testing.TB, p *KeyPool, k testKey) *KeyStats {
	t.Helper()
	ks := poolStats(t, p).Key(k.Fingerprint())
	if ks == nil {
		t.Fatalf("Stats has no key %s", k.Fingerprint())
	}
	return ks
}

func prompt(text string) *GeminiRequest {
	return &GeminiRequest{Contents: []GeminiContent{{Role: "user", Parts: []GeminiPart{{Text: text}}}}}
}
