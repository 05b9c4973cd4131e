package rotator

// #include <stdlib.h>
// #include "gemini_rotator.h"
import "C"

import (
	"context"
	"runtime"
	"sync"
	"unsafe"
)

// KeyPool is a pool of Gemini API keys with its HTTP client. It is safe for concurrent use by
// any number of goroutines; create one per process and share it.
//
// Key state (each key's window, cooldown, disabled flag) belongs to the key, not to the pool: two
// pools in one process that share a key share its limit.
//
// Close releases the pool. A finalizer also releases a pool that was never closed, but only as a
// safety net: close pools explicitly.
type KeyPool struct {
	mu     sync.Mutex
	ptr    *C.gr_pool
	closed bool
	// calls counts the C calls running on ptr (including those abandoned by a cancelled
	// context): the pool is freed when it is closed and the last one has returned.
	calls int
}

// NewKeyPoolFromEnv creates a pool from the GEMINI_* environment variables (GEMINI_FREE_KEYS,
// GEMINI_PAID_KEY, GEMINI_FREE_RATE_LIMIT, ...). A configuration error matches [ErrConfig] and
// names the variable.
func NewKeyPoolFromEnv() (*KeyPool, error) {
	return newKeyPool(nil)
}

// NewKeyPool creates a pool from cfg; the environment is not read. A configuration error
// matches [ErrConfig] and names the [Config] field.
func NewKeyPool(cfg Config) (*KeyPool, error) {
	body, err := cfg.marshal()
	if err != nil {
		return nil, newError(ErrConfig, "encoding the configuration: %v", err)
	}
	p, err := newKeyPool(body)
	return p, configError(err)
}

func newKeyPool(configJSON []byte) (*KeyPool, error) {
	var ccfg *C.char
	if configJSON != nil {
		var err error
		if ccfg, err = cBytes(configJSON, "the configuration"); err != nil {
			return nil, err
		}
		defer C.free(unsafe.Pointer(ccfg))
	}
	var ptr *C.gr_pool
	var cerr *C.gr_error
	if status := C.gr_pool_new(ccfg, &ptr, &cerr); status != C.GR_OK {
		return nil, takeError(status, cerr, false)
	}
	p := &KeyPool{ptr: ptr}
	runtime.SetFinalizer(p, finalizeKeyPool)
	return p, nil
}

// finalizeKeyPool is the finalizer of every pool: the safety net for a pool nobody closed. (A
// variable so that a test can watch it run.)
var finalizeKeyPool = func(p *KeyPool) { p.Close() }

// KeyPool returns p itself, so that a *KeyPool is a [PoolProvider].
func (p *KeyPool) KeyPool() *KeyPool { return p }

// Close releases the pool. It is safe to call more than once and from several goroutines; it
// always returns nil. Calls made after Close fail with [ErrClosed]. Calls still running in the
// library (including those whose context was cancelled) finish first: the memory is released
// when the last one returns, without Close waiting for it.
func (p *KeyPool) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ptr := p.takeIfIdleLocked()
	p.mu.Unlock()
	runtime.SetFinalizer(p, nil)
	C.gr_pool_free(ptr)
	return nil
}

// acquire registers a call on the pool and returns the C handle, or ErrClosed.
func (p *KeyPool) acquire() (*C.gr_pool, error) {
	if p == nil {
		return nil, newError(ErrClosed, "no key pool (nil *KeyPool)")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	p.calls++
	return p.ptr, nil
}

// release ends a call registered by acquire, freeing the pool if it was the last call on a
// closed pool.
func (p *KeyPool) release() {
	p.mu.Lock()
	p.calls--
	ptr := p.takeIfIdleLocked()
	p.mu.Unlock()
	C.gr_pool_free(ptr) // NULL does nothing
}

// takeIfIdleLocked hands over the C handle for freeing once the pool is closed and idle.
func (p *KeyPool) takeIfIdleLocked() *C.gr_pool {
	if !p.closed || p.calls > 0 {
		return nil
	}
	ptr := p.ptr
	p.ptr = nil
	return ptr
}

// contextError is ctx.Err(), except that a passed deadline is an error that matches both
// context.DeadlineExceeded and ErrTimeout, as a timeout of the library itself does.
func contextError(ctx context.Context) error {
	err := ctx.Err()
	if err == context.DeadlineExceeded {
		return timeoutError()
	}
	return err
}

// timeoutError is the error of a call whose context deadline passed.
func timeoutError() error {
	return &statusError{sentinel: ErrTimeout, msg: "request timed out: the context deadline passed", cause: context.DeadlineExceeded}
}

// Stats returns a snapshot of the pool's statistics: every key (by fingerprint) with its
// limit, current use, cooldown, disabled reason and counters, and the pool's counters and
// latency histogram.
func (p *KeyPool) Stats() (*Stats, error) {
	data, err := p.statsJSON()
	if err != nil {
		return nil, err
	}
	return parseStats(data)
}

// statsJSON is the library's statistics JSON, as gr_stats_json writes it.
func (p *KeyPool) statsJSON() ([]byte, error) {
	return p.callString(func(ptr *C.gr_pool, out **C.char, cerr **C.gr_error) C.gr_status {
		return C.gr_stats_json(ptr, out, cerr)
	})
}

// callString is [callString] for a function of the pool: it runs call on the live handle,
// registered as a call in flight so that Close cannot free the handle under it.
func (p *KeyPool) callString(call func(ptr *C.gr_pool, out **C.char, cerr **C.gr_error) C.gr_status) ([]byte, error) {
	ptr, err := p.acquire()
	if err != nil {
		return nil, err
	}
	defer p.release()
	defer runtime.KeepAlive(p)
	return callString(func(out **C.char, cerr **C.gr_error) C.gr_status {
		return call(ptr, out, cerr)
	})
}
