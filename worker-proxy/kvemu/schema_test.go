package kvemu_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/kvemu"
)

// schemaFile is Cloudflare's OpenAPI subset for KV (the KV paths of
// Cloudflare's OpenAPI file, 2024-08, with every component they
// reference), kept in testdata so the check needs nothing outside the
// repository.
func schemaFile(t *testing.T) []byte {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "testdata", "cloudflare-kv-openapi.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("schema file %s is missing: the emulator cannot be checked against Cloudflare's API schema", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type schemaOp struct {
	method, path string // path as in the schema, e.g. /accounts/{account_id}/storage/kv/namespaces
	op           map[string]any
}

// phase orders the operations so each finds what it needs: create the
// namespace, write, read, delete keys, delete the namespace.
func (o schemaOp) phase() int {
	nsOnly := strings.HasSuffix(o.path, "{namespace_id}")
	switch {
	case o.method == "post" && strings.HasSuffix(o.path, "/namespaces"):
		return 0
	case o.method == "put":
		return 1
	case o.method == "get":
		return 2
	case o.method == "delete" && nsOnly:
		return 4
	default:
		return 3
	}
}

// TestSchema checks the emulator against the OpenAPI file: every KV path and
// method is served (never 404 no-route or 405), answers 200 to a request built
// from the schema's own request shapes and examples, and its 200 and 4XX
// bodies match the documented response schemas (required properties present,
// JSON types, enums, nullability, recursively through $ref and allOf).
func TestSchema(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	if err := json.Unmarshal(schemaFile(t), &doc); err != nil {
		t.Fatalf("schema file: %v", err)
	}
	s := &schema{doc: doc}
	srv := start(t, kvemu.Options{Tokens: tokens()})

	var ops []schemaOp
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			ops = append(ops, schemaOp{method, path, op.(map[string]any)})
		}
	}
	if len(ops) < 13 {
		t.Fatalf("schema has %d KV operations, expected at least 13", len(ops))
	}
	sort.Slice(ops, func(i, j int) bool {
		a, b := ops[i], ops[j]
		if a.phase() != b.phase() {
			return a.phase() < b.phase()
		}
		return a.path+a.method < b.path+b.method
	})

	params := map[string]string{"account_id": acct}
	for _, o := range ops {
		name := strings.ToUpper(o.method) + " " + o.path
		t.Run(name, func(t *testing.T) {
			if _, ok := params["namespace_id"]; !ok && strings.Contains(o.path, "{namespace_id}") {
				t.Fatal("no namespace created by the create operation")
			}
			variants := []bool{false}
			if s.hasOptionalQuery(o.op) {
				variants = append(variants, true)
			}
			for _, withOptional := range variants {
				res, body := s.do(t, srv.URL, o, params, tokRW, withOptional)
				if res.StatusCode == http.StatusMethodNotAllowed || (res.StatusCode == 404 && bytes.Contains(body, []byte(`"code":7003`))) {
					t.Fatalf("not served: %d %s", res.StatusCode, body)
				}
				if res.StatusCode != 200 {
					t.Fatalf("status %d (optional query params: %v): %s", res.StatusCode, withOptional, body)
				}
				s.checkResponse(t, o, "200", res, body)
				if o.phase() == 0 {
					var env struct {
						Result struct{ ID string } `json:"result"`
					}
					_ = json.Unmarshal(body, &env)
					params["namespace_id"] = env.Result.ID
				}
			}

			// Failures: a bad token, and for namespace routes an unknown namespace.
			res, body := s.do(t, srv.URL, o, params, "not-a-token", false)
			if res.StatusCode != 401 {
				t.Errorf("bad token: %d %s", res.StatusCode, body)
			}
			s.checkResponse(t, o, "4XX", res, body)
			if strings.Contains(o.path, "{namespace_id}") {
				missing := map[string]string{"account_id": acct, "namespace_id": "00000000000000000000000000000000"}
				res, body := s.do(t, srv.URL, o, missing, tokRW, false)
				if res.StatusCode != 404 || !bytes.Contains(body, []byte(`"code":10013`)) {
					t.Errorf("unknown namespace: %d %s", res.StatusCode, body)
				}
				s.checkResponse(t, o, "4XX", res, body)
			}
		})
	}
}

type schema struct{ doc map[string]any }

// resolve follows $ref.
func (s *schema) resolve(n map[string]any) map[string]any {
	for {
		ref, ok := n["$ref"].(string)
		if !ok {
			return n
		}
		cur := any(s.doc)
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[part]
		}
		n = cur.(map[string]any)
	}
}

func (s *schema) parameters(op map[string]any) []map[string]any {
	var out []map[string]any
	for _, p := range asSlice(op["parameters"]) {
		out = append(out, s.resolve(p.(map[string]any)))
	}
	return out
}

func (s *schema) hasOptionalQuery(op map[string]any) bool {
	for _, p := range s.parameters(op) {
		if p["in"] == "query" {
			return true
		}
	}
	return false
}

// sample builds a value from a schema: its example, else its default, else
// one built from its type. Objects get their required properties; the
// schema's bulk-write array lists its items' required properties on the
// array, which is honoured.
func (s *schema) sample(n map[string]any, required []any) any {
	n = s.resolve(n)
	if ex, ok := n["example"]; ok {
		return ex
	}
	if d, ok := n["default"]; ok {
		return d
	}
	for _, sub := range asSlice(n["allOf"]) {
		return s.sample(sub.(map[string]any), required)
	}
	switch n["type"] {
	case "array":
		return []any{s.sample(n["items"].(map[string]any), asSlice(n["required"]))}
	case "object":
		obj := map[string]any{}
		props, _ := n["properties"].(map[string]any)
		if r := asSlice(n["required"]); len(r) > 0 {
			required = r
		}
		for _, name := range required {
			if p, ok := props[name.(string)]; ok {
				obj[name.(string)] = s.sample(p.(map[string]any), nil)
			}
		}
		return obj
	case "number", "integer":
		return 1
	case "boolean":
		return false
	}
	return "sample"
}

