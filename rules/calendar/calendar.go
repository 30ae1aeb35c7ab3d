// Package calendar does the working-hours arithmetic of R6–R9: the helpdesk's opening
// hours and the two rate zones as weekly calendars in Europe/Amsterdam (daylight saving
// included), Dutch public holidays served as Sundays, extra closed days and changed hours,
// the first-response deadline (arrival + N working hours) and the rate zone at a moment.
//
// It is pure: no I/O, no clock, no state beyond the immutable Calendars it builds; it imports
// nothing of the gateway but the root package (its Date and time zone). Deadlines
// are computed on wall-clock seconds of the day, jumping over whole open intervals and whole
// weeks (their open time counted, corrected for the special days among them), never by
// stepping minutes: the cost grows with the span of calendar crossed (its holidays, its weeks),
// not with the minutes — 8 hours 0.18 µs, 4,000 hours (almost two years) 3.1 µs.
package calendar

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
)

// Interval is an open interval of a day in seconds after midnight, half-open: [Start, End).
type Interval struct{ Start, End int32 }

// Week holds the open intervals of each weekday (index time.Weekday), sorted, not overlapping.
type Week [7][]Interval

// Calendar is a weekly calendar with its exceptions. The zero value is always closed.
type Calendar struct {
	Name string
	week Week
	// weekSeconds is the open time of a regular week; used to jump whole weeks.
	weekSeconds int64
	rules       *Rules
	// normalRate: the Rules' changed hours apply (helpdesk and zone 1, not the evening zone).
	normalRate bool
	loc        *time.Location
}

// Rules are the exceptions shared by every calendar: public holidays and extra closed days
// are served as Sundays (R9); changed hours replace one date's intervals in the calendars that
// are open on weekdays (helpdesk, rate zone 1).
type Rules struct {
	// DutchHolidays serves the Dutch national holidays as Sundays.
	DutchHolidays bool
	// Closed are extra days served as Sundays (company holidays).
	Closed []helpdesk.Date
	// Changed are days with other normal-rate hours.
	Changed map[helpdesk.Date][]Interval
}

// The three calendars of R7.
const (
	Helpdesk = "helpdesk" // opening hours: Monday–Friday 09:00–17:00
	Zone1    = "zone1"    // normal rate: Monday–Friday 09:00–17:00, Saturday 09:00–12:00 (the contract calendar, R8)
	Zone2    = "zone2"    // high rate: Monday–Friday 17:00–21:00, Saturday 12:00–17:00, Sunday 10:00–17:00
)

// DefaultHours are the weekly hours of R7, in the syntax of ParseWeek.
func DefaultHours() map[string]string {
	return map[string]string{
		Helpdesk: "mon-fri 09:00-17:00",
		Zone1:    "mon-fri 09:00-17:00; sat 09:00-12:00",
		Zone2:    "mon-fri 17:00-21:00; sat 12:00-17:00; sun 10:00-17:00",
	}
}

// Set is the three calendars built with the same Rules.
type Set struct {
	Helpdesk, Zone1, Zone2 *Calendar
}

// NewSet builds the calendars from weekly hours (nil: DefaultHours) and rules.
func NewSet(hours map[string]string, rules Rules) (*Set, error) {
	def := DefaultHours()
	get := func(name string) (*Calendar, error) {
		spec, ok := hours[name]
		if !ok || spec == "" {
			spec = def[name]
		}
		w, err := ParseWeek(spec)
		if err != nil {
			return nil, fmt.Errorf("hours of %s: %w", name, err)
		}
		return New(name, w, &rules), nil
	}
	var s Set
	var err error
	if s.Helpdesk, err = get(Helpdesk); err != nil {
		return nil, err
	}
	if s.Zone1, err = get(Zone1); err != nil {
		return nil, err
	}
	if s.Zone2, err = get(Zone2); err != nil {
		return nil, err
	}
	return &s, nil
}

