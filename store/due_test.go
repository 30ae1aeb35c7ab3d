package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestDueQueue: the SLA-due queue lists the tickets awaiting their first response, earliest
// deadline first; an answered or closed ticket leaves it, a reopened unanswered one returns.
func TestDueQueue(t *testing.T) {
	db := newDB(t)
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	ids := map[string]uint64{}
	err := db.Update(context.Background(), func(tx *Tx) error {
		for i, name := range []string{"c", "a", "b", "none"} {
			tk := &Ticket{CustomerID: 1, Subject: name, Status: StatusOpen, Created: t0}
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
	update := func(name string, f func(*Ticket)) {
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
	update("a", func(tk *Ticket) { tk.Status, tk.FirstResponse = StatusAnswered, t0 })
	update("b", func(tk *Ticket) { tk.Status = StatusClosed })
	if got := queue(); got != "c" {
		t.Errorf("after answering a and closing b: DueQueue = %q, want c", got)
	}
	update("b", func(tk *Ticket) { tk.Status = StatusOpen })
	if got := queue(); got != "bc" {
		t.Errorf("after reopening b: DueQueue = %q, want bc", got)
	}
}

// BenchmarkStoreScale: a store of 100,000 tickets with 1,000,000 messages, generated through
// the store API; a customer's ticket list and the SLA-due queue must answer in well under a
// millisecond whatever the total (compare with the 10,000-ticket store).
func BenchmarkStoreScale(b *testing.B) {
	for _, size := range []struct{ tickets, perTicket int }{{10_000, 10}, {100_000, 10}} {
		b.Run(fmt.Sprintf("tickets=%d/messages=%d", size.tickets, size.tickets*size.perTicket), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "scale.db")
			db, err := Open(path, Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			const customers = 10_000
			t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
			start := time.Now()
			err = db.Update(context.Background(), func(tx *Tx) error {
				for c := range customers {
					if err := tx.PutCustomer(&Customer{Name: fmt.Sprint("klant ", c), Emails: []string{fmt.Sprintf("k%d@winkel.nl", c)}, Tier: SLA8}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			const perTx = 2_000
			for first := 0; first < size.tickets; first += perTx {
				err := db.Update(context.Background(), func(tx *Tx) error {
					for i := first; i < min(first+perTx, size.tickets); i++ {
						tk := &Ticket{CustomerID: uint64(i%customers + 1), Subject: fmt.Sprint("Vraag ", i), Status: StatusOpen,
							Created: t0.Add(time.Duration(i) * time.Minute), Due: t0.Add(time.Duration(i)*time.Minute + 8*time.Hour)}
						if i%3 == 0 {
							tk.FirstResponse, tk.Status = tk.Created.Add(time.Hour), StatusAnswered
						}
						if err := tx.CreateTicket(tk); err != nil {
							return err
						}
						for m := range size.perTicket {
							msg := &Message{Direction: DirectionIn, From: "k@winkel.nl", Date: tk.Created, Subject: tk.Subject,
								MessageID: fmt.Sprintf("m%d.%d@winkel.nl", i, m), Text: "Goedemorgen, de kassa doet het niet. Kunt u helpen?"}
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
			fi, _ := db.Size()
			b.Logf("generated %d tickets, %d messages in %v; file %d MB", size.tickets, size.tickets*size.perTicket, time.Since(start).Round(time.Second), fi>>20)

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
			b.ReportMetric(float64(listNs.Microseconds())/float64(b.N), "µs/customer-list")
			b.ReportMetric(float64(dueNs.Microseconds())/float64(b.N), "µs/due-queue")
			fmt.Printf("| store %d tickets / %d messages | customer's ticket list %.0f µs | SLA-due queue (20) %.0f µs | file %d MB |\n",
				size.tickets, size.tickets*size.perTicket, float64(listNs.Microseconds())/float64(b.N), float64(dueNs.Microseconds())/float64(b.N), fi>>20)
		})
	}
}
