package rotator

import (
	"encoding/json"
	"regexp"
	"time"
)

// Config holds the same settings as the GEMINI_* environment variables read by
// [NewKeyPoolFromEnv] (the README's Configuration table lists them). A zero value means "the
// library's default"; the library validates every setting and names the offending field in the
// error. Each field's comment names its variable; a test holds the fields, those names and the
// defaults stated here to the library's table of settings (bindings/settings.json).
type Config struct {
	// FreeKeys are used round-robin. An entry "PROJECT:KEY" (split at the first ':') puts the
	// key in a Cloud project: keys of one project form one quota group and share every limit;
	// a key without a project is a group of its own. (GEMINI_FREE_KEYS)
	FreeKeys []string
	// PaidKey is used only when no free key can serve the model; "PROJECT:KEY" allowed.
	// (GEMINI_PAID_KEY)
	PaidKey string
	// FreeRateLimit is the requests per Window allowed per free quota group and model;
	// default 60. (GEMINI_FREE_RATE_LIMIT)
	FreeRateLimit int
	// PaidRateLimit is the requests per Window allowed on the paid key, per model; default
	// 1000. (GEMINI_PAID_RATE_LIMIT)
	PaidRateLimit int
	// FreeDailyLimit is the requests per Pacific day (midnight America/Los_Angeles) allowed per
	// free quota group and model; 0 means none. (GEMINI_FREE_DAILY_LIMIT)
	FreeDailyLimit int
	// PaidDailyLimit is the requests per Pacific day allowed on the paid key, per model; 0
	// means none. (GEMINI_PAID_DAILY_LIMIT)
	PaidDailyLimit int
	// FreeTokenLimit is the input tokens per Window allowed per free quota group and model; 0
	// means none. (GEMINI_FREE_TOKEN_LIMIT)
	FreeTokenLimit int64
	// PaidTokenLimit is the input tokens per Window allowed on the paid key, per model; 0
	// means none. (GEMINI_PAID_TOKEN_LIMIT)
	PaidTokenLimit int64
	// Window is the length of the rolling rate-limit window; default 1m. Millisecond precision,
	// rounded up. (GEMINI_RATE_WINDOW_MS)
	Window time.Duration
	// BaseURL is the service's address; default https://generativelanguage.googleapis.com.
	// (GEMINI_BASE_URL)
	BaseURL string
	// Model is the model of calls that name none; default "gemini-3.6-flash". (GEMINI_MODEL)
	Model string
	// Timeout is a call's whole time budget, retries included; default 2m. A context deadline
	// can shorten it, not lengthen it. (GEMINI_TIMEOUT_MS)
	Timeout time.Duration
	// MaxAttempts is the HTTP attempts per call at most, across keys and retries; default 8.
	// (GEMINI_MAX_ATTEMPTS)
	MaxAttempts int
	// MaxRetries is the retries after transient failures (5xx, connection errors) at most;
	// default 3. Zero means the default: set a negative number for no retries.
	// (GEMINI_MAX_RETRIES)
	MaxRetries int
	// RetryBase is the backoff before the first retry (doubling, with jitter); default 500ms.
	// (GEMINI_RETRY_BASE_MS)
	RetryBase time.Duration
	// RetryMax caps the backoff; default 16s. (GEMINI_RETRY_MAX_MS)
	RetryMax time.Duration
	// StreamFirstEventTimeout: a stream that sends no event this long is abandoned and retried
	// on another key, within the call's budget; default 1m. (GEMINI_STREAM_FIRST_EVENT_TIMEOUT_MS)
	StreamFirstEventTimeout time.Duration
	// StreamIdleTimeout: a longer gap between two events of a stream ends it with ErrTimeout;
	// default 1m. (GEMINI_STREAM_IDLE_TIMEOUT_MS)
	StreamIdleTimeout time.Duration
	// State is where key state lives: "shm" (a shared-memory file in /dev/shm, so that every
	// process on the host shares each key's limit), "shm:/absolute/path" (another file), or
	// "memory" (this process only). "" is GEMINI_ROTATOR_STATE when set, else the library's
	// default "shm". (GEMINI_ROTATOR_STATE)
	State string
	// Log is the log level to set, process-wide, when the pool is created: "off", "error",
	// "warn", "info" or "debug". "" leaves the level as it is (see [SetLogLevel]).
	// (GEMINI_ROTATOR_LOG)
	Log string
	// Models sets limits and fallbacks per model, by model name ("models/" optional); a limit
	// a model leaves at zero is the global one. (A pool from the environment reads them from
	// the config file GEMINI_ROTATOR_CONFIG names.)
	Models map[string]ModelLimits
}

