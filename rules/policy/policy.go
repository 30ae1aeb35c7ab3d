// Package policy decides what an inbound email becomes — a new ticket, a reply on one, a staff
// answer, or a held email with a reason — and which notifications that implies. It implements
// the classification of R1, R10 and R15 and the loop rules of RFC 3834.
//
// Policy is pure: Decide reads only the email, a read-only View of the customer's state (read
// inside the desk's transaction, so decisions are race-free and restart-proof) and the Rules. It
// does no I/O, reads no clock and keeps no state. It imports only the root package's records
// (the View returns them), rules/calendar and mail/*: never the store, bbolt, go-imap or go-smtp.
package policy

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/authres"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/rules/calendar"
)

// View is what Decide may read of the store.
type View interface {
	CustomerByAddress(addr string) (*helpdesk.Customer, error)
	Ticket(id uint64) (*helpdesk.Ticket, error)
	// TicketByMessageID finds the ticket a Message-ID belongs to. Ids come as their sender
	// wrote them; the view compares them in any case (helpdesk.CanonicalMessageID).
	TicketByMessageID(msgID string) (uint64, error)
	// CustomerTickets returns a customer's tickets, for the SLA24 limits (R11).
	CustomerTickets(customerID uint64) ([]*helpdesk.Ticket, error)
	// CustomerReplies counts the customer's emails on a ticket's thread after the first (every
	// one stored, automatic ones included), for the SLA24 reply limit (R11).
	CustomerReplies(ticketID uint64) (int, error)
	// LimitNoticeSent reports whether the customer was told of a limit on that day.
	LimitNoticeSent(customerID uint64, day helpdesk.Date) (bool, error)
	// AutoRepliesSince counts automatic replies of a kind ("" any) to an address since a moment.
	AutoRepliesSince(addr, kind string, since time.Time) (int, error)
	// NotificationByMessageID finds the notification a delivery report is about (the id
	// compared in any case, as TicketByMessageID).
	NotificationByMessageID(msgID string) (*helpdesk.Notification, error)
	// BouncedUntil says until when automatic mail to an address is suspended after a bounce.
	BouncedUntil(addr string) (time.Time, error)
	// LoginChange returns a login change (R17), for a staff command on it.
	LoginChange(id uint64) (*helpdesk.LoginChange, error)
}

// Rules configure Decide.
type Rules struct {
	// Staff are the staff addresses (lower case): their email to a ticket is its answer.
	Staff []string
	// TicketTag names tickets in subjects: "[Infobits #123]" for tag "Infobits".
	TicketTag string
	// Own are the gateway's own addresses; mail from them is a loop, never answered.
	Own []string
	// Calendars count working hours (R6–R9); nil: no deadlines or rate zones.
	Calendars *calendar.Set
	// Limits are the SLA24 limits (R11).
	Limits Limits
	// SLA24LapseMonths: the free status lapses after this many months without paid support
	// (R21, see Lapsed); 0 never.
	SLA24LapseMonths int
	// UrgentWords mark an urgent request in the subject (R12), CallbackWords a callback
	// request (R13); matched as whole words, in any case.
	UrgentWords, CallbackWords []string
	// AutoRepliesPerHour bounds the automatic replies to one address (RFC 3834 §2); 0 means
	// 10. The unknown-sender reply goes to an address at most once a day besides.
	AutoRepliesPerHour int
	// AuthServID is the authserv-id of the trusted receiving server, whose Authentication-Results
	// fields (RFC 8601) at the top of the header are believed (authres.CheckRuns); "" trusts
	// none.
	AuthServID string
	// RequireStaffAuth: a staff email is applied only with a passing result (DMARC pass or
	// aligned DKIM pass) for the staff address's domain from AuthServID.
	RequireStaffAuth bool
	// StaffList is where staff are told of new tickets, customer replies and refused staff
	// email; "" tells no one.
	StaffList string
	// RecoveryPerHour bounds the account mails (R16, R17) to one address per hour; 0 means 3.
	RecoveryPerHour int
	// RecoveryPerCustomer bounds the account mails about one customer per hour; 0 means 6.
	RecoveryPerCustomer int
	// UnsolicitedPerHour bounds, in total, the mail sent in answer to what anyone can ask
	// without proving who they are (Unsolicited kinds) per hour; 0 means 60.
	UnsolicitedPerHour int
	// StaffNoticesPerHour bounds the staff_error and staff_refused notices to one address per
	// hour; 0 means 3.
	StaffNoticesPerHour int
	// LoginCooling is how long a login change waits for the old login to cancel it before it
	// takes effect without its agreement (R17); 0 means 72 hours.
	LoginCooling time.Duration
	// BounceSuppress is how long no automatic mail goes to an address after one of its
	// notifications bounced for good; 0 means 7 days.
	BounceSuppress time.Duration
}

