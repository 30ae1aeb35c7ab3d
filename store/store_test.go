package store

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/infobits/helpdesk"
)

var ctx = context.Background()

// t0 is a fixed moment; tests never read the clock.
var t0 = time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)

// openAt opens the database at path for a test and, at cleanup, runs bbolt's consistency
// check (as bbolt's btesting.MustCreateDB does) and closes it.
func openAt(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path, Options{NoSync: true, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Errorf("database check: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return db
}

// newDB opens a fresh database in t.TempDir().
func newDB(t *testing.T) *DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "helpdesk.db"))
}

func update(t *testing.T, db *DB, fn func(*Tx) error) {
	t.Helper()
	if err := db.Update(ctx, fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, db *DB, fn func(*Tx) error) {
	t.Helper()
	if err := db.View(ctx, fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func ticketIDs(ts []*helpdesk.Ticket) []uint64 {
	var ids []uint64
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids
}

func notificationIDs(ns []*helpdesk.Notification) []uint64 {
	var ids []uint64
	for _, n := range ns {
		ids = append(ids, n.ID)
	}
	return ids
}

// R1: a customer is found by any of their addresses, in any case; an address has one owner.
func TestCustomerAddressIndex(t *testing.T) {
	db := newDB(t)
	bakker := &helpdesk.Customer{Name: "Bakkerij de Vries", Emails: []string{" Info@BakkerijDeVries.NL", "piet@bakkerijdevries.nl"}, Tier: helpdesk.SLA8}
	slager := &helpdesk.Customer{Name: "Slagerij Jansen", Emails: []string{"kassa@slagerijjansen.nl"}, Tier: helpdesk.SLA24}
	update(t, db, func(tx *Tx) error {
		if err := tx.PutCustomer(bakker); err != nil {
			return err
		}
		return tx.PutCustomer(slager)
	})
	if bakker.ID != 1 || slager.ID != 2 {
		t.Fatalf("PutCustomer ids = %d, %d, want 1, 2", bakker.ID, slager.ID)
	}
	if got, want := bakker.Emails, []string{"info@bakkerijdevries.nl", "piet@bakkerijdevries.nl"}; !reflect.DeepEqual(got, want) {
		t.Errorf("PutCustomer emails = %q, want %q (normalised, login first)", got, want)
	}

	lookups := []struct {
		addr string
		want uint64 // 0: not found
	}{
		{"info@bakkerijdevries.nl", 1},
		{"INFO@BAKKERIJDEVRIES.NL", 1},
		{"  Piet@BakkerijDeVries.nl ", 1},
		{"kassa@slagerijjansen.nl", 2},
		{"Kassa@SlagerijJansen.NL", 2},
		{"nobody@example.com", 0},
		{"", 0},
	}
	view(t, db, func(tx *Tx) error {
		for _, l := range lookups {
			c, err := tx.CustomerByAddress(l.addr)
			switch {
			case l.want == 0 && !errors.Is(err, helpdesk.ErrNotFound):
				t.Errorf("CustomerByAddress(%q) = %v, %v, want ErrNotFound", l.addr, c, err)
			case l.want != 0 && (err != nil || c.ID != l.want):
				t.Errorf("CustomerByAddress(%q) = %v, %v, want customer %d", l.addr, c, err, l.want)
			}
		}
		got, err := tx.Customer(1)
		if err != nil || got.Name != "Bakkerij de Vries" || got.Tier != helpdesk.SLA8 || got.Login() != "info@bakkerijdevries.nl" {
			t.Errorf("Customer(1) = %+v, %v, want Bakkerij de Vries, SLA8, login info@", got, err)
		}
		if _, err := tx.Customer(99); !errors.Is(err, helpdesk.ErrNotFound) {
			t.Errorf("Customer(99) error = %v, want ErrNotFound", err)
		}
		all, err := tx.Customers()
		if err != nil || len(all) != 2 || all[0].ID != 1 || all[1].ID != 2 {
			t.Errorf("Customers() = %v, %v, want customers 1 and 2 in order", all, err)
		}
		return nil
	})

	// Another customer may not take an address that is in use, in any case (R1).
	taken := []struct {
		name string
		c    *helpdesk.Customer
	}{
		{"new customer, same address", &helpdesk.Customer{Name: "Copy", Emails: []string{"info@bakkerijdevries.nl"}}},
		{"new customer, address in upper case", &helpdesk.Customer{Name: "Copy", Emails: []string{"PIET@BAKKERIJDEVRIES.NL"}}},
		{"new customer, second address taken", &helpdesk.Customer{Name: "Copy", Emails: []string{"new@example.com", "kassa@slagerijjansen.nl"}}},
		{"existing customer takes another's address", &helpdesk.Customer{ID: 2, Name: "Slagerij Jansen", Emails: []string{"kassa@slagerijjansen.nl", "info@bakkerijdevries.nl"}}},
	}
	for _, tc := range taken {
		err := db.Update(ctx, func(tx *Tx) error { return tx.PutCustomer(tc.c) })
		if !errors.Is(err, ErrAddressTaken) {
			t.Errorf("%s: PutCustomer(%q) = %v, want ErrAddressTaken", tc.name, tc.c.Emails, err)
		}
	}
	view(t, db, func(tx *Tx) error {
		// Nothing of the refused writes is left behind.
		if c, err := tx.CustomerByAddress("new@example.com"); !errors.Is(err, helpdesk.ErrNotFound) {
			t.Errorf("CustomerByAddress(new@example.com) after refused PutCustomer = %v, %v, want ErrNotFound", c, err)
		}
		if cs, _ := tx.Customers(); len(cs) != 2 {
			t.Errorf("Customers() after refused PutCustomer = %d customers, want 2", len(cs))
		}
		return nil
	})

	if err := db.Update(ctx, func(tx *Tx) error { return tx.PutCustomer(&helpdesk.Customer{Name: "No mail"}) }); err == nil {
		t.Errorf("PutCustomer(no addresses) = nil, want an error")
	}

	// Saving a customer with its own addresses is fine; dropping an address frees it.
	update(t, db, func(tx *Tx) error {
		c, err := tx.Customer(1)
		if err != nil {
			return err
		}
		c.Emails = []string{"info@bakkerijdevries.nl"}
		c.Name = "Bakkerij de Vries B.V."
		return tx.PutCustomer(c)
	})
	view(t, db, func(tx *Tx) error {
		if c, err := tx.CustomerByAddress("piet@bakkerijdevries.nl"); !errors.Is(err, helpdesk.ErrNotFound) {
			t.Errorf("CustomerByAddress(piet@) after removing it = %v, %v, want ErrNotFound", c, err)
		}
		if c, err := tx.CustomerByAddress("info@bakkerijdevries.nl"); err != nil || c.Name != "Bakkerij de Vries B.V." {
			t.Errorf("CustomerByAddress(info@) = %v, %v, want the renamed customer 1", c, err)
		}
		return nil
	})
	update(t, db, func(tx *Tx) error {
		slager.Emails = append(slager.Emails, "Piet@BakkerijDeVries.nl")
		return tx.PutCustomer(slager)
	})
	view(t, db, func(tx *Tx) error {
		if c, err := tx.CustomerByAddress("piet@bakkerijdevries.nl"); err != nil || c.ID != 2 {
			t.Errorf("CustomerByAddress(piet@) after customer 2 took it = %v, %v, want customer 2", c, err)
		}
		return nil
	})
}

// Tickets are numbered 1, 2, 3 without gaps: a failed transaction gives its number back.
func TestTicketNumbering(t *testing.T) {
	db := newDB(t)
	newTicket := func(customer uint64, subject string) *helpdesk.Ticket {
		return &helpdesk.Ticket{CustomerID: customer, Address: "a@example.com", Subject: subject, Status: helpdesk.StatusOpen,
			Priority: helpdesk.PriorityNormal, Tier: helpdesk.SLA24, Created: t0}
	}
	var a, b *helpdesk.Ticket
	update(t, db, func(tx *Tx) error {
		a, b = newTicket(1, "eerste"), newTicket(2, "tweede")
		if err := tx.CreateTicket(a); err != nil {
			return err
		}
		return tx.CreateTicket(b)
	})
	if a.ID != 1 || b.ID != 2 {
		t.Fatalf("CreateTicket ids = %d, %d, want 1, 2", a.ID, b.ID)
	}

	boom := errors.New("boom")
	var rolledBack *helpdesk.Ticket
	err := db.Update(ctx, func(tx *Tx) error {
		rolledBack = newTicket(1, "teruggedraaid")
		if err := tx.CreateTicket(rolledBack); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || rolledBack.ID != 3 {
		t.Fatalf("Update(CreateTicket, fail) = %v with ticket %d, want boom with ticket 3", err, rolledBack.ID)
	}

	var c *helpdesk.Ticket
	update(t, db, func(tx *Tx) error {
		c = newTicket(1, "derde")
		return tx.CreateTicket(c)
	})
	if c.ID != 3 {
		t.Errorf("CreateTicket after a rolled-back ticket 3 = %d, want 3 (number reused)", c.ID)
	}

	view(t, db, func(tx *Tx) error {
		all, err := tx.Tickets()
		if got, want := ticketIDs(all), []uint64{1, 2, 3}; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Tickets() = %v, %v, want %v", got, err, want)
		}
		if got, err := tx.Ticket(3); err != nil || got.Subject != "derde" {
			t.Errorf("Ticket(3) = %+v, %v, want subject derde (not the rolled-back one)", got, err)
		}
		for _, tc := range []struct {
			customer uint64
			want     []uint64
		}{{1, []uint64{1, 3}}, {2, []uint64{2}}, {3, nil}} {
			ts, err := tx.CustomerTickets(tc.customer)
			if got := ticketIDs(ts); err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("CustomerTickets(%d) = %v, %v, want %v", tc.customer, got, err, tc.want)
			}
		}
		if _, err := tx.Ticket(4); !errors.Is(err, helpdesk.ErrNotFound) {
			t.Errorf("Ticket(4) error = %v, want ErrNotFound", err)
		}
		return nil
	})

	// A ticket that already has a number is not created twice; PutTicket needs an existing one.
	errs := []struct {
		name string
		fn   func(tx *Tx) error
	}{
		{"CreateTicket(with id)", func(tx *Tx) error { return tx.CreateTicket(&helpdesk.Ticket{ID: 2, CustomerID: 1}) }},
		{"PutTicket(unknown id)", func(tx *Tx) error { return tx.PutTicket(&helpdesk.Ticket{ID: 42, CustomerID: 1}) }},
	}
	for _, tc := range errs {
		if err := db.Update(ctx, tc.fn); err == nil {
			t.Errorf("%s = nil, want an error", tc.name)
		}
	}
	update(t, db, func(tx *Tx) error {
		c.Status = helpdesk.StatusClosed
		return tx.PutTicket(c)
	})
	view(t, db, func(tx *Tx) error {
		if got, err := tx.Ticket(3); err != nil || got.Status != helpdesk.StatusClosed {
			t.Errorf("Ticket(3).Status after PutTicket = %+v, %v, want closed", got, err)
		}
		return nil
	})
}

// R10: a thread's messages are numbered, and their Message-IDs find the ticket again.
func TestMessagesAndThreading(t *testing.T) {
	db := newDB(t)
	t1 := &helpdesk.Ticket{CustomerID: 1, Subject: "kassa", Status: helpdesk.StatusOpen}
	t2 := &helpdesk.Ticket{CustomerID: 2, Subject: "printer", Status: helpdesk.StatusOpen}
	longID := strings.Repeat("x", 2000) + "@example.com"
	update(t, db, func(tx *Tx) error {
		for _, tk := range []*helpdesk.Ticket{t1, t2} {
			if err := tx.CreateTicket(tk); err != nil {
				return err
			}
		}
		for i, id := range []string{"m1@example.com", "M2.Gmail@Example.COM", ""} {
			m := &helpdesk.Message{Direction: helpdesk.DirectionIn, From: "a@example.com", MessageID: id, Subject: "kassa", Text: strings.Repeat("x", i)}
			if err := tx.AddMessage(t1, m); err != nil {
				return err
			}
			if m.Seq != uint32(i+1) || m.TicketID != t1.ID {
				t.Errorf("AddMessage #%d: seq %d ticket %d, want seq %d ticket %d", i+1, m.Seq, m.TicketID, i+1, t1.ID)
			}
		}
		// Ticket 2 quotes a Message-ID that ticket 1 already claimed: the first claim wins.
		if err := tx.AddMessage(t2, &helpdesk.Message{Direction: helpdesk.DirectionIn, MessageID: "m1@example.com"}); err != nil {
			return err
		}
		if err := tx.AddMessage(t2, &helpdesk.Message{Direction: helpdesk.DirectionOut, MessageID: longID}); err != nil {
			return err
		}
		return tx.IndexMessageID("m2.GMAIL@example.com", t2.ID) // the same id in another case
	})
	if t1.Messages != 3 || t2.Messages != 2 {
		t.Errorf("ticket message counts = %d, %d, want 3, 2", t1.Messages, t2.Messages)
	}

	view(t, db, func(tx *Tx) error {
		msgs, err := tx.Messages(t1.ID)
		if err != nil || len(msgs) != 3 {
			t.Fatalf("Messages(%d) = %d messages, %v, want 3", t1.ID, len(msgs), err)
		}
		if msgs[1].MessageID != "M2.Gmail@Example.COM" {
			t.Errorf("Messages(%d)[1].MessageID = %q, want the id as written (it goes back out in headers)", t1.ID, msgs[1].MessageID)
		}
		for i, m := range msgs {
			if m.Seq != uint32(i+1) || len(m.Text) != i {
				t.Errorf("Messages(%d)[%d] = seq %d text %q, want seq %d in order", t1.ID, i, m.Seq, m.Text, i+1)
			}
		}
		if got, _ := tx.Ticket(t1.ID); got.Messages != 3 {
			t.Errorf("Ticket(%d).Messages = %d, want 3 (AddMessage stores the count)", t1.ID, got.Messages)
		}
		for _, tc := range []struct {
			id   string
			want uint64 // 0: ErrNotFound
		}{
			{"m1@example.com", t1.ID},
			{"M1@EXAMPLE.COM", t1.ID}, // a client changed the case of the id it quotes
			{"m2.gmail@example.com", t1.ID},
			{"M2.Gmail@Example.COM", t1.ID},
			{" <m2.GMAIL@example.com> ", t1.ID},
			{"", 0},
			{"unknown@example.com", 0},
			{longID, 0}, // too long to index; ignored, not an error
		} {
			got, err := tx.TicketByMessageID(tc.id)
			if tc.want == 0 {
				if !errors.Is(err, helpdesk.ErrNotFound) {
					t.Errorf("TicketByMessageID(%.30q) = %d, %v, want ErrNotFound", tc.id, got, err)
				}
				continue
			}
			if err != nil || got != tc.want {
				t.Errorf("TicketByMessageID(%q) = %d, %v, want %d", tc.id, got, err, tc.want)
			}
		}
		return nil
	})
}

// Every byte a customer sent is kept (R11, R15: "the email itself is kept for staff, never
// lost"; R20: records kept digitally), compressed when that helps, once per content.
func TestRaw(t *testing.T) {
	db := newDB(t)
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := []byte(strings.Repeat("From: a@example.com\r\nSubject: kassa\r\n\r\nDe kassa start niet op.\r\n", 500))
	cases := []struct {
		name      string
		raw       []byte
		wantCodec byte
	}{
		{"compressible", text, rawDeflate},
		{"incompressible", random, rawPlain},
		{"empty", []byte{}, rawPlain},
		{"one byte", []byte{0}, rawPlain},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Stored once in the transaction (PutRaw), once packed outside it (PackRaw, as
			// the poller's parse workers do) — in either order.
			packed, err := db.PackRaw(RawHash(tc.raw), bytes.Clone(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			var h1, h2 string
			update(t, db, func(tx *Tx) (err error) {
				if i%2 == 0 {
					if h1, err = tx.PutRaw(tc.raw); err != nil {
						return err
					}
					h2, err = tx.PutPackedRaw(packed)
					return err
				}
				if h1, err = tx.PutPackedRaw(packed); err != nil {
					return err
				}
				h2, err = tx.PutRaw(bytes.Clone(tc.raw))
				return err
			})
			if h1 != h2 || len(h1) != 64 {
				t.Errorf("PutRaw and PutPackedRaw = %q, %q, want the same sha256 hex", h1, h2)
			}
			view(t, db, func(tx *Tx) error {
				got, err := tx.Raw(h1)
				if err != nil || !bytes.Equal(got, tc.raw) {
					t.Errorf("Raw(PutRaw(%s)) = %d bytes, %v, want the %d bytes back", tc.name, len(got), err, len(tc.raw))
				}
				stored := tx.tx.Bucket(bRaw).Get(func() []byte { s := RawHash(tc.raw); return s[:] }())
				if len(stored) == 0 || stored[0] != tc.wantCodec {
					t.Errorf("PutRaw(%s) stored codec %v, want %d", tc.name, stored[:min(1, len(stored))], tc.wantCodec)
				}
				if tc.wantCodec == rawDeflate && len(stored) >= len(tc.raw)/4 {
					t.Errorf("PutRaw(%s) stored %d bytes for %d, want it compressed", tc.name, len(stored), len(tc.raw))
				}
				if tc.wantCodec == rawPlain && len(stored) != len(tc.raw)+1 {
					t.Errorf("PutRaw(%s) stored %d bytes for %d, want them as is plus the codec byte", tc.name, len(stored), len(tc.raw))
				}
				return nil
			})
		})
	}
	view(t, db, func(tx *Tx) error {
		if n := tx.tx.Bucket(bRaw).Stats().KeyN; n != len(cases) {
			t.Errorf("raw bucket holds %d entries, want %d (one per distinct content)", n, len(cases))
		}
		if _, err := tx.Raw(strings.Repeat("ab", 32)); !errors.Is(err, helpdesk.ErrNotFound) {
			t.Errorf("Raw(unknown hash) error = %v, want ErrNotFound", err)
		}
		if _, err := tx.Raw("not hex"); err == nil {
			t.Errorf("Raw(\"not hex\") error = nil, want an error")
		}
		return nil
	})
}

// Exactly-once ingest: the raw hash remembers what an email became.
func TestIngested(t *testing.T) {
	db := newDB(t)
	sumA, sumB := RawHash([]byte("mail a")), RawHash([]byte("mail b"))
	view(t, db, func(tx *Tx) error {
		if r, ok, err := tx.Ingested(sumA); ok || err != nil {
			t.Errorf("Ingested(new) = %+v, %v, %v, want not ingested", r, ok, err)
		}
		return nil
	})
	update(t, db, func(tx *Tx) error {
		if err := tx.MarkIngested(sumA, helpdesk.Ref{TicketID: 4, Seq: 2}); err != nil {
			return err
		}
		return tx.MarkIngested(sumB, helpdesk.Ref{HeldID: 7})
	})
	view(t, db, func(tx *Tx) error {
		for _, tc := range []struct {
			sum  [32]byte
			want helpdesk.Ref
		}{{sumA, helpdesk.Ref{TicketID: 4, Seq: 2}}, {sumB, helpdesk.Ref{HeldID: 7}}} {
			if r, ok, err := tx.Ingested(tc.sum); !ok || err != nil || r != tc.want {
				t.Errorf("Ingested(%x) = %+v, %v, %v, want %+v, true", tc.sum[:4], r, ok, err, tc.want)
			}
		}
		return nil
	})
}

// Emails that do not become ticket messages are kept, in order, with their reason (R11, R15).
func TestHold(t *testing.T) {
	db := newDB(t)
	in := []*helpdesk.Held{
		{MessageID: "x@example.com", From: "stranger@example.com", Subject: "hallo", Reason: helpdesk.HeldUnknownSender, Received: t0, Size: 10},
		{MessageID: "y@example.com", From: "mailer-daemon@example.com", Subject: "Undelivered", Reason: helpdesk.HeldAutomatic, Received: t0.Add(time.Minute)},
	}
	update(t, db, func(tx *Tx) error {
		for _, h := range in {
			if err := tx.Hold(h); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, db, func(tx *Tx) error {
		got, err := tx.HeldEmails()
		if err != nil || len(got) != 2 {
			t.Fatalf("HeldEmails() = %d, %v, want 2", len(got), err)
		}
		for i := range in {
			if !reflect.DeepEqual(got[i], in[i]) || got[i].ID != uint64(i+1) {
				t.Errorf("HeldEmails()[%d] = %+v, want %+v with id %d", i, got[i], in[i], i+1)
			}
		}
		return nil
	})
}

// The outbox: queued notifications come out earliest first; updates move them in the queue.
func TestOutbox(t *testing.T) {
	db := newDB(t)
	later, soon := &helpdesk.Notification{Kind: helpdesk.KindAck, TicketID: 5, To: "a@example.com", MessageID: "n1@helpdesk", NextAttempt: t0.Add(2 * time.Hour)},
		&helpdesk.Notification{Kind: helpdesk.KindAnswer, TicketID: 5, To: "a@example.com", MessageID: "n2@helpdesk", NextAttempt: t0.Add(time.Hour)}
	now := &helpdesk.Notification{Kind: helpdesk.KindUnknownSender, To: "stranger@example.com", MessageID: "n3@helpdesk"}                // zero: due at once
	other := &helpdesk.Notification{Kind: helpdesk.KindAck, TicketID: 6, To: "b@example.com", MessageID: "n4@helpdesk", NextAttempt: t0} // ticket 6

	view(t, db, func(tx *Tx) error {
		if at, ok := tx.NextDue(); ok {
			t.Errorf("NextDue() on an empty outbox = %v, true, want false", at)
		}
		return nil
	})
	update(t, db, func(tx *Tx) error {
		for _, n := range []*helpdesk.Notification{later, soon, now, other} {
			if err := tx.Enqueue(n); err != nil {
				return err
			}
		}
		return nil
	})
	if later.ID != 1 || soon.ID != 2 || now.ID != 3 || other.ID != 4 || later.Status != helpdesk.NotifyQueued {
		t.Fatalf("Enqueue ids = %d %d %d %d, status %q, want 1 2 3 4, queued", later.ID, soon.ID, now.ID, other.ID, later.Status)
	}

	due := func(at time.Time, limit int) []uint64 {
		t.Helper()
		var ns []*helpdesk.Notification
		view(t, db, func(tx *Tx) (err error) {
			ns, err = tx.DueNotifications(at, limit)
			return err
		})
		return notificationIDs(ns)
	}
	for _, tc := range []struct {
		name  string
		at    time.Time
		limit int
		want  []uint64
	}{
		{"before everything", t0.Add(-time.Hour), 10, []uint64{3}},
		{"at t0", t0, 10, []uint64{3, 4}},
		{"after the first hour", t0.Add(90 * time.Minute), 10, []uint64{3, 4, 2}},
		{"exactly at the last", t0.Add(2 * time.Hour), 10, []uint64{3, 4, 2, 1}},
		{"zero time: all queued", time.Time{}, 10, []uint64{3, 4, 2, 1}},
		{"limit", time.Time{}, 2, []uint64{3, 4}},
		{"other zone, same instant", t0.Add(90 * time.Minute).In(time.FixedZone("CET", 3600)), 10, []uint64{3, 4, 2}},
	} {
		if got := due(tc.at, tc.limit); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: DueNotifications(%v, %d) = %v, want %v", tc.name, tc.at, tc.limit, got, tc.want)
		}
	}
	view(t, db, func(tx *Tx) error {
		if at, ok := tx.NextDue(); !ok || !at.IsZero() {
			t.Errorf("NextDue() with one due at once = %v, %v, want zero time, true", at, ok)
		}
		// Enqueue indexes the notification's Message-ID, so a reply to it threads (R10).
		if id, err := tx.TicketByMessageID("n2@helpdesk"); err != nil || id != 5 {
			t.Errorf("TicketByMessageID(n2@helpdesk) = %d, %v, want 5", id, err)
		}
		// A delivery report quoting the id in another case finds the notification.
		if n, err := tx.NotificationByMessageID("<N2@Helpdesk>"); err != nil || n.MessageID != "n2@helpdesk" {
			t.Errorf("NotificationByMessageID(<N2@Helpdesk>) = %+v, %v, want the notification n2@helpdesk", n, err)
		}
		for _, tc := range []struct {
			ticket uint64
			want   []uint64
		}{{5, []uint64{1, 2}}, {6, []uint64{4}}, {7, nil}} {
			ns, err := tx.TicketNotifications(tc.ticket)
			if got := notificationIDs(ns); err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("TicketNotifications(%d) = %v, %v, want %v", tc.ticket, got, err, tc.want)
			}
		}
		return nil
	})

	// Sending: 3 and 4 are sent, 1 fails once and is retried before 2.
	update(t, db, func(tx *Tx) error {
		for _, id := range []uint64{3, 4} {
			n, err := tx.Notification(id)
			if err != nil {
				return err
			}
			n.Status, n.Sent, n.Attempts = helpdesk.NotifySent, t0, 1
			if err := tx.PutNotification(n); err != nil {
				return err
			}
		}
		n, err := tx.Notification(1)
		if err != nil {
			return err
		}
		n.Attempts, n.LastError, n.NextAttempt = 1, "451 try later", t0.Add(30*time.Minute)
		return tx.PutNotification(n)
	})
	if got, want := due(time.Time{}, 10), []uint64{1, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("DueNotifications(all) after sending 3, 4 and moving 1 = %v, want %v", got, want)
	}
	if got, want := due(t0.Add(45*time.Minute), 10), []uint64{1}; !reflect.DeepEqual(got, want) {
		t.Errorf("DueNotifications(t0+45m) = %v, want %v", got, want)
	}
	view(t, db, func(tx *Tx) error {
		if at, ok := tx.NextDue(); !ok || !at.Equal(t0.Add(30*time.Minute)) {
			t.Errorf("NextDue() = %v, %v, want %v, true", at, ok, t0.Add(30*time.Minute))
		}
		n, err := tx.Notification(3)
		if err != nil || n.Status != helpdesk.NotifySent || !n.Sent.Equal(t0) {
			t.Errorf("Notification(3) = %+v, %v, want sent at %v", n, err, t0)
		}
		all, err := tx.Outbox()
		if got := notificationIDs(all); err != nil || !reflect.DeepEqual(got, []uint64{1, 2, 3, 4}) {
			t.Errorf("Outbox() = %v, %v, want all four, sent ones too", got, err)
		}
		return nil
	})

	// Giving up on one removes it from the queue; the last one sent empties it.
	update(t, db, func(tx *Tx) error {
		for id, status := range map[uint64]string{1: helpdesk.NotifyFailed, 2: helpdesk.NotifySent} {
			n, err := tx.Notification(id)
			if err != nil {
				return err
			}
			n.Status = status
			if err := tx.PutNotification(n); err != nil {
				return err
			}
		}
		return nil
	})
	if got := due(time.Time{}, 10); len(got) != 0 {
		t.Errorf("DueNotifications after all sent or failed = %v, want none", got)
	}
	view(t, db, func(tx *Tx) error {
		if at, ok := tx.NextDue(); ok {
			t.Errorf("NextDue() with nothing queued = %v, true, want false", at)
		}
		return nil
	})
	if err := db.Update(ctx, func(tx *Tx) error {
		return tx.PutNotification(&helpdesk.Notification{ID: 99, Status: helpdesk.NotifySent})
	}); !errors.Is(err, helpdesk.ErrNotFound) {
		t.Errorf("PutNotification(unknown) = %v, want ErrNotFound", err)
	}
}

// The IMAP checkpoint of a mailbox never seen is zero; a stored one comes back whole.
func TestMailbox(t *testing.T) {
	db := newDB(t)
	view(t, db, func(tx *Tx) error {
		got, err := tx.Mailbox("INBOX")
		if want := (&helpdesk.MailboxState{Name: "INBOX"}); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Mailbox(INBOX) on a new database = %+v, %v, want %+v", got, err, want)
		}
		return nil
	})
	in := &helpdesk.MailboxState{Name: "INBOX", UIDValidity: 42, LastUID: 17, UIDNext: 20,
		PendingMark: []helpdesk.UIDRange{{Start: 15, Stop: 17}}, Updated: t0}
	other := &helpdesk.MailboxState{Name: "Support/Inbox", UIDValidity: 1, LastUID: 3, Updated: t0}
	update(t, db, func(tx *Tx) error {
		if err := tx.PutMailbox(in); err != nil {
			return err
		}
		return tx.PutMailbox(other)
	})
	view(t, db, func(tx *Tx) error {
		for _, want := range []*helpdesk.MailboxState{in, other} {
			if got, err := tx.Mailbox(want.Name); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Mailbox(%s) = %+v, %v, want %+v", want.Name, got, err, want)
			}
		}
		return nil
	})
}

// The notify worker sleeps until a commit queues something: only such a commit wakes it.
func TestOutboxWake(t *testing.T) {
	db := newDB(t)
	wake := db.OutboxWake()
	woken := func() bool {
		select {
		case <-wake:
			return true
		default:
			return false
		}
	}
	boom := errors.New("boom")
	steps := []struct {
		name string
		fn   func(tx *Tx) error
		want error
		wake bool
	}{
		{"commit without notifications", func(tx *Tx) error {
			return tx.Hold(&helpdesk.Held{Reason: helpdesk.HeldUnknownSender})
		}, nil, false},
		{"commit that enqueues", func(tx *Tx) error {
			return tx.Enqueue(&helpdesk.Notification{Kind: helpdesk.KindAck, To: "a@example.com", MessageID: "w1@helpdesk"})
		}, nil, true},
		{"enqueue rolled back", func(tx *Tx) error {
			if err := tx.Enqueue(&helpdesk.Notification{Kind: helpdesk.KindAck, To: "a@example.com", MessageID: "w2@helpdesk"}); err != nil {
				return err
			}
			return boom
		}, boom, false},
		{"notification marked sent", func(tx *Tx) error {
			n, err := tx.Notification(1)
			if err != nil {
				return err
			}
			n.Status = helpdesk.NotifySent
			return tx.PutNotification(n)
		}, nil, false},
		{"notification queued again", func(tx *Tx) error {
			n, err := tx.Notification(1)
			if err != nil {
				return err
			}
			n.Status, n.NextAttempt = helpdesk.NotifyQueued, t0
			return tx.PutNotification(n)
		}, nil, true},
		{"another enqueue", func(tx *Tx) error {
			return tx.Enqueue(&helpdesk.Notification{Kind: helpdesk.KindAck, To: "a@example.com", MessageID: "w3@helpdesk"})
		}, nil, true},
	}
	for _, s := range steps {
		if err := db.Update(ctx, s.fn); !errors.Is(err, s.want) {
			t.Fatalf("%s: Update = %v, want %v", s.name, err, s.want)
		}
		if got := woken(); got != s.wake {
			t.Errorf("%s: OutboxWake fired = %v, want %v", s.name, got, s.wake)
		}
	}
	// The channel is buffered: two commits before the worker reads leave one wake-up.
	for range 2 {
		update(t, db, func(tx *Tx) error {
			return tx.Enqueue(&helpdesk.Notification{Kind: helpdesk.KindAck, To: "b@example.com"})
		})
	}
	if !woken() || woken() {
		t.Errorf("OutboxWake after two enqueuing commits: want exactly one wake-up waiting")
	}
}

// A second gateway on the same file fails fast with ErrLocked instead of hanging (bbolt's
// default waits for the lock forever).
func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "helpdesk.db")
	openAt(t, path)
	done := make(chan error, 1)
	go func() {
		db, err := Open(path, Options{LockTimeout: 50 * time.Millisecond})
		if err == nil {
			db.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrLocked) {
			t.Errorf("Open(locked file) = %v, want ErrLocked", err)
		}
	case <-time.After(2 * time.Minute): // a hang guard: forever is what it tells apart
		t.Fatalf("Open(locked file) with LockTimeout 50ms still blocked after 2 minutes")
	}
}

