package helpdesk_test

import (
	"testing"

	"github.com/infobits/helpdesk"
)

func TestParseTierAndDate(t *testing.T) {
	tiers := []struct {
		in    string
		want  helpdesk.Tier
		hours int
		bad   bool
	}{
		{"SLA24", helpdesk.SLA24, 24, false}, {"sla8", helpdesk.SLA8, 8, false}, {" Sla4 ", helpdesk.SLA4, 4, false}, {"SLA2", "", 0, true}, {"", "", 0, true},
	}
	for _, tc := range tiers {
		got, err := helpdesk.ParseTier(tc.in)
		if (err != nil) != tc.bad || got != tc.want || (!tc.bad && got.Hours() != tc.hours) {
			t.Errorf("ParseTier(%q) = %q (%dh), %v, want %q (%dh), error %v", tc.in, got, got.Hours(), err, tc.want, tc.hours, tc.bad)
		}
	}
	dates := []struct {
		in   string
		want helpdesk.Date
		bad  bool
	}{
		{"2026-11-30", helpdesk.Date{Year: 2026, Month: 11, Day: 30}, false}, {"", helpdesk.Date{}, false}, {"30-11-2026", helpdesk.Date{}, true}, {"2026-02-30", helpdesk.Date{}, true},
	}
	for _, tc := range dates {
		got, err := helpdesk.ParseDate(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseDate(%q) = %v, %v, want %v, error %v", tc.in, got, err, tc.want, tc.bad)
		}
		if !tc.bad && got.String() != tc.in {
			t.Errorf("ParseDate(%q).String() = %q, want the input back", tc.in, got.String())
		}
	}
}
