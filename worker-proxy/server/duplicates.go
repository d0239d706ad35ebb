package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/store"
)

// duplicateAnswer is the 409 of an add the store refused because another
// key already holds the secret. It names keys and positions, never the
// secret.
type duplicateAnswer struct {
	Error string `json:"error"`
	// Index is the refused entry's position in the request's apiKeys
	// (bulk adds only).
	Index *int `json:"index,omitempty"`
	// KeyID is the key that already holds the secret.
	KeyID string `json:"keyId"`
}

// storeDuplicate answers 409 if err is the store's refusal of a second
// copy of a secret and reports whether it did. results, for a bulk add,
// maps the store's key ids back to request positions.
func storeDuplicate(w http.ResponseWriter, err error, results []adminapi.BulkResult) bool {
	var de *store.DuplicateError
	if !errors.As(err, &de) {
		return false
	}
	index := func(id string) (int, bool) {
		for _, r := range results {
			if r.Status == adminapi.BulkAdded && r.KeyID == id {
				return r.Index, true
			}
		}
		return 0, false
	}
	ans := duplicateAnswer{Error: "This API key is already stored under another key id; nothing was changed", KeyID: de.ExistingID}
	if i, ok := index(de.ID); ok {
		ans.Index = &i
		ans.Error = fmt.Sprintf("apiKeys[%d] is already stored as key %s; nothing was changed", i, de.ExistingID)
		if j, ok := index(de.ExistingID); ok {
			ans.Error = fmt.Sprintf("apiKeys[%d] is the same API key as apiKeys[%d]; nothing was changed", i, j)
		}
	}
	writeJSON(w, http.StatusConflict, ans)
	return true
}

// duplicateText describes the store's refusal of a second copy of a
// secret, by key id; ok is false for other errors.
func duplicateText(err error) (string, bool) {
	var de *store.DuplicateError
	if !errors.As(err, &de) {
		return "", false
	}
	return fmt.Sprintf("an API key is already stored as key %s", de.ExistingID), true
}
