package ui

import (
	"testing"
	"time"
)

func TestLocalTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"":                    {},
		"2026-01-15T10:30":    time.Date(2026, 1, 15, 10, 30, 0, 0, time.Local),
		"2026-01-15T10:30:05": time.Date(2026, 1, 15, 10, 30, 5, 0, time.Local),
	} {
		if got, err := LocalTime(in); err != nil || !got.Equal(want) {
			t.Errorf("LocalTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "2026-01-15", "15/01/2026 10:30"} {
		if _, err := LocalTime(bad); err == nil {
			t.Errorf("LocalTime(%q) accepted", bad)
		}
	}
}

func TestRequestMessagesTranslated(t *testing.T) {
	for k, v := range requestMessages {
		if v[0] == "" || v[1] == "" {
			t.Errorf("%s lacks a translation", k)
		}
		if T(LangEN, k) != v[0] || T(LangZH, k) != v[1] {
			t.Errorf("%s is not in the message table", k)
		}
	}
}
