package rotator

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// A pool on a Redis server that does not answer is made (it works once Redis is up), and a
// call fails promptly with ErrStateUnavailable naming the address, never the password.
func TestUnreachableRedisIsErrStateUnavailable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	pool, err := NewKeyPool(Config{
		FreeKeys: []string{"go-redis-state-test-key"},
		BaseURL:  "http://127.0.0.1:9",
		State:    "redis://:go-pw-secret@" + addr + "/0",
	})
	if err != nil {
		t.Fatalf("a pool on an unreachable Redis must be made: %v", err)
	}
	defer pool.Close()
	started := time.Now()
	_, err = NewGeminiClient(pool).SimpleTextQuery(context.Background(), "hello")
	if !errors.Is(err, ErrStateUnavailable) || !errors.Is(err, ErrState) {
		t.Fatalf("want ErrStateUnavailable, got %v", err)
	}
	if !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "go-pw-secret") {
		t.Fatalf("the error must name %s and not the password: %v", addr, err)
	}
	if d := time.Since(started); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
}

// A malformed Redis URL is a configuration error naming the setting, without the password.
func TestBadRedisURLNamesTheSetting(t *testing.T) {
	t.Parallel()
	_, err := NewKeyPool(Config{
		FreeKeys: []string{"go-redis-state-test-key-2"},
		State:    "redis://:go-pw-secret@127.0.0.1:99999/0",
	})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "Config.State") ||
		strings.Contains(err.Error(), "go-pw-secret") {
		t.Fatalf("want a configuration error naming Config.State, got %v", err)
	}
}
