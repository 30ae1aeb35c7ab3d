package parse_test

import (
	"testing"
	"time"

	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/mail/parse"
)

// BenchmarkParse parses the benchmark's generated support mail (imaptest.Generator, as in
// docs/BENCHMARKS.md): ~3 kB and ~1 MB emails.
func BenchmarkParse(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"3kB", 3300}, {"1MB", 1 << 20}} {
		b.Run(size.name, func(b *testing.B) {
			g := imaptest.NewGenerator(7, []string{"info@bakkerijdevries.nl", "kassa@slagerijjansen.nl"})
			mails := make([][]byte, 64)
			var total int
			for i := range mails {
				mails[i] = g.Next(size.bytes)
				total += len(mails[i])
			}
			b.SetBytes(int64(total / len(mails)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				parse.Parse(mails[i%len(mails)], time.Time{})
				i++
			}
		})
	}
}
