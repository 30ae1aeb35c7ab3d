package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/infobits/helpdesk"
)

// Limits are the SLA24 limits of R11; zero means no limit.
type Limits struct {
	TicketsPerMonth  int // new tickets per calendar month (Amsterdam), counted by arrival
	OpenTickets      int // tickets not closed at the same time
	RepliesPerTicket int // customer emails on one ticket after the first
}

// Limit kinds, as the over-limit notification and the held record name them.
const (
	LimitTicketsPerMonth  = "tickets_per_month"
	LimitOpenTickets      = "open_tickets"
	LimitRepliesPerTicket = "replies_per_ticket"
)

// LimitHit describes the SLA24 limit an email ran into.
type LimitHit struct {
	Kind  string
	Limit int
	Count int // how many there already are
}

// Note codes: the sentences the acknowledgement adds about what the policy decided.
const (
	NoteUrgent          = "urgent"            // urgent: before planned work, with a surcharge (R12)
	NoteUrgentSLA24     = "urgent_sla24"      // asked for urgent on SLA24: handled as normal (R12)
	NoteExpired         = "expired"           // the paid tier expired: served as SLA24 (R3)
	NoteCallback        = "callback"          // a callback request was recorded (R13)
	NotePrepaidOnly     = "prepaid_only"      // asked postpaid, only prepaid allowed (R13)
	NoteCallbackNoRight = "callback_no_right" // not maintained by the vendor: no right to a callback (R13)
	NoteFreeSupport     = "free_support"      // philanthropic: no charge (R4)
	NoteAnswerOnSite    = "answer_on_site"    // the answer will wait on the site (R14)
)

// Plan is what the SLA policy decides for a new ticket (R2–R14).
type Plan struct {
	Tier          helpdesk.Tier
	Calendar      string    // store.Calendar*
	Due           time.Time // first-response deadline (R6)
	RateZone      string    // "1", "2" or "closed" at arrival
	Priority      string
	Surcharge     bool
	SurchargeZone int
	Followup      string
	Payment       string
	Notes         []string
	// ValidUntil is the customer's last valid day, for the expired note.
	ValidUntil helpdesk.Date
}

