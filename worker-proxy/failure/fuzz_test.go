package failure

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzSecret builds a key-shaped secret from seed: a common provider prefix
// (or none) and at least 24 random alphanumerics ending in a letter and a
// digit, the shape Verdict.Reason promises to hide.
func fuzzSecret(seed []byte) string {
	prefixes := []string{"AIzaSy", "sk-proj-", "sk-ant-api03-", "gsk_", "xai-", "sk-", ""}
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b strings.Builder
	if len(seed) > 0 {
		b.WriteString(prefixes[int(seed[0])%len(prefixes)])
		seed = seed[1:]
	}
	n := 24 + len(seed)%24
	for i := range n {
		c := byte(i*7 + 3)
		if i < len(seed) {
			c = seed[i]
		}
		b.WriteByte(alnum[int(c)%len(alnum)])
	}
	b.WriteString("Q7")
	return b.String()
}

// inject puts secret into body: inside the first "message" string when pos
// is even and there is one, else at byte pos.
func inject(body []byte, secret string, pos uint16) []byte {
	at := int(pos) % (len(body) + 1)
	if pos%2 == 0 {
		if i := bytes.Index(body, []byte(`"message"`)); i >= 0 {
			if j := bytes.IndexByte(body[i+len(`"message"`):], '"'); j >= 0 {
				at = i + len(`"message"`) + j + 1
			}
		}
	}
	out := make([]byte, 0, len(body)+len(secret))
	out = append(out, body[:at]...)
	out = append(out, secret...)
	return append(out, body[at:]...)
}

func FuzzResponse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for i, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for j, status := range []int{400, 401, 403, 429, 503} {
			f.Add(status, b, []byte{byte(i + j), 'k', 'e', 'y'}, uint16(i*5+j), "")
		}
		f.Add(429, b[:len(b)/2], []byte{byte(i)}, uint16(i), "20")
	}
	f.Add(429, []byte(`{"error":{"message":"Please retry in 1.5s"}}`), []byte("x"), uint16(0), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(0, []byte("\xff[{"), []byte{}, uint16(1), "1e999")
	f.Add(529, []byte(`[[[[[[[[[[{"error":[{"message":1}]}]]]]]]]]]]`), []byte("abc"), uint16(2), "-1")

	c := testClassifier()
	f.Fuzz(func(t *testing.T, status int, body, seed []byte, pos uint16, hint string) {
		secret := fuzzSecret(seed)
		body = inject(body, secret, pos)
		h := http.Header{}
		if hint != "" {
			for _, k := range []string{"Retry-After", "Retry-After-Ms", "X-Ratelimit-Reset-Tokens", "Anthropic-Ratelimit-Tokens-Reset"} {
				h.Set(k, hint)
			}
		}
		v := c.Response(status, h, body)
		checkVerdict(t, v, secret)
		if (v.Class == Success) != (status >= 100 && status < 400) {
			t.Errorf("status %d gave %v", status, v.Class)
		}
		if v.Class == Canceled {
			t.Errorf("Response gave %v", v.Class)
		}
		if sv, ok := c.StreamError(body); ok {
			checkVerdict(t, sv, secret)
			if sv.Class == Success {
				t.Errorf("StreamError gave success: %q", sv.Reason)
			}
		}
	})
}

func checkVerdict(t *testing.T, v Verdict, secret string) {
	t.Helper()
	if v.Class > Canceled {
		t.Errorf("class %d out of range", v.Class)
	}
	if strings.Contains(v.Reason, secret) {
		t.Errorf("Reason holds the secret %q: %q", secret, v.Reason)
	}
	if !utf8.ValidString(v.Reason) || utf8.RuneCountInString(v.Reason) > MaxReason || strings.ContainsAny(v.Reason, "\n\r\t") {
		t.Errorf("Reason is not one short line: %q", v.Reason)
	}
	if (v.Class == Success) != (v.Reason == "") {
		t.Errorf("class %v with Reason %q", v.Class, v.Reason)
	}
	switch v.Class {
	case RateLimited:
		if !v.Until.After(now) || v.Until.After(now.Add(time.Hour)) {
			t.Errorf("rate_limited Until now+%s, want in (0, 1h]", v.Until.Sub(now))
		}
	case QuotaExhausted:
		if !v.Until.After(now) || v.Until.After(now.Add(maxQuotaWait)) {
			t.Errorf("quota_exhausted Until now+%s", v.Until.Sub(now))
		}
	case Upstream:
		if !v.Until.IsZero() && (!v.Until.After(now) || v.Until.After(now.Add(time.Hour))) {
			t.Errorf("upstream Until now+%s", v.Until.Sub(now))
		}
	default:
		if !v.Until.IsZero() {
			t.Errorf("%v with Until %v", v.Class, v.Until)
		}
	}
}

func FuzzScrub(f *testing.F) {
	f.Add("Consumer 'api_key:AIzaSyFAKEFAKEFAKEtestKEYnotREAL000000'", "AIzaSyFAKEFAKEFAKEtestKEYnotREAL000000")
	f.Add("aaaaaaaa", "aaa")
	f.Fuzz(func(t *testing.T, msg, secret string) {
		if len(secret) < 4 || strings.Contains("…", secret) {
			return // Scrub's contract starts at 4 bytes
		}
		if got := Scrub(msg, secret); strings.Contains(got, secret) {
			t.Errorf("Scrub(%q, %q) = %q", msg, secret, got)
		}
	})
}
