// Package report aggregates a month of the helpdesk for the vendor (R2, R6–R13): per tier the
// tickets opened, the first responses, the share answered within the deadline, the median and
// 90th-percentile first-response time in working hours of the ticket's own calendar, the
// breaches with their tickets; the SLA24 limit holds (R11) and the callbacks by payment (R13);
// the questions of customers whose free status lapsed, held for staff's fair-use decision
// (R21); and the vendor's promise beside it.
//
// It is pure: the caller reads the tickets and held emails and passes the moment the report
// is made (a ticket of the month still unanswered past its deadline by then is a breach).
package report

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/calendar"
	"github.com/infobits/helpdesk/rules/escalation"
)

// Month is a calendar month in Amsterdam.
type Month struct {
	Year  int
	Month time.Month
}

// ParseMonth reads YYYY-MM.
func ParseMonth(s string) (Month, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return Month{}, fmt.Errorf("month %q: want YYYY-MM", s)
	}
	return Month{t.Year(), t.Month()}, nil
}

func (m Month) String() string { return fmt.Sprintf("%04d-%02d", m.Year, m.Month) }

// Bounds are the month's first instant and the next month's, in Amsterdam.
func (m Month) Bounds() (time.Time, time.Time) {
	start := time.Date(m.Year, m.Month, 1, 0, 0, 0, 0, helpdesk.Amsterdam())
	return start, start.AddDate(0, 1, 0)
}

// Report is one month.
type Report struct {
	Month   string       `json:"month"`
	Made    time.Time    `json:"made"`
	Tiers   []TierReport `json:"tiers"`
	Total   TierReport   `json:"total"`
	Holds   LimitHolds   `json:"sla24_limit_holds"`
	Lapsed  LimitHolds   `json:"sla24_lapsed_holds"` // R21: held as sla24_lapsed, by whether staff released them
	Callbck Callbacks    `json:"callbacks"`
}

// TierReport is one tier's month: the tickets opened in the month, at the tier they were
// served at.
type TierReport struct {
	Tier string `json:"sla"`
	// PromiseHours is the first-response time promised (R6), in working hours.
	PromiseHours int `json:"promise_hours"`
	Opened       int `json:"opened"`
	Urgent       int `json:"urgent"`
	// FirstResponses are the tickets answered (by now); WithinDeadline those answered by their
	// deadline, and Share that as a part of Opened (0 when none opened).
	FirstResponses int     `json:"first_responses"`
	WithinDeadline int     `json:"within_deadline"`
	Share          float64 `json:"share_within_deadline"`
	// MedianHours and P90Hours are the first-response times in working hours of the ticket's
	// calendar (nearest rank); 0 without first responses.
	MedianHours float64 `json:"median_hours"`
	P90Hours    float64 `json:"p90_hours"`
	// Breaches are the tickets answered after their deadline or still unanswered past it.
	Breaches []Breach `json:"breaches"`
}

// Breach is a ticket whose deadline passed without a first response.
type Breach struct {
	TicketID uint64    `json:"ticket"`
	Subject  string    `json:"subject"`
	Customer string    `json:"customer"`
	Due      time.Time `json:"due"`
	// Answered is when the first response came (zero: not yet); LateHours by how many working
	// hours it was (or, unanswered, is by now) late.
	Answered  time.Time `json:"answered,omitzero"`
	LateHours float64   `json:"late_hours"`
}

// LimitHolds are the emails held in the month for one reason — over an SLA24 limit (R11), or
// because the customer's free status lapsed (R21) — by whether staff released them.
type LimitHolds struct {
	Held     int `json:"held"`
	Released int `json:"released"`
}

// Callbacks are the callback requests of the tickets opened in the month, by payment (R13);
// None: no charge (philanthropic, R4).
type Callbacks struct {
	Prepaid  int `json:"prepaid"`
	Postpaid int `json:"postpaid"`
	None     int `json:"no_charge"`
}

// Input is what a report is made of.
type Input struct {
	Month   Month
	Now     time.Time
	Tickets []*helpdesk.Ticket
	// Customers names each ticket's customer, by id.
	Customers map[uint64]string
	Held      []*helpdesk.Held
	Cals      *calendar.Set
}

