package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// fill sets every field of the struct v points to (recursively, through
// pointers and slices of two elements) to a value that is not zero and
// needs no escaping, so that a field added to the types and forgotten in
// fastjson.go shows up as a difference.
func fill(t *testing.T, v reflect.Value, seed *int) {
	t.Helper()
	*seed++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("v%d-2026-12-04T09:00:00Z", *seed))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*seed) * 1000003)
	case reflect.Float64:
		v.SetFloat(float64(*seed) / 7)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), seed)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(t, v.Index(0), seed)
		fill(t, v.Index(1), seed)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i), seed)
		}
	default:
		t.Fatalf("fill: no case for %s: add it here and in fastjson.go", v.Type())
	}
}

func checkSame(t *testing.T, v any, wantFast bool) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		want = nil
	}
	got, ok := fastJSON(v)
	if ok != wantFast {
		t.Errorf("fastJSON ok = %v, want %v, for %s", ok, wantFast, want)
	}
	if ok && !bytes.Equal(got, want) {
		t.Errorf("fastJSON differs from encoding/json:\n got %s\nwant %s", got, want)
	}
}

func TestFastJSONMatchesEncodingJSON(t *testing.T) {
	seed := 0
	var full adminapi.AddKeyResponse
	fill(t, reflect.ValueOf(&full).Elem(), &seed)
	checkSame(t, full, true)
	var fullErr adminapi.Error
	fill(t, reflect.ValueOf(&fullErr).Elem(), &seed)
	checkSame(t, fullErr, true)

	// Zero values: nil pointers, nil and empty slices, omitempty members.
	checkSame(t, adminapi.AddKeyResponse{}, true)
	checkSame(t, adminapi.AddKeyResponse{Key: &adminapi.KeyStatus{}}, true)
	checkSame(t, adminapi.AddKeyResponse{Key: &adminapi.KeyStatus{Tags: []string{}, ModelCooldowns: []adminapi.ModelCooldown{}}}, true)
	checkSame(t, adminapi.Error{Error: "This API key is already in the pool", KeyID: "k1"}, true)

	// Numbers as encoding/json writes them.
	for _, f := range []float64{0, math.Copysign(0, -1), 1, 100, -3, 1e15 - 1, 1e15, 123456789012345, 0.5, 1.0 / 3, 99.99, 1e-6, 1e-7, 9.99e-7, 1e20, 1e21, 1.5e300, -2.5e-9, 5e-324, math.MaxFloat64} {
		checkSame(t, adminapi.AddKeyResponse{Key: &adminapi.KeyStatus{SuccessRate: f}}, true)
	}
	for _, n := range []int64{0, -1, math.MinInt64, math.MaxInt64} {
		checkSame(t, adminapi.AddKeyResponse{Key: &adminapi.KeyStatus{Requests: n, Weight: int(n), LastError: &adminapi.LastError{Status: int(n)}}}, true)
	}
	// Left to encoding/json: NaN (an error there) and strings it escapes.
	checkSame(t, adminapi.AddKeyResponse{Key: &adminapi.KeyStatus{SuccessRate: math.NaN()}}, false)
	// UTF-8 as it is, as in a masked key.
	for _, s := range []string{"sk-t…0001", "é", "日本", "\u2027", "\U0001F600"} {
		checkSame(t, adminapi.AddKeyResponse{Key: &adminapi.KeyStatus{MaskedKey: s, Tags: []string{s}}}, true)
	}
	for _, s := range []string{`a"b`, `a\b`, "a\nb", "<", ">", "&", "\u2028", "x\u2029", "\x7f", "\x00", "\xff", "a\xe2\x80"} {
		checkSame(t, adminapi.Error{Error: s}, false)
		checkSame(t, adminapi.AddKeyResponse{Key: &adminapi.KeyStatus{Tags: []string{"x", s}}}, false)
		checkSame(t, adminapi.AddKeyResponse{Key: &adminapi.KeyStatus{ModelCooldowns: []adminapi.ModelCooldown{{Model: "m", Until: &s}}}}, false)
	}
	// Other types go to encoding/json.
	if _, ok := fastJSON(adminapi.KeyStatus{}); ok {
		t.Error("fastJSON took a type it does not know")
	}
}

