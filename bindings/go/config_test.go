package rotator

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigIsSerializedWithoutZeroFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{FreeKeys: []string{"a"}}, `{"free_keys":["a"]}`},
		{Config{PaidKey: "p", MaxRetries: -1}, `{"paid_key":"p","max_retries":0}`},
		{
			Config{
				FreeKeys: []string{"a", "b"}, PaidKey: "p", FreeRateLimit: 5, PaidRateLimit: 50,
				Window: 1500 * time.Microsecond, BaseURL: "http://h", Model: "m", Timeout: 2 * time.Second,
				MaxAttempts: 4, MaxRetries: 2, RetryBase: time.Millisecond, RetryMax: time.Second, State: "memory",
				Log: "warn",
			},
			`{"free_keys":["a","b"],"paid_key":"p","free_rate_limit":5,"paid_rate_limit":50,"window_ms":2,` +
				`"base_url":"http://h","model":"m","timeout_ms":2000,"max_attempts":4,"max_retries":2,` +
				`"retry_base_ms":1,"retry_max_ms":1000,"state":"memory","log":"warn"}`,
		},
		{Config{FreeKeys: []string{"a"}, Window: -time.Nanosecond}, `{"free_keys":["a"],"window_ms":-1}`},
	} {
		got, err := tc.cfg.marshal()
		if err != nil || string(got) != tc.want {
			t.Errorf("marshal(%+v) = %s, %v; want %s", tc.cfg, got, err, tc.want)
		}
	}
}

func TestBadConfigurationIsErrConfigNamingTheField(t *testing.T) {
	t.Parallel()
	keys := unknownKeys(t, 2)
	k1, k2 := keys[0].Key, keys[1].Key
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no keys", Config{}, "Config.FreeKeys"},
		{"negative free limit", Config{FreeKeys: []string{k1}, FreeRateLimit: -1}, "Config.FreeRateLimit"},
		{"paid limit too large", Config{FreeKeys: []string{k1}, PaidRateLimit: 2_000_000}, "Config.PaidRateLimit"},
		{"negative window", Config{FreeKeys: []string{k1}, Window: -time.Second}, "Config.Window"},
		{"not a URL", Config{FreeKeys: []string{k1}, BaseURL: "ftp://example.com"}, "Config.BaseURL"},
		{"bad model", Config{FreeKeys: []string{k1}, Model: "no such/model!"}, "Config.Model"},
		{"zero attempts", Config{FreeKeys: []string{k1}, MaxAttempts: -3}, "Config.MaxAttempts"},
		{"too many retries", Config{FreeKeys: []string{k1}, MaxRetries: 50}, "Config.MaxRetries"},
		{"retry max below base", Config{FreeKeys: []string{k1}, RetryBase: time.Second, RetryMax: time.Millisecond}, "Config.RetryMax"},
		{"negative timeout", Config{FreeKeys: []string{k1}, Timeout: -time.Second}, "Config.Timeout"},
		{"unknown state", Config{FreeKeys: []string{k1}, State: "disk"}, "Config.State"},
		{"unknown log level", Config{FreeKeys: []string{k1}, Log: "loud"}, "Config.Log"},
		{"duplicate key", Config{FreeKeys: []string{k1, k2, k1}}, "Config.FreeKeys"},
		{"key with a space", Config{FreeKeys: []string{k1 + " " + k2}}, "Config.FreeKeys"},
		{"key with a NUL", Config{FreeKeys: []string{k1 + "\x00"}}, "Config.FreeKeys"},
		{"paid key also free", Config{FreeKeys: []string{k1, k2}, PaidKey: k2}, "Config.PaidKey"},
	} {
		pool, err := NewKeyPool(tc.cfg)
		if pool != nil {
			pool.Close()
		}
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %q does not name %s", tc.name, err, tc.field)
		}
		if strings.Contains(err.Error(), k1) || strings.Contains(err.Error(), k2) {
			t.Errorf("%s: the error shows a key: %q", tc.name, err)
		}
	}
}

// Not parallel: it changes the environment.
func TestBadEnvironmentIsErrConfigNamingTheVariable(t *testing.T) {
	for _, tc := range []struct {
		name, value string
	}{
		{"GEMINI_FREE_RATE_LIMIT", "sixty"},
		{"GEMINI_RATE_WINDOW_MS", "-5"},
		{"GEMINI_BASE_URL", "not a url"},
		{"GEMINI_MAX_RETRIES", "1.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			pool, err := NewKeyPoolFromEnv()
			if pool != nil {
				pool.Close()
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("err = %v, want ErrConfig naming %s", err, tc.name)
			}
		})
	}
	t.Run("no keys", func(t *testing.T) {
		t.Setenv("GEMINI_FREE_KEYS", "")
		_, err := NewKeyPoolFromEnv()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "GEMINI_FREE_KEYS") {
			t.Fatalf("err = %v, want ErrConfig naming GEMINI_FREE_KEYS", err)
		}
		for _, k := range envKeys {
			if strings.Contains(err.Error(), k) {
				t.Errorf("the error shows a key: %q", err)
			}
		}
	})
}
