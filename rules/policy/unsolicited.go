package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/parse"
)

// No one can make the gateway flood an inbox, and a customer number is not enough
// to take an account (R17). Mail the gateway sends because someone asked — anyone, without
// proving who they are — is rationed per target address, per customer and in total per hour;
// a staff notice is rationed per recipient; and a login change takes effect only when the
// new address confirmed and the old login agreed, staff approved, or the cooling-off period
// passed without a cancellation.

// Suppression is a notification that was not sent, and why. Limit is one of the Limit*
// codes (the label of the /metrics counter); Detail says it for the log.
type Suppression struct {
	Kind   string
	Limit  string
	Detail string
}

func (s Suppression) String() string { return s.Kind + ": " + s.Detail }

// Why a notification was not sent.
const (
	LimitAddress  = "address"  // too many to that address in the hour (or the day)
	LimitCustomer = "customer" // too many about that customer in the hour
	LimitTotal    = "total"    // too many unsolicited mails in the hour, to anyone
	LimitPending  = "pending"  // a login change of the customer is pending already
	LimitStaff    = "staff"    // too many staff notices to that address in the hour
	LimitBounced  = "bounced"  // mail to the address bounced for good lately
	LimitAsked    = "asked"    // the email asked for no automatic replies
)

// SuppressionLimits lists the Limit* codes, for those that enumerate them (the /metrics
// labels).
func SuppressionLimits() []string {
	return []string{LimitAddress, LimitCustomer, LimitTotal, LimitPending, LimitStaff, LimitBounced, LimitAsked}
}

// Unsolicited reports whether a notification kind answers a request anyone can make without
// proving who they are: a recovery request, a login change (its notices to the old login and
// to staff too), an email from an unknown or forged sender, or an email too large to read.
func Unsolicited(kind string) bool {
	switch kind {
	case helpdesk.KindUnknownSender, helpdesk.KindTooLarge, helpdesk.KindPasswordReset, helpdesk.KindLoginConfirm,
		helpdesk.KindLoginNotice, helpdesk.KindStaffLogin:
		return true
	}
	return false
}

// recoveryKinds are the account mails (R16, R17) counted per address and per customer.
var recoveryKinds = []string{helpdesk.KindPasswordReset, helpdesk.KindLoginConfirm, helpdesk.KindLoginNotice, helpdesk.KindStaffLogin}

// Scopes of the counts besides addresses (View.AutoRepliesSince and the store's
// RecordAutoReply take them where they take an address): a space never occurs in an
// address, so they cannot collide with one.
const TotalScope = "all unsolicited"

// CustomerScope is the scope of the counts about one customer.
func CustomerScope(id uint64) string { return "customer " + strconv.FormatUint(id, 10) }

// Scopes are the scopes a notification of kind counts in, besides its address: an unsolicited
// one in the hourly total, an account mail and the lapse notice of R21 (once a day per
// customer) about its customer.
func Scopes(kind string, customerID uint64) []string {
	var out []string
	if Unsolicited(kind) {
		out = append(out, TotalScope)
	}
	if customerID != 0 && (isRecovery(kind) || kind == helpdesk.KindSLA24Lapsed) {
		out = append(out, CustomerScope(customerID))
	}
	return out
}

func isRecovery(kind string) bool {
	for _, k := range recoveryKinds {
		if k == kind {
			return true
		}
	}
	return false
}

func (p *Policy) recoveryPerCustomer() int { return cmp.Or(max(p.rules.RecoveryPerCustomer, 0), 6) }
func (p *Policy) unsolicitedPerHour() int  { return cmp.Or(max(p.rules.UnsolicitedPerHour, 0), 60) }
func (p *Policy) staffNoticesPerHour() int { return cmp.Or(max(p.rules.StaffNoticesPerHour, 0), 3) }

// LoginCooling is how long a login change waits for the old login to cancel it (R17).
func (p *Policy) LoginCooling() time.Duration {
	return cmp.Or(max(p.rules.LoginCooling, 0), 72*time.Hour)
}

// countKinds counts the notifications of kinds to a scope since a moment.
func countKinds(v View, scope string, kinds []string, since time.Time) (int, error) {
	total := 0
	for _, k := range kinds {
		n, err := v.AutoRepliesSince(scope, k, since)
		if err != nil {
			return 0, fmt.Errorf("notifications to %s: %w", scope, err)
		}
		total += n
	}
	return total, nil
}

