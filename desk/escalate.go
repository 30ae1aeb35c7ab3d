package desk

import (
	"cmp"
	"fmt"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/digest"
	"github.com/infobits/helpdesk/rules/escalation"
	"github.com/infobits/helpdesk/rules/report"
	"github.com/infobits/helpdesk/store"
)

// escalationHorizon bounds how far ahead of now the due queue is read for warnings: a
// warning lies at most the threshold's working time before its deadline, which is days of
// wall-clock time only across weekends and holidays.
const escalationHorizon = 31 * 24 * time.Hour

// Escalated is one escalation notice queued.
type Escalated struct {
	TicketID uint64
	Stage    escalation.Stage
	Due      time.Time
}

// Escalate queues the warnings and breach notices that are due at now (R6–R9, R12): a
// warning to the staff list when a ticket awaiting its first response reaches the warning
// threshold (working time before the deadline on the ticket's calendar), a breach notice to
// the staff list and the ticket's assignee when the deadline has passed. Each is recorded
// with the ticket and deadline in this transaction, so it goes at most once, also across
// restarts; a ticket answered or closed in time gets neither. It returns what it queued and
// when the next notice is due (zero: none is coming).
func (a *Desk) Escalate(tx *store.Tx, now time.Time) ([]Escalated, time.Time, error) {
	cals := a.Policy.Calendars()
	to := a.Policy.StaffList()
	if a.Quiet || cals == nil {
		return nil, time.Time{}, nil
	}
	queue, err := tx.DueUntil(now.Add(escalationHorizon))
	if err != nil {
		return nil, time.Time{}, err
	}
	var done []Escalated
	var next time.Time
	for _, t := range queue {
		_, warned := tx.EscalationSent(t.ID, t.Due, byte(escalation.Warning))
		_, breached := tx.EscalationSent(t.ID, t.Due, byte(escalation.Breach))
		stage, nx := escalation.Check(t, escalation.Calendar(cals, t), a.Escalation, now, escalation.Sent{Warning: warned, Breach: breached})
		if !nx.IsZero() && (next.IsZero() || nx.Before(next)) {
			next = nx
		}
		if stage == escalation.None {
			continue
		}
		kind := helpdesk.KindStaffWarning
		rcpts := []string{to}
		if stage == escalation.Breach {
			kind = helpdesk.KindStaffBreach
			if t.Assignee != "" && helpdesk.NormalizeAddress(t.Assignee) != to {
				rcpts = append(rcpts, t.Assignee)
			}
		}
		for _, rcpt := range rcpts {
			if rcpt == "" {
				continue
			}
			n, err := a.escalationNotice(tx, kind, rcpt, t, now)
			if err != nil {
				return nil, time.Time{}, err
			}
			if err := tx.Enqueue(n); err != nil {
				return nil, time.Time{}, fmt.Errorf("queue %s of ticket %d: %w", kind, t.ID, err)
			}
		}
		if err := tx.MarkEscalation(t.ID, t.Due, byte(stage), now); err != nil {
			return nil, time.Time{}, fmt.Errorf("record %s of ticket %d: %w", stage, t.ID, err)
		}
		done = append(done, Escalated{TicketID: t.ID, Stage: stage, Due: t.Due})
	}
	return done, next, nil
}

// escalationNotice builds a warning or breach notice about t, threaded under the customer's
// last email, with its text: a staff member's reply to it answers the customer (the subject
// carries the ticket reference).
func (a *Desk) escalationNotice(tx *store.Tx, kind, to string, t *helpdesk.Ticket, now time.Time) (*helpdesk.Notification, error) {
	n := &helpdesk.Notification{Kind: kind, To: to, Lang: cmp.Or(a.Lang, "nl"), TicketID: t.ID,
		MessageID: a.newMessageID(), Created: now,
		Data: helpdesk.NotifyData{TicketSubject: t.Subject, Due: t.Due, Tier: t.Tier, Priority: t.Priority,
			Followup: t.Followup, Payment: t.Payment, Address: t.Address, Assignee: t.Assignee}}
	if c, err := tx.Customer(t.CustomerID); err == nil {
		n.Data.CustomerName = c.Name
	}
	msgs, err := tx.Messages(t.ID)
	if err != nil {
		return nil, fmt.Errorf("messages of ticket %d: %w", t.ID, err)
	}
	var chain []*helpdesk.Message
	for _, m := range msgs {
		if m.Direction == helpdesk.DirectionIn && m.MessageID != "" {
			chain = append(chain, m)
		}
	}
	for _, m := range threadRefs(chain, nil) {
		id := sentMessageID(tx, m)
		n.References = append(n.References, id)
		n.InReplyTo = id
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Direction == helpdesk.DirectionIn {
			n.Data.Text = msgs[i].Text
			break
		}
	}
	return n, nil
}

