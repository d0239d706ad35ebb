package reqlog

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/jsonstr"
)

// AppendRecord appends r's JSON to dst: exactly the bytes json.Marshal
// writes for r (field order, omitempty, HTML-safe string escapes, number
// formats), without reflection and without allocating beyond dst's growth.
// Its error is json.Marshal's, for a record json cannot encode (a NaN
// latency, a time past year 9999).
func AppendRecord(dst []byte, r *adminapi.RequestRecord) ([]byte, error) {
	if !encodable(r) {
		b, err := json.Marshal(r)
		return append(dst, b...), err
	}
	dst = append(dst, `{"id":`...)
	dst = jsonstr.Append(dst, r.ID)
	dst = append(dst, `,"time":"`...)
	dst, _ = r.Time.AppendText(dst) // encodable checked the year and zone
	dst = append(dst, '"')
	if r.Token != "" {
		dst = append(dst, `,"token":`...)
		dst = jsonstr.Append(dst, r.Token)
	}
	if r.TokenID != "" {
		dst = append(dst, `,"tokenId":`...)
		dst = jsonstr.Append(dst, r.TokenID)
	}
	dst = append(dst, `,"route":`...)
	dst = jsonstr.Append(dst, r.Route)
	dst = append(dst, `,"provider":`...)
	dst = jsonstr.Append(dst, r.Provider)
	if r.Model != "" {
		dst = append(dst, `,"model":`...)
		dst = jsonstr.Append(dst, r.Model)
	}
	dst = append(dst, `,"strategy":`...)
	dst = jsonstr.Append(dst, r.Strategy)
	if r.KeyID != "" {
		dst = append(dst, `,"keyId":`...)
		dst = jsonstr.Append(dst, r.KeyID)
	}
	if r.Key != "" {
		dst = append(dst, `,"key":`...)
		dst = jsonstr.Append(dst, r.Key)
	}
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	if r.Class != "" {
		dst = append(dst, `,"class":`...)
		dst = jsonstr.Append(dst, r.Class)
	}
	if len(r.Attempts) > 0 {
		dst = append(dst, `,"attempts":[`...)
		for i := range r.Attempts {
			a := &r.Attempts[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"keyId":`...)
			dst = jsonstr.Append(dst, a.KeyID)
			dst = append(dst, `,"key":`...)
			dst = jsonstr.Append(dst, a.Key)
			dst = append(dst, `,"class":`...)
			dst = jsonstr.Append(dst, a.Class)
			if a.Status != 0 {
				dst = append(dst, `,"status":`...)
				dst = strconv.AppendInt(dst, int64(a.Status), 10)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"latencyMs":`...)
	dst = appendFloat(dst, r.LatencyMs)
	if r.TTFBMs != 0 {
		dst = append(dst, `,"ttfbMs":`...)
		dst = appendFloat(dst, r.TTFBMs)
	}
	if r.PromptTokens != 0 {
		dst = append(dst, `,"promptTokens":`...)
		dst = strconv.AppendInt(dst, r.PromptTokens, 10)
	}
	if r.CompletionTokens != 0 {
		dst = append(dst, `,"completionTokens":`...)
		dst = strconv.AppendInt(dst, r.CompletionTokens, 10)
	}
	return append(dst, '}'), nil
}

// encodable reports whether AppendRecord can write r itself: finite
// numbers and a time Time.AppendText accepts (year 0–9999, UTC: the relay
// records UTC times; any other zone goes through json.Marshal).
func encodable(r *adminapi.RequestRecord) bool {
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	if y := r.Time.Year(); y < 0 || y > 9999 {
		return false
	}
	_, off := r.Time.Zone()
	return off == 0 && finite(r.LatencyMs) && finite(r.TTFBMs)
}

// appendFloat writes f as encoding/json writes a float64.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
