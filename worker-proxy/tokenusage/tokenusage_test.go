package tokenusage

import (
	"io"
	"strings"
	"testing"
)

// Bodies shaped like the providers' real answers (field order and nesting
// as their APIs send them).
var samples = []struct {
	name string
	body string
	want Usage
	none bool // the body reports no usage
}{
	{name: "openai chat json", want: Usage{19, 10}, body: `{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I assist you today?", "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  },
  "service_tier": "default"
}`},
	{name: "openai chat stream include_usage", want: Usage{11, 3}, body: "" +
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}` + "\n\n" +
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Say \"usage\": {\"prompt_tokens\": 999}"},"finish_reason":null}],"usage":null}` + "\n\n" +
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}` + "\n\n" +
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}` + "\n\n" +
		"data: [DONE]\n\n"},
	{name: "openai chat stream without usage", none: true, body: "" +
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}` + "\n\n" +
		"data: [DONE]\n\n"},
	{name: "openai embeddings", want: Usage{8, 0}, body: `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,-0.0028842222]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}`},
	{name: "openai responses stream", want: Usage{36, 87}, body: "" +
		"event: response.created\n" + `data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","model":"gpt-4.1","output":[],"usage":null}}` + "\n\n" +
		"event: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi"}` + "\n\n" +
		"event: response.completed\n" + `data: {"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1","usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}}` + "\n\n"},
	{name: "gemini json", want: Usage{8, 12 + 40}, body: `{
  "candidates": [
    {
      "content": {"parts": [{"text": "Hello there! How can I help you today?"}], "role": "model"},
      "finishReason": "STOP",
      "index": 0
    }
  ],
  "usageMetadata": {
    "promptTokenCount": 8,
    "candidatesTokenCount": 12,
    "totalTokenCount": 60,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
    "thoughtsTokenCount": 40
  },
  "modelVersion": "gemini-2.5-flash",
  "responseId": "mK2aaJ6YKb6Tz7IP8e2jqAo"
}`},
	{name: "gemini sse crlf", want: Usage{7, 25}, body: "" +
		`data: {"candidates": [{"content": {"parts": [{"text": "The"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 7,"totalTokenCount": 7,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 7}]},"modelVersion": "gemini-2.5-flash","responseId": "r1"}` + "\r\n\r\n" +
		`data: {"candidates": [{"content": {"parts": [{"text": " sky is blue"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 10,"totalTokenCount": 17},"modelVersion": "gemini-2.5-flash","responseId": "r1"}` + "\r\n\r\n" +
		`data: {"candidates": [{"content": {"parts": [{"text": "."}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 25,"totalTokenCount": 32,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 7}]},"modelVersion": "gemini-2.5-flash","responseId": "r1"}` + "\r\n\r\n"},
	{name: "gemini openai-compatible stream", want: Usage{5, 9}, body: "" +
		`data: {"choices":[{"delta":{"content":"Hi","role":"assistant"},"index":0}],"created":1,"id":"x","model":"gemini-2.5-flash","object":"chat.completion.chunk"}` + "\n\n" +
		`data: {"choices":[{"delta":{"content":"!","role":"assistant"},"finish_reason":"stop","index":0}],"created":1,"id":"x","model":"gemini-2.5-flash","object":"chat.completion.chunk","usage":{"completion_tokens":9,"prompt_tokens":5,"total_tokens":14}}` + "\n\n" +
		"data: [DONE]\n\n"},
	{name: "anthropic json", want: Usage{2095 + 100 + 2000, 503}, body: `{
  "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
  "type": "message",
  "role": "assistant",
  "content": [{"type": "text", "text": "Hello!"}, {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"query": "usage"}}],
  "model": "claude-sonnet-4-20250514",
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "usage": {"input_tokens": 2095, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000, "output_tokens": 503, "service_tier": "standard"}
}`},
	{name: "anthropic stream", want: Usage{25, 15}, body: "" +
		"event: message_start\n" + `data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-1-20250805", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}` + "\n\n" +
		"event: content_block_start\n" + `data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}` + "\n\n" +
		"event: ping\n" + `data: {"type": "ping"}` + "\n\n" +
		"event: content_block_delta\n" + `data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}` + "\n\n" +
		"event: content_block_stop\n" + `data: {"type": "content_block_stop", "index": 0}` + "\n\n" +
		"event: message_delta\n" + `data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}` + "\n\n" +
		"event: message_stop\n" + `data: {"type": "message_stop"}` + "\n\n"},
	{name: "anthropic stream, cumulative delta with input", want: Usage{30, 42}, body: "" +
		"event: message_start\n" + `data: {"type":"message_start","message":{"model":"claude-sonnet-4-5","usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":20,"output_tokens":1}}}` + "\n\n" +
		"event: message_delta\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":20,"output_tokens":42}}` + "\n\n"},
	{name: "error body", none: true, body: `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`},
	{name: "usage that is not an object", none: true, body: `{"usage": null, "usageMetadata": "x", "usages": {"prompt_tokens": 3}}`},
}

func count(body string, chunk int) (Usage, bool) {
	var c Counter
	for len(body) > 0 {
		n := min(chunk, len(body))
		c.Write([]byte(body[:n]))
		body = body[n:]
	}
	return c.Usage()
}

func TestSamples(t *testing.T) {
	for _, s := range samples {
		for _, chunk := range []int{1, 2, 3, 5, 7, 13, 64, 1 << 20} {
			got, ok := count(s.body, chunk)
			if ok == s.none || got != s.want {
				t.Errorf("%s in %d-byte writes: got %+v (found %v), want %+v (found %v)", s.name, chunk, got, ok, s.want, !s.none)
			}
		}
	}
}

func TestReaderPassesBytesThrough(t *testing.T) {
	s := samples[1]
	var c Counter
	r := &Reader{R: io.NopCloser(strings.NewReader(s.body)), C: &c}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != s.body {
		t.Fatalf("body changed in transit (err %v)", err)
	}
	if u, ok := c.Usage(); !ok || u != s.want {
		t.Fatalf("usage %+v, want %+v", u, s.want)
	}
	c.Reset()
	if _, ok := c.Usage(); ok {
		t.Fatal("Reset must forget the counts")
	}
}

func TestOversizedObjectIgnored(t *testing.T) {
	body := `{"usage":{"pad":"` + strings.Repeat("x", maxObject) + `","prompt_tokens":5}, "usage": {"prompt_tokens": 6, "completion_tokens": 1}}`
	for _, chunk := range []int{1, 100, 1 << 20} {
		if got, ok := count(body, chunk); !ok || got != (Usage{6, 1}) {
			t.Fatalf("%d-byte writes: got %+v, want {6 1}: an oversized object is skipped, the next one read", chunk, got)
		}
	}
}

// Whatever the bytes, however split, the counter never panics and reads
// the same counts as from one write.
func FuzzCounter(f *testing.F) {
	for _, s := range samples {
		f.Add([]byte(s.body), uint8(3))
	}
	f.Add([]byte(`"usage"  :  {"prompt_tokens":1`), uint8(1))
	f.Add([]byte(`"usageMetadata":{"promptTokenCount":99999999999999999999999}`), uint8(2))
	f.Fuzz(func(t *testing.T, body []byte, chunk uint8) {
		want, wantOK := count(string(body), len(body)+1)
		got, ok := count(string(body), int(chunk)+1)
		if got != want || ok != wantOK {
			t.Fatalf("split every %d bytes: %+v %v, whole: %+v %v", int(chunk)+1, got, ok, want, wantOK)
		}
		if got.Prompt < 0 || got.Completion < 0 {
			t.Fatalf("negative counts %+v", got)
		}
	})
}

func BenchmarkCounter(b *testing.B) {
	for _, s := range samples[:9] {
		b.Run(strings.ReplaceAll(s.name, " ", "_"), func(b *testing.B) {
			body := []byte(s.body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var c Counter
			for b.Loop() {
				c.Reset()
				for p := body; len(p) > 0; {
					n := min(len(p), 512)
					c.Write(p[:n])
					p = p[n:]
				}
			}
		})
	}
}

func TestTallyBoundsNames(t *testing.T) {
	ta := NewTally(2)
	ta.Add("a", Totals{Requests: 1, Prompt: 10})
	ta.Add("b", Totals{Requests: 1, Completion: 5})
	ta.Add("c", Totals{Requests: 1, Prompt: 1})
	ta.Add("d", Totals{Refused: 1})
	ta.Add("a", Totals{Requests: 1, Prompt: 10})
	got := ta.All()
	want := []Named{{"a", Totals{Requests: 2, Prompt: 20}}, {"b", Totals{Requests: 1, Completion: 5}}, {Other, Totals{Requests: 1, Refused: 1, Prompt: 1}}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
	if ta.Get("a").Prompt != 20 || ta.Get("zzz") != (Totals{}) {
		t.Fatal("Get")
	}
}

// A usage object that arrives whole in one write is read where it is: a
// fresh counter (one per relayed request) allocates nothing for it.
func TestWholeObjectNotCopied(t *testing.T) {
	for _, s := range samples[:9] {
		body := []byte(s.body)
		allocs := testing.AllocsPerRun(100, func() {
			var c Counter
			c.Write(body)
			if u, ok := c.Usage(); ok == s.none || u != s.want {
				t.Fatalf("%s: usage %+v", s.name, u)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per body, want 0", s.name, allocs)
		}
	}
}
