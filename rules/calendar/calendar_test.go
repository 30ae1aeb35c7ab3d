package calendar

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
)

func set(t testing.TB, rules Rules) *Set {
	t.Helper()
	s, err := NewSet(nil, rules)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var ams = helpdesk.Amsterdam()

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, ams)
	if err != nil {
		t, err = time.ParseInLocation("2006-01-02 15:04", s, ams)
	}
	if err != nil {
		panic(err)
	}
	return t
}

// TestWorkedExample is the page's own example (R8): a question on Friday at 16:00 under SLA8
// reaches its 8 working hours on Monday at 13:00 with a contract, 16:00 without.
func TestWorkedExample(t *testing.T) {
	s := set(t, Rules{DutchHolidays: true})
	arrival := at("2026-11-27 16:00")
	if got, want := s.Zone1.Deadline(arrival, 8), at("2026-11-30 13:00"); !got.Equal(want) {
		t.Errorf("contract: Deadline(Fri 16:00, 8) = %v, want %v", got, want)
	}
	if got, want := s.Helpdesk.Deadline(arrival, 8), at("2026-11-30 16:00"); !got.Equal(want) {
		t.Errorf("helpdesk: Deadline(Fri 16:00, 8) = %v, want %v", got, want)
	}
	if got := s.Zone1.Deadline(arrival, 8).Format(time.RFC3339); got != "2026-11-30T13:00:00+01:00" {
		t.Errorf("RFC 3339 = %s", got)
	}
}

func TestDeadline(t *testing.T) {
	s := set(t, Rules{DutchHolidays: true})
	cases := []struct {
		name    string
		cal     *Calendar
		arrival string
		hours   int
		want    string
	}{
		{"the Nth hour complete, not the next morning", s.Helpdesk, "2026-11-30 09:00", 8, "2026-11-30 17:00"},
		{"inside an interval", s.Helpdesk, "2026-11-30 10:00", 4, "2026-11-30 14:00"},
		{"seconds kept", s.Helpdesk, "2026-11-30 10:15:30", 4, "2026-11-30 14:15:30"},
		{"before opening", s.Helpdesk, "2026-11-30 07:12", 1, "2026-11-30 10:00"},
		{"after closing", s.Helpdesk, "2026-11-30 18:00", 1, "2026-12-01 10:00"},
		{"at closing time: half-open", s.Helpdesk, "2026-11-30 17:00", 1, "2026-12-01 10:00"},
		{"weekend", s.Helpdesk, "2026-11-28 13:00", 2, "2026-11-30 11:00"},
		{"Saturday morning counts with a contract", s.Zone1, "2026-11-28 10:00", 3, "2026-11-30 10:00"},
		{"between intervals: Saturday afternoon", s.Zone1, "2026-11-28 12:00", 1, "2026-11-30 10:00"},
		{"SLA24 over a weekend", s.Helpdesk, "2026-11-27 16:00", 24, "2026-12-02 16:00"},
		{"zero hours", s.Helpdesk, "2026-11-28 03:00", 0, "2026-11-28 03:00"},
		// Holidays are served as Sundays (R9).
		{"Christmas and Boxing Day", s.Helpdesk, "2026-12-24 16:00", 8, "2026-12-28 16:00"},
		{"Boxing Day on a Saturday: no Saturday morning", s.Zone1, "2026-12-24 16:00", 8, "2026-12-28 16:00"},
		{"Good Friday and Easter Monday", s.Helpdesk, "2026-04-02 16:00", 8, "2026-04-07 16:00"},
		{"King's Day on the 27th", s.Helpdesk, "2026-04-24 16:00", 8, "2026-04-28 16:00"},
		{"King's Day moved to Saturday the 26th (27 April 2025 is a Sunday)", s.Zone1, "2025-04-25 16:00", 4, "2025-04-28 12:00"},
		{"Liberation Day in a lustrum year", s.Helpdesk, "2025-05-02 16:00", 8, "2025-05-06 16:00"},
		{"Liberation Day not in 2026", s.Helpdesk, "2026-05-04 16:00", 8, "2026-05-05 16:00"},
		{"Ascension Day", s.Helpdesk, "2026-05-13 16:00", 8, "2026-05-15 16:00"},
		{"Whit Monday", s.Helpdesk, "2026-05-22 16:00", 8, "2026-05-26 16:00"},
		{"New Year", s.Helpdesk, "2026-12-31 16:00", 8, "2027-01-04 16:00"},
		// Daylight saving: working hours are wall-clock hours in Amsterdam.
		{"spring forward (29 March 2026)", s.Helpdesk, "2026-03-27 16:00", 8, "2026-03-30 16:00"},
		{"fall back (25 October 2026)", s.Helpdesk, "2026-10-23 16:00", 8, "2026-10-26 16:00"},
		{"zone 2 on the spring-forward Sunday", s.Zone2, "2026-03-29 09:00", 7, "2026-03-29 17:00"},
		{"Ascension Day on Liberation Day (2005)", s.Helpdesk, "2005-05-04 16:00", 8, "2005-05-06 16:00"},
		{"4,000 hours (500 weeks of 8-hour days, minus holidays)", s.Helpdesk, "2026-11-27 16:00", 4000, "2028-11-14 16:00"},
	}
	for _, tc := range cases {
		got := tc.cal.Deadline(at(tc.arrival), tc.hours)
		if want := at(tc.want); !got.Equal(want) || got.Location().String() != "Europe/Amsterdam" {
			t.Errorf("%s: %s.Deadline(%s, %d) = %v, want %v", tc.name, tc.cal.Name, tc.arrival, tc.hours, got, want)
		}
	}
}