// DigestOf builds the daily digest at now from the store: the tickets not closed, the held
// emails awaiting a decision (rules/digest says what goes where).
func (a *Desk) DigestOf(tx *store.Tx, now time.Time) (digest.Digest, error) {
	ts, err := tx.Tickets()
	if err != nil {
		return digest.Digest{}, err
	}
	in := digest.Input{Now: now, Customers: map[uint64]string{}}
	if cals := a.Policy.Calendars(); cals != nil {
		in.Cal = cals.Helpdesk
	}
	for _, t := range ts {
		if t.Status == helpdesk.StatusClosed {
			continue
		}
		in.Tickets = append(in.Tickets, t)
		if _, ok := in.Customers[t.CustomerID]; !ok {
			if c, err := tx.Customer(t.CustomerID); err == nil {
				in.Customers[t.CustomerID] = c.Name
			}
		}
	}
	if in.Held, err = tx.HeldEmails(); err != nil {
		return digest.Digest{}, err
	}
	return digest.Build(in), nil
}

// DigestNotice is the staff_digest notification of d to the staff list (not queued).
func (a *Desk) DigestNotice(d digest.Digest, now time.Time) *helpdesk.Notification {
	return &helpdesk.Notification{Kind: helpdesk.KindStaffDigest, To: a.Policy.StaffList(), Lang: cmp.Or(a.Lang, "nl"),
		MessageID: a.newMessageID(), Created: now, Data: helpdesk.NotifyData{Digest: d.Sections, Held: d.Held, Day: d.Day}}
}

// SendDigest queues the daily digest when it is due at now (the schedule, on working days)
// and records the day, so it goes once a day, also across restarts; with nothing due and
// nothing held no email goes, and the day is recorded all the same. force queues it now,
// whatever the schedule (helpdesk digest). It returns whether one was queued and when the
// next is due.
func (a *Desk) SendDigest(tx *store.Tx, sched digest.Schedule, now time.Time, force bool) (bool, time.Time, error) {
	if a.Quiet || a.Policy.StaffList() == "" {
		return false, time.Time{}, nil
	}
	due, next := sched.Due(now, tx.LastDigest())
	if !due && !force {
		return false, next, nil
	}
	d, err := a.DigestOf(tx, now)
	if err != nil {
		return false, next, err
	}
	if err := tx.SetLastDigest(helpdesk.DateOf(now.In(helpdesk.Amsterdam()))); err != nil {
		return false, next, err
	}
	_, next = sched.Due(now, helpdesk.DateOf(now.In(helpdesk.Amsterdam())))
	if d.Empty() {
		return false, next, nil
	}
	if err := tx.Enqueue(a.DigestNotice(d, now)); err != nil {
		return false, next, fmt.Errorf("queue the daily digest: %w", err)
	}
	return true, next, nil
}

// MonthReport reads the store for the report of a month (rules/report says what counts).
func (a *Desk) MonthReport(tx *store.Tx, m report.Month, now time.Time) (report.Report, error) {
	ts, err := tx.Tickets()
	if err != nil {
		return report.Report{}, err
	}
	in := report.Input{Month: m, Now: now, Tickets: ts, Customers: map[uint64]string{}, Cals: a.Policy.Calendars()}
	for _, t := range ts {
		if _, ok := in.Customers[t.CustomerID]; !ok {
			if c, err := tx.Customer(t.CustomerID); err == nil {
				in.Customers[t.CustomerID] = c.Name
			}
		}
	}
	if in.Held, err = tx.HeldEmails(); err != nil {
		return report.Report{}, err
	}
	return report.Build(in), nil
}
