// Command goworker is the Go worker of the cross-language process tests (tests/cross). Every
// mode configures its pool from the environment (rotator.NewKeyPoolFromEnv).
//
//	goworker run GOROUTINES START_MS DEADLINE_MS MAX_WAIT_MS PROGRESS RESULT
//	    GOROUTINES goroutines wait until START_MS (Unix time, ms), then call the pool until
//	    DEADLINE_MS, each call waiting at most min(MAX_WAIT_MS, DEADLINE_MS - now) for a key.
//	    The time budget is the pool's (GEMINI_TIMEOUT_MS): the context is never cancelled, so a
//	    call that returns an error really failed. The prompt names the process, goroutine and
//	    call ("p<pid> t<goroutine> n<seq>") and the answer must echo it. Each success appends
//	    "<fingerprint> <goroutine> <seq>\n" to PROGRESS with one write on an O_APPEND file;
//	    RESULT receives {"lang","pid","calls","ok","exhausted","errors","first_error"} at the end.
//	goworker stats
//	    prints {"Stats": KeyPool.Stats(), "Buckets": [{"UpperBound": "0.005", "Count": n}, ...]}
//	    as JSON (the Go field names; the latency buckets apart, since JSON has no +Inf).
//	goworker pool-new
//	    prints "<errors.Is(err, ErrState)> <errors.Is(err, ErrConfig)>\n<err>\n" ("ok" when the
//	    pool was created).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	rotator "gemini-rotator/bindings/go"
)

func main() {
	if len(os.Args) < 2 {
		fail(2, "usage: goworker run|stats|pool-new ...")
	}
	switch os.Args[1] {
	case "run":
		run(os.Args[2:])
	case "stats":
		stats()
	case "pool-new":
		poolNew()
	default:
		fail(2, "unknown mode %q", os.Args[1])
	}
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "goworker: "+format+"\n", args...)
	os.Exit(code)
}

func number(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		fail(2, "not a number: %q", s)
	}
	return n
}

type result struct {
	Lang       string `json:"lang"`
	PID        int    `json:"pid"`
	Calls      int64  `json:"calls"`
	OK         int64  `json:"ok"`
	Exhausted  int64  `json:"exhausted"`
	Errors     int64  `json:"errors"`
	FirstError string `json:"first_error"`
}

func run(args []string) {
	if len(args) != 6 {
		fail(2, "usage: goworker run GOROUTINES START_MS DEADLINE_MS MAX_WAIT_MS PROGRESS RESULT")
	}
	goroutines := int(number(args[0]))
	start, deadline, maxWait := number(args[1]), number(args[2]), number(args[3])
	progress, err := os.OpenFile(args[4], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fail(3, "progress: %v", err)
	}
	pool, err := rotator.NewKeyPoolFromEnv()
	if err != nil {
		fail(3, "NewKeyPoolFromEnv: %v", err)
	}
	defer pool.Close()

	res := result{Lang: "go", PID: os.Getpid()}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			client := rotator.NewGeminiClient(pool) // one per goroutine: MaxWait changes per call
			time.Sleep(time.Until(time.UnixMilli(start)))
			var calls, ok, exhausted, errs int64
			var first string
			for seq := 0; ; seq++ {
				left := deadline - time.Now().UnixMilli()
				if left <= 0 {
					break
				}
				client.MaxWait = time.Duration(min(left, maxWait)) * time.Millisecond
				text := fmt.Sprintf("p%d t%d n%d", res.PID, g, seq)
				body := fmt.Sprintf(`{"contents":[{"parts":[{"text":%q}]}]}`, text)
				calls++
				raw, fp, err := client.GenerateContentJSON(context.Background(), "", []byte(body))
				switch {
				case err == nil && strings.Contains(string(raw), `"echo: `+text+`"`):
					line := fmt.Sprintf("%s %d %d\n", fp, g, seq)
					if _, werr := progress.Write([]byte(line)); werr != nil {
						fail(4, "progress: %v", werr)
					}
					ok++
				case errors.Is(err, rotator.ErrAllKeysRateLimited):
					// No key frees before the deadline (or within the wait): sleep until one does.
					exhausted++
					var limited *rotator.RateLimitError
					if errors.As(err, &limited) {
						time.Sleep(min(limited.RetryAfter, time.Until(time.UnixMilli(deadline))))
					}
				default:
					errs++
					if first == "" {
						if err == nil {
							err = errors.New("the answer does not echo the prompt")
						}
						first = err.Error()
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.Calls += calls
			res.OK += ok
			res.Exhausted += exhausted
			res.Errors += errs
			if res.FirstError == "" {
				res.FirstError = first
			}
		}(g)
	}
	wg.Wait()
	progress.Close()
	data, _ := json.Marshal(res)
	tmp := args[5] + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		fail(3, "result: %v", err)
	}
	if err := os.Rename(tmp, args[5]); err != nil {
		fail(3, "result: %v", err)
	}
}

func stats() {
	pool, err := rotator.NewKeyPoolFromEnv()
	if err != nil {
		fail(3, "NewKeyPoolFromEnv: %v", err)
	}
	defer pool.Close()
	s, err := pool.Stats()
	if err != nil {
		fail(3, "Stats: %v", err)
	}
	// JSON has no +Inf: the latency buckets go apart, their bounds as strings.
	type bucket struct {
		UpperBound string
		Count      uint64
	}
	var buckets []bucket
	for _, b := range s.Pool.Latency.Buckets {
		buckets = append(buckets, bucket{strconv.FormatFloat(b.UpperBound, 'g', -1, 64), b.Count})
	}
	s.Pool.Latency.Buckets = nil
	data, err := json.Marshal(struct {
		Stats   *rotator.Stats
		Buckets []bucket
	}{s, buckets})
	if err != nil {
		fail(3, "encoding: %v", err)
	}
	fmt.Println(string(data))
}

func poolNew() {
	pool, err := rotator.NewKeyPoolFromEnv()
	if err == nil {
		pool.Close()
		fmt.Println("ok")
		return
	}
	fmt.Printf("%v %v\n%v\n", errors.Is(err, rotator.ErrState), errors.Is(err, rotator.ErrConfig), err)
}
