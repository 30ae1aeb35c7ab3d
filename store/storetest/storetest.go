// Package storetest opens throw-away databases for tests. It is for tests only: it imports
// testing, and nothing the binary links may import it.
package storetest

import (
	"path/filepath"
	"testing"

	"github.com/infobits/helpdesk/store"
)

// New opens a fresh database in tb's temporary folder (without fsync: a test's file does not
// need to survive a power cut). At cleanup it checks the file (bbolt's page check) and closes
// it; a database a test left inconsistent fails the test.
func New(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(filepath.Join(tb.TempDir(), "helpdesk.db"), store.Options{NoSync: true})
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Check(); err != nil {
			tb.Errorf("database check: %v", err)
		}
		if err := db.Close(); err != nil {
			tb.Errorf("database close: %v", err)
		}
	})
	return db
}
