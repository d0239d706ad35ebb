package memstore

import (
	"testing"

	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open:           func(t *testing.T) store.Store { return New() },
		HonoursContext: true,
	})
}