// Action is what an email becomes.
type Action int

// The actions.
const (
	ActionHold        Action = iota // kept for staff with a reason; no ticket message
	ActionNewTicket                 // R10: opens a ticket for the customer
	ActionReply                     // R10: added to the customer's ticket
	ActionStaffAnswer               // staff's answer to a ticket
	ActionBounce                    // a delivery report about one of our notifications
	numActions                      // keep last: the count of the actions above
)

// Actions lists every action, for those that enumerate the outcomes (the /metrics labels).
func Actions() []Action {
	out := make([]Action, numActions)
	for i := range out {
		out[i] = Action(i)
	}
	return out
}

func (a Action) String() string {
	switch a {
	case ActionNewTicket:
		return "new_ticket"
	case ActionReply:
		return "reply"
	case ActionStaffAnswer:
		return "staff_answer"
	case ActionBounce:
		return "bounce"
	}
	return "held"
}

// Notice is a notification the decision implies.
type Notice struct {
	Kind      string // helpdesk.Kind*
	To        string
	Automatic bool // an automatic reply (RFC 3834 Auto-Submitted: auto-replied)
}

// Decision is the outcome of Decide.
type Decision struct {
	Action   Action
	Customer *helpdesk.Customer // the sender, for new tickets and replies
	Ticket   *helpdesk.Ticket   // the ticket replied to or answered
	// Reopen: a reply to a closed or answered ticket sets it open again.
	Reopen bool
	// HoldReason is a helpdesk.Held* code, HoldDetail a sentence for staff.
	HoldReason, HoldDetail string
	// Automatic: the email is machine-generated (RFC 3834); it is recorded, never answered.
	Automatic       bool
	AutomaticReason string
	Notify          []Notice
	// Plan is the SLA policy's decision for a new ticket.
	Plan Plan
	// Limit is the SLA24 limit an email was held for (R11).
	Limit *LimitHit
	// Suppressed says which notifications were not sent, and why (rate limits, loops).
	Suppressed []Suppression
	// Login is a staff email's command on a login change (R17); the email is held as a
	// recovery email, handled.
	Login *LoginCommand
	// Staff is what a staff email does to its ticket.
	Staff *StaffAction
	// StaffError is why a staff email was not applied (for the reply to the staff member).
	StaffError string
	// Auth is what the trusted server's Authentication-Results said of the sender;
	// AuthReason the same in parts, for a notice that says it in its own language.
	Auth       string
	AuthReason authres.Reason
	// Bounce is the notification a delivery report is about (ActionBounce).
	Bounce *Bounce
	// Unbounce is the sender's address (lower case) when its automatic mail was suspended after
	// a bounce and this email, a person's mail taken in as the customer's, ends that: the
	// customer reads the mailbox again. The email's own acknowledgement is sent.
	Unbounce string
}

// Bounce links a delivery report (RFC 3464) to the notification it is about.
type Bounce struct {
	Notification *helpdesk.Notification
	Report       *parse.Report
	Permanent    bool
	// SuppressUntil: after a permanent failure, no automatic mail to the address until then.
	SuppressUntil time.Time
}

// Policy applies Rules; build it once with New. It is safe for concurrent use.
type Policy struct {
	rules    Rules
	refFind  *regexp.Regexp // finds a ticket reference in a subject
	refStrip *regexp.Regexp // removes it for subject comparison
}

// New compiles the rules.
func New(r Rules) *Policy {
	p := &Policy{rules: r}
	if r.TicketTag != "" {
		tag := regexp.QuoteMeta(r.TicketTag)
		// The tag must start a word: "[XInfobits #12]" names no ticket of ours.
		p.refFind = regexp.MustCompile(`(?i)(?:\[\s*|\b)` + tag + `\s*#\s*([0-9]{1,18})\b`)
		p.refStrip = regexp.MustCompile(`(?i)(?:\[\s*|\b)` + tag + `\s*#\s*[0-9]+\s*\]?`)
	}
	return p
}

// Decide classifies one email. An error means the View failed, not that the email is bad:
// a bad email is a Decision to hold it.
func (p *Policy) Decide(e *parse.Email, v View) (Decision, error) {
	return p.decide(e, v, decideOpts{})
}

// DecideRelease is Decide with the SLA24 limits lifted: what a held email becomes when staff
// release it (R11). A lapsed customer's email opens a ticket as SLA24 (R21): the operator's
// fair-use decision. With trustStaff, an email from a staff address is taken as theirs without
// a passing authentication result: the operator vouches for it (ticket release -as-staff).
// Fields that occur more than once are no reason to hold it: the operator vouches for the
// email, and the caller reads the copies a DKIM signature covers (Email.ReadBottomMost).
func (p *Policy) DecideRelease(e *parse.Email, v View, trustStaff bool) (Decision, error) {
	return p.decide(e, v, decideOpts{noLimits: true, trustStaff: trustStaff, duplicatesOK: true})
}

