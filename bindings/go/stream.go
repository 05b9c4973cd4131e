package rotator

// streamGenerateContent as an iter.Seq2 over a gr_stream.

// #include <stdlib.h>
// #include "gemini_rotator.h"
import "C"

import (
	"context"
	"encoding/json"
	"iter"
	"runtime"
	"time"
	"unsafe"
)

// StreamGenerateContent sends req as a streamGenerateContent request and yields its events as
// they arrive, each a *GeminiResponse (Text() its text; the last one carries FinishReason and
// the final UsageMetadata).
//
// Until the first event, failures (429, a dead key, 5xx, connection errors, an error as the
// first thing in the body, a stream that sends nothing within StreamFirstEventTimeout) are
// retried on another key, unseen. After it, nothing is retried: an error is yielded once,
// after the events already delivered (an [*APIError] for the service's error in the middle of
// the stream, ErrIncompleteStream for a stream cut without finishReason, ErrTimeout for a gap
// longer than StreamIdleTimeout), and the sequence ends.
//
// Stopping the range early, or cancelling ctx, closes the HTTP request and releases the key's
// slot at once; a cancelled context yields ctx.Err().
func (c *GeminiClient) StreamGenerateContent(ctx context.Context, req *GeminiRequest) iter.Seq2[*GeminiResponse, error] {
	return func(yield func(*GeminiResponse, error) bool) {
		if req == nil {
			yield(nil, newError(ErrInvalidArgument, "StreamGenerateContent: nil *GeminiRequest"))
			return
		}
		body, err := json.Marshal(req)
		if err != nil {
			yield(nil, newError(ErrInvalidArgument, "encoding the request: %v", err))
			return
		}
		var maxWait = c.maxWait()
		s, err := c.pool().openStream(ctx, c.model(req.Model), body, maxWait)
		if err != nil {
			yield(nil, err)
			return
		}
		defer s.free()
		for {
			event, err := s.next(ctx)
			if event == nil && err == nil {
				return // the normal end
			}
			if !yield(event, err) || err != nil {
				return
			}
		}
	}
}

func (c *GeminiClient) maxWait() (d time.Duration) {
	if c != nil {
		d = c.MaxWait
	}
	return d
}

// stream is an open gr_stream, its pool borrowed and its context watched until it is freed.
type stream struct {
	pool        *KeyPool
	ptr         *C.gr_stream
	watch       *ctxCancel
	fingerprint string
}

func (p *KeyPool) openStream(ctx context.Context, model string, body []byte, maxWait time.Duration) (*stream, error) {
	var cmodel *C.char
	var err error
	if model != "" {
		if cmodel, err = cString(model, "the model name"); err != nil {
			return nil, err
		}
		defer C.free(unsafe.Pointer(cmodel))
	}
	cbody, err := cBytes(body, "the request body")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cbody))
	return p.startStream(ctx, func(ptr *C.gr_pool, timeoutMS C.uint64_t, token *C.gr_cancel, out **C.gr_stream, cerr **C.gr_error) C.gr_status {
		return C.gr_stream_open(ptr, cmodel, cbody, C.uint64_t(millisOrZero(maxWait)), timeoutMS, token, out, cerr)
	})
}

// streamOpener is gr_stream_open or gr_forward_stream, its request's arguments bound.
type streamOpener func(ptr *C.gr_pool, timeoutMS C.uint64_t, token *C.gr_cancel, out **C.gr_stream, cerr **C.gr_error) C.gr_status

// startStream opens a stream with open under ctx (its deadline the time budget, its
// cancellation a gr_cancel); the pool stays borrowed and the context watched until the
// stream is freed.
func (p *KeyPool) startStream(ctx context.Context, open streamOpener) (*stream, error) {
	timeoutMS, deadlineBudget, err := budget(ctx)
	if err != nil {
		return nil, err
	}
	ptr, err := p.acquire()
	if err != nil {
		return nil, err
	}
	w, err := watchContext(ctx)
	if err != nil {
		p.release()
		return nil, err
	}
	var s *C.gr_stream
	var cerr *C.gr_error
	if status := open(ptr, C.uint64_t(timeoutMS), w.token, &s, &cerr); status != C.GR_OK {
		w.release()
		p.release()
		return nil, callError(ctx, status, cerr, deadlineBudget)
	}
	return &stream{pool: p, ptr: s, watch: w, fingerprint: C.GoString(C.gr_stream_key_fingerprint(s))}, nil
}

// next is the next event; (nil, nil) at the normal end.
func (s *stream) next(ctx context.Context) (*GeminiResponse, error) {
	var resp *C.gr_response
	var cerr *C.gr_error
	status := C.gr_stream_next(s.ptr, &resp, &cerr)
	switch status {
	case C.GR_STREAM_END:
		return nil, nil
	case C.GR_OK:
	default:
		return nil, callError(ctx, status, cerr, false)
	}
	return decodeResponse(takeServed(resp), "a stream event")
}

// free closes the stream (releasing its connection and slot), then frees it, its token and
// its borrow of the pool.
func (s *stream) free() {
	C.gr_stream_free(s.ptr)
	s.watch.release()
	s.pool.release()
	runtime.KeepAlive(s.pool)
}
