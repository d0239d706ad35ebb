package bridge

import (
	"net/http"
	"net/textproto"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The shortcut table must agree with textproto for every name in it, in
// any case, and for names outside it.
func TestCanonicalKeyMatchesTextproto(t *testing.T) {
	names := append([]string{"x-custom", "X-CUSTOM-thing", "weird name", "", "a"}, commonHeaders...)
	for _, n := range names {
		if got := textproto.CanonicalMIMEHeaderKey(n); n != "" && got != n && slices.Contains(commonHeaders, n) {
			t.Errorf("commonHeaders has %q, not canonical (%q)", n, got)
		}
		for _, v := range []string{n, strings.ToLower(n), strings.ToUpper(n)} {
			if got, want := canonicalKey(v), textproto.CanonicalMIMEHeaderKey(v); got != want {
				t.Errorf("canonicalKey(%q) = %q, want %q", v, got, want)
			}
		}
	}
}

func TestParseFormatHeaders(t *testing.T) {
	h := ParseHeaders("content-type: application/json\nx-multi: a\r\nX-Multi:  b\nbroken line\n: empty name\nauthorization: Bearer test-fake\n\n")
	want := http.Header{"Content-Type": {"application/json"}, "X-Multi": {"a", "b"}, "Authorization": {"Bearer test-fake"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("ParseHeaders = %v, want %v", h, want)
	}
	// Appending to one value must not overwrite the next header's.
	h["Content-Type"] = append(h["Content-Type"], "x")
	if h.Get("X-Multi") != "a" || len(h["Authorization"]) != 1 || h.Get("Authorization") != "Bearer test-fake" {
		t.Fatalf("values share storage: %v", h)
	}
	h.Set("Content-Length", "12")
	h.Set("Connection", "close")
	back := ParseHeaders(FormatHeaders(h))
	delete(h, "Content-Length")
	delete(h, "Connection")
	if !reflect.DeepEqual(back, h) {
		t.Errorf("round trip: %v, want %v", back, h)
	}
}