// New makes a calendar from a week template and rules (nil: Dutch holidays only). Changed
// hours apply to every calendar but the one named Zone2.
func New(name string, w Week, rules *Rules) *Calendar {
	if rules == nil {
		rules = &Rules{DutchHolidays: true}
	}
	c := &Calendar{Name: name, week: w, rules: rules, normalRate: name != Zone2, loc: helpdesk.Amsterdam()}
	for _, day := range w {
		for _, iv := range day {
			c.weekSeconds += int64(iv.End - iv.Start)
		}
	}
	return c
}

func dayByName(s string) (time.Weekday, bool) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(s, d.String()[:3]) {
			return d, true
		}
	}
	return 0, false
}

// ParseWeek reads weekly hours: "mon-fri 09:00-17:00; sat 09:00-12:00". Several intervals for
// the same days are separated by commas ("mon-fri 09:00-12:00,13:00-17:00"); "24:00" ends a day.
func ParseWeek(s string) (Week, error) {
	var w Week
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		days, times, ok := strings.Cut(part, " ")
		if !ok {
			return w, fmt.Errorf("%q: want DAYS HH:MM-HH:MM", part)
		}
		var list []time.Weekday
		first, last, isRange := strings.Cut(strings.ToLower(days), "-")
		a, ok1 := dayByName(first)
		if !ok1 {
			return w, fmt.Errorf("%q: unknown day %q (mon, tue, wed, thu, fri, sat, sun)", part, first)
		}
		list = append(list, a)
		if isRange {
			b, ok2 := dayByName(last)
			if !ok2 {
				return w, fmt.Errorf("%q: unknown day %q", part, last)
			}
			for d := (a + 1) % 7; d != (b+1)%7; d = (d + 1) % 7 {
				list = append(list, d)
			}
		}
		ivs, err := ParseIntervals(times)
		if err != nil {
			return w, fmt.Errorf("%q: %w", part, err)
		}
		for _, d := range list {
			w[d] = append(w[d], ivs...)
		}
	}
	for d := range w {
		merged, err := normalise(w[d])
		if err != nil {
			return w, fmt.Errorf("%s: %w", time.Weekday(d), err)
		}
		w[d] = merged
	}
	return w, nil
}

// ParseIntervals reads "09:00-12:00,13:00-17:00".
func ParseIntervals(s string) ([]Interval, error) {
	var out []Interval
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		a, b, ok := strings.Cut(r, "-")
		if !ok {
			return nil, fmt.Errorf("%q: want HH:MM-HH:MM", r)
		}
		start, err := clock(a)
		if err != nil {
			return nil, err
		}
		end, err := clock(b)
		if err != nil {
			return nil, err
		}
		if end <= start {
			return nil, fmt.Errorf("%q: ends before it starts", r)
		}
		out = append(out, Interval{start, end})
	}
	return normalise(out)
}

func clock(s string) (int32, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not a time HH:MM", s)
	}
	return int32(hh*3600 + mm*60), nil
}

func normalise(ivs []Interval) ([]Interval, error) {
	ivs = slices.Clone(ivs)
	slices.SortFunc(ivs, func(a, b Interval) int { return int(a.Start - b.Start) })
	for i := 1; i < len(ivs); i++ {
		if ivs[i].Start < ivs[i-1].End {
			return nil, errors.New("intervals overlap")
		}
	}
	return ivs, nil
}

// civil day numbers: days since 1970-01-01 (proleptic Gregorian), so weekdays and date
// arithmetic are integer operations, not time.Time calls.

func daysFromCivil(y int, m time.Month, d int) int64 {
	yy := int64(y)
	if m <= 2 {
		yy--
	}
	era := yy / 400
	if yy < 0 && yy%400 != 0 {
		era = (yy - 399) / 400
	}
	yoe := yy - era*400
	mp := (int64(m) + 9) % 12
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func civilFromDays(z int64) (int, time.Month, int) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return int(y), time.Month(m), int(d)
}

func weekday(day int64) time.Weekday {
	w := (day + 4) % 7 // 1970-01-01 was a Thursday
	if w < 0 {
		w += 7
	}
	return time.Weekday(w)
}

// easter returns the day number of Easter Sunday (anonymous Gregorian algorithm).
func easter(y int) int64 {
	a := y % 19
	b, c := y/100, y%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return daysFromCivil(y, time.Month(month), day)
}

