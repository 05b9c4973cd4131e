package rotator

// An http.RoundTripper that puts the pool under Google's go-genai SDK (or any client that
// builds Gemini requests itself). go-genai sends every call through its *http.Client; ours does
// not send it over the network: it hands the request as the SDK built it (method, path and
// query, headers, body bytes) to the core through gr_forward / gr_forward_stream, and the core
// routes it (a model method under the model's limits; files, cached contents, operations and
// the models list on one key, pinned to the project that made the resource), chooses the key
// and performs it. The rotation, limits, reactions, failover and pins are the pool's one
// implementation, in Rust. The SDK's credentials (its placeholder x-goog-api-key, an
// Authorization header) never leave the process, nor does a key= query parameter: the core
// sends its own key in the header.

// #include <stdlib.h>
// #include "gemini_rotator.h"
import "C"

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Transport is an http.RoundTripper sending each Gemini request through the pool:
//
//	genai.NewClient(ctx, &genai.ClientConfig{APIKey: "unused", Backend: genai.BackendGeminiAPI,
//		HTTPClient: pool.HTTPClient()})
//
// Every SDK request goes through it: the model methods (under the model's limits, with
// rotation and failover), file uploads and files.get/delete/list, cached contents,
// operations, models.list and models.get (on one key: they use no model quota). The API
// version the SDK chose (HTTPOptions.APIVersion: v1, v1beta, ...) is the one sent. A file or
// cached content made through the pool is pinned to the quota group (project) of the key that
// made it, in the pool's shared state: every later request naming it (in its path or body) is
// served by that project's keys only, in any process that shares the state.
//
// The service's answers come back as it sent them: its status, body, Content-Type and
// X-Goog-Upload-* headers. Its errors (400, 404, ...) come back as the response the SDK
// expects (the status and the service's own body, byte for byte), so the SDK reports them as
// its own genai.APIError with every Details entry. The pool's refusals (every key full, no
// usable key, a cancelled context, a path the pool does not serve) are the RoundTripper's
// error: net/http wraps it in *url.Error and the SDK wraps that, and errors.Is(err,
// ErrAllKeysRateLimited) sees through both. A stream's body is the pool's events framed as
// SSE; failover happens before the first event only, an error after it is the body's Read
// error.
func (p *KeyPool) Transport() http.RoundTripper { return poolTransport{p} }

// HTTPClient is an *http.Client on [KeyPool.Transport], for genai.ClientConfig.HTTPClient.
func (p *KeyPool) HTTPClient() *http.Client { return &http.Client{Transport: p.Transport()} }

type poolTransport struct{ pool *KeyPool }

// answerHeaders are the headers of the service's answer the SDKs read, copied to the
// response (the core keeps Content-Type and the X-Goog-Upload-* ones).
var answerHeaders = []string{
	"Content-Type", "X-Goog-Upload-Url", "X-Goog-Upload-Status", "X-Goog-Upload-Size-Received",
	"X-Goog-Upload-Chunk-Granularity", "X-Goog-Upload-Control-Url",
}

// credentialHeaders are never handed to the core: the pool's key replaces them.
var credentialHeaders = map[string]bool{"X-Goog-Api-Key": true, "Authorization": true}

func (t poolTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, newError(ErrInvalidArgument, "reading the request body: %v", err)
		}
	}
	fr, err := newForwardRequest(req, body)
	if err != nil {
		return nil, err
	}
	defer fr.free()
	// Only a stream needs deciding here (it has its own C call); the core routes the rest.
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, ":streamGenerateContent") {
		s, err := t.pool.forwardStream(req.Context(), fr)
		if err != nil {
			return apiErrorResponse(req, err)
		}
		header := http.Header{"Content-Type": {"text/event-stream"}}
		return response(req, http.StatusOK, header, &sseBody{stream: s, req: req}), nil
	}
	status, header, answer, err := t.pool.forward(req.Context(), fr)
	if err != nil {
		return apiErrorResponse(req, err)
	}
	return response(req, status, header, io.NopCloser(bytes.NewReader(answer))), nil
}

// forwardRequest is a request's C arguments: method, path and query, headers as a JSON
// object, and the body (copied into C memory, so C never holds Go memory).
type forwardRequest struct {
	method, path, headers *C.char
	body                  *C.uint8_t
	bodyLen               C.size_t
}