// DecideHistory is Decide for an email of the mailbox's past (an archive import, old backlog
// at a first sync): the SLA24 limits of R11 and the lapse of R21 ration today's work, and that
// email was answered when it came, so they are lifted for it as for a release.
func (p *Policy) DecideHistory(e *parse.Email, v View) (Decision, error) {
	return p.decide(e, v, decideOpts{noLimits: true})
}

// decideOpts are what a release changes about a decision.
type decideOpts struct {
	noLimits     bool // the SLA24 limits (R11) and the lapse (R21) are lifted
	trustStaff   bool // a staff From is believed without an authentication result
	duplicatesOK bool // once-only fields that occur twice do not hold the email
}

func (p *Policy) decide(e *parse.Email, v View, o decideOpts) (Decision, error) {
	d, err := p.classify(e, v, o)
	if err != nil {
		return d, err
	}
	if !o.noLimits && !d.Automatic && d.Customer != nil && (d.Action == ActionNewTicket || d.Action == ActionReply) {
		// Live mail only: a release is the operator's decision about an old email, and the
		// mailbox's past says nothing about the mailbox today.
		until, err := v.BouncedUntil(e.From)
		if err != nil {
			return d, fmt.Errorf("bounces of %s: %w", e.From, err)
		}
		if e.Arrival.Before(until) {
			d.Unbounce = helpdesk.NormalizeAddress(e.From)
		}
	}
	return p.limitAutoReplies(d, e, v)
}

// limitAutoReplies drops automatic replies that would answer an address too often: at most
// AutoRepliesPerHour an hour, and the unknown-sender reply once a day (a stranger who writes
// ten times learns it once; a forged sender is not flooded); unsolicited mail within its
// limits (LimitUnsolicited); staff notices at most StaffNoticesPerHour to one address an hour
// (StaffNotice). Staff answers are not automatic and never dropped. A customer who asked
// for no automatic replies gets none.
func (p *Policy) limitAutoReplies(d Decision, e *parse.Email, v View) (Decision, error) {
	perHour := p.rules.AutoRepliesPerHour
	if perHour <= 0 {
		perHour = 10
	}
	kept := d.Notify[:0:0]
	sentNow := map[string]int{}
	var queued Queued
	suppress := func(n Notice, limit, detail string) {
		d.Suppressed = append(d.Suppressed, Suppression{Kind: n.Kind, Limit: limit, Detail: detail})
	}
	for _, n := range d.Notify {
		if StaffNotice(n.Kind) {
			s, err := p.limitStaffNotice(v, n, e, sentNow[n.Kind+" "+n.To])
			if err != nil {
				return d, err
			}
			if s != nil {
				d.Suppressed = append(d.Suppressed, *s)
				continue
			}
			sentNow[n.Kind+" "+n.To]++
		}
		if !n.Automatic {
			kept = append(kept, n)
			continue
		}
		if e.SuppressAutoReply() {
			suppress(n, LimitAsked, "the email asks for no automatic replies")
			continue
		}
		until, err := v.BouncedUntil(n.To)
		if err != nil {
			return d, fmt.Errorf("bounces of %s: %w", n.To, err)
		}
		if e.Arrival.Before(until) && (d.Unbounce == "" || helpdesk.NormalizeAddress(n.To) != d.Unbounce) {
			suppress(n, LimitBounced, fmt.Sprintf("mail to %s bounced; none until %s", n.To, until.Format(time.DateOnly)))
			continue
		}
		hour, err := v.AutoRepliesSince(n.To, "", e.Arrival.Add(-time.Hour))
		if err != nil {
			return d, fmt.Errorf("automatic replies to %s: %w", n.To, err)
		}
		if hour+sentNow[n.To] >= perHour {
			suppress(n, LimitAddress, fmt.Sprintf("%d automatic replies to %s in the last hour", hour, n.To))
			continue
		}
		if n.Kind == helpdesk.KindUnknownSender {
			day, err := v.AutoRepliesSince(n.To, n.Kind, e.Arrival.Add(-24*time.Hour))
			if err != nil {
				return d, fmt.Errorf("automatic replies to %s: %w", n.To, err)
			}
			if day > 0 {
				suppress(n, LimitAddress, "already told "+n.To+" today")
				continue
			}
		}
		var customer uint64
		if d.Customer != nil {
			customer = d.Customer.ID
		}
		s, err := p.LimitUnsolicited(v, n.Kind, n.To, customer, e.Arrival, queued)
		if err != nil {
			return d, err
		}
		if s != nil {
			d.Suppressed = append(d.Suppressed, *s)
			continue
		}
		if Unsolicited(n.Kind) {
			queued.Address++
			queued.Customer++
			queued.Total++
		}
		sentNow[n.To]++
		kept = append(kept, n)
	}
	d.Notify = kept
	return d, nil
}

