package rotator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exposition is a parsed Prometheus text exposition: each sample's value under its name and
// labels (name{a="x",b="y"}, labels sorted), and each family's TYPE.
type exposition struct {
	samples map[string]float64
	types   map[string]string
}

// sampleID is how exposition names a sample: name{labels in name order}.
func sampleID(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s=%q", n, labels[n])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// parseExposition reads the text format (version 0.0.4) strictly: any line it does not
// understand fails the test.
func parseExposition(t *testing.T, text string) exposition {
	t.Helper()
	e := exposition{samples: map[string]float64{}, types: map[string]string{}}
	if !strings.HasSuffix(text, "\n") {
		t.Errorf("the exposition does not end with a newline")
	}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(why string) { t.Fatalf("line %d %q: %s", i+1, line, why) }
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, kind, ok := strings.Cut(rest, " ")
			if !ok || e.types[name] != "" {
				fail("bad or repeated TYPE")
			}
			e.types[name] = kind
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			fail("unexpected line")
		}
		name, labels, value := line, map[string]string{}, ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name = line[:i]
			rest, err := parseLabels(line[i+1:], labels)
			if err != nil {
				fail(err.Error())
			}
			value = strings.TrimPrefix(rest, " ")
		} else {
			name, value, _ = strings.Cut(line, " ")
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			fail("bad value")
		}
		id := sampleID(name, labels)
		if _, dup := e.samples[id]; dup {
			fail("repeated sample")
		}
		e.samples[id] = v
	}
	return e
}

// parseLabels reads `a="x",b="y"}` into labels and returns what follows the brace.
func parseLabels(s string, labels map[string]string) (string, error) {
	for {
		if rest, ok := strings.CutPrefix(s, "}"); ok {
			return rest, nil
		}
		name, rest, ok := strings.Cut(s, "=\"")
		if !ok {
			return "", errors.New("bad label")
		}
		var value strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				if rest[i] == 'n' {
					value.WriteByte('\n')
					continue
				}
			}
			value.WriteByte(rest[i])
		}
		if i == len(rest) {
			return "", errors.New("unterminated label value")
		}
		labels[strings.TrimPrefix(name, ",")] = value.String()
		s = strings.TrimPrefix(rest[i+1:], ",")
	}
}

// family is the family a sample name belongs to (histogram samples carry suffixes).
func (e exposition) family(sample string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(sample, suffix); ok && e.types[base] == "histogram" {
			return base
		}
	}
	return sample
}

// value is a sample's value, failing the test when it is missing.
func (e exposition) value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := e.samples[sampleID(name, labels)]
	if !ok {
		t.Fatalf("the exposition has no sample %s", sampleID(name, labels))
	}
	return v
}

func keyLabels(k testKey, tier string) map[string]string {
	return map[string]string{"key": k.Fingerprint(), "tier": tier}
}

