package search

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/store"
)

// The words of the generated threads: a helpdesk's Dutch, some English, product names.
var (
	benchNouns = strings.Fields(`kassa kassa's bonprinter bonprinters printer printers pinautomaat pinautomaten
		weegschaal weegschalen lade kassalade scanner scanners barcode barcodes bon bonnen bonrol factuur facturen
		licentie licenties update updates artikel artikelen prijs prijzen btw korting kortingen klantenkaart
		voorraad levering leveringen netwerk router wifi kabel stroom scherm schermen touchscreen toetsenbord
		backup database rapport rapporten dagafsluiting omzet kasboek administratie boekhouding export
		receipt printer drawer scanner invoice license update screen keyboard network backup report`)
	benchVerbs = strings.Fields(`start print weigert geeft toont blijft loopt hangt werkt valt telt leest
		stopt doet opent sluit rekent berekent synchroniseert verstuurt ontvangt crashes fails prints shows stops`)
	benchFill = strings.Fields(`de het een niet geen meer sinds vanochtend gisteren vandaag na de update
		bij het opstarten tijdens de dagafsluiting op de tweede kassa in de winkel graag snel hulp alstublieft
		helaas opnieuw steeds soms altijd nooit echter ook nog even please since the update again`)
)

func benchSentence(rng *rand.Rand) string {
	var b strings.Builder
	b.WriteString(benchFill[rng.IntN(len(benchFill))])
	for range 4 + rng.IntN(8) {
		b.WriteByte(' ')
		switch rng.IntN(4) {
		case 0:
			b.WriteString(benchNouns[rng.IntN(len(benchNouns))])
		case 1:
			b.WriteString(benchVerbs[rng.IntN(len(benchVerbs))])
		case 2:
			fmt.Fprintf(&b, "%d", rng.IntN(1_000_000))
		default:
			b.WriteString(benchFill[rng.IntN(len(benchFill))])
		}
	}
	b.WriteString(".")
	return b.String()
}

