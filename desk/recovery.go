package desk

import (
	"cmp"
	"errors"
	"fmt"
	"net/mail"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
)

// Account recovery requests from the website (R16–R18). By email, "wachtwoord vergeten" goes
// through the policy; both paths queue the same notifications under the same limits
// (policy.LimitUnsolicited), and notify issues the tokens when it sends, so a token itself is
// never stored.
//
// The caller answers the requester identically whatever these return: whether an address
// belongs to a customer is revealed only to that address's mailbox (R18).
//
// A login change (R17) is a helpdesk.LoginChange. Knowing a customer number is not
// enough to take the account: the change takes effect only when the new address confirmed
// AND the old login agreed, or staff approved, or the cooling-off period (login_change_cooling)
// passed without the old login or staff cancelling it (policy.LoginVerdict). A customer has
// one pending change at a time, and a new request never cancels it.

// RecoveryResult is what a recovery request did, for the log and /metrics; the requester is
// told none of it (R18).
type RecoveryResult struct {
	Queued     int                  // notifications queued
	Suppressed []policy.Suppression // notifications not sent, and why
	// Detail says, for the operator's log, why nothing was sent when no limit was the reason
	// (an unknown address or customer number, ...); "" when something was queued.
	Detail string
	Change uint64 // the login change created
}

// RequestPasswordReset queues a reset link to the login address of the customer who has
// addr, within the limits of policy.LimitUnsolicited.
func (a *Desk) RequestPasswordReset(tx *store.Tx, addr string, at time.Time) (RecoveryResult, error) {
	var res RecoveryResult
	c, err := tx.CustomerByAddress(addr)
	if errors.Is(err, helpdesk.ErrNotFound) {
		res.Detail = "no customer has the address"
		return res, nil
	}
	if err != nil {
		return res, err
	}
	n := a.recoveryNotice(helpdesk.KindPasswordReset, c.Login(), c, at)
	n.Data.TokenPurpose, n.Data.CustomerID = helpdesk.PurposePassword, c.ID
	if ok, err := a.withinLimits(tx, &res, c.ID, at, n); !ok || err != nil {
		return res, err
	}
	return res, a.enqueueRecovery(tx, &res, c.ID, at, n)
}

// RequestLoginChange starts R17: the customer with that number wants newAddr as their login.
// A confirmation link goes to the new address — a mail that names no customer, number or
// detail, since anyone can ask for it to any address — and a notice to the old login
// address with a link to agree and one to cancel, and a notice to the staff list (which can
// approve or cancel). Nothing is sent when the customer has a pending change already, or when
// any of the mails would pass a limit: all or none.
func (a *Desk) RequestLoginChange(tx *store.Tx, customerID uint64, newAddr string, at time.Time) (RecoveryResult, error) {
	var res RecoveryResult
	parsed, err := mail.ParseAddress(newAddr)
	if err != nil {
		return res, fmt.Errorf("new address %q: %w", newAddr, err)
	}
	newAddr = helpdesk.NormalizeAddress(parsed.Address)
	c, err := tx.Customer(customerID)
	if errors.Is(err, helpdesk.ErrNotFound) {
		res.Detail = fmt.Sprintf("no customer %d", customerID)
		return res, nil
	}
	if err != nil {
		return res, err
	}
	if other, err := tx.CustomerByAddress(newAddr); err == nil && other.ID != c.ID {
		res.Detail = fmt.Sprintf("the new address is customer %d's", other.ID)
		return res, nil
	} else if err != nil && !errors.Is(err, helpdesk.ErrNotFound) {
		return res, err
	}
	if newAddr == c.Login() {
		res.Detail = "the new address is the login already"
		return res, nil
	}
	if _, err := a.SettleLoginChanges(tx, at); err != nil {
		return res, err
	}
	switch p, err := tx.PendingLoginChange(c.ID); {
	case err == nil:
		res.Suppressed = append(res.Suppressed, policy.Suppression{Kind: helpdesk.KindLoginConfirm, Limit: policy.LimitPending,
			Detail: fmt.Sprintf("login change %d of customer %d (to %s, asked %s) is pending; only the old login or staff cancel it",
				p.ID, c.ID, p.NewEmail, p.Requested.Format(time.RFC3339))})
		return res, nil
	case !errors.Is(err, helpdesk.ErrNotFound):
		return res, err
	}

	ch := &helpdesk.LoginChange{CustomerID: c.ID, NewEmail: newAddr, OldLogin: c.Login(), Requested: at,
		Until: at.Add(a.Policy.LoginCooling())}
	// The confirmation greets no one and names nothing of the account: not the customer's
	// name, number, old address or language (the helpdesk's default language).
	confirm := &helpdesk.Notification{Kind: helpdesk.KindLoginConfirm, To: newAddr, Lang: cmp.Or(a.Lang, "nl"), Automatic: true,
		MessageID: a.newMessageID(), Created: a.Now(),
		Data: helpdesk.NotifyData{TokenPurpose: helpdesk.PurposeLogin, Until: ch.Until, OrigDate: at}}
	notice := a.recoveryNotice(helpdesk.KindLoginNotice, c.Login(), c, at)
	notice.Data.NewEmail, notice.Data.Until = newAddr, ch.Until
	notices := []*helpdesk.Notification{confirm, notice}
	if staff := a.Policy.StaffList(); staff != "" {
		notices = append(notices, &helpdesk.Notification{Kind: helpdesk.KindStaffLogin, To: staff, Lang: cmp.Or(a.Lang, "nl"),
			Automatic: true, MessageID: a.newMessageID(), Created: a.Now(),
			Data: helpdesk.NotifyData{CustomerName: c.Name, CustomerID: c.ID, Address: c.Login(), NewEmail: newAddr,
				Until: ch.Until, OrigDate: at}})
	}
	if ok, err := a.withinLimits(tx, &res, c.ID, at, notices...); !ok || err != nil {
		return res, err
	}
	if err := tx.PutLoginChange(ch); err != nil {
		return res, fmt.Errorf("record login change: %w", err)
	}
	res.Change = ch.ID
	for _, n := range notices {
		n.Data.LoginChange = ch.ID
	}
	return res, a.enqueueRecovery(tx, &res, c.ID, at, notices...)
}

