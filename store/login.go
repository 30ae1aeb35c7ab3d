package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/infobits/helpdesk"
)

// Login changes (R17). The store keeps the records and the one-pending-per-customer index;
// when a change takes effect is decided by ingest and policy.

// PutLoginChange creates (ID 0) or replaces a login change and keeps login_pending in step:
// a pending change is the customer's pending one; a settled one is removed from there. A
// second pending change for a customer is ErrLoginPending.
func (tx *Tx) PutLoginChange(c *helpdesk.LoginChange) error {
	if c.ID == 0 {
		id, err := tx.nextID(bLoginChanges)
		if err != nil {
			return err
		}
		c.ID = id
	}
	c.NewEmail = helpdesk.NormalizeAddress(c.NewEmail)
	idx := tx.tx.Bucket(bLoginPending)
	key := u64(c.CustomerID)
	cur := idx.Get(key)
	switch {
	case c.Pending() && cur != nil && binary.BigEndian.Uint64(cur) != c.ID:
		return fmt.Errorf("customer %d: %w (%d)", c.CustomerID, ErrLoginPending, binary.BigEndian.Uint64(cur))
	case c.Pending():
		if err := idx.Put(key, u64(c.ID)); err != nil {
			return err
		}
	case cur != nil && binary.BigEndian.Uint64(cur) == c.ID:
		if err := idx.Delete(key); err != nil {
			return err
		}
	}
	return tx.put(bLoginChanges, u64(c.ID), c)
}

// ErrLoginPending: the customer already has a login change that is not settled.
var ErrLoginPending = errors.New("a login change is pending")

// LoginChange returns login change id, or ErrNotFound.
func (tx *Tx) LoginChange(id uint64) (*helpdesk.LoginChange, error) {
	var c helpdesk.LoginChange
	if err := tx.get(bLoginChanges, u64(id), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// PendingLoginChange returns the customer's login change that is not settled, or ErrNotFound.
func (tx *Tx) PendingLoginChange(customerID uint64) (*helpdesk.LoginChange, error) {
	v := tx.tx.Bucket(bLoginPending).Get(u64(customerID))
	if v == nil {
		return nil, helpdesk.ErrNotFound
	}
	return tx.LoginChange(binary.BigEndian.Uint64(v))
}

// PendingLoginChanges returns every login change not settled, by customer.
func (tx *Tx) PendingLoginChanges() ([]*helpdesk.LoginChange, error) {
	var out []*helpdesk.LoginChange
	c := tx.tx.Bucket(bLoginPending).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		ch, err := tx.LoginChange(binary.BigEndian.Uint64(v))
		if err != nil {
			return nil, fmt.Errorf("pending login change of customer %d: %w", binary.BigEndian.Uint64(k), err)
		}
		out = append(out, ch)
	}
	return out, nil
}

// CustomerLoginChanges returns a customer's login changes, the oldest first.
func (tx *Tx) CustomerLoginChanges(customerID uint64) ([]*helpdesk.LoginChange, error) {
	var out []*helpdesk.LoginChange
	err := tx.tx.Bucket(bLoginChanges).ForEach(func(k, v []byte) error {
		var ch helpdesk.LoginChange
		if err := decode(v, &ch); err != nil {
			return fmt.Errorf("login change %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if ch.CustomerID == customerID {
			out = append(out, &ch)
		}
		return nil
	})
	return out, err
}

// SetLogin makes addr the customer's login address (R1: the first of their addresses); the
// others stay theirs. An address of another customer is ErrAddressTaken.
func (tx *Tx) SetLogin(customerID uint64, addr string) (*helpdesk.Customer, error) {
	c, err := tx.Customer(customerID)
	if err != nil {
		return nil, fmt.Errorf("customer %d: %w", customerID, err)
	}
	emails := []string{helpdesk.NormalizeAddress(addr)}
	for _, e := range c.Emails {
		if e != emails[0] {
			emails = append(emails, e)
		}
	}
	c.Emails = emails
	if err := tx.PutCustomer(c); err != nil {
		return nil, fmt.Errorf("new login %s: %w", addr, err)
	}
	return c, nil
}
