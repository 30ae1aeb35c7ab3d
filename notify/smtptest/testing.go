// Package smtptest holds the test helpers around notify/smtpsink, the recording SMTP server:
// New starts one for a test and closes it at the test's end. It imports testing: only tests
// may import it.
package smtptest

import (
	"sync/atomic"
	"testing"

	"github.com/infobits/helpdesk/notify/smtpsink"
)

// New starts a Server with Start and registers its Close with tb.Cleanup. It
// fails the test (tb.Fatalf) if the server cannot start. Unless
// opts.ErrorLog is set, go-smtp's internal errors are logged with tb.Logf
// until the server is closed.
func New(tb testing.TB, opts smtpsink.Options) *smtpsink.Server {
	tb.Helper()
	var lg *tbLogger
	if opts.ErrorLog == nil {
		lg = &tbLogger{tb: tb}
		opts.ErrorLog = lg
	}
	s, err := smtpsink.Start(opts)
	if err != nil {
		tb.Fatalf("smtptest: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("smtptest: close: %v", err)
		}
		if lg != nil {
			lg.off.Store(true)
		}
	})
	return s
}

// tbLogger routes go-smtp's server log to tb.Logf while the server runs; it
// goes quiet once the server is closed, since logging after a test has
// finished panics.
type tbLogger struct {
	tb  testing.TB
	off atomic.Bool
}

func (l *tbLogger) Printf(format string, v ...any) {
	if !l.off.Load() {
		l.tb.Logf("smtp server: "+format, v...)
	}
}

func (l *tbLogger) Println(v ...any) {
	if !l.off.Load() {
		l.tb.Log(append([]any{"smtp server:"}, v...)...)
	}
}
