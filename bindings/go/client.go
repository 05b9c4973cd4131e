package rotator

import (
	"context"
	"encoding/json"
	"time"
)

// PoolProvider is anything that can hand out the process's [*KeyPool]: a *KeyPool itself, or
// an application's own connection object with a KeyPool method.
type PoolProvider interface {
	KeyPool() *KeyPool
}

// GeminiClient sends generateContent requests through a key pool. It is safe for concurrent
// use; set its fields before sharing it.
type GeminiClient struct {
	pools PoolProvider

	// Model is the model of requests that name none; "" uses the pool's default.
	Model string
	// MaxWait is how long a call may wait for a key when every key is at its rate limit.
	// Zero fails at once with ErrAllKeysRateLimited. The context can cut the wait short.
	MaxWait time.Duration
}

// NewGeminiClient returns a client that takes its key pool from p on every call.
func NewGeminiClient(p PoolProvider) *GeminiClient {
	return &GeminiClient{pools: p}
}

// pool is the provider's current pool (nil when there is none, which calls report as
// ErrClosed).
func (c *GeminiClient) pool() *KeyPool {
	if c == nil || c.pools == nil {
		return nil
	}
	return c.pools.KeyPool()
}

// SimpleTextQuery sends prompt as a single user turn and returns the answer's text (see
// [GeminiResponse.Text]). A response blocked for safety is not an error: its text is "". Use
// [GeminiClient.GenerateContent] to see why.
func (c *GeminiClient) SimpleTextQuery(ctx context.Context, prompt string) (string, error) {
	resp, err := c.GenerateContent(ctx, &GeminiRequest{
		Contents: []GeminiContent{{Role: "user", Parts: []GeminiPart{{Text: prompt}}}},
	})
	if err != nil {
		return "", err
	}
	return resp.Text(), nil
}

// GenerateContent sends req on a key the pool chooses and decodes the answer. The response's
// KeyFingerprint names the key that served it, and its Model the model that did: the one
// asked for, or a configured fallback of it (see [ModelLimits.Fallback]).
//
// The context's deadline becomes the call's time budget (retries included); cancelling the
// context stops the HTTP request itself and returns ctx.Err() at once. Errors match
// the package's sentinels (ErrAllKeysRateLimited, ErrNoUsableKeys, ErrTimeout, ...) with
// errors.Is, or are an [*APIError].
func (c *GeminiClient) GenerateContent(ctx context.Context, req *GeminiRequest) (*GeminiResponse, error) {
	if req == nil {
		return nil, newError(ErrInvalidArgument, "GenerateContent: nil *GeminiRequest")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, newError(ErrInvalidArgument, "encoding the request: %v", err)
	}
	s, err := c.pool().callServed(ctx, "generateContent", c.model(req.Model), body, c.maxWait())
	if err != nil {
		return nil, err
	}
	return decodeResponse(s, "the response")
}

// decodeResponse decodes a GenerateContentResponse (what: "the response", "a stream event")
// and records who served it.
func decodeResponse(s served, what string) (*GeminiResponse, error) {
	resp := &GeminiResponse{}
	if err := json.Unmarshal(s.body, resp); err != nil {
		return nil, newError(ErrTransport, "decoding %s (key %s): %v", what, s.fingerprint, err)
	}
	resp.KeyFingerprint = s.fingerprint
	resp.Model = s.model
	resp.Raw = s.body
	return resp, nil
}

// GenerateContentJSON sends body, a GenerateContentRequest JSON object, untouched, and returns
// the service's response JSON as received and the fingerprint of the key that served it.
// model "" uses the client's Model, then the pool's. Context and errors are as for
// [GeminiClient.GenerateContent].
func (c *GeminiClient) GenerateContentJSON(ctx context.Context, model string, body []byte) ([]byte, string, error) {
	return c.pool().call(ctx, "generateContent", c.model(model), body, c.maxWait())
}
