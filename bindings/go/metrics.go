package rotator

// #include "gemini_rotator.h"
import "C"

import (
	"errors"
	"net/http"
)

// MetricsContentType is the Content-Type of the Prometheus text exposition format (0.0.4) that
// [KeyPool.MetricsPrometheus] returns and [KeyPool.MetricsHandler] serves.
const MetricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// MetricsPrometheus returns the pool's statistics in the Prometheus text exposition format
// (version 0.0.4): `_total` counters, durations in seconds, and `key` (fingerprint) and `tier`
// labels. Keys appear by fingerprint only. With shared state (the default) the figures cover
// every process on the host that uses the same keys.
func (p *KeyPool) MetricsPrometheus() (string, error) {
	text, err := p.callString(func(ptr *C.gr_pool, out **C.char, cerr **C.gr_error) C.gr_status {
		return C.gr_metrics_prometheus(ptr, out, cerr)
	})
	return string(text), err
}

// MetricsHandler is an [http.Handler] that serves [KeyPool.MetricsPrometheus], for a
// Prometheus server to scrape:
//
//	http.Handle("/metrics", pool.MetricsHandler())
//
// It answers GET and HEAD with the exposition (Content-Type [MetricsContentType]), any other
// method with 405, and 503 once the pool is closed (500 for any other failure).
func (p *KeyPool) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		text, err := p.MetricsPrometheus()
		if err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, ErrClosed) {
				code = http.StatusServiceUnavailable
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.Header().Set("Content-Type", MetricsContentType)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte(text))
		}
	})
}
