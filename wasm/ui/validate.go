package ui

import (
	"strings"

	"github.com/keypool/keypool/worker-proxy/pool"
)

// fieldRules maps the pool core's validation messages (English, shared
// with the server) to translated sentences, by a phrase each contains.
// The first match wins.
var fieldRules = []struct{ phrase, key string }{
	{"is required", "form.required"},
	{"whitespace or control characters", "form.spaces"},
	{"control characters", "form.control"},
	{"not valid UTF-8", "form.utf8"},
	{"may only contain", "form.name"},
	{"tags are allowed", "form.tooMany"},
	{"must not be empty", "form.emptyTag"},
	{"a tag is longer than", "form.tagTooLong"},
	{"bytes", "form.tooLongBytes"},
	{"longer than", "form.tooLong"},
	{"between 0 and", "form.between"},
	{"positive integer", "form.nonNegative"},
}

// FieldError is the operator's sentence for a validation error from the
// pool core on the field labelled label, in the dashboard's language: a
// known rule gets its own translated sentence (with the limit the core
// named, if any), anything else the core's text after a translated lead.
func (d *Dashboard) FieldError(label string, err error) string {
	detail := strings.TrimPrefix(err.Error(), pool.ErrInvalid.Error()+": ")
	for _, r := range fieldRules {
		if strings.Contains(detail, r.phrase) {
			return d.t(r.key, label, limitIn(detail))
		}
	}
	return d.t("form.invalid", label, detail)
}

// limitIn returns the last number in s (the limit a rule names), or "".
func limitIn(s string) string {
	end := strings.LastIndexAny(s, "0123456789") + 1
	start := end
	for start > 0 && s[start-1] >= '0' && s[start-1] <= '9' {
		start--
	}
	return s[start:end]
}