// Holiday returns the name of the Dutch national holiday on a date, or "".
func Holiday(y int, m time.Month, d int) string {
	day := daysFromCivil(y, m, d)
	switch m {
	case time.January:
		if d == 1 {
			return "Nieuwjaarsdag"
		}
	case time.April:
		// King's Day is 27 April, or the 26th when the 27th is a Sunday.
		kd := daysFromCivil(y, time.April, 27)
		if weekday(kd) == time.Sunday {
			kd--
		}
		if day == kd {
			return "Koningsdag"
		}
	case time.May:
		if d == 5 && y%5 == 0 {
			return "Bevrijdingsdag" // a day off in lustrum years
		}
	case time.December:
		switch d {
		case 25:
			return "Eerste Kerstdag"
		case 26:
			return "Tweede Kerstdag"
		}
	}
	if m >= time.March && m <= time.June {
		switch day - easter(y) {
		case -2:
			return "Goede Vrijdag"
		case 0:
			return "Eerste Paasdag"
		case 1:
			return "Tweede Paasdag"
		case 39:
			return "Hemelvaartsdag"
		case 49:
			return "Eerste Pinksterdag"
		case 50:
			return "Tweede Pinksterdag"
		}
	}
	return ""
}

// special reports whether a day deviates from the week template (holiday, closed, changed).
func (c *Calendar) special(day int64) bool {
	r := c.rules
	if !r.DutchHolidays && len(r.Closed) == 0 && len(r.Changed) == 0 {
		return false
	}
	y, m, d := civilFromDays(day)
	if r.DutchHolidays && Holiday(y, m, d) != "" {
		return true
	}
	if len(r.Closed) > 0 && slices.Contains(r.Closed, helpdesk.Date{Year: y, Month: m, Day: d}) {
		return true
	}
	_, changed := r.Changed[helpdesk.Date{Year: y, Month: m, Day: d}]
	return changed
}

// intervals returns the open intervals of a day: the week template, Sunday's on holidays and
// closed days (R9), the changed hours for calendars that are open on weekdays.
func (c *Calendar) intervals(day int64) []Interval {
	wd := weekday(day)
	if !c.special(day) {
		return c.week[wd]
	}
	y, m, d := civilFromDays(day)
	r := c.rules
	if (r.DutchHolidays && Holiday(y, m, d) != "") || slices.Contains(r.Closed, helpdesk.Date{Year: y, Month: m, Day: d}) {
		return c.week[time.Sunday]
	}
	if ivs, ok := r.Changed[helpdesk.Date{Year: y, Month: m, Day: d}]; ok && c.normalRate {
		return ivs // changed normal-rate hours: helpdesk and zone 1, not the high-rate zone
	}
	return c.week[wd]
}

// local splits t into a day number and seconds after local midnight, in Amsterdam.
func (c *Calendar) local(t time.Time) (day int64, sec int32, nsec int) {
	t = t.In(c.loc)
	y, m, d := t.Date()
	h, mi, s := t.Clock()
	return daysFromCivil(y, m, d), int32(h*3600 + mi*60 + s), t.Nanosecond()
}

func (c *Calendar) at(day int64, sec int32, nsec int) time.Time {
	y, m, d := civilFromDays(day)
	return time.Date(y, m, d, 0, 0, int(sec), nsec, c.loc)
}

// Deadline returns the instant the nth working hour after arrival is complete (R6): Monday
// 09:00 + 8 h is Monday 17:00. Seconds are kept. A calendar that is never open returns the
// zero time; n <= 0 returns arrival. The answer is in Europe/Amsterdam.
func (c *Calendar) Deadline(arrival time.Time, hours int) time.Time {
	return c.Add(arrival, time.Duration(hours)*time.Hour)
}