// LimitUnsolicited says whether n unsolicited notifications of kind may go out at at: to,
// about customerID (0: none), on top of pending ones of this same request (queued: how many
// are queued already in this request to to, about the customer, in total). Per address: the
// recovery mails (recovery_per_hour), the staff list's aside; per customer: the recovery mails about it
// (recovery_customer_per_hour); in total: every unsolicited mail (unsolicited_per_hour). A
// kind that is not unsolicited is never limited here.
func (p *Policy) LimitUnsolicited(v View, kind, to string, customerID uint64, at time.Time, queued Queued) (*Suppression, error) {
	if !Unsolicited(kind) {
		return nil, nil
	}
	hour := at.Add(-time.Hour)
	// Per address: not the staff list's notices of login changes, which the per-customer
	// and total limits bound.
	if isRecovery(kind) && kind != helpdesk.KindStaffLogin && to != "" {
		n, err := countKinds(v, to, recoveryKinds, hour)
		if err != nil {
			return nil, err
		}
		if limit := p.recoveryPerHour(); n+queued.Address >= limit {
			return &Suppression{Kind: kind, Limit: LimitAddress,
				Detail: fmt.Sprintf("%d account mails to %s in the last hour (recovery_per_hour %d)", n, to, limit)}, nil
		}
	}
	if isRecovery(kind) && customerID != 0 {
		n, err := countKinds(v, CustomerScope(customerID), recoveryKinds, hour)
		if err != nil {
			return nil, err
		}
		if limit := p.recoveryPerCustomer(); n+queued.Customer >= limit {
			return &Suppression{Kind: kind, Limit: LimitCustomer,
				Detail: fmt.Sprintf("%d account mails about customer %d in the last hour (recovery_customer_per_hour %d)", n, customerID, limit)}, nil
		}
	}
	n, err := v.AutoRepliesSince(TotalScope, "", hour)
	if err != nil {
		return nil, fmt.Errorf("unsolicited notifications: %w", err)
	}
	if limit := p.unsolicitedPerHour(); n+queued.Total >= limit {
		return &Suppression{Kind: kind, Limit: LimitTotal,
			Detail: fmt.Sprintf("%d unsolicited mails in the last hour (unsolicited_per_hour %d)", n, limit)}, nil
	}
	return nil, nil
}

// Queued counts what a request queued already, for LimitUnsolicited.
type Queued struct{ Address, Customer, Total int }

// StaffNotice reports whether a kind is a notice to staff sent because of an email (its
// rate is limited per recipient, and none answers an automatic email).
func StaffNotice(kind string) bool {
	return kind == helpdesk.KindStaffError || kind == helpdesk.KindStaffRefused
}

// limitStaffNotice: at most staff_notice_per_hour staff notices of a kind to one address an
// hour, and none about an email that replies to (or resends) one that got a staff notice of
// the kind that day. Seen in practice: a staff mailbox that sent every "Niet verwerkt" notice back as
// itself — with a new Message-ID and without the RFC 3834 markers — looped the gateway five
// times; each copy keeps the notice's In-Reply-To, the email it was about.
func (p *Policy) limitStaffNotice(v View, n Notice, e *parse.Email, sentNow int) (*Suppression, error) {
	count, err := v.AutoRepliesSince(n.To, n.Kind, e.Arrival.Add(-time.Hour))
	if err != nil {
		return nil, fmt.Errorf("staff notices to %s: %w", n.To, err)
	}
	if limit := p.staffNoticesPerHour(); count+sentNow >= limit {
		return &Suppression{Kind: n.Kind, Limit: LimitStaff,
			Detail: fmt.Sprintf("%d %s notices to %s in the last hour (staff_notice_per_hour %d)", count, n.Kind, n.To, limit)}, nil
	}
	for _, id := range append(slices.Clone(e.InReplyTo), e.References...) {
		scope := StaffNoticeScope(n.To, id)
		if scope == "" {
			continue
		}
		told, err := v.AutoRepliesSince(scope, n.Kind, e.Arrival.Add(-24*time.Hour))
		if err != nil {
			return nil, fmt.Errorf("staff notices about %s: %w", id, err)
		}
		if told > 0 {
			return &Suppression{Kind: n.Kind, Limit: LimitStaff,
				Detail: fmt.Sprintf("it answers <%s>, about which %s was told today already (a notice sent back?)", id, n.To)}, nil
		}
	}
	return nil, nil
}

// StaffNoticeScope is the count scope of the staff notices to an address about the email
// with a Message-ID; "" when there is no id.
func StaffNoticeScope(to, msgID string) string {
	if msgID = helpdesk.CanonicalMessageID(msgID); msgID == "" {
		return ""
	}
	return "staff notices to " + helpdesk.NormalizeAddress(to) + " about " + msgID
}

