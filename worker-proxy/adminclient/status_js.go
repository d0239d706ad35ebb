//go:build js && wasm

package adminclient

import (
	"encoding/json"
	"fmt"
	"sync"
	"syscall/js"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

var (
	flattenOnce sync.Once
	flattenFn   js.Value
)

// decodeStatus decodes a status answer through the browser's JSON.parse,
// falling back to encoding/json if anything is unexpected.
func decodeStatus(body []byte, out *adminapi.StatusResponse) (err error) {
	flattenOnce.Do(func() { flattenFn = js.Global().Get("Function").New("text", statusFlattenJS) })
	var flat string
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		flat = flattenFn.Invoke(string(body)).String()
	}()
	if err == nil {
		var st adminapi.StatusResponse
		if err = parseFlat(flat, &st); err == nil {
			*out = st
			return nil
		}
	}
	return json.Unmarshal(body, out)
}
