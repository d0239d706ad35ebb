// Package tokenusage reads how many prompt and completion tokens a
// provider's answer reports, from the body as it passes through the proxy,
// without holding the body: JSON answers and event streams alike.
//
// It knows three shapes, wherever they appear in the body:
//   - OpenAI's "usage": {"prompt_tokens", "completion_tokens"} (chat,
//     completions, embeddings; in a stream, the last chunk when the request
//     set stream_options.include_usage), and the Responses API's
//     {"input_tokens", "output_tokens"};
//   - Anthropic's "usage": {"input_tokens", "output_tokens",
//     "cache_creation_input_tokens", "cache_read_input_tokens"} (in a
//     stream, message_start carries the input and message_delta the
//     cumulative output);
//   - Gemini's "usageMetadata": {"promptTokenCount",
//     "candidatesTokenCount", "thoughtsTokenCount",
//     "toolUsePromptTokenCount"} (in a stream, on every chunk, cumulative).
//
// Each count is the last one the body reports, which is the final one in
// every shape above. The package builds for js/wasm.
package tokenusage

import (
	"bytes"
	"io"
)

// Usage is what an answer says it cost.
type Usage struct {
	// Prompt counts input tokens, cached ones included (Anthropic's cache
	// reads and writes, Gemini's tool-use prompt).
	Prompt int64 `json:"promptTokens"`
	// Completion counts output tokens, reasoning ("thoughts") included.
	Completion int64 `json:"completionTokens"`
}

// Total is Prompt + Completion.
func (u Usage) Total() int64 { return u.Prompt + u.Completion }

// Add returns u with o's counts added.
func (u Usage) Add(o Usage) Usage { return Usage{u.Prompt + o.Prompt, u.Completion + o.Completion} }

// maxObject bounds the bytes of one usage object kept while it is read;
// real ones are a few hundred bytes. A longer one is ignored.
const maxObject = 4 << 10

const needle = `"usage`

// Scanner states.
const (
	stIdle   = iota // looking for `"usage`
	stKey           // after `"usage`: `"` or `Metadata"`
	stColon         // after the key: spaces, then ':'
	stOpen          // after ':': spaces, then '{'
	stObject        // inside the object: kept in buf until it closes
)

// Counter finds token counts in the bytes written to it. Write it a body
// in order, in pieces of any size; then read Usage. The zero value is
// ready; it is not safe for concurrent use.
type Counter struct {
	state   int
	partial int // bytes of needle matched at the end of the last write (stIdle), or of "Metadata\"" (stKey)
	depth   int
	inStr   bool
	escape  bool
	skip    bool // the object outgrew maxObject: read past it, keep nothing
	buf     []byte

	prompt, completion int64
	seen               bool
}

// Reset makes c ready for another body, keeping its buffer.
func (c *Counter) Reset() { *c = Counter{buf: c.buf[:0]} }

// Usage returns the counts found so far, and whether any was found.
func (c *Counter) Usage() (Usage, bool) { return Usage{c.prompt, c.completion}, c.seen }

// Write scans p. It never fails.
func (c *Counter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		switch c.state {
		case stIdle:
			p = c.idle(p)
		case stKey:
			const rest = `Metadata"`
			if c.partial == 0 && p[0] == '"' {
				c.state, p = stColon, p[1:]
				continue
			}
			if p[0] != rest[c.partial] {
				c.state, c.partial = stIdle, 0
				continue // rescan this byte
			}
			c.partial++
			p = p[1:]
			if c.partial == len(rest) {
				c.state, c.partial = stColon, 0
			}
		case stColon, stOpen:
			b := p[0]
			switch {
			case b == ' ' || b == '\t' || b == '\r' || b == '\n':
				p = p[1:]
			case c.state == stColon && b == ':':
				c.state, p = stOpen, p[1:]
			case c.state == stOpen && b == '{':
				if n := objectEnd(p); n > 0 {
					// The whole object is here: parse it where it is.
					c.parse(p[:n])
					c.state, p = stIdle, p[n:]
					continue
				}
				c.state, c.depth, c.inStr, c.escape, c.skip = stObject, 1, false, false, false
				c.buf = append(c.buf[:0], '{')
				p = p[1:]
			default:
				c.state = stIdle // rescan this byte
			}
		case stObject:
			p = c.object(p)
		}
	}
	return n, nil
}

// idle looks for needle in p, carrying a partial match across writes.
func (c *Counter) idle(p []byte) []byte {
	if c.partial > 0 {
		want := needle[c.partial:]
		m := min(len(want), len(p))
		if string(p[:m]) == want[:m] {
			if m < len(want) {
				c.partial += m
				return nil
			}
			c.partial, c.state = 0, stKey
			return p[m:]
		}
		c.partial = 0 // needle's only '"' is its first byte: rescan p whole
	}
	if i := indexNeedle(p); i >= 0 {
		c.state = stKey
		return p[i+len(needle):]
	}
	// Keep a proper prefix of needle ending p.
	from := max(0, len(p)-len(needle)+1)
	if i := bytes.LastIndexByte(p[from:], '"'); i >= 0 {
		tail := p[from+i:]
		if string(tail) == needle[:len(tail)] {
			c.partial = len(tail)
		}
	}
	return nil
}

