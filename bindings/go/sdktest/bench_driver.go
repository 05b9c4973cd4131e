//go:build ignore

// bench_driver runs the benchmarks of bench_test.go in interleaved rounds and prints markdown:
// per round, every benchmark once, each in a process of its own, the order rotating from round
// to round; a comparison's ratio is taken within a round (the pool's p50-ns over the plain
// client's) and reported as the median and 25th-75th percentile over rounds.
//
//	cd bindings/go/sdktest && go run bench_driver.go [-rounds 5] [-benchtime 1s] [-bin sdktest.test]
//
// Without -bin it builds the test binary (go test -c) into a temporary directory. The
// benchmarks find the emulator as the tests do ($GEMINI_EMULATOR_BIN, else the release build).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// comparisons: the pool's benchmark, the plain one (the baseline), what they time.
var comparisons = []struct{ title, pool, plain string }{
	{"GenerateContent, latency", "SDKGenerateContentPool", "SDKGenerateContentPlain"},
	{"GenerateContentStream, time to first event", "SDKStreamFirstEventPool", "SDKStreamFirstEventPlain"},
	{"no SDK: a POST of the same body, latency", "PostPool", "PostPlain"},
}

// result is one benchmark's line: its metrics by unit (ns/op, p50-ns, B/op, allocs/op).
type result map[string]float64

var benchLine = regexp.MustCompile(`^Benchmark(\w+?)(?:-\d+)?\s+\d+\s+(.*)$`)
var metric = regexp.MustCompile(`([\d.]+) (\S+)`)

func main() {
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	benchtime := flag.String("benchtime", "1s", "-test.benchtime of each benchmark")
	bin := flag.String("bin", "", "the test binary (default: built with go test -c)")
	heading := flag.String("heading", "go-genai on the pool's HTTPClient vs alone", "the markdown heading")
	flag.Parse()
	if *rounds < 1 {
		fail("-rounds must be at least 1, not %d", *rounds)
	}
	if *bin == "" {
		dir, err := os.MkdirTemp("", "sdktest-bench")
		if err != nil {
			fail("%v", err)
		}
		defer os.RemoveAll(dir)
		*bin = filepath.Join(dir, "sdktest.test")
		if out, err := exec.Command("go", "test", "-c", "-o", *bin, ".").CombinedOutput(); err != nil {
			fail("go test -c: %v\n%s", err, out)
		}
	}

	var names []string
	for _, c := range comparisons {
		names = append(names, c.pool, c.plain)
	}
	results := map[string][]result{} // by benchmark, one per round
	for round := 0; round < *rounds; round++ {
		for j := range names {
			name := names[(round+j)%len(names)]
			results[name] = append(results[name], run(*bin, name, *benchtime))
		}
	}

	fmt.Printf("## %s\n\n", *heading)
	fmt.Printf("bindings/go/sdktest: %s, go-genai %s; %d interleaved rounds, each benchmark once "+
		"per round in a process of its own (`-test.benchtime %s`), the order rotating every round. "+
		"p50: the median of a run's calls (for streams: of the time to the first event); ns/op: "+
		"the mean of whole calls (streams read to their end). The pool holds 4 keys, the plain "+
		"client uses one. Ratio: the pool's p50 over the plain client's in the same round, median "+
		"[25th – 75th percentile] over rounds.\n\n", runtime.Version(), genaiVersion(), *rounds, *benchtime)
	fmt.Println("| benchmark | p50 µs (median, min – max) | ns/op | B/op | allocs/op |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: |")
	for _, name := range names {
		p50 := column(results[name], "p50-ns")
		fmt.Printf("| Benchmark%s | %.1f (%.1f – %.1f) | %.0f | %.0f | %.0f |\n", name,
			median(p50)/1e3, slices.Min(p50)/1e3, slices.Max(p50)/1e3,
			median(column(results[name], "ns/op")), median(column(results[name], "B/op")),
			median(column(results[name], "allocs/op")))
	}
	fmt.Println("\n| comparison | pool / plain | rounds |")
	fmt.Println("| --- | ---: | ---: |")
	for _, c := range comparisons {
		pool, plain := column(results[c.pool], "p50-ns"), column(results[c.plain], "p50-ns")
		ratios := make([]float64, len(pool))
		for i := range pool {
			ratios[i] = pool[i] / plain[i]
		}
		fmt.Printf("| %s | %.3f [%.3f – %.3f] | %d |\n", c.title, median(ratios),
			quantile(ratios, 0.25), quantile(ratios, 0.75), len(ratios))
	}
}

// run runs one benchmark in a process of its own and returns its metrics.
func run(bin, name, benchtime string) result {
	cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", "^Benchmark"+name+"$",
		"-test.benchtime", benchtime, "-test.benchmem")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		fail("Benchmark%s: %v\n%s", name, err, out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if m := benchLine.FindStringSubmatch(line); m != nil && m[1] == name {
			r := result{}
			for _, kv := range metric.FindAllStringSubmatch(m[2], -1) {
				r[kv[2]], _ = strconv.ParseFloat(kv[1], 64)
			}
			if _, ok := r["p50-ns"]; !ok {
				fail("Benchmark%s reported no p50-ns: %q", name, line)
			}
			return r
		}
	}
	fail("Benchmark%s printed no result:\n%s", name, out.String())
	return nil
}

func column(rs []result, unit string) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r[unit]
	}
	return out
}

func median(xs []float64) float64 { return quantile(xs, 0.5) }

// quantile interpolates between the order statistics (as Python's statistics.quantiles with
// method="inclusive", which the Python benchmarks use).
func quantile(xs []float64, q float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	if lo+1 >= len(s) {
		return s[lo]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}

// genaiVersion is the go-genai version the module requires.
func genaiVersion() string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "google.golang.org/genai").Output()
	if err != nil {
		return "(unknown)"
	}
	return strings.TrimSpace(string(out))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench_driver: "+format+"\n", args...)
	os.Exit(1)
}
