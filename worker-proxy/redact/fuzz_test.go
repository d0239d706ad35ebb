package redact

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzScrub checks, for any body and two secrets of any bytes: no form of
// either survives, whole or streamed in any chunk size; the output is never
// longer than the input (exactly as long with keepLength); streaming gives
// the same bytes as scrubbing the whole body at once.
func FuzzScrub(f *testing.F) {
	f.Add([]byte(google404), fakeKey, "client-token-fake-0123456789", uint16(7), uint8(3))
	f.Add([]byte(`{"error":{"message":"Incorrect API key provided: sk-fake-0123456789abcdef."}}`), "sk-fake-0123456789abcdef", "", uint16(0), uint8(1))
	f.Add([]byte("data: {}\n\n"), `tok/"fake" & <x> 100%`, "aaaaaaaaaaaa", uint16(3), uint8(0))
	f.Add([]byte(strings.Repeat("ab", 300)), "abababababab", "bababababababa", uint16(99), uint8(5))
	f.Add([]byte("…€ test"), "fake…secret€!", "*#~^|!$fake", uint16(1), uint8(2))
	f.Fuzz(func(t *testing.T, body []byte, s1, s2 string, at uint16, chunk uint8) {
		if len(body) > 4096 || len(s1) > 128 || len(s2) > 128 {
			return
		}
		s := New(s1, s2)
		if s.Empty() {
			return
		}
		var forms []string
		for _, sec := range []string{s1, s2} {
			if len(sec) >= MinSecretLen {
				forms = append(forms, Forms(sec)...)
			}
		}
		if s.contains(s.fill) {
			t.Skip("every stand-in byte occurs in a secret")
		}
		// Put each form in the body, the last one twice overlapping.
		in := append([]byte(nil), body...)
		for i, form := range forms {
			p := (int(at) + i*13) % (len(in) + 1)
			in = append(in[:p], append([]byte(form), in[p:]...)...)
		}
		check := func(what string, out []byte) {
			for _, form := range forms {
				if bytes.Contains(out, []byte(form)) {
					t.Fatalf("%s: form %q survives in %q", what, form, out)
				}
			}
		}
		whole := s.Bytes(in)
		check("Bytes", whole)
		if len(whole) > len(in) {
			t.Fatalf("output %d bytes, input %d", len(whole), len(in))
		}
		n := int(chunk)%64 + 1
		if got := readAll(t, s, in, n, n+int(at)%100, false); !bytes.Equal(got, whole) {
			t.Fatalf("streamed in %d: %q, whole %q", n, got, whole)
		}
		kept := readAll(t, s, in, n, 32<<10, true)
		check("keepLength", kept)
		if len(kept) != len(in) {
			t.Fatalf("keepLength: %d bytes, input %d", len(kept), len(in))
		}
	})
}