// ownNotification reports whether an email is one of the gateway's own notifications come
// back: its Message-ID is one the gateway sent (a mailbox that redirects what it gets, or
// resends it "as itself"). It is never answered, whatever its headers say.
func ownNotification(e *parse.Email, v View) (bool, error) {
	id := e.MessageID
	if id == "" {
		return false, nil
	}
	_, err := v.NotificationByMessageID(id)
	if errors.Is(err, helpdesk.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// LoginStep is what a login change's state means at a moment (R17).
type LoginStep int

// The steps.
const (
	LoginWaiting LoginStep = iota // not yet: it needs the new address's confirmation, or time
	LoginApply                    // it takes effect now
	LoginExpire                   // the new address did not confirm in time
)

// LoginVerdict decides a pending login change at now: it takes effect when the new address
// confirmed and either the old login confirmed too, or staff approved, or the cooling-off
// period (Until) passed — a cancellation settles it before that. It expires when the new
// address's link ran out unconfirmed (or, when it was never sent, at Until).
func LoginVerdict(ch *helpdesk.LoginChange, now time.Time) LoginStep {
	if !ch.Pending() {
		return LoginWaiting
	}
	if ch.NewConfirmed.IsZero() {
		deadline := ch.ConfirmBy
		if deadline.IsZero() {
			deadline = ch.Until
		}
		if !now.Before(deadline) {
			return LoginExpire
		}
		return LoginWaiting
	}
	if !ch.OldConfirmed.IsZero() || !ch.Approved.IsZero() || !now.Before(ch.Until) {
		return LoginApply
	}
	return LoginWaiting
}

// LoginDue is when LoginVerdict of a pending change may change next by time alone (zero:
// never by time, only by a confirmation).
func LoginDue(ch *helpdesk.LoginChange) time.Time {
	if !ch.Pending() {
		return time.Time{}
	}
	if ch.NewConfirmed.IsZero() {
		if !ch.ConfirmBy.IsZero() {
			return ch.ConfirmBy
		}
		return ch.Until
	}
	return ch.Until
}

// LoginCommand is a staff email's command on a login change: #approve-login or
// #cancel-login, written as a reply to the staff notice of the change.
type LoginCommand struct {
	Change  uint64
	Approve bool // else cancel
}

// loginCommandLine reads a staff email's first line as a login change command.
func loginCommandLine(text string) (cmd string, ok bool) {
	for _, line := range strings.Split(text, "\n") {
		line = strings.ToLower(strings.TrimSpace(line))
		if line == "" {
			continue
		}
		switch f := strings.Fields(line); f[0] {
		case "#approve-login", "#cancel-login":
			return f[0], true
		}
		return "", false
	}
	return "", false
}

// staffLogin decides a staff email whose first line is #approve-login or #cancel-login: a
// reply to the staff notice of a login change (R17), found by its In-Reply-To or References.
// The email is kept as a recovery email (held, handled when the command is applied); a
// command that cannot be applied changes nothing and the staff member is told why.
func (p *Policy) staffLogin(d Decision, e *parse.Email, v View, cmd string) (Decision, error) {
	d.Action, d.HoldReason = ActionHold, helpdesk.HeldRecovery
	refuse := func(why string) (Decision, error) {
		d.HoldReason, d.HoldDetail, d.StaffError = helpdesk.HeldStaffCommand, "not applied: "+why, why
		d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindStaffError, To: e.From})
		return d, nil
	}
	var ch *helpdesk.LoginChange
	for _, id := range append(slices.Clone(e.InReplyTo), e.References...) {
		if id == "" {
			continue
		}
		n, err := v.NotificationByMessageID(id)
		if errors.Is(err, helpdesk.ErrNotFound) {
			continue
		}
		if err != nil {
			return d, fmt.Errorf("notification %s: %w", id, err)
		}
		if n.Kind != helpdesk.KindStaffLogin || n.Data.LoginChange == 0 {
			continue
		}
		if ch, err = v.LoginChange(n.Data.LoginChange); err != nil {
			return d, fmt.Errorf("login change %d: %w", n.Data.LoginChange, err)
		}
		break
	}
	switch {
	case ch == nil:
		return refuse(cmd + " is a reply to the notice of a login change: answer that email, or use helpdesk customer approve-login / cancel-login")
	case !ch.Pending():
		return refuse(fmt.Sprintf("the login change of customer %d to %s is no longer pending: %s on %s", ch.CustomerID,
			ch.NewEmail, ch.Outcome, ch.Settled.Format(time.DateTime)))
	}
	d.Login = &LoginCommand{Change: ch.ID, Approve: cmd == "#approve-login"}
	what := "approve"
	if !d.Login.Approve {
		what = "cancel"
	}
	d.HoldDetail = fmt.Sprintf("%s: %s the login change of customer %d to %s", cmd, what, ch.CustomerID, ch.NewEmail)
	return d, nil
}