// withinLimits checks the notifications of one request against the limits, together: when
// one would pass a limit, none is sent (res says which and why).
func (a *Desk) withinLimits(tx *store.Tx, res *RecoveryResult, customerID uint64, at time.Time, ns ...*helpdesk.Notification) (bool, error) {
	var q policy.Queued
	perAddr := map[string]int{}
	for _, n := range ns {
		q.Address = perAddr[n.To]
		s, err := a.Policy.LimitUnsolicited(tx, n.Kind, n.To, customerID, at, q)
		if err != nil {
			return false, err
		}
		if s != nil {
			res.Suppressed = append(res.Suppressed, *s)
			continue
		}
		perAddr[n.To]++
		q.Customer++
		q.Total++
	}
	return len(res.Suppressed) == 0, nil
}

func (a *Desk) recoveryNotice(kind, to string, c *helpdesk.Customer, at time.Time) *helpdesk.Notification {
	return &helpdesk.Notification{Kind: kind, To: to, Lang: c.Language(), Automatic: true,
		MessageID: a.newMessageID(), Created: a.Now(),
		Data: helpdesk.NotifyData{CustomerName: c.Name, ContactName: c.ContactName(to), CustomerID: c.ID, OrigDate: at}}
}

// enqueueRecovery queues the notifications and counts them where the limits look.
func (a *Desk) enqueueRecovery(tx *store.Tx, res *RecoveryResult, customerID uint64, at time.Time, ns ...*helpdesk.Notification) error {
	for _, n := range ns {
		if err := tx.Enqueue(n); err != nil {
			return fmt.Errorf("queue %s: %w", n.Kind, err)
		}
		if err := recordSent(tx, n.To, n.Kind, customerID, at); err != nil {
			return err
		}
		res.Queued++
	}
	return nil
}

// recordSent counts a notification where the limits look: its address, and the scopes of
// an unsolicited one (policy.Scopes).
func recordSent(tx *store.Tx, to, kind string, customerID uint64, at time.Time) error {
	for _, scope := range append([]string{to}, policy.Scopes(kind, customerID)...) {
		if err := tx.RecordAutoReply(scope, kind, at); err != nil {
			return fmt.Errorf("count %s to %s: %w", kind, scope, err)
		}
	}
	return nil
}

// Redeem statuses (RedeemResult.Status).
const (
	RedeemDone      = "done"      // the password may be set; the login change took effect
	RedeemPending   = "pending"   // the new address confirmed; the change waits (TakesEffect)
	RedeemWaiting   = "waiting"   // the old login agreed; the change waits for the new address
	RedeemCancelled = "cancelled" // the old login cancelled the change
)

// RedeemResult is what a redeemed link did.
type RedeemResult struct {
	Purpose  string // helpdesk.Purpose*
	Customer uint64
	// Login is the customer's login for a password link, and the new login once a login
	// change took effect; "" while it waits (the old login is not told to the new address).
	Login string
	// Status is a Redeem* status, or the outcome of a login change that was settled already
	// (store.LoginApplied, ...).
	Status      string
	TakesEffect time.Time // a pending login change: when it takes effect unless cancelled
	Change      uint64
}

