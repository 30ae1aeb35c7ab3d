package calendar

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestBefore: the warning instant lies in working time, the night and the weekend skipped.
func TestBefore(t *testing.T) {
	s := set(t, Rules{DutchHolidays: true})
	cases := []struct {
		name string
		cal  *Calendar
		due  string
		d    time.Duration
		want string
	}{
		{"inside the day", s.Helpdesk, "2026-11-30 13:00", time.Hour, "2026-11-30 12:00"},
		{"at an interval start: the start, not the evening before", s.Helpdesk, "2026-11-30 10:00", time.Hour, "2026-11-30 09:00"},
		{"over the weekend", s.Helpdesk, "2026-11-30 09:30", time.Hour, "2026-11-27 16:30"},
		{"the contract calendar counts Saturday morning", s.Zone1, "2026-11-30 09:30", time.Hour, "2026-11-28 11:30"},
		{"a deadline at closing time", s.Helpdesk, "2026-11-27 17:00", 30 * time.Minute, "2026-11-27 16:30"},
		{"over Christmas (holidays served as Sundays)", s.Helpdesk, "2026-12-28 09:30", time.Hour, "2026-12-24 16:30"},
		{"seconds kept", s.Helpdesk, "2026-11-30 13:00:30", time.Hour, "2026-11-30 12:00:30"},
		{"zero", s.Helpdesk, "2026-11-30 13:00", 0, "2026-11-30 13:00"},
	}
	for _, c := range cases {
		if got := c.cal.Before(at(c.due), c.d); !got.Equal(at(c.want)) {
			t.Errorf("%s: %s.Before(%s, %v) = %v, want %s", c.name, c.cal.Name, c.due, c.d, got.In(ams), c.want)
		}
	}
	if got := New("never", Week{}, nil).Before(at("2026-11-30 13:00"), time.Hour); !got.IsZero() {
		t.Errorf("a calendar never open: Before = %v, want the zero time", got)
	}
}

func TestWorkingTime(t *testing.T) {
	s := set(t, Rules{DutchHolidays: true})
	cases := []struct {
		cal      *Calendar
		from, to string
		want     time.Duration
	}{
		{s.Helpdesk, "2026-11-30 10:00", "2026-11-30 11:30", 90 * time.Minute},
		{s.Helpdesk, "2026-11-27 16:00", "2026-11-30 16:00", 8 * time.Hour},         // the page's example
		{s.Zone1, "2026-11-27 16:00", "2026-11-30 13:00", 8 * time.Hour},            // with a contract
		{s.Helpdesk, "2026-11-28 10:00", "2026-11-28 11:00", 0},                     // Saturday: closed
		{s.Helpdesk, "2026-12-24 16:00", "2026-12-28 10:00", 2 * time.Hour},         // Christmas
		{s.Helpdesk, "2026-11-02 09:00", "2026-11-30 09:00", 4 * 5 * 8 * time.Hour}, // whole weeks
		{s.Helpdesk, "2026-11-30 11:00", "2026-11-30 10:00", 0},
	}
	for _, c := range cases {
		if got := c.cal.WorkingTime(at(c.from), at(c.to)); got != c.want {
			t.Errorf("%s.WorkingTime(%s, %s) = %v, want %v", c.cal.Name, c.from, c.to, got, c.want)
		}
	}
}

// TestWorkingTimeProperties: WorkingTime undoes Deadline, and Before undoes Add, on random
// instants of three calendars over seven years.
func TestWorkingTimeProperties(t *testing.T) {
	s := set(t, Rules{DutchHolidays: true})
	rng := rand.New(rand.NewPCG(3, 4))
	start := at("2024-01-01 00:00").Unix()
	end := at("2030-12-31 00:00").Unix()
	for i := range 400 {
		cal := []*Calendar{s.Helpdesk, s.Zone1, s.Zone2}[i%3]
		from := time.Unix(start+rng.Int64N(end-start), 0)
		d := time.Duration(rng.Int64N(int64(60*time.Hour))).Truncate(time.Second) + time.Second
		if i%50 == 7 {
			d = time.Duration(500+rng.IntN(2000)) * time.Hour
		}
		due := cal.Add(from, d)
		if got := cal.WorkingTime(from, due); got != d {
			t.Fatalf("%s: WorkingTime(%v, Add(.., %v)=%v) = %v", cal.Name, from.In(ams), d, due.In(ams), got)
		}
		w := cal.Before(due, d)
		if got := cal.WorkingTime(w, due); got != d {
			t.Fatalf("%s: WorkingTime(Before(%v, %v)=%v, ..) = %v", cal.Name, due.In(ams), d, w.In(ams), got)
		}
		if w.Before(from) || cal.WorkingTime(from, w) != 0 {
			t.Fatalf("%s: Before(%v, %v) = %v, not the latest such instant after %v", cal.Name, due.In(ams), d, w.In(ams), from.In(ams))
		}
		if !cal.Open(w) {
			t.Errorf("%s: Before(%v, %v) = %v, not working time", cal.Name, due.In(ams), d, w.In(ams))
		}
	}
}
