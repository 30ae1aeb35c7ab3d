package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
)

// Valid reports whether the customer's paid tier is valid on the date (R3): no end date, or
// the date is not after the last valid day.
func Valid(c *helpdesk.Customer, on helpdesk.Date) bool {
	return c.ValidUntil.IsZero() || !c.ValidUntil.Before(on)
}

// EffectiveTier is the tier a customer is served at on a moment: a paid tier past its
// valid-until date is served as SLA24 (R3), and the free status lapses after lapseMonths
// without paid support (R21: TierNone; see Lapsed; 0 months: never).
func EffectiveTier(c *helpdesk.Customer, at time.Time, lapseMonths int) helpdesk.Tier {
	if Lapsed(c, helpdesk.Today(at), lapseMonths) {
		return helpdesk.TierNone
	}
	return servedTier(c, at)
}

// servedTier is the tier of R3 alone: a paid tier past its valid-until date is SLA24. The
// SLA24 limits (R11) and the plan of a ticket a release opens count it: a lapsed customer is no
// better off than SLA24.
func servedTier(c *helpdesk.Customer, at time.Time) helpdesk.Tier {
	if c.Tier.Paid() && !Valid(c, helpdesk.Today(at)) {
		return helpdesk.SLA24
	}
	if c.Tier == "" {
		return helpdesk.SLA24
	}
	return c.Tier
}

// R21: SLA24 is a free status under a fair-use policy; it lapses when a customer has not had
// paid support for a long time.

// PaidEnd is the last day of paid support the record knows of (R21): the later of the day
// staff recorded when they took the customer off a paid tier (PaidEnded) and the valid-until
// day (of an expired paid tier, or left from one); zero when the customer never had one as far
// as the record shows.
func PaidEnd(c *helpdesk.Customer) helpdesk.Date {
	end := c.PaidEnded
	if end.Before(c.ValidUntil) {
		end = c.ValidUntil
	}
	return end
}

// LapseDay is the first day on which the customer's free status has lapsed (R21): lapseMonths
// after paid support ended (PaidEnd) or, for a customer who never had it, after the record was
// created — the day after that many months to the day ("longer ago than that"). It is the zero
// Date when the status does not lapse by time: lapseMonths 0 (never), a philanthropic customer
// (R4), a paid tier without an end date, or a record that knows neither an end of paid support
// nor its own creation. It does not look at the day: Lapsed does (a valid paid tier, the
// operator's FreeUntil).
func LapseDay(c *helpdesk.Customer, lapseMonths int) helpdesk.Date {
	if lapseMonths <= 0 || c.Philanthropic || (c.Tier.Paid() && c.ValidUntil.IsZero()) {
		return helpdesk.Date{}
	}
	from := PaidEnd(c)
	if from.IsZero() && !c.Created.IsZero() {
		from = helpdesk.Today(c.Created)
	}
	if from.IsZero() {
		return helpdesk.Date{}
	}
	return from.AddMonths(lapseMonths).AddDays(1)
}

// Lapsed reports whether the customer's free status has lapsed on the day (R21): from
// LapseDay on, unless a paid tier is valid on the day or the operator keeps the customer free
// through it (FreeUntil).
func Lapsed(c *helpdesk.Customer, on helpdesk.Date, lapseMonths int) bool {
	if c.Tier.Paid() && Valid(c, on) {
		return false
	}
	if !c.FreeUntil.IsZero() && !c.FreeUntil.Before(on) {
		return false
	}
	day := LapseDay(c, lapseMonths)
	return !day.IsZero() && !on.Before(day)
}

// StatusLine is the Dutch status line of R3 on a date: "geldig", "geldig tot 31-01-2027" or
// "verlopen op 31-10-2026". The free tier (SLA24) has no end date: "geldig".
func StatusLine(c *helpdesk.Customer, on helpdesk.Date) string {
	if !c.Tier.Paid() || c.ValidUntil.IsZero() {
		return "geldig"
	}
	d := fmt.Sprintf("%02d-%02d-%04d", c.ValidUntil.Day, c.ValidUntil.Month, c.ValidUntil.Year)
	if Valid(c, on) {
		return "geldig tot " + d
	}
	return "verlopen op " + d
}

// CalendarFor says which working hours count for a customer's deadline on a moment (R8):
// the contract calendar (rate zone 1, Saturday morning included) while the customer has a
// support contract and a valid paid tier; helpdesk opening hours for everyone else.
func CalendarFor(c *helpdesk.Customer, at time.Time) string {
	if c.Contract && servedTier(c, at).Paid() {
		return helpdesk.CalendarContract
	}
	return helpdesk.CalendarHelpdesk
}

// ErrBadPhone: the text is not a phone number.
var ErrBadPhone = errors.New("not a phone number")

// NormalizePhone writes a Dutch or international phone number as "+<country><number>":
// "+31 6-1234 5678", "0031612345678" and "06 12345678" are all "+31612345678" (R19).
func NormalizePhone(s string) (string, error) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/':
		default:
			return "", fmt.Errorf("%q: %w", s, ErrBadPhone)
		}
	}
	n := b.String()
	switch {
	case strings.HasPrefix(n, "+"):
		n = n[1:]
	case strings.HasPrefix(n, "00"):
		n = n[2:]
	case strings.HasPrefix(n, "0"):
		n = "31" + n[1:]
	case n == strings.TrimSpace(s) && len(n) == 9:
		// 612345678: Excel reads 0612345678 as a number and drops the 0.
		return "", fmt.Errorf("%q: %w (want +31…, 0031… or 0…; a spreadsheet drops the leading 0 of a number: format the column as text)", s, ErrBadPhone)
	default:
		return "", fmt.Errorf("%q: %w (want +31…, 0031… or 0…)", s, ErrBadPhone)
	}
	if strings.HasPrefix(n, "310") { // "+31 (0)6 …"
		n = "31" + n[3:]
	}
	if len(n) < 8 || len(n) > 15 {
		return "", fmt.Errorf("%q: %w (%d digits)", s, ErrBadPhone, len(n))
	}
	return "+" + n, nil
}

// CallerVerdict says whether a call from a customer's registered number is put through (R19):
// a telephone support contract with a valid paid tier.
func CallerVerdict(c *helpdesk.Customer, at time.Time) (through bool, reason string) {
	switch eff := servedTier(c, at); {
	case !c.Contract:
		return false, "no telephone support contract"
	case c.Tier.Paid() && !eff.Paid():
		return false, "the paid helpdesk tier " + StatusLine(c, helpdesk.Today(at))
	case !eff.Paid():
		return false, "SLA24 has no telephone support"
	}
	return true, "telephone support contract, " + string(c.Tier) + " " + StatusLine(c, helpdesk.Today(at))
}
