package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
)

// Recovery tokens (R16–R18): 256 random bits, URL-safe, stored only
// as a SHA-256 hash, single use, expiring, a new one voids the older ones (of its login
// change, for a login change's tokens).

var tokURLSafe = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// tokCustomer stores a customer with the given addresses and returns it.
func tokCustomer(t *testing.T, db *DB, name string, emails ...string) *helpdesk.Customer {
	t.Helper()
	c := &helpdesk.Customer{Name: name, Emails: emails, Tier: helpdesk.SLA8}
	if err := db.Update(ctx, func(tx *Tx) error { return tx.PutCustomer(c) }); err != nil {
		t.Fatalf("PutCustomer(%s): %v", name, err)
	}
	return c
}

func tokIssue(t *testing.T, db *DB, purpose string, customerID uint64, newEmail string, now time.Time, ttl time.Duration) string {
	t.Helper()
	var raw string
	err := db.Update(ctx, func(tx *Tx) (err error) {
		raw, err = tx.IssueToken(purpose, customerID, newEmail, now, ttl)
		return err
	})
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	return raw
}

// tokRedeem redeems raw at now in its own transaction, as the website's call would: an error
// rolls the transaction back.
func tokRedeem(db *DB, raw string, now time.Time) (*helpdesk.Token, error) {
	var tok *helpdesk.Token
	err := db.Update(ctx, func(tx *Tx) (err error) {
		tok, err = tx.RedeemToken(raw, now)
		return err
	})
	return tok, err
}

func tokCustomerOf(t *testing.T, db *DB, id uint64) *helpdesk.Customer {
	t.Helper()
	var c *helpdesk.Customer
	if err := db.View(ctx, func(tx *Tx) (err error) {
		c, err = tx.Customer(id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTokenStoredOnlyAsHash: a token is 256 random bits in 43 URL-safe characters, and the
// database file holds its SHA-256, never the token itself — a copy of the database (a backup,
// R20) gives no working link.
func TestTokenStoredOnlyAsHash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "helpdesk.db")
	db, err := Open(path, Options{NoSync: true, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := tokCustomer(t, db, "Bakkerij", "info@bakkerij.example")
	var raws []string
	for _, purpose := range []string{helpdesk.PurposePassword, helpdesk.PurposeLogin} {
		raw := tokIssue(t, db, purpose, c.ID, "nieuw@bakkerij.example", t0, time.Hour)
		if !tokURLSafe.MatchString(raw) {
			t.Errorf("token %q: want 43 URL-safe characters (256 bits, base64url without padding)", raw)
		}
		raws = append(raws, raw)
	}
	if raws[0] == raws[1] {
		t.Errorf("two tokens are the same: %q", raws[0])
	}
	if err := db.Check(); err != nil {
		t.Errorf("database check: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range raws {
		if bytes.Contains(file, []byte(raw)) {
			t.Errorf("the database file contains the raw token %q", raw)
		}
		// The scan reads real data: the hash the token is stored under is there.
		if sum := TokenHash(raw); !bytes.Contains(file, sum[:]) {
			t.Errorf("the database file lacks the SHA-256 of token %q", raw)
		}
	}

	// The tokens survive a restart and still work.
	db = openAt(t, path)
	for _, raw := range raws {
		if _, err := tokRedeem(db, raw, t0.Add(time.Minute)); err != nil {
			t.Errorf("redeem after reopening: %v", err)
		}
	}
}

// TestTokenSingleUse: a token works once; the second redeem is ErrTokenInvalid.
func TestTokenSingleUse(t *testing.T) {
	db := openAt(t, filepath.Join(t.TempDir(), "helpdesk.db"))
	c := tokCustomer(t, db, "Bakkerij", "info@bakkerij.example")
	raw := tokIssue(t, db, helpdesk.PurposePassword, c.ID, "", t0, time.Hour)

	tok, err := tokRedeem(db, raw, t0.Add(10*time.Minute))
	if err != nil {
		t.Fatalf("first redeem: %v", err)
	}
	if tok.Purpose != helpdesk.PurposePassword || tok.CustomerID != c.ID || !tok.Used.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("redeemed token = %+v, want password for customer %d, used at redeem time", tok, c.ID)
	}
	if _, err := tokRedeem(db, raw, t0.Add(11*time.Minute)); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("second redeem = %v, want ErrTokenInvalid", err)
	}
}

// TestTokenExpiry: a token is valid until its expiry moment, not at or after it.
func TestTokenExpiry(t *testing.T) {
	db := openAt(t, filepath.Join(t.TempDir(), "helpdesk.db"))
	a := tokCustomer(t, db, "A", "a@a.example")
	b := tokCustomer(t, db, "B", "b@b.example")
	ra := tokIssue(t, db, helpdesk.PurposePassword, a.ID, "", t0, time.Hour)
	rb := tokIssue(t, db, helpdesk.PurposePassword, b.ID, "", t0, time.Hour)

	if _, err := tokRedeem(db, ra, t0.Add(time.Hour)); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("redeem at expiry = %v, want ErrTokenInvalid", err)
	}
	if _, err := tokRedeem(db, ra, t0.Add(2*time.Hour)); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("redeem after expiry = %v, want ErrTokenInvalid", err)
	}
	if _, err := tokRedeem(db, rb, t0.Add(time.Hour-time.Nanosecond)); err != nil {
		t.Errorf("redeem just before expiry = %v, want it to work", err)
	}
}

// TestTokenNewVoidsOlder: a new token for the same purpose voids the older ones of that
// customer; tokens of another purpose or another customer stay valid.
func TestTokenNewVoidsOlder(t *testing.T) {
	db := openAt(t, filepath.Join(t.TempDir(), "helpdesk.db"))
	a := tokCustomer(t, db, "A", "a@a.example")
	b := tokCustomer(t, db, "B", "b@b.example")
	first := tokIssue(t, db, helpdesk.PurposePassword, a.ID, "", t0, time.Hour)
	second := tokIssue(t, db, helpdesk.PurposePassword, a.ID, "", t0.Add(time.Minute), time.Hour)
	login := tokIssue(t, db, helpdesk.PurposeLogin, a.ID, "nieuw@a.example", t0.Add(time.Minute), time.Hour)
	other := tokIssue(t, db, helpdesk.PurposePassword, b.ID, "", t0.Add(time.Minute), time.Hour)
	third := tokIssue(t, db, helpdesk.PurposePassword, a.ID, "", t0.Add(2*time.Minute), time.Hour)

	now := t0.Add(3 * time.Minute)
	for name, raw := range map[string]string{"first": first, "second": second} {
		if _, err := tokRedeem(db, raw, now); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("%s (replaced) token = %v, want ErrTokenInvalid", name, err)
		}
	}
	for name, raw := range map[string]string{"newest": third, "login purpose": login, "other customer": other} {
		if _, err := tokRedeem(db, raw, now); err != nil {
			t.Errorf("%s token = %v, want it to work", name, err)
		}
	}
}

