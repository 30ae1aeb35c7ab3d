package policy

import (
	"fmt"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/parse"
)

// The customer's site: a ticket or a reply given on a form goes through the same rules as an
// email (R10–R14), with one difference a form allows: a choice the rules refuse (urgent on
// SLA24, postpaid where only prepaid is allowed, a limit passed) is refused on the form, with
// why, and nothing is stored — the customer is there to choose again. By email the same
// requests are handled as normal, or held for staff, and the customer told (R11–R13).

// Contact choices of the site's new-ticket form (R13, R14).
const (
	ContactSite             = "site"              // the answer waits on the site; an email says so
	ContactEmail            = "email"             // the answer is emailed
	ContactCallbackPrepaid  = "callback-prepaid"  // a callback (phone or AnyDesk), paid in advance
	ContactCallbackPostpaid = "callback-postpaid" // a callback, paid afterwards (SLA8 and up, not in arrears)
)

// Contacts lists the contact choices in the form's order.
func Contacts() []string {
	return []string{ContactSite, ContactEmail, ContactCallbackPrepaid, ContactCallbackPostpaid}
}

// WebChoices are what the customer chose on the new-ticket form.
type WebChoices struct {
	Urgent  bool
	Contact string // one of Contacts
}

// Refusal codes: why the site refuses a form.
const (
	RefuseUrgentSLA24 = "urgent_sla24" // R12: urgent and SLA24 do not go together
	RefusePostpaid    = "postpaid"     // R13: SLA24 and arrears choose prepaid only
	RefuseContact     = "contact"      // not one of Contacts
	RefuseLimit       = "limit"        // R11: an SLA24 limit (Limit says which)
	RefuseLapsed      = "sla24_lapsed" // R21: the free status lapsed; no new tickets
)

// Refusal is why a form is refused; nothing is stored.
type Refusal struct {
	Code  string
	Limit *LimitHit // RefuseLimit
}

func (r *Refusal) Error() string {
	if r.Limit != nil {
		return r.Limit.Describe()
	}
	return "refused: " + r.Code
}

// DecideWebTicket decides a new ticket the customer c asked for on the site: e is the
// submission as an email (from one of c's addresses, as the site writes it), ch the form's
// choices. A refusal stores nothing; otherwise the decision is what an email asking the same
// would get: the plan of R6–R14, the acknowledgement and the staff notice, within the limits
// of automatic mail.
func (p *Policy) DecideWebTicket(c *helpdesk.Customer, ch WebChoices, e *parse.Email, v View) (Decision, *Refusal, error) {
	d := Decision{Customer: c}
	a := asked{urgent: ch.Urgent}
	switch ch.Contact {
	case ContactSite:
		a.followup = helpdesk.FollowupSite
	case ContactEmail:
		a.followup = helpdesk.FollowupEmail
	case ContactCallbackPrepaid:
		a.callback = true
	case ContactCallbackPostpaid:
		a.callback, a.postpaid = true, true
	default:
		return d, &Refusal{Code: RefuseContact}, nil
	}
	// R21: a lapsed customer's new question is no ticket. By email it is held for staff; on
	// the form the customer reads why at once, as for a limit.
	if Lapsed(c, helpdesk.Today(e.Arrival), p.rules.SLA24LapseMonths) {
		return d, &Refusal{Code: RefuseLapsed}, nil
	}
	if a.urgent && !UrgentAllowed(c, e.Arrival) {
		return d, &Refusal{Code: RefuseUrgentSLA24}, nil
	}
	if a.postpaid && !PostpaidAllowed(c, e.Arrival) {
		return d, &Refusal{Code: RefusePostpaid}, nil
	}
	hit, err := p.limitForNewTicket(c, e.Arrival, v)
	if err != nil {
		return d, nil, err
	}
	if hit != nil {
		return d, &Refusal{Code: RefuseLimit, Limit: hit}, nil
	}
	d.Action = ActionNewTicket
	d.Plan = p.planAsked(c, a, e.Arrival)
	d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindAck, To: e.From, Automatic: true})
	if p.rules.StaffList != "" {
		d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindStaffNew, To: p.rules.StaffList})
	}
	d, err = p.limitAutoReplies(d, e, v)
	return d, nil, err
}

// DecideWebReply decides the customer's reply to their ticket t given on the site: the SLA24
// reply limit, and the open-tickets limit when it reopens a closed ticket (R11), as for an
// emailed reply; over a limit it is refused and nothing is stored. t must be c's (the site
// checks; a ticket of another customer is an error here).
func (p *Policy) DecideWebReply(c *helpdesk.Customer, t *helpdesk.Ticket, e *parse.Email, v View) (Decision, *Refusal, error) {
	d := Decision{Customer: c}
	if t.CustomerID != c.ID {
		return d, nil, fmt.Errorf("ticket %d is not customer %d's: %w", t.ID, c.ID, helpdesk.ErrNotFound)
	}
	d.Reopen = t.Status != helpdesk.StatusOpen
	hit, err := p.limitForReply(c, t, e.Arrival, v)
	if err != nil {
		return d, nil, err
	}
	if hit == nil && t.Status == helpdesk.StatusClosed {
		if hit, err = p.limitForOpen(c, e.Arrival, v); err != nil {
			return d, nil, err
		}
	}
	if hit != nil {
		return d, &Refusal{Code: RefuseLimit, Limit: hit}, nil
	}
	d.Action, d.Ticket = ActionReply, t
	if p.rules.StaffList != "" {
		d.Notify = append(d.Notify, Notice{Kind: helpdesk.KindStaffReply, To: p.rules.StaffList})
	}
	return d, nil, nil
}
