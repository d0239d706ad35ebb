package adminapi

import "time"

// Alert is one alert message, as the generic JSON webhook format sends it
// and GET /admin/alerts lists it.
type Alert struct {
	Kind     string    `json:"kind"`     // key_disabled, pool_low, pool_empty, error_rate, recovered, test
	Severity string    `json:"severity"` // critical, warning or info
	Provider string    `json:"provider,omitempty"`
	Title    string    `json:"title"`
	Text     string    `json:"text"`
	At       time.Time `json:"at"`
	// Keys lists disabled keys (key_disabled), by id and masked.
	Keys []AlertKey `json:"keys,omitempty"`
	// Available and Total are the provider's servable and total keys.
	Available int `json:"available"`
	Total     int `json:"total"`
	// ErrorRate is the share of 5xx answers (error_rate).
	ErrorRate float64 `json:"errorRate,omitempty"`
	// Resolves names the kind a recovered alert ends.
	Resolves string `json:"resolves,omitempty"`
}

// AlertKey names a key without its secret.
type AlertKey struct {
	ID     string `json:"id"`
	Masked string `json:"masked"`
	Reason string `json:"reason,omitempty"`
}

// AlertSent is an alert and how its sending went.
type AlertSent struct {
	Alert   Alert         `json:"alert"`
	Results []AlertResult `json:"results"`
}

// AlertResult is one destination's answer to one alert. Destination names
// it without secrets (format and host).
type AlertResult struct {
	Destination string `json:"destination"`
	OK          bool   `json:"ok"`
	Status      int    `json:"status,omitempty"`
	Error       string `json:"error,omitempty"`
	Attempts    int    `json:"attempts"`
}

// AlertSettings answers GET /admin/alerts.
type AlertSettings struct {
	Enabled          bool        `json:"enabled"`
	Destinations     []string    `json:"destinations"`
	MinAvailable     string      `json:"minAvailable,omitempty"`
	Interval         string      `json:"interval,omitempty"`
	ErrorRate        float64     `json:"errorRate,omitempty"`
	ErrorWindow      string      `json:"errorWindow,omitempty"`
	ErrorMinRequests int64       `json:"errorMinRequests,omitempty"`
	Recent           []AlertSent `json:"recent"`
}

// AlertTestResponse answers POST /admin/alerts/test.
type AlertTestResponse struct {
	OK      bool          `json:"ok"`
	Results []AlertResult `json:"results"`
}
