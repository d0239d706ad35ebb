package adminclient

import "errors"

var errCORS = errors.New("the answer carries no Access-Control-Allow-Origin for this origin")
