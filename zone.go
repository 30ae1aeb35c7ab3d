package helpdesk

import (
	"sync"
	"time"
	_ "time/tzdata" // Europe/Amsterdam on machines without zoneinfo
)

// Amsterdam is the helpdesk's time zone, Europe/Amsterdam: working hours, deadlines, the day a
// limit counts (R6–R11), backup names and every time shown to staff are in it. The zone data is
// embedded in the binary (time/tzdata), so it loads on any machine; it is parsed once, on first
// use. A binary built without the embedded data is broken, and fails at once: it panics.
func Amsterdam() *time.Location { return amsterdam() }

// amsterdam is computed once; it never changes afterwards (a constant the standard library
// cannot declare).
var amsterdam = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		panic("helpdesk: embedded tzdata lacks Europe/Amsterdam: " + err.Error()) // cannot happen with time/tzdata
	}
	return loc
})

// Today is the calendar date of t in Amsterdam: the day validity dates (R3), limits (R11) and
// the retention rule (R20) count.
func Today(t time.Time) Date { return DateOf(t.In(Amsterdam())) }
