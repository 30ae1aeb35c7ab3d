package view

import (
	"cmp"
	"slices"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
)

// FairUse is one line of `helpdesk report -fair-use`: what a free customer (SLA24, or whose
// free status lapsed: R21) asked of the helpdesk, for staff's fair-use judgement.
type FairUse struct {
	Customer     uint64 `json:"customer"`
	Name         string `json:"name"`
	Login        string `json:"login"`
	EffectiveSLA string `json:"effective_sla"` // SLA24, or "none" when the free status lapsed
	// In the 12 months up to the day: tickets opened, the customer's replies on their tickets
	// (every email after a ticket's first), and their emails held (SLA24 limits, the lapse).
	Tickets int `json:"tickets_12m"`
	Replies int `json:"replies_12m"`
	Held    int `json:"held_12m"`
	// FirstContact and LastContact are the first and the last email from the customer the
	// helpdesk kept (thread messages and held emails, any time); "" when none.
	FirstContact Time `json:"first_contact"`
	LastContact  Time `json:"last_contact"`
	// PaidEnded is the last day of paid support the record knows (policy.PaidEnd); "" never.
	PaidEnded string `json:"paid_ended"`
	LapsesOn  string `json:"lapses_on"`  // the first lapsed day (R21); "" does not lapse by time
	FreeUntil string `json:"free_until"` // kept free through this day by the operator; ""
}

// FairUseReport is the fair-use line of every customer served free at the moment at (as
// StatusOf judges it: effective tier SLA24 or none), the most active over the 12 months before
// at first, then by number. It reads every thread of those customers and every held email.
func FairUseReport(tx *store.Tx, at time.Time, lapseMonths int) ([]FairUse, error) {
	cs, err := tx.Customers()
	if err != nil {
		return nil, err
	}
	held, err := tx.HeldEmails()
	if err != nil {
		return nil, err
	}
	heldBy := map[uint64][]*helpdesk.Held{}
	for _, h := range held {
		if h.CustomerID != 0 {
			heldBy[h.CustomerID] = append(heldBy[h.CustomerID], h)
		}
	}
	from := at.AddDate(0, -12, 0)
	in := func(t time.Time) bool { return t.After(from) && !t.After(at) }
	out := []FairUse{}
	for _, c := range cs {
		eff := policy.EffectiveTier(c, at, lapseMonths)
		if eff != helpdesk.SLA24 && eff != helpdesk.TierNone {
			continue
		}
		line := FairUse{Customer: c.ID, Name: c.Name, Login: c.Login(), EffectiveSLA: string(eff),
			PaidEnded: policy.PaidEnd(c).String(), LapsesOn: policy.LapseDay(c, lapseMonths).String(),
			FreeUntil: c.FreeUntil.String()}
		var first, last time.Time
		contact := func(t time.Time) {
			if t.IsZero() || t.After(at) {
				return
			}
			if first.IsZero() || t.Before(first) {
				first = t
			}
			if t.After(last) {
				last = t
			}
		}
		ts, err := tx.CustomerTickets(c.ID)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if in(t.Created) {
				line.Tickets++
			}
			msgs, err := tx.Messages(t.ID)
			if err != nil {
				return nil, err
			}
			question := true
			for _, m := range msgs {
				if m.Direction != helpdesk.DirectionIn {
					continue
				}
				contact(m.Date)
				if !question && in(m.Date) {
					line.Replies++
				}
				question = false
			}
		}
		for _, h := range heldBy[c.ID] {
			if h.Released {
				continue // it is a thread message now, counted above
			}
			contact(h.Received)
			if in(h.Received) {
				line.Held++
			}
		}
		line.FirstContact, line.LastContact = Time(first), Time(last)
		out = append(out, line)
	}
	slices.SortStableFunc(out, func(a, b FairUse) int {
		if c := cmp.Compare(b.Tickets+b.Replies+b.Held, a.Tickets+a.Replies+a.Held); c != 0 {
			return c
		}
		return cmp.Compare(a.Customer, b.Customer)
	})
	return out, nil
}