// decodeSlow is decodeJSON's encoding/json path.
func decodeSlow(raw []byte) (adminapi.AddKeyRequest, error) {
	var r adminapi.AddKeyRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, err
	}
	if dec.More() {
		return r, fmt.Errorf("more")
	}
	return r, nil
}

// checkDecode: when the fast path takes raw, encoding/json reads the same
// from it without an error; when it does not, req is untouched.
func checkDecode(t *testing.T, raw []byte) bool {
	t.Helper()
	if !utf8.Valid(raw) {
		return false // decodeJSON refuses it before
	}
	var got adminapi.AddKeyRequest
	ok := decodeAddKeyFast(raw, &got)
	if !ok {
		if !reflect.DeepEqual(got, adminapi.AddKeyRequest{}) {
			t.Errorf("%q: not taken, yet the request was changed: %+v", raw, got)
		}
		return false
	}
	want, err := decodeSlow(raw)
	if err != nil {
		t.Errorf("%q: fast path took it, encoding/json says %v", raw, err)
	} else if !reflect.DeepEqual(got, want) {
		t.Errorf("%q: fast path read %+v, encoding/json %+v", raw, got, want)
	}
	return true
}

var addKeyBodies = []struct {
	body string
	fast bool
}{
	{`{"provider":"openai","apiKey":"sk-test-fake-0001"}`, true},
	{" \t\r\n{ \"provider\" : \"gemini\" ,\n \"apiKey\":\"AIza-fake\" } \n", true},
	{`{}`, true},
	{`{"provider":"openai","apiKey":"k","maxRequests":1000,"weight":-3,"isActive":false,"project":"p","proxy":""}`, true},
	{`{"isActive":true,"maxRequests":0,"weight":-0}`, true},
	{`{"maxRequests":999999999999999999}`, true},
	{`{"apiKey":"ключ-日本"}`, true},
	// For encoding/json: its errors, or what only it reads.
	{``, false},
	{`   `, false},
	{`[]`, false},
	{`null`, false},
	{`{"provider":"a"`, false},
	{`{"provider":"a",}`, false},
	{`{"provider":"a"} {}`, false},
	{`{"provider":"a"}x`, false},
	{`{"provider":"a","provider":"b"}`, false},
	{`{"Provider":"a"}`, false},
	{`{"provider":"a\"b"}`, false},
	{`{"provider":"a\u0062"}`, false},
	{"{\"provider\":\"a\tb\"}", false},
	{`{"provider":null}`, false},
	{`{"provider":1}`, false},
	{`{"apiKey":true}`, false},
	{`{"isActive":"true"}`, false},
	{`{"isActive":tru}`, false},
	{`{"isActive":truex}`, false},
	{`{"maxRequests":1.5}`, false},
	{`{"maxRequests":1e3}`, false},
	{`{"maxRequests":01}`, false},
	{`{"maxRequests":-}`, false},
	{`{"maxRequests":9999999999999999999}`, false},
	{`{"maxRequests":"5"}`, false},
	{`{"weight":null}`, false},
	{`{"metadata":{"description":"d"}}`, false},
	{`{"unknown":1}`, false},
	{`{"provider" "a"}`, false},
	{`{provider:"a"}`, false},
	{"\ufeff{}", false},
}

func TestDecodeAddKeyFast(t *testing.T) {
	for _, c := range addKeyBodies {
		if got := checkDecode(t, []byte(c.body)); got != c.fast {
			t.Errorf("%q: fast path %v, want %v", c.body, got, c.fast)
		}
	}
}

func FuzzDecodeAddKeyFast(f *testing.F) {
	for _, c := range addKeyBodies {
		f.Add([]byte(c.body))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkDecode(t, raw) })
}
