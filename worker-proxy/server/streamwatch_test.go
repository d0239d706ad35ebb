package server

import (
	"io"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/failure"
)

// pieces reads the given strings one per Read, like a stream arriving in
// network chunks.
type pieces struct{ parts []string }

func (p *pieces) Read(b []byte) (int, error) {
	if len(p.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.parts[0])
	if p.parts[0] = p.parts[0][n:]; p.parts[0] == "" {
		p.parts = p.parts[1:]
	}
	return n, nil
}

func (p *pieces) Close() error { return nil }

// Gemini's JSON-array stream can carry its error object pretty-printed over
// several lines, outside SSE framing (see provider-errors.md §1.4).
func TestStreamWatchPrettyPrintedGeminiError(t *testing.T) {
	s, _ := newTestServer(t)
	chunk := "[{\n  \"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}]}}]\n}\n"
	errObj := ",\n{\n  \"error\": {\n    \"code\": 503,\n    \"message\": \"The model is overloaded {really}. Please try again later.\",\n    \"status\": \"UNAVAILABLE\"\n  }\n}\n]"
	whole := chunk + errObj
	for _, tc := range []struct {
		name  string
		parts []string
		want  bool
	}{
		{"one read", []string{whole}, true},
		{"split inside the object", []string{chunk, errObj[:20], errObj[20:47], errObj[47:]}, true},
		{"no error", []string{chunk, "]"}, false},
		{"the word error in the answer", []string{"[{\n  \"candidates\": [{\"content\": {\"parts\": [{\"text\": \"an \\\"error\\\": none\"}]}}]\n}\n]"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &relayState{}
			w := &streamWatch{rc: &pieces{parts: append([]string(nil), tc.parts...)}, s: s, st: st}
			got, err := io.ReadAll(w)
			if err != nil || string(got) != strings.Join(tc.parts, "") {
				t.Fatalf("the stream was changed: %q %v", got, err)
			}
			if (st.streamErr != nil) != tc.want {
				t.Fatalf("error found = %v, want %v", st.streamErr, tc.want)
			}
			if tc.want && st.streamErr.Class != failure.Upstream {
				t.Fatalf("class %v, want upstream (503 UNAVAILABLE)", st.streamErr.Class)
			}
		})
	}
}

func TestJSONDepth(t *testing.T) {
	for in, want := range map[string]int{
		`{`: 1, `{"error": {`: 2, `{"a": "}{"}`: 0, `{"a": "\"{"`: 1, `[{}]`: 0, `{"a": "\\"}`: 0,
	} {
		if got := jsonDepth([]byte(in)); got != want {
			t.Errorf("jsonDepth(%s) = %d, want %d", in, got, want)
		}
	}
}