// do sends the operation built from the schema: path parameters from params
// (else their examples), query parameters with examples or defaults if
// withOptional, and a body from the request schema.
func (s *schema) do(t *testing.T, base string, o schemaOp, params map[string]string, token string, withOptional bool) (*http.Response, []byte) {
	t.Helper()
	path := o.path
	q := url.Values{}
	for _, p := range s.parameters(o.op) {
		name := p["name"].(string)
		val, ok := params[name]
		if !ok {
			val = fmt.Sprint(s.sample(p["schema"].(map[string]any), nil))
		}
		switch p["in"] {
		case "path":
			path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(val))
		case "query":
			if withOptional {
				q.Set(name, val)
			}
		}
	}
	u := base + "/client/v4" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}

	var body io.Reader
	contentType := ""
	if rb, ok := o.op["requestBody"].(map[string]any); ok {
		content := rb["content"].(map[string]any)
		if mp, ok := content["multipart/form-data"].(map[string]any); ok {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			form := s.resolve(mp["schema"].(map[string]any))
			for name, p := range form["properties"].(map[string]any) {
				v := s.sample(p.(map[string]any), nil)
				if err := mw.WriteField(name, fmt.Sprint(v)); err != nil {
					t.Fatal(err)
				}
			}
			mw.Close()
			body, contentType = &buf, mw.FormDataContentType()
		} else if js, ok := content["application/json"].(map[string]any); ok {
			if sch, ok := js["schema"].(map[string]any); ok {
				b, err := json.Marshal(s.sample(sch, nil))
				if err != nil {
					t.Fatal(err)
				}
				body, contentType = bytes.NewReader(b), "application/json"
			}
		}
	}
	req, err := http.NewRequest(strings.ToUpper(o.method), u, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// checkResponse validates a body against the operation's response schema
// for status ("200" or "4XX").
func (s *schema) checkResponse(t *testing.T, o schemaOp, status string, res *http.Response, body []byte) {
	t.Helper()
	r, ok := o.op["responses"].(map[string]any)[status].(map[string]any)
	if !ok {
		t.Fatalf("schema has no %s response", status)
	}
	content := r["content"].(map[string]any)
	ct := res.Header.Get("Content-Type")
	if raw, ok := content["application/octet-stream"].(map[string]any); ok {
		if strings.Contains(ct, "json") {
			t.Errorf("%s: Content-Type %q, want raw bytes", status, ct)
		}
		want := fmt.Sprint(s.sample(raw["schema"].(map[string]any), nil))
		if string(body) != want {
			t.Errorf("%s: value = %q, want the written %q", status, body, want)
		}
		return
	}
	js, ok := content["application/json"].(map[string]any)
	if !ok {
		t.Fatalf("schema: %s response has neither JSON nor octet-stream content", status)
	}
	if ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", status, ct)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: body is not JSON: %v: %s", status, err, body)
	}
	for _, p := range s.check("$", js["schema"].(map[string]any), v) {
		t.Errorf("%s: %s\nbody: %s", status, p, body)
	}
}

// check returns where v breaks schema n.
func (s *schema) check(at string, n map[string]any, v any) []string {
	n = s.resolve(n)
	var probs []string
	for _, sub := range asSlice(n["allOf"]) {
		probs = append(probs, s.check(at, sub.(map[string]any), v)...)
	}
	if v == nil {
		if n["nullable"] == true || (n["type"] == nil && n["properties"] == nil) {
			return probs
		}
		return append(probs, at+": null where the schema does not allow it")
	}
	if typ, ok := n["type"].(string); ok && !jsonType(typ, v) {
		return append(probs, fmt.Sprintf("%s: %T, want %s", at, v, typ))
	}
	if enum := asSlice(n["enum"]); len(enum) > 0 && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		probs = append(probs, fmt.Sprintf("%s: %v not in %v", at, v, enum))
	}
	if min, ok := n["minimum"].(float64); ok {
		if f, ok := v.(float64); ok && f < min {
			probs = append(probs, fmt.Sprintf("%s: %v < minimum %v", at, f, min))
		}
	}
	switch v := v.(type) {
	case map[string]any:
		for _, r := range asSlice(n["required"]) {
			if _, ok := v[r.(string)]; !ok {
				probs = append(probs, fmt.Sprintf("%s: required property %q missing", at, r))
			}
		}
		props, _ := n["properties"].(map[string]any)
		for name, p := range props {
			if pv, ok := v[name]; ok {
				probs = append(probs, s.check(at+"."+name, p.(map[string]any), pv)...)
			}
		}
	case []any:
		// The failure schema puts minLength on the errors array: read it as
		// a minimum item count.
		if ml, ok := n["minLength"].(float64); ok && float64(len(v)) < ml {
			probs = append(probs, fmt.Sprintf("%s: %d items, want at least %v", at, len(v), ml))
		}
		if items, ok := n["items"].(map[string]any); ok {
			for i, item := range v {
				probs = append(probs, s.check(fmt.Sprintf("%s[%d]", at, i), items, item)...)
			}
		}
	}
	return probs
}

func jsonType(typ string, v any) bool {
	switch typ {
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	}
	return true
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
