package rotator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
)

func TestRequestJSONUsesTheAPINamesAndOmitsUnsetFields(t *testing.T) {
	t.Parallel()
	req := &GeminiRequest{
		Model: "not-in-the-body",
		Contents: []GeminiContent{{Role: "user", Parts: []GeminiPart{
			{Text: "look"},
			{InlineData: &GeminiBlob{MIMEType: "image/png", Data: []byte{1, 2, 3}}},
		}}},
		SystemInstruction: &GeminiContent{Parts: []GeminiPart{{Text: "be brief"}}},
		GenerationConfig: &GeminiGenerationConfig{
			Temperature: Float64Ptr(0), MaxOutputTokens: IntPtr(1000), ResponseMIMEType: "application/json",
			ThinkingConfig: &GeminiThinkingConfig{ThinkingBudget: IntPtr(0)},
			Extra:          map[string]any{"speechConfig": map[string]any{"voice": "x"}, "temperature": 9},
		},
		SafetySettings: []GeminiSafetySetting{{Category: "HARM_CATEGORY_HARASSMENT", Threshold: "BLOCK_ONLY_HIGH"}},
		Tools:          []GeminiTool{{GoogleSearch: &GeminiGoogleSearch{}}},
		ToolConfig:     &GeminiToolConfig{FunctionCallingConfig: &GeminiFunctionCallingConfig{Mode: "AUTO"}},
		Extra:          map[string]any{"labels": map[string]string{"team": "a"}},
	}
	got, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"contents":[{"role":"user","parts":[{"text":"look"},{"inlineData":{"mimeType":"image/png","data":"AQID"}}]}],` +
		`"generationConfig":{"maxOutputTokens":1000,"responseMimeType":"application/json","speechConfig":{"voice":"x"},"temperature":0,"thinkingConfig":{"thinkingBudget":0}},` +
		`"labels":{"team":"a"},` +
		`"safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_ONLY_HIGH"}],` +
		`"systemInstruction":{"parts":[{"text":"be brief"}]},` +
		`"toolConfig":{"functionCallingConfig":{"mode":"AUTO"}},"tools":[{"googleSearch":{}}]}`
	if string(got) != want {
		t.Errorf("request JSON\n got: %s\nwant: %s", got, want)
	}

	plain, _ := json.Marshal(prompt("hi"))
	if string(plain) != `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}` {
		t.Errorf("minimal request JSON = %s", plain)
	}
}

func TestTheServiceGetsTheRequestBodyAndTheChosenModel(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	pool := newPool(t, Config{FreeKeys: []string{key.Key}, Model: "gemini-pool-default"})
	client := NewGeminiClient(pool)
	req := prompt("exact body")
	req.GenerationConfig = &GeminiGenerationConfig{Temperature: Float64Ptr(0.7), MaxOutputTokens: IntPtr(1000)}
	body, _ := json.Marshal(req)

	models := []string{}
	req.Model = "gemini-3.6-pro"
	if _, err := client.GenerateContent(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	models = append(models, "gemini-3.6-pro")
	if got := emu.lastBody(t, key); !bytes.Equal(got, body) {
		t.Errorf("the service got\n%s\nwant\n%s", got, body)
	}
	req.Model = ""
	if _, err := client.GenerateContent(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	models = append(models, "gemini-pool-default")
	client.Model = "gemini-client-default"
	if _, err := client.GenerateContent(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	models = append(models, "gemini-client-default")

	log := emu.log(t, key)
	if len(log) != len(models) {
		t.Fatalf("emulator log = %+v, want %d entries", log, len(models))
	}
	for i, want := range models {
		if log[i].Model != want {
			t.Errorf("request %d went to model %q, want %q", i, log[i].Model, want)
		}
	}

	req.Model = "not a model!"
	if _, err := client.GenerateContent(context.Background(), req); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad model: err = %v, want ErrInvalidArgument", err)
	}
	req.Model = "nul\x00model"
	if _, err := client.GenerateContent(context.Background(), req); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("model with NUL: err = %v, want ErrInvalidArgument", err)
	}
	if _, err := client.GenerateContent(context.Background(), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil request: err = %v, want ErrInvalidArgument", err)
	}
}

func TestResponseTextSkipsThoughts(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	req := prompt("think first")
	req.GenerationConfig = &GeminiGenerationConfig{ThinkingConfig: &GeminiThinkingConfig{IncludeThoughts: true}}

	resp, err := NewGeminiClient(pool).GenerateContent(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	parts := resp.Candidates[0].Content.Parts
	if len(parts) != 2 || !parts[0].Thought || parts[0].Text == "" || parts[1].Thought {
		t.Fatalf("parts = %+v, want a thought then the answer", parts)
	}
	if resp.Text() != "echo: think first" {
		t.Errorf("Text() = %q, want the answer without the thought", resp.Text())
	}
	if resp.UsageMetadata == nil || resp.UsageMetadata.ThoughtsTokenCount == 0 || resp.UsageMetadata.TotalTokenCount == 0 {
		t.Errorf("UsageMetadata = %+v", resp.UsageMetadata)
	}
	if resp.Candidates[0].FinishReason != "STOP" || resp.ResponseID == "" || resp.ModelVersion == "" {
		t.Errorf("response = %+v", resp)
	}
	var raw map[string]any
	if err := json.Unmarshal(resp.Raw, &raw); err != nil || raw["candidates"] == nil {
		t.Errorf("Raw = %s, want the response body", resp.Raw)
	}
}

func TestGenerateContentJSONPassesBodiesThrough(t *testing.T) {
	t.Parallel()
	key := newKeys(t, 1)[0]
	pool := newPool(t, Config{FreeKeys: []string{key.Key}})
	client := NewGeminiClient(pool)
	body := []byte(`{"contents":[{"parts":[{"text":"raw"}]}],"someFutureField":{"x":1}}`)

	out, fp, err := client.GenerateContentJSON(context.Background(), "", body)
	if err != nil {
		t.Fatal(err)
	}
	if fp != key.Fingerprint() {
		t.Errorf("fingerprint = %q, want %q", fp, key.Fingerprint())
	}
	var resp GeminiResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.Text() != "echo: raw" {
		t.Errorf("response %s: %v", out, err)
	}
	if got := emu.lastBody(t, key); !bytes.Equal(got, body) {
		t.Errorf("the service got %s, want the body untouched", got)
	}

	for _, bad := range [][]byte{[]byte(`{"contents": [`), []byte("{\"a\":\"\x00\"}")} {
		if _, _, err := client.GenerateContentJSON(context.Background(), "", bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("body %q: err = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestResponseTextOfNothingIsEmpty(t *testing.T) {
	t.Parallel()
	var nilResp *GeminiResponse
	if nilResp.Text() != "" || (&GeminiResponse{}).Text() != "" {
		t.Error("Text of an empty response is not empty")
	}
	r := &GeminiResponse{Candidates: []GeminiCandidate{{Content: GeminiContent{Parts: []GeminiPart{
		{Text: "a"}, {FunctionCall: &GeminiFunctionCall{Name: "f"}}, {Text: "b"},
	}}}}}
	if r.Text() != "ab" {
		t.Errorf("Text() = %q, want the text parts joined", r.Text())
	}
	if *StringPtr("s") != "s" || !*BoolPtr(true) || *IntPtr(3) != 3 || *Float64Ptr(0.5) != 0.5 {
		t.Error("pointer helpers")
	}
}
