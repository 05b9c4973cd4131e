package sdktest

// go-genai's requests that are not a model call, through the pool's HTTPClient (gr_forward),
// against the emulator: a file uploaded with one project's key and a cached content are used
// on that project's keys only, files.get / files.delete, models.list / models.get, the SDK's
// API version kept, the service's error details kept, and the pool's own refusal when the
// pinned project is full.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	rotator "gemini-rotator/bindings/go"
	"google.golang.org/genai"
)

// projects is an emulator with two projects of two keys each (labels a0, a1 and b0, b1).
type projects struct {
	*emulator
	names   [2]string
	entries []string // the pool's "PROJECT:KEY" entries
}

func startProjects(t *testing.T, faults ...map[string]any) *projects {
	t.Helper()
	stamp := time.Now().UnixNano()
	p := &projects{names: [2]string{fmt.Sprintf("alpha-%d", stamp), fmt.Sprintf("beta-%d", stamp)}}
	prefix := uniquePrefix(t)
	var keys []map[string]any
	for i, project := range p.names {
		for j := 0; j < 2; j++ {
			secret := fmt.Sprintf("%s-%d-%d", prefix, i, j)
			keys = append(keys, map[string]any{"key": secret, "label": fmt.Sprintf("%c%d", "ab"[i], j), "project": project})
			p.entries = append(p.entries, project+":"+secret)
		}
	}
	p.emulator = startEmulatorWith(t, keys, faults...)
	return p
}

type logEntry struct {
	Label   string `json:"label"`
	Project string `json:"project"`
	Status  int    `json:"status"`
	Method  string `json:"method"`
	Version string `json:"version"`
}

func (e *emulator) log(t *testing.T) []logEntry {
	t.Helper()
	resp, err := http.Get(e.url + "/_emulator/log")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var entries []logEntry
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		t.Fatal(err)
	}
	return entries
}

func projectsOf(entries []logEntry) map[string]bool {
	set := map[string]bool{}
	for _, e := range entries {
		set[e.Project] = true
	}
	return set
}

// onlyProject is the one project of entries; the test fails when there are several.
func onlyProject(t *testing.T, entries []logEntry) string {
	t.Helper()
	set := projectsOf(entries)
	if len(set) != 1 {
		t.Fatalf("requests on %d projects, want 1: %+v", len(set), entries)
	}
	for p := range set {
		return p
	}
	return ""
}

// sdkOn is the SDK on a pool of the projects' keys.
func (p *projects) sdkOn(t *testing.T, cfg rotator.Config, apiVersion string) *genai.Client {
	t.Helper()
	cfg.FreeKeys = p.entries
	cfg.Model = model
	c, _ := sdkClient(t, p.emulator, cfg, apiVersion)
	return c
}