// ModelLimits is one model's entry of [Config.Models]: its own limits (zero: the global
// setting of the same name) and the models that serve a call when no key can serve this one.
type ModelLimits struct {
	FreeRateLimit  int   `json:"free_rate_limit,omitempty"`
	FreeDailyLimit int   `json:"free_daily_limit,omitempty"`
	FreeTokenLimit int64 `json:"free_token_limit,omitempty"`
	PaidRateLimit  int   `json:"paid_rate_limit,omitempty"`
	PaidDailyLimit int   `json:"paid_daily_limit,omitempty"`
	PaidTokenLimit int64 `json:"paid_token_limit,omitempty"`
	// Fallback lists, in order, the models to try when every key is spent or cooling for this
	// one. A fallback model need not be in Models (it then has the global limits); a cycle of
	// fallbacks is an error.
	Fallback []string `json:"fallback,omitempty"`
}

// configJSON is the gr_pool_new configuration object; zero fields are left out so that the
// library applies its defaults.
type configJSON struct {
	FreeKeys      []string               `json:"free_keys,omitempty"`
	PaidKey       string                 `json:"paid_key,omitempty"`
	FreeRateLimit int                    `json:"free_rate_limit,omitempty"`
	PaidRateLimit int                    `json:"paid_rate_limit,omitempty"`
	FreeDaily     int                    `json:"free_daily_limit,omitempty"`
	PaidDaily     int                    `json:"paid_daily_limit,omitempty"`
	FreeTokens    int64                  `json:"free_token_limit,omitempty"`
	PaidTokens    int64                  `json:"paid_token_limit,omitempty"`
	WindowMS      int64                  `json:"window_ms,omitempty"`
	BaseURL       string                 `json:"base_url,omitempty"`
	Model         string                 `json:"model,omitempty"`
	TimeoutMS     int64                  `json:"timeout_ms,omitempty"`
	MaxAttempts   int                    `json:"max_attempts,omitempty"`
	MaxRetries    *int                   `json:"max_retries,omitempty"`
	RetryBaseMS   int64                  `json:"retry_base_ms,omitempty"`
	RetryMaxMS    int64                  `json:"retry_max_ms,omitempty"`
	StreamFirstMS int64                  `json:"stream_first_event_timeout_ms,omitempty"`
	StreamIdleMS  int64                  `json:"stream_idle_timeout_ms,omitempty"`
	State         string                 `json:"state,omitempty"`
	Log           string                 `json:"log,omitempty"`
	Models        map[string]ModelLimits `json:"models,omitempty"`
}

// configFieldNames maps the library's field names to the Config fields, for error messages.
var configFieldNames = map[string]string{
	"free_keys":        "FreeKeys",
	"paid_key":         "PaidKey",
	"free_rate_limit":  "FreeRateLimit",
	"paid_rate_limit":  "PaidRateLimit",
	"free_daily_limit": "FreeDailyLimit",
	"paid_daily_limit": "PaidDailyLimit",
	"free_token_limit": "FreeTokenLimit",
	"paid_token_limit": "PaidTokenLimit",
	"window_ms":        "Window",
	"base_url":         "BaseURL",
	"model":            "Model",
	"timeout_ms":       "Timeout",
	"max_attempts":     "MaxAttempts",
	"max_retries":      "MaxRetries",
	"retry_base_ms":    "RetryBase",
	"retry_max_ms":     "RetryMax",
	"state":            "State",
	"log":              "Log",
	"models":           "Models",

	// The stream timeouts.
	"stream_first_event_timeout_ms": "StreamFirstEventTimeout",
	"stream_idle_timeout_ms":        "StreamIdleTimeout",
}

