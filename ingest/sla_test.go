package ingest_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
)

// The SLA policy through the real ingest path: an email appended to an IMAP mailbox, the
// gateway's commit, and what the store and the outbox then hold.

var ams = helpdesk.Amsterdam()

func amsTime(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, ams)
	if err != nil {
		panic(err)
	}
	return t
}

func (f *fixture) addCustomer(c *helpdesk.Customer) *helpdesk.Customer {
	f.t.Helper()
	if err := f.db.Update(context.Background(), func(tx *store.Tx) error { return tx.PutCustomer(c) }); err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) deliverAt(at time.Time, o mailOpts) {
	f.t.Helper()
	f.srv.append(f.t, "INBOX", buildMail(o), at)
}

func (f *fixture) ticket(id uint64) *helpdesk.Ticket {
	f.t.Helper()
	var t *helpdesk.Ticket
	if err := f.db.View(context.Background(), func(tx *store.Tx) (err error) {
		t, err = tx.Ticket(id)
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return t
}

func newSLAFixture(t *testing.T, lim policy.Limits) *fixture {
	t.Helper()
	return newFixture(t, "mem", func(c *ingest.Config) {
		a := *c.Desk
		a.Policy = policy.New(testRules(t, lim))
		c.Desk = &a
	})
}

// TestDeadlineOnTicket: R6–R8 on real tickets — the page's worked example (Friday 16:00,
// SLA8: Monday 13:00 with a contract, Monday 16:00 without), SLA24 counting opening hours even
// with a contract, an expired paid tier served as SLA24 (R3), and the rate zone at arrival.
func TestDeadlineOnTicket(t *testing.T) {
	f := newSLAFixture(t, policy.Limits{})
	f.addCustomer(&helpdesk.Customer{Name: "Contract", Emails: []string{"c@contract.nl"}, Tier: helpdesk.SLA8, Contract: true})
	f.addCustomer(&helpdesk.Customer{Name: "Geen contract", Emails: []string{"n@nocontract.nl"}, Tier: helpdesk.SLA8})
	f.addCustomer(&helpdesk.Customer{Name: "Gratis", Emails: []string{"g@gratis.nl"}, Tier: helpdesk.SLA24, Contract: true})
	f.addCustomer(&helpdesk.Customer{Name: "Verlopen", Emails: []string{"v@verlopen.nl"}, Tier: helpdesk.SLA4, Contract: true,
		ValidUntil: helpdesk.Date{Year: 2026, Month: 10, Day: 31}})
	f.addCustomer(&helpdesk.Customer{Name: "Onderhoud", Emails: []string{"o@onderhoud.nl"}, Tier: helpdesk.SLA4, Contract: true,
		ValidUntil: helpdesk.Date{Year: 2026, Month: 11, Day: 27}}) // valid through the day of arrival
	friday := amsTime("2026-11-27 16:00")
	for _, from := range []string{"c@contract.nl", "n@nocontract.nl", "g@gratis.nl", "v@verlopen.nl", "o@onderhoud.nl"} {
		f.deliverAt(friday, mailOpts{from: from, subject: "Vraag van " + from, msgID: from})
	}
	f.once()
	cases := []struct {
		id       uint64
		tier     helpdesk.Tier
		calendar string
		due      string
	}{
		{1, helpdesk.SLA8, helpdesk.CalendarContract, "2026-11-30 13:00"},
		{2, helpdesk.SLA8, helpdesk.CalendarHelpdesk, "2026-11-30 16:00"},
		{3, helpdesk.SLA24, helpdesk.CalendarHelpdesk, "2026-12-02 16:00"}, // contract counts only with a paid tier
		{4, helpdesk.SLA24, helpdesk.CalendarHelpdesk, "2026-12-02 16:00"}, // expired on 31-10-2026 (R3)
		{5, helpdesk.SLA4, helpdesk.CalendarContract, "2026-11-28 12:00"},  // Saturday morning counts
	}
	for _, c := range cases {
		tk := f.ticket(c.id)
		if tk.Tier != c.tier || tk.Calendar != c.calendar || !tk.Due.Equal(amsTime(c.due)) || tk.RateZone != "1" {
			t.Errorf("ticket %d: tier %s, calendar %s, due %v, zone %s; want %s, %s, %s, 1", c.id, tk.Tier, tk.Calendar,
				tk.Due.In(ams), tk.RateZone, c.tier, c.calendar, c.due)
		}
	}
	// The acknowledgement carries the deadline, and tells an expired customer why SLA24.
	ob := f.outbox()
	if len(ob) != 5 || !ob[0].Data.Due.Equal(amsTime("2026-11-30 13:00")) {
		t.Fatalf("acknowledgement due = %v", ob[0].Data.Due)
	}
	if !slices.Contains(ob[3].Data.Notes, policy.NoteExpired) || ob[3].Data.ValidUntil != (helpdesk.Date{Year: 2026, Month: 10, Day: 31}) {
		t.Errorf("expired customer's acknowledgement notes = %v", ob[3].Data.Notes)
	}
}

// TestUrgent: R12 — SPOED/URGENT as a word makes an SLA8/SLA4 ticket urgent with a surcharge
// in the zone at arrival (or the next to open); on SLA24 it stays normal and the customer is
// told why. Urgent tickets are listed first.
func TestUrgent(t *testing.T) {
	f := newSLAFixture(t, policy.Limits{})
	f.addCustomer(&helpdesk.Customer{Name: "Acht", Emails: []string{"a@acht.nl"}, Tier: helpdesk.SLA8})
	f.addCustomer(&helpdesk.Customer{Name: "Vier", Emails: []string{"v@vier.nl"}, Tier: helpdesk.SLA4})
	f.addCustomer(&helpdesk.Customer{Name: "Gratis", Emails: []string{"g@gratis.nl"}, Tier: helpdesk.SLA24})
	f.addCustomer(&helpdesk.Customer{Name: "Stichting", Emails: []string{"s@stichting.nl"}, Tier: helpdesk.SLA8, Philanthropic: true})
	f.deliverAt(amsTime("2026-11-30 10:00"), mailOpts{from: "a@acht.nl", subject: "SPOED: kassa kapot", msgID: "u1@a"})
	f.deliverAt(amsTime("2026-11-30 18:30"), mailOpts{from: "v@vier.nl", subject: "Pinbetaling faalt (urgent!)", msgID: "u2@v"})
	f.deliverAt(amsTime("2026-11-30 22:00"), mailOpts{from: "a@acht.nl", subject: "spoed", msgID: "u3@a"})
	f.deliverAt(amsTime("2026-11-30 10:00"), mailOpts{from: "g@gratis.nl", subject: "SPOED graag", msgID: "u4@g"})
	f.deliverAt(amsTime("2026-11-30 10:00"), mailOpts{from: "a@acht.nl", subject: "Spoedeisend? nee, gewoon een vraag", msgID: "u5@a"})
	f.deliverAt(amsTime("2026-11-30 10:00"), mailOpts{from: "s@stichting.nl", subject: "URGENT", msgID: "u6@s"})
	f.once()
	cases := []struct {
		id        uint64
		priority  string
		surcharge bool
		zone      int
		rateZone  string
	}{
		{1, helpdesk.PriorityUrgent, true, 1, "1"},
		{2, helpdesk.PriorityUrgent, true, 2, "2"},      // 18:30 is rate zone 2
		{3, helpdesk.PriorityUrgent, true, 1, "closed"}, // 22:00: zone 1 opens next (Tuesday 09:00)
		{4, helpdesk.PriorityNormal, false, 0, "1"},     // SLA24: no urgent
		{5, helpdesk.PriorityNormal, false, 0, "1"},     // "Spoedeisend" is not the word
		{6, helpdesk.PriorityUrgent, false, 1, "1"},     // R4: free support, no surcharge
	}
	for _, c := range cases {
		tk := f.ticket(c.id)
		if tk.Priority != c.priority || tk.Surcharge != c.surcharge || tk.SurchargeZone != c.zone || tk.RateZone != c.rateZone {
			t.Errorf("ticket %d: priority %s, surcharge %v zone %d, rate zone %s; want %s, %v, %d, %s", c.id,
				tk.Priority, tk.Surcharge, tk.SurchargeZone, tk.RateZone, c.priority, c.surcharge, c.zone, c.rateZone)
		}
	}
	ob := f.outbox()
	if !slices.Contains(ob[3].Data.Notes, policy.NoteUrgentSLA24) {
		t.Errorf("SLA24 acknowledgement notes = %v, want %s", ob[3].Data.Notes, policy.NoteUrgentSLA24)
	}
	if !slices.Contains(ob[0].Data.Notes, policy.NoteUrgent) || ob[0].Data.SurchargeZone != 1 {
		t.Errorf("urgent acknowledgement = %+v", ob[0].Data)
	}
}

// TestCallback: R13/R14 — "terugbellen" (or "anydesk") records a callback; SLA8 may choose
// postpaid, SLA24 and customers in arrears get prepaid and are told; a system maintained by a
// third party or nobody is recorded with the notice that it is no right; otherwise the follow-up
// is the customer's answer preference.
func TestCallback(t *testing.T) {
	f := newSLAFixture(t, policy.Limits{})
	f.addCustomer(&helpdesk.Customer{Name: "Acht", Emails: []string{"a@acht.nl"}, Tier: helpdesk.SLA8})
	f.addCustomer(&helpdesk.Customer{Name: "Gratis", Emails: []string{"g@gratis.nl"}, Tier: helpdesk.SLA24})
	f.addCustomer(&helpdesk.Customer{Name: "Achterstand", Emails: []string{"b@achterstand.nl"}, Tier: helpdesk.SLA8, Arrears: true})
	f.addCustomer(&helpdesk.Customer{Name: "Derde", Emails: []string{"d@derde.nl"}, Tier: helpdesk.SLA8, Maintainer: helpdesk.MaintainerThirdParty})
	f.addCustomer(&helpdesk.Customer{Name: "Site", Emails: []string{"s@site.nl"}, Tier: helpdesk.SLA8, Answer: helpdesk.AnswerSite})
	at := amsTime("2026-11-30 10:00")
	f.deliverAt(at, mailOpts{from: "a@acht.nl", subject: "Graag terugbellen postpaid", msgID: "c1@a"})
	f.deliverAt(at, mailOpts{from: "a@acht.nl", subject: "AnyDesk sessie nodig", msgID: "c2@a"})
	f.deliverAt(at, mailOpts{from: "g@gratis.nl", subject: "terugbellen post-paid", msgID: "c3@g"})
	f.deliverAt(at, mailOpts{from: "b@achterstand.nl", subject: "terugbellen postpaid", msgID: "c4@b"})
	f.deliverAt(at, mailOpts{from: "d@derde.nl", subject: "Terugbellen a.u.b.", msgID: "c5@d"})
	f.deliverAt(at, mailOpts{from: "s@site.nl", subject: "Gewone vraag", msgID: "c6@s"})
	f.deliverAt(at, mailOpts{from: "a@acht.nl", subject: "Gewone vraag", msgID: "c7@a"})
	f.once()
	cases := []struct {
		id       uint64
		followup string
		payment  string
		note     string
	}{
		{1, helpdesk.FollowupCallback, helpdesk.PaymentPostpaid, policy.NoteCallback},
		{2, helpdesk.FollowupCallback, helpdesk.PaymentPrepaid, policy.NoteCallback},
		{3, helpdesk.FollowupCallback, helpdesk.PaymentPrepaid, policy.NotePrepaidOnly},
		{4, helpdesk.FollowupCallback, helpdesk.PaymentPrepaid, policy.NotePrepaidOnly},
		{5, helpdesk.FollowupCallback, helpdesk.PaymentPrepaid, policy.NoteCallbackNoRight},
		{6, helpdesk.FollowupSite, "", policy.NoteAnswerOnSite},
		{7, helpdesk.FollowupEmail, "", ""},
	}
	ob := f.outbox()
	for _, c := range cases {
		tk := f.ticket(c.id)
		if tk.Followup != c.followup || tk.Payment != c.payment {
			t.Errorf("ticket %d: followup %s, payment %q; want %s, %q", c.id, tk.Followup, tk.Payment, c.followup, c.payment)
		}
		if c.note != "" && !slices.Contains(ob[c.id-1].Data.Notes, c.note) {
			t.Errorf("ticket %d acknowledgement notes = %v, want %s", c.id, ob[c.id-1].Data.Notes, c.note)
		}
	}
}

// TestSLA24Limits: R11 — over a limit an email creates no ticket and no reply, is held for
// staff with the reason, and the customer is told at most once a day; counted from the store
// by arrival time, so a new month starts afresh; other tiers are not limited.
func TestSLA24Limits(t *testing.T) {
	f := newSLAFixture(t, policy.Limits{TicketsPerMonth: 2, OpenTickets: 2, RepliesPerTicket: 1})
	free := f.addCustomer(&helpdesk.Customer{Name: "Gratis", Emails: []string{"g@gratis.nl"}, Tier: helpdesk.SLA24})
	paid := f.addCustomer(&helpdesk.Customer{Name: "Acht", Emails: []string{"a@acht.nl"}, Tier: helpdesk.SLA8})
	nov := amsTime("2026-11-30 10:00")
	for i := range 4 {
		f.deliverAt(nov, mailOpts{from: "g@gratis.nl", subject: fmt.Sprintf("Vraag %d", i), msgID: fmt.Sprintf("g%d@g", i)})
		f.deliverAt(nov, mailOpts{from: "a@acht.nl", subject: fmt.Sprintf("Vraag %d", i), msgID: fmt.Sprintf("a%d@a", i)})
	}
	f.once()
	byCustomer := map[uint64]int{}
	for _, tk := range f.tickets() {
		byCustomer[tk.CustomerID]++
	}
	if byCustomer[free.ID] != 2 || byCustomer[paid.ID] != 4 {
		t.Fatalf("tickets per customer = %v, want SLA24 2, SLA8 4", byCustomer)
	}
	hs := f.held()
	if len(hs) != 2 || hs[0].Reason != helpdesk.HeldOverLimit || hs[0].CustomerID != free.ID || hs[0].RawSHA256 == "" {
		t.Fatalf("held = %+v", hs)
	}
	notices := 0
	for _, n := range f.outbox() {
		if n.Kind == helpdesk.KindOverLimit {
			notices++
			if n.To != "g@gratis.nl" || n.Data.LimitKind != policy.LimitTicketsPerMonth || n.Data.LimitValue != 2 {
				t.Errorf("limit notice = %+v", n)
			}
		}
	}
	if notices != 1 {
		t.Errorf("limit notices = %d, want 1 (at most one a day)", notices)
	}

	// Replies: one allowed on SLA24, the second is held.
	f.deliverAt(nov, mailOpts{from: "g@gratis.nl", subject: "Re: [Infobits #1] Vraag 0", msgID: "r1@g"})
	f.deliverAt(nov, mailOpts{from: "g@gratis.nl", subject: "Re: [Infobits #1] Vraag 0", msgID: "r2@g"})
	f.once()
	if tk := f.ticket(1); tk.Messages != 2 || tk.Replies != 1 {
		t.Errorf("ticket 1: %d messages, %d replies; want 2, 1", tk.Messages, tk.Replies)
	}
	if hs := f.held(); len(hs) != 3 || hs[2].Detail != "SLA24 limit: 1 replies per ticket (1 so far)" {
		t.Errorf("held = %+v", hs[len(hs)-1])
	}

	// December: a new month, but two tickets are still open (the open-tickets limit).
	dec := amsTime("2026-12-01 10:00")
	f.deliverAt(dec, mailOpts{from: "g@gratis.nl", subject: "December", msgID: "d1@g"})
	f.once()
	hs = f.held()
	if last := hs[len(hs)-1]; last.Detail != "SLA24 limit: 2 open tickets at a time (2 open)" {
		t.Errorf("held = %+v", last)
	}
	// A new day: the customer is told again.
	n := 0
	for _, note := range f.outbox() {
		if note.Kind == helpdesk.KindOverLimit {
			n++
		}
	}
	if n != 2 {
		t.Errorf("limit notices after a new day = %d, want 2", n)
	}
	// Close one: now December has room.
	if err := f.db.Update(context.Background(), func(tx *store.Tx) error {
		tk, _ := tx.Ticket(1)
		tk.Status = helpdesk.StatusClosed
		return tx.PutTicket(tk)
	}); err != nil {
		t.Fatal(err)
	}
	f.deliverAt(dec, mailOpts{from: "g@gratis.nl", subject: "December opnieuw", msgID: "d2@g"})
	f.once()
	if ts := f.tickets(); ts[len(ts)-1].Subject != "December opnieuw" {
		t.Errorf("last ticket = %q, want the December one", ts[len(ts)-1].Subject)
	}
}

// TestRelease: `ticket release` turns a held email into the ticket it would have been (R11),
// once; an unknown sender cannot be released.
func TestRelease(t *testing.T) {
	f := newSLAFixture(t, policy.Limits{TicketsPerMonth: 1})
	f.addCustomer(&helpdesk.Customer{Name: "Gratis", Emails: []string{"g@gratis.nl"}, Tier: helpdesk.SLA24})
	at := amsTime("2026-11-30 10:00")
	f.deliverAt(at, mailOpts{from: "g@gratis.nl", subject: "Eerste", msgID: "e1@g"})
	f.deliverAt(at, mailOpts{from: "g@gratis.nl", subject: "Tweede", msgID: "e2@g"})
	f.deliverAt(at, mailOpts{from: "vreemd@example.com", subject: "Hallo", msgID: "x@x"})
	f.once()
	hs := f.held()
	if len(hs) != 2 || hs[0].Reason != helpdesk.HeldOverLimit || hs[1].Reason != helpdesk.HeldUnknownSender {
		t.Fatalf("held = %+v", hs)
	}
	release := func(id uint64) (desk.Outcome, error) {
		var out desk.Outcome
		err := f.db.Update(context.Background(), func(tx *store.Tx) (err error) {
			out, err = f.cfg.Desk.Release(tx, id, desk.ReleaseOptions{})
			return err
		})
		return out, err
	}
	out, err := release(hs[0].ID)
	if err != nil || out.Action != "new_ticket" || out.TicketID != 2 {
		t.Fatalf("Release = %+v, %v", out, err)
	}
	tk := f.ticket(2)
	if tk.Subject != "Tweede" || !tk.Created.Equal(at) || tk.Due.IsZero() {
		t.Errorf("released ticket = %+v", tk)
	}
	if _, err := release(hs[0].ID); err == nil {
		t.Error("a second release succeeded")
	}
	if _, err := release(hs[1].ID); err == nil {
		t.Error("an unknown sender's email was released")
	}
	// The released email is a ticket message now; a replay of the mailbox does not hold it again.
	f.once()
	if n := len(f.tickets()); n != 2 {
		t.Errorf("tickets = %d, want 2", n)
	}
}