func upload(t *testing.T, c *genai.Client) *genai.File {
	t.Helper()
	file, err := c.Files.Upload(context.Background(), strings.NewReader(five), &genai.UploadFileConfig{MIMEType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(file.Name, "files/") {
		t.Fatalf("uploaded %+v", file)
	}
	return file
}

func naming(file *genai.File) []*genai.Content {
	return []*genai.Content{genai.NewContentFromParts(
		[]*genai.Part{genai.NewPartFromURI(file.URI, file.MIMEType), genai.NewPartFromText("summarize")}, genai.RoleUser)}
}

func TestAFileIsUsedOnTheKeysOfTheProjectThatUploadedIt(t *testing.T) {
	p := startProjects(t)
	c := p.sdkOn(t, rotator.Config{}, "")
	file := upload(t, c)
	made := p.log(t)
	if len(made) < 2 {
		t.Fatalf("the upload made %d requests: %+v", len(made), made)
	}
	owner := onlyProject(t, made)
	for i := 0; i < 6; i++ {
		if _, err := c.Models.GenerateContent(context.Background(), model, naming(file), nil); err != nil {
			t.Fatal(err)
		}
	}
	uses := p.log(t)[len(made):]
	if len(uses) != 6 || onlyProject(t, uses) != owner {
		t.Fatalf("uses %+v, want 6 on %s", uses, owner)
	}
	for i := 0; i < 4; i++ {
		if _, err := c.Models.GenerateContent(context.Background(), model, genai.Text("plain"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if plain := p.log(t)[len(made)+6:]; len(projectsOf(plain)) != 2 {
		t.Fatalf("requests naming no resource did not rotate over both projects: %+v", plain)
	}
}

func TestACachedContentIsUsedOnItsProjectsKeys(t *testing.T) {
	p := startProjects(t)
	c := p.sdkOn(t, rotator.Config{}, "")
	ctx := context.Background()
	cache, err := c.Caches.Create(ctx, model, &genai.CreateCachedContentConfig{
		Contents: genai.Text(five), TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	made := p.log(t)
	owner := onlyProject(t, made)
	for i := 0; i < 4; i++ {
		resp, err := c.Models.GenerateContent(ctx, model, genai.Text("and then?"), &genai.GenerateContentConfig{CachedContent: cache.Name})
		if err != nil || resp.Text() == "" {
			t.Fatalf("%v %v", resp, err)
		}
	}
	if _, err := c.Caches.Get(ctx, cache.Name, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Caches.Delete(ctx, cache.Name, nil); err != nil {
		t.Fatal(err)
	}
	if uses := p.log(t)[len(made):]; len(uses) != 6 || onlyProject(t, uses) != owner {
		t.Fatalf("uses %+v, want 6 on %s", uses, owner)
	}
}

func TestFilesGetDeleteAndTheModels(t *testing.T) {
	p := startProjects(t)
	c := p.sdkOn(t, rotator.Config{}, "")
	ctx := context.Background()
	file := upload(t, c)
	got, err := c.Files.Get(ctx, file.Name, nil)
	if err != nil || got.Name != file.Name || got.MIMEType != "text/plain" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := c.Files.Delete(ctx, file.Name, nil); err != nil {
		t.Fatal(err)
	}
	pinned := p.log(t)
	if len(pinned) != 4 { // create, upload, get, delete: all on the uploading project
		t.Fatalf("%+v", pinned)
	}
	onlyProject(t, pinned)
	// The delete removed the pin: the pool asks one key of each project before it answers.
	_, err = c.Files.Get(ctx, file.Name, nil)
	var api genai.APIError
	if !errors.As(err, &api) || (api.Code != 404 && api.Code != 403) {
		t.Fatalf("get after delete: %v (%T)", err, err)
	}
	if after := p.log(t)[len(pinned):]; len(after) != 2 || len(projectsOf(after)) != 2 {
		t.Fatalf("get after delete asked %+v, want one key of each project", after)
	}
	page, err := c.Models.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range page.Items {
		found = found || m.Name == "models/gemini-3.6-flash" // the emulator's catalog
	}
	if !found {
		t.Fatalf("models.list lacks gemini-3.6-flash: %d models", len(page.Items))
	}
	m, err := c.Models.Get(ctx, model, nil)
	if err != nil || m.Name != "models/"+model || m.InputTokenLimit == 0 {
		t.Fatalf("%+v %v", m, err)
	}
}

func TestTheSDKsAPIVersionReachesTheService(t *testing.T) {
	p := startProjects(t)
	for _, version := range []string{"v1", "v1beta"} {
		c := p.sdkOn(t, rotator.Config{}, version)
		before := len(p.log(t))
		if _, err := c.Models.GenerateContent(context.Background(), model, genai.Text(five), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Models.Get(context.Background(), model, nil); err != nil {
			t.Fatal(err)
		}
		sent := p.log(t)[before:]
		if len(sent) != 2 || sent[0].Version != version || sent[1].Version != version {
			t.Fatalf("APIVersion %s sent as %+v", version, sent)
		}
	}
}

func TestTheServicesErrorDetailsReachTheSDK(t *testing.T) {
	var faults []map[string]any
	for _, label := range []string{"a0", "a1", "b0", "b1"} {
		faults = append(faults, map[string]any{"label": label, "kind": "bad_request", "count": 1})
	}
	p := startProjects(t, faults...)
	c := p.sdkOn(t, rotator.Config{}, "")
	_, err := c.Models.GenerateContent(context.Background(), model, genai.Text(five), nil)
	var api genai.APIError
	if !errors.As(err, &api) || api.Code != 400 || api.Status != "INVALID_ARGUMENT" {
		t.Fatalf("err = %v (%T), want the SDK's APIError 400", err, err)
	}
	if len(api.Details) != 1 || api.Details[0]["@type"] != "type.googleapis.com/google.rpc.BadRequest" {
		t.Fatalf("details %+v", api.Details)
	}
	violations, _ := api.Details[0]["fieldViolations"].([]any)
	if len(violations) != 1 || violations[0].(map[string]any)["field"] != "contents" {
		t.Fatalf("details %+v", api.Details)
	}
	if n := len(p.log(t)); n != 1 {
		t.Fatalf("a 400 went to %d keys, want 1", n)
	}
}

func TestThePoolsRefusalWhenThePinnedProjectIsFull(t *testing.T) {
	p := startProjects(t)
	c := p.sdkOn(t, rotator.Config{FreeRateLimit: 2}, "")
	ctx := context.Background()
	file := upload(t, c)
	made := p.log(t)
	owner := onlyProject(t, made)
	for i := 0; i < 2; i++ {
		if _, err := c.Models.GenerateContent(ctx, model, naming(file), nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.Models.GenerateContent(ctx, model, naming(file), nil)
	var limited *rotator.RateLimitError
	if !errors.Is(err, rotator.ErrAllKeysRateLimited) || !errors.As(err, &limited) || limited.RetryAfter <= 0 {
		t.Fatalf("err = %v (%T), want ErrAllKeysRateLimited through the SDK", err, err)
	}
	if uses := p.log(t)[len(made):]; len(uses) != 2 || onlyProject(t, uses) != owner {
		t.Fatalf("uses %+v, want 2 on %s", uses, owner)
	}
	if _, err := c.Models.GenerateContent(ctx, model, genai.Text("plain"), nil); err != nil {
		t.Fatal(err)
	}
	if plain := p.log(t)[len(made)+2:]; onlyProject(t, plain) == owner {
		t.Fatalf("a request naming no resource waited for the full project: %+v", plain)
	}
}

func TestAPathThePoolDoesNotServeIsRefusedClearly(t *testing.T) {
	e := startEmulator(t, 1)
	_, pool := client(t, e, 1, rotator.Config{})
	_, err := pool.HTTPClient().Get(e.url + "/v1beta/tunedModels?pageSize=5")
	if !errors.Is(err, rotator.ErrInvalidArgument) || !strings.Contains(err.Error(), "/v1beta/tunedModels") {
		t.Fatalf("err = %v, want ErrInvalidArgument naming the path", err)
	}
	if got := e.stats(t).Keys["l0"].Requests; got != 0 {
		t.Fatalf("the emulator saw %d requests", got)
	}
}