// What was committed survives Close and Open (R20: the database is the record; R3: a paid
// tier's end date comes back as stored).
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "helpdesk.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var rawHash string
	err = db.Update(ctx, func(tx *Tx) error {
		if err := tx.PutCustomer(&helpdesk.Customer{Name: "Bakkerij", Emails: []string{"info@bakkerij.nl"}, Tier: helpdesk.SLA8, ValidUntil: helpdesk.Date{Year: 2027, Month: 1, Day: 31}}); err != nil {
			return err
		}
		tk := &helpdesk.Ticket{CustomerID: 1, Subject: "kassa", Status: helpdesk.StatusOpen, Created: t0, Due: t0.Add(8 * time.Hour)}
		if err := tx.CreateTicket(tk); err != nil {
			return err
		}
		if err := tx.AddMessage(tk, &helpdesk.Message{Direction: helpdesk.DirectionIn, MessageID: "m1@bakkerij.nl", Text: "hallo"}); err != nil {
			return err
		}
		if rawHash, err = tx.PutRaw([]byte("raw mail")); err != nil {
			return err
		}
		if err := tx.Enqueue(&helpdesk.Notification{Kind: helpdesk.KindAck, TicketID: tk.ID, To: "info@bakkerij.nl", MessageID: "n1@helpdesk", NextAttempt: t0}); err != nil {
			return err
		}
		return tx.PutMailbox(&helpdesk.MailboxState{Name: "INBOX", UIDValidity: 9, LastUID: 4})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, path)
	view(t, db, func(tx *Tx) error {
		if c, err := tx.CustomerByAddress("INFO@bakkerij.nl"); err != nil || c.ValidUntil != (helpdesk.Date{Year: 2027, Month: 1, Day: 31}) {
			t.Errorf("CustomerByAddress after reopen = %+v, %v, want valid until 2027-01-31", c, err)
		}
		if tk, err := tx.Ticket(1); err != nil || tk.Messages != 1 || !tk.Due.Equal(t0.Add(8*time.Hour)) {
			t.Errorf("Ticket(1) after reopen = %+v, %v, want 1 message, due %v", tk, err, t0.Add(8*time.Hour))
		}
		if id, err := tx.TicketByMessageID("m1@bakkerij.nl"); err != nil || id != 1 {
			t.Errorf("TicketByMessageID after reopen = %d, %v, want 1", id, err)
		}
		if raw, err := tx.Raw(rawHash); err != nil || string(raw) != "raw mail" {
			t.Errorf("Raw after reopen = %q, %v, want \"raw mail\"", raw, err)
		}
		if at, ok := tx.NextDue(); !ok || !at.Equal(t0) {
			t.Errorf("NextDue after reopen = %v, %v, want %v", at, ok, t0)
		}
		if mb, err := tx.Mailbox("INBOX"); err != nil || mb.UIDValidity != 9 || mb.LastUID != 4 {
			t.Errorf("Mailbox after reopen = %+v, %v, want uidvalidity 9, last uid 4", mb, err)
		}
		if c := tx.Counts(); c != (Counts{Customers: 1, Tickets: 1, Messages: 1, Outbox: 1}) {
			t.Errorf("Counts after reopen = %+v", c)
		}
		return nil
	})
	// Numbering goes on where it was.
	update(t, db, func(tx *Tx) error {
		tk := &helpdesk.Ticket{CustomerID: 1}
		if err := tx.CreateTicket(tk); err != nil {
			return err
		}
		if tk.ID != 2 {
			t.Errorf("CreateTicket after reopen = %d, want 2", tk.ID)
		}
		return nil
	})
}

