package store

import (
	"errors"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
)

// Sessions are stored under the SHA-256 of their id (the id itself is nowhere in the file),
// end one at a time or all of a customer's at once, and expire by idle and absolute time.
func TestSessions(t *testing.T) {
	db := newDB(t)
	var a, b *helpdesk.Customer
	var ids []string
	update(t, db, func(tx *Tx) error {
		a = &helpdesk.Customer{Name: "A", Emails: []string{"a@example.nl"}}
		b = &helpdesk.Customer{Name: "B", Emails: []string{"b@example.nl"}}
		for _, c := range []*helpdesk.Customer{a, b} {
			if err := tx.PutCustomer(c); err != nil {
				return err
			}
		}
		for i, c := range []*helpdesk.Customer{a, a, b} {
			id, err := tx.CreateSession(&helpdesk.Session{CustomerID: c.ID, Created: t0, LastSeen: t0.Add(time.Duration(i) * time.Hour)})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if len(ids[0]) != 43 || ids[0] == ids[1] {
		t.Fatalf("session ids %q: want 43 URL-safe characters (256 bits), different", ids[:2])
	}
	raw, err := db.bolt.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Bucket(bSessions).Get([]byte(ids[0])) != nil {
		t.Errorf("a session is stored under its id, not its hash")
	}
	raw.Rollback()
	update(t, db, func(tx *Tx) error {
		if n, err := tx.EndSessions(a.ID); err != nil || n != 2 {
			t.Errorf("EndSessions(A) = %d, %v; want 2", n, err)
		}
		for i, id := range ids {
			_, err := tx.Session(id)
			if (i < 2) != errors.Is(err, ErrNoSession) {
				t.Errorf("session %d after ending A's: %v", i, err)
			}
		}
		// B's session was last seen at t0+2h: idle since before t0+3h.
		if n, err := tx.ExpireSessions(t0.Add(time.Hour), t0.Add(-time.Hour), 10); err != nil || n != 0 {
			t.Errorf("ExpireSessions before its idle time = %d, %v", n, err)
		}
		if n, err := tx.ExpireSessions(t0.Add(3*time.Hour), t0.Add(-time.Hour), 10); err != nil || n != 1 {
			t.Errorf("ExpireSessions after its idle time = %d, %v", n, err)
		}
		_, err := tx.Session(ids[2])
		if !errors.Is(err, ErrNoSession) {
			t.Errorf("an expired session: %v", err)
		}
		return nil
	})
}

// PeekToken says what RedeemToken would, and uses nothing up.
func TestPeekToken(t *testing.T) {
	db := newDB(t)
	update(t, db, func(tx *Tx) error {
		c := &helpdesk.Customer{Name: "A", Emails: []string{"a@example.nl"}}
		if err := tx.PutCustomer(c); err != nil {
			return err
		}
		tok, err := tx.IssueToken(helpdesk.PurposePassword, c.ID, "", t0, time.Hour)
		if err != nil {
			return err
		}
		for range 3 {
			if _, err := tx.PeekToken(tok, t0.Add(time.Minute)); err != nil {
				t.Errorf("PeekToken = %v", err)
			}
		}
		if _, err := tx.PeekToken(tok, t0.Add(time.Hour)); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("PeekToken after expiry = %v", err)
		}
		if _, err := tx.RedeemToken(tok, t0.Add(time.Minute)); err != nil {
			t.Errorf("RedeemToken after peeking = %v", err)
		}
		if _, err := tx.PeekToken(tok, t0.Add(time.Minute)); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("PeekToken of a used token = %v", err)
		}
		return nil
	})
}
