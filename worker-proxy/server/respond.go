package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"Internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError writes {"error": msg} with status.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, adminapi.Error{Error: msg})
}

// methods dispatches by HTTP method and answers others with a JSON 405.
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := m[r.Method]; ok {
		h(w, r)
		return
	}
	if r.Method == http.MethodHead {
		if h, ok := m[http.MethodGet]; ok {
			h(w, r)
			return
		}
	}
	allow := make([]string, 0, len(m))
	for k := range m {
		allow = append(allow, k)
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method %s is not allowed here", r.Method))
}

// errBadRequest marks a decoding error whose message is safe to show; its
// status is 400 unless set.
type errBadRequest struct {
	msg    string
	status int
}

func (e errBadRequest) Error() string { return e.msg }

// decodeJSON reads one JSON object of at most limit bytes into v, refusing
// unknown fields, trailing data and a body that is not UTF-8 (which
// encoding/json would silently turn into U+FFFD). Its errors are safe to
// show a client; a body over limit is a 413.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if r.Body == nil {
		return errBadRequest{msg: "Request body is required"}
	}
	if r.ContentLength > limit {
		refuseBody(w, r)
		return errBadRequest{msg: fmt.Sprintf("Request body is larger than %d bytes", limit), status: http.StatusRequestEntityTooLarge}
	}
	raw, err := readAll(w, r.Body, r.ContentLength, limit, nil)
	if err != nil {
		refuseBody(w, r)
		status, msg := bodyError(err, limit, 0)
		if status == http.StatusRequestTimeout {
			msg = "The request body did not arrive in time (BODY_READ_TIMEOUT)"
		}
		return errBadRequest{msg: msg, status: status}
	}
	bodyRead(w)
	if i := invalidUTF8(raw); i >= 0 {
		return errBadRequest{msg: fmt.Sprintf("Request body is not valid UTF-8 (byte %d): API keys and every other text must be UTF-8; nothing was changed", i)}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return errBadRequest{msg: "Request body is empty; a JSON object is required"}
		case errors.As(err, &se):
			return errBadRequest{msg: fmt.Sprintf("Invalid JSON at byte %d", se.Offset)}
		case errors.As(err, &te):
			if te.Field != "" {
				return errBadRequest{msg: fmt.Sprintf("Field %q must be of type %s", te.Field, jsonType(te.Type))}
			}
			return errBadRequest{msg: "Request body must be a JSON object"}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return errBadRequest{msg: "Unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")}
		default:
			return errBadRequest{msg: "Invalid JSON body"}
		}
	}
	if dec.More() {
		return errBadRequest{msg: "Request body must hold a single JSON object"}
	}
	return nil
}

// invalidUTF8 returns the offset of b's first byte that is not part of
// valid UTF-8, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// jsonType names a Go type the way a JSON user thinks of it.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "object"
	}
}

// openAIStyle reports whether the caller reads errors the OpenAI way,
// {"error":{"message",...}}: the /v1 front door, and OpenAI's and
// Anthropic's SDKs (they send X-Stainless-* headers), which fail to parse
// the seed's {"error":"..."} shape.
func openAIStyle(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/v1/") || r.Header.Get("X-Stainless-Lang") != "" || r.Header.Get("X-Stainless-Package-Version") != ""
}

// relayError answers an error the proxy itself makes on the relay: the
// seed's shape {"error": msg, ...extra} for scripts, or for OpenAI-style
// callers {"error": {"message": msg, "type": typ, "code": code}, ...extra}.
func relayError(w http.ResponseWriter, r *http.Request, status int, typ, code, msg string, extra map[string]any) {
	body := make(map[string]any, len(extra)+1)
	for k, v := range extra {
		body[k] = v
	}
	if openAIStyle(r) {
		body["error"] = map[string]any{"message": msg, "type": typ, "code": code, "param": nil}
	} else {
		body["error"] = msg
	}
	writeJSON(w, status, body)
}