func (p *Policy) classify(e *parse.Email, v View, o decideOpts) (Decision, error) {
	noLimits := o.noLimits
	r := p.rules
	d := Decision{}
	d.AutomaticReason = Automatic(e, r.Own)
	d.Automatic = d.AutomaticReason != ""

	hold := func(reason, detail string) (Decision, error) {
		d.Action, d.HoldReason, d.HoldDetail = ActionHold, reason, detail
		return d, nil
	}
	if e.Err != nil {
		return hold(helpdesk.HeldUnparseable, "the email could not be read as MIME: "+e.Err.Error())
	}
	if len(e.Duplicates) > 0 && !o.duplicatesOK {
		// A staff member's genuine, DKIM-signed "Lunch vrijdag?" with "Subject:
		// [Infobits #2]" added on top answered another customer's ticket: the gateway read the
		// topmost Subject, the DKIM verifier signed the bottom-most, so DMARC passed. Which copy
		// the sender meant is unknowable; staff decide.
		return hold(helpdesk.HeldDuplicateHeader, duplicateDetail(e))
	}
	switch {
	case e.FromCount == 0:
		return hold(helpdesk.HeldNoSender, "the email has no From field")
	case e.From == "" && e.FromCount == 1:
		// No address is guessed out of a display name, a comment or an encoded word.
		return hold(helpdesk.HeldNoSender, fmt.Sprintf("the From field %s is no RFC 5322 address; no address is guessed from it", quoteCut(e.Get("From"))))
	case e.From == "":
		return hold(helpdesk.HeldNoSender, "the From field does not parse as RFC 5322 addresses; no address is guessed from it")
	case e.FromCount > 1:
		return hold(helpdesk.HeldNoSender, fmt.Sprintf("the From header names %d addresses; the sender is ambiguous", e.FromCount))
	}
	auth, why := authres.None, authres.Reason{Code: authres.ReasonNotConfigured}
	if r.AuthServID != "" {
		// The run of trusted fields at the top, not only the topmost (OpenDKIM and
		// OpenDMARC write one each).
		auth, why = authres.ExplainRuns(e.Runs("Authentication-Results"), r.AuthServID, domainOf(e.From))
	}
	authReason := why.String()
	d.Auth, d.AuthReason = authReason, why

	// R10 (only the customer or staff add to a ticket): a report whose From fails
	// DMARC at the trusted server is forged — filed as a bounce it would put the forger's text
	// on the customer's thread and mark their notification failed, suspending their mail. It
	// is held below like any other failing email (spoofed; staff_unverified from staff).
	if d.Automatic && e.Report != nil && auth != authres.Fail {
		// A delivery report about one of our notifications goes with that notification (and
		// its ticket), never into a new ticket, and is never answered.
		for _, id := range e.Report.MessageIDs {
			n, err := v.NotificationByMessageID(id)
			if errors.Is(err, helpdesk.ErrNotFound) {
				continue
			}
			if err != nil {
				return d, fmt.Errorf("notification of a delivery report: %w", err)
			}
			b := &Bounce{Notification: n, Report: e.Report, Permanent: e.Report.Permanent()}
			if b.Permanent {
				b.SuppressUntil = e.Arrival.Add(cmp.Or(r.BounceSuppress, 7*24*time.Hour))
			}
			d.Action, d.Bounce = ActionBounce, b
			return d, nil
		}
	}
	if slices.Contains(r.Own, e.From) {
		return hold(helpdesk.HeldAutomatic, "the email comes from the gateway's own address (mail loop)")
	}
	if !d.Automatic {
		// A mailbox that sends what it gets back "as itself" strips the RFC 3834
		// markers but keeps the Message-ID: one of our own notifications is never answered.
		own, err := ownNotification(e, v)
		if err != nil {
			return d, fmt.Errorf("notification of Message-ID %s: %w", e.MessageID, err)
		}
		if own {
			d.Automatic, d.AutomaticReason = true, "one of the gateway's own notifications, sent back (mail loop)"
		}
	}

	if slices.Contains(r.Staff, e.From) {
		if o.trustStaff && auth != authres.Pass {
			auth, authReason = authres.Pass, "released as a staff answer by the operator"
			d.Auth = authReason
		}
		return p.staff(d, e, v, auth, authReason)
	}
	if auth == authres.Fail {
		// The From claims an address its domain's DMARC policy says it may not use: no ticket,
		// no reply in the customer's name, and no answer to the forged address.
		return hold(helpdesk.HeldSpoofed, "the sender's domain failed authentication: "+authReason)
	}
	if p.IsRecoverySubject(e.Subject) {
		return p.recovery(d, e, v)
	}

	c, err := v.CustomerByAddress(e.From)
	if errors.Is(err, helpdesk.ErrNotFound) {
		// R15: no ticket; tell the sender how to get access, unless that would answer a machine.
		d.Action, d.HoldReason = ActionHold, helpdesk.HeldUnknownSender
		d.HoldDetail = fmt.Sprintf("no customer has the address %s", e.From)
		if d.Automatic {
			d.HoldDetail += "; not answered: " + d.AutomaticReason
		} else {
			d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindUnknownSender, To: e.From, Automatic: true})
		}
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("look up sender %s: %w", e.From, err)
	}
	d.Customer = c

	t, err := p.referencedTicket(e, v, c.ID)
	if err != nil {
		return d, err
	}
	if t != nil {
		// An out-of-office reply to staff's answer is recorded on the thread (it gets no
		// answer and does not reopen the ticket), and like every reply it counts against the
		// SLA24 reply limit (seen in practice: 12 Auto-Submitted replies were all added past a
		// limit of 5).
		d.Reopen = t.Status != helpdesk.StatusOpen && !d.Automatic
		if !noLimits {
			hit, err := p.limitForReply(c, t, e.Arrival, v)
			if err != nil {
				return d, err
			}
			if hit == nil && d.Reopen && t.Status == helpdesk.StatusClosed {
				// Reopening a closed ticket makes it an open one again.
				hit, err = p.limitForOpen(c, e.Arrival, v)
				if err != nil {
					return d, err
				}
			}
			if hit != nil {
				d.Reopen = false
				return p.holdOverLimit(d, c, hit, e, v)
			}
		}
		d.Action, d.Ticket = ActionReply, t
		if r.StaffList != "" && !d.Automatic {
			d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindStaffReply, To: r.StaffList})
		}
		return d, nil // R10: a customer's reply gets no automatic message
	}
	if d.Automatic {
		return hold(helpdesk.HeldAutomatic, "machine-generated email that names no ticket of the sender: "+d.AutomaticReason)
	}
	// R21: a lapsed customer's new question is kept for staff, not made a ticket. Their
	// replies to their tickets (above) still reach staff.
	if !noLimits && Lapsed(c, helpdesk.Today(e.Arrival), r.SLA24LapseMonths) {
		return p.holdLapsed(d, c, e, v)
	}
	if !noLimits {
		hit, err := p.limitForNewTicket(c, e.Arrival, v)
		if err != nil {
			return d, err
		}
		if hit != nil {
			return p.holdOverLimit(d, c, hit, e, v)
		}
	}
	d.Action = ActionNewTicket
	d.Plan = p.plan(c, e.Subject, e.Arrival)
	d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindAck, To: e.From, Automatic: true})
	if r.StaffList != "" {
		d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindStaffNew, To: r.StaffList})
	}
	return d, nil
}

