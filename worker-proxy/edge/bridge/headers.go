package bridge

import (
	"net/http"
	"net/textproto"
	"strings"
)

// ParseHeaders reads "name: value" lines (\n or \r\n). Names may come in
// any case (JavaScript gives them in lower case); they are canonicalized.
func ParseHeaders(s string) http.Header {
	n := strings.Count(s, "\n") + 1
	h := make(http.Header, n)
	vals := make([]string, n) // one backing array for the usual single values
	for line := range strings.SplitSeq(s, "\n") {
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\r"), ":")
		if !ok || name == "" {
			continue
		}
		k := canonicalKey(name)
		v := strings.TrimLeft(value, " \t")
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
			continue
		}
		vals[0] = v
		h[k] = vals[:1:1]
		vals = vals[1:]
	}
	return h
}

// FormatHeaders writes h as "name: value" lines, leaving out hop-by-hop
// fields and Content-Length, which the host sets itself.
func FormatHeaders(h http.Header) string {
	var b strings.Builder
	size := 0
	for k, vs := range h {
		for _, v := range vs {
			size += len(k) + len(v) + 3
		}
	}
	b.Grow(size)
	for k, vs := range h {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Trailer":
			continue
		}
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// commonHeaders are names requests and the providers' answers usually
// carry, in canonical form.
var commonHeaders = []string{
	"Accept", "Accept-Encoding", "Accept-Language", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
	"Alt-Svc", "Anthropic-Beta", "Anthropic-Organization-Id", "Anthropic-Ratelimit-Input-Tokens-Limit",
	"Anthropic-Ratelimit-Input-Tokens-Remaining", "Anthropic-Ratelimit-Input-Tokens-Reset",
	"Anthropic-Ratelimit-Output-Tokens-Limit", "Anthropic-Ratelimit-Output-Tokens-Remaining",
	"Anthropic-Ratelimit-Output-Tokens-Reset", "Anthropic-Ratelimit-Requests-Limit",
	"Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset", "Anthropic-Ratelimit-Tokens-Limit",
	"Anthropic-Ratelimit-Tokens-Remaining", "Anthropic-Ratelimit-Tokens-Reset", "Anthropic-Version", "Authorization",
	"Cache-Control", "Cf-Cache-Status", "Cf-Ray", "Connection", "Content-Encoding", "Content-Length", "Content-Type",
	"Cookie", "Date", "Etag", "Expires", "Host", "Last-Modified", "Location", "Openai-Model", "Openai-Organization",
	"Openai-Processing-Ms", "Openai-Project", "Openai-Version", "Origin", "Referer", "Request-Id", "Retry-After",
	"Server", "Server-Timing", "Set-Cookie", "Strict-Transport-Security", "Transfer-Encoding", "User-Agent", "Vary",
	"Www-Authenticate", "X-Admin-Key", "X-Api-Key", "X-Content-Type-Options", "X-Forwarded-For", "X-Goog-Api-Key",
	"X-Ratelimit-Limit-Requests", "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Requests",
	"X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens", "X-Request-Id",
	"X-Should-Retry",
}

// lowerCanonical maps the lower-case form of each common name (as
// JavaScript gives names) to its canonical form.
var lowerCanonical = func() map[string]string {
	m := make(map[string]string, len(commonHeaders))
	for _, k := range commonHeaders {
		m[strings.ToLower(k)] = k
	}
	return m
}()

// canonicalKey is textproto.CanonicalMIMEHeaderKey, without its allocation
// for common names in lower case.
func canonicalKey(name string) string {
	if k, ok := lowerCanonical[name]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}
