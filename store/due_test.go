package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
)

// TestDueQueue: the SLA-due queue lists the tickets awaiting their first response, earliest
// deadline first; an answered or closed ticket leaves it, a reopened unanswered one returns.
func TestDueQueue(t *testing.T) {
	db := newDB(t)
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	ids := map[string]uint64{}
	err := db.Update(context.Background(), func(tx *Tx) error {
		for i, name := range []string{"c", "a", "b", "none"} {
			tk := &helpdesk.Ticket{CustomerID: 1, Subject: name, Status: helpdesk.StatusOpen, Created: t0}
			if name != "none" {
				tk.Due = t0.Add(time.Duration(map[string]int{"a": 1, "b": 2, "c": 3}[name]) * time.Hour)
			}
			if err := tx.CreateTicket(tk); err != nil {
				return err
			}
			ids[name] = tk.ID
			_ = i
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	queue := func() string {
		var s string
		db.View(context.Background(), func(tx *Tx) error {
			ts, err := tx.DueQueue(10)
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range ts {
				s += tk.Subject
			}
			return nil
		})
		return s
	}
	if got := queue(); got != "abc" {
		t.Fatalf("DueQueue = %q, want abc (by deadline; no deadline not queued)", got)
	}
	update := func(name string, f func(*helpdesk.Ticket)) {
		if err := db.Update(context.Background(), func(tx *Tx) error {
			tk, err := tx.Ticket(ids[name])
			if err != nil {
				return err
			}
			f(tk)
			return tx.PutTicket(tk)
		}); err != nil {
			t.Fatal(err)
		}
	}
	update("a", func(tk *helpdesk.Ticket) { tk.Status, tk.FirstResponse = helpdesk.StatusAnswered, t0 })
	update("b", func(tk *helpdesk.Ticket) { tk.Status = helpdesk.StatusClosed })
	if got := queue(); got != "c" {
		t.Errorf("after answering a and closing b: DueQueue = %q, want c", got)
	}
	update("b", func(tk *helpdesk.Ticket) { tk.Status = helpdesk.StatusOpen })
	if got := queue(); got != "bc" {
		t.Errorf("after reopening b: DueQueue = %q, want bc", got)
	}
}

// BenchmarkStoreScale: a store of 100,000 tickets with 1,000,000 messages, generated through
// the store API; a customer's ticket list and the SLA-due queue must answer in well under a
// millisecond whatever the total (compare with the 10,000-ticket store).
func BenchmarkStoreScale(b *testing.B) {
	const customers = 10_000
	for _, size := range []struct{ tickets, perTicket int }{{10_000, 10}, {100_000, 10}} {
		// The store is made once per size: the testing package calls the function below with
		// b.N = 1 before the real run, and generating a million messages takes minutes.
		var db *DB
		var fi, rawBytes int64
		dir := b.TempDir()
		b.Cleanup(func() {
			if db != nil {
				db.Close()
			}
		})
		b.Run(fmt.Sprintf("tickets=%d/messages=%d", size.tickets, size.tickets*size.perTicket), func(b *testing.B) {
			if db == nil {
				db, fi, rawBytes = scaleStore(b, filepath.Join(dir, "scale.db"), customers, size.tickets, size.perTicket)
			}
			var listNs, dueNs time.Duration
			b.ResetTimer()
			for i := range b.N {
				t1 := time.Now()
				err := db.View(context.Background(), func(tx *Tx) error {
					c, err := tx.CustomerByAddress(fmt.Sprintf("k%d@winkel.nl", i%customers))
					if err != nil {
						return err
					}
					ts, err := tx.CustomerTickets(c.ID)
					if len(ts) != size.tickets/customers {
						return fmt.Errorf("customer tickets = %d", len(ts))
					}
					return err
				})
				listNs += time.Since(t1)
				if err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				err = db.View(context.Background(), func(tx *Tx) error {
					ts, err := tx.DueQueue(20)
					if len(ts) != 20 {
						return fmt.Errorf("due queue = %d", len(ts))
					}
					return err
				})
				dueNs += time.Since(t2)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(listNs.Nanoseconds())/1e3/float64(b.N), "µs/customer-list")
			b.ReportMetric(float64(dueNs.Nanoseconds())/1e3/float64(b.N), "µs/due-queue")
			b.ReportMetric(float64(fi)/float64(rawBytes), "db/raw")
			fmt.Printf("| %d tickets / %d messages | %.1f µs | %.1f µs | %d MB | %d MB | %.2f× |\n",
				size.tickets, size.tickets*size.perTicket, float64(listNs.Nanoseconds())/1e3/float64(b.N), float64(dueNs.Nanoseconds())/1e3/float64(b.N),
				rawBytes/1e6, fi/1e6, float64(fi)/float64(rawBytes))
		})
	}
}

// scaleStore generates the store of BenchmarkStoreScale through the store API: customers,
// tickets (a third answered), perTicket messages each with its raw email.
func scaleStore(b *testing.B, path string, customers, tickets, perTicket int) (db *DB, fi, rawBytes int64) {
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	start := time.Now()
	err = db.Update(context.Background(), func(tx *Tx) error {
		for c := range customers {
			if err := tx.PutCustomer(&helpdesk.Customer{Name: fmt.Sprint("klant ", c), Emails: []string{fmt.Sprintf("k%d@winkel.nl", c)}, Tier: helpdesk.SLA8}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	const perTx = 2_000
	rng := rand.New(rand.NewPCG(uint64(tickets), 1))
	for first := 0; first < tickets; first += perTx {
		err := db.Update(context.Background(), func(tx *Tx) error {
			for i := first; i < min(first+perTx, tickets); i++ {
				tk := &helpdesk.Ticket{CustomerID: uint64(i%customers + 1), Subject: fmt.Sprint("Vraag ", i), Status: helpdesk.StatusOpen,
					Created: t0.Add(time.Duration(i) * time.Minute), Due: t0.Add(time.Duration(i)*time.Minute + 8*time.Hour)}
				if i%3 == 0 {
					tk.FirstResponse, tk.Status = tk.Created.Add(time.Hour), helpdesk.StatusAnswered
				}
				if err := tx.CreateTicket(tk); err != nil {
					return err
				}
				for m := range perTicket {
					from := fmt.Sprintf("k%d@winkel.nl", i%customers)
					msgID := fmt.Sprintf("m%d.%d.%x@winkel.nl", i, m, rng.Uint64())
					raw, text := scaleMail(rng, from, msgID, tk.Subject, tk.Created)
					sum, err := tx.PutRaw(raw)
					if err != nil {
						return err
					}
					rawBytes += int64(len(raw))
					msg := &helpdesk.Message{Direction: helpdesk.DirectionIn, From: from, Date: tk.Created, Subject: tk.Subject,
						MessageID: msgID, Text: text, RawSHA256: sum, Size: int64(len(raw))}
					if err := tx.AddMessage(tk, msg); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	fi, _ = db.Size()
	b.Logf("generated %d tickets, %d messages (%d MB of raw mail) in %v; file %d MB", tickets, tickets*perTicket,
		rawBytes>>20, time.Since(start).Round(time.Second), fi>>20)

	return db, fi, rawBytes
}

var (
	scaleSentences = []string{"Goedemorgen,", "Sinds de update van vanochtend start de kassa niet meer op.",
		"De bonprinter geeft foutcode # en drukt niets af.", "Pinbetalingen van meer dan € #,# worden geweigerd.",
		"Wij hebben de kassa al # keer opnieuw opgestart.", "Bestelnummer # is wel verstuurd maar niet ontvangen.",
		"Kunt u ons vóór #:00 terugbellen op 06-#?", "Met vriendelijke groet,", "Good morning,",
		"The till shows error # after the last update.", "Card payments above € #.# are declined.",
		"Could you call us back before #:00 on +31 6 #?", "Kind regards,"}
	scaleNames = []string{"Bakkerij de Vries", "Slagerij Jansen", "Café het Hoekje", "Boekhandel Smit", "Fietsenmaker Bakker"}
)

// scaleMail makes a support email of a few kB, varied as real mail is: a Received chain, a
// DKIM signature (random bytes), numbers and names in the text, an HTML alternative in 6 of
// 10, a small photo attached in 1 of 10. It returns the email and its text.
func scaleMail(rng *rand.Rand, from, msgID, subject string, date time.Time) (raw []byte, text string) {
	var body strings.Builder
	for range 4 + rng.IntN(12) {
		for _, r := range scaleSentences[rng.IntN(len(scaleSentences))] {
			if r == '#' {
				body.WriteString(fmt.Sprint(rng.IntN(99_999)))
			} else {
				body.WriteRune(r)
			}
		}
		body.WriteString("\r\n")
	}
	body.WriteString(scaleNames[rng.IntN(len(scaleNames))] + "\r\n")
	text = body.String()
	random := func(n int) string {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return base64.StdEncoding.EncodeToString(p)
	}
	var b strings.Builder
	for hop := range 3 {
		fmt.Fprintf(&b, "Received: from mail%d.winkel.nl (mail%d.winkel.nl [192.0.2.%d]) by mx%d.infobits.example with ESMTPS id %x\r\n\tfor <support@infobits.example>; %s\r\n",
			rng.IntN(9), rng.IntN(9), rng.IntN(250), hop, rng.Uint64(), date.Add(time.Duration(-hop)*time.Second).Format(time.RFC1123Z))
	}
	fmt.Fprintf(&b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=winkel.nl; s=mail;\r\n\th=from:to:subject:date:message-id; bh=%s;\r\n\tb=%s\r\n", random(32), random(256))
	fmt.Fprintf(&b, "Authentication-Results: mx0.infobits.example; dkim=pass header.d=winkel.nl; spf=pass smtp.mailfrom=%s\r\n", from)
	fmt.Fprintf(&b, "From: %s\r\nTo: support@infobits.example\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n",
		from, subject, date.Format(time.RFC1123Z), msgID)
	boundary := fmt.Sprintf("b%x", rng.Uint64())
	attach, html := rng.IntN(10) == 0, rng.IntN(10) < 6
	if !attach && !html {
		fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s", text)
		return []byte(b.String()), text
	}
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%[1]s\r\n", boundary)
	if html {
		fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s-a\"\r\n\r\n--%[1]s-a\r\n", boundary)
	}
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", text)
	if html {
		h := strings.ReplaceAll(text, "\r\n", "</p>\r\n<p style=\"margin:0;font-family:Calibri,sans-serif;font-size:11pt\">")
		fmt.Fprintf(&b, "--%s-a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><head><meta charset=\"utf-8\"></head><body><div><p>%s</p></div></body></html>\r\n--%[1]s-a--\r\n", boundary, h)
	}
	if attach {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: image/jpeg; name=\"foto.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n", boundary, random(2048+rng.IntN(4096)))
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return []byte(b.String()), text
}