// A record written by a newer program (another format byte) is reported, not misread, and
// never panics; so is a file whose schema is newer than this program.
func TestUnknownFormat(t *testing.T) {
	db := newDB(t)
	update(t, db, func(tx *Tx) error {
		if err := tx.PutCustomer(&helpdesk.Customer{Name: "ok", Emails: []string{"ok@example.com"}}); err != nil {
			return err
		}
		return tx.CreateTicket(&helpdesk.Ticket{CustomerID: 1})
	})
	corrupt := func(bucket, key, value []byte) {
		t.Helper()
		if err := db.bolt.Update(func(btx *bolt.Tx) error { return btx.Bucket(bucket).Put(key, value) }); err != nil {
			t.Fatal(err)
		}
	}
	corrupt(bCustomers, u64(2), append([]byte{9}, `{"id":2,"name":"future"}`...))
	corrupt(bCustomerAddr, []byte("future@example.com"), u64(2))
	corrupt(bTickets, u64(1), append([]byte{9}, `{}`...))
	corrupt(bHeld, u64(1), []byte{})
	corrupt(bMailboxes, []byte("INBOX"), []byte{1, '{'})
	corrupt(bRaw, bytes.Repeat([]byte{0xab}, 32), []byte{7, 'x'})

	cases := []struct {
		name string
		fn   func(tx *Tx) error
		want string
	}{
		{"Customer(2)", func(tx *Tx) error { _, err := tx.Customer(2); return err }, "record format 9 unknown"},
		{"CustomerByAddress(future@)", func(tx *Tx) error { _, err := tx.CustomerByAddress("future@example.com"); return err }, "record format 9 unknown"},
		{"Customers()", func(tx *Tx) error { _, err := tx.Customers(); return err }, "record format 9 unknown"},
		{"Ticket(1)", func(tx *Tx) error { _, err := tx.Ticket(1); return err }, "record format 9 unknown"},
		{"Tickets()", func(tx *Tx) error { _, err := tx.Tickets(); return err }, "record format 9 unknown"},
		{"CustomerTickets(1)", func(tx *Tx) error { _, err := tx.CustomerTickets(1); return err }, "record format 9 unknown"},
		{"HeldEmails()", func(tx *Tx) error { _, err := tx.HeldEmails(); return err }, "empty record"},
		{"Mailbox(INBOX)", func(tx *Tx) error { _, err := tx.Mailbox("INBOX"); return err }, "decode mailboxes record"},
		{"Raw(unknown codec)", func(tx *Tx) error { _, err := tx.Raw(strings.Repeat("ab", 32)); return err }, "unknown codec 7"},
	}
	for _, tc := range cases {
		err := db.View(ctx, tc.fn)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, helpdesk.ErrNotFound) {
			t.Errorf("%s = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestOpenNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "helpdesk.db")
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.bolt.Update(func(btx *bolt.Tx) error { return btx.Bucket(bMeta).Put([]byte("schema"), u64(schemaVersion+1)) })
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(path, Options{NoSync: true})
	if err == nil {
		db.Close()
		t.Fatalf("Open(file with schema %d) = nil error, want a refusal", schemaVersion+1)
	}
	if !strings.Contains(err.Error(), "newer than this program") {
		t.Errorf("Open(file with schema %d) = %v, want it to say the file is newer", schemaVersion+1, err)
	}
}

// R1: an address is listed once per customer, whatever case it was typed in; blank entries
// are no address.
func TestCustomerDuplicateAddresses(t *testing.T) {
	db := newDB(t)
	cases := []struct {
		in   []string
		want []string // nil: refused
	}{
		{[]string{"Info@Bakkerij.nl", "info@bakkerij.nl", " INFO@BAKKERIJ.NL"}, []string{"info@bakkerij.nl"}},
		{[]string{"", "kassa@slager.nl", "piet@slager.nl", "Kassa@Slager.nl"}, []string{"kassa@slager.nl", "piet@slager.nl"}},
		{[]string{"", "  "}, nil},
		{nil, nil},
	}
	for _, tc := range cases {
		c := &helpdesk.Customer{Name: "x", Emails: slicesClone(tc.in)}
		err := db.Update(ctx, func(tx *Tx) error { return tx.PutCustomer(c) })
		if tc.want == nil {
			if err == nil {
				t.Errorf("PutCustomer(%q) = nil, want an error (no address)", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("PutCustomer(%q) = %v", tc.in, err)
			continue
		}
		view(t, db, func(tx *Tx) error {
			got, err := tx.Customer(c.ID)
			if err != nil || !reflect.DeepEqual(got.Emails, tc.want) {
				t.Errorf("PutCustomer(%q) stored emails %q, %v, want %q", tc.in, got.Emails, err, tc.want)
			}
			return nil
		})
	}
}

// A customer saved under a chosen id (an import) is never overwritten by a later new one.
func TestCustomerChosenID(t *testing.T) {
	db := newDB(t)
	update(t, db, func(tx *Tx) error {
		return tx.PutCustomer(&helpdesk.Customer{ID: 2, Name: "imported", Emails: []string{"imported@example.com"}})
	})
	var ids []uint64
	update(t, db, func(tx *Tx) error {
		for _, addr := range []string{"a@example.com", "b@example.com"} {
			c := &helpdesk.Customer{Name: addr, Emails: []string{addr}}
			if err := tx.PutCustomer(c); err != nil {
				return err
			}
			ids = append(ids, c.ID)
		}
		return nil
	})
	if want := []uint64{3, 4}; !reflect.DeepEqual(ids, want) {
		t.Errorf("PutCustomer(new) after an import under id 2 = ids %v, want %v", ids, want)
	}
	view(t, db, func(tx *Tx) error {
		if c, err := tx.CustomerByAddress("imported@example.com"); err != nil || c.Name != "imported" || c.ID != 2 {
			t.Errorf("CustomerByAddress(imported@) = %+v, %v, want the imported customer 2", c, err)
		}
		return nil
	})
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// Databases written before Message-IDs kept their case hold lower-cased index keys and
// identity keys: an email whose id is in another case must still dedupe against them.
func TestIdentityKeyIgnoresIDCase(t *testing.T) {
	old, _ := IdentityKey("caf=x5kq@mail.gmail.com", "info@bakkerij.nl", "kassa")
	now, ok := IdentityKey("<CAF=x5Kq@mail.gmail.com>", "info@bakkerij.nl", "kassa")
	if !ok || now != old {
		t.Errorf("IdentityKey(CAF=x5Kq@mail.gmail.com) = %x, %v, want the key of the lower-cased id %x", now, ok, old)
	}
	if _, ok := IdentityKey(" <> ", "info@bakkerij.nl", "kassa"); ok {
		t.Error("IdentityKey of an empty id: ok, want none")
	}
}
