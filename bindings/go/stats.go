package rotator

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Tier is the kind of a key: free keys are used round-robin, the paid key only when every free
// key is at its limit.
type Tier string

const (
	TierFree Tier = "free"
	TierPaid Tier = "paid"
)

// Stats is a snapshot of a pool's statistics, from [KeyPool.Stats].
type Stats struct {
	// Version is the library's version.
	Version string
	// State is where key state is kept, e.g. "memory".
	State string
	// Keys lists every key of the pool, free keys first, by fingerprint.
	Keys []KeyStats
	// Models lists, per model the pool has used (the default first), what is left of it.
	Models []PoolModelStats
	// Pool holds the pool-wide counters.
	Pool PoolStats
}

// PoolModelStats is one model's pool-wide figures.
type PoolModelStats struct {
	Model string
	// RequestsLeftToday sums, over the pool's quota groups, the requests the model has left
	// this Pacific day; nil when some group has no daily limit.
	RequestsLeftToday *uint64
	// Fallbacks counts the requests this model served in place of another.
	Fallbacks uint64
}

// ModelStats is one model's quotas for a key's group (limits in force: lowered when the
// service said so). DailyLimit and TokenLimit are nil when none is set. CooldownCause is as
// for [KeyStats]; Unavailable says the service answered "limit: 0" (the model is not on the
// group's tier) for UnavailableRemaining still; Fallbacks counts the calls this model served
// on the group in place of another.
type ModelStats struct {
	Model                string
	RateLimit            uint64
	Window               time.Duration
	InWindow             uint64
	InFlight             uint64
	DailyLimit           *uint64
	Today                uint64
	TokenLimit           *uint64
	TokensInWindow       uint64
	CooldownRemaining    time.Duration
	CooldownCause        string
	Unavailable          bool
	UnavailableRemaining time.Duration
	Fallbacks            uint64
}

// Key returns the statistics of the key with this fingerprint (see [Fingerprint]), or nil.
func (s *Stats) Key(fingerprint string) *KeyStats {
	for i := range s.Keys {
		if s.Keys[i].Fingerprint == fingerprint {
			return &s.Keys[i]
		}
	}
	return nil
}

// Model returns the pool-wide figures of a model ("models/" optional), or nil when the pool
// has not used it.
func (s *Stats) Model(model string) *PoolModelStats {
	model = trimModels(model)
	for i := range s.Models {
		if s.Models[i].Model == model {
			return &s.Models[i]
		}
	}
	return nil
}

// Model returns the key's group's quotas of a model ("models/" optional), or nil when the
// pool has not used it.
func (k *KeyStats) Model(model string) *ModelStats {
	model = trimModels(model)
	for i := range k.Models {
		if k.Models[i].Model == model {
			return &k.Models[i]
		}
	}
	return nil
}

// KeyStats describes one key. Counters count since the key was first used in this process.
type KeyStats struct {
	Fingerprint string
	Tier        Tier
	// Group is the key's quota group (keys of one project share every limit).
	Group string
	// Models lists the quotas of the key's group per model the pool has used, the default
	// model first; Limit … CooldownCause repeat the default model's entry.
	Models []ModelStats
	// Limit is the requests allowed per Window.
	Limit  uint64
	Window time.Duration
	// InWindow counts the requests in the current rolling window (finished or in flight).
	InWindow uint64
	InFlight uint64
	// CooldownRemaining is what is left of a cooldown after a 429 (0: none).
	CooldownRemaining time.Duration
	// CooldownCause is "per_minute", "per_day" or "capacity" during a cooldown, "" otherwise.
	CooldownCause string
	// Disabled says why the key was disabled ("API_KEY_INVALID", "LEAKED",
	// "CONSUMER_SUSPENDED", "SERVICE_DISABLED", "PERMISSION_DENIED"); "" if it is usable.
	Disabled string

	Admitted         uint64
	Succeeded        uint64
	Refused          uint64
	Upstream429      uint64
	InvalidKey       uint64
	PermissionDenied uint64
	ServerErrors     uint64
	TransportErrors  uint64
	Timeouts         uint64
	ClientErrors     uint64
	Retries          uint64
}

