package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestMonthReport: November 2026 taken in through IMAP — customers' questions and staff
// answers at chosen arrival times, an SLA24 email held over the open-tickets limit, callbacks
// — and `helpdesk report -month 2026-11` matches the month counted by hand: per tier the
// tickets opened, first responses, share within the deadline, median and 90th-percentile
// first-response working time (nearest rank), the breaches with their tickets, the limit holds,
// the questions held because the customer's free status lapsed (R21) and the callbacks by
// payment. Tickets of October and December do not count.
func TestMonthReport(t *testing.T) {
	p := newPeers(t)
	env := p.env("HELPDESK_IMAP_BACKLOG_AGE=87600h")
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen") // SLA24
	mustRun(t, env, "customer", "add", "-email", "info@cafedehoek.nl", "-name", "Cafe de Hoek", "-sla", "SLA4", "-contract")
	mustRun(t, env, "customer", "add", "-email", "info@oudbetaald.nl", "-name", "Oud Betaald", "-paid-ended", "2024-06-01") // lapsed since 2 June 2026 (R21)
	mail := func(raw, at string) {
		t.Helper()
		if _, err := p.mem.Append("INBOX", []byte(raw), amsAt(at)); err != nil {
			t.Fatal(err)
		}
	}
	bakkerij, slagerij, hoek := "info@bakkerijdevries.nl", "kassa@slagerijjansen.nl", "info@cafedehoek.nl"
	// #1 October: not counted.
	mail(customerMail(bakkerij, "Oktobervraag", "r1@b", "", "."), "2026-10-30 10:00:00")
	// #2 SLA8 Mon 2 Nov 10:00, due Tue 10:00; answered Mon 12:00: 2 working hours, in time.
	mail(customerMail(bakkerij, "Kassa traag", "r2@b", "", "."), "2026-11-02 10:00:00")
	// #3 SLA8 callback postpaid, Wed 4 Nov 09:00, due Wed 17:00; answered Thu 11:00: 10 h, 2 h late.
	mail(customerMail(bakkerij, "Graag terugbellen postpaid", "r3@b", "", "."), "2026-11-04 09:00:00")
	// #4 SLA8 Fri 6 Nov 16:00, due Mon 9 Nov 16:00; answered Mon 10:00: 2 h (Friday 1, Monday 1).
	mail(customerMail(bakkerij, "Bonrol", "r4@b", "", "."), "2026-11-06 16:00:00")
	// #5 SLA24 callback (prepaid: SLA24), Tue 10 Nov 09:00, due Thu 12 Nov 17:00; answered Wed 09:00: 8 h.
	mail(customerMail(slagerij, "Hulp via anydesk", "r5@s", "", "."), "2026-11-10 09:00:00")
	// #6 SLA24 Mon 16 Nov 09:00, due Wed 18 Nov 17:00; never answered: a breach.
	mail(customerMail(slagerij, "Weegschaal", "r6@s", "", "."), "2026-11-16 09:00:00")
	// held: a third open SLA24 ticket is over sla24_open_tickets (2).
	mail(customerMail(slagerij, "Nog een vraag", "r7@s", "", "."), "2026-11-17 09:00:00")
	// #7 SLA4 contract, urgent, Sat 21 Nov 10:00, due Mon 23 Nov 11:00; answered Mon 09:30: 2.5 h.
	mail(customerMail(hoek, "SPOED pin", "r8@h", "", "."), "2026-11-21 10:00:00")
	// #8 December: not counted.
	mail(customerMail(bakkerij, "Decembervraag", "r9@b", "", "."), "2026-12-01 10:00:00")
	// held: a question of a customer whose free status lapsed (R21).
	mail(customerMail("info@oudbetaald.nl", "Kassa kapot", "r10@o", "", "."), "2026-11-18 09:00:00")
	for id, at := range map[int]string{2: "2026-11-02 12:00:00", 3: "2026-11-05 11:00:00", 4: "2026-11-09 10:00:00",
		5: "2026-11-11 09:00:00", 7: "2026-11-23 09:30:00"} {
		mail(staffAuth+staffMailWith(id, ""), at)
	}
	mustRun(t, env, "serve", "-once")

	var r struct {
		Tiers []struct {
			Tier           string  `json:"sla"`
			Promise        int     `json:"promise_hours"`
			Opened         int     `json:"opened"`
			Urgent         int     `json:"urgent"`
			FirstResponses int     `json:"first_responses"`
			WithinDeadline int     `json:"within_deadline"`
			Share          float64 `json:"share_within_deadline"`
			Median         float64 `json:"median_hours"`
			P90            float64 `json:"p90_hours"`
			Breaches       []struct {
				Ticket   int     `json:"ticket"`
				Late     float64 `json:"late_hours"`
				Customer string  `json:"customer"`
				Answered string  `json:"answered"`
				Subject  string  `json:"subject"`
			} `json:"breaches"`
		} `json:"tiers"`
		Total struct {
			Opened         int     `json:"opened"`
			FirstResponses int     `json:"first_responses"`
			Median         float64 `json:"median_hours"`
			P90            float64 `json:"p90_hours"`
			WithinDeadline int     `json:"within_deadline"`
		} `json:"total"`
		Holds     map[string]int `json:"sla24_limit_holds"`
		Lapsed    map[string]int `json:"sla24_lapsed_holds"`
		Callbacks map[string]int `json:"callbacks"`
	}
	out := mustRun(t, env, "report", "-month", "2026-11", "-json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	type row struct {
		tier                                      string
		promise, opened, urgent, answered, inTime int
		share, median, p90                        float64
		breaches                                  []int
	}
	want := []row{
		{"SLA24", 24, 2, 0, 1, 1, 0.5, 8, 8, []int{6}},
		{"SLA8", 8, 3, 0, 3, 2, 2.0 / 3, 2, 10, []int{3}},
		{"SLA4", 4, 1, 1, 1, 1, 1, 2.5, 2.5, nil},
	}
	if len(r.Tiers) != 3 {
		t.Fatalf("tiers: %s", out)
	}
	for i, w := range want {
		g := r.Tiers[i]
		var bs []int
		for _, b := range g.Breaches {
			bs = append(bs, b.Ticket)
		}
		got := row{g.Tier, g.Promise, g.Opened, g.Urgent, g.FirstResponses, g.WithinDeadline, g.Share, g.Median, g.P90, bs}
		if got.tier != w.tier || got.promise != w.promise || got.opened != w.opened || got.urgent != w.urgent ||
			got.answered != w.answered || got.inTime != w.inTime || got.share != w.share || got.median != w.median ||
			got.p90 != w.p90 || !equalInts(got.breaches, w.breaches) {
			t.Errorf("tier %s = %+v, want %+v", w.tier, got, w)
		}
	}
	if b := r.Tiers[1].Breaches; len(b) == 1 && (b[0].Late != 2 || b[0].Customer != "Bakkerij de Vries" || b[0].Subject != "Graag terugbellen postpaid") {
		t.Errorf("the SLA8 breach = %+v, want ticket 3, 2 working hours late", b[0])
	}
	if r.Total.Opened != 6 || r.Total.FirstResponses != 5 || r.Total.WithinDeadline != 4 || r.Total.Median != 2.5 || r.Total.P90 != 10 {
		t.Errorf("total = %+v, want 6 opened, 5 answered, 4 in time, median 2.5, p90 10", r.Total)
	}
	if r.Holds["held"] != 1 || r.Holds["released"] != 0 {
		t.Errorf("limit holds = %v, want 1 held", r.Holds)
	}
	if r.Lapsed["held"] != 1 || r.Lapsed["released"] != 0 {
		t.Errorf("lapsed holds = %v, want 1 held", r.Lapsed)
	}
	if r.Callbacks["prepaid"] != 1 || r.Callbacks["postpaid"] != 1 || r.Callbacks["no_charge"] != 0 {
		t.Errorf("callbacks = %v, want 1 prepaid, 1 postpaid", r.Callbacks)
	}
	text := mustRun(t, env, "report", "-month", "2026-11")
	for _, w := range []string{"SLA8   8 h      3       0       3         2        67%    2.00 h  10.00 h  1",
		"SLA8 #3 Graag terugbellen postpaid (Bakkerij de Vries): due 2026-11-04 17:00, answered 2026-11-05 11:00, 2.00 working hours late",
		"SLA24 limit holds (R11): 1 held", "SLA24 lapsed (R21): 1 question(s) held, 0 of them released by staff",
		"Callbacks (R13): 1 prepaid, 1 postpaid"} {
		if !strings.Contains(text, w) {
			t.Errorf("report lacks %q:\n%s", w, text)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
