package store

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/infobits/helpdesk"
)

// The customer's site: passwords and sessions. The store keeps them; what a password must be
// and how long a session lasts are the desk's and the site's business.

// SetPassword stores a customer's password hash (a PHC string made by the caller).
func (tx *Tx) SetPassword(customerID uint64, p *helpdesk.Password) error {
	if _, err := tx.Customer(customerID); err != nil {
		return fmt.Errorf("customer %d: %w", customerID, err)
	}
	return tx.put(bPasswords, u64(customerID), p)
}

// Password returns a customer's password hash, or ErrNotFound when none was set.
func (tx *Tx) Password(customerID uint64) (*helpdesk.Password, error) {
	var p helpdesk.Password
	if err := tx.get(bPasswords, u64(customerID), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ErrNoSession: a session id that is unknown (never issued, ended, or expired and removed).
var ErrNoSession = errors.New("no such session")

// CreateSession stores a new session and returns its id: 256 random bits, URL-safe. Only the
// id's SHA-256 is stored.
func (tx *Tx) CreateSession(s *helpdesk.Session) (string, error) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	raw := base64.RawURLEncoding.EncodeToString(b[:])
	sum := TokenHash(raw)
	if err := tx.put(bSessions, sum[:], s); err != nil {
		return "", err
	}
	if err := tx.tx.Bucket(bSessionsByCust).Put(append(u64(s.CustomerID), sum[:]...), []byte{1}); err != nil {
		return "", err
	}
	return raw, nil
}

// Session returns the session with the id, or ErrNoSession.
func (tx *Tx) Session(raw string) (*helpdesk.Session, error) {
	if len(raw) != 43 {
		return nil, ErrNoSession
	}
	sum := TokenHash(raw)
	var s helpdesk.Session
	switch err := tx.get(bSessions, sum[:], &s); {
	case errors.Is(err, helpdesk.ErrNotFound):
		return nil, ErrNoSession
	case err != nil:
		return nil, err
	}
	return &s, nil
}

// PutSession replaces the session with the id (its last use, its language).
func (tx *Tx) PutSession(raw string, s *helpdesk.Session) error {
	sum := TokenHash(raw)
	if tx.tx.Bucket(bSessions).Get(sum[:]) == nil {
		return ErrNoSession
	}
	return tx.put(bSessions, sum[:], s)
}

// DeleteSession ends the session with the id; an unknown id is no error.
func (tx *Tx) DeleteSession(raw string) error {
	sum := TokenHash(raw)
	return tx.deleteSession(sum[:])
}

func (tx *Tx) deleteSession(sum []byte) error {
	var s helpdesk.Session
	switch err := tx.get(bSessions, sum, &s); {
	case errors.Is(err, helpdesk.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	if err := tx.tx.Bucket(bSessionsByCust).Delete(append(u64(s.CustomerID), sum...)); err != nil {
		return err
	}
	return tx.tx.Bucket(bSessions).Delete(sum)
}

// EndSessions ends every session of a customer (a password change, a new login) and returns
// how many there were.
func (tx *Tx) EndSessions(customerID uint64) (int, error) {
	prefix := u64(customerID)
	var sums [][]byte
	c := tx.tx.Bucket(bSessionsByCust).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		sums = append(sums, bytes.Clone(k[len(prefix):]))
	}
	for _, sum := range sums {
		if err := tx.deleteSession(sum); err != nil {
			return 0, err
		}
	}
	return len(sums), nil
}

// ExpireSessions removes the sessions last used before idle or created before absolute, at
// most n of them (the caller comes back for more), and returns how many it removed.
func (tx *Tx) ExpireSessions(idle, absolute time.Time, n int) (int, error) {
	var sums [][]byte
	err := tx.tx.Bucket(bSessions).ForEach(func(k, v []byte) error {
		if len(sums) >= n {
			return nil
		}
		var s helpdesk.Session
		if err := decode(v, &s); err != nil {
			return fmt.Errorf("session %x: %w", k[:4], err)
		}
		if s.LastSeen.Before(idle) || s.Created.Before(absolute) {
			sums = append(sums, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, sum := range sums {
		if err := tx.deleteSession(sum); err != nil {
			return 0, err
		}
	}
	return len(sums), nil
}

// PeekToken returns a recovery token as RedeemToken would take it, without using it up: the
// site shows the form of a link (GET) and uses the token only when the form is sent (POST),
// since mail scanners open every link first. Every failure is ErrTokenInvalid.
func (tx *Tx) PeekToken(raw string, now time.Time) (*helpdesk.Token, error) {
	if len(raw) < 40 || len(raw) > 64 {
		return nil, fmt.Errorf("%w: malformed", ErrTokenInvalid)
	}
	sum := TokenHash(raw)
	var t helpdesk.Token
	switch err := tx.get(bTokens, sum[:], &t); {
	case errors.Is(err, helpdesk.ErrNotFound):
		return nil, fmt.Errorf("%w: unknown", ErrTokenInvalid)
	case err != nil:
		return nil, err
	}
	switch {
	case !t.Used.IsZero():
		return nil, fmt.Errorf("%w: used on %s", ErrTokenInvalid, t.Used.Format(time.RFC3339))
	case t.Voided:
		return nil, fmt.Errorf("%w: voided (a newer link was sent, or the password was set since)", ErrTokenInvalid)
	case !now.Before(t.Expires):
		return nil, fmt.Errorf("%w: expired at %s", ErrTokenInvalid, t.Expires.Format(time.RFC3339))
	}
	return &t, nil
}
