// Package escalation decides when a ticket awaiting its first response warns the staff list
// and when it has breached its deadline (R6–R9, R12): the warning comes a configurable amount
// of working time before the deadline, counted on the ticket's own calendar, so it never falls
// at night, at the weekend or on a holiday unless that calendar counts it; the breach notice
// comes when the deadline has passed. Urgent tickets (R12) escalate the same way on their own
// deadline.
//
// It is pure: no I/O, no clock (the caller passes now), no state. The desk records what was
// sent, once per ticket and deadline, in the transaction that queues the notice.
package escalation

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/calendar"
)

// Stage is a step of a ticket's escalation.
type Stage int

// The stages, in the order they come.
const (
	None    Stage = iota
	Warning       // the deadline is near (the warning threshold reached)
	Breach        // the deadline has passed without a first response
)

func (s Stage) String() string {
	switch s {
	case Warning:
		return "warning"
	case Breach:
		return "breach"
	}
	return "none"
}

// Threshold is how long before the deadline the warning comes: a fixed amount of working
// time, or a share of the tier's working hours (Share > 0). Zero: no warning.
type Threshold struct {
	Before time.Duration
	Share  float64 // 0.25: a quarter of the tier's hours (SLA8: 2 working hours)
}

// For is the working time before the deadline of a tier at which the warning comes.
func (th Threshold) For(tier helpdesk.Tier) time.Duration {
	if th.Share > 0 {
		return time.Duration(th.Share * float64(tier.Hours()) * float64(time.Hour)).Round(time.Second)
	}
	return th.Before
}

func (th Threshold) String() string {
	if th.Share > 0 {
		return strconv.FormatFloat(th.Share*100, 'f', -1, 64) + "%"
	}
	if th.Before == 0 {
		return "off"
	}
	return shortDuration(th.Before)
}

// shortDuration writes 1h rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Thresholds are the warning thresholds: one for every tier, with exceptions per tier.
type Thresholds struct {
	Default Threshold
	ByTier  map[helpdesk.Tier]Threshold
}

// DefaultThresholds is the configuration default: one working hour before the deadline,
// half an hour for SLA4 (whose deadline is four working hours).
const DefaultThresholds = "1h; SLA4 30m"

// Parse reads thresholds: "1h; SLA4 30m" — an amount for every tier, then per-tier
// exceptions, separated by semicolons. An amount is a duration of working time ("1h",
// "30m"), a share of the tier's working hours ("25%"), or "off" (no warnings). The first
// part may itself name a tier; a tier without an amount of its own gets the first unnamed one.
func Parse(s string) (Thresholds, error) {
	th := Thresholds{ByTier: map[helpdesk.Tier]Threshold{}}
	for part := range strings.SplitSeq(s, ";") {
		f := strings.Fields(part)
		switch len(f) {
		case 0:
			continue
		case 1:
			v, err := parseAmount(f[0])
			if err != nil {
				return Thresholds{}, err
			}
			th.Default = v
		case 2:
			tier, err := helpdesk.ParseTier(f[0])
			if err != nil {
				return Thresholds{}, fmt.Errorf("warning threshold %q: %w", strings.TrimSpace(part), err)
			}
			v, err := parseAmount(f[1])
			if err != nil {
				return Thresholds{}, err
			}
			th.ByTier[tier] = v
		default:
			return Thresholds{}, fmt.Errorf("warning threshold %q: want AMOUNT or TIER AMOUNT (1h; SLA4 30m)", strings.TrimSpace(part))
		}
	}
	return th, nil
}

func parseAmount(s string) (Threshold, error) {
	if strings.EqualFold(s, "off") || s == "0" {
		return Threshold{}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v >= 100 {
			return Threshold{}, fmt.Errorf("warning threshold %q: a share is more than 0%% and less than 100%%", s)
		}
		return Threshold{Share: v / 100}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return Threshold{}, fmt.Errorf("warning threshold %q: want a duration of working time (1h, 30m), a share (25%%) or off", s)
	}
	return Threshold{Before: d}, nil
}

// For is the warning threshold of a tier, in working time.
func (t Thresholds) For(tier helpdesk.Tier) time.Duration {
	if th, ok := t.ByTier[tier]; ok {
		return th.For(tier)
	}
	return t.Default.For(tier)
}

// String writes t as Parse reads it.
func (t Thresholds) String() string {
	parts := []string{t.Default.String()}
	for _, tier := range []helpdesk.Tier{helpdesk.SLA24, helpdesk.SLA8, helpdesk.SLA4} {
		if th, ok := t.ByTier[tier]; ok {
			parts = append(parts, string(tier)+" "+th.String())
		}
	}
	return strings.Join(parts, "; ")
}

// Calendar returns the calendar a ticket's deadline counts (R8): its Calendar field names it.
func Calendar(cals *calendar.Set, t *helpdesk.Ticket) *calendar.Calendar {
	if cals == nil {
		return nil
	}
	if t.Calendar == helpdesk.CalendarContract {
		return cals.Zone1
	}
	return cals.Helpdesk
}

// Sent is what a ticket was already told for its current deadline.
type Sent struct {
	Warning, Breach bool
}

// Awaiting reports whether a ticket waits for its first response with a deadline: the only
// tickets that escalate. An answered or closed ticket gets neither notice.
func Awaiting(t *helpdesk.Ticket) bool {
	return !t.Due.IsZero() && t.FirstResponse.IsZero() && t.Status != helpdesk.StatusClosed
}

// WarnAt is the instant the warning of a ticket is due: the threshold's working time before
// the deadline on cal; the zero time when no warning applies.
func WarnAt(t *helpdesk.Ticket, cal *calendar.Calendar, th Thresholds) time.Time {
	d := th.For(t.Tier)
	if d <= 0 || cal == nil || t.Due.IsZero() {
		return time.Time{}
	}
	w := cal.Before(t.Due, d)
	if !w.After(t.Created) {
		// The deadline is nearer than the threshold from the start (a ticket that arrived
		// late on a short calendar): warned when it arrives would only repeat the new-ticket
		// notice, so no warning.
		return time.Time{}
	}
	return w
}

// Check says which notice a ticket is due at now, and when the next one will be (zero: none
// to come). A deadline passed when now is after it (an answer at the deadline is in time).
// When both are due at once — the gateway was down past the deadline — only the breach is
// sent: a warning for a deadline already missed tells nothing the breach does not.
func Check(t *helpdesk.Ticket, cal *calendar.Calendar, th Thresholds, now time.Time, sent Sent) (Stage, time.Time) {
	if !Awaiting(t) || sent.Breach {
		return None, time.Time{}
	}
	if now.After(t.Due) {
		return Breach, time.Time{}
	}
	breachAt := t.Due.Add(time.Nanosecond)
	if sent.Warning {
		return None, breachAt
	}
	w := WarnAt(t, cal, th)
	if w.IsZero() {
		return None, breachAt
	}
	if !now.Before(w) {
		return Warning, breachAt
	}
	return None, w
}
