package redact

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// BenchmarkSuccessBody is what masking costs a successful answer: the
// reader over the key that served, against a plain copy through the same
// 32 KiB buffer (as the reverse proxy copies), for a chat completion and a
// 64 KiB stream.
func BenchmarkSuccessBody(b *testing.B) {
	chat := []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the fake upstream"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15}}`)
	stream := []byte(strings.Repeat(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello"}}]}`+"\n\n", 600))
	buf := make([]byte, 32<<10)
	for _, body := range []struct {
		name string
		b    []byte
	}{{"chat", chat}, {"stream64k", stream}} {
		b.Run(body.name+"/plain", func(b *testing.B) {
			b.SetBytes(int64(len(body.b)))
			b.ReportAllocs()
			for b.Loop() {
				io.CopyBuffer(io.Discard, struct{ io.Reader }{bytes.NewReader(body.b)}, buf)
			}
		})
		b.Run(body.name+"/masked", func(b *testing.B) {
			b.SetBytes(int64(len(body.b)))
			b.ReportAllocs()
			for b.Loop() {
				var s Scrubber
				s.Add("sk-fake-test-key-00000000000000000001")
				io.CopyBuffer(io.Discard, struct{ io.Reader }{s.Reader(io.NopCloser(bytes.NewReader(body.b)), true)}, buf)
			}
		})
	}
}
