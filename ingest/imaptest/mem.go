package imaptest

import (
	"testing"

	"github.com/infobits/helpdesk/ingest/imapmem"
)

// NewMem starts a server for a test and stops it when the test ends.
func NewMem(tb testing.TB, opts imapmem.Options) *imapmem.Server {
	tb.Helper()
	m, err := imapmem.Start(opts)
	if err != nil {
		tb.Fatalf("start in-process IMAP server: %v", err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}
