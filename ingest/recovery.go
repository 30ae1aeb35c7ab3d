package ingest

import (
	"errors"
	"fmt"
	"net/mail"
	"time"

	"github.com/infobits/helpdesk/store"
)

// Account recovery requests from the website (R16–R18). By email, "wachtwoord vergeten" goes
// through the policy; both paths queue the same notifications under the same rate limit, and
// notify issues the token when it sends, so the token itself is never stored.
//
// The caller answers the requester identically whatever these return: whether an address
// belongs to a customer is revealed only to that address's mailbox (R18).

// RequestPasswordReset queues a reset link to the login address of the customer who has
// addr, at most RecoveryPerHour an hour. It reports whether a link was queued.
func (a *Applier) RequestPasswordReset(tx *store.Tx, addr string, at time.Time) (bool, error) {
	c, err := tx.CustomerByAddress(addr)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if ok, err := a.underRecoveryLimit(tx, c.Login(), store.KindPasswordReset, at); !ok || err != nil {
		return false, err
	}
	n := a.recoveryNotice(store.KindPasswordReset, c.Login(), c, at)
	n.Data.TokenPurpose = store.PurposePassword
	return true, a.enqueueRecovery(tx, n, at)
}

// RequestLoginChange starts R17: the customer with that number wants newAddr as their login.
// A confirmation link goes to the new address and a notice to the old login address; the
// login changes only when the link is redeemed. It reports whether anything was queued.
func (a *Applier) RequestLoginChange(tx *store.Tx, customerID uint64, newAddr string, at time.Time) (bool, error) {
	parsed, err := mail.ParseAddress(newAddr)
	if err != nil {
		return false, fmt.Errorf("new address %q: %w", newAddr, err)
	}
	newAddr = store.NormalizeAddress(parsed.Address)
	c, err := tx.Customer(customerID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if other, err := tx.CustomerByAddress(newAddr); err == nil && other.ID != c.ID {
		return false, nil // the address belongs to another customer: nothing moves
	}
	if ok, err := a.underRecoveryLimit(tx, newAddr, store.KindLoginConfirm, at); !ok || err != nil {
		return false, err
	}
	confirm := a.recoveryNotice(store.KindLoginConfirm, newAddr, c, at)
	confirm.Data.TokenPurpose, confirm.Data.NewEmail = store.PurposeLogin, newAddr
	if err := a.enqueueRecovery(tx, confirm, at); err != nil {
		return false, err
	}
	notice := a.recoveryNotice(store.KindLoginNotice, c.Login(), c, at)
	notice.Data.NewEmail = newAddr
	return true, a.enqueueRecovery(tx, notice, at)
}

func (a *Applier) underRecoveryLimit(tx *store.Tx, to, kind string, at time.Time) (bool, error) {
	n, err := tx.AutoRepliesSince(to, kind, at.Add(-time.Hour))
	if err != nil {
		return false, err
	}
	return n < a.Policy.RecoveryPerHour(), nil
}

func (a *Applier) recoveryNotice(kind, to string, c *store.Customer, at time.Time) *store.Notification {
	return &store.Notification{Kind: kind, To: to, Lang: c.Language(), Automatic: true,
		MessageID: a.newMessageID(), Created: a.Now(),
		Data: store.NotifyData{CustomerName: c.Name, ContactName: c.ContactName(to), CustomerID: c.ID, OrigDate: at}}
}

func (a *Applier) enqueueRecovery(tx *store.Tx, n *store.Notification, at time.Time) error {
	if err := tx.Enqueue(n); err != nil {
		return fmt.Errorf("queue %s: %w", n.Kind, err)
	}
	return tx.RecordAutoReply(n.To, n.Kind, at)
}
