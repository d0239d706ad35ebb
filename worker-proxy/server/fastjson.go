package server

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// Hand-written JSON for the answers and the request of adding a key
// (POST /admin/keys), the first admin call of a new instance. On the edge
// build (Go compiled to wasm) V8 compiles each function the first time it
// runs, and encoding/json with the reflection under it is about 200 KB of
// code: compiling it was a tenth of a cold start (process start → first
// relayed 200). These paths write and read exactly what encoding/json
// does for the simple values that are the usual case (strings that need no
// escaping, a flat request object) and hand anything else to
// encoding/json: fastjson_test.go checks them against it, field by field.

// jsonOut appends JSON; ok turns false when a value needs what only
// encoding/json does (escaping, NaN), and the caller then uses that. Each
// method appends a member: its name with the separators before it (m, a
// constant such as `,"id":`), then its value. They are not inlined: inlined,
// the appends made keyStatus about 80 KB of wasm.
type jsonOut struct {
	b  []byte
	ok bool
}

// str appends m and s quoted, if encoding/json would write s as it is: no
// control characters, no " or \, nothing it escapes for HTML (<, >, &,
// U+2028, U+2029), valid UTF-8.
//
//go:noinline
func (o *jsonOut) str(m, s string) {
	o.b = append(o.b, m...)
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c == 0x7f:
			o.ok = false
			return
		case c == 0xe2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9):
			o.ok = false
			return
		case c >= 0x80:
			ascii = false
		}
	}
	if !ascii && !utf8.ValidString(s) {
		o.ok = false
		return
	}
	o.b = append(o.b, '"')
	o.b = append(o.b, s...)
	o.b = append(o.b, '"')
}

// optStr appends a member tagged omitempty.
//
//go:noinline
func (o *jsonOut) optStr(m, s string) {
	if s != "" {
		o.str(m, s)
	}
}

//go:noinline
func (o *jsonOut) strPtr(m string, p *string) {
	if p == nil {
		o.raw(m, "null")
		return
	}
	o.str(m, *p)
}

//go:noinline
func (o *jsonOut) raw(m, v string) {
	o.b = append(o.b, m...)
	o.b = append(o.b, v...)
}

func (o *jsonOut) boolean(m string, v bool) {
	if v {
		o.raw(m, "true")
	} else {
		o.raw(m, "false")
	}
}

//go:noinline
func (o *jsonOut) int(m string, n int64) {
	o.b = append(o.b, m...)
	o.b = strconv.AppendInt(o.b, n, 10)
}

// float appends f as encoding/json does for a float64.
//
//go:noinline
func (o *jsonOut) float(m string, f float64) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		o.ok = false
		return
	}
	o.b = append(o.b, m...)
	if f == math.Trunc(f) && math.Abs(f) < 1e15 && (f != 0 || !math.Signbit(f)) {
		// A whole number (a new key's rate is 1): the same digits, without
		// compiling the float formatting for a first request.
		o.b = strconv.AppendInt(o.b, int64(f), 10)
		return
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	o.b = strconv.AppendFloat(o.b, f, format, -1, 64)
	if format == 'e' { // clean up e-09 to e-9
		if n := len(o.b); n >= 4 && o.b[n-4] == 'e' && o.b[n-3] == '-' && o.b[n-2] == '0' {
			o.b[n-2] = o.b[n-1]
			o.b = o.b[:n-1]
		}
	}
}

// fastJSON returns v as json.Marshal would, for the types below and values
// that need no escaping; ok false: use json.Marshal.
func fastJSON(v any) (b []byte, ok bool) {
	o := &jsonOut{b: make([]byte, 0, 1024), ok: true}
	switch v := v.(type) {
	case adminapi.AddKeyResponse:
		o.str(`{"message":`, v.Message)
		o.str(`,"keyId":`, v.KeyID)
		o.str(`,"provider":`, v.Provider)
		if v.Key != nil {
			o.keyStatus(v.Key)
		}
	case adminapi.Error:
		o.str(`{"error":`, v.Error)
		o.optStr(`,"provider":`, v.Provider)
		o.optStr(`,"strategy":`, v.Strategy)
		o.optStr(`,"suggestion":`, v.Suggestion)
		o.optStr(`,"keyId":`, v.KeyID)
	default:
		return nil, false
	}
	o.b = append(o.b, '}')
	return o.b, o.ok
}

