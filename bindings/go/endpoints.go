package rotator

// countTokens, embedContent, batchEmbedContents and the models list: the same rotation,
// limits, retries and reactions as generateContent (each under its model's limits), through
// gr_call and gr_list_models, with the context wired to a gr_cancel so that cancelling it
// stops the HTTP request itself.

// #include <stdlib.h>
// #include "gemini_rotator.h"
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
	"time"
	"unsafe"
)

// DefaultEmbeddingModel is the model of embedding requests that name none (the pool's default
// model is a generating one, which does not serve embeddings).
const DefaultEmbeddingModel = "gemini-embedding-001"

// EmbedContentRequest is one text to embed.
type EmbedContentRequest struct {
	// Model is the embedding model; "" uses DefaultEmbeddingModel. Not sent in the body.
	Model   string        `json:"-"`
	Content GeminiContent `json:"content"`
	// TaskType is e.g. "RETRIEVAL_DOCUMENT" or "RETRIEVAL_QUERY"; "" leaves it to the service.
	TaskType string `json:"taskType,omitempty"`
	Title    string `json:"title,omitempty"`
	// OutputDimensionality truncates the vector; 0 leaves it to the service.
	OutputDimensionality int `json:"outputDimensionality,omitempty"`
}

// ModelInfo is one entry of the models list.
type ModelInfo struct {
	Name                       string   `json:"name"`
	DisplayName                string   `json:"displayName,omitempty"`
	Description                string   `json:"description,omitempty"`
	InputTokenLimit            int      `json:"inputTokenLimit,omitempty"`
	OutputTokenLimit           int      `json:"outputTokenLimit,omitempty"`
	SupportedGenerationMethods []string `json:"supportedGenerationMethods,omitempty"`
	// Raw is the entry as the service sent it.
	Raw json.RawMessage `json:"-"`
}

// ctxCancel is a gr_cancel that is triggered when its context is done.
type ctxCancel struct {
	token *C.gr_cancel
	stop  func() bool
	fired chan struct{}
}

func watchContext(ctx context.Context) (*ctxCancel, error) {
	var token *C.gr_cancel
	var cerr *C.gr_error
	if status := C.gr_cancel_new(&token, &cerr); status != C.GR_OK {
		return nil, takeError(status, cerr, false)
	}
	w := &ctxCancel{token: token, fired: make(chan struct{})}
	w.stop = context.AfterFunc(ctx, func() {
		C.gr_cancel_trigger(token)
		close(w.fired)
	})
	return w, nil
}

// release frees the token once nothing can trigger it any more.
func (w *ctxCancel) release() {
	if !w.stop() {
		<-w.fired // the trigger is running or ran: let it finish first
	}
	C.gr_cancel_free(w.token)
}

// callError is the error of a failed call under ctx: the context's own error when the call
// was cancelled because of it.
func callError(ctx context.Context, status C.gr_status, cerr *C.gr_error, deadlineBudget bool) error {
	err := takeError(status, cerr, deadlineBudget)
	if status == C.GR_ERR_CANCELLED && ctx.Err() != nil {
		return contextError(ctx)
	}
	return err
}

// budget is the call's timeout_ms from the context's deadline (0: the pool's), and whether
// the deadline set it.
func budget(ctx context.Context) (uint64, bool, error) {
	if err := contextError(ctx); err != nil {
		return 0, false, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0, false, nil
	}
	left := time.Until(deadline)
	if left <= 0 {
		return 0, false, timeoutError()
	}
	return uint64(millis(left)), true, nil
}

// served is what a successful call returned: the body as received, and the key and the
// model that served it (the model differs from the one asked for when a configured fallback
// served the call).
type served struct {
	body        []byte
	fingerprint string
	model       string
}

// takeServed copies a gr_response's body, key fingerprint and model into Go memory and
// frees the response.
func takeServed(resp *C.gr_response) served {
	model := C.GoString(C.gr_response_model(resp)) // read before takeResponse frees it
	body, fingerprint := takeResponse(resp)
	return served{body: body, fingerprint: fingerprint, model: model}
}

