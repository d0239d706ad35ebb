package kvemu

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

type handler func(*Emulator, http.ResponseWriter, *http.Request, route) *apiErr

var handlers = [...]handler{
	opListNamespaces:   (*Emulator).listNamespaces,
	opCreateNamespace:  (*Emulator).createNamespace,
	opGetNamespace:     (*Emulator).getNamespace,
	opRenameNamespace:  (*Emulator).renameNamespace,
	opDeleteNamespace:  (*Emulator).deleteNamespace,
	opListKeys:         (*Emulator).listKeys,
	opReadValue:        (*Emulator).readValue,
	opReadMetadata:     (*Emulator).readMetadata,
	opWriteValue:       (*Emulator).writeValue,
	opDeleteValue:      (*Emulator).deleteValue,
	opBulkWrite:        (*Emulator).bulkWrite,
	opBulkDelete:       (*Emulator).bulkDelete,
	opBulkDeleteLegacy: (*Emulator).bulkDelete,
	opBulkGet:          (*Emulator).bulkGet,
}

// namespaceJSON is the API's namespace object.
type namespaceJSON struct {
	ID                  string `json:"id"`
	Title               string `json:"title"`
	SupportsURLEncoding bool   `json:"supports_url_encoding"`
}

func (ns *namespace) json() namespaceJSON {
	return namespaceJSON{ID: ns.id, Title: ns.title, SupportsURLEncoding: true}
}

// lookup finds the route's namespace; call with e.mu held. what names the
// operation in the 404 message, as Cloudflare does ("get: 'namespace not found'").
func (e *Emulator) lookup(rt route, what string) (*account, *namespace, *apiErr) {
	a := e.account(rt.account)
	ns := a.namespaces[rt.namespace]
	if ns == nil {
		return nil, nil, &apiErr{status: http.StatusNotFound, code: CodeNamespaceNotFound, msg: what + ": 'namespace not found'"}
	}
	return a, ns, nil
}