// indexNeedle is bytes.Index(p, needle), faster on JSON: it looks for
// "usage" (whose first byte is rarer than a quote) and checks the quote
// before it.
func indexNeedle(p []byte) int {
	for off := 0; off+len(needle) <= len(p); {
		i := bytes.Index(p[off+1:], []byte(needle[1:]))
		if i < 0 {
			return -1
		}
		j := off + 1 + i // the 'u'
		if p[j-1] == '"' {
			return j - 1
		}
		off = j
	}
	return -1
}

// special marks the bytes that change the scanner's state inside an
// object.
var special = [256]bool{'"': true, '\\': true, '{': true, '}': true, '[': true, ']': true}

// object reads the usage object's bytes until it closes, then parses it.
// It keeps only the object's top level: a nested value is kept as its
// brackets ("x":{}), so parse reads a short flat object.
func (c *Counter) object(p []byte) []byte {
	i := 0
	if c.escape { // the byte after a backslash that ended the last write
		c.escape = false
		i = 1
	}
	start := 0 // first byte of the current top-level run to keep
	keep := func(to int) {
		if c.skip || c.depth > 1 && start < 0 {
			return
		}
		if start >= 0 && to > start {
			c.buf = append(c.buf, p[start:to]...)
		}
		if len(c.buf) > maxObject {
			c.skip, c.buf = true, c.buf[:0]
		}
	}
	if c.depth > 1 {
		start = -1
	}
	for ; i < len(p); i++ {
		b := p[i]
		if !special[b] {
			continue
		}
		if c.inStr {
			switch b {
			case '\\':
				if i+1 == len(p) {
					c.escape = true
				}
				i++
			case '"':
				c.inStr = false
			}
			continue
		}
		switch b {
		case '"':
			c.inStr = true
		case '{', '[':
			c.depth++
			if c.depth == 2 {
				keep(i + 1)
				start = -1
			}
		case '}', ']':
			c.depth--
			switch c.depth {
			case 1:
				start = i
			case 0:
				keep(i + 1)
				if !c.skip {
					c.parse(c.buf)
				}
				c.state = stIdle
				return p[i+1:]
			}
		}
	}
	if c.depth == 1 {
		keep(len(p))
	}
	return nil
}

// valueEnd marks the bytes skipValue looks at: special and ','.
var valueEnd = [256]bool{'"': true, '\\': true, '{': true, '}': true, '[': true, ']': true, ',': true}

// objectEnd returns the length of the object p starts with ('{') when it
// closes within p and within maxObject bytes, by object's rules; else 0.
// parse reads such an object as it reads object's copy of its top level.
func objectEnd(p []byte) int {
	depth, inStr := 0, false
	for i := 0; i < len(p) && i < maxObject; i++ {
		b := p[i]
		if !special[b] {
			continue
		}
		if inStr {
			switch b {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch b {
		case '"':
			inStr = true
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return 0
}

// parse reads the top-level integer fields of one usage object.
func (c *Counter) parse(obj []byte) {
	var (
		prompt, completion int64
		hasPrompt, hasComp bool
	)
	i := 1
	for i < len(obj) {
		// Find the next key at this level.
		for i < len(obj) && obj[i] != '"' && obj[i] != '}' {
			i++
		}
		if i >= len(obj) || obj[i] == '}' {
			break
		}
		j := i + 1
		for j < len(obj) && obj[j] != '"' {
			if obj[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(obj) {
			return
		}
		key := obj[i+1 : j]
		i = j + 1
		for i < len(obj) && (obj[i] == ' ' || obj[i] == '\t' || obj[i] == '\r' || obj[i] == '\n' || obj[i] == ':') {
			i++
		}
		if i < len(obj) && (obj[i] >= '0' && obj[i] <= '9') {
			var v int64
			for i < len(obj) && obj[i] >= '0' && obj[i] <= '9' {
				if v < 1<<50 {
					v = v*10 + int64(obj[i]-'0')
				}
				i++
			}
			switch string(key) {
			case "prompt_tokens", "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
				"promptTokenCount", "toolUsePromptTokenCount":
				prompt, hasPrompt = prompt+v, true
			case "completion_tokens", "output_tokens", "candidatesTokenCount", "thoughtsTokenCount":
				completion, hasComp = completion+v, true
			}
		}
		i = skipValue(obj, i)
	}
	if hasPrompt {
		c.prompt, c.seen = prompt, true
	}
	if hasComp {
		c.completion, c.seen = completion, true
	}
}

// skipValue returns the index after the value at obj[i:] (up to the ','
// or '}' that ends it at this level).
func skipValue(obj []byte, i int) int {
	depth, inStr := 0, false
	for ; i < len(obj); i++ {
		b := obj[i]
		if !valueEnd[b] {
			continue
		}
		switch {
		case inStr:
			if b == '\\' {
				i++
			} else if b == '"' {
				inStr = false
			}
		case b == '"':
			inStr = true
		case b == '{' || b == '[':
			depth++
		case b == '}' || b == ']':
			if depth == 0 {
				return i
			}
			depth--
		case b == ',' && depth == 0:
			return i + 1
		}
	}
	return i
}

// Reader passes a body through while a Counter reads it. Embed it in a
// longer-lived value to save an allocation per body.
type Reader struct {
	R io.ReadCloser
	C *Counter
}

// Read reads from R and shows what it read to C.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.R.Read(p)
	if n > 0 {
		r.C.Write(p[:n])
	}
	return n, err
}

// Close closes R.
func (r *Reader) Close() error { return r.R.Close() }