// scaleDB generates tickets × perTicket thread messages (a few sentences each, ~350 bytes,
// a raw email of ~1 kB beside each) through the store API, for 10,000 customers.
func scaleDB(b *testing.B, path string, tickets, perTicket int) *store.DB {
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(16, uint64(tickets)))
	start := time.Date(2024, 1, 1, 9, 0, 0, 0, helpdesk.Amsterdam())
	const customers = 10_000
	const perTx = 500
	for first := 0; first < tickets; first += perTx {
		if err := db.Update(context.Background(), func(tx *store.Tx) error {
			for i := first; i < min(first+perTx, tickets); i++ {
				cust := uint64(i%customers + 1)
				if first == 0 && i < customers {
					if err := tx.PutCustomer(&helpdesk.Customer{Name: fmt.Sprintf("Winkel %d", i), Emails: []string{fmt.Sprintf("k%d@winkel.nl", i)}}); err != nil {
						return err
					}
				}
				created := start.Add(time.Duration(i) * 7 * time.Minute)
				status := []string{helpdesk.StatusClosed, helpdesk.StatusClosed, helpdesk.StatusAnswered, helpdesk.StatusOpen}[rng.IntN(4)]
				t := &helpdesk.Ticket{CustomerID: cust, Subject: benchNouns[rng.IntN(len(benchNouns))] + " " + benchVerbs[rng.IntN(len(benchVerbs))] + " niet",
					Status: status, Priority: helpdesk.PriorityNormal, Tier: helpdesk.SLA8, Created: created, Due: created.Add(8 * time.Hour)}
				if err := tx.CreateTicket(t); err != nil {
					return err
				}
				for j := range perTicket {
					var text strings.Builder
					for range 3 + rng.IntN(3) {
						text.WriteString(benchSentence(rng))
						text.WriteString("\n")
					}
					dir := helpdesk.DirectionIn
					if j%2 == 1 {
						dir = helpdesk.DirectionOut
					}
					raw := fmt.Sprintf("From: k%d@winkel.nl\r\nTo: support@infobits.example\r\nSubject: %s\r\nMessage-ID: <%d.%d@winkel.nl>\r\nReceived: from mx.winkel.nl by mx.infobits.example; %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
						cust-1, t.Subject, i, j, created.Format(time.RFC1123Z), strings.ReplaceAll(text.String(), "\n", "\r\n"))
					h, err := tx.PutRaw([]byte(raw))
					if err != nil {
						return err
					}
					m := &helpdesk.Message{Direction: dir, Text: text.String(), Date: created.Add(time.Duration(j) * time.Hour), RawSHA256: h,
						Subject: t.Subject, MessageID: fmt.Sprintf("%d.%d@winkel.nl", i, j)}
					if j == 0 && rng.IntN(10) == 0 {
						m.Attachment = []helpdesk.Attachment{{Filename: fmt.Sprintf("%s-%d.pdf", benchNouns[rng.IntN(len(benchNouns))], rng.IntN(1000)), ContentType: "application/pdf"}}
					}
					if err := tx.AddMessage(t, m); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// BenchmarkSearchScale measures `ticket search` (Find: the index query, then the tickets and
// their matching lines read from the store) at 10,000 tickets / 100,000 messages and 100,000
// tickets / 1,000,000 messages, and the index's size against the store's. The store and the
// index are made once per size (minutes at the larger one); the timed part is b.N queries from
// a fixed list, round robin. Run by `bash .ci/bench search`.
func BenchmarkSearchScale(b *testing.B) {
	queries := []Query{
		{Text: "kassa"}, {Text: "kassa's"}, {Text: "bonprinters"}, {Text: "pinautomaat weigert"},
		{Text: "factuur", Status: helpdesk.StatusOpen}, {Text: "printer", CustomerID: 42},
		{Text: "412345"}, {Text: "dagafsluiting omzet update"}, {Text: "receipt printer"},
		{Text: "scanner", Since: time.Date(2025, 6, 1, 0, 0, 0, 0, helpdesk.Amsterdam())},
	}
	for _, size := range []struct{ tickets, perTicket int }{{10_000, 10}, {100_000, 10}} {
		var db *store.DB
		var x *Index
		var buildTime time.Duration
		dir := b.TempDir()
		b.Cleanup(func() {
			if x != nil {
				x.Close()
			}
			if db != nil {
				db.Close()
			}
		})
		b.Run(fmt.Sprintf("tickets=%d/messages=%d", size.tickets, size.tickets*size.perTicket), func(b *testing.B) {
			if db == nil {
				db = scaleDB(b, filepath.Join(dir, "scale.db"), size.tickets, size.perTicket)
				var err error
				if x, err = Open(Path(db.Path()), db, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				n, err := x.CatchUp(context.Background())
				if err != nil || n != size.tickets {
					b.Fatalf("CatchUp = %d, %v", n, err)
				}
				buildTime = time.Since(t0)
			}
			lat := make([]time.Duration, 0, b.N)
			hits := 0
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				found, _, err := x.Find(context.Background(), queries[i%len(queries)])
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				hits += len(found)
			}
			b.StopTimer()
			if hits == 0 {
				b.Fatal("no query found anything")
			}
			slices.Sort(lat)
			p50, p90 := lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*9/10)]
			idx, _ := x.Size()
			dbSize, _ := db.Size()
			b.ReportMetric(float64(p50.Microseconds())/1e3, "ms/p50")
			b.ReportMetric(float64(p90.Microseconds())/1e3, "ms/p90")
			b.ReportMetric(float64(idx)/float64(dbSize), "index/db")
			if b.N == 1 {
				return // the testing package's first, one-iteration call: no row
			}
			fmt.Printf("| %d tickets / %d messages | %.1f ms | %.1f ms | %d MB | %d MB | %.2f× | %s |\n",
				size.tickets, size.tickets*size.perTicket, float64(p50.Microseconds())/1e3, float64(p90.Microseconds())/1e3,
				idx/1e6, dbSize/1e6, float64(idx)/float64(dbSize), buildTime.Round(time.Second))
		})
	}
}