// duplicateDetail is the held detail of an email with once-only fields that occur more than
// once: which, how often, and the copies of the Subject and From (quoted, cut short).
func duplicateDetail(e *parse.Email) string {
	var parts []string
	for _, name := range e.Duplicates {
		vs := e.Values(name)
		p := fmt.Sprintf("%d %s fields", len(vs), name)
		if name == "Subject" || name == "From" {
			var qs []string
			for _, v := range vs {
				qs = append(qs, quoteCut(v))
			}
			p += " (" + strings.Join(qs, ", ") + ")"
		}
		parts = append(parts, p)
	}
	return "the header has " + strings.Join(parts, ", ") + ", where RFC 5322 allows one: mail readers and DKIM " +
		"disagree on which counts; a release reads the bottom-most (the one a DKIM signature covers)"
}

// quoteCut quotes header text for a staff sentence: Go syntax (control and bidi characters
// escaped), at most 120 bytes of it.
func quoteCut(s string) string {
	const max = 120
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

// staff decides a staff email: only with a passing authentication result for the
// staff member's domain from the trusted server (unless that check is off), only to a ticket,
// and only when every command in it can be applied.
func (p *Policy) staff(d Decision, e *parse.Email, v View, auth authres.Verdict, authReason string) (Decision, error) {
	r := p.rules
	hold := func(reason, detail string) (Decision, error) {
		d.Action, d.HoldReason, d.HoldDetail = ActionHold, reason, detail
		return d, nil
	}
	// An explicit fail is never applied, with the check on or off.
	if (r.RequireStaffAuth && auth != authres.Pass) || auth == authres.Fail {
		d, _ = hold(helpdesk.HeldStaffUnverified, "a staff From without a passing authentication result: "+authReason)
		if r.StaffList != "" && !d.Automatic {
			// Automatic: a flood of forged staff mail reaches the list at the hourly limit.
			d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindStaffRefused, To: r.StaffList, Automatic: true})
		}
		return d, nil
	}
	if d.Automatic {
		// A staff member's out-of-office reply is not an answer to the customer.
		return hold(helpdesk.HeldAutomatic, "machine-generated email from a staff address: "+d.AutomaticReason)
	}
	if cmd, ok := loginCommandLine(e.Text); ok {
		return p.staffLogin(d, e, v, cmd)
	}
	t, err := p.referencedTicket(e, v, 0)
	if err != nil {
		return d, err
	}
	if t == nil {
		d, _ = hold(helpdesk.HeldStaffNoTicket, "a staff email that names no ticket: put the ticket reference in the subject or reply to the customer's email")
		d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindStaffError, To: e.From})
		return d, nil
	}
	a, err := ParseStaffText(e.Text, r.Staff)
	if err != nil {
		d, _ = hold(helpdesk.HeldStaffCommand, "not applied: "+err.Error())
		d.StaffError = err.Error()
		d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindStaffError, To: e.From})
		return d, nil
	}
	d.Action, d.Ticket, d.Staff = ActionStaffAnswer, t, &a
	if a.Text != "" && !a.Note {
		c, err := v.CustomerByAddress(t.Address)
		if err != nil && !errors.Is(err, helpdesk.ErrNotFound) {
			return d, err
		}
		// R14: with "answer via the site" the customer is told an answer waits there.
		kind := helpdesk.KindAnswer
		if t.Followup == helpdesk.FollowupSite || (c != nil && c.AnswerBy() == helpdesk.AnswerSite && t.Followup != helpdesk.FollowupEmail) {
			kind = helpdesk.KindAnswerSite
		}
		d.Notify = append(d.Notify, Notice{Kind: kind, To: t.Address})
	}
	return d, nil
}

