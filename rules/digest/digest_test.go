package digest

import (
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/calendar"
)

func at(s string) time.Time {
	t, err := time.ParseInLocation(time.DateTime, s, helpdesk.Amsterdam())
	if err != nil {
		panic(err)
	}
	return t
}

// TestScheduleDue: the digest is due at its time on working days only, once a day; a holiday
// (R9) is no working day; the next one is announced.
func TestScheduleDue(t *testing.T) {
	cals, err := calendar.NewSet(nil, calendar.Rules{DutchHolidays: true})
	if err != nil {
		t.Fatal(err)
	}
	clock, off, err := ParseClock("08:30")
	if err != nil || off {
		t.Fatal(err)
	}
	s := Schedule{Clock: clock, Cal: cals.Helpdesk}
	mon := helpdesk.Date{Year: 2026, Month: time.November, Day: 30}
	for _, c := range []struct {
		now  string
		last helpdesk.Date
		due  bool
		next string
	}{
		{"2026-11-30 08:29:59", helpdesk.Date{}, false, "2026-11-30 08:30:00"},
		{"2026-11-30 08:30:00", helpdesk.Date{}, true, ""},
		{"2026-11-30 11:00:00", helpdesk.Date{}, true, ""}, // down at 08:30: sent at start
		{"2026-11-30 11:00:00", mon, false, "2026-12-01 08:30:00"},
		{"2026-11-28 09:00:00", helpdesk.Date{}, false, "2026-11-30 08:30:00"}, // Saturday
		{"2026-12-24 17:00:00", helpdesk.Date{}, true, ""},
		{"2026-12-24 17:00:00", helpdesk.Date{Year: 2026, Month: 12, Day: 24}, false, "2026-12-28 08:30:00"}, // Christmas
	} {
		due, next := s.Due(at(c.now), c.last)
		if due != c.due || (c.next != "" && !next.Equal(at(c.next))) {
			t.Errorf("Due(%s, last %v) = %v, %v; want %v, %s", c.now, c.last, due, next, c.due, c.next)
		}
	}
	if _, _, err := ParseClock("8.30"); err == nil {
		t.Error("ParseClock(8.30) accepted")
	}
	if _, off, _ := ParseClock("off"); !off {
		t.Error("ParseClock(off) is not off")
	}
}