// words splits a subject into lower-case words (letters and digits; "pre-paid" is one word).
func words(s string) []string {
	s = strings.ToLower(strings.ReplaceAll(s, "-", ""))
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// hasWord reports whether the subject's words ws contain one of the markers. A marker is cut
// into words the way the subject is, so "bel-mij" matches "Bel-mij a.u.b." and a phrase such as
// "bel mij" matches those words in a row.
func hasWord(ws []string, markers []string) bool {
	for _, m := range markers {
		mw := words(m)
		if len(mw) == 0 {
			continue
		}
		for i := 0; i+len(mw) <= len(ws); i++ {
			if slices.Equal(ws[i:i+len(mw)], mw) {
				return true
			}
		}
	}
	return false
}

// plan decides tier, calendar, deadline, rate zone, urgency and follow-up of a new ticket
// asked for by email: the subject's words ask for urgent help and a callback (R12, R13).
func (p *Policy) plan(c *helpdesk.Customer, subject string, arrival time.Time) Plan {
	ws := words(subject)
	a := asked{urgent: hasWord(ws, p.rules.UrgentWords), callback: hasWord(ws, p.rules.CallbackWords),
		postpaid: slices.Contains(ws, "postpaid")}
	return p.planAsked(c, a, arrival)
}

// asked is what a customer asked for with a new ticket: in the subject's words (email) or the
// site's form. followup "" is the customer's answer preference (R14).
type asked struct {
	urgent, callback, postpaid bool
	followup                   string // helpdesk.FollowupSite or FollowupEmail; "" the customer's
}

// planAsked is plan for what the customer asked.
func (p *Policy) planAsked(c *helpdesk.Customer, a asked, arrival time.Time) Plan {
	cals := p.rules.Calendars
	eff := servedTier(c, arrival) // a released email of a lapsed customer opens as SLA24 (R21)
	pl := Plan{Tier: eff, Priority: helpdesk.PriorityNormal, ValidUntil: c.ValidUntil}
	if c.Tier.Paid() && !eff.Paid() {
		pl.Notes = append(pl.Notes, NoteExpired) // R3: with expired access you can still create a ticket
	}
	pl.Calendar = CalendarFor(c, arrival)
	if cals != nil {
		cal := cals.Helpdesk
		if pl.Calendar == helpdesk.CalendarContract {
			cal = cals.Zone1
		}
		pl.Due = cal.Deadline(arrival, eff.Hours())
		pl.RateZone = cals.ZoneName(arrival)
	}

	// R12: urgent goes before planned work, with a surcharge; not on SLA24.
	if a.urgent {
		if eff == helpdesk.SLA24 {
			pl.Notes = append(pl.Notes, NoteUrgentSLA24)
		} else {
			pl.Priority = helpdesk.PriorityUrgent
			pl.Notes = append(pl.Notes, NoteUrgent)
			if cals != nil {
				pl.SurchargeZone = cals.NextZone(arrival)
			}
			pl.Surcharge = !c.Philanthropic // R4: free support
		}
	}

	// R13, R14: a callback request, or the customer's answer preference.
	switch {
	case a.callback:
		pl.Followup = helpdesk.FollowupCallback
		// R13: a customer whose system we do not maintain may ask, but has no right to a
		// callback: their notice says so instead of promising the follow-up of R14.
		if c.MaintainedBy() == helpdesk.MaintainerVendor {
			pl.Notes = append(pl.Notes, NoteCallback)
		} else {
			pl.Notes = append(pl.Notes, NoteCallbackNoRight)
		}
		pl.Payment = helpdesk.PaymentPrepaid
		if a.postpaid {
			if !PostpaidAllowed(c, arrival) {
				pl.Notes = append(pl.Notes, NotePrepaidOnly)
			} else {
				pl.Payment = helpdesk.PaymentPostpaid
			}
		}
	case a.followup == helpdesk.FollowupSite || (a.followup == "" && c.AnswerBy() == helpdesk.AnswerSite):
		pl.Followup = helpdesk.FollowupSite
		pl.Notes = append(pl.Notes, NoteAnswerOnSite)
	default:
		pl.Followup = helpdesk.FollowupEmail
	}
	if c.Philanthropic {
		pl.Notes = append(pl.Notes, NoteFreeSupport)
		if pl.Followup == helpdesk.FollowupCallback {
			pl.Payment = "" // R4: no charge, so neither prepaid nor postpaid
		}
	}
	return pl
}

// PostpaidAllowed reports whether a customer may choose a postpaid callback (R13): SLA24
// customers and customers with a payment status can only choose prepaid.
func PostpaidAllowed(c *helpdesk.Customer, at time.Time) bool {
	return servedTier(c, at) != helpdesk.SLA24 && !c.Arrears
}

// UrgentAllowed reports whether a customer may ask for urgent help (R12: urgent and SLA24 do
// not go together).
func UrgentAllowed(c *helpdesk.Customer, at time.Time) bool {
	return servedTier(c, at) != helpdesk.SLA24
}

// limitForNewTicket checks the SLA24 ticket limits of R11 against the customer's tickets, by
// arrival time: tickets created in the same Amsterdam calendar month, tickets not closed.
func (p *Policy) limitForNewTicket(c *helpdesk.Customer, arrival time.Time, v View) (*LimitHit, error) {
	return p.limitForTickets(c, arrival, v, true)
}

// limitForOpen checks the open-tickets limit of R11 alone: for a reply that reopens a closed
// ticket (seen in practice: reopening old tickets side-stepped the limit).
func (p *Policy) limitForOpen(c *helpdesk.Customer, arrival time.Time, v View) (*LimitHit, error) {
	return p.limitForTickets(c, arrival, v, false)
}

// limitForTickets checks the open-tickets limit and, with perMonth, the tickets-per-month one.
func (p *Policy) limitForTickets(c *helpdesk.Customer, arrival time.Time, v View, perMonth bool) (*LimitHit, error) {
	lim := p.rules.Limits
	if !perMonth {
		lim.TicketsPerMonth = 0
	}
	if servedTier(c, arrival) != helpdesk.SLA24 || (lim.TicketsPerMonth <= 0 && lim.OpenTickets <= 0) {
		return nil, nil
	}
	ts, err := v.CustomerTickets(c.ID)
	if err != nil {
		return nil, fmt.Errorf("count tickets of customer %d: %w", c.ID, err)
	}
	ams := helpdesk.Amsterdam()
	ay, am, _ := arrival.In(ams).Date()
	month, open := 0, 0
	for _, t := range ts {
		if y, m, _ := t.Created.In(ams).Date(); y == ay && m == am {
			month++
		}
		if t.Status != helpdesk.StatusClosed {
			open++
		}
	}
	if lim.TicketsPerMonth > 0 && month >= lim.TicketsPerMonth {
		return &LimitHit{Kind: LimitTicketsPerMonth, Limit: lim.TicketsPerMonth, Count: month}, nil
	}
	if lim.OpenTickets > 0 && open >= lim.OpenTickets {
		return &LimitHit{Kind: LimitOpenTickets, Limit: lim.OpenTickets, Count: open}, nil
	}
	return nil, nil
}

// limitForReply checks the SLA24 reply limit of R11 against every customer email stored on
// the ticket's thread after the first, automatic ones included.
func (p *Policy) limitForReply(c *helpdesk.Customer, t *helpdesk.Ticket, arrival time.Time, v View) (*LimitHit, error) {
	lim := p.rules.Limits.RepliesPerTicket
	if lim <= 0 || servedTier(c, arrival) != helpdesk.SLA24 {
		return nil, nil
	}
	n, err := v.CustomerReplies(t.ID)
	if err != nil {
		return nil, fmt.Errorf("count replies on ticket %d: %w", t.ID, err)
	}
	if n < lim {
		return nil, nil
	}
	return &LimitHit{Kind: LimitRepliesPerTicket, Limit: lim, Count: n}, nil
}

// Describe is a sentence for staff about a limit hit.
func (h *LimitHit) Describe() string {
	switch h.Kind {
	case LimitTicketsPerMonth:
		return fmt.Sprintf("SLA24 limit: %d tickets per calendar month (%d this month)", h.Limit, h.Count)
	case LimitOpenTickets:
		return fmt.Sprintf("SLA24 limit: %d open tickets at a time (%d open)", h.Limit, h.Count)
	}
	return fmt.Sprintf("SLA24 limit: %d replies per ticket (%d so far)", h.Limit, h.Count)
}