// recovery handles "wachtwoord vergeten" by email (R16): a reset link goes to the login
// address when the sender is a customer's address, and nothing at all otherwise — the
// sender learns nothing either way (R18). The request itself is kept as held.
func (p *Policy) recovery(d Decision, e *parse.Email, v View) (Decision, error) {
	d.Action, d.HoldReason = ActionHold, helpdesk.HeldRecovery
	c, err := v.CustomerByAddress(e.From)
	if errors.Is(err, helpdesk.ErrNotFound) {
		d.HoldDetail = "password reset asked for " + e.From + ", which is no customer's address: nothing was sent (R18)"
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("look up sender %s: %w", e.From, err)
	}
	if d.Automatic {
		d.HoldDetail = "an automatic email asking for a password reset: nothing was sent"
		return d, nil
	}
	s, err := p.LimitUnsolicited(v, helpdesk.KindPasswordReset, c.Login(), c.ID, e.Arrival, Queued{})
	if err != nil {
		return d, err
	}
	if s != nil {
		d.HoldDetail = fmt.Sprintf("password reset asked for customer %d: not sent, %s", c.ID, s.Detail)
		d.Suppressed = append(d.Suppressed, *s)
		return d, nil
	}
	d.Customer = c
	d.HoldDetail = fmt.Sprintf("password reset asked for customer %d: a link was sent to the login address", c.ID)
	d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindPasswordReset, To: c.Login(), Automatic: true})
	return d, nil
}

func (p *Policy) recoveryPerHour() int {
	if p.rules.RecoveryPerHour > 0 {
		return p.rules.RecoveryPerHour
	}
	return 3
}

// holdOverLimit holds an email over an SLA24 limit (R11): kept for staff, and the customer
// told which limit and how SLA8 lifts it — at most once per customer per day.
func (p *Policy) holdOverLimit(d Decision, c *helpdesk.Customer, hit *LimitHit, e *parse.Email, v View) (Decision, error) {
	d.Action, d.HoldReason, d.HoldDetail, d.Limit = ActionHold, helpdesk.HeldOverLimit, hit.Describe(), hit
	if d.Automatic {
		return d, nil
	}
	sent, err := v.LimitNoticeSent(c.ID, helpdesk.Today(e.Arrival))
	if err != nil {
		return d, fmt.Errorf("limit notices of customer %d: %w", c.ID, err)
	}
	if !sent {
		d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindOverLimit, To: e.From, Automatic: true})
	}
	return d, nil
}

