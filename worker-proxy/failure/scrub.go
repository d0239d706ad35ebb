package failure

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxReason is the longest Verdict.Reason, in characters.
const MaxReason = 160

// Scrub returns msg with every occurrence of secret masked as its first 4
// and last 4 bytes around "…" (for example "AIza…9xQ0"). Secrets shorter
// than 16 bytes become "…" entirely, so the mask never shows most of a short
// secret. An empty secret leaves msg unchanged.
//
// Use it on any text that may hold the key in use (logs, transport errors
// that quote a URL with ?key=…); Verdict.Reason already hides key-shaped
// tokens, but only Scrub knows the actual key.
func Scrub(msg, secret string) string {
	if secret == "" {
		return msg
	}
	mask := "…"
	if len(secret) >= 16 {
		mask = secret[:4] + "…" + secret[len(secret)-4:]
	}
	// Masking can join the text around an occurrence into a new one;
	// repeat while that shortens msg (the mask is shorter than a secret
	// of 4 bytes or more).
	for strings.Contains(msg, secret) {
		n := len(msg)
		msg = strings.ReplaceAll(msg, secret, mask)
		if len(msg) >= n {
			break
		}
	}
	return msg
}

// keyPrefixes start the API keys of common providers: Google (AIza), Groq
// (gsk_), xAI (xai-), OpenAI, Anthropic and most OpenAI-compatible
// providers (sk-, sk-proj-, sk-ant- …) and sk_. A prefix that contains
// another comes first.
var keyPrefixes = []string{"AIza", "gsk_", "xai-", "sk-", "sk_"}

// redact replaces key-shaped tokens in s. A token is a maximal run of
// [A-Za-z0-9_-]; it is key-shaped when it is at least 16 bytes long and
// contains a known key prefix (it becomes that prefix and "…"), or when it
// holds an alphanumeric run of at least 20 bytes with both letters and
// digits (it becomes "…"). Random keys, request ids and UUID-free hex ids are
// hidden; words, model names ("claude-3-5-sonnet-20241022"), quota ids and
// URLs are kept.
func redact(s string) string {
	var b strings.Builder
	last := 0 // s[last:] is not yet copied
	for i := 0; i < len(s); {
		if !isTokenByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isTokenByte(s[j]) {
			j++
		}
		if mask, ok := keyMask(s[i:j]); ok {
			if b.Len() == 0 {
				b.Grow(len(s))
			}
			b.WriteString(s[last:i])
			b.WriteString(mask)
			last = j
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func keyMask(tok string) (string, bool) {
	if len(tok) < 16 {
		return "", false
	}
	for _, p := range keyPrefixes {
		if strings.Contains(tok, p) {
			return p + "…", true
		}
	}
	if len(tok) < 20 {
		return "", false
	}
	run, letter, digit := 0, false, false
	for k := 0; k <= len(tok); k++ {
		if k < len(tok) && tok[k] != '-' && tok[k] != '_' {
			c := tok[k]
			run++
			letter = letter || c > '9'
			digit = digit || c <= '9'
			continue
		}
		if run >= 20 && letter && digit {
			return "…", true
		}
		run, letter, digit = 0, false, false
	}
	return "", false
}

func isTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// clean makes s one line of printable, valid UTF-8 with single spaces,
// without key-shaped tokens, at most MaxReason characters long (cut ones end
// in "…").
func clean(s string) string {
	var b strings.Builder
	b.Grow(min(len(s), 4*MaxReason))
	space := false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
		// Stop early on huge inputs, but late enough that a token
		// crossing the cut is still seen whole by redact.
		if b.Len() > 8*MaxReason {
			break
		}
	}
	out := redact(b.String())
	if utf8.RuneCountInString(out) <= MaxReason {
		return out
	}
	n := 0
	for i := range out {
		if n == MaxReason-1 {
			return strings.TrimRight(out[:i], " ") + "…"
		}
		n++
	}
	return out
}