// Redeem uses a recovery link once (store.RedeemToken) and does what it is for, in tx: a
// password link says whose password may be set; a login change's links confirm the new
// address, agree (the old login) or cancel (the old login), and the change takes effect
// when policy.LoginVerdict says so. Every bad link is store.ErrTokenInvalid; a new address
// that belongs to another customer by now is store.ErrAddressTaken (roll back: the link
// stays usable).
func (a *Desk) Redeem(tx *store.Tx, raw string, now time.Time) (RedeemResult, error) {
	t, err := tx.RedeemToken(raw, now)
	if err != nil {
		return RedeemResult{}, err
	}
	res := RedeemResult{Purpose: t.Purpose, Customer: t.CustomerID, Change: t.LoginChange}
	if t.Purpose == helpdesk.PurposePassword {
		c, err := tx.Customer(t.CustomerID)
		if err != nil {
			return res, fmt.Errorf("customer %d of the token: %w", t.CustomerID, err)
		}
		res.Login, res.Status = c.Login(), RedeemDone
		return res, nil
	}
	if t.LoginChange == 0 {
		// A login link of an older version, which changed the login by itself: not honoured.
		return res, fmt.Errorf("%w: a login link without a login change (issued by an earlier version)", store.ErrTokenInvalid)
	}
	ch, err := tx.LoginChange(t.LoginChange)
	if err != nil {
		return res, fmt.Errorf("login change %d of the token: %w", t.LoginChange, err)
	}
	if _, err := a.settle(tx, ch, now); err != nil {
		return res, err
	}
	if !ch.Pending() {
		if t.Purpose == helpdesk.PurposeLogin {
			return res, fmt.Errorf("%w: the login change was %s on %s", store.ErrTokenInvalid, ch.Outcome, ch.Settled.Format(time.RFC3339))
		}
		res.Status = ch.Outcome // the old login learns it was too late, or done already
		return res, nil
	}
	switch t.Purpose {
	case helpdesk.PurposeLogin:
		if other, err := tx.CustomerByAddress(ch.NewEmail); err == nil && other.ID != ch.CustomerID {
			return res, fmt.Errorf("login change %d: %w", ch.ID, store.ErrAddressTaken)
		}
		ch.NewConfirmed = now
	case helpdesk.PurposeLoginAllow:
		ch.OldConfirmed = now
	case helpdesk.PurposeLoginCancel:
		if err := a.settleAs(tx, ch, now, helpdesk.LoginCancelled, "the old login address", "cancelled with the link sent to it"); err != nil {
			return res, err
		}
		res.Status = RedeemCancelled
		return res, nil
	default:
		return res, fmt.Errorf("%w: purpose %q", store.ErrTokenInvalid, t.Purpose)
	}
	if err := tx.PutLoginChange(ch); err != nil {
		return res, err
	}
	applied, err := a.settle(tx, ch, now)
	if err != nil {
		return res, err
	}
	switch {
	case applied:
		res.Status, res.Login = RedeemDone, ch.NewEmail
	case t.Purpose == helpdesk.PurposeLogin:
		res.Status, res.TakesEffect = RedeemPending, ch.Until
	default:
		res.Status = RedeemWaiting
	}
	return res, nil
}

// ApproveLogin is staff approving the customer's pending login change (helpdesk customer
// approve-login, or #approve-login on the staff notice): it takes effect as soon as the new
// address has confirmed — at once when it has. helpdesk.ErrNotFound: none is pending.
func (a *Desk) ApproveLogin(tx *store.Tx, customerID uint64, by string, now time.Time) (*helpdesk.LoginChange, error) {
	ch, err := a.pendingLogin(tx, customerID, now)
	if err != nil {
		return nil, err
	}
	return ch, a.approve(tx, ch, by, now)
}

func (a *Desk) approve(tx *store.Tx, ch *helpdesk.LoginChange, by string, now time.Time) error {
	ch.Approved, ch.ApprovedBy = now, by
	if err := tx.PutLoginChange(ch); err != nil {
		return err
	}
	_, err := a.settle(tx, ch, now)
	return err
}

// CancelLogin is staff cancelling the customer's pending login change. helpdesk.ErrNotFound:
// none is pending.
func (a *Desk) CancelLogin(tx *store.Tx, customerID uint64, by string, now time.Time) (*helpdesk.LoginChange, error) {
	ch, err := a.pendingLogin(tx, customerID, now)
	if err != nil {
		return nil, err
	}
	return ch, a.settleAs(tx, ch, now, helpdesk.LoginCancelled, by, "cancelled by staff")
}

// pendingLogin is the customer's pending login change, settled as far as time goes first.
func (a *Desk) pendingLogin(tx *store.Tx, customerID uint64, now time.Time) (*helpdesk.LoginChange, error) {
	ch, err := tx.PendingLoginChange(customerID)
	if err != nil {
		return nil, err
	}
	if _, err := a.settle(tx, ch, now); err != nil {
		return nil, err
	}
	if !ch.Pending() {
		return nil, fmt.Errorf("%w: the login change was %s on %s", helpdesk.ErrNotFound, ch.Outcome, ch.Settled.Format(time.RFC3339))
	}
	return ch, nil
}

