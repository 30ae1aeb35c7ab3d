package ingest_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
)

// R21 through the real ingest path: emails appended to an IMAP mailbox at chosen arrival
// times, the gateway's commit, and what the store, the outbox and the SMTP peer then hold.

const lapseStaffList = "helpdesk-team@infobits.example"

func newLapseFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixture(t, "mem", func(c *ingest.Config) {
		a := *c.Desk
		r := testRules(t, policy.Limits{})
		r.SLA24LapseMonths = 24
		r.StaffList = lapseStaffList
		a.Policy = policy.New(r)
		c.Desk = &a
	})
}

// heldOf returns the held emails with a reason, in the order they were held.
func (f *fixture) heldOf(reason string) []*helpdesk.Held {
	var out []*helpdesk.Held
	for _, h := range f.held() {
		if h.Reason == reason {
			out = append(out, h)
		}
	}
	return out
}

// ofKind returns the outbox rows of a kind to an address.
func (f *fixture) ofKind(kind, to string) []*helpdesk.Notification {
	var out []*helpdesk.Notification
	for _, n := range f.outbox() {
		if n.Kind == kind && (to == "" || n.To == to) {
			out = append(out, n)
		}
	}
	return out
}

// TestSLA24Lapse: the boundary by day, in Amsterdam time — a customer whose paid tier ended
// on 29-11-2024 is still served as SLA24 on 29-11-2026 at 23:30 and has lapsed on 30-11-2026
// at 00:30; a customer who never paid lapses 24 months after their record was made. A lapsed
// customer's question is held as sla24_lapsed (kept, with its raw bytes), answered with the
// notice in the customer's language, and reported to staff in the held notice. Philanthropic
// customers (R4) never lapse; a customer the operator keeps free is served through the last
// kept day and lapses the day after.
func TestSLA24Lapse(t *testing.T) {
	f := newLapseFixture(t)
	old := f.addCustomer(&helpdesk.Customer{Name: "Oud Betaald", Emails: []string{"info@oud.nl"}, Tier: helpdesk.SLA8,
		ValidUntil: helpdesk.Date{Year: 2024, Month: 11, Day: 29}, Created: amsTime("2019-05-01 10:00")})
	never := f.addCustomer(&helpdesk.Customer{Name: "Never Paid Ltd", Emails: []string{"help@never.example"}, Tier: helpdesk.SLA24,
		Lang: "en", Created: amsTime("2024-11-20 10:00")})
	f.addCustomer(&helpdesk.Customer{Name: "Stichting Gratis", Emails: []string{"kassa@stichting.nl"}, Tier: helpdesk.SLA24,
		Philanthropic: true, Created: amsTime("2015-01-01 10:00")})
	kept := f.addCustomer(&helpdesk.Customer{Name: "Vrijgehouden", Emails: []string{"balie@vrij.nl"}, Tier: helpdesk.SLA24,
		PaidEnded: helpdesk.Date{Year: 2020, Month: 1, Day: 31}, FreeUntil: helpdesk.Date{Year: 2026, Month: 11, Day: 30},
		Created: amsTime("2018-01-01 10:00")})

	f.deliverAt(amsTime("2026-11-29 23:30"), mailOpts{from: "info@oud.nl", subject: "Bonprinter", msgID: "o1@oud"})
	f.deliverAt(amsTime("2026-11-30 00:30"), mailOpts{from: "info@oud.nl", subject: "Kassalade", msgID: "o2@oud"})
	f.deliverAt(amsTime("2026-11-30 09:00"), mailOpts{from: "help@never.example", subject: "Scanner", msgID: "n1@never"})
	f.deliverAt(amsTime("2026-11-30 09:00"), mailOpts{from: "kassa@stichting.nl", subject: "Weegschaal", msgID: "s1@st"})
	f.deliverAt(amsTime("2026-11-30 16:00"), mailOpts{from: "balie@vrij.nl", subject: "Pinautomaat", msgID: "v1@vrij"})
	f.deliverAt(amsTime("2026-12-01 09:00"), mailOpts{from: "balie@vrij.nl", subject: "Pinautomaat weer", msgID: "v2@vrij"})
	f.once()

	var subjects []string
	for _, tk := range f.tickets() {
		subjects = append(subjects, tk.Subject)
		if tk.Tier != helpdesk.SLA24 || tk.Due.IsZero() {
			t.Errorf("ticket %q: tier %s, due %v; want SLA24 with a deadline", tk.Subject, tk.Tier, tk.Due)
		}
	}
	if want := []string{"Bonprinter", "Weegschaal", "Pinautomaat"}; !slices.Equal(subjects, want) {
		t.Errorf("tickets = %q, want %q (the day before the lapse, philanthropic, kept free)", subjects, want)
	}
	lapsed := f.heldOf(helpdesk.HeldSLA24Lapsed)
	if len(lapsed) != 3 {
		t.Fatalf("held as sla24_lapsed = %d, want 3 (the lapse day, never paid, the day after the kept day): %+v", len(lapsed), f.held())
	}
	for i, want := range []struct {
		subject  string
		customer uint64
		detail   string
	}{
		{"Kassalade", old.ID, "lapsed on 2026-11-30, 24 months after paid support ended on 2024-11-29"},
		{"Scanner", never.ID, "lapsed on 2026-11-21, 24 months after the customer was registered on 2024-11-20"},
		{"Pinautomaat weer", kept.ID, "lapsed on 2022-02-01, 24 months after paid support ended on 2020-01-31, and was kept free through 2026-11-30"},
	} {
		h := lapsed[i]
		if h.Subject != want.subject || h.CustomerID != want.customer || h.RawSHA256 == "" || !strings.Contains(h.Detail, want.detail) {
			t.Errorf("held %d = %q customer %d raw %q detail %q; want %q customer %d, kept, detail with %q",
				i, h.Subject, h.CustomerID, h.RawSHA256, h.Detail, want.subject, want.customer, want.detail)
		}
	}

	// Each lapsed customer is told once, in their language, with how to get SLA8.
	for _, to := range []string{"info@oud.nl", "help@never.example", "balie@vrij.nl"} {
		ns := f.ofKind(helpdesk.KindSLA24Lapsed, to)
		if len(ns) != 1 || !ns[0].Automatic || ns[0].HeldID == 0 || ns[0].Data.LimitValue != 24 {
			t.Errorf("lapse notices to %s = %+v, want one automatic notice about the held email, naming 24 months", to, ns)
		}
	}
	if ns := f.ofKind(helpdesk.KindSLA24Lapsed, "help@never.example"); len(ns) == 1 && ns[0].Lang != "en" {
		t.Errorf("notice to an English customer in %q", ns[0].Lang)
	}
	sink, w := newNotifier(t, f.db, "support@infobits.example", "Infobits")
	if _, err := w.Drain(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	texts := map[string]*parse.Email{}
	for _, m := range sink.Messages() {
		e := parse.Parse(m.Data, time.Now())
		if strings.Contains(e.Subject, "SLA24") {
			texts[m.To[0]] = e
			if got := e.Get("Auto-Submitted"); got != "auto-replied" {
				t.Errorf("notice to %s: Auto-Submitted %q, want auto-replied (RFC 3834)", m.To[0], got)
			}
		}
	}
	for to, want := range map[string][]string{
		"info@oud.nl":        {"uw gratis status SLA24 is vervallen", "langer dan 24 maanden", "EUR 5,00 per maand", "InfokasV3-licentie van type L, S of N", "bestaand, openstaand ticket"},
		"help@never.example": {"your free status SLA24 has lapsed", "more than 24 months", "EUR 5.00 a month", "InfokasV3 licence of type L, S or N", "existing open ticket"},
	} {
		e := texts[to]
		if e == nil {
			t.Errorf("no lapse notice reached %s over SMTP", to)
			continue
		}
		for _, s := range want {
			if !strings.Contains(e.Subject+"\n"+e.Text, s) {
				t.Errorf("notice to %s lacks %q:\n%s\n%s", to, s, e.Subject, e.Text)
			}
		}
	}

	// Staff learn of them in the held notice, with the reason.
	if err := f.db.Update(context.Background(), func(tx *store.Tx) error {
		_, err := f.cfg.Desk.ReportHeld(tx, time.Minute, f.cfg.Desk.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	notes := f.ofKind(helpdesk.KindStaffHeld, lapseStaffList)
	if len(notes) != 1 {
		t.Fatalf("held notices = %d, want 1", len(notes))
	}
	reported := 0
	for _, it := range notes[0].Data.Held {
		if it.Reason == helpdesk.HeldSLA24Lapsed {
			reported++
		}
	}
	if reported != 3 {
		t.Errorf("held notice lists %d sla24_lapsed emails, want 3: %+v", reported, notes[0].Data.Held)
	}
}

// TestSLA24LapseReplyAndCap: a lapsed customer's reply on a ticket opened before the lapse
// is added to it and reaches staff; their new questions are held, and the lapse notice goes
// at most once in 24 hours per customer, whichever of their addresses they write from.
func TestSLA24LapseReplyAndCap(t *testing.T) {
	f := newLapseFixture(t)
	f.addCustomer(&helpdesk.Customer{Name: "Oud Betaald", Emails: []string{"info@oud.nl", "piet@oud.nl"}, Tier: helpdesk.SLA24,
		PaidEnded: helpdesk.Date{Year: 2024, Month: 11, Day: 29}, Created: amsTime("2019-05-01 10:00")})
	f.deliverAt(amsTime("2026-11-27 10:00"), mailOpts{from: "info@oud.nl", subject: "Bonprinter", msgID: "o1@oud"})
	f.once()
	if ts := f.tickets(); len(ts) != 1 {
		t.Fatalf("tickets before the lapse = %d, want 1", len(ts))
	}

	f.deliverAt(amsTime("2026-12-02 11:00"), mailOpts{from: "piet@oud.nl", subject: "Re: [Infobits #1] Bonprinter", msgID: "o1r@oud", inReplyTo: "o1@oud"})
	f.deliverAt(amsTime("2026-11-30 00:30"), mailOpts{from: "info@oud.nl", subject: "Vraag 1", msgID: "q1@oud"})
	f.deliverAt(amsTime("2026-11-30 10:00"), mailOpts{from: "piet@oud.nl", subject: "Vraag 2", msgID: "q2@oud"})
	f.deliverAt(amsTime("2026-12-01 00:20"), mailOpts{from: "info@oud.nl", subject: "Vraag 3", msgID: "q3@oud"})
	f.deliverAt(amsTime("2026-12-01 00:40"), mailOpts{from: "piet@oud.nl", subject: "Vraag 4", msgID: "q4@oud"})
	f.once()

	if tk := f.ticket(1); tk.Messages != 2 || tk.Replies != 1 {
		t.Errorf("ticket 1: %d messages, %d replies; want the reply added (2, 1)", tk.Messages, tk.Replies)
	}
	if n := len(f.ofKind(helpdesk.KindStaffReply, lapseStaffList)); n != 1 {
		t.Errorf("staff told of %d customer replies, want 1", n)
	}
	if n := len(f.tickets()); n != 1 {
		t.Errorf("tickets = %d, want 1: a lapsed customer's questions open none", n)
	}
	if hs := f.heldOf(helpdesk.HeldSLA24Lapsed); len(hs) != 4 {
		t.Fatalf("held as sla24_lapsed = %d, want 4", len(hs))
	}
	var told []string
	for _, n := range f.ofKind(helpdesk.KindSLA24Lapsed, "") {
		told = append(told, n.Data.OrigSubject+" to "+n.To)
	}
	// 00:30 told; 10:00 and 00:20 the next day within 24 hours; 00:40 more than 24 hours later.
	if want := []string{"Vraag 1 to info@oud.nl", "Vraag 4 to piet@oud.nl"}; !slices.Equal(told, want) {
		t.Errorf("lapse notices = %q, want %q", told, want)
	}
}

// TestSLA24LapseRelease: `ticket release` of a lapsed customer's email opens the ticket as
// SLA24 — the operator's fair-use decision — with the SLA24 deadline and an acknowledgement,
// once; the customer's later questions are held again.
func TestSLA24LapseRelease(t *testing.T) {
	f := newLapseFixture(t)
	f.addCustomer(&helpdesk.Customer{Name: "Oud Betaald", Emails: []string{"info@oud.nl"}, Tier: helpdesk.SLA4, Contract: true,
		ValidUntil: helpdesk.Date{Year: 2023, Month: 6, Day: 30}})
	at := amsTime("2026-11-30 10:00") // Monday
	f.deliverAt(at, mailOpts{from: "info@oud.nl", subject: "Kassa start niet", msgID: "k1@oud"})
	f.once()
	hs := f.heldOf(helpdesk.HeldSLA24Lapsed)
	if len(hs) != 1 || len(f.tickets()) != 0 {
		t.Fatalf("held = %+v, tickets %d; want the email held as sla24_lapsed", f.held(), len(f.tickets()))
	}
	release := func(id uint64) (desk.Outcome, error) {
		var out desk.Outcome
		err := f.db.Update(context.Background(), func(tx *store.Tx) (err error) {
			out, err = f.cfg.Desk.Release(tx, id, desk.ReleaseOptions{By: "marieke"})
			return err
		})
		return out, err
	}
	out, err := release(hs[0].ID)
	if err != nil || out.Action != "new_ticket" {
		t.Fatalf("Release = %+v, %v", out, err)
	}
	tk := f.ticket(out.TicketID)
	// SLA24 counts helpdesk opening hours, whatever the old contract (R8): 24 working hours
	// from Monday 10:00 is Thursday 10:00.
	if tk.Tier != helpdesk.SLA24 || tk.Calendar != helpdesk.CalendarHelpdesk || !tk.Due.Equal(amsTime("2026-12-03 10:00")) || !tk.Created.Equal(at) {
		t.Errorf("released ticket: tier %s, calendar %s, due %v, created %v; want SLA24, helpdesk, 2026-12-03 10:00", tk.Tier, tk.Calendar, tk.Due.In(ams), tk.Created)
	}
	if acks := f.ofKind(helpdesk.KindAck, "info@oud.nl"); len(acks) != 1 || acks[0].Data.Tier != helpdesk.SLA24 {
		t.Errorf("acknowledgements = %+v, want one, SLA24", acks)
	}
	if h := f.heldOf(helpdesk.HeldSLA24Lapsed)[0]; !h.Released || h.ReleasedAs.TicketID != tk.ID || h.ReleasedBy != "marieke" {
		t.Errorf("held after release = %+v", h)
	}
	if _, err := release(hs[0].ID); err == nil {
		t.Error("a second release succeeded")
	}
	f.deliverAt(at.Add(time.Hour), mailOpts{from: "info@oud.nl", subject: "Nog een vraag", msgID: "k2@oud"})
	f.once()
	if n := len(f.heldOf(helpdesk.HeldSLA24Lapsed)); n != 2 || len(f.tickets()) != 1 {
		t.Errorf("after the release: %d held, %d tickets; want the next question held too (2, 1)", n, len(f.tickets()))
	}
}