// TestDeadlineMachineZone: the answer is the same instant, in Amsterdam, whatever zone the
// arrival is given in (the machine's own zone).
func TestDeadlineMachineZone(t *testing.T) {
	s := set(t, Rules{DutchHolidays: true})
	want := at("2026-11-30 13:00")
	for _, zone := range []string{"UTC", "America/New_York", "Asia/Tokyo"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Zone1.Deadline(at("2026-11-27 16:00").In(loc), 8)
		if !got.Equal(want) || got.Location().String() != "Europe/Amsterdam" {
			t.Errorf("arrival in %s: %v, want %v", zone, got, want)
		}
	}
}

func TestZone(t *testing.T) {
	s := set(t, Rules{DutchHolidays: true})
	cases := []struct {
		at   string
		want string
	}{
		{"2026-11-30 08:59:59", "closed"},
		{"2026-11-30 09:00", "1"},
		{"2026-11-30 16:59:59", "1"},
		{"2026-11-30 17:00", "2"}, // half-open: 17:00 on a weekday is zone 2
		{"2026-11-30 20:59:59", "2"},
		{"2026-11-30 21:00", "closed"},
		{"2026-11-28 11:59", "1"},
		{"2026-11-28 12:00", "2"},
		{"2026-11-28 17:00", "closed"},
		{"2026-11-29 10:00", "2"},
		{"2026-11-29 09:59", "closed"},
		{"2026-04-06 09:30", "closed"}, // Easter Monday: Sunday hours (R9)
		{"2026-04-06 11:00", "2"},
	}
	for _, tc := range cases {
		if got := s.ZoneName(at(tc.at)); got != tc.want {
			t.Errorf("ZoneName(%s) = %s, want %s", tc.at, got, tc.want)
		}
	}
	// Outside both zones an urgent request pays the zone that opens next (R12).
	if z := s.NextZone(at("2026-11-30 22:00")); z != 1 {
		t.Errorf("NextZone(Mon 22:00) = %d, want 1", z)
	}
	if z := s.NextZone(at("2026-11-29 08:00")); z != 2 {
		t.Errorf("NextZone(Sun 08:00) = %d, want 2", z)
	}
}

func TestHoliday(t *testing.T) {
	easters := map[int]string{2024: "2024-03-31", 2025: "2025-04-20", 2026: "2026-04-05", 2027: "2027-03-28",
		2028: "2028-04-16", 2029: "2029-04-01", 2030: "2030-04-21", 2038: "2038-04-25", 2285: "2285-03-22"}
	for y, want := range easters {
		yy, m, d := civilFromDays(easter(y))
		if got := (helpdesk.Date{Year: yy, Month: m, Day: d}).String(); got != want {
			t.Errorf("easter(%d) = %s, want %s", y, got, want)
		}
	}
	for _, tc := range []struct {
		date, want string
	}{
		{"2026-01-01", "Nieuwjaarsdag"}, {"2026-04-03", "Goede Vrijdag"}, {"2026-04-06", "Tweede Paasdag"},
		{"2026-04-27", "Koningsdag"}, {"2025-04-26", "Koningsdag"}, {"2025-04-27", ""},
		{"2025-05-05", "Bevrijdingsdag"}, {"2026-05-05", ""}, {"2030-05-05", "Bevrijdingsdag"},
		{"2026-05-14", "Hemelvaartsdag"}, {"2026-05-25", "Tweede Pinksterdag"},
		{"2026-12-25", "Eerste Kerstdag"}, {"2026-12-26", "Tweede Kerstdag"}, {"2026-12-24", ""},
	} {
		d := at(tc.date + " 12:00")
		if got := Holiday(d.Year(), d.Month(), d.Day()); got != tc.want {
			t.Errorf("Holiday(%s) = %q, want %q", tc.date, got, tc.want)
		}
	}
}