// TestTokenMalformedOrUnknown: anything that is not an issued token is ErrTokenInvalid.
func TestTokenMalformedOrUnknown(t *testing.T) {
	db := openAt(t, filepath.Join(t.TempDir(), "helpdesk.db"))
	c := tokCustomer(t, db, "A", "a@a.example")
	raw := tokIssue(t, db, helpdesk.PurposePassword, c.ID, "", t0, time.Hour)
	flipped := []byte(raw)
	if flipped[10] == 'A' {
		flipped[10] = 'B'
	} else {
		flipped[10] = 'A'
	}
	for name, bad := range map[string]string{
		"empty":      "",
		"short":      "abc",
		"unknown":    strings.Repeat("A", 43),
		"one char":   string(flipped),
		"too long":   raw + strings.Repeat("x", 100),
		"prefix":     raw[:42],
		"with space": " " + raw,
	} {
		if tok, err := tokRedeem(db, bad, t0); !errors.Is(err, ErrTokenInvalid) || tok != nil {
			t.Errorf("%s: RedeemToken = %+v, %v; want ErrTokenInvalid", name, tok, err)
		}
	}
	// None of that used up the real one.
	if _, err := tokRedeem(db, raw, t0); err != nil {
		t.Errorf("the real token after the bad ones: %v", err)
	}
}