// call sends one request of a model method through gr_call under ctx: the answer's body and
// the fingerprint of the key that served it.
func (p *KeyPool) call(ctx context.Context, method, model string, body []byte, maxWait time.Duration) ([]byte, string, error) {
	s, err := p.callServed(ctx, method, model, body, maxWait)
	return s.body, s.fingerprint, err
}

// callServed is [KeyPool.call] with the whole answer, the serving model included.
func (p *KeyPool) callServed(ctx context.Context, method, model string, body []byte, maxWait time.Duration) (served, error) {
	timeoutMS, deadlineBudget, err := budget(ctx)
	if err != nil {
		return served{}, err
	}
	var cmodel *C.char
	if model != "" {
		if cmodel, err = cString(model, "the model name"); err != nil {
			return served{}, err
		}
		defer C.free(unsafe.Pointer(cmodel))
	}
	cmethod, err := cString(method, "the method name")
	if err != nil {
		return served{}, err
	}
	defer C.free(unsafe.Pointer(cmethod))
	cbody, err := cBytes(body, "the request body")
	if err != nil {
		return served{}, err
	}
	defer C.free(unsafe.Pointer(cbody))
	ptr, err := p.acquire()
	if err != nil {
		return served{}, err
	}
	defer p.release()
	w, err := watchContext(ctx)
	if err != nil {
		return served{}, err
	}
	defer w.release()
	var resp *C.gr_response
	var cerr *C.gr_error
	status := C.gr_call(ptr, cmodel, cmethod, cbody, C.uint64_t(millisOrZero(maxWait)), C.uint64_t(timeoutMS), w.token, &resp, &cerr)
	runtime.KeepAlive(p)
	if status != C.GR_OK {
		return served{}, callError(ctx, status, cerr, deadlineBudget)
	}
	return takeServed(resp), nil
}

func millisOrZero(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(millis(d))
}

// callJSON sends req (marshalled) as method and decodes the answer into out.
func (c *GeminiClient) callJSON(ctx context.Context, method, model string, req any, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return newError(ErrInvalidArgument, "encoding the %s request: %v", method, err)
	}
	var maxWait time.Duration
	if c != nil {
		maxWait = c.MaxWait
	}
	raw, fingerprint, err := c.pool().call(ctx, method, model, body, maxWait)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return newError(ErrTransport, "decoding the %s answer (key %s): %v", method, fingerprint, err)
	}
	return nil
}

// CountTokens returns the totalTokens of req.Contents (countTokens, on req.Model, else the
// client's Model, else the pool's), on a key the pool chooses: it rotates and counts against
// the model's limits like any call. Context and errors as for GenerateContent.
func (c *GeminiClient) CountTokens(ctx context.Context, req *GeminiRequest) (int, error) {
	if req == nil {
		return 0, newError(ErrInvalidArgument, "CountTokens: nil *GeminiRequest")
	}
	var answer struct {
		TotalTokens *int `json:"totalTokens"`
	}
	body := struct {
		Contents []GeminiContent `json:"contents"`
	}{req.Contents}
	if err := c.callJSON(ctx, "countTokens", c.model(req.Model), body, &answer); err != nil {
		return 0, err
	}
	if answer.TotalTokens == nil {
		return 0, newError(ErrTransport, "the countTokens answer has no totalTokens")
	}
	return *answer.TotalTokens, nil
}

// EmbedContent returns the embedding of one request (embedContent).
func (c *GeminiClient) EmbedContent(ctx context.Context, req *EmbedContentRequest) ([]float64, error) {
	if req == nil {
		return nil, newError(ErrInvalidArgument, "EmbedContent: nil *EmbedContentRequest")
	}
	var answer struct {
		Embedding *struct {
			Values []float64 `json:"values"`
		} `json:"embedding"`
	}
	if err := c.callJSON(ctx, "embedContent", embeddingModel(req.Model), req, &answer); err != nil {
		return nil, err
	}
	if answer.Embedding == nil {
		return nil, newError(ErrTransport, "the embedContent answer has no embedding")
	}
	return answer.Embedding.Values, nil
}