// modelFieldNames maps the fields of a model's entry to the ModelLimits fields.
var modelFieldNames = map[string]string{
	"free_rate_limit":  "FreeRateLimit",
	"free_daily_limit": "FreeDailyLimit",
	"free_token_limit": "FreeTokenLimit",
	"paid_rate_limit":  "PaidRateLimit",
	"paid_daily_limit": "PaidDailyLimit",
	"paid_token_limit": "PaidTokenLimit",
	"fallback":         "Fallback",
}

// configFieldInMessage matches the library's name of a field of the JSON configuration:
// "config field `free_rate_limit`", or a path into models, "config field
// `models."gemini-3.6-flash".free_daily_limit`".
var configFieldInMessage = regexp.MustCompile("config field `([a-z_]+)((?:\\.\"[^\"`]*\")?)((?:\\.[a-z_]+)?)`")

// marshal is the JSON object gr_pool_new takes.
func (c Config) marshal() ([]byte, error) {
	j := configJSON{
		FreeKeys:      c.FreeKeys,
		PaidKey:       c.PaidKey,
		FreeRateLimit: c.FreeRateLimit,
		PaidRateLimit: c.PaidRateLimit,
		FreeDaily:     c.FreeDailyLimit,
		PaidDaily:     c.PaidDailyLimit,
		FreeTokens:    c.FreeTokenLimit,
		PaidTokens:    c.PaidTokenLimit,
		WindowMS:      millis(c.Window),
		BaseURL:       c.BaseURL,
		Model:         c.Model,
		TimeoutMS:     millis(c.Timeout),
		MaxAttempts:   c.MaxAttempts,
		RetryBaseMS:   millis(c.RetryBase),
		RetryMaxMS:    millis(c.RetryMax),
		StreamFirstMS: millis(c.StreamFirstEventTimeout),
		StreamIdleMS:  millis(c.StreamIdleTimeout),
		State:         c.State,
		Log:           c.Log,
		Models:        c.Models,
	}
	switch {
	case c.MaxRetries < 0:
		none := 0
		j.MaxRetries = &none
	case c.MaxRetries > 0:
		j.MaxRetries = &c.MaxRetries
	}
	return json.Marshal(j)
}

// millis converts d to whole milliseconds, away from zero, so that a non-zero duration never
// becomes 0 ("default") and a negative one stays negative (and is refused by the library).
func millis(d time.Duration) int64 {
	ms := d / time.Millisecond
	if d%time.Millisecond > 0 {
		ms++
	} else if d%time.Millisecond < 0 {
		ms--
	}
	return int64(ms)
}

// configError names the Config fields in a configuration error from the library, which
// names the JSON fields it was given ("config field `free_rate_limit`" becomes
// "Config.FreeRateLimit", "config field `models."m".free_daily_limit`" becomes
// `Config.Models["m"].FreeDailyLimit`).
func configError(err error) error {
	se, ok := err.(*statusError)
	if !ok || se.sentinel != ErrConfig {
		return err
	}
	msg := configFieldInMessage.ReplaceAllStringFunc(se.msg, func(m string) string {
		if name, ok := goFieldName(configFieldInMessage.FindStringSubmatch(m)[1:]); ok {
			return name
		}
		return m
	})
	return &statusError{sentinel: ErrConfig, msg: msg}
}

// goFieldName is the Go name of the library's field path: its top field, an optional
// ."MODEL" and an optional .field of that model.
func goFieldName(parts []string) (string, bool) {
	top, model, field := parts[0], parts[1], parts[2]
	goTop, ok := configFieldNames[top]
	if !ok || (model == "" && field != "") || (model != "" && goTop != "Models") {
		return "", false
	}
	name := "Config." + goTop
	if model != "" {
		// The library quotes the name as Go does; the dot before it goes.
		name += "[" + model[1:] + "]"
	}
	if field != "" {
		goField, ok := modelFieldNames[field[1:]]
		if !ok {
			return "", false
		}
		name += "." + goField
	}
	return name, true
}