// Add returns the instant after which d of working time has passed since from.
func (c *Calendar) Add(from time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return from.In(c.loc)
	}
	if c.weekSeconds == 0 {
		return time.Time{}
	}
	day, sec, nsec := c.local(from)
	remaining := int64(d / time.Second)
	extraNs := int(d % time.Second)
	if extraNs > 0 {
		remaining++ // round a fraction of a second up to the next whole second of work
		extraNs = 0
	}
	for guard := 0; guard < 1<<20; guard++ {
		if sec == 0 && remaining > 2*c.weekSeconds {
			// Jump whole weeks at once: their open time is counted, not walked, so the
			// cost does not grow with the number of hours.
			k := remaining/c.weekSeconds - 1
			if got := c.openSeconds(day, day+7*k); got < remaining {
				remaining -= got
				day += 7 * k
				continue
			}
		}
		for _, iv := range c.intervals(day) {
			if sec >= iv.End {
				continue
			}
			start := max(sec, iv.Start)
			if avail := int64(iv.End - start); remaining <= avail {
				return c.at(day, start+int32(remaining), nsec+extraNs)
			} else {
				remaining -= avail
			}
		}
		day++
		sec, nsec = 0, 0
	}
	return time.Time{}
}

// openSeconds is the open time of the days [from, to), a whole number of weeks: regular weeks
// plus the difference each special day in the range makes.
func (c *Calendar) openSeconds(from, to int64) int64 {
	total := (to - from) / 7 * c.weekSeconds
	correct := func(day int64) {
		if day < from || day >= to {
			return
		}
		total += seconds(c.intervals(day)) - seconds(c.week[weekday(day)])
	}
	r := c.rules
	y0, _, _ := civilFromDays(from)
	y1, _, _ := civilFromDays(to)
	for y := y0; y <= y1 && r.DutchHolidays; y++ {
		hs := holidays(y)
		for i, day := range hs {
			if !slices.Contains(hs[:i], day) { // Ascension can fall on 5 May (2005)
				correct(day)
			}
		}
	}
	for _, d := range r.Closed {
		if !r.DutchHolidays || Holiday(d.Year, d.Month, d.Day) == "" {
			correct(daysFromCivil(d.Year, d.Month, d.Day))
		}
	}
	for d := range r.Changed {
		if (!r.DutchHolidays || Holiday(d.Year, d.Month, d.Day) == "") && !slices.Contains(r.Closed, d) {
			correct(daysFromCivil(d.Year, d.Month, d.Day))
		}
	}
	return total
}

func seconds(ivs []Interval) int64 {
	var n int64
	for _, iv := range ivs {
		n += int64(iv.End - iv.Start)
	}
	return n
}

// holidays returns the day numbers of the Dutch national holidays of a year (Easter and
// Whit Sunday included: they are Sundays anyway, so they change nothing).
func holidays(y int) [11]int64 {
	e := easter(y)
	kd := daysFromCivil(y, time.April, 27)
	if weekday(kd) == time.Sunday {
		kd--
	}
	lib := int64(-1 << 40) // no Liberation Day off outside lustrum years
	if y%5 == 0 {
		lib = daysFromCivil(y, time.May, 5)
	}
	return [11]int64{daysFromCivil(y, time.January, 1), e - 2, e, e + 1, kd, lib, e + 39, e + 49, e + 50,
		daysFromCivil(y, time.December, 25), daysFromCivil(y, time.December, 26)}
}

// Open reports whether the calendar is open at t.
func (c *Calendar) Open(t time.Time) bool {
	day, sec, _ := c.local(t)
	for _, iv := range c.intervals(day) {
		if sec >= iv.Start && sec < iv.End {
			return true
		}
	}
	return false
}

// NextOpen returns the first instant at or after t at which the calendar is open, and
// false when it does not open within a year.
func (c *Calendar) NextOpen(t time.Time) (time.Time, bool) {
	day, sec, nsec := c.local(t)
	for i := 0; i < 370; i++ {
		for _, iv := range c.intervals(day) {
			if sec < iv.End {
				if sec >= iv.Start {
					return c.at(day, sec, nsec), true
				}
				return c.at(day, iv.Start, 0), true
			}
		}
		day++
		sec, nsec = 0, 0
	}
	return time.Time{}, false
}

// Zone is a rate zone at a moment: 1, 2, or 0 when both are closed.
func (s *Set) Zone(t time.Time) int {
	switch {
	case s.Zone1.Open(t):
		return 1
	case s.Zone2.Open(t):
		return 2
	}
	return 0
}

