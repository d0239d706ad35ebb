package fakeupstream

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/jsonstr"
)

// A tmpl is a JSON body compiled once, with slots filled per response.
//
// The source is valid JSON in which {{name}} inside a string is replaced by
// the JSON-escaped value of a variable, and a whole string "{{#name}}" by the
// decimal value of a number variable. Compiling can re-indent the
// source (the providers pretty-print some bodies).
type tmpl struct {
	parts []string
	vars  []varID
}

type varID uint8

const (
	vModel      varID = iota
	vText             // answer or chunk text
	vID               // response, message or completion id
	vReqID            // request id
	vMasked           // masked API key
	vDelay            // Go duration of a retry delay
	vDate             // a date, 2006-01-02
	vMethod           // HTTP method
	vPath             // URL path
	nPrompt           // prompt tokens
	nCompletion       // completion tokens
	nTotal            // prompt + completion
	nCreated          // Unix time
	nDelaySecs        // retry delay, whole seconds
)

var varNames = map[string]varID{
	"model": vModel, "text": vText, "id": vID, "reqid": vReqID, "masked": vMasked,
	"delay": vDelay, "date": vDate, "method": vMethod, "path": vPath,
	"#prompt": nPrompt, "#completion": nCompletion, "#total": nTotal,
	"#created": nCreated, "delaysecs": nDelaySecs,
}

// vals are the variables of one response.
type vals struct {
	model, text, id, reqID, masked, delay, date, method, path string

	prompt, completion, created, delaySecs int64
}

