package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/infobits/helpdesk"
)

// TokenHash is the key a token is stored under.
func TokenHash(raw string) [32]byte { return sha256.Sum256([]byte(raw)) }

func tokenIndexKey(customerID uint64, purpose string, hash []byte) []byte {
	k := append(u64(customerID), purpose...)
	k = append(k, 0)
	return append(k, hash...)
}

// IssueToken creates a recovery token (R16): 256 random bits, URL-safe, valid for ttl,
// single use. Only its SHA-256 is stored; the raw value is returned for the link and is
// nowhere else. Every older unused token of the customer for the same purpose is voided.
func (tx *Tx) IssueToken(purpose string, customerID uint64, newEmail string, now time.Time, ttl time.Duration) (string, error) {
	return tx.issue(&helpdesk.Token{Purpose: purpose, CustomerID: customerID, NewEmail: newEmail, Created: now, Expires: now.Add(ttl)})
}

// IssueChangeToken creates a token of a login change (R17): PurposeLogin for the new
// address, PurposeLoginAllow or PurposeLoginCancel for the old login, valid until expires.
// An older unused token of the same change and purpose is voided (a resent message), those
// of other changes are not. For PurposeLogin the change's ConfirmBy becomes expires: the
// new address must confirm by then.
func (tx *Tx) IssueChangeToken(purpose string, changeID uint64, now, expires time.Time) (string, error) {
	ch, err := tx.LoginChange(changeID)
	if err != nil {
		return "", fmt.Errorf("login change %d: %w", changeID, err)
	}
	if purpose == helpdesk.PurposeLogin && expires.After(ch.ConfirmBy) {
		ch.ConfirmBy = expires
		if err := tx.PutLoginChange(ch); err != nil {
			return "", err
		}
	}
	return tx.issue(&helpdesk.Token{Purpose: purpose, CustomerID: ch.CustomerID, NewEmail: ch.NewEmail, Created: now,
		Expires: expires, LoginChange: changeID})
}

func (tx *Tx) issue(t *helpdesk.Token) (string, error) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	raw := base64.RawURLEncoding.EncodeToString(b[:])
	sum := TokenHash(raw)
	idx := tx.tx.Bucket(bTokensByCust)
	prefix := tokenIndexKey(t.CustomerID, t.Purpose, nil)
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		var old helpdesk.Token
		h := k[len(prefix):]
		switch err := tx.get(bTokens, h, &old); {
		case errors.Is(err, helpdesk.ErrNotFound):
			continue
		case err != nil:
			return "", err
		}
		// A new login change must not void the link of a pending one.
		if old.Used.IsZero() && !old.Voided && old.LoginChange == t.LoginChange {
			old.Voided = true
			if err := tx.put(bTokens, bytes.Clone(h), &old); err != nil {
				return "", err
			}
		}
	}
	if err := tx.put(bTokens, sum[:], t); err != nil {
		return "", err
	}
	if err := idx.Put(tokenIndexKey(t.CustomerID, t.Purpose, sum[:]), []byte{1}); err != nil {
		return "", err
	}
	return raw, nil
}

// VoidTokens voids every unused token of a customer for purpose that belongs to no login
// change (a password set otherwise makes the password links sent before it worthless), and
// returns how many it voided.
func (tx *Tx) VoidTokens(customerID uint64, purpose string) (int, error) {
	prefix := tokenIndexKey(customerID, purpose, nil)
	var voided int
	c := tx.tx.Bucket(bTokensByCust).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		var t helpdesk.Token
		h := k[len(prefix):]
		switch err := tx.get(bTokens, h, &t); {
		case errors.Is(err, helpdesk.ErrNotFound):
			continue
		case err != nil:
			return voided, err
		}
		if t.Used.IsZero() && !t.Voided && t.LoginChange == 0 {
			t.Voided = true
			if err := tx.put(bTokens, bytes.Clone(h), &t); err != nil {
				return voided, err
			}
			voided++
		}
	}
	return voided, nil
}

// RedeemToken uses a token once: it must exist, be unused, not voided and not expired at now.
// It changes nothing else: what a token does (a password reset, a step of a login change) is
// the caller's business, in the same transaction. Every failure is ErrTokenInvalid (with the
// reason wrapped for logs).
func (tx *Tx) RedeemToken(raw string, now time.Time) (*helpdesk.Token, error) {
	t, err := tx.PeekToken(raw, now)
	if err != nil {
		return nil, err
	}
	t.Used = now
	sum := TokenHash(raw)
	if err := tx.put(bTokens, sum[:], t); err != nil {
		return nil, err
	}
	return t, nil
}
