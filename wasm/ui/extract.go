package ui

import "strings"

// keyShape is how a provider's API keys look: a prefix, then key
// characters ([0-9A-Za-z_-]); at least min characters in all. not names a
// prefix that belongs to another provider (an Anthropic "sk-ant-" key is
// not an OpenAI "sk-" key).
type keyShape struct {
	prefix string
	min    int
	not    string
}

// keyShapes are the providers whose keys a bulk import can pick out of
// any text. The minimum lengths are loose on purpose: a key the provider
// would reject is still imported, and the retest disables it.
var keyShapes = map[string]keyShape{
	"gemini":    {prefix: "AIza", min: 24},
	"openai":    {prefix: "sk-", min: 20, not: "sk-ant-"},
	"anthropic": {prefix: "sk-ant-", min: 24},
}

func isKeyChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
}

// find returns every key of shape s in line, in order.
func (s keyShape) find(line string) []string {
	var out []string
	for i := 0; i < len(line); {
		j := strings.Index(line[i:], s.prefix)
		if j < 0 {
			break
		}
		start := i + j
		end := start + len(s.prefix)
		for end < len(line) && isKeyChar(line[end]) {
			end++
		}
		// A key starts at a word boundary and is long enough.
		if (start == 0 || !isKeyChar(line[start-1])) && end-start >= s.min && (s.not == "" || !strings.HasPrefix(line[start:], s.not)) {
			out = append(out, line[start:end])
		}
		i = end
	}
	return out
}

// Extracted is what a bulk import found in pasted text.
type Extracted struct {
	Keys    []string // each key once, in order of first appearance
	Lines   []int    // the (1-based) line of each of Keys
	Repeats []int    // lines holding a key already found earlier (left out of Keys)
	NoKey   []int    // lines with text but no key
}

// ExtractKeys picks the keys out of text pasted for provider: one a line,
// comma, semicolon or space separated, .env lines (NAME=key, export
// NAME="key"), a JSON array or object, a log. When some of the text has
// the provider's key shape (see keyShapes), only keys of that shape are
// taken; otherwise each line's values are (the part after "=" of an
// assignment, else every separated word). Quotes and brackets are dropped,
// lines starting with # or // are comments, and a key that appears again
// is counted in Repeats and sent once.
func ExtractKeys(provider, text string) Extracted {
	lines := strings.Split(text, "\n")
	shape, shaped := keyShapes[provider]
	if shaped {
		shaped = false
		for _, l := range lines {
			if len(shape.find(l)) > 0 {
				shaped = true
				break
			}
		}
	}
	var x Extracted
	seen := map[string]bool{}
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "//") {
			continue
		}
		var found []string
		if shaped {
			found = shape.find(l)
		} else {
			found = lineValues(l)
		}
		if len(found) == 0 {
			if hasWordChar(l) {
				x.NoKey = append(x.NoKey, i+1)
			}
			continue
		}
		repeat := false
		for _, k := range found {
			if seen[k] {
				repeat = true
				continue
			}
			seen[k] = true
			x.Keys = append(x.Keys, k)
			x.Lines = append(x.Lines, i+1)
		}
		if repeat {
			x.Repeats = append(x.Repeats, i+1)
		}
	}
	return x
}

// lineValues splits one line of a paste without a known key shape.
func lineValues(l string) []string {
	l = strings.TrimPrefix(l, "export ")
	if name, v, ok := strings.Cut(l, "="); ok && isName(strings.TrimSpace(name)) {
		l = v
	} else if name, v, ok := strings.Cut(l, ":"); ok && isName(strings.Trim(strings.TrimSpace(name), `"'`)) {
		l = v // "name": "key" in a JSON object or YAML
	}
	var out []string
	for _, w := range strings.FieldsFunc(l, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\r' || strings.ContainsRune("\"'`[]{}()", r)
	}) {
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

// isName reports whether s looks like a variable or field name.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func hasWordChar(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 {
			return true
		}
	}
	return false
}
