// Package residency keeps the bbolt files' memory maps out of the
// process's resident memory: bbolt reads through a read-only mapping of
// its file, and every page a transaction touched stays resident (counted
// in RSS) until the kernel needs the memory. Release drops them after a
// transaction; the page cache keeps the data, so the next read is cheap.
package residency

import bolt "go.etcd.io/bbolt"

// Release drops the resident pages of db's mapping. It runs in a read
// transaction, which holds bbolt's map lock, so the mapping cannot move
// meanwhile.
func Release(db *bolt.DB) {
	_ = db.View(func(tx *bolt.Tx) error {
		DropPages(db.Info().Data, int(tx.Size()))
		return nil
	})
}