func badRequest(code int, format string, args ...any) *apiErr {
	return &apiErr{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

// intParam parses an integral query parameter; ok is false if present and not
// an integer.
func intParam(r *http.Request, name string, def int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1e9 {
		return 0, false
	}
	return int(f), true
}

func (e *Emulator) listNamespaces(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	page, ok := intParam(r, "page", 1)
	if !ok || page < 1 {
		return badRequest(CodeBadPage, "malformed page argument")
	}
	perPage, ok := intParam(r, "per_page", DefaultPerPage)
	if !ok || perPage < MinPerPage || perPage > MaxPerPage {
		return badRequest(CodeBadPerPage, "malformed per_page argument: must be between %d and %d", MinPerPage, MaxPerPage)
	}
	q := r.URL.Query()
	order, direction := q.Get("order"), q.Get("direction")
	if order != "" && order != "id" && order != "title" {
		return badRequest(CodeBadOrder, "invalid order: must be id or title")
	}
	if direction != "" && direction != "asc" && direction != "desc" {
		return badRequest(CodeBadDirection, "invalid direction: must be asc or desc")
	}

	e.mu.Lock()
	var all []namespaceJSON
	for _, ns := range e.account(rt.account).namespaces {
		all = append(all, ns.json())
	}
	e.mu.Unlock()

	slices.SortFunc(all, func(a, b namespaceJSON) int {
		if order == "id" {
			return cmp.Compare(a.ID, b.ID)
		}
		return cmp.Or(cmp.Compare(a.Title, b.Title), cmp.Compare(a.ID, b.ID))
	})
	if direction == "desc" {
		slices.Reverse(all)
	}
	start := min((page-1)*perPage, len(all))
	end := min(start+perPage, len(all))
	result := append([]namespaceJSON{}, all[start:end]...)
	writeResult(w, result, map[string]int{
		"page":        page,
		"per_page":    perPage,
		"count":       len(result),
		"total_count": len(all),
		"total_pages": (len(all) + perPage - 1) / perPage,
	})
	return nil
}

func decodeTitle(r *http.Request) (string, *apiErr) {
	var body struct {
		Title *string `json:"title"`
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(b, &body) != nil {
		return "", badRequest(CodeInvalidRequest, "could not parse request body: expected {\"title\": \"...\"}")
	}
	if body.Title == nil || strings.TrimSpace(*body.Title) == "" {
		return "", badRequest(CodeMissingTitle, "missing title")
	}
	return *body.Title, nil
}

func titleTaken(a *account, title, except string) bool {
	for _, ns := range a.namespaces {
		if ns.title == title && ns.id != except {
			return true
		}
	}
	return false
}

func errTitleExists() *apiErr {
	return badRequest(CodeNamespaceExists, "a namespace with this account ID and title already exists")
}

func (e *Emulator) createNamespace(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	title, aerr := decodeTitle(r)
	if aerr != nil {
		return aerr
	}
	e.mu.Lock()
	a := e.account(rt.account)
	if titleTaken(a, title, "") {
		e.mu.Unlock()
		return errTitleExists()
	}
	if len(a.namespaces) >= MaxNamespaces {
		e.mu.Unlock()
		return badRequest(CodeTooManyNamespaces, "too many namespaces in this account")
	}
	ns := &namespace{id: newNamespaceID(), title: title, keys: make(map[string]*entry)}
	a.namespaces[ns.id] = ns
	res := ns.json()
	e.mu.Unlock()
	writeResult(w, res, nil)
	return nil
}

func (e *Emulator) getNamespace(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	e.mu.Lock()
	_, ns, aerr := e.lookup(rt, "get namespace")
	var res namespaceJSON
	if aerr == nil {
		res = ns.json()
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	writeResult(w, res, nil)
	return nil
}

func (e *Emulator) renameNamespace(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	title, aerr := decodeTitle(r)
	if aerr != nil {
		return aerr
	}
	e.mu.Lock()
	a, ns, aerr := e.lookup(rt, "rename namespace")
	if aerr != nil {
		e.mu.Unlock()
		return aerr
	}
	if titleTaken(a, title, ns.id) {
		e.mu.Unlock()
		return errTitleExists()
	}
	ns.title = title
	res := ns.json()
	e.mu.Unlock()
	writeResult(w, res, nil)
	return nil
}

func (e *Emulator) deleteNamespace(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	e.mu.Lock()
	a, ns, aerr := e.lookup(rt, "delete namespace")
	if aerr == nil {
		delete(a.namespaces, ns.id)
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	writeResult(w, nil, nil)
	return nil
}

// keyJSON is an entry of a key list.
type keyJSON struct {
	Name       string          `json:"name"`
	Expiration int64           `json:"expiration,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
}

func encodeCursor(after string) string { return base64.RawURLEncoding.EncodeToString([]byte(after)) }

func (e *Emulator) listKeys(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	limit, ok := intParam(r, "limit", DefaultListLimit)
	if !ok || limit < MinListLimit || limit > DefaultListLimit {
		return badRequest(CodeBadLimit, "invalid limit argument: must be an integer between %d and %d", MinListLimit, DefaultListLimit)
	}
	q := r.URL.Query()
	prefix := q.Get("prefix")
	var after string
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			return badRequest(CodeBadCursor, "invalid list keys cursor")
		}
		after = string(b)
	}

	e.mu.Lock()
	a, ns, aerr := e.lookup(rt, "list keys")
	var keys []listed
	more := false
	if aerr == nil {
		now := e.now()
		if aerr = e.charge(a, kindList, 1, now); aerr == nil {
			keys, more = ns.list(prefix, after, limit, e.cutoff(now), now)
		}
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	res := make([]keyJSON, len(keys))
	for i, k := range keys {
		res[i] = keyJSON{Name: k.name, Expiration: k.v.expiration, Metadata: k.v.meta}
	}
	cursor := "" // the last page has an empty cursor
	if more {
		cursor = encodeCursor(keys[len(keys)-1].name)
	}
	writeResult(w, res, map[string]any{"count": len(res), "cursor": cursor})
	return nil
}

// checkKey validates a key name; status is the one for a too-long name
// (414 on the URL, 400 in a bulk body).
func checkKey(key string, tooLongStatus int) *apiErr {
	switch key {
	case "", ".", "..":
		return badRequest(CodeIllegalKey, "illegal key name %q", key)
	}
	if len(key) > MaxKeyBytes {
		return &apiErr{status: tooLongStatus, code: CodeKeyTooLong,
			msg: fmt.Sprintf("UTF-8 encoded length of %d exceeds key length limit of %d.", len(key), MaxKeyBytes)}
	}
	return nil
}

func keyNotFound(what string) *apiErr {
	return &apiErr{status: http.StatusNotFound, code: CodeKeyNotFound, msg: what + ": 'key not found'"}
}

func (e *Emulator) readValue(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	if aerr := checkKey(rt.key, http.StatusRequestURITooLong); aerr != nil {
		return aerr
	}
	e.mu.Lock()
	a, ns, aerr := e.lookup(rt, "get")
	var v version
	found := false
	if aerr == nil {
		now := e.now()
		if aerr = e.charge(a, kindRead, 1, now); aerr == nil {
			v, found = ns.get(rt.key, e.cutoff(now), now)
		}
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	if !found {
		return keyNotFound("get")
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(v.value)))
	if v.expiration != 0 {
		h.Set("Expiration", strconv.FormatInt(v.expiration, 10))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(v.value)
	return nil
}

func (e *Emulator) readMetadata(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	if aerr := checkKey(rt.key, http.StatusRequestURITooLong); aerr != nil {
		return aerr
	}
	e.mu.Lock()
	a, ns, aerr := e.lookup(rt, "metadata")
	var v version
	found := false
	if aerr == nil {
		now := e.now()
		if aerr = e.charge(a, kindRead, 1, now); aerr == nil {
			v, found = ns.get(rt.key, e.cutoff(now), now)
		}
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	if !found {
		return keyNotFound("metadata")
	}
	var res any // JSON null for a key without metadata
	if v.meta != nil {
		res = v.meta
	}
	writeResult(w, res, nil)
	return nil
}

// expiration resolves expiration/expiration_ttl (ttl wins) to unix seconds;
// 0 is never.
func expiration(exp, ttl *float64, now time.Time) (int64, *apiErr) {
	if ttl != nil {
		t := *ttl
		if t != math.Trunc(t) || t < MinExpirationTTL || t > 1e11 {
			return 0, badRequest(CodeBadExpirationTTL, "Invalid expiration_ttl of %v. Expiration TTL must be at least %d.", t, MinExpirationTTL)
		}
		return now.Unix() + int64(t), nil
	}
	if exp != nil {
		x := *exp
		if x != math.Trunc(x) || x > 1e12 || int64(x) < now.Unix()+MinExpirationTTL {
			return 0, badRequest(CodeBadExpiration, "Invalid expiration of %v. Expiration times must be at least %d seconds in the future.", x, MinExpirationTTL)
		}
		return int64(x), nil
	}
	return 0, nil
}

func floatQuery(r *http.Request, name string) (*float64, *apiErr) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		code := CodeBadExpiration
		if name == "expiration_ttl" {
			code = CodeBadExpirationTTL
		}
		return nil, badRequest(code, "Invalid %s of %q: must be an integer number of seconds.", name, s)
	}
	return &f, nil
}

// normalizeMetadata compacts metadata and checks it: JSON, at most 1,024
// bytes. Empty or null is no metadata.
func normalizeMetadata(raw []byte) (json.RawMessage, *apiErr) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, badRequest(CodeInvalidMetadata, "Invalid metadata: not valid JSON")
	}
	if buf.String() == "null" {
		return nil, nil
	}
	if buf.Len() > MaxMetadataBytes {
		return nil, &apiErr{status: http.StatusRequestEntityTooLarge, code: CodePayloadTooLarge,
			msg: fmt.Sprintf("Metadata length of %d exceeds limit of %d.", buf.Len(), MaxMetadataBytes)}
	}
	return json.RawMessage(buf.Bytes()), nil
}

func valueTooLarge(n int) *apiErr {
	return &apiErr{status: http.StatusRequestEntityTooLarge, code: CodePayloadTooLarge,
		msg: fmt.Sprintf("Value length of %d exceeds limit of %d.", n, MaxValueBytes)}
}

// readLimited reads at most max bytes; big reports that there were more.
func readLimited(r io.Reader, max int) (b []byte, big bool, err error) {
	b, err = io.ReadAll(io.LimitReader(r, int64(max)+1))
	if len(b) > max {
		return b[:max], true, err
	}
	return b, false, err
}

// writeBody reads the value and metadata of a single write: a raw body, or
// multipart/form-data with "value" and "metadata" (a JSON string) parts.
// Other parts — such as the "metadata.<field>" parts the SDK sends for a
// metadata map — are ignored, as Cloudflare ignores them.
func writeBody(r *http.Request) ([]byte, json.RawMessage, *apiErr) {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		value, big, err := readLimited(r.Body, MaxValueBytes)
		if err != nil {
			return nil, nil, badRequest(CodeInvalidRequest, "could not read request body: %v", err)
		}
		if big {
			return nil, nil, valueTooLarge(MaxValueBytes + 1)
		}
		return value, nil, nil
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, nil, badRequest(CodeInvalidRequest, "multipart body without boundary")
	}
	mr := multipart.NewReader(r.Body, boundary)
	var value []byte
	var meta json.RawMessage
	hasValue := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, badRequest(CodeInvalidRequest, "could not parse multipart body: %v", err)
		}
		switch part.FormName() {
		case "value":
			b, big, err := readLimited(part, MaxValueBytes)
			if err != nil {
				return nil, nil, badRequest(CodeInvalidRequest, "could not read value part: %v", err)
			}
			if big {
				return nil, nil, valueTooLarge(MaxValueBytes + 1)
			}
			value, hasValue = b, true
		case "metadata":
			b, _, err := readLimited(part, 64<<10)
			if err != nil {
				return nil, nil, badRequest(CodeInvalidRequest, "could not read metadata part: %v", err)
			}
			m, aerr := normalizeMetadata(b)
			if aerr != nil {
				return nil, nil, aerr
			}
			meta = m
		default:
			_, _ = io.Copy(io.Discard, part)
		}
	}
	if !hasValue {
		return nil, nil, badRequest(CodeMalformedValue, "malformed value: the multipart body has no \"value\" part")
	}
	return value, meta, nil
}

func (e *Emulator) writeValue(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	if aerr := checkKey(rt.key, http.StatusRequestURITooLong); aerr != nil {
		return aerr
	}
	exp, aerr := floatQuery(r, "expiration")
	if aerr != nil {
		return aerr
	}
	ttl, aerr := floatQuery(r, "expiration_ttl")
	if aerr != nil {
		return aerr
	}
	expiresAt, aerr := expiration(exp, ttl, e.now())
	if aerr != nil {
		return aerr
	}
	value, meta, aerr := writeBody(r)
	if aerr != nil {
		return aerr
	}
	e.mu.Lock()
	a, ns, aerr := e.lookup(rt, "put")
	if aerr == nil {
		now := e.now()
		if aerr = e.charge(a, kindWrite, 1, now); aerr == nil {
			ns.put(rt.key, version{at: now, value: value, meta: meta, expiration: expiresAt}, e.cutoff(now))
		}
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	writeResult(w, struct{}{}, nil)
	return nil
}

func (e *Emulator) deleteValue(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	if aerr := checkKey(rt.key, http.StatusRequestURITooLong); aerr != nil {
		return aerr
	}
	e.mu.Lock()
	a, ns, aerr := e.lookup(rt, "delete")
	if aerr == nil {
		now := e.now()
		if aerr = e.charge(a, kindDelete, 1, now); aerr == nil {
			ns.put(rt.key, version{at: now, deleted: true}, e.cutoff(now))
		}
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	writeResult(w, nil, nil)
	return nil
}

// readJSON decodes a JSON body of at most max bytes into v.
func readJSON(r *http.Request, max int, v any) *apiErr {
	b, big, err := readLimited(r.Body, max)
	if big {
		return &apiErr{status: http.StatusRequestEntityTooLarge, code: CodePayloadTooLarge,
			msg: fmt.Sprintf("request body exceeds %d bytes", max)}
	}
	if err != nil {
		return badRequest(CodeInvalidRequest, "could not read request body: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badRequest(CodeInvalidRequest, "could not parse request body: %v", err)
	}
	return nil
}

type bulkPair struct {
	Key           *string         `json:"key"`
	Value         *string         `json:"value"`
	Metadata      json.RawMessage `json:"metadata"`
	Expiration    *float64        `json:"expiration"`
	ExpirationTTL *float64        `json:"expiration_ttl"`
	Base64        bool            `json:"base64"`
}

type bulkResult struct {
	SuccessfulKeyCount int      `json:"successful_key_count"`
	UnsuccessfulKeys   []string `json:"unsuccessful_keys"`
}

func (e *Emulator) bulkWrite(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	var pairs []bulkPair
	if aerr := readJSON(r, MaxBulkBodyBytes, &pairs); aerr != nil {
		return aerr
	}
	if len(pairs) > MaxBulkPairs {
		return badRequest(CodeTooManyBulkKeys, "too many key-value pairs in bulk request: %d > %d", len(pairs), MaxBulkPairs)
	}
	now := e.now()
	type write struct {
		key string
		v   version
	}
	writes := make([]write, 0, len(pairs))
	for i, p := range pairs {
		if p.Key == nil {
			return badRequest(CodeIllegalKey, "pair %d has no key", i)
		}
		if aerr := checkKey(*p.Key, http.StatusBadRequest); aerr != nil {
			return aerr
		}
		if p.Value == nil {
			return badRequest(CodeMalformedValue, "malformed value: pair %q has no value", *p.Key)
		}
		value := []byte(*p.Value)
		if p.Base64 {
			b, err := base64.StdEncoding.DecodeString(*p.Value)
			if err != nil {
				return badRequest(CodeMalformedValue, "malformed value: pair %q is not valid base64", *p.Key)
			}
			value = b
		}
		if len(value) > MaxValueBytes {
			return valueTooLarge(len(value))
		}
		meta, aerr := normalizeMetadata(p.Metadata)
		if aerr != nil {
			return aerr
		}
		expiresAt, aerr := expiration(p.Expiration, p.ExpirationTTL, now)
		if aerr != nil {
			return aerr
		}
		writes = append(writes, write{*p.Key, version{value: value, meta: meta, expiration: expiresAt}})
	}

	e.mu.Lock()
	a, ns, aerr := e.lookup(rt, "bulk put")
	if aerr == nil {
		now := e.now()
		if aerr = e.charge(a, kindWrite, int64(len(writes)), now); aerr == nil {
			for _, wr := range writes {
				wr.v.at = now
				ns.put(wr.key, wr.v, e.cutoff(now))
			}
		}
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	writeResult(w, bulkResult{SuccessfulKeyCount: len(writes), UnsuccessfulKeys: []string{}}, nil)
	return nil
}

func (e *Emulator) bulkDelete(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	var keys []string
	if aerr := readJSON(r, MaxBulkBodyBytes, &keys); aerr != nil {
		return aerr
	}
	if len(keys) > MaxBulkPairs {
		return badRequest(CodeTooManyBulkKeys, "too many keys in bulk delete: %d > %d", len(keys), MaxBulkPairs)
	}
	for _, k := range keys {
		if aerr := checkKey(k, http.StatusBadRequest); aerr != nil {
			return aerr
		}
	}
	e.mu.Lock()
	a, ns, aerr := e.lookup(rt, "bulk delete")
	if aerr == nil {
		now := e.now()
		if aerr = e.charge(a, kindDelete, int64(len(keys)), now); aerr == nil {
			for _, k := range keys {
				ns.put(k, version{at: now, deleted: true}, e.cutoff(now))
			}
		}
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	writeResult(w, bulkResult{SuccessfulKeyCount: len(keys), UnsuccessfulKeys: []string{}}, nil)
	return nil
}

type bulkGetValue struct {
	Value      any             `json:"value"`
	Metadata   json.RawMessage `json:"metadata"`
	Expiration int64           `json:"expiration,omitempty"`
}

func (e *Emulator) bulkGet(w http.ResponseWriter, r *http.Request, rt route) *apiErr {
	var req struct {
		Keys         []string `json:"keys"`
		Type         string   `json:"type"`
		WithMetadata bool     `json:"withMetadata"`
	}
	if aerr := readJSON(r, 1<<20, &req); aerr != nil {
		return aerr
	}
	if len(req.Keys) == 0 {
		return badRequest(CodeInvalidRequest, "keys: at least one key is required")
	}
	if len(req.Keys) > MaxBulkGetKeys {
		return badRequest(CodeTooManyBulkKeys, "too many keys in bulk get: %d > %d", len(req.Keys), MaxBulkGetKeys)
	}
	if req.Type != "" && req.Type != "text" && req.Type != "json" {
		return badRequest(CodeInvalidRequest, "type: must be \"text\" or \"json\"")
	}
	for _, k := range req.Keys {
		if aerr := checkKey(k, http.StatusBadRequest); aerr != nil {
			return aerr
		}
	}

	values := make(map[string]any, len(req.Keys))
	e.mu.Lock()
	a, ns, aerr := e.lookup(rt, "bulk get")
	if aerr == nil {
		now := e.now()
		for _, k := range req.Keys {
			v, ok := ns.get(k, e.cutoff(now), now)
			if !ok {
				values[k] = nil
				continue
			}
			var val any = string(v.value)
			if req.Type == "json" {
				if !json.Valid(v.value) {
					aerr = badRequest(CodeMalformedValue, "malformed value: the value of %q is not JSON", k)
					break
				}
				val = json.RawMessage(v.value)
			}
			if req.WithMetadata {
				meta := v.meta
				if meta == nil {
					meta = json.RawMessage("null")
				}
				values[k] = bulkGetValue{Value: val, Metadata: meta, Expiration: v.expiration}
			} else {
				values[k] = val
			}
		}
		if aerr == nil {
			aerr = e.charge(a, kindRead, int64(len(req.Keys)), now)
		}
	}
	e.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	writeResult(w, map[string]any{"values": values}, nil)
	return nil
}
