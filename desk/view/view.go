// Package view turns store records into the stable JSON shapes that the CLI prints (and that
// the website's API will serve): field names here are a public contract; add fields, never
// rename them. It reads through a store.Tx and writes nothing. It is also the one place the
// CLI and the API take a customer's effective tier and R3 status line from (StatusOf), so the
// two cannot disagree.
package view

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
)

// Time is a moment as RFC 3339 text in Amsterdam time (the helpdesk's), or "" when unknown.
type Time time.Time

// MarshalJSON writes RFC 3339 or "".
func (t Time) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte(`""`), nil
	}
	return fmt.Appendf(nil, "%q", time.Time(t).In(helpdesk.Amsterdam()).Format(time.RFC3339)), nil
}

// String is the RFC 3339 form, or "-".
func (t Time) String() string {
	if time.Time(t).IsZero() {
		return "-"
	}
	return time.Time(t).In(helpdesk.Amsterdam()).Format(time.RFC3339)
}

// Ticket is a ticket in a list: `messages` is the thread's length.
type Ticket struct {
	ID       uint64 `json:"id"`
	Customer string `json:"customer"` // the customer's login address
	Subject  string `json:"subject"`
	Status   string `json:"status"`
	Priority string `json:"priority"`
	SLA      string `json:"sla"`
	Created  Time   `json:"created"`
	Due      Time   `json:"due"`
	Messages int    `json:"messages"`
	SLAFields
}

// SLAFields are what the SLA policy recorded on a ticket (R6–R14).
type SLAFields struct {
	Calendar      string `json:"calendar"`       // helpdesk or contract: the hours the deadline counts
	RateZone      string `json:"rate_zone"`      // at arrival: "1", "2" or "closed"
	Surcharge     bool   `json:"surcharge"`      // urgent: a surcharge applies (R12)
	SurchargeZone int    `json:"surcharge_zone"` // the zone of the surcharge, 0 when none
	Followup      string `json:"followup"`       // site, email or callback (R13, R14)
	Payment       string `json:"payment"`        // prepaid, postpaid, or "" (not a callback)
	Assignee      string `json:"assignee"`       // the staff member assigned (#assign), or ""
	// FirstResponse is when staff first answered ("" not yet); FirstResponseMet whether that
	// was by the deadline.
	FirstResponse    Time `json:"first_response"`
	FirstResponseMet bool `json:"first_response_met"`
}

// TicketDetail is one ticket with its thread and the notifications sent about it.
type TicketDetail struct {
	ID       uint64 `json:"id"`
	Customer string `json:"customer"`
	Subject  string `json:"subject"`
	Status   string `json:"status"`
	Priority string `json:"priority"`
	SLA      string `json:"sla"`
	Created  Time   `json:"created"`
	Due      Time   `json:"due"`
	SLAFields
	Messages      []Message      `json:"messages"`
	Notifications []Notification `json:"notifications"`
}

// Message is one email of a thread: `in` from the customer, `out` a staff answer.
type Message struct {
	Direction   string       `json:"direction"`
	From        string       `json:"from"`
	FromName    string       `json:"from_name"` // the sender's display name, "" when none
	Date        Time         `json:"date"`
	MessageID   string       `json:"message_id"`
	Subject     string       `json:"subject"`
	Text        string       `json:"text"`
	Attachments []Attachment `json:"attachments"`
}