// keyStatus appends `,"key":` and k.
func (o *jsonOut) keyStatus(k *adminapi.KeyStatus) {
	o.str(`,"key":{"id":`, k.ID)
	o.str(`,"provider":`, k.Provider)
	o.boolean(`,"isActive":`, k.IsActive)
	o.str(`,"usage":`, k.Usage)
	o.strPtr(`,"lastUsed":`, k.LastUsed)
	o.str(`,"maskedKey":`, k.MaskedKey)
	o.str(`,"state":`, k.State)
	o.boolean(`,"available":`, k.Available)
	o.int(`,"maxRequests":`, k.MaxRequests)
	o.int(`,"weight":`, int64(k.Weight))
	o.int(`,"requests":`, k.Requests)
	o.int(`,"successes":`, k.Successes)
	o.int(`,"failures":`, k.Failures)
	o.float(`,"successRate":`, k.SuccessRate)
	o.int(`,"inFlight":`, k.InFlight)
	if le := k.LastError; le == nil {
		o.raw(`,"lastError":`, "null")
	} else {
		o.int(`,"lastError":{"status":`, int64(le.Status))
		o.str(`,"message":`, le.Message)
		o.strPtr(`,"at":`, le.At)
		o.raw("", "}")
	}
	o.int(`,"consecutiveFailures":`, k.ConsecutiveFailures)
	o.int(`,"promptTokens":`, k.PromptTokens)
	o.int(`,"completionTokens":`, k.CompletionTokens)
	o.strPtr(`,"coolingUntil":`, k.CoolingUntil)
	o.optStr(`,"coolingReason":`, k.CoolingReason)
	o.optStr(`,"disabledReason":`, k.DisabledReason)
	o.strPtr(`,"disabledAt":`, k.DisabledAt)
	o.str(`,"description":`, k.Description)
	if k.Tags == nil {
		o.raw(`,"tags":`, "null")
	} else {
		sep := `,"tags":[`
		for _, t := range k.Tags {
			o.str(sep, t)
			sep = ","
		}
		if sep != "," {
			o.raw(sep, "")
		}
		o.raw("", "]")
	}
	o.strPtr(`,"createdAt":`, k.CreatedAt)
	o.strPtr(`,"updatedAt":`, k.UpdatedAt)
	o.optStr(`,"project":`, k.Project)
	if k.ProjectLearned {
		o.raw(`,"projectLearned":`, "true")
	}
	o.optStr(`,"proxy":`, k.Proxy)
	if len(k.ModelCooldowns) > 0 {
		sep := `,"modelCooldowns":[{"model":`
		for _, m := range k.ModelCooldowns {
			o.str(sep, m.Model)
			o.strPtr(`,"until":`, m.Until)
			o.optStr(`,"reason":`, m.Reason)
			sep = `},{"model":`
		}
		o.raw("", "}]")
	}
	o.raw("", "}")
}

// decodeAddKeyFast reads the body of POST /admin/keys into req when it is a
// flat object whose members are exactly named fields of AddKeyRequest,
// each once, with strings that hold no escapes, integers and booleans (as
// the dashboard and the usual scripts send it), and whitespace around:
// then the result is what encoding/json makes of it. Anything else returns
// false with req untouched, for encoding/json to read it (or say what is
// wrong). raw is valid UTF-8 (decodeJSON checked).
func decodeAddKeyFast(raw []byte, req *adminapi.AddKeyRequest) bool {
	p := flatJSON{b: raw}
	var r adminapi.AddKeyRequest
	var seen uint8
	p.space()
	if !p.byte('{') {
		return false
	}
	p.space()
	if !p.byte('}') {
		for {
			name, ok := p.str()
			if !ok {
				return false
			}
			p.space()
			if !p.byte(':') {
				return false
			}
			p.space()
			var bit uint8
			switch name {
			case "provider":
				bit = 1
				r.Provider, ok = p.str()
			case "apiKey":
				bit = 2
				r.APIKey, ok = p.str()
			case "maxRequests":
				bit = 4
				var n int64
				n, ok = p.int()
				r.MaxRequests = &n
			case "weight":
				bit = 8
				var n int64
				n, ok = p.int()
				w := int(n)
				ok = ok && int64(w) == n
				r.Weight = &w
			case "isActive":
				bit = 16
				var b bool
				b, ok = p.boolean()
				r.IsActive = &b
			case "project":
				bit = 32
				var s string
				s, ok = p.str()
				r.Project = &s
			case "proxy":
				bit = 64
				var s string
				s, ok = p.str()
				r.Proxy = &s
			}
			if !ok || bit == 0 || seen&bit != 0 {
				return false
			}
			seen |= bit
			p.space()
			if p.byte(',') {
				p.space()
				continue
			}
			if p.byte('}') {
				break
			}
			return false
		}
	}
	p.space()
	if p.i != len(p.b) {
		return false
	}
	*req = r
	return true
}

// flatJSON reads the simple JSON values decodeAddKeyFast accepts.
type flatJSON struct {
	b []byte
	i int
}

//go:noinline
func (p *flatJSON) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

//go:noinline
func (p *flatJSON) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters.
func (p *flatJSON) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	for j := p.i; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := string(p.b[p.i:j])
			p.i = j + 1
			return s, true
		case c < 0x20 || c == '\\':
			return "", false
		}
	}
	return "", false
}

// int reads an integer of at most 18 digits (no fraction or exponent).
func (p *flatJSON) int() (int64, bool) {
	neg := p.byte('-')
	start := p.i
	var n int64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + int64(p.b[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > 18 || (digits > 1 && p.b[start] == '0') {
		return 0, false
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

func (p *flatJSON) boolean() (bool, bool) {
	rest := string(p.b[p.i:])
	if strings.HasPrefix(rest, "true") {
		p.i += 4
		return true, true
	}
	if strings.HasPrefix(rest, "false") {
		p.i += 5
		return false, true
	}
	return false, false
}