// compile compiles a template; indent "" keeps the source as written. It
// panics on invalid JSON or unknown slots: templates are package constants.
func compile(src, indent string) *tmpl {
	if !json.Valid([]byte(src)) {
		panic("fakeupstream: invalid template JSON: " + src)
	}
	if indent != "" {
		var b bytes.Buffer
		if err := json.Indent(&b, []byte(src), "", indent); err != nil {
			panic(err)
		}
		src = b.String()
	}
	t := &tmpl{}
	for {
		i := strings.Index(src, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(src[i:], "}}")
		if j < 0 {
			panic("fakeupstream: unclosed slot in template")
		}
		name := src[i+2 : i+j]
		id, ok := varNames[name]
		if !ok {
			panic("fakeupstream: unknown template slot " + name)
		}
		start, end := i, i+j+2
		if name[0] == '#' { // a number replaces the whole string
			start, end = start-1, end+1
		}
		t.parts = append(t.parts, src[:start])
		t.vars = append(t.vars, id)
		src = src[end:]
	}
	t.parts = append(t.parts, src)
	return t
}

func (t *tmpl) render(dst []byte, v *vals) []byte {
	dst = append(dst, t.parts[0]...)
	for i, id := range t.vars {
		dst = v.append(dst, id)
		dst = append(dst, t.parts[i+1]...)
	}
	return dst
}

// bytes renders a template that has no slots.
func (t *tmpl) bytes() []byte {
	if len(t.vars) != 0 {
		panic("fakeupstream: static use of a template with slots")
	}
	return []byte(t.parts[0])
}

func (v *vals) append(dst []byte, id varID) []byte {
	switch id {
	case vModel:
		return jsonstr.AppendEscaped(dst, v.model)
	case vText:
		return jsonstr.AppendEscaped(dst, v.text)
	case vID:
		return jsonstr.AppendEscaped(dst, v.id)
	case vReqID:
		return jsonstr.AppendEscaped(dst, v.reqID)
	case vMasked:
		return jsonstr.AppendEscaped(dst, v.masked)
	case vDelay:
		return jsonstr.AppendEscaped(dst, v.delay)
	case vDate:
		return jsonstr.AppendEscaped(dst, v.date)
	case vMethod:
		return jsonstr.AppendEscaped(dst, v.method)
	case vPath:
		return jsonstr.AppendEscaped(dst, v.path)
	case nPrompt:
		return strconv.AppendInt(dst, v.prompt, 10)
	case nCompletion:
		return strconv.AppendInt(dst, v.completion, 10)
	case nTotal:
		return strconv.AppendInt(dst, v.prompt+v.completion, 10)
	case nCreated:
		return strconv.AppendInt(dst, v.created, 10)
	case nDelaySecs:
		return strconv.AppendInt(dst, v.delaySecs, 10)
	}
	return dst
}

// idGen makes unique, random-looking ids cheaply.
type idGen struct {
	seed uint64
	n    atomic.Uint64
}

func (g *idGen) next() uint64 {
	x := g.seed + g.n.Add(1)*0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// id returns prefix followed by n base-62 characters.
func (g *idGen) id(prefix string, n int) string {
	b := make([]byte, 0, len(prefix)+n)
	b = append(b, prefix...)
	var x uint64
	for i := range n {
		if i%10 == 0 {
			x = g.next()
		}
		b = append(b, base62[x%62])
		x /= 62
	}
	return string(b)
}

// hexID returns n hex digits (n a multiple of 16).
func (g *idGen) hexID(n int) string {
	const hex = "0123456789abcdef"
	b := make([]byte, n)
	for i := 0; i < n; i += 16 {
		x := g.next()
		for j := 15; j >= 0; j-- {
			b[i+j] = hex[x&0xF]
			x >>= 4
		}
	}
	return string(b)
}

// maskKey shows at most a small fragment of key, the way OpenAI's
// invalid-key message does ("sk-VKMIs***...wjh3"); short keys are hidden
// entirely.
func maskKey(key string) string {
	n := len(key)
	if n < 16 {
		return "***"
	}
	head, tail := min(8, n/4), min(4, n/8)
	return key[:head] + "***..." + key[n-tail:]
}

// untilPacificMidnight is the time from now to the next midnight in
// America/Los_Angeles, when Gemini's daily quotas reset. It applies the US
// daylight-saving rule (second Sunday of March to first Sunday of November,
// at 02:00 local) so it needs no time zone database.
func untilPacificMidnight(now time.Time) time.Duration {
	now = now.UTC()
	off := pacificOffset(now)
	y, m, d := now.Add(off).Date()
	midnight := time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC) // local wall clock
	// DST changes at 02:00 local, so 08:00 UTC of that day is on the same
	// side of the change as local midnight.
	return midnight.Add(-pacificOffset(midnight.Add(8 * time.Hour))).Sub(now)
}

// pacificOffset is the UTC offset of Pacific time at instant t (UTC).
func pacificOffset(t time.Time) time.Duration {
	y := t.Year()
	start := nthSunday(y, time.March, 2).Add(10 * time.Hour) // 02:00 PST
	end := nthSunday(y, time.November, 1).Add(9 * time.Hour) // 02:00 PDT
	if !t.Before(start) && t.Before(end) {
		return -7 * time.Hour
	}
	return -8 * time.Hour
}

func nthSunday(y int, m time.Month, n int) time.Time {
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	d := 1 + (7-int(first.Weekday()))%7 + 7*(n-1)
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// clock caches formatted times per second.
type clock struct {
	v atomic.Pointer[clockEntry]
}

type clockEntry struct {
	sec   int64
	reset []string // RFC 3339, one minute ahead
	limit []string // RFC 3339, rateLimitSeconds ahead
}

const rateLimitSeconds = 20

func (c *clock) now() *clockEntry {
	now := time.Now()
	sec := now.Unix()
	if e := c.v.Load(); e != nil && e.sec == sec {
		return e
	}
	t := time.Unix(sec, 0).UTC()
	e := &clockEntry{
		sec:   sec,
		reset: []string{t.Add(time.Minute).Format(time.RFC3339)},
		limit: []string{t.Add(rateLimitSeconds * time.Second).Format(time.RFC3339)},
	}
	c.v.Store(e)
	return e
}