// Attachment is one attachment of a message. Number is its place among the ticket's files,
// in thread order: `helpdesk ticket attachment TICKET NUMBER` writes it out.
type Attachment struct {
	Number      int    `json:"number"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

// Notification is an automatic or forwarded message about a ticket.
type Notification struct {
	ID       uint64 `json:"id"`
	Kind     string `json:"kind"`
	Ticket   uint64 `json:"ticket"` // 0 for notifications about no ticket
	To       string `json:"to"`
	Subject  string `json:"subject"`
	Status   string `json:"status"` // queued, sent, failed
	Sent     Time   `json:"sent"`
	Attempts int    `json:"attempts"`
	// NextAttempt is when the notifier tries it again ("" when it is not waiting): after a
	// temporary refusal its own time; while the server cannot be reached, the notifier's
	// next try (outbox list fills that in from the running gateway).
	NextAttempt Time   `json:"next_attempt"`
	Error       string `json:"error,omitempty"`
	// AttachNote: what became of attachments that were named instead of enclosed.
	AttachNote string `json:"attach_note,omitempty"`
}

// Customer is a customer record (R1–R5, R13, R14, R19). Fields with a default show it.
type Customer struct {
	ID            uint64   `json:"id"`
	Name          string   `json:"name"`
	Emails        []string `json:"emails"` // the first is the login (R1)
	SLA           string   `json:"sla"`
	ValidUntil    string   `json:"valid_until"` // YYYY-MM-DD, "" for no end date (R3)
	Contract      bool     `json:"contract"`
	Licence       string   `json:"licence"` // infokas-l, infokas-s, infokas-n, tspos, other; "" unknown (R2)
	Philanthropic bool     `json:"philanthropic"`
	Arrears       bool     `json:"arrears"`
	Maintainer    string   `json:"maintainer"` // vendor, third-party or none (R13)
	Phones        []string `json:"phones"`     // registered numbers, +31… (R19); [] when none
	Lang          string   `json:"lang"`       // nl or en
	Answer        string   `json:"answer"`     // email or site (R14)
	// Contacts are the names of the people behind the addresses, by address; {} when none.
	Contacts map[string]string `json:"contacts"`
	// FreeUntil: the operator keeps the free status through this day (R21); "" not kept.
	FreeUntil string `json:"free_until"`
	// PaidEnded: the last day of a paid tier the customer had before SLA24, as recorded
	// (R21); "" none recorded.
	PaidEnded string `json:"paid_ended"`
}

// LoginChange is a request to change a customer's login (R17): "" for what has not happened.
type LoginChange struct {
	ID           uint64 `json:"id"`
	Customer     uint64 `json:"customer"`
	NewEmail     string `json:"new_email"`
	OldLogin     string `json:"old_login"`
	Requested    Time   `json:"requested"`
	Until        Time   `json:"until"` // takes effect then unless cancelled (once confirmed)
	ConfirmBy    Time   `json:"confirm_by"`
	NewConfirmed Time   `json:"new_confirmed"`
	OldConfirmed Time   `json:"old_confirmed"`
	Approved     Time   `json:"approved"`
	ApprovedBy   string `json:"approved_by"`
	Settled      Time   `json:"settled"`
	Outcome      string `json:"outcome"` // "" while pending; applied, cancelled, expired, failed
	By           string `json:"by"`
	Detail       string `json:"detail"`
}

// LoginChangeOf converts a login change.
func LoginChangeOf(c *helpdesk.LoginChange) LoginChange {
	return LoginChange{ID: c.ID, Customer: c.CustomerID, NewEmail: c.NewEmail, OldLogin: c.OldLogin,
		Requested: Time(c.Requested), Until: Time(c.Until), ConfirmBy: Time(c.ConfirmBy),
		NewConfirmed: Time(c.NewConfirmed), OldConfirmed: Time(c.OldConfirmed), Approved: Time(c.Approved),
		ApprovedBy: c.ApprovedBy, Settled: Time(c.Settled), Outcome: c.Outcome, By: c.By, Detail: c.Detail}
}

// Held is an email that did not become a ticket message, with its reason.
type Held struct {
	ID        uint64 `json:"id"`
	MessageID string `json:"message_id"`
	From      string `json:"from"`
	FromName  string `json:"from_name"` // the sender's display name, "" when none
	Subject   string `json:"subject"`
	Reason    string `json:"reason"`
	Detail    string `json:"detail"`
	Received  Time   `json:"received"`
	// Released: staff turned it into a ticket message after all (ticket release); Ticket
	// names the ticket.
	Released   bool   `json:"released"`
	Ticket     uint64 `json:"ticket"`
	ReleasedBy string `json:"released_by,omitempty"`
	// Dismissed: staff marked it handled (ticket held dismiss), by whom and why.
	Dismissed   bool   `json:"dismissed"`
	DismissedAt Time   `json:"dismissed_at"`
	DismissedBy string `json:"dismissed_by,omitempty"`
	DismissNote string `json:"dismiss_note,omitempty"`
	// Reported is when the staff list was told of it ("" not yet, or never for those staff
	// learnt of otherwise).
	Reported Time `json:"reported"`
}

// HeldFilter selects held emails: by default those not handled yet (neither released nor
// dismissed).
type HeldFilter struct {
	All    bool      // also the released and dismissed ones
	Reason string    // only this reason code ("" any)
	Since  time.Time // only those that arrived at or after it (zero: any)
}

// CustomerOf converts a customer record.
func CustomerOf(c *helpdesk.Customer) Customer {
	out := Customer{ID: c.ID, Name: c.Name, Emails: slices.Clone(c.Emails), SLA: string(c.Tier),
		ValidUntil: c.ValidUntil.String(), Contract: c.Contract, Licence: c.Licence,
		Philanthropic: c.Philanthropic, Arrears: c.Arrears, Maintainer: c.MaintainedBy(),
		Phones: append([]string{}, c.Phones...), Lang: c.Language(), Answer: c.AnswerBy(),
		Contacts: maps.Clone(c.Contacts), FreeUntil: c.FreeUntil.String(), PaidEnded: c.PaidEnded.String()}
	if out.Contacts == nil {
		out.Contacts = map[string]string{}
	}
	return out
}

// CustomerStatus is how a customer is served on a day (R3, R21): the answer of
// GET /api/customers/{addr}/status.
type CustomerStatus struct {
	Customer uint64 `json:"customer"`
	SLA      string `json:"sla"`
	// EffectiveSLA is the tier served on the day: SLA24 for an expired paid tier (R3), "none"
	// when the free status has lapsed (R21).
	EffectiveSLA string `json:"effective_sla"`
	ValidUntil   string `json:"valid_until"` // YYYY-MM-DD, "" for no end date
	Status       string `json:"status"`      // the Dutch status line of R3
	// LapsesOn is the first day the free status is lapsed (R21) when it lapses by time and
	// has not yet on the day, or when it has; "" when it does not lapse by time (never, a
	// philanthropic customer, a paid tier without an end date).
	LapsesOn string `json:"lapses_on"`
	// FreeUntil: the operator keeps the free status through this day (R21); "" not kept.
	FreeUntil string `json:"free_until"`
}

// StatusOf is how c is served at the moment at, judged on its day in Amsterdam: the effective
// tier with the free status lapsing after lapseMonths without paid support (0: never) and the
// R3 status line (policy.EffectiveTier, policy.StatusLine). It is the one place the API and the
// customer commands (show, status, list) take them from.
func StatusOf(c *helpdesk.Customer, at time.Time, lapseMonths int) CustomerStatus {
	return CustomerStatus{Customer: c.ID, SLA: cmp.Or(string(c.Tier), string(helpdesk.SLA24)),
		EffectiveSLA: string(policy.EffectiveTier(c, at, lapseMonths)), ValidUntil: c.ValidUntil.String(),
		Status: policy.StatusLine(c, helpdesk.Today(at)), LapsesOn: policy.LapseDay(c, lapseMonths).String(),
		FreeUntil: c.FreeUntil.String()}
}

// CustomerDetail is `customer show -json`: the record, and how it is served on the day.
type CustomerDetail struct {
	Customer
	On           string `json:"on"`            // the day judged, YYYY-MM-DD
	EffectiveSLA string `json:"effective_sla"` // the tier served on that day (R3; "none": R21)
	Status       string `json:"status"`        // the Dutch status line of R3
	LapsesOn     string `json:"lapses_on"`     // as in CustomerStatus (R21)
	// PendingLogin is the login change not settled yet (R17), if any.
	PendingLogin *LoginChange `json:"pending_login,omitempty"`
}

// CustomerDetailOf is c as served at the moment at (StatusOf), with its pending login change
// (nil for none).
func CustomerDetailOf(c *helpdesk.Customer, pending *helpdesk.LoginChange, at time.Time, lapseMonths int) CustomerDetail {
	st := StatusOf(c, at, lapseMonths)
	d := CustomerDetail{Customer: CustomerOf(c), On: helpdesk.Today(at).String(), EffectiveSLA: st.EffectiveSLA,
		Status: st.Status, LapsesOn: st.LapsesOn}
	if pending != nil {
		v := LoginChangeOf(pending)
		d.PendingLogin = &v
	}
	return d
}

// FreeStatus says how the free status (SLA24) stands on the day (R21), for `customer show`:
// lapsed since when, kept free by the operator through when, or when it lapses. "" when it
// does not apply: a paid tier served on the day, or a status that does not lapse by time (a
// philanthropic customer, lapsing off). The days are YYYY-MM-DD, so they compare as text.
func (d CustomerDetail) FreeStatus() string {
	if d.LapsesOn == "" || (d.EffectiveSLA != string(helpdesk.SLA24) && d.EffectiveSLA != string(helpdesk.TierNone)) {
		return ""
	}
	switch {
	case d.EffectiveSLA == string(helpdesk.TierNone):
		return "lapsed since " + d.LapsesOn + " (R21): new questions are held as sla24_lapsed"
	case d.LapsesOn <= d.On:
		return "kept free through " + d.FreeUntil + " (lapsed since " + d.LapsesOn + " without it, R21)"
	case d.FreeUntil >= d.LapsesOn:
		return "kept free through " + d.FreeUntil + "; lapses the day after without paid support (R21)"
	}
	return "lapses on " + d.LapsesOn + " without paid support (R21)"
}

// CustomerRow is a customer in `customer list`: the record and how it is served on the day.
type CustomerRow struct {
	Customer
	EffectiveSLA string `json:"effective_sla"` // the tier served on the day (R3; "none": R21)
	Status       string `json:"status"`        // the Dutch status line of R3
}

// Customers lists every customer in number order, as served at the moment at (StatusOf).
func Customers(tx *store.Tx, at time.Time, lapseMonths int) ([]CustomerRow, error) {
	cs, err := tx.Customers()
	if err != nil {
		return nil, err
	}
	out := make([]CustomerRow, 0, len(cs))
	for _, c := range cs {
		st := StatusOf(c, at, lapseMonths)
		out = append(out, CustomerRow{Customer: CustomerOf(c), EffectiveSLA: st.EffectiveSLA, Status: st.Status})
	}
	return out, nil
}

func login(tx *store.Tx, id uint64, cache map[uint64]string) (string, error) {
	if l, ok := cache[id]; ok {
		return l, nil
	}
	c, err := tx.Customer(id)
	if errors.Is(err, helpdesk.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	cache[id] = c.Login()
	return c.Login(), nil
}

func ticketOf(t *helpdesk.Ticket, customer string) Ticket {
	return Ticket{ID: t.ID, Customer: customer, Subject: t.Subject, Status: t.Status,
		Priority: t.Priority, SLA: string(t.Tier), Created: Time(t.Created), Due: Time(t.Due),
		Messages: t.Messages, SLAFields: SLAFields{Calendar: t.Calendar, RateZone: t.RateZone,
			Surcharge: t.Surcharge, SurchargeZone: t.SurchargeZone, Followup: t.Followup, Payment: t.Payment,
			Assignee: t.Assignee, FirstResponse: Time(t.FirstResponse), FirstResponseMet: t.FirstResponseMet}}
}

// Tickets lists the work first: tickets not closed before closed ones, then urgent first,
// then by due time (no due time last), then by number. With customerAddr set, only that
// customer's tickets.
func Tickets(tx *store.Tx, customerAddr string) ([]Ticket, error) {
	var ts []*helpdesk.Ticket
	var err error
	if customerAddr != "" {
		c, err := tx.CustomerByAddress(customerAddr)
		if errors.Is(err, helpdesk.ErrNotFound) {
			return nil, fmt.Errorf("no customer has the address %s", customerAddr)
		}
		if err != nil {
			return nil, err
		}
		ts, err = tx.CustomerTickets(c.ID)
		if err != nil {
			return nil, err
		}
	} else if ts, err = tx.Tickets(); err != nil {
		return nil, err
	}
	SortWork(ts)
	cache := map[uint64]string{}
	out := make([]Ticket, 0, len(ts))
	for _, t := range ts {
		l, err := login(tx, t.CustomerID, cache)
		if err != nil {
			return nil, err
		}
		out = append(out, ticketOf(t, l))
	}
	return out, nil
}

// SortWork orders tickets as `ticket list` shows them: the work first (not closed), urgent
// first, then by due time (no due time last), then by number.
func SortWork(ts []*helpdesk.Ticket) {
	slices.SortStableFunc(ts, func(a, b *helpdesk.Ticket) int {
		if ca, cb := a.Status == helpdesk.StatusClosed, b.Status == helpdesk.StatusClosed; ca != cb {
			if ca {
				return 1
			}
			return -1
		}
		if ua, ub := a.Priority == helpdesk.PriorityUrgent, b.Priority == helpdesk.PriorityUrgent; ua != ub {
			if ua {
				return -1
			}
			return 1
		}
		if za, zb := a.Due.IsZero(), b.Due.IsZero(); za != zb {
			if za {
				return 1
			}
			return -1
		}
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// ListTicket is a ticket as the lists show it, with its customer's login address.
func ListTicket(tx *store.Tx, t *helpdesk.Ticket, cache map[uint64]string) (Ticket, error) {
	l, err := login(tx, t.CustomerID, cache)
	if err != nil {
		return Ticket{}, err
	}
	return ticketOf(t, l), nil
}

// TicketDetailOf returns ticket id with its thread and notifications.
func TicketDetailOf(tx *store.Tx, id uint64) (*TicketDetail, error) {
	t, err := tx.Ticket(id)
	if errors.Is(err, helpdesk.ErrNotFound) {
		return nil, fmt.Errorf("no ticket %d", id)
	}
	if err != nil {
		return nil, err
	}
	l, err := login(tx, t.CustomerID, map[uint64]string{})
	if err != nil {
		return nil, err
	}
	base := ticketOf(t, l)
	d := &TicketDetail{ID: base.ID, Customer: base.Customer, Subject: base.Subject, Status: base.Status,
		Priority: base.Priority, SLA: base.SLA, Created: base.Created, Due: base.Due, SLAFields: base.SLAFields,
		Messages: []Message{}, Notifications: []Notification{}}
	msgs, err := tx.Messages(id)
	if err != nil {
		return nil, err
	}
	number := 0
	for _, m := range msgs {
		vm := Message{Direction: m.Direction, From: m.From, FromName: m.FromName, Date: Time(m.Date), MessageID: m.MessageID,
			Subject: m.Subject, Text: m.Text, Attachments: []Attachment{}}
		for _, a := range m.Attachment {
			number++
			vm.Attachments = append(vm.Attachments, Attachment{Number: number, Filename: a.Filename,
				ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256})
		}
		d.Messages = append(d.Messages, vm)
	}
	notes, err := tx.TicketNotifications(id)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		d.Notifications = append(d.Notifications, NotificationOf(n))
	}
	return d, nil
}

// What a customer may see of their ticket (the website): the thread without staff's
// internal notes (#note) and delivery reports (DirectionReport: mail-server detail), only
// the notifications sent to the customer's own addresses (not those to staff), and no staff
// addresses — neither who answered (From of a staff answer is "") nor the assignee. The
// JSON shapes are those of the staff views: a website reads them the same way.

// CustomerVisible reports whether a thread message is shown to the ticket's customer.
func CustomerVisible(direction string) bool {
	return direction == helpdesk.DirectionIn || direction == helpdesk.DirectionOut
}

// CustomerTicketDetail is TicketDetailOf as the ticket's customer may see it. Attachments keep
// their numbers in the whole ticket, so the numbers of a note's files are missing.
func CustomerTicketDetail(tx *store.Tx, id uint64) (*TicketDetail, error) {
	d, err := TicketDetailOf(tx, id)
	if err != nil {
		return nil, err
	}
	t, err := tx.Ticket(id)
	if err != nil {
		return nil, err
	}
	own := map[string]bool{}
	if c, err := tx.Customer(t.CustomerID); err == nil {
		for _, a := range c.Emails {
			own[helpdesk.NormalizeAddress(a)] = true
		}
	} else if !errors.Is(err, helpdesk.ErrNotFound) {
		return nil, err
	}
	own[helpdesk.NormalizeAddress(t.Address)] = true
	d.Assignee = ""
	msgs := d.Messages[:0]
	for _, m := range d.Messages {
		if !CustomerVisible(m.Direction) {
			continue
		}
		if m.Direction == helpdesk.DirectionOut {
			m.From, m.FromName = "", ""
		}
		msgs = append(msgs, m)
	}
	d.Messages = msgs
	notes := d.Notifications[:0]
	for _, n := range d.Notifications {
		if !own[helpdesk.NormalizeAddress(n.To)] || strings.HasPrefix(n.Kind, "staff_") {
			continue
		}
		n.Error, n.AttachNote, n.NextAttempt = "", "", Time{} // the mail server's and the operator's detail
		notes = append(notes, n)
	}
	d.Notifications = notes
	return d, nil
}

// CustomerTickets is Tickets of one customer as the customer may see them: no assignee, and
// the count of the messages they can see.
func CustomerTickets(tx *store.Tx, customerAddr string) ([]Ticket, error) {
	ts, err := Tickets(tx, customerAddr)
	if err != nil {
		return nil, err
	}
	for i := range ts {
		msgs, err := tx.Messages(ts[i].ID)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, m := range msgs {
			if CustomerVisible(m.Direction) {
				n++
			}
		}
		ts[i].Messages, ts[i].Assignee = n, ""
	}
	return ts, nil
}

// NotificationOf converts an outbox entry.
func NotificationOf(n *helpdesk.Notification) Notification {
	return Notification{ID: n.ID, Kind: n.Kind, Ticket: n.TicketID, To: n.To, Subject: n.Subject, Status: n.Status,
		Sent: Time(n.Sent), Attempts: n.Attempts, NextAttempt: Time(n.NextAttempt), Error: n.LastError, AttachNote: n.AttachNote}
}

// HeldEmails lists the held emails the filter selects, in the order they were held.
func HeldEmails(tx *store.Tx, f HeldFilter) ([]Held, error) {
	hs, err := tx.HeldEmails()
	if err != nil {
		return nil, err
	}
	out := make([]Held, 0, len(hs))
	for _, h := range hs {
		if (h.Handled() && !f.All) || (f.Reason != "" && h.Reason != f.Reason) ||
			(!f.Since.IsZero() && h.Received.Before(f.Since)) {
			continue
		}
		out = append(out, Held{ID: h.ID, MessageID: h.MessageID, From: h.From, FromName: h.FromName, Subject: h.Subject,
			Reason: h.Reason, Detail: h.Detail, Received: Time(h.Received), Released: h.Released,
			Ticket: h.ReleasedAs.TicketID, ReleasedBy: h.ReleasedBy, Dismissed: h.Dismissed,
			DismissedAt: Time(h.DismissedAt), DismissedBy: h.DismissedBy, DismissNote: h.DismissNote,
			Reported: Time(h.Reported)})
	}
	return out, nil
}

// Caller is who calls from a number and whether the call is put through (R19): `caller -json`
// and the website's caller lookup.
type Caller struct {
	Number     string    `json:"number"` // normalised: +31…
	Known      bool      `json:"known"`
	Customer   *Customer `json:"customer"` // null for an unknown number
	PutThrough bool      `json:"put_through"`
	Reason     string    `json:"reason"`
}

// CallerOf answers for a normalised number (policy.NormalizePhone) on a moment.
func CallerOf(tx *store.Tx, number string, at time.Time) (Caller, error) {
	a := Caller{Number: number}
	c, err := tx.CustomerByPhone(number)
	if errors.Is(err, helpdesk.ErrNotFound) {
		a.Reason = "unknown number"
		return a, nil
	}
	if err != nil {
		return a, err
	}
	vc := CustomerOf(c)
	a.Known, a.Customer = true, &vc
	a.PutThrough, a.Reason = policy.CallerVerdict(c, at)
	return a, nil
}
