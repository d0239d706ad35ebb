package redact

import (
	"bytes"
	"io"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/keypool/keypool/worker-proxy/pool"
)

const fakeKey = "AIzaSyFAKE-test-key-0123456789abcdefXY"

// Google's 404 page quotes the request URL, ?key= and all.
var google404 = `<!DOCTYPE html>
<html lang=en>
  <meta charset=utf-8>
  <title>Error 404 (Not Found)!!1</title>
  <p><b>404.</b> <ins>That’s an error.</ins>
  <p>The requested URL <code>/v1beta/models/nope:generateContent?key=` + fakeKey + `</code> was not found on this server.  <ins>That’s all we know.</ins>
`

func TestBytesMasksEveryForm(t *testing.T) {
	token := `client token/with "quotes" & <tags> + spaces` // not key-shaped: every form differs
	s := New(fakeKey, token)
	for _, tc := range []struct{ name, in string }{
		{"google html", google404},
		{"google json", `{"error":{"code":400,"message":"Invalid value at 'url' (https://generativelanguage.googleapis.com/v1beta/models/x?key=` + fakeKey + `)","status":"INVALID_ARGUMENT"}}`},
		{"openai", `{"error":{"message":"Incorrect API key provided: ` + fakeKey + `. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`},
		{"query escaped", "see https://x.test/?t=" + url.QueryEscape(token) + "&b=1"},
		{"path escaped", "see https://x.test/" + url.PathEscape(token) + "/b"},
		{"path escaped lower hex", "see https://x.test/" + strings.ToLower(url.PathEscape(token))},
		{"json escaped", `{"message":"bad token client token\/with \"quotes\" \u0026 \u003ctags\u003e + spaces"}`},
		{"html escaped", `<p>client token/with &#34;quotes&#34; &amp; &lt;tags&gt; + spaces</p>`},
		{"raw", "x " + token + " y"},
	} {
		got := string(s.Bytes([]byte(tc.in)))
		for _, f := range append(Forms(fakeKey), Forms(token)...) {
			if strings.Contains(got, f) {
				t.Errorf("%s: %q survives in %q", tc.name, f, got)
			}
		}
		if got == tc.in {
			t.Errorf("%s: nothing masked in %q", tc.name, got)
		}
		if len(got) > len(tc.in) {
			t.Errorf("%s: output longer than input", tc.name)
		}
	}
	if got := string(s.Bytes([]byte(google404))); !strings.Contains(got, "?key="+pool.Mask(fakeKey)+"</code>") {
		t.Errorf("the key is not shown as pool.Mask shows it: %s", got)
	}
}

func TestShortAndEmptySecretsMaskNothing(t *testing.T) {
	for _, s := range []*Scrubber{nil, New(), New(""), New("short")} {
		if got := s.String("a short secret"); got != "a short secret" {
			t.Errorf("got %q", got)
		}
		if !s.Empty() {
			t.Error("not empty")
		}
	}
}

// chunks yields r in pieces of n bytes.
type chunks struct {
	r io.Reader
	n int
}

func (c chunks) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

func readAll(t testing.TB, s *Scrubber, in []byte, chunk, bufSize int, keep bool) []byte {
	t.Helper()
	r := s.Reader(io.NopCloser(chunks{bytes.NewReader(in), chunk}), keep)
	var out []byte
	buf := make([]byte, bufSize)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A key split across reads, in any place, is masked as a whole.
func TestReaderFindsSplitForms(t *testing.T) {
	s := New(fakeKey)
	in := []byte("data: {\"candidates\":[]}\n\ndata: {\"error\":{\"code\":400,\"message\":\"API key " + fakeKey + " not valid\"}}\n\n")
	want := s.Bytes(in)
	for chunk := 1; chunk <= len(in); chunk++ {
		for _, bufSize := range []int{1, 7, 32 << 10} {
			if got := readAll(t, s, in, chunk, bufSize, false); !bytes.Equal(got, want) {
				t.Fatalf("chunk %d buf %d: %q, want %q", chunk, bufSize, got, want)
			}
		}
	}
	if bytes.Contains(want, []byte(fakeKey)) {
		t.Fatal("key survives")
	}
}

// Text that merely starts like a key is passed on at once, and an SSE event
// is never held back for want of a partial match.
func TestReaderHoldsOnlyPossibleStarts(t *testing.T) {
	s := New(fakeKey)
	r := s.Reader(io.NopCloser(iotest.HalfReader(strings.NewReader("data: {}\n\ndata: AIza"))), false)
	buf := make([]byte, 32<<10)
	n, _ := r.Read(buf)
	if got := string(buf[:n]); got != "data: {}\n\ndata: " {
		t.Fatalf("first read %q", got)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "AIza" {
		t.Fatalf("rest %q", rest)
	}
}

func TestKeepLength(t *testing.T) {
	s := New(fakeKey)
	in := []byte(`{"echo":"` + fakeKey + `","again":"` + url.QueryEscape(fakeKey) + `"}`)
	got := readAll(t, s, in, 5, 32<<10, true)
	if len(got) != len(in) || bytes.Contains(got, []byte(fakeKey)) || !bytes.HasPrefix(got, []byte(`{"echo":"AIza…`)) {
		t.Fatalf("%q", got)
	}
}

// Overlapping occurrences of a repetitive secret make one long run; the
// reader holds a bounded amount whatever its length.
func TestReaderBoundsLongRuns(t *testing.T) {
	secret := "aaaaaaaaaaaaaaaa"
	s := New(secret)
	in := []byte("x" + strings.Repeat("a", 1<<20) + "y")
	r := s.Reader(io.NopCloser(chunks{bytes.NewReader(in), 4096}), false).(*reader)
	var out []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if len(r.carry) > 4*s.maxLen+128 {
			t.Fatalf("carry grew to %d", len(r.carry))
		}
		if err != nil {
			break
		}
	}
	if string(out) != "xaaaa…aaaay" {
		t.Fatalf("%q", out)
	}
	if got := s.Bytes(in); !bytes.Equal(got, out) {
		t.Fatalf("Bytes %q, stream %q", got, out)
	}
}

func TestHeader(t *testing.T) {
	s := New(fakeKey)
	h := map[string][]string{"X-Debug-Url": {"https://x.test/?key=" + fakeKey}, "Content-Type": {"application/json"}}
	if !s.Header(h) || h["X-Debug-Url"][0] != "https://x.test/?key="+pool.Mask(fakeKey) || h["Content-Type"][0] != "application/json" {
		t.Fatalf("%v", h)
	}
}