// PoolStats holds the pool-wide counters.
type PoolStats struct {
	Requests      uint64
	Succeeded     uint64
	Failed        uint64
	PaidFallbacks uint64
	// ModelFallbacks counts the requests served by a fallback model.
	ModelFallbacks uint64
	// Exhausted counts the calls refused with ErrAllKeysRateLimited.
	Exhausted uint64
	Latency   Latency
}

// Latency is a histogram of HTTP attempt latencies, Prometheus style.
type Latency struct {
	Count      uint64
	SumSeconds float64
	// Buckets are cumulative; the last one's UpperBound is +Inf.
	Buckets []LatencyBucket
}

// LatencyBucket counts the attempts that took at most UpperBound seconds.
type LatencyBucket struct {
	UpperBound float64
	Count      uint64
}

// MarshalJSON writes the bucket as {"UpperBound": bound, "Count": n}, with the last bound as
// the string "+Inf" (encoding/json cannot write an infinite float), so that a Stats value can
// be served as JSON.
func (b LatencyBucket) MarshalJSON() ([]byte, error) {
	var bound any = b.UpperBound
	if math.IsInf(b.UpperBound, 1) {
		bound = "+Inf"
	}
	return json.Marshal(struct {
		UpperBound any
		Count      uint64
	}{bound, b.Count})
}

// The wire format of gr_stats_json.
type statsJSON struct {
	Version string          `json:"version"`
	State   string          `json:"state"`
	Keys    []keyStatsJSON  `json:"keys"`
	Models  []poolModelJSON `json:"models"`
	Pool    poolStatsJSON   `json:"pool"`
}

type poolModelJSON struct {
	Model             string  `json:"model"`
	RequestsLeftToday *uint64 `json:"requests_left_today"`
	Fallbacks         uint64  `json:"fallbacks"`
}

type modelStatsJSON struct {
	Model                  string  `json:"model"`
	RateLimit              uint64  `json:"rate_limit"`
	WindowMS               uint64  `json:"window_ms"`
	InWindow               uint64  `json:"in_window"`
	InFlight               uint64  `json:"in_flight"`
	DailyLimit             *uint64 `json:"daily_limit"`
	Today                  uint64  `json:"today"`
	TokenLimit             *uint64 `json:"token_limit"`
	TokensInWindow         uint64  `json:"tokens_in_window"`
	CooldownRemainingMS    uint64  `json:"cooldown_remaining_ms"`
	CooldownCause          *string `json:"cooldown_cause"`
	Unavailable            bool    `json:"unavailable"`
	UnavailableRemainingMS uint64  `json:"unavailable_remaining_ms"`
	Fallbacks              uint64  `json:"fallbacks"`
}

type keyStatsJSON struct {
	Fingerprint         string           `json:"fingerprint"`
	Tier                Tier             `json:"tier"`
	Group               string           `json:"group"`
	Models              []modelStatsJSON `json:"models"`
	Limit               uint64           `json:"limit"`
	WindowMS            uint64           `json:"window_ms"`
	InWindow            uint64           `json:"in_window"`
	InFlight            uint64           `json:"in_flight"`
	CooldownRemainingMS uint64           `json:"cooldown_remaining_ms"`
	CooldownCause       *string          `json:"cooldown_cause"`
	Disabled            *string          `json:"disabled"`
	Admitted            uint64           `json:"admitted"`
	Succeeded           uint64           `json:"succeeded"`
	Refused             uint64           `json:"refused"`
	Upstream429         uint64           `json:"upstream_429"`
	InvalidKey          uint64           `json:"invalid_key"`
	PermissionDenied    uint64           `json:"permission_denied"`
	ServerErrors        uint64           `json:"server_errors"`
	TransportErrors     uint64           `json:"transport_errors"`
	Timeouts            uint64           `json:"timeouts"`
	ClientErrors        uint64           `json:"client_errors"`
	Retries             uint64           `json:"retries"`
}

type poolStatsJSON struct {
	Requests       uint64 `json:"requests"`
	Succeeded      uint64 `json:"succeeded"`
	Failed         uint64 `json:"failed"`
	PaidFallbacks  uint64 `json:"paid_fallbacks"`
	ModelFallbacks uint64 `json:"model_fallbacks"`
	Exhausted      uint64 `json:"exhausted"`
	Latency        struct {
		Count      uint64              `json:"count"`
		SumSeconds float64             `json:"sum_seconds"`
		Buckets    [][]json.RawMessage `json:"buckets"`
	} `json:"latency"`
}

