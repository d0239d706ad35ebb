package jsonstr

import (
	"encoding/json"
	"testing"
)

// Append writes what encoding/json writes for the same string, byte for
// byte: escapes, HTML-safe characters, invalid UTF-8, U+2028/U+2029.
func TestAppendIsEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "nl\n\r\t\b\f\x00\x1f\x7f", "<&>", "é✓😀", "bad\xff\xfeutf8", "\u2028\u2029",
		"\xed\xa0\x80 surrogate", "trunc\xe2\x9c", "mixed <a href=\"x\">\u2028</a>\xff"} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := Append([]byte("prefix"), s); string(got) != "prefix"+string(want) {
			t.Errorf("%q: %s, want %s", s, got[len("prefix"):], want)
		}
		if got := AppendEscaped(nil, s); string(got) != string(want[1:len(want)-1]) {
			t.Errorf("%q escaped: %s, want %s", s, got, want[1:len(want)-1])
		}
	}
}