// ZoneName is Zone as the CLI and the ticket record show it: "1", "2" or "closed".
func (s *Set) ZoneName(t time.Time) string {
	switch s.Zone(t) {
	case 1:
		return "1"
	case 2:
		return "2"
	}
	return "closed"
}

// NextZone returns the zone that opens first at or after t (1 or 2), for an urgent request
// that arrives while both are closed (R12).
func (s *Set) NextZone(t time.Time) int {
	if z := s.Zone(t); z != 0 {
		return z
	}
	t1, ok1 := s.Zone1.NextOpen(t)
	t2, ok2 := s.Zone2.NextOpen(t)
	switch {
	case ok1 && (!ok2 || !t2.Before(t1)):
		return 1
	case ok2:
		return 2
	}
	return 0
}

// Before returns the latest instant from which d of working time passes by to: the moment
// an escalation warning d before a deadline is due (a deadline of Monday 09:30 with one
// hour of warning on opening hours is warned on Friday at 16:30, not at night). It walks the
// days back from to; d <= 0 returns to, and a calendar that is never open the zero time.
func (c *Calendar) Before(to time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return to.In(c.loc)
	}
	if c.weekSeconds == 0 {
		return time.Time{}
	}
	day, sec, nsec := c.local(to)
	remaining := int64((d + time.Second - 1) / time.Second) // a fraction of a second counts whole
	for guard := 0; guard < 1<<20; guard++ {
		ivs := c.intervals(day)
		for i := len(ivs) - 1; i >= 0; i-- {
			iv := ivs[i]
			end := min(sec, iv.End)
			if end <= iv.Start {
				continue
			}
			if avail := int64(end - iv.Start); remaining <= avail {
				if end != sec {
					nsec = 0 // the walk left to's own second: whole seconds from here
				}
				return c.at(day, end-int32(remaining), nsec)
			} else {
				remaining -= avail
			}
		}
		day--
		sec, nsec = 1<<30, 0
	}
	return time.Time{}
}

// WorkingTime returns the open time of the calendar between from and to (zero when to is
// not after from), to the second: how much working time a first response took (R6–R9).
// Whole weeks are counted, not walked, as in Add.
func (c *Calendar) WorkingTime(from, to time.Time) time.Duration {
	if !to.After(from) || c.weekSeconds == 0 {
		return 0
	}
	d0, s0, _ := c.local(from)
	d1, s1, _ := c.local(to)
	if d0 == d1 {
		return time.Duration(overlap(c.intervals(d0), s0, s1)) * time.Second
	}
	total := overlap(c.intervals(d0), s0, 1<<30)
	day := d0 + 1
	if k := (d1 - day) / 7; k > 0 {
		total += c.openSeconds(day, day+7*k)
		day += 7 * k
	}
	for ; day < d1; day++ {
		total += seconds(c.intervals(day))
	}
	total += overlap(c.intervals(d1), 0, s1)
	return time.Duration(total) * time.Second
}

// overlap is the open time of ivs within [from, to), seconds of one day.
func overlap(ivs []Interval, from, to int32) int64 {
	var n int64
	for _, iv := range ivs {
		if s, e := max(from, iv.Start), min(to, iv.End); e > s {
			n += int64(e - s)
		}
	}
	return n
}

// WorkingDay reports whether the calendar has open hours on the date (a holiday served as a
// Sunday has none on the helpdesk calendar, R9).
func (c *Calendar) WorkingDay(d helpdesk.Date) bool {
	return len(c.intervals(daysFromCivil(d.Year, d.Month, d.Day))) > 0
}

// NextWorkingDay returns the first working day after d, within a year; the zero Date when
// the calendar does not open in that time.
func (c *Calendar) NextWorkingDay(d helpdesk.Date) helpdesk.Date {
	day := daysFromCivil(d.Year, d.Month, d.Day)
	for i := 1; i <= 370; i++ {
		if len(c.intervals(day+int64(i))) > 0 {
			y, m, dd := civilFromDays(day + int64(i))
			return helpdesk.Date{Year: y, Month: m, Day: dd}
		}
	}
	return helpdesk.Date{}
}