// LoginCommand applies a staff email's #approve-login or #cancel-login (policy.LoginCommand).
func (a *Desk) loginCommand(tx *store.Tx, cmd *policy.LoginCommand, by string, now time.Time) (string, error) {
	ch, err := tx.LoginChange(cmd.Change)
	if err != nil {
		return "", fmt.Errorf("login change %d: %w", cmd.Change, err)
	}
	if !cmd.Approve {
		if err := a.settleAs(tx, ch, now, helpdesk.LoginCancelled, by, "cancelled by staff (#cancel-login)"); err != nil {
			return "", err
		}
		return fmt.Sprintf("login change %d of customer %d cancelled by %s", ch.ID, ch.CustomerID, by), nil
	}
	if err := a.approve(tx, ch, by, now); err != nil {
		return "", err
	}
	if !ch.Pending() {
		return fmt.Sprintf("login change %d of customer %d approved by %s: %s", ch.ID, ch.CustomerID, by, ch.Outcome), nil
	}
	return fmt.Sprintf("login change %d of customer %d approved by %s: takes effect when %s confirms", ch.ID, ch.CustomerID, by, ch.NewEmail), nil
}

// SettleLoginChanges settles every pending login change whose time has come (the cooling-off
// period passed after the new address confirmed; the new address's link ran out) and
// returns when the next may be due (zero: none is pending).
func (a *Desk) SettleLoginChanges(tx *store.Tx, now time.Time) (time.Time, error) {
	pending, err := tx.PendingLoginChanges()
	if err != nil {
		return time.Time{}, err
	}
	var next time.Time
	for _, ch := range pending {
		if _, err := a.settle(tx, ch, now); err != nil {
			return time.Time{}, err
		}
		if due := policy.LoginDue(ch); !due.IsZero() && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	return next, nil
}

// settle applies or expires a pending change when policy.LoginVerdict says so, and reports
// whether it took effect.
func (a *Desk) settle(tx *store.Tx, ch *helpdesk.LoginChange, now time.Time) (bool, error) {
	switch policy.LoginVerdict(ch, now) {
	case policy.LoginExpire:
		return false, a.settleAs(tx, ch, now, helpdesk.LoginExpired, "", "the new address did not confirm in time")
	case policy.LoginApply:
		return a.applyLogin(tx, ch, now)
	}
	return false, nil
}

func (a *Desk) settleAs(tx *store.Tx, ch *helpdesk.LoginChange, now time.Time, outcome, by, detail string) error {
	ch.Settled, ch.Outcome, ch.By, ch.Detail = now, outcome, by, detail
	if err := tx.PutLoginChange(ch); err != nil {
		return fmt.Errorf("login change %d %s: %w", ch.ID, outcome, err)
	}
	return nil
}

// applyLogin makes the change take effect: the new address is the login, and both the old
// and the new login are told. An address that became another customer's fails it.
func (a *Desk) applyLogin(tx *store.Tx, ch *helpdesk.LoginChange, now time.Time) (bool, error) {
	why := "the new address confirmed and the cooling-off period passed"
	switch {
	case !ch.OldConfirmed.IsZero():
		why = "the new address and the old login confirmed"
	case !ch.Approved.IsZero():
		why = "the new address confirmed and " + ch.ApprovedBy + " approved"
	}
	c, err := tx.SetLogin(ch.CustomerID, ch.NewEmail)
	if errors.Is(err, store.ErrAddressTaken) {
		return false, a.settleAs(tx, ch, now, helpdesk.LoginFailed, "", "the new address belongs to another customer by now")
	}
	if err != nil {
		return false, err
	}
	if err := a.settleAs(tx, ch, now, helpdesk.LoginApplied, ch.ApprovedBy, why); err != nil {
		return false, err
	}
	// Whoever was logged in on the site as the customer logs in again, with the new login.
	if _, err := tx.EndSessions(ch.CustomerID); err != nil {
		return false, err
	}
	for _, to := range []string{ch.OldLogin, ch.NewEmail} {
		if to == "" {
			continue
		}
		n := a.recoveryNotice(helpdesk.KindLoginChanged, to, c, now)
		n.Data.NewEmail, n.Data.Address, n.Data.LoginChange = ch.NewEmail, ch.OldLogin, ch.ID
		if err := tx.Enqueue(n); err != nil {
			return false, fmt.Errorf("queue %s: %w", n.Kind, err)
		}
		if err := recordSent(tx, to, n.Kind, c.ID, now); err != nil {
			return false, err
		}
	}
	return true, nil
}