// holdLapsed holds a new question of a customer whose free status lapsed (R21): kept for
// staff (a release opens it as SLA24), and the customer told how to get paid support — at
// most once a day (24 hours) per customer, whichever address they write from, and within the
// limits of every automatic reply (limitAutoReplies).
func (p *Policy) holdLapsed(d Decision, c *helpdesk.Customer, e *parse.Email, v View) (Decision, error) {
	d.Action, d.HoldReason = ActionHold, helpdesk.HeldSLA24Lapsed
	d.HoldDetail = LapseDetail(c, p.rules.SLA24LapseMonths)
	since := e.Arrival.Add(-24 * time.Hour)
	told, err := v.AutoRepliesSince(CustomerScope(c.ID), helpdesk.KindSLA24Lapsed, since)
	if err != nil {
		return d, fmt.Errorf("lapse notices of customer %d: %w", c.ID, err)
	}
	if told > 0 {
		d.Suppressed = append(d.Suppressed, Suppression{Kind: helpdesk.KindSLA24Lapsed, Limit: LimitCustomer,
			Detail: fmt.Sprintf("customer %d was told of the lapse in the last 24 hours", c.ID)})
		return d, nil
	}
	d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindSLA24Lapsed, To: e.From, Automatic: true})
	return d, nil
}

// LapseDetail is the sentence for staff about a lapsed customer (R21): since when, and why.
func LapseDetail(c *helpdesk.Customer, lapseMonths int) string {
	since := "paid support ended on " + PaidEnd(c).String()
	if PaidEnd(c).IsZero() {
		since = "the customer was registered on " + helpdesk.Today(c.Created).String() + " without paid support"
	}
	if !c.FreeUntil.IsZero() {
		since += ", and was kept free through " + c.FreeUntil.String()
	}
	return fmt.Sprintf("customer %d: the free status (SLA24) lapsed on %s, %d months after %s (R21); "+
		"a release opens the ticket as SLA24", c.ID, LapseDay(c, lapseMonths), lapseMonths, since)
}

// SLA24LapseMonths is the lapse period of R21 in months (0: never), for the views that show
// the tier a customer is served at.
func (p *Policy) SLA24LapseMonths() int { return max(p.rules.SLA24LapseMonths, 0) }

// referencedTicket finds the ticket an email replies to (R10): the ticket reference in the
// subject, or an In-Reply-To naming a message of the ticket, or a References entry naming one
// together with a subject that matches the ticket's. With owner != 0 only that customer's
// tickets count — a reference to someone else's ticket never attaches an email to it.
func (p *Policy) referencedTicket(e *parse.Email, v View, owner uint64) (*helpdesk.Ticket, error) {
	mine := func(id uint64) (*helpdesk.Ticket, error) {
		t, err := v.Ticket(id)
		if errors.Is(err, helpdesk.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("load ticket %d: %w", id, err)
		}
		if owner != 0 && t.CustomerID != owner {
			return nil, nil
		}
		return t, nil
	}
	if id, ok := p.SubjectTicket(e.Subject); ok {
		if t, err := mine(id); t != nil || err != nil {
			return t, err
		}
	}
	byMsgID := func(ids []string, needSubject bool) (*helpdesk.Ticket, error) {
		for _, id := range ids {
			tid, err := v.TicketByMessageID(id)
			if errors.Is(err, helpdesk.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("look up message-id: %w", err)
			}
			t, err := mine(tid)
			if err != nil {
				return nil, err
			}
			if t != nil && (!needSubject || p.SameSubject(e.Subject, t.Subject)) {
				return t, nil
			}
		}
		return nil, nil
	}
	if t, err := byMsgID(e.InReplyTo, false); t != nil || err != nil {
		return t, err
	}
	// References alone is weak evidence (a new question written as a reply to an old
	// thread): it counts only together with the ticket's subject.
	refs := slices.Clone(e.References)
	slices.Reverse(refs) // the most recent first
	return byMsgID(refs, true)
}

// Ref is the ticket reference the gateway puts in every subject: "[Infobits #123]".
func (p *Policy) Ref(id uint64) string { return fmt.Sprintf("[%s #%d]", p.rules.TicketTag, id) }

// SubjectTicket finds a ticket reference in a subject. It accepts what mail clients make of
// "[Infobits #123]": other case, no space, brackets stripped.
func (p *Policy) SubjectTicket(subject string) (uint64, bool) {
	if p.refFind == nil {
		return 0, false
	}
	m := p.refFind.FindStringSubmatch(subject)
	if m == nil {
		return 0, false
	}
	id, err := strconv.ParseUint(m[1], 10, 64)
	return id, err == nil && id > 0
}

