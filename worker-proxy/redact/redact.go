// Package redact masks known secrets (pool keys, client tokens) in bytes
// the proxy hands to a client: whole buffers, header values and streams.
//
// A secret is found in each form an upstream may echo it in (see Forms):
// raw, percent-encoded (a URL quoted in an error page), JSON-escaped and
// HTML-escaped. Every stretch of text covered by an occurrence becomes the
// stretch's masked form, pool.Mask's "AIza…x7Q2" for a plain key. No form of
// a secret survives, even where occurrences overlap or masking puts text
// side by side, and the output is never longer than the input.
package redact

import (
	"bytes"
	"encoding/json"
	"html"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// MinSecretLen is the shortest secret masked: shorter ones are no real key
// and masking them would mangle ordinary text.
const MinSecretLen = 10

// ellipsis separates a mask's head and tail, as in pool.Mask.
const ellipsis = "…"

// fills are the stand-ins, in order of preference, for a secret that
// contains a byte of the ellipsis: a mask is made of bytes no form holds.
const fills = "*#~^|!$"

// Scrubber masks a fixed set of secrets. The zero value and nil mask
// nothing. It is safe for concurrent use.
type Scrubber struct {
	forms  [][]byte // every form of every secret, deduplicated
	maxLen int      // the longest form
	sep    string   // between a mask's head and tail
	fill   byte     // pads a mask to the length it replaces (KeepLength)
	mixed  bool     // a secret holds bytes other than [A-Za-z0-9._~-]
	one    [1][]byte
}

// New returns a Scrubber for secrets; empty ones and those shorter than
// MinSecretLen are ignored.
func New(secrets ...string) *Scrubber {
	s := &Scrubber{}
	s.Add(secrets...)
	return s
}

// Add adds secrets to s. It must not be called while s is in use.
func (s *Scrubber) Add(secrets ...string) {
	for _, sec := range secrets {
		if len(sec) < MinSecretLen {
			continue
		}
		if plain(sec) {
			s.addForm(bytesOf(sec))
			continue
		}
		for _, f := range Forms(sec) {
			s.addForm([]byte(f))
		}
		s.mixed = true
	}
	s.sep, s.fill = ellipsis, fills[0]
	if !s.mixed {
		return // plain secrets hold none of these bytes
	}
	for i := range len(fills) {
		if !s.contains(fills[i]) {
			s.fill = fills[i]
			break
		}
	}
	for i := range len(ellipsis) {
		if s.contains(ellipsis[i]) {
			s.sep = string(s.fill)
			break
		}
	}
}

func (s *Scrubber) addForm(f []byte) {
	for _, g := range s.forms {
		if bytes.Equal(f, g) {
			return
		}
	}
	if s.forms == nil {
		s.forms = s.one[:0]
	}
	s.forms = append(s.forms, f)
	s.maxLen = max(s.maxLen, len(f))
}

func (s *Scrubber) contains(c byte) bool {
	for _, f := range s.forms {
		if bytes.IndexByte(f, c) >= 0 {
			return true
		}
	}
	return false
}

// Empty reports whether s masks nothing.
func (s *Scrubber) Empty() bool { return s == nil || len(s.forms) == 0 }

// bytesOf views a string's bytes without copying; they are never written.
func bytesOf(v string) []byte { return unsafe.Slice(unsafe.StringData(v), len(v)) }

// plain reports whether every form of secret is the secret itself: it
// holds only bytes that no URL, JSON or HTML escaping changes.
func plain(secret string) bool {
	for i := range len(secret) {
		c := secret[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}

// Forms returns the forms of secret that are looked for: raw,
// percent-encoded for a query and for a path (upper- and lower-case hex),
// JSON-escaped (with and without HTML escaping, "/" as is or as "\/") and
// HTML-escaped, without duplicates.
func Forms(secret string) []string {
	out := []string{secret}
	add := func(f string) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	for _, f := range []string{url.QueryEscape(secret), url.PathEscape(secret)} {
		add(f)
		add(lowerHex(f))
	}
	for _, escapeHTML := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(escapeHTML)
		enc.Encode(secret)
		j := strings.TrimSuffix(b.String(), "\n")
		j = j[1 : len(j)-1]
		add(j)
		add(strings.ReplaceAll(j, "/", `\/`))
	}
	add(html.EscapeString(secret))
	return out
}

// lowerHex lower-cases the hex digits of f's percent escapes.
func lowerHex(f string) string {
	b := []byte(f)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lower(b[i+1]), lower(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// Bytes returns b with every secret masked; b itself is left as it is and
// returned when nothing is masked.
func (s *Scrubber) Bytes(b []byte) []byte {
	if s.Empty() || !s.any(b) {
		return b
	}
	var st state
	out, _ := s.scrub(nil, b, &st, true, false)
	return out
}

// String is Bytes for a string.
func (s *Scrubber) String(v string) string {
	if s.Empty() || !s.any(bytesOf(v)) {
		return v
	}
	return string(s.Bytes([]byte(v)))
}

// any reports whether b holds a whole form.
func (s *Scrubber) any(b []byte) bool {
	for _, f := range s.forms {
		if bytes.Index(b, f) >= 0 {
			return true
		}
	}
	return false
}

// Header masks the secrets in h's values in place and reports whether it
// changed any.
func (s *Scrubber) Header(h map[string][]string) bool {
	if s.Empty() {
		return false
	}
	changed := false
	for _, vs := range h {
		for i, v := range vs {
			if w := s.String(v); w != v {
				vs[i], changed = w, true
			}
		}
	}
	return changed
}

// state is what a stream carries from one chunk to the next when a run
// of covered text grew too long to hold: its head is written, and only its
// end is kept, at the start of the next chunk.
type state struct {
	long    bool // the open run's head and separator are already written
	end     int  // the open run covers the next chunk's first end bytes
	written int  // bytes written for the open run
	covered int  // its bytes consumed before the next chunk
}

// longRun is how long an open run may grow before its head is written and
// only its end kept, so a stream holds O(longest form) bytes.
func (s *Scrubber) longRun() int { return 2*s.maxLen + 64 }

// scrub masks buf into dst (which may be buf[:0]: output never outruns
// input) and returns it with the index of the first byte of buf that must
// wait for more input: a possible start of a form cut off at the end, or
// an open run of covered text. With eof, nothing waits. With keep, each
// mask is padded to the length it replaces.
func (s *Scrubber) scrub(dst, buf []byte, st *state, eof, keep bool) ([]byte, int) {
	hold := len(buf)
	if !eof {
		hold = s.partial(buf)
	}
	pos := 0 // buf[:pos] is written
	// The run [runA, runB) of overlapping occurrences; a long one from the
	// last chunk starts at 0.
	runA, runB := -1, -1
	if st.long {
		runA, runB = 0, st.end
	}
	for i := 0; ; {
		a, b := s.next(buf, i)
		if a < 0 {
			break
		}
		i = a + 1
		if runA >= 0 && a < runB {
			runB = max(runB, b)
			continue
		}
		if runA >= 0 {
			if runB > hold {
				break // open: what follows waits too
			}
			dst, pos = s.mask(dst, buf[runA:runB], st, keep), runB
			runA = -1
		}
		if a >= hold {
			break
		}
		dst = append(dst, buf[pos:a]...)
		pos, runA, runB = a, a, b
	}
	if runA >= 0 && runB <= hold {
		dst, pos = s.mask(dst, buf[runA:runB], st, keep), runB
		runA = -1
	}
	if runA < 0 {
		return append(dst, buf[pos:hold]...), hold
	}
	// The run is open: hold it whole, or when long, write its head and
	// hold only its end.
	tailKeep := s.maxLen + 16
	if runB-runA+st.covered <= s.longRun() || runB-runA <= tailKeep {
		st.end = runB - runA
		return dst, runA
	}
	if !st.long {
		h := head(buf[runA:], 4)
		dst = append(dst, buf[runA:runA+h]...)
		dst = append(dst, s.sep...)
		st.long, st.written = true, h+len(s.sep)
	}
	cut := runB - tailKeep
	st.covered += cut - runA
	st.end = tailKeep
	return dst, cut
}

// next returns the earliest occurrence of a form in buf at or after i,
// the longest there, as [a, b); a is -1 if there is none.
func (s *Scrubber) next(buf []byte, i int) (int, int) {
	a, b := -1, -1
	for _, f := range s.forms {
		j := bytes.Index(buf[i:], f)
		if j < 0 {
			continue
		}
		j += i
		if a < 0 || j < a || j == a && j+len(f) > b {
			a, b = j, j+len(f)
		}
	}
	return a, b
}

// partial returns the start of the longest suffix of buf that begins a
// form without completing it, or len(buf).
func (s *Scrubber) partial(buf []byte) int {
	start := len(buf)
	for _, f := range s.forms {
		from := max(0, len(buf)-len(f)+1)
		for k := from; k < start; k++ {
			k2 := bytes.IndexByte(buf[k:start], f[0])
			if k2 < 0 {
				break
			}
			k += k2
			if bytes.HasPrefix(f, buf[k:]) {
				start = k
				break
			}
		}
	}
	return start
}

// mask appends the masked form of run (the covered bytes of a closed run;
// for a long run only its end). Its head and tail are the run's own first
// and last bytes, at most 4 runes and 4 bytes each, as pool.Mask shows a
// key: 4…4 for runs of 12 runes or more, 1…2 for 6 to 11, else the
// separator alone.
func (s *Scrubber) mask(dst, run []byte, st *state, keep bool) []byte {
	if st.long {
		total := st.covered + len(run)
		t := tail(run, 4)
		if keep {
			dst = append(dst, bytes.Repeat([]byte{s.fill}, total-st.written-t)...)
		}
		dst = append(dst, run[len(run)-t:]...)
		*st = state{}
		return dst
	}
	n := utf8.RuneCount(run)
	h, t := 0, 0
	switch {
	case n >= 12:
		h, t = head(run, 4), tail(run, 4)
	case n >= 6:
		h, t = head(run, 1), tail(run, 2)
	}
	dst = append(dst, run[:h]...)
	dst = append(dst, s.sep...)
	if keep {
		for range len(run) - h - t - len(s.sep) {
			dst = append(dst, s.fill)
		}
	}
	return append(dst, run[len(run)-t:]...)
}

// head returns the length of b's first n runes, at most 4 bytes.
func head(b []byte, n int) int {
	k := 0
	for range n {
		_, size := utf8.DecodeRune(b[k:])
		if k+size > 4 || k+size > len(b) {
			break
		}
		k += size
	}
	return k
}

// tail returns the length of b's last n runes, at most 4 bytes.
func tail(b []byte, n int) int {
	k := 0
	for range n {
		_, size := utf8.DecodeLastRune(b[:len(b)-k])
		if size == 0 || k+size > 4 {
			break
		}
		k += size
	}
	return k
}
