// Command redis_rate measures go-redis/redis_rate (GCRA, approximate: up to about twice the
// limit in a rolling window when burst = rate) against a Redis server, for the side-by-side
// table of BENCHMARKS.md: one Allow sequentially, and Allow from 8 goroutines.
// Run by benches/redis.rs against the server it started: go run . -addr 127.0.0.1:PORT
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

func main() {
	addr := flag.String("addr", "", "host:port of the Redis server")
	n := flag.Int("n", 20000, "calls in the sequential run")
	flag.Parse()
	if *addr == "" {
		fmt.Fprintln(os.Stderr, "redis_rate: -addr host:port is required")
		os.Exit(2)
	}
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: *addr, PoolSize: 16})
	defer rdb.Close()
	limiter := redis_rate.NewLimiter(rdb)
	// A limit that never refuses: the cost of the check itself, as for our admission.
	limit := redis_rate.PerSecond(1_000_000_000)
	for i := 0; i < 1000; i++ { // warm-up: connections, script cache
		if _, err := limiter.Allow(ctx, "bench:warm", limit); err != nil {
			fmt.Fprintln(os.Stderr, "redis_rate:", err)
			os.Exit(1)
		}
	}
	start := time.Now()
	for i := 0; i < *n; i++ {
		if _, err := limiter.Allow(ctx, "bench:one", limit); err != nil {
			fmt.Fprintln(os.Stderr, "redis_rate:", err)
			os.Exit(1)
		}
	}
	seq := time.Since(start)
	const threads = 8
	per := *n / 2
	var wg sync.WaitGroup
	start = time.Now()
	for g := 0; g < threads; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if _, err := limiter.Allow(ctx, "bench:eight", limit); err != nil {
					fmt.Fprintln(os.Stderr, "redis_rate:", err)
					os.Exit(1)
				}
			}
		}()
	}
	wg.Wait()
	par := time.Since(start)
	fmt.Printf("redis_rate Allow, 1 goroutine: %.1f µs per call\n",
		float64(seq.Microseconds())/float64(*n))
	fmt.Printf("redis_rate Allow, 8 goroutines: %.0f calls/s\n",
		float64(threads*per)/par.Seconds())
}
