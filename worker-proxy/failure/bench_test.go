package failure

import (
	"testing"
)

func BenchmarkResponse(b *testing.B) {
	for _, name := range []string{"gemini_minute_and_day.json", "openai_rate_limit_tokens.json", "anthropic_overloaded.json"} {
		body := fixture(b, name)
		c := testClassifier()
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.Response(429, nil, body)
			}
		})
	}
}
