package rotator

// The library's table of settings (src/config/settings.rs), dumped to bindings/settings.json,
// is the one place a setting is written: these tests hold Config to it, so a setting added to
// the library and not to Go (or the other way round) fails here.

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// setting is one row of bindings/settings.json.
type setting struct {
	Env     *string         `json:"env"`
	JSON    *string         `json:"json"`
	Kind    string          `json:"kind"`
	Default json.RawMessage `json:"default"`
	Doc     string          `json:"doc"`
}

// settingsByField is the table's rows that a JSON configuration can give, by JSON field.
func settingsByField(t *testing.T) map[string]setting {
	t.Helper()
	data, err := os.ReadFile("../settings.json")
	if err != nil {
		t.Fatalf("the table of settings: %v", err)
	}
	var rows []setting
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatalf("bindings/settings.json: %v", err)
	}
	byField := map[string]setting{}
	for _, row := range rows {
		if row.JSON != nil {
			byField[*row.JSON] = row
		}
	}
	if len(byField) < 10 {
		t.Fatalf("bindings/settings.json has only %d settings", len(byField))
	}
	return byField
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestConfigJSONHasExactlyTheTablesFields(t *testing.T) {
	t.Parallel()
	table := settingsByField(t)
	tags := map[string]bool{}
	typ := reflect.TypeOf(configJSON{})
	for i := 0; i < typ.NumField(); i++ {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		tags[name] = true
	}
	if got, want := sortedKeys(tags), sortedKeys(table); !reflect.DeepEqual(got, want) {
		t.Errorf("configJSON's fields are %v; the table's JSON fields are %v", got, want)
	}
}

func TestEveryConfigFieldIsOneSettingOfTheTable(t *testing.T) {
	t.Parallel()
	table := settingsByField(t)
	if got, want := sortedKeys(configFieldNames), sortedKeys(table); !reflect.DeepEqual(got, want) {
		t.Errorf("configFieldNames covers %v; the table's JSON fields are %v", got, want)
	}
	named := map[string]bool{}
	for field, goName := range configFieldNames {
		if _, ok := reflect.TypeOf(Config{}).FieldByName(goName); !ok {
			t.Errorf("configFieldNames[%q] = %q, which is not a Config field", field, goName)
		}
		named[goName] = true
	}
	typ := reflect.TypeOf(Config{})
	for i := 0; i < typ.NumField(); i++ {
		if !named[typ.Field(i).Name] {
			t.Errorf("Config.%s is no setting of the table (configFieldNames)", typ.Field(i).Name)
		}
	}
}

// A Config field's comment names its variable and, when the library has one, its default (in
// Go's spelling for a Duration), as the table does.
func TestConfigCommentsNameTheVariableAndDefaultOfTheTable(t *testing.T) {
	t.Parallel()
	table := settingsByField(t)
	comments := configFieldComments(t)
	for field, goName := range configFieldNames {
		row, comment := table[field], comments[goName]
		if row.Env != nil && !strings.Contains(comment, "("+*row.Env+")") {
			t.Errorf("the comment of Config.%s does not name (%s): %q", goName, *row.Env, comment)
		}
		if want := defaultInGo(t, goName, row); want != "" && !strings.Contains(comment, want) {
			t.Errorf("the comment of Config.%s does not say %q: %q", goName, want, comment)
		}
	}
}

// defaultInGo is how a Config comment states the row's default: "default 60", "default 1m",
// `default "gemini-3.6-flash"`; "" when the setting has none.
func defaultInGo(t *testing.T, goName string, row setting) string {
	t.Helper()
	var value any
	if err := json.Unmarshal(row.Default, &value); err != nil {
		t.Fatalf("%s: default %s: %v", goName, row.Default, err)
	}
	switch v := value.(type) {
	case nil:
		return ""
	case string:
		if strings.Contains(v, "://") {
			return "default " + v
		}
		return "default " + strconv.Quote(v)
	case float64:
		f, _ := reflect.TypeOf(Config{}).FieldByName(goName)
		if f.Type == reflect.TypeOf(time.Duration(0)) {
			return "default " + shortDuration(time.Duration(v)*time.Millisecond)
		}
		return "default " + strconv.FormatFloat(v, 'f', -1, 64)
	}
	t.Fatalf("%s: a default of an unexpected type: %s", goName, row.Default)
	return ""
}

// shortDuration is d as Go spells it, without zero trailing units: 1m, 500ms, 16s.
func shortDuration(d time.Duration) string {
	s := d.String()
	for _, zero := range []string{"0s", "0m"} {
		// A zero unit follows another unit ("1m0s"), never a digit ("10s").
		if rest := strings.TrimSuffix(s, zero); rest != s && rest != "" && !strings.ContainsAny(rest[len(rest)-1:], "0123456789") {
			s = rest
		}
	}
	return s
}

func TestShortDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		time.Minute: "1m", 2 * time.Minute: "2m", 500 * time.Millisecond: "500ms",
		16 * time.Second: "16s", 10 * time.Second: "10s", time.Hour: "1h", 90 * time.Second: "1m30s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// configFieldComments reads config.go's comments on the Config fields, by field name.
func configFieldComments(t *testing.T) map[string]string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	ast.Inspect(file, func(n ast.Node) bool {
		spec, ok := n.(*ast.TypeSpec)
		if !ok || spec.Name.Name != "Config" {
			return true
		}
		for _, f := range spec.Type.(*ast.StructType).Fields.List {
			for _, name := range f.Names {
				// Joined on one line, so that a phrase broken across lines still matches.
				out[name.Name] = strings.Join(strings.Fields(f.Doc.Text()), " ")
			}
		}
		return false
	})
	if len(out) == 0 {
		t.Fatal("config.go declares no Config struct")
	}
	return out
}

// A model's limits in Config.Models are the table's limit settings, under the same JSON names.
func TestModelLimitsHasTheTablesLimitFields(t *testing.T) {
	t.Parallel()
	table := settingsByField(t)
	var limits []string
	for field, row := range table {
		if row.Kind == "count" && strings.HasSuffix(field, "_limit") {
			limits = append(limits, field)
		}
	}
	sort.Strings(limits)
	if len(limits) != 6 {
		t.Fatalf("the table has %d limit settings, want 6: %v", len(limits), limits)
	}
	var tags []string
	typ := reflect.TypeOf(ModelLimits{})
	for i := 0; i < typ.NumField(); i++ {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name != "fallback" {
			tags = append(tags, name)
		}
		if goName, ok := modelFieldNames[name]; !ok || goName != typ.Field(i).Name {
			t.Errorf("modelFieldNames[%q] = %q, want %q", name, goName, typ.Field(i).Name)
		}
	}
	sort.Strings(tags)
	if !reflect.DeepEqual(tags, limits) {
		t.Errorf("ModelLimits's limits are %v; the table's are %v", tags, limits)
	}
	if len(modelFieldNames) != typ.NumField() {
		t.Errorf("modelFieldNames has %d entries for %d ModelLimits fields", len(modelFieldNames), typ.NumField())
	}
}
