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

// canonicalKey is textproto.CanonicalMIMEHeaderKey, without its allocation
// for the names requests and the providers' answers usually carry.
func canonicalKey(name string) string {
	switch name {
	case "accept":
		return "Accept"
	case "accept-encoding":
		return "Accept-Encoding"
	case "accept-language":
		return "Accept-Language"
	case "access-control-allow-origin":
		return "Access-Control-Allow-Origin"
	case "anthropic-version":
		return "Anthropic-Version"
	case "authorization":
		return "Authorization"
	case "cache-control":
		return "Cache-Control"
	case "connection":
		return "Connection"
	case "content-encoding":
		return "Content-Encoding"
	case "content-length":
		return "Content-Length"
	case "content-type":
		return "Content-Type"
	case "cookie":
		return "Cookie"
	case "date":
		return "Date"
	case "host":
		return "Host"
	case "openai-organization":
		return "Openai-Organization"
	case "openai-processing-ms":
		return "Openai-Processing-Ms"
	case "openai-version":
		return "Openai-Version"
	case "origin":
		return "Origin"
	case "referer":
		return "Referer"
	case "request-id":
		return "Request-Id"
	case "retry-after":
		return "Retry-After"
	case "server":
		return "Server"
	case "set-cookie":
		return "Set-Cookie"
	case "transfer-encoding":
		return "Transfer-Encoding"
	case "user-agent":
		return "User-Agent"
	case "vary":
		return "Vary"
	case "x-admin-key":
		return "X-Admin-Key"
	case "x-api-key":
		return "X-Api-Key"
	case "x-forwarded-for":
		return "X-Forwarded-For"
	case "x-goog-api-key":
		return "X-Goog-Api-Key"
	case "x-request-id":
		return "X-Request-Id"
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}
