package kvemu

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

type op int

const (
	opListNamespaces op = iota
	opCreateNamespace
	opGetNamespace
	opRenameNamespace
	opDeleteNamespace
	opListKeys
	opReadValue
	opReadMetadata
	opWriteValue
	opDeleteValue
	opBulkWrite
	opBulkDelete
	opBulkDeleteLegacy
	opBulkGet
)

func (o op) writes() bool {
	switch o {
	case opCreateNamespace, opRenameNamespace, opDeleteNamespace,
		opWriteValue, opDeleteValue, opBulkWrite, opBulkDelete, opBulkDeleteLegacy:
		return true
	}
	return false
}

// route is a parsed request path.
type route struct {
	op        op
	account   string
	namespace string // "" for the namespace collection
	key       string // decoded key name for values/ and metadata/
}

const (
	apiPrefix = "/client/v4/accounts/"
	nsPrefix  = "storage/kv/namespaces"
)

// parseRoute splits the escaped path, so a key name may carry percent-encoded
// slashes, question marks or percent signs; an unescaped slash inside a key
// (the SDK does not escape key names) is kept as part of the key.
func parseRoute(r *http.Request) (route, *apiErr) {
	path := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(path, apiPrefix)
	if !ok {
		return route{}, noRoute(path)
	}
	accEsc, rest, _ := strings.Cut(rest, "/")
	acc, err := url.PathUnescape(accEsc)
	if err != nil || acc == "" {
		return route{}, noRoute(path)
	}
	rest, ok = strings.CutPrefix(rest, nsPrefix)
	if !ok {
		return route{}, noRoute(path)
	}
	rt := route{account: acc}
	m := r.Method

	if rest == "" || rest == "/" {
		switch m {
		case http.MethodGet:
			rt.op = opListNamespaces
		case http.MethodPost:
			rt.op = opCreateNamespace
		default:
			return route{}, notAllowed(m, path)
		}
		return rt, nil
	}
	rest, ok = strings.CutPrefix(rest, "/")
	if !ok {
		return route{}, noRoute(path)
	}
	nsEsc, sub, _ := strings.Cut(rest, "/")
	ns, err := url.PathUnescape(nsEsc)
	if err != nil || ns == "" {
		return route{}, noRoute(path)
	}
	rt.namespace = ns

	// methods maps each allowed method of the sub-route to its operation.
	var methods map[string]op
	switch {
	case sub == "":
		methods = map[string]op{http.MethodGet: opGetNamespace, http.MethodPut: opRenameNamespace, http.MethodDelete: opDeleteNamespace}
	case sub == "keys" || sub == "keys/":
		methods = map[string]op{http.MethodGet: opListKeys}
	case sub == "bulk" || sub == "bulk/":
		methods = map[string]op{http.MethodPut: opBulkWrite, http.MethodDelete: opBulkDeleteLegacy}
	case sub == "bulk/delete" || sub == "bulk/delete/":
		methods = map[string]op{http.MethodPost: opBulkDelete}
	case sub == "bulk/get" || sub == "bulk/get/":
		methods = map[string]op{http.MethodPost: opBulkGet}
	case strings.HasPrefix(sub, "values/"), strings.HasPrefix(sub, "metadata/"):
		kind, keyEsc, _ := strings.Cut(sub, "/")
		if keyEsc == "" {
			return route{}, noRoute(path)
		}
		key, err := url.PathUnescape(keyEsc)
		if err != nil {
			return route{}, &apiErr{status: http.StatusBadRequest, code: CodeIllegalKey,
				msg: fmt.Sprintf("illegal key name %q: not percent-decodable", keyEsc)}
		}
		rt.key = key
		if kind == "values" {
			methods = map[string]op{http.MethodGet: opReadValue, http.MethodPut: opWriteValue, http.MethodDelete: opDeleteValue}
		} else {
			methods = map[string]op{http.MethodGet: opReadMetadata}
		}
	default:
		return route{}, noRoute(path)
	}
	o, ok := methods[m]
	if !ok {
		return route{}, notAllowed(m, path)
	}
	rt.op = o
	return rt, nil
}

func noRoute(path string) *apiErr {
	return &apiErr{status: http.StatusNotFound, code: CodeNoRoute,
		msg:   fmt.Sprintf("Could not route to %s, perhaps your object identifier is invalid?", strings.TrimPrefix(path, "/client/v4")),
		extra: []apiMessage{{Code: 7000, Message: "No route for that URI"}}}
}

func notAllowed(method, path string) *apiErr {
	return &apiErr{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
		msg: fmt.Sprintf("Method %s not allowed for %s", method, strings.TrimPrefix(path, "/client/v4"))}
}
