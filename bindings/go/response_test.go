package rotator

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// An answer's bytes reach Go whole: the library hands them over as pointer and length, so a
// NUL byte in the service's answer is data, not the end of a C string.
func TestAnswerWithNULBytesArrivesWhole(t *testing.T) {
	t.Parallel()
	answer := []byte("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\x00b\"}]}}]}\x00{\"tail\":true}")
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	defer stub.Close()
	key := unknownKeys(t, 1)[0]
	pool := newPool(t, Config{FreeKeys: []string{key.Key}, BaseURL: stub.URL})

	raw, fingerprint, err := NewGeminiClient(pool).GenerateContentJSON(context.Background(), "", []byte(`{"contents":[{"parts":[{"text":"hi"}]}]}`))
	if err != nil {
		t.Fatalf("GenerateContentJSON: %v", err)
	}
	if !bytes.Equal(raw, answer) {
		t.Fatalf("answer %q, want %q", raw, answer)
	}
	if fingerprint != key.Fingerprint() {
		t.Fatalf("fingerprint %q, want %q", fingerprint, key.Fingerprint())
	}
}
