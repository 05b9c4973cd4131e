package rotator

import (
	"encoding/json"
	"strings"
)

// The Gemini generateContent wire format. JSON names follow the API (camelCase); optional
// fields are pointers or omitempty, so that an unset field is not sent. Fields this package does
// not model can be sent through the Extra maps, or with [GeminiClient.GenerateContentJSON].

// GeminiRequest is a generateContent request.
type GeminiRequest struct {
	Contents          []GeminiContent         `json:"contents"`
	SystemInstruction *GeminiContent          `json:"systemInstruction,omitempty"`
	GenerationConfig  *GeminiGenerationConfig `json:"generationConfig,omitempty"`
	SafetySettings    []GeminiSafetySetting   `json:"safetySettings,omitempty"`
	Tools             []GeminiTool            `json:"tools,omitempty"`
	ToolConfig        *GeminiToolConfig       `json:"toolConfig,omitempty"`
	// CachedContent names a cached content resource ("cachedContents/...").
	CachedContent string `json:"cachedContent,omitempty"`

	// Model selects the model of this request (e.g. "gemini-3.6-pro"); "" uses the client's
	// Model, then the pool's. It is part of the URL, not of the body.
	Model string `json:"-"`
	// Extra holds request fields this package does not model; they are added to the body
	// unless a field above already sets them.
	Extra map[string]any `json:"-"`
}

// MarshalJSON encodes the request body, Extra fields included.
func (r GeminiRequest) MarshalJSON() ([]byte, error) {
	type plain GeminiRequest
	return marshalWithExtra(plain(r), r.Extra)
}

// GeminiContent is one turn of a conversation.
type GeminiContent struct {
	// Role is "user" or "model"; "" lets the service assume "user".
	Role  string       `json:"role,omitempty"`
	Parts []GeminiPart `json:"parts,omitempty"`
}

// GeminiPart is one piece of a content: set exactly one of the data fields.
type GeminiPart struct {
	Text                string                     `json:"text,omitempty"`
	InlineData          *GeminiBlob                `json:"inlineData,omitempty"`
	FileData            *GeminiFileData            `json:"fileData,omitempty"`
	FunctionCall        *GeminiFunctionCall        `json:"functionCall,omitempty"`
	FunctionResponse    *GeminiFunctionResponse    `json:"functionResponse,omitempty"`
	ExecutableCode      *GeminiExecutableCode      `json:"executableCode,omitempty"`
	CodeExecutionResult *GeminiCodeExecutionResult `json:"codeExecutionResult,omitempty"`
	// Thought marks a summary of the model's reasoning (thinking models), not the answer.
	Thought bool `json:"thought,omitempty"`
	// ThoughtSignature must be sent back with the part in multi-turn conversations.
	ThoughtSignature string `json:"thoughtSignature,omitempty"`
}

// GeminiBlob is inline media. Data holds the raw bytes (base64 on the wire).
type GeminiBlob struct {
	MIMEType string `json:"mimeType"`
	Data     []byte `json:"data"`
}