// BatchEmbedContents returns the embeddings of reqs, in order, from one batchEmbedContents
// request on model ("" uses DefaultEmbeddingModel; each request's Model is ignored).
func (c *GeminiClient) BatchEmbedContents(ctx context.Context, model string, reqs []*EmbedContentRequest) ([][]float64, error) {
	model = embeddingModel(model)
	type one struct {
		Model string `json:"model"`
		*EmbedContentRequest
	}
	body := struct {
		Requests []one `json:"requests"`
	}{}
	for i, r := range reqs {
		if r == nil {
			return nil, newError(ErrInvalidArgument, "BatchEmbedContents: request %d is nil", i)
		}
		body.Requests = append(body.Requests, one{Model: "models/" + trimModels(model), EmbedContentRequest: r})
	}
	var answer struct {
		Embeddings []struct {
			Values []float64 `json:"values"`
		} `json:"embeddings"`
	}
	if err := c.callJSON(ctx, "batchEmbedContents", model, body, &answer); err != nil {
		return nil, err
	}
	if len(answer.Embeddings) != len(reqs) {
		return nil, newError(ErrTransport, "the batchEmbedContents answer has %d embeddings for %d requests", len(answer.Embeddings), len(reqs))
	}
	out := make([][]float64, len(reqs))
	for i, e := range answer.Embeddings {
		out[i] = e.Values
	}
	return out, nil
}

// ListModels returns every model the service lists (all pages). The list uses no quota: it
// takes no rate-limit slot.
func (c *GeminiClient) ListModels(ctx context.Context) ([]ModelInfo, error) {
	p := c.pool()
	var models []ModelInfo
	token := ""
	for {
		raw, err := p.listModelsPage(ctx, token)
		if err != nil {
			return nil, err
		}
		var page struct {
			Models        []json.RawMessage `json:"models"`
			NextPageToken string            `json:"nextPageToken"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, newError(ErrTransport, "decoding the models list: %v", err)
		}
		for _, m := range page.Models {
			var info ModelInfo
			if err := json.Unmarshal(m, &info); err != nil {
				return nil, newError(ErrTransport, "decoding a model of the list: %v", err)
			}
			info.Raw = m
			models = append(models, info)
		}
		if page.NextPageToken == "" {
			return models, nil
		}
		token = page.NextPageToken
	}
}

func (p *KeyPool) listModelsPage(ctx context.Context, pageToken string) ([]byte, error) {
	if err := contextError(ctx); err != nil {
		return nil, err
	}
	ctoken, err := cString(pageToken, "the page token")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(ctoken))
	ptr, err := p.acquire()
	if err != nil {
		return nil, err
	}
	defer p.release()
	w, err := watchContext(ctx)
	if err != nil {
		return nil, err
	}
	defer w.release()
	var resp *C.gr_response
	var cerr *C.gr_error
	status := C.gr_list_models(ptr, 0, ctoken, w.token, &resp, &cerr)
	runtime.KeepAlive(p)
	if status != C.GR_OK {
		return nil, callError(ctx, status, cerr, false)
	}
	body, _ := takeResponse(resp)
	return body, nil
}

// model is the request's model, else the client's.
func (c *GeminiClient) model(requested string) string {
	if requested == "" && c != nil {
		return c.Model
	}
	return requested
}

func embeddingModel(model string) string {
	if model == "" {
		return DefaultEmbeddingModel
	}
	return model
}

func trimModels(model string) string {
	if len(model) > len("models/") && model[:len("models/")] == "models/" {
		return model[len("models/"):]
	}
	return model
}
