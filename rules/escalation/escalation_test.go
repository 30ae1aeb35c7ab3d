package escalation

import (
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/calendar"
)

var ams = helpdesk.Amsterdam()

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, ams)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParse(t *testing.T) {
	th, err := Parse(DefaultThresholds)
	if err != nil {
		t.Fatal(err)
	}
	for tier, want := range map[helpdesk.Tier]time.Duration{helpdesk.SLA24: time.Hour, helpdesk.SLA8: time.Hour, helpdesk.SLA4: 30 * time.Minute} {
		if got := th.For(tier); got != want {
			t.Errorf("For(%s) = %v, want %v", tier, got, want)
		}
	}
	if th.String() != DefaultThresholds {
		t.Errorf("String() = %q, want %q", th.String(), DefaultThresholds)
	}
	th, err = Parse("25%; sla24 off")
	if err != nil {
		t.Fatal(err)
	}
	if got := th.For(helpdesk.SLA8); got != 2*time.Hour {
		t.Errorf("25%% of SLA8 = %v, want 2h", got)
	}
	if got := th.For(helpdesk.SLA24); got != 0 {
		t.Errorf("SLA24 off = %v", got)
	}
	for _, bad := range []string{"1 uur", "SLA9 1h", "150%", "-1h", "SLA8 1h 2h"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestCheck(t *testing.T) {
	cals, err := calendar.NewSet(nil, calendar.Rules{DutchHolidays: true})
	if err != nil {
		t.Fatal(err)
	}
	th, _ := Parse(DefaultThresholds)
	// SLA8 on opening hours, arrived Friday 16:00: due Monday 16:00, warned Monday 15:00.
	tk := &helpdesk.Ticket{ID: 1, Tier: helpdesk.SLA8, Status: helpdesk.StatusOpen, Calendar: helpdesk.CalendarHelpdesk,
		Created: at("2026-11-27 16:00:00"), Due: at("2026-11-30 16:00:00")}
	cal := Calendar(cals, tk)
	steps := []struct {
		now  string
		sent Sent
		want Stage
		next string
	}{
		{"2026-11-28 12:00:00", Sent{}, None, "2026-11-30 15:00:00"}, // Saturday: nothing
		{"2026-11-30 14:59:59", Sent{}, None, "2026-11-30 15:00:00"},
		{"2026-11-30 15:00:00", Sent{}, Warning, ""},
		{"2026-11-30 15:30:00", Sent{Warning: true}, None, ""},
		{"2026-11-30 16:00:00", Sent{Warning: true}, None, ""}, // an answer now is in time
		{"2026-11-30 16:00:01", Sent{Warning: true}, Breach, ""},
		{"2026-11-30 16:00:01", Sent{}, Breach, ""}, // down past the deadline: the breach only
		{"2026-12-01 10:00:00", Sent{Warning: true, Breach: true}, None, ""},
	}
	for _, s := range steps {
		got, next := Check(tk, cal, th, at(s.now), s.sent)
		if got != s.want {
			t.Errorf("Check at %s with %+v = %v, want %v", s.now, s.sent, got, s.want)
		}
		if s.next != "" && !next.Equal(at(s.next)) {
			t.Errorf("Check at %s: next = %v, want %s", s.now, next.In(ams), s.next)
		}
	}
	answered := *tk
	answered.FirstResponse = at("2026-11-30 10:00:00")
	if got, _ := Check(&answered, cal, th, at("2026-12-01 10:00:00"), Sent{}); got != None {
		t.Errorf("an answered ticket: %v", got)
	}
}