// GeminiFileData refers to an uploaded file.
type GeminiFileData struct {
	MIMEType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

// GeminiFunctionCall is a call the model asks the program to make.
type GeminiFunctionCall struct {
	ID   string         `json:"id,omitempty"`
	Name string         `json:"name"`
	Args map[string]any `json:"args,omitempty"`
}

// GeminiFunctionResponse is the program's answer to a [GeminiFunctionCall].
type GeminiFunctionResponse struct {
	ID       string         `json:"id,omitempty"`
	Name     string         `json:"name"`
	Response map[string]any `json:"response"`
}

// GeminiExecutableCode is code the model wrote for the code-execution tool.
type GeminiExecutableCode struct {
	Language string `json:"language"`
	Code     string `json:"code"`
}

// GeminiCodeExecutionResult is the outcome of running [GeminiExecutableCode].
type GeminiCodeExecutionResult struct {
	Outcome string `json:"outcome"`
	Output  string `json:"output,omitempty"`
}

// GeminiGenerationConfig tunes generation. Nil pointers are left to the model's defaults.
type GeminiGenerationConfig struct {
	Temperature        *float64              `json:"temperature,omitempty"`
	TopP               *float64              `json:"topP,omitempty"`
	TopK               *int                  `json:"topK,omitempty"`
	CandidateCount     *int                  `json:"candidateCount,omitempty"`
	MaxOutputTokens    *int                  `json:"maxOutputTokens,omitempty"`
	StopSequences      []string              `json:"stopSequences,omitempty"`
	PresencePenalty    *float64              `json:"presencePenalty,omitempty"`
	FrequencyPenalty   *float64              `json:"frequencyPenalty,omitempty"`
	Seed               *int                  `json:"seed,omitempty"`
	ResponseMIMEType   string                `json:"responseMimeType,omitempty"`
	ResponseSchema     any                   `json:"responseSchema,omitempty"`     // e.g. a *GeminiSchema
	ResponseJSONSchema any                   `json:"responseJsonSchema,omitempty"` // a JSON Schema value
	ResponseModalities []string              `json:"responseModalities,omitempty"`
	ResponseLogprobs   *bool                 `json:"responseLogprobs,omitempty"`
	Logprobs           *int                  `json:"logprobs,omitempty"`
	MediaResolution    string                `json:"mediaResolution,omitempty"`
	ThinkingConfig     *GeminiThinkingConfig `json:"thinkingConfig,omitempty"`

	// Extra holds generation settings this package does not model; they are added unless a
	// field above already sets them.
	Extra map[string]any `json:"-"`
}

// MarshalJSON encodes the configuration, Extra fields included.
func (c GeminiGenerationConfig) MarshalJSON() ([]byte, error) {
	type plain GeminiGenerationConfig
	return marshalWithExtra(plain(c), c.Extra)
}

// GeminiThinkingConfig controls the reasoning of thinking models.
type GeminiThinkingConfig struct {
	// ThinkingBudget is the thinking tokens allowed: 0 turns thinking off, -1 lets the
	// model decide.
	ThinkingBudget *int `json:"thinkingBudget,omitempty"`
	// IncludeThoughts asks for thought summaries (parts with Thought set).
	IncludeThoughts bool `json:"includeThoughts,omitempty"`
	// ThinkingLevel ("low", "high") is the Gemini 3 alternative to a budget.
	ThinkingLevel string `json:"thinkingLevel,omitempty"`
}

// GeminiSchema is the OpenAPI subset the API takes as ResponseSchema or function parameters.
type GeminiSchema struct {
	Type             string                   `json:"type,omitempty"` // "STRING", "OBJECT", ...
	Format           string                   `json:"format,omitempty"`
	Description      string                   `json:"description,omitempty"`
	Nullable         *bool                    `json:"nullable,omitempty"`
	Enum             []string                 `json:"enum,omitempty"`
	Properties       map[string]*GeminiSchema `json:"properties,omitempty"`
	Required         []string                 `json:"required,omitempty"`
	PropertyOrdering []string                 `json:"propertyOrdering,omitempty"`
	Items            *GeminiSchema            `json:"items,omitempty"`
}

// GeminiSafetySetting sets the blocking threshold of one harm category.
type GeminiSafetySetting struct {
	Category  string `json:"category"`  // e.g. "HARM_CATEGORY_HARASSMENT"
	Threshold string `json:"threshold"` // e.g. "BLOCK_ONLY_HIGH"
}

// GeminiTool is a tool the model may use.
type GeminiTool struct {
	FunctionDeclarations []GeminiFunctionDeclaration `json:"functionDeclarations,omitempty"`
	GoogleSearch         *GeminiGoogleSearch         `json:"googleSearch,omitempty"`
	CodeExecution        *GeminiCodeExecution        `json:"codeExecution,omitempty"`
	URLContext           *GeminiURLContext           `json:"urlContext,omitempty"`
}

// GeminiFunctionDeclaration declares a function the model may call.
type GeminiFunctionDeclaration struct {
	Name                 string `json:"name"`
	Description          string `json:"description,omitempty"`
	Parameters           any    `json:"parameters,omitempty"`           // e.g. a *GeminiSchema
	ParametersJSONSchema any    `json:"parametersJsonSchema,omitempty"` // a JSON Schema value
}

// GeminiGoogleSearch enables grounding with Google Search.
type GeminiGoogleSearch struct{}

// GeminiCodeExecution enables the code-execution tool.
type GeminiCodeExecution struct{}

// GeminiURLContext enables fetching URLs named in the prompt.
type GeminiURLContext struct{}

// GeminiToolConfig configures tool use.
type GeminiToolConfig struct {
	FunctionCallingConfig *GeminiFunctionCallingConfig `json:"functionCallingConfig,omitempty"`
}

// GeminiFunctionCallingConfig says whether and which functions the model may call.
type GeminiFunctionCallingConfig struct {
	Mode                 string   `json:"mode,omitempty"` // "AUTO", "ANY", "NONE", "VALIDATED"
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

// GeminiResponse is a generateContent response. A response blocked for safety is a success:
// check PromptFeedback.BlockReason and the candidates' FinishReason.
type GeminiResponse struct {
	Candidates     []GeminiCandidate     `json:"candidates,omitempty"`
	PromptFeedback *GeminiPromptFeedback `json:"promptFeedback,omitempty"`
	UsageMetadata  *GeminiUsageMetadata  `json:"usageMetadata,omitempty"`
	ModelVersion   string                `json:"modelVersion,omitempty"`
	ResponseID     string                `json:"responseId,omitempty"`

	// KeyFingerprint is the fingerprint of the key that served the request.
	KeyFingerprint string `json:"-"`
	// Model is the model that served the request (without "models/"): the one asked for, or,
	// when no key could serve that one, the first of its configured fallbacks that could
	// ([ModelLimits.Fallback]). On a stream's events, the stream's model. Not ModelVersion,
	// which is the service's own name of the version that answered.
	Model string `json:"-"`
	// Raw is the response body as the service sent it, with any field not modelled here.
	Raw json.RawMessage `json:"-"`
}

// Text is the answer's text: the non-thought text parts of the first candidate, joined. It is
// "" when there is no candidate (for instance when the prompt was blocked).
func (r *GeminiResponse) Text() string {
	if r == nil || len(r.Candidates) == 0 {
		return ""
	}
	var b strings.Builder
	for _, p := range r.Candidates[0].Content.Parts {
		if !p.Thought {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// GeminiCandidate is one answer of the model.
type GeminiCandidate struct {
	Content       GeminiContent        `json:"content"`
	FinishReason  string               `json:"finishReason,omitempty"` // "STOP", "MAX_TOKENS", "SAFETY", ...
	FinishMessage string               `json:"finishMessage,omitempty"`
	SafetyRatings []GeminiSafetyRating `json:"safetyRatings,omitempty"`
	TokenCount    int                  `json:"tokenCount,omitempty"`
	AvgLogprobs   float64              `json:"avgLogprobs,omitempty"`
	Index         int                  `json:"index"`
}

// GeminiSafetyRating is the probability of harm in one category.
type GeminiSafetyRating struct {
	Category    string `json:"category"`
	Probability string `json:"probability"`
	Blocked     bool   `json:"blocked,omitempty"`
}

// GeminiPromptFeedback says whether the prompt was blocked, and why.
type GeminiPromptFeedback struct {
	BlockReason   string               `json:"blockReason,omitempty"` // e.g. "SAFETY"
	SafetyRatings []GeminiSafetyRating `json:"safetyRatings,omitempty"`
}

// GeminiUsageMetadata counts the tokens of the call.
type GeminiUsageMetadata struct {
	PromptTokenCount        int `json:"promptTokenCount"`
	CandidatesTokenCount    int `json:"candidatesTokenCount,omitempty"`
	TotalTokenCount         int `json:"totalTokenCount"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount,omitempty"`
	CachedContentTokenCount int `json:"cachedContentTokenCount,omitempty"`
	ToolUsePromptTokenCount int `json:"toolUsePromptTokenCount,omitempty"`
}

// Float64Ptr returns a pointer to v, for optional fields.
func Float64Ptr(v float64) *float64 { return &v }

// IntPtr returns a pointer to v, for optional fields.
func IntPtr(v int) *int { return &v }

// StringPtr returns a pointer to v, for optional fields.
func StringPtr(v string) *string { return &v }

// BoolPtr returns a pointer to v, for optional fields.
func BoolPtr(v bool) *bool { return &v }

// marshalWithExtra encodes v (a struct) and adds the extra fields it does not set itself.
func marshalWithExtra(v any, extra map[string]any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return data, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, err
	}
	for name, value := range extra {
		if _, set := fields[name]; set {
			continue
		}
		raw, err := json.Marshal(value)
		if err != nil {
			return nil, err
		}
		fields[name] = raw
	}
	return json.Marshal(fields)
}