// Build makes the report. Tickets without a deadline (history taken in from an archive) are
// not counted: they were answered before the helpdesk knew them.
func Build(in Input) Report {
	start, end := in.Month.Bounds()
	r := Report{Month: in.Month.String(), Made: in.Now}
	tiers := map[helpdesk.Tier]*TierReport{}
	times := map[helpdesk.Tier][]time.Duration{}
	var all []time.Duration
	order := []helpdesk.Tier{helpdesk.SLA24, helpdesk.SLA8, helpdesk.SLA4}
	for _, tier := range order {
		tiers[tier] = &TierReport{Tier: string(tier), PromiseHours: tier.Hours(), Breaches: []Breach{}}
	}
	for _, t := range in.Tickets {
		if t.Due.IsZero() || t.Created.Before(start) || !t.Created.Before(end) {
			continue
		}
		tr := tiers[t.Tier]
		if tr == nil {
			continue
		}
		tr.Opened++
		if t.Priority == helpdesk.PriorityUrgent {
			tr.Urgent++
		}
		switch t.Payment {
		case helpdesk.PaymentPrepaid:
			r.Callbck.Prepaid++
		case helpdesk.PaymentPostpaid:
			r.Callbck.Postpaid++
		default:
			if t.Followup == helpdesk.FollowupCallback {
				r.Callbck.None++
			}
		}
		cal := escalation.Calendar(in.Cals, t)
		work := func(from, to time.Time) time.Duration {
			if cal == nil {
				return to.Sub(from)
			}
			return cal.WorkingTime(from, to)
		}
		answered := !t.FirstResponse.IsZero()
		if answered {
			tr.FirstResponses++
			d := work(t.Created, t.FirstResponse)
			times[t.Tier] = append(times[t.Tier], d)
			all = append(all, d)
			if !t.FirstResponse.After(t.Due) {
				tr.WithinDeadline++
				continue
			}
		}
		if answered || in.Now.After(t.Due) {
			b := Breach{TicketID: t.ID, Subject: t.Subject, Customer: in.Customers[t.CustomerID], Due: t.Due, Answered: t.FirstResponse}
			until := in.Now
			if answered {
				until = t.FirstResponse
			}
			b.LateHours = hours(work(t.Due, until))
			tr.Breaches = append(tr.Breaches, b)
		}
	}
	total := TierReport{Tier: "total", Breaches: []Breach{}}
	for _, tier := range order {
		tr := tiers[tier]
		tr.MedianHours, tr.P90Hours = hours(percentile(times[tier], 0.5)), hours(percentile(times[tier], 0.9))
		if tr.Opened > 0 {
			tr.Share = float64(tr.WithinDeadline) / float64(tr.Opened)
		}
		r.Tiers = append(r.Tiers, *tr)
		total.Opened += tr.Opened
		total.Urgent += tr.Urgent
		total.FirstResponses += tr.FirstResponses
		total.WithinDeadline += tr.WithinDeadline
		total.Breaches = append(total.Breaches, tr.Breaches...)
	}
	if total.Opened > 0 {
		total.Share = float64(total.WithinDeadline) / float64(total.Opened)
	}
	total.MedianHours, total.P90Hours = hours(percentile(all, 0.5)), hours(percentile(all, 0.9))
	slices.SortFunc(total.Breaches, func(a, b Breach) int { return int(a.TicketID) - int(b.TicketID) })
	r.Total = total
	for _, h := range in.Held {
		if h.Received.Before(start) || !h.Received.Before(end) {
			continue
		}
		var holds *LimitHolds
		switch h.Reason {
		case helpdesk.HeldOverLimit:
			holds = &r.Holds
		case helpdesk.HeldSLA24Lapsed:
			holds = &r.Lapsed
		default:
			continue
		}
		holds.Held++
		if h.Released {
			holds.Released++
		}
	}
	return r
}

// percentile is the nearest-rank percentile p (0.5 median, 0.9) of ds; 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p * float64(len(s))))
	return s[max(rank, 1)-1]
}

// hours is d in hours, to two decimals.
func hours(d time.Duration) float64 { return math.Round(d.Hours()*100) / 100 }
