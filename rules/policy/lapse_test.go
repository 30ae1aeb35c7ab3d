package policy_test

import (
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/policy"
)

func day(s string) helpdesk.Date {
	d, err := helpdesk.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// TestLapse: R21 — the free status lapses the day after lapseMonths have passed since paid
// support ended (or, without paid support ever, since the record was created, on its
// Amsterdam day); never for a philanthropic customer, a valid paid tier, a customer the
// operator keeps free on the day, with 0 months, or when the record knows no start.
func TestLapse(t *testing.T) {
	ams := helpdesk.Amsterdam()
	cases := []struct {
		name     string
		c        helpdesk.Customer
		months   int
		lapseDay string // "" does not lapse by time
		on       string
		lapsed   bool
		tier     helpdesk.Tier // EffectiveTier at noon on the day
	}{
		{"expired SLA8, last free day", helpdesk.Customer{Tier: helpdesk.SLA8, ValidUntil: day("2024-03-15")}, 24, "2026-03-16", "2026-03-15", false, helpdesk.SLA24},
		{"expired SLA8, first lapsed day", helpdesk.Customer{Tier: helpdesk.SLA8, ValidUntil: day("2024-03-15")}, 24, "2026-03-16", "2026-03-16", true, helpdesk.TierNone},
		{"SLA24 after a paid tier, recorded", helpdesk.Customer{Tier: helpdesk.SLA24, PaidEnded: day("2025-01-31"), Created: time.Date(2020, 1, 1, 0, 0, 0, 0, ams)}, 1, "2025-03-01", "2025-03-01", true, helpdesk.TierNone},
		{"the later of paid_ended and valid_until", helpdesk.Customer{Tier: helpdesk.SLA24, PaidEnded: day("2023-01-31"), ValidUntil: day("2024-06-30")}, 24, "2026-07-01", "2026-06-30", false, helpdesk.SLA24},
		{"never paid: from the record's Amsterdam day", helpdesk.Customer{Tier: helpdesk.SLA24, Created: time.Date(2024, 5, 31, 22, 30, 0, 0, time.UTC)}, 24, "2026-06-02", "2026-06-01", false, helpdesk.SLA24},
		{"never paid, a leap day", helpdesk.Customer{Tier: helpdesk.SLA24, Created: time.Date(2024, 2, 29, 12, 0, 0, 0, ams)}, 24, "2026-03-01", "2026-03-01", true, helpdesk.TierNone},
		{"philanthropic", helpdesk.Customer{Tier: helpdesk.SLA24, Philanthropic: true, Created: time.Date(2010, 1, 1, 0, 0, 0, 0, ams)}, 24, "", "2026-12-01", false, helpdesk.SLA24},
		{"valid paid tier", helpdesk.Customer{Tier: helpdesk.SLA4, ValidUntil: day("2026-12-01"), PaidEnded: day("2010-01-01")}, 24, "2028-12-02", "2026-12-01", false, helpdesk.SLA4},
		{"paid tier without an end date", helpdesk.Customer{Tier: helpdesk.SLA8, Created: time.Date(2010, 1, 1, 0, 0, 0, 0, ams)}, 24, "", "2026-12-01", false, helpdesk.SLA8},
		{"kept free through the day", helpdesk.Customer{Tier: helpdesk.SLA24, PaidEnded: day("2020-01-01"), FreeUntil: day("2026-12-01")}, 24, "2022-01-02", "2026-12-01", false, helpdesk.SLA24},
		{"kept free until the day before", helpdesk.Customer{Tier: helpdesk.SLA24, PaidEnded: day("2020-01-01"), FreeUntil: day("2026-11-30")}, 24, "2022-01-02", "2026-12-01", true, helpdesk.TierNone},
		{"0 months: never", helpdesk.Customer{Tier: helpdesk.SLA24, PaidEnded: day("2000-01-01")}, 0, "", "2026-12-01", false, helpdesk.SLA24},
		{"no start known", helpdesk.Customer{Tier: helpdesk.SLA24}, 24, "", "2026-12-01", false, helpdesk.SLA24},
	}
	for _, c := range cases {
		if got := policy.LapseDay(&c.c, c.months).String(); got != c.lapseDay {
			t.Errorf("%s: LapseDay = %q, want %q", c.name, got, c.lapseDay)
		}
		on := day(c.on)
		if got := policy.Lapsed(&c.c, on, c.months); got != c.lapsed {
			t.Errorf("%s: Lapsed(%s) = %v, want %v", c.name, c.on, got, c.lapsed)
		}
		noon := time.Date(on.Year, on.Month, on.Day, 12, 0, 0, 0, ams)
		if got := policy.EffectiveTier(&c.c, noon, c.months); got != c.tier {
			t.Errorf("%s: EffectiveTier(%s) = %s, want %s", c.name, c.on, got, c.tier)
		}
	}
}

// TestAddMonths: a day the month lacks is its last day; years roll both ways.
func TestAddMonths(t *testing.T) {
	for _, c := range []struct {
		from   string
		months int
		want   string
	}{
		{"2024-02-29", 12, "2025-02-28"},
		{"2024-02-29", 48, "2028-02-29"},
		{"2026-01-31", 1, "2026-02-28"},
		{"2026-11-30", 2, "2027-01-30"},
		{"2026-03-31", -1, "2026-02-28"},
		{"2026-01-15", -13, "2024-12-15"},
		{"2026-12-31", 24, "2028-12-31"},
	} {
		if got := day(c.from).AddMonths(c.months).String(); got != c.want {
			t.Errorf("%s.AddMonths(%d) = %s, want %s", c.from, c.months, got, c.want)
		}
	}
	if got := day("2026-12-31").AddDays(1).String(); got != "2027-01-01" {
		t.Errorf("AddDays(1) = %s", got)
	}
}