func TestRulesFromConfig(t *testing.T) {
	rules := Rules{
		DutchHolidays: true,
		Closed:        []helpdesk.Date{{Year: 2026, Month: 12, Day: 31}},
		Changed:       map[helpdesk.Date][]Interval{{Year: 2026, Month: 12, Day: 24}: {{9 * 3600, 13 * 3600}}},
	}
	s := set(t, rules)
	// Thursday 24 December closes at 13:00, the 25th and 26th are holidays, the 31st is closed.
	if got, want := s.Helpdesk.Deadline(at("2026-12-24 12:00"), 2), at("2026-12-28 10:00"); !got.Equal(want) {
		t.Errorf("changed hours: %v, want %v", got, want)
	}
	if got, want := s.Helpdesk.Deadline(at("2026-12-30 16:00"), 2), at("2027-01-04 10:00"); !got.Equal(want) {
		t.Errorf("closed day: %v, want %v", got, want)
	}
	if s.Zone2.Open(at("2026-12-24 18:00")) != true {
		t.Error("changed normal-rate hours must not close the high-rate evening")
	}
	noHolidays := set(t, Rules{})
	if got, want := noHolidays.Helpdesk.Deadline(at("2026-12-24 16:00"), 8), at("2026-12-25 16:00"); !got.Equal(want) {
		t.Errorf("holidays off: %v, want %v", got, want)
	}
	custom, err := NewSet(map[string]string{Helpdesk: "mon-fri 08:30-12:00,13:00-17:30"}, Rules{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := custom.Helpdesk.Deadline(at("2026-11-30 11:00"), 2), at("2026-11-30 14:00"); !got.Equal(want) {
		t.Errorf("custom hours with a lunch break: %v, want %v", got, want)
	}
}

func TestParseWeekErrors(t *testing.T) {
	for _, bad := range []string{"mon 09:00", "xyz 09:00-10:00", "mon 10:00-09:00", "mon 09:00-12:00,11:00-13:00", "mon 25:00-26:00", "mon 9-17"} {
		if _, err := ParseWeek(bad); err == nil {
			t.Errorf("ParseWeek(%q) = nil error", bad)
		}
	}
	w, err := ParseWeek("fri-mon 10:00-11:00")
	if err != nil || len(w[time.Saturday]) != 1 || len(w[time.Monday]) != 1 || len(w[time.Tuesday]) != 0 {
		t.Errorf("ParseWeek(fri-mon) = %v, %v", w, err)
	}
}

// naive counts working time second by second (well, minute by minute on the grid of the
// calendars): the oracle for the property tests.
func naive(c *Calendar, from time.Time, hours int) time.Time {
	remaining := int64(hours) * 3600
	t := from.In(ams)
	if remaining == 0 {
		return t
	}
	// Step to the next whole minute first, counting the part minute if open.
	for {
		step := time.Minute - time.Duration(t.Second())*time.Second - time.Duration(t.Nanosecond())
		if c.Open(t) {
			if remaining*int64(time.Second) <= int64(step) {
				return t.Add(time.Duration(remaining) * time.Second)
			}
			remaining -= int64(step / time.Second)
		}
		t = t.Add(step)
	}
}

// TestProperties: against a minute-stepping oracle, and the algebra of deadlines — the result
// lies in working time, a then b hours equals a+b, later arrivals never get earlier deadlines.
func TestProperties(t *testing.T) {
	s := set(t, Rules{DutchHolidays: true})
	rng := rand.New(rand.NewPCG(1, 2))
	start := at("2024-01-01 00:00").Unix()
	end := at("2030-12-31 00:00").Unix()
	for i := range 400 {
		cal := []*Calendar{s.Helpdesk, s.Zone1, s.Zone2}[i%3]
		arrival := time.Unix(start+rng.Int64N(end-start), 0)
		if i%5 == 0 {
			arrival = arrival.Truncate(time.Hour) // exact boundaries matter most
		}
		n := rng.IntN(60)
		if i%100 == 7 {
			n = 500 + rng.IntN(2000) // long enough to jump whole weeks
		}
		got := cal.Deadline(arrival, n)
		if want := naive(cal, arrival, n); !got.Equal(want) {
			t.Fatalf("%s.Deadline(%v, %d) = %v, oracle %v", cal.Name, arrival.In(ams), n, got, want)
		}
		if n > 0 && !cal.Open(got.Add(-time.Second)) {
			t.Errorf("%s.Deadline(%v, %d) = %v: the second before is not working time", cal.Name, arrival.In(ams), n, got)
		}
		a, b := rng.IntN(40), rng.IntN(40)
		if x, y := cal.Deadline(cal.Deadline(arrival, a), b), cal.Deadline(arrival, a+b); !x.Equal(y) && a > 0 {
			t.Errorf("%s: Deadline(Deadline(%v, %d), %d) = %v, Deadline(.., %d) = %v", cal.Name, arrival.In(ams), a, b, x, a+b, y)
		}
		later := arrival.Add(time.Duration(rng.Int64N(int64(72 * time.Hour))))
		if cal.Deadline(later, n).Before(got) {
			t.Errorf("%s: deadline went backwards: arrival %v → %v, later %v → %v", cal.Name, arrival, got, later, cal.Deadline(later, n))
		}
	}
}

func BenchmarkDeadline(b *testing.B) {
	s := set(b, Rules{DutchHolidays: true})
	arrival := at("2026-11-27 16:00")
	for _, n := range []int{4, 8, 24, 4000, 40000} {
		b.Run(time.Duration(n*int(time.Hour)).String(), func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				s.Zone1.Deadline(arrival.Add(time.Duration(i%1000)*time.Minute), n)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deadlines/s")
		})
	}
}
