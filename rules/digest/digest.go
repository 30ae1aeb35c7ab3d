// Package digest decides the daily digest of the queue for the staff list: when it is due (a
// configured time on working days of the helpdesk calendar, R7, R9) and what it lists —
// breached, due today, due on the next working day, urgent (R12), unassigned, held emails
// awaiting a decision, and per assignee what is theirs.
//
// It is pure: the desk reads the tickets and held emails and passes them with the moment; the
// sections come back. No I/O, no clock.
package digest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/calendar"
	"github.com/infobits/helpdesk/rules/escalation"
)

// Schedule is when the digest goes: Clock after midnight (Amsterdam) on the working days of
// Cal. A nil Cal or Off: never by itself.
type Schedule struct {
	Clock time.Duration
	Off   bool
	Cal   *calendar.Calendar
}

// ParseClock reads a time of day, HH:MM, or "off".
func ParseClock(s string) (time.Duration, bool, error) {
	if strings.EqualFold(strings.TrimSpace(s), "off") {
		return 0, true, nil
	}
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, false, fmt.Errorf("digest time %q: want HH:MM (Europe/Amsterdam) or off", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, false, nil
}

// Due reports whether the digest of now's day is due at now, given the day of the last one,
// and when the next will be due (zero: never). The digest of a day goes once, at or after
// its time on that day; a gateway that was down at the time sends it when it starts, the same
// day, never the next day's morning after.
func (s Schedule) Due(now time.Time, last helpdesk.Date) (bool, time.Time) {
	if s.Off || s.Cal == nil {
		return false, time.Time{}
	}
	ams := helpdesk.Amsterdam()
	local := now.In(ams)
	today := helpdesk.DateOf(local)
	at := s.at(today)
	if s.Cal.WorkingDay(today) && last != today && !local.Before(at) {
		return true, time.Time{}
	}
	next := today
	if !s.Cal.WorkingDay(today) || last == today || !local.Before(at) {
		if next = s.Cal.NextWorkingDay(today); next.IsZero() {
			return false, time.Time{}
		}
	}
	return false, s.at(next)
}

func (s Schedule) at(d helpdesk.Date) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, helpdesk.Amsterdam()).Add(s.Clock)
}

// Input is what the digest is made of.
type Input struct {
	Now     time.Time
	Tickets []*helpdesk.Ticket // every ticket not closed
	// Customers names the customer of each ticket, by customer id.
	Customers map[uint64]string
	Held      []*helpdesk.Held // every held email awaiting a decision
	Cal       *calendar.Calendar
}

// Digest is the content of one digest.
type Digest struct {
	Day      helpdesk.Date
	Sections []helpdesk.DigestSection
	Held     []helpdesk.HeldItem
}

// Empty reports whether there is nothing to send: no open ticket (nothing due) and nothing
// held.
func (d *Digest) Empty() bool { return len(d.Sections) == 0 && len(d.Held) == 0 }

// Build makes the digest at in.Now. The work is the tickets staff must act on: open ones (new,
// or the customer replied). Breached, due today and due on the next working day are tickets
// awaiting their first response; urgent, unassigned and per assignee are open tickets. Each
// section lists the earliest deadline first, urgent before normal.
func Build(in Input) Digest {
	ams := helpdesk.Amsterdam()
	today := helpdesk.DateOf(in.Now.In(ams))
	tomorrow := today.AddDays(1)
	if in.Cal != nil {
		if d := in.Cal.NextWorkingDay(today); !d.IsZero() {
			tomorrow = d
		}
	}
	open := slices.Clone(in.Tickets)
	open = slices.DeleteFunc(open, func(t *helpdesk.Ticket) bool { return t.Status != helpdesk.StatusOpen })
	slices.SortFunc(open, func(a, b *helpdesk.Ticket) int {
		if (a.Priority == helpdesk.PriorityUrgent) != (b.Priority == helpdesk.PriorityUrgent) {
			if a.Priority == helpdesk.PriorityUrgent {
				return -1
			}
			return 1
		}
		ad, bd := a.Due, b.Due
		switch {
		case ad.IsZero() && !bd.IsZero():
			return 1
		case bd.IsZero() && !ad.IsZero():
			return -1
		}
		return cmp.Or(ad.Compare(bd), cmp.Compare(a.ID, b.ID))
	})
	line := func(t *helpdesk.Ticket) helpdesk.DigestTicket {
		l := helpdesk.DigestTicket{ID: t.ID, Subject: t.Subject, Customer: in.Customers[t.CustomerID], Tier: t.Tier,
			Priority: t.Priority, Status: t.Status, Assignee: t.Assignee}
		if escalation.Awaiting(t) {
			l.Due = t.Due
		}
		return l
	}
	sections := map[string][]helpdesk.DigestTicket{}
	byAssignee := map[string][]helpdesk.DigestTicket{}
	for _, t := range open {
		l := line(t)
		if escalation.Awaiting(t) {
			switch day := helpdesk.DateOf(t.Due.In(ams)); {
			case in.Now.After(t.Due):
				sections[helpdesk.DigestBreached] = append(sections[helpdesk.DigestBreached], l)
			case day == today:
				sections[helpdesk.DigestDueToday] = append(sections[helpdesk.DigestDueToday], l)
			case !day.Before(today) && !tomorrow.Before(day):
				sections[helpdesk.DigestDueTomorrow] = append(sections[helpdesk.DigestDueTomorrow], l)
			}
		}
		if t.Priority == helpdesk.PriorityUrgent {
			sections[helpdesk.DigestUrgent] = append(sections[helpdesk.DigestUrgent], l)
		}
		if t.Assignee == "" {
			sections[helpdesk.DigestUnassigned] = append(sections[helpdesk.DigestUnassigned], l)
		} else {
			byAssignee[t.Assignee] = append(byAssignee[t.Assignee], l)
		}
	}
	d := Digest{Day: today}
	for _, k := range []string{helpdesk.DigestBreached, helpdesk.DigestDueToday, helpdesk.DigestDueTomorrow,
		helpdesk.DigestUrgent, helpdesk.DigestUnassigned} {
		if len(sections[k]) > 0 {
			d.Sections = append(d.Sections, helpdesk.DigestSection{Kind: k, Tickets: sections[k]})
		}
	}
	names := make([]string, 0, len(byAssignee))
	for a := range byAssignee {
		names = append(names, a)
	}
	slices.Sort(names)
	for _, a := range names {
		d.Sections = append(d.Sections, helpdesk.DigestSection{Kind: helpdesk.DigestAssignee, Assignee: a, Tickets: byAssignee[a]})
	}
	for _, h := range in.Held {
		if h.Handled() {
			continue
		}
		d.Held = append(d.Held, helpdesk.HeldItem{ID: h.ID, From: h.From, Subject: h.Subject, Reason: h.Reason,
			Detail: h.Detail, Received: h.Received})
	}
	return d
}