// metricsScenario sends five calls through a pool of one free key (limit 2) and a paid key
// (limit 2): the free key serves two, the paid key two, the fifth finds every key full.
func metricsScenario(t *testing.T) (pool *KeyPool, free, paid testKey) {
	t.Helper()
	keys := newKeys(t, 2)
	free, paid = keys[0], keys[1]
	pool = newPool(t, Config{FreeKeys: []string{free.Key}, PaidKey: paid.Key, FreeRateLimit: 2, PaidRateLimit: 2, Window: time.Hour})
	client := NewGeminiClient(pool)
	for i := 0; i < 4; i++ {
		if _, err := client.SimpleTextQuery(context.Background(), fmt.Sprintf("q%d", i)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if _, err := client.SimpleTextQuery(context.Background(), "one too many"); !errors.Is(err, ErrAllKeysRateLimited) {
		t.Fatalf("fifth call: err = %v, want ErrAllKeysRateLimited", err)
	}
	return pool, free, paid
}

func TestMetricsPrometheusCountsTheCalls(t *testing.T) {
	t.Parallel()
	pool, free, paid := metricsScenario(t)

	text, err := pool.MetricsPrometheus()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []testKey{free, paid} {
		if strings.Contains(text, k.Key) {
			t.Fatalf("the exposition contains the key %s", k.Label)
		}
	}
	e := parseExposition(t, text)

	want := map[string]float64{
		sampleID("gemini_rotator_key_admitted_total", keyLabels(free, "free")):                      2,
		sampleID("gemini_rotator_key_admitted_total", keyLabels(paid, "paid")):                      2,
		sampleID("gemini_rotator_key_succeeded_total", keyLabels(free, "free")):                     2,
		sampleID("gemini_rotator_key_succeeded_total", keyLabels(paid, "paid")):                     2,
		sampleID("gemini_rotator_key_window_requests", keyLabels(free, "free")):                     2,
		sampleID("gemini_rotator_key_window_limit_requests", keyLabels(free, "free")):               2,
		sampleID("gemini_rotator_key_window_seconds", keyLabels(paid, "paid")):                      3600,
		sampleID("gemini_rotator_key_upstream_rate_limited_total", keyLabels(free, "free")):         0,
		"gemini_rotator_requests_total":                                                             5,
		"gemini_rotator_requests_succeeded_total":                                                   4,
		"gemini_rotator_requests_failed_total":                                                      1,
		"gemini_rotator_paid_fallbacks_total":                                                       2,
		"gemini_rotator_exhausted_total":                                                            1,
		"gemini_rotator_upstream_latency_seconds_count":                                             4,
		sampleID("gemini_rotator_upstream_latency_seconds_bucket", map[string]string{"le": "+Inf"}): 4,
	}
	for id, v := range want {
		got, ok := e.samples[id]
		if !ok {
			t.Errorf("missing sample %s", id)
		} else if got != v {
			t.Errorf("%s = %v, want %v", id, got, v)
		}
	}
	disabled := keyLabels(free, "free")
	disabled["reason"] = "none"
	if v := e.value(t, "gemini_rotator_key_disabled", disabled); v != 0 {
		t.Errorf("the free key is reported disabled: %v", v)
	}

	// Every sample belongs to a declared family; counters are named _total; every key label
	// is one of the pool's fingerprints.
	fingerprints := map[string]bool{free.Fingerprint(): true, paid.Fingerprint(): true}
	for id := range e.samples {
		name, labels, _ := strings.Cut(id, "{")
		kind := e.types[e.family(name)]
		if kind == "" {
			t.Errorf("sample %s has no TYPE", id)
		}
		if kind == "counter" && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s is not named _total", name)
		}
		if _, fp, ok := strings.Cut(labels, `key="`); ok && !fingerprints[fp[:12]] {
			t.Errorf("sample %s names a key that is not the pool's", id)
		}
	}

	// The figures agree with Stats.
	stats := poolStats(t, pool)
	if ks := stats.Key(free.Fingerprint()); ks == nil || float64(ks.Refused) != e.value(t, "gemini_rotator_key_local_refusals_total", keyLabels(free, "free")) {
		t.Errorf("local refusals differ from Stats: %+v", ks)
	}
}

func TestMetricsHandlerServesTheExposition(t *testing.T) {
	t.Parallel()
	pool, free, _ := metricsScenario(t)
	server := httptest.NewServer(pool.MetricsHandler())
	defer server.Close()

	resp, err := http.Get(server.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %s: %s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	e := parseExposition(t, string(body))
	if v := e.value(t, "gemini_rotator_key_admitted_total", keyLabels(free, "free")); v != 2 {
		t.Errorf("admitted by the free key = %v, want 2", v)
	}
	if v := e.value(t, "gemini_rotator_requests_total", nil); v != 5 {
		t.Errorf("requests = %v, want 5", v)
	}

	resp, err = http.Head(server.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != MetricsContentType {
		t.Errorf("HEAD: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}

	resp, err = http.Post(server.URL+"/metrics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %s, Allow %q; want 405 with Allow: GET, HEAD", resp.Status, resp.Header.Get("Allow"))
	}

	pool.Close()
	resp, err = http.Get(server.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET after Close: %s, want 503", resp.Status)
	}
	if _, err := pool.MetricsPrometheus(); !errors.Is(err, ErrClosed) {
		t.Errorf("MetricsPrometheus after Close: err = %v, want ErrClosed", err)
	}
}
