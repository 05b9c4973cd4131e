package rotator

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
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
		{
			Config{
				FreeKeys: []string{"proj:a"}, FreeDailyLimit: 20, PaidDailyLimit: 300, FreeTokenLimit: 250_000,
				PaidTokenLimit: 4_000_000_000,
				Models: map[string]ModelLimits{
					"gemini-3.6-flash": {FreeDailyLimit: 25, Fallback: []string{"gemini-3.1-flash-lite"}},
					"gemini-3.1-flash-lite": {FreeRateLimit: 15, FreeTokenLimit: 1, PaidRateLimit: 2,
						PaidDailyLimit: 3, PaidTokenLimit: 4},
				},
			},
			`{"free_keys":["proj:a"],"free_daily_limit":20,"paid_daily_limit":300,"free_token_limit":250000,` +
				`"paid_token_limit":4000000000,"models":{"gemini-3.1-flash-lite":{"free_rate_limit":15,` +
				`"free_token_limit":1,"paid_rate_limit":2,"paid_daily_limit":3,"paid_token_limit":4},` +
				`"gemini-3.6-flash":{"free_daily_limit":25,"fallback":["gemini-3.1-flash-lite"]}}}`,
		},
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
		{"empty project", Config{FreeKeys: []string{":" + k1}}, "Config.FreeKeys: key 1: the project before ':' is empty"},
		{"empty key of a project", Config{FreeKeys: []string{k1, "p:"}}, "Config.FreeKeys: key 2: the key after"},
		{"paid key in a free project", Config{FreeKeys: []string{"p:" + k1}, PaidKey: "p:" + k2}, "Config.PaidKey"},
		{"negative daily limit", Config{FreeKeys: []string{k1}, FreeDailyLimit: -1}, "Config.FreeDailyLimit"},
		{"paid daily limit too large", Config{FreeKeys: []string{k1}, PaidDailyLimit: 2_000_000_000}, "Config.PaidDailyLimit"},
		{"negative token limit", Config{FreeKeys: []string{k1}, FreeTokenLimit: -5}, "Config.FreeTokenLimit"},
		{"paid token limit too large", Config{FreeKeys: []string{k1}, PaidTokenLimit: 2e12}, "Config.PaidTokenLimit"},
		{
			"negative model limit",
			Config{FreeKeys: []string{k1}, Models: map[string]ModelLimits{"gemini-3.6-flash": {FreeDailyLimit: -20}}},
			`Config.Models["gemini-3.6-flash"].FreeDailyLimit: must be a positive integer, got -20`,
		},
		{
			"bad model name",
			Config{FreeKeys: []string{k1}, Models: map[string]ModelLimits{"no such/model": {}}},
			`Config.Models["no such/model"]: "no such/model" is not a model name`,
		},
		{
			"fallback to itself",
			Config{FreeKeys: []string{k1}, Models: map[string]ModelLimits{"m": {Fallback: []string{"m"}}}},
			`Config.Models["m"].Fallback: entry 1: m cannot fall back to itself`,
		},
		{
			"fallback cycle",
			Config{FreeKeys: []string{k1}, Models: map[string]ModelLimits{
				"a": {Fallback: []string{"b"}}, "b": {Fallback: []string{"c"}}, "c": {Fallback: []string{"a"}}}},
			`Config.Models["c"].Fallback: the fallbacks form a cycle: a → b → c → a`,
		},
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

func TestKeysOfAProjectAndPerModelLimitsAreAccepted(t *testing.T) {
	t.Parallel()
	keys := unknownKeys(t, 3)
	pool, err := NewKeyPool(Config{
		FreeKeys:       []string{"alpha:" + keys[0].Key, "alpha:" + keys[1].Key, keys[2].Key},
		BaseURL:        emu.url,
		FreeDailyLimit: 20,
		FreeTokenLimit: 250_000,
		Models: map[string]ModelLimits{
			"gemini-3.6-flash":             {FreeDailyLimit: 25, Fallback: []string{"gemini-3.1-flash-lite"}},
			"models/gemini-3.1-flash-lite": {FreeRateLimit: 15, FreeDailyLimit: 500},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	stats, err := pool.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// The project is no part of the key: each key is named by the fingerprint of the key alone.
	for _, k := range keys {
		if stats.Key(k.Fingerprint()) == nil {
			t.Errorf("no statistics for key %s: %+v", k.Fingerprint(), stats.Keys)
		}
	}
}

// writeFile writes a config file into a temporary directory of the test.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Not parallel: it changes the environment.
func TestABadConfigFileIsErrConfigNamingTheFileAndTheField(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{
			"limit.toml",
			"[models.\"gemini-3.6-flash\"]\nfree_daily_limit = 0\n",
			"field `models.\"gemini-3.6-flash\".free_daily_limit`: must be a positive integer, got 0",
		},
		{
			"unknown.json",
			`{"models": {"m": {"fallback": ["n"], "free_daily": 3}}}`,
			"field `models.\"m\".free_daily`: unknown field",
		},
		{
			"cycle.toml",
			"models.a.fallback = [\"b\"]\nmodels.b.fallback = [\"a\"]\n",
			"field `models.\"b\".fallback`: the fallbacks form a cycle: a → b → a",
		},
		{"syntax.toml", "free_rate_limit = = 5\n", "not valid TOML at line 1, column 19"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.name, tc.text)
			t.Setenv("GEMINI_ROTATOR_CONFIG", path)
			pool, err := NewKeyPoolFromEnv()
			if pool != nil {
				pool.Close()
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), strconv.Quote(path)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q does not name the file %s and say %q", err, path, tc.want)
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.toml")
		t.Setenv("GEMINI_ROTATOR_CONFIG", path)
		_, err := NewKeyPoolFromEnv()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), strconv.Quote(path)+" (GEMINI_ROTATOR_CONFIG): cannot be read") {
			t.Fatalf("err = %v, want ErrConfig naming %s", err, path)
		}
	})
}

// Not parallel: it changes the environment.
func TestAConfigFileUnderTheEnvironment(t *testing.T) {
	keys := unknownKeys(t, 2)
	// A variable that is set overrides the file's field: GEMINI_FREE_KEYS replaces the file's
	// keys, and GEMINI_FREE_RATE_LIMIT its (bad) limit, which is then never read.
	path := writeFile(t, "rotator.toml", "free_keys = [\"p:"+keys[0].Key+"\"]\nfree_rate_limit = 0\n"+
		"[models.\"gemini-3.6-flash\"]\nfallback = [\"gemini-3.1-flash-lite\"]\n")
	t.Setenv("GEMINI_ROTATOR_CONFIG", path)
	t.Setenv("GEMINI_FREE_RATE_LIMIT", "7")
	t.Setenv("GEMINI_FREE_KEYS", "p:"+keys[1].Key)
	pool, err := NewKeyPoolFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	stats, err := pool.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Keys) != 1 || stats.Key(keys[1].Fingerprint()) == nil {
		t.Errorf("the keys are %+v, want the variable's key %s only", stats.Keys, keys[1].Fingerprint())
	}
	if got := stats.Key(keys[1].Fingerprint()); got != nil && got.Limit != 7 {
		t.Errorf("the key's limit is %d, want the variable's 7", got.Limit)
	}
}