// TestSetLogin: R17 — a login change that takes effect makes the new address the login
// (Emails[0], where account mail goes, R16) and keeps the old addresses as further ones, so
// the customer's mail from them still finds their tickets (R1). Redeeming a login token by
// itself changes nothing (the new address's confirmation alone is not enough).
func TestSetLogin(t *testing.T) {
	db := openAt(t, filepath.Join(t.TempDir(), "helpdesk.db"))
	c := tokCustomer(t, db, "Bakkerij", "oud@bakkerij.example", "piet@bakkerij.example")
	raw := tokIssue(t, db, helpdesk.PurposeLogin, c.ID, "Nieuw@Bakkerij.example", t0, time.Hour)
	if _, err := tokRedeem(db, raw, t0.Add(time.Minute)); err != nil {
		t.Fatalf("redeem: %v", err)
	}
	if got := tokCustomerOf(t, db, c.ID); got.Login() != "oud@bakkerij.example" {
		t.Errorf("redeeming a login token changed the login to %q", got.Login())
	}
	set := func(addr string) error {
		return db.Update(ctx, func(tx *Tx) error { _, err := tx.SetLogin(c.ID, addr); return err })
	}
	if err := set("Nieuw@Bakkerij.example"); err != nil {
		t.Fatal(err)
	}
	got := tokCustomerOf(t, db, c.ID)
	if want := []string{"nieuw@bakkerij.example", "oud@bakkerij.example", "piet@bakkerij.example"}; !slices.Equal(got.Emails, want) {
		t.Errorf("emails = %q, want %q", got.Emails, want)
	}
	err := db.View(ctx, func(tx *Tx) error {
		for _, addr := range []string{"nieuw@bakkerij.example", "oud@bakkerij.example"} {
			who, err := tx.CustomerByAddress(addr)
			if err != nil || who.ID != c.ID {
				t.Errorf("CustomerByAddress(%s) = %+v, %v; want customer %d", addr, who, err, c.ID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A second address of the customer can become the login too: moved first, not doubled.
	if err := set("piet@bakkerij.example"); err != nil {
		t.Fatal(err)
	}
	if got := tokCustomerOf(t, db, c.ID); !slices.Equal(got.Emails,
		[]string{"piet@bakkerij.example", "nieuw@bakkerij.example", "oud@bakkerij.example"}) {
		t.Errorf("emails = %q", got.Emails)
	}
	// An address of another customer: ErrAddressTaken, nothing changes.
	b := tokCustomer(t, db, "B", "b@b.example", "gedeeld@example.com")
	if err := set("gedeeld@example.com"); !errors.Is(err, ErrAddressTaken) {
		t.Fatalf("SetLogin with the address taken = %v, want ErrAddressTaken", err)
	}
	if got := tokCustomerOf(t, db, b.ID); !slices.Equal(got.Emails, []string{"b@b.example", "gedeeld@example.com"}) {
		t.Errorf("customer B emails = %q, want unchanged", got.Emails)
	}
}

// TestLoginChangeTokens: one pending login change per customer; the tokens of a
// login change void only older ones of the same change and purpose (a request never voids
// another change's link); the new address's link sets when it must confirm by.
func TestLoginChangeTokens(t *testing.T) {
	db := openAt(t, filepath.Join(t.TempDir(), "helpdesk.db"))
	a := tokCustomer(t, db, "A", "a@a.example")
	first := &helpdesk.LoginChange{CustomerID: a.ID, NewEmail: "Nieuw@a.example", OldLogin: "a@a.example", Requested: t0, Until: t0.Add(72 * time.Hour)}
	var old, again, cancel string
	err := db.Update(ctx, func(tx *Tx) (err error) {
		if err := tx.PutLoginChange(first); err != nil {
			return err
		}
		if old, err = tx.IssueChangeToken(helpdesk.PurposeLogin, first.ID, t0, t0.Add(time.Hour)); err != nil {
			return err
		}
		if cancel, err = tx.IssueChangeToken(helpdesk.PurposeLoginCancel, first.ID, t0, first.Until); err != nil {
			return err
		}
		second := &helpdesk.LoginChange{CustomerID: a.ID, NewEmail: "ander@a.example", Requested: t0, Until: t0.Add(72 * time.Hour)}
		if err := tx.PutLoginChange(second); !errors.Is(err, ErrLoginPending) {
			t.Errorf("a second pending change = %v, want ErrLoginPending", err)
		}
		again, err = tx.IssueChangeToken(helpdesk.PurposeLogin, first.ID, t0.Add(time.Minute), t0.Add(2*time.Hour))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokRedeem(db, old, t0.Add(2*time.Minute)); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("the resent link's older token = %v, want ErrTokenInvalid", err)
	}
	var ch *helpdesk.LoginChange
	if err := db.View(ctx, func(tx *Tx) (err error) { ch, err = tx.PendingLoginChange(a.ID); return err }); err != nil {
		t.Fatal(err)
	}
	if ch.ID != first.ID || !ch.ConfirmBy.Equal(t0.Add(2*time.Hour)) || ch.NewEmail != "nieuw@a.example" {
		t.Errorf("pending change = %+v", ch)
	}
	// Settled: the customer may ask again; the new change's link voids none of the first's.
	ch.Settled, ch.Outcome = t0.Add(3*time.Minute), helpdesk.LoginCancelled
	var third string
	err = db.Update(ctx, func(tx *Tx) (err error) {
		if err := tx.PutLoginChange(ch); err != nil {
			return err
		}
		next := &helpdesk.LoginChange{CustomerID: a.ID, NewEmail: "ander@a.example", Requested: t0, Until: t0.Add(72 * time.Hour)}
		if err := tx.PutLoginChange(next); err != nil {
			return err
		}
		third, err = tx.IssueChangeToken(helpdesk.PurposeLogin, next.ID, t0.Add(4*time.Minute), t0.Add(time.Hour))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string]string{"first change's newest link": again, "first change's cancel link": cancel, "second change's link": third} {
		tok, err := tokRedeem(db, raw, t0.Add(5*time.Minute))
		if err != nil {
			t.Errorf("%s = %v, want it to work", name, err)
		} else if tok.LoginChange == 0 || tok.CustomerID != a.ID {
			t.Errorf("%s = %+v", name, tok)
		}
	}
}