func newForwardRequest(req *http.Request, body []byte) (*forwardRequest, error) {
	headers := map[string]string{}
	for name, values := range req.Header {
		if !credentialHeaders[http.CanonicalHeaderKey(name)] {
			headers[name] = strings.Join(values, ", ")
		}
	}
	headersJSON, err := json.Marshal(headers)
	if err != nil {
		return nil, newError(ErrInvalidArgument, "encoding the request headers: %v", err)
	}
	fr := &forwardRequest{}
	if fr.method, err = cString(req.Method, "the HTTP method"); err != nil {
		return nil, err
	}
	if fr.path, err = cString(req.URL.RequestURI(), "the request path"); err != nil {
		fr.free()
		return nil, err
	}
	if fr.headers, err = cBytes(headersJSON, "the request headers"); err != nil {
		fr.free()
		return nil, err
	}
	if len(body) > 0 {
		fr.body = (*C.uint8_t)(C.CBytes(body))
		fr.bodyLen = C.size_t(len(body))
	}
	return fr, nil
}

func (fr *forwardRequest) free() {
	for _, p := range []unsafe.Pointer{unsafe.Pointer(fr.method), unsafe.Pointer(fr.path),
		unsafe.Pointer(fr.headers), unsafe.Pointer(fr.body)} {
		C.free(p) // free(NULL) does nothing
	}
}

// forward performs one request through gr_forward under ctx: the service's status, the
// answer's headers and body.
func (p *KeyPool) forward(ctx context.Context, fr *forwardRequest) (int, http.Header, []byte, error) {
	timeoutMS, deadlineBudget, err := budget(ctx)
	if err != nil {
		return 0, nil, nil, err
	}
	ptr, err := p.acquire()
	if err != nil {
		return 0, nil, nil, err
	}
	defer p.release()
	w, err := watchContext(ctx)
	if err != nil {
		return 0, nil, nil, err
	}
	defer w.release()
	var resp *C.gr_response
	var cerr *C.gr_error
	status := C.gr_forward(ptr, fr.method, fr.path, fr.headers, fr.body, fr.bodyLen,
		0, C.uint64_t(timeoutMS), w.token, &resp, &cerr)
	runtime.KeepAlive(p)
	if status != C.GR_OK {
		return 0, nil, nil, callError(ctx, status, cerr, deadlineBudget)
	}
	header := http.Header{}
	for _, name := range answerHeaders {
		cname := C.CString(name)
		if value := C.gr_response_header(resp, cname); value != nil {
			header.Set(name, C.GoString(value))
		}
		C.free(unsafe.Pointer(cname))
	}
	code := int(C.gr_response_http_status(resp))
	answer, _ := takeResponse(resp)
	return code, header, answer, nil
}

// forwardStream opens a streamGenerateContent request through gr_forward_stream under ctx;
// it returns once the first event is in (failover happens before it only).
func (p *KeyPool) forwardStream(ctx context.Context, fr *forwardRequest) (*stream, error) {
	return p.startStream(ctx, func(ptr *C.gr_pool, timeoutMS C.uint64_t, token *C.gr_cancel, out **C.gr_stream, cerr **C.gr_error) C.gr_status {
		return C.gr_forward_stream(ptr, fr.path, fr.headers, fr.body, fr.bodyLen, 0, timeoutMS, token, out, cerr)
	})
}

// apiErrorResponse turns the service's own error into the response the SDK reads it from: its
// status and its body as received (so the SDK's error keeps every detail); every other error
// stays the RoundTripper's error.
func apiErrorResponse(req *http.Request, err error) (*http.Response, error) {
	var api *APIError
	if !errors.As(err, &api) {
		return nil, err
	}
	body := api.Body
	if len(body) == 0 { // not expected from the core; still an error the SDK can parse
		body, _ = json.Marshal(map[string]any{"error": map[string]any{
			"code": api.StatusCode, "message": api.Message, "status": api.Status}})
	}
	header := http.Header{"Content-Type": {"application/json; charset=UTF-8"}}
	return response(req, api.StatusCode, header, io.NopCloser(bytes.NewReader(body))), nil
}

func response(req *http.Request, status int, header http.Header, body io.ReadCloser) *http.Response {
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Body: body, ContentLength: -1, Request: req,
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