var replyPrefix = regexp.MustCompile(`(?i)^\s*(re|fw|fwd|aw|wg|antw|antwoord|doorst|sv|vs|tr)\s*(\[\d+\])?\s*:\s*`)

// BaseSubject strips reply/forward prefixes (in the languages customers use), the ticket
// reference and extra space, for comparing subjects.
func (p *Policy) BaseSubject(s string) string {
	if p.refStrip != nil {
		s = p.refStrip.ReplaceAllString(s, " ")
	}
	s = strings.TrimSpace(s)
	for {
		t := strings.TrimSpace(replyPrefix.ReplaceAllString(s, ""))
		if t == s {
			break
		}
		s = t
	}
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// SameSubject reports whether two subjects are the same conversation.
func (p *Policy) SameSubject(a, b string) bool {
	x, y := p.BaseSubject(a), p.BaseSubject(b)
	return x != "" && x == y
}

// Automatic returns why an email is machine-generated and must not be answered
// (RFC 3834 §2, RFC 3464 and RFC 5965 reports, mailing lists, and the conventions of mail
// servers that follow none of these), or "".
func Automatic(e *parse.Email, own []string) string {
	if v := strings.ToLower(strings.TrimSpace(e.Get("Auto-Submitted"))); v != "" && !strings.HasPrefix(v, "no") {
		return "Auto-Submitted: " + parse.CleanLine(v)
	}
	switch v := strings.ToLower(strings.TrimSpace(e.Get("Precedence"))); v {
	case "bulk", "junk", "list", "auto_reply":
		return "Precedence: " + v
	}
	for name := range e.Header {
		// RFC 2369/2919 list headers, and list managers' own.
		if strings.HasPrefix(name, "List-") {
			return name + " header (mailing list)"
		}
	}
	for _, h := range []string{"X-Autoreply", "X-Autorespond", "X-Mlserver", "X-Ml-Name", "X-Loop", "X-Mailing-List"} {
		if len(e.Values(h)) > 0 {
			return h + " header"
		}
	}
	if ct := strings.ToLower(e.Get("Content-Type")); strings.HasPrefix(ct, "multipart/report") {
		return "delivery or disposition report (multipart/report)"
	}
	if r := e.Report; r != nil && (r.Action != "" || r.Feedback) {
		return "delivery or feedback report"
	}
	if e.HasReturnPath && e.ReturnPath == "" {
		return "empty return path (a bounce)"
	}
	for _, who := range []string{e.ReturnPath, e.From} {
		local, _, _ := strings.Cut(who, "@")
		switch withoutSeparators(local) {
		case "mailerdaemon", "postmaster", "noreply", "donotreply", "dontreply", "bounce", "bounces":
			return "sent by " + who
		}
	}
	if e.HasReturnPath && slices.Contains(own, e.ReturnPath) {
		return "sent by the gateway's own address"
	}
	subj := strings.ToLower(e.Subject)
	for _, p := range []string{"auto reply:", "autoreply:", "automatic reply:", "auto-reply:", "automatisch antwoord:", "out of office:", "afwezigheidsbericht:",
		"complaint about message from"} { // the last: Hotmail's old feedback-loop reports
		if strings.HasPrefix(subj, p) {
			return "an automatic reply (subject " + parse.CleanLine(e.Subject) + ")"
		}
	}
	return ""
}

// withoutSeparators is s without '-', '_' and '.': "mailer-daemon", "no_reply" and
// "do.not.reply" are one word. (Not a strings.Replacer: building one on every call cost more
// than the rest of Automatic.)
func withoutSeparators(s string) string {
	if !strings.ContainsAny(s, "-_.") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '-' && c != '_' && c != '.' {
			b = append(b, c)
		}
	}
	return string(b)
}

// TooLargeNotice is the notice that tells the sender of an email above the size limit that it
// was not read (once a day per address at most, under the same limits as every automatic
// reply). The email itself was never fetched: only its envelope sender is known.
func (p *Policy) TooLargeNotice(from string, arrival time.Time, v View) ([]Notice, []Suppression, error) {
	if from == "" || slices.Contains(p.rules.Own, from) {
		return nil, nil, nil
	}
	local, _, _ := strings.Cut(from, "@")
	if local == "mailer-daemon" || local == "postmaster" {
		return nil, nil, nil
	}
	day, err := v.AutoRepliesSince(from, helpdesk.KindTooLarge, arrival.Add(-24*time.Hour))
	if err != nil || day > 0 {
		return nil, nil, err
	}
	d := Decision{Notify: []Notice{{Kind: helpdesk.KindTooLarge, To: from, Automatic: true}}}
	d, err = p.limitAutoReplies(d, &parse.Email{From: from, Arrival: arrival}, v)
	return d.Notify, d.Suppressed, err
}