// parseStats decodes the library's statistics JSON.
func parseStats(data []byte) (*Stats, error) {
	var j statsJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, newError(ErrInternal, "decoding the statistics: %v", err)
	}
	s := &Stats{Version: j.Version, State: j.State, Keys: make([]KeyStats, len(j.Keys))}
	for _, m := range j.Models {
		s.Models = append(s.Models, PoolModelStats{Model: m.Model, RequestsLeftToday: m.RequestsLeftToday, Fallbacks: m.Fallbacks})
	}
	for i, k := range j.Keys {
		models := make([]ModelStats, len(k.Models))
		for n, m := range k.Models {
			models[n] = ModelStats{
				Model:                m.Model,
				RateLimit:            m.RateLimit,
				Window:               time.Duration(m.WindowMS) * time.Millisecond,
				InWindow:             m.InWindow,
				InFlight:             m.InFlight,
				DailyLimit:           m.DailyLimit,
				Today:                m.Today,
				TokenLimit:           m.TokenLimit,
				TokensInWindow:       m.TokensInWindow,
				CooldownRemaining:    time.Duration(m.CooldownRemainingMS) * time.Millisecond,
				CooldownCause:        deref(m.CooldownCause),
				Unavailable:          m.Unavailable,
				UnavailableRemaining: time.Duration(m.UnavailableRemainingMS) * time.Millisecond,
				Fallbacks:            m.Fallbacks,
			}
		}
		s.Keys[i] = KeyStats{
			Fingerprint:       k.Fingerprint,
			Tier:              k.Tier,
			Group:             k.Group,
			Models:            models,
			Limit:             k.Limit,
			Window:            time.Duration(k.WindowMS) * time.Millisecond,
			InWindow:          k.InWindow,
			InFlight:          k.InFlight,
			CooldownRemaining: time.Duration(k.CooldownRemainingMS) * time.Millisecond,
			CooldownCause:     deref(k.CooldownCause),
			Disabled:          deref(k.Disabled),
			Admitted:          k.Admitted,
			Succeeded:         k.Succeeded,
			Refused:           k.Refused,
			Upstream429:       k.Upstream429,
			InvalidKey:        k.InvalidKey,
			PermissionDenied:  k.PermissionDenied,
			ServerErrors:      k.ServerErrors,
			TransportErrors:   k.TransportErrors,
			Timeouts:          k.Timeouts,
			ClientErrors:      k.ClientErrors,
			Retries:           k.Retries,
		}
	}
	p := j.Pool
	s.Pool = PoolStats{
		Requests:       p.Requests,
		Succeeded:      p.Succeeded,
		Failed:         p.Failed,
		PaidFallbacks:  p.PaidFallbacks,
		ModelFallbacks: p.ModelFallbacks,
		Exhausted:      p.Exhausted,
		Latency:        Latency{Count: p.Latency.Count, SumSeconds: p.Latency.SumSeconds},
	}
	for _, b := range p.Latency.Buckets {
		bucket, err := parseBucket(b)
		if err != nil {
			return nil, newError(ErrInternal, "decoding the statistics: %v", err)
		}
		s.Pool.Latency.Buckets = append(s.Pool.Latency.Buckets, bucket)
	}
	return s, nil
}

// parseBucket decodes one [upper bound, count] pair; the bound is a number or "+Inf".
func parseBucket(pair []json.RawMessage) (LatencyBucket, error) {
	if len(pair) != 2 {
		return LatencyBucket{}, fmt.Errorf("latency bucket with %d elements", len(pair))
	}
	var b LatencyBucket
	if string(pair[0]) == `"+Inf"` {
		b.UpperBound = math.Inf(1)
	} else if err := json.Unmarshal(pair[0], &b.UpperBound); err != nil {
		return LatencyBucket{}, fmt.Errorf("latency bucket bound: %v", err)
	}
	if err := json.Unmarshal(pair[1], &b.Count); err != nil {
		return LatencyBucket{}, fmt.Errorf("latency bucket count: %v", err)
	}
	return b, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
