package report

import (
	"testing"
	"time"

	"github.com/infobits/helpdesk"
)

// TestHolds: the emails held in the month are counted by reason — over an SLA24 limit (R11)
// and a lapsed free status (R21) — each with how many staff released; other reasons and other
// months do not count.
func TestHolds(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.ParseInLocation(time.DateTime, s, helpdesk.Amsterdam())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	held := []*helpdesk.Held{
		{Reason: helpdesk.HeldOverLimit, Received: at("2026-11-02 10:00:00")},
		{Reason: helpdesk.HeldOverLimit, Received: at("2026-11-30 23:59:59"), Released: true},
		{Reason: helpdesk.HeldSLA24Lapsed, Received: at("2026-11-01 00:00:00")},
		{Reason: helpdesk.HeldSLA24Lapsed, Received: at("2026-11-12 09:00:00"), Released: true},
		{Reason: helpdesk.HeldSLA24Lapsed, Received: at("2026-11-13 09:00:00")},
		{Reason: helpdesk.HeldSLA24Lapsed, Received: at("2026-10-31 23:59:59")}, // October
		{Reason: helpdesk.HeldOverLimit, Received: at("2026-12-01 00:00:00")},   // December
		{Reason: helpdesk.HeldUnknownSender, Received: at("2026-11-05 10:00:00")},
	}
	r := Build(Input{Month: Month{2026, time.November}, Now: at("2026-12-06 10:00:00"), Held: held})
	if r.Holds != (LimitHolds{Held: 2, Released: 1}) {
		t.Errorf("SLA24 limit holds = %+v, want 2 held, 1 released", r.Holds)
	}
	if r.Lapsed != (LimitHolds{Held: 3, Released: 1}) {
		t.Errorf("lapsed holds = %+v, want 3 held, 1 released", r.Lapsed)
	}
}
