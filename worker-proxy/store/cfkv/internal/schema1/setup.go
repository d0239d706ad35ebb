package schema1

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/kv"
	"github.com/cloudflare/cloudflare-go/v6/option"
)

// PermissionHint names the token permission the store needs.
const PermissionHint = "Account → Workers KV Storage → Edit"

// EnsureNamespace finds the account's KV namespace titled title, or
// creates it, and returns its id. It is what `worker-proxy kv-setup` and
// the deploy scripts run; safe to repeat.
func EnsureNamespace(ctx context.Context, baseURL, accountID, token, title string) (id string, created bool, err error) {
	ns, err := namespaces(baseURL, accountID, token, title)
	if err != nil {
		return "", false, err
	}
	if id, found, err := findNamespace(ctx, ns, accountID, title); err != nil || found {
		return id, false, err
	}
	var params kv.NamespaceNewParams
	params.AccountID.Value, params.AccountID.Present = accountID, true
	params.Title.Value, params.Title.Present = title, true
	n, err := ns.New(ctx, params)
	if err != nil {
		return "", false, explain("create namespace", err)
	}
	return n.ID, true, nil
}

// FindNamespace returns the id of the account's KV namespace titled title;
// found is false if there is none. It only reads (a deploy's dry run).
func FindNamespace(ctx context.Context, baseURL, accountID, token, title string) (id string, found bool, err error) {
	ns, err := namespaces(baseURL, accountID, token, title)
	if err != nil {
		return "", false, err
	}
	return findNamespace(ctx, ns, accountID, title)
}

func namespaces(baseURL, accountID, token, title string) (*kv.NamespaceService, error) {
	if accountID == "" || token == "" || title == "" {
		return nil, errors.New("an account id, an API token and a namespace title are required")
	}
	base := strings.TrimRight(baseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	return kv.NewNamespaceService(option.WithBaseURL(base+"/client/v4/"), option.WithAPIToken(token),
		option.WithMaxRetries(1), option.WithRequestTimeout(30*time.Second)), nil
}

func findNamespace(ctx context.Context, ns *kv.NamespaceService, accountID, title string) (string, bool, error) {
	for page := 1; ; page++ {
		var params kv.NamespaceListParams
		params.AccountID.Value, params.AccountID.Present = accountID, true
		params.Page.Value, params.Page.Present = float64(page), true
		params.PerPage.Value, params.PerPage.Present = 100, true
		res, err := ns.List(ctx, params)
		if err != nil {
			return "", false, explain("list namespaces", err)
		}
		var raw struct {
			Result []struct {
				ID    string `json:"id"`
				Title string `json:"title"`
			} `json:"result"`
		}
		json.Unmarshal([]byte(res.JSON.RawJSON()), &raw)
		for _, n := range raw.Result {
			if n.Title == title {
				return n.ID, true, nil
			}
		}
		if len(raw.Result) < 100 {
			return "", false, nil
		}
	}
}

// explain turns an API failure into a message an operator can act on.
func explain(op string, err error) error {
	var apiErr *kv.Error
	if errors.As(err, &apiErr) {
		switch apiErr.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%s: Cloudflare rejected the API token (401): check CF_API_TOKEN", op)
		case http.StatusForbidden:
			return fmt.Errorf("%s: the API token is not allowed to use Workers KV for this account (403): give it the permission %s, and check CF_ACCOUNT_ID", op, PermissionHint)
		}
		if len(apiErr.Errors) > 0 {
			return fmt.Errorf("%s: Cloudflare answered %d: %s (code %d)", op, apiErr.StatusCode, apiErr.Errors[0].Message, apiErr.Errors[0].Code)
		}
		return fmt.Errorf("%s: Cloudflare answered %d", op, apiErr.StatusCode)
	}
	return fmt.Errorf("%s: %s", op, transportMessage(err))
}
