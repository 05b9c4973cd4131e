package rotator

// An http.RoundTripper that puts the pool under Google's go-genai SDK (or any client that
// builds Gemini requests itself). go-genai sends every call through its *http.Client; ours does
// not send it over the network: it reads the model and method from the URL the SDK built
// (".../v1/models/M:method" or ".../v1beta/..."), and the core performs the request through
// gr_call / gr_stream_open, so the rotation, limits, reactions and failover are the pool's one
// implementation, in Rust. The request's headers (the SDK's placeholder x-goog-api-key among
// them) and any key= query parameter never leave the process; the body goes through untouched.

// #include "gemini_rotator.h"
import "C"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
)

// modelMethod is "[prefix]/{version}/models/{model}:{method}": the only requests the pool can
// admit under a model's limits.
var modelMethod = regexp.MustCompile(`/(v1[a-z0-9]*)/models/([^/:]+):([A-Za-z]+)$`)

var transportMethods = map[string]bool{
	"generateContent": true, "countTokens": true, "embedContent": true,
	"batchEmbedContents": true, "streamGenerateContent": true,
}

// Transport is an http.RoundTripper sending each Gemini model request through the pool:
//
//	genai.NewClient(ctx, &genai.ClientConfig{APIKey: "unused", Backend: genai.BackendGeminiAPI,
//		HTTPClient: pool.HTTPClient()})
//
// The service's answers, its own errors included (400, 404, ...), come back as the response
// the SDK expects (its status and JSON body), so the SDK reports them as its own errors. The
// pool's refusals (every key full, no usable key, a cancelled context) are the RoundTripper's
// error: net/http wraps it in *url.Error and the SDK wraps that, and errors.Is(err,
// ErrAllKeysRateLimited) sees through both. A stream's body is the pool's events framed as
// SSE; failover happens before the first event only, an error after it is the body's Read
// error. Requests that are not a model method (files, cachedContents, operations, models.list)
// are refused with ErrInvalidArgument naming the path.
func (p *KeyPool) Transport() http.RoundTripper { return poolTransport{p} }

// HTTPClient is an *http.Client on [KeyPool.Transport], for genai.ClientConfig.HTTPClient.
func (p *KeyPool) HTTPClient() *http.Client { return &http.Client{Transport: p.Transport()} }

type poolTransport struct{ pool *KeyPool }

func (t poolTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	match := modelMethod.FindStringSubmatch(req.URL.Path)
	if req.Method != http.MethodPost || match == nil || !transportMethods[match[3]] {
		return nil, newError(ErrInvalidArgument,
			"the pool's transport serves the model methods (POST .../models/M:method); %s %s is not one of them",
			req.Method, req.URL.Path)
	}
	model, method := match[2], match[3]
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, newError(ErrInvalidArgument, "reading the request body: %v", err)
		}
	}
	ctx := req.Context()
	if method == "streamGenerateContent" {
		s, err := t.pool.openStream(ctx, model, body, 0)
		if err != nil {
			return apiErrorResponse(req, err)
		}
		return response(req, http.StatusOK, "text/event-stream", &sseBody{stream: s, req: req}), nil
	}
	answer, _, err := t.pool.call(ctx, method, model, body, 0)
	if err != nil {
		return apiErrorResponse(req, err)
	}
	return response(req, http.StatusOK, "application/json", io.NopCloser(bytes.NewReader(answer))), nil
}

// apiErrorResponse turns the service's own error into the response the SDK reads it from (its
// status and a Gemini error body); every other error stays the RoundTripper's error.
func apiErrorResponse(req *http.Request, err error) (*http.Response, error) {
	var api *APIError
	if !errors.As(err, &api) {
		return nil, err
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code": api.StatusCode, "message": api.Message, "status": api.Status}})
	return response(req, api.StatusCode, "application/json", io.NopCloser(bytes.NewReader(body))), nil
}

func response(req *http.Request, status int, contentType string, body io.ReadCloser) *http.Response {
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {contentType}}, Body: body,
		ContentLength: -1, Request: req,
	}
}

// sseBody reads the pool's stream as SSE: "data: <event>\n\n" per event, io.EOF at the normal
// end, the pool's error after the events already given. Close (from any goroutine) ends the
// stream at once and frees its slot.
type sseBody struct {
	mu      sync.Mutex // held by Read around gr_stream_next, so Close frees only after it
	stream  *stream
	req     *http.Request
	pending []byte
	err     error
	closed  atomic.Bool // the first Close interrupts and frees; later ones do nothing
	freed   bool
}

func (b *sseBody) Read(out []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		if b.freed {
			return 0, io.ErrClosedPipe
		}
		event, err := b.stream.next(b.req.Context())
		switch {
		case err != nil:
			b.err = err
		case event == nil:
			b.err = io.EOF
		default:
			b.pending = append(append(append(b.pending[:0], "data: "...), event.Raw...), "\n\n"...)
		}
	}
	n := copy(out, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

func (b *sseBody) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	// Without the lock: interrupts a Read waiting in gr_stream_next on another goroutine, which
	// then returns and lets go of the lock; only this Close frees, so the handle is live here.
	C.gr_stream_close(b.stream.ptr)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.freed = true
	b.stream.free()
	return nil
}
