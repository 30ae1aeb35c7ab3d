package ingest_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/rules/policy"
)

// Staff by email, answers on the site, spoofing and recovery by email (R10,
// R14, R16–R18) through the real ingest path: an email appended to an IMAP mailbox, the
// gateway's commit, and what the store and the outbox then hold.

const (
	staffTrusted  = "mx.infobits.example"
	staffListAddr = "team@infobits.example"
	staffJan      = "jan@infobits.example"
	// staffPassAR is what the trusted server writes for a genuine staff email.
	staffPassAR = "Authentication-Results: mx.infobits.example; dkim=pass header.d=infobits.example; dmarc=pass header.from=infobits.example"
	// staffFailAR is what it writes for a forged one.
	staffFailAR = "Authentication-Results: mx.infobits.example; dkim=none; dmarc=fail header.from=infobits.example"
)

// newStaffFixture is the gateway with the settings of staff by email: a trusted authserv-id, staff
// power only with a passing result, a staff list, 2 recovery links per hour. mod may change
// the rules further.
func newStaffFixture(t *testing.T, mod func(*policy.Rules)) *fixture {
	t.Helper()
	return newFixture(t, "mem", func(c *ingest.Config) {
		r := testRules(t, policy.Limits{})
		r.AuthServID = staffTrusted
		r.RequireStaffAuth = true
		r.StaffList = staffListAddr
		r.RecoveryPerHour = 2
		if mod != nil {
			mod(&r)
		}
		a := *c.Desk
		a.Policy = policy.New(r)
		c.Desk = &a
	})
}

// staffMail is an email of staff member Jan to ticket id, with the given header lines
// (Authentication-Results or none).
func staffMail(id uint64, msgID, body string, headers ...string) mailOpts {
	return mailOpts{from: "Jan <" + staffJan + ">", subject: fmt.Sprintf("Re: [Infobits #%d] Kassa start niet op", id),
		msgID: msgID, body: body, extra: headers}
}

// staffOpenTicket has info@bakkerijdevries.nl (SLA8) open ticket 1 at arrival and returns it.
func staffOpenTicket(f *fixture) *helpdesk.Ticket {
	f.t.Helper()
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Kassa start niet op", msgID: "q1@bakkerij",
		body: "De kassa start niet op."}))
	f.once()
	ts := f.tickets()
	if len(ts) != 1 || ts[0].ID != 1 || ts[0].Status != helpdesk.StatusOpen {
		f.t.Fatalf("tickets = %+v, want ticket 1 open", ts)
	}
	return ts[0]
}

// staffKinds lists the kinds and recipients of notifications, for failure messages.
func staffKinds(ns []*helpdesk.Notification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Kind+"→"+n.To)
	}
	return out
}

func staffOfKind(ns []*helpdesk.Notification, kind string) []*helpdesk.Notification {
	var out []*helpdesk.Notification
	for _, n := range ns {
		if n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

// staffNewSince returns the notifications queued after the first n.
func (f *fixture) staffNewSince(n int) []*helpdesk.Notification {
	f.t.Helper()
	return f.outbox()[n:]
}

// TestStaffAnswerByEmail: an authenticated staff answer to a
// ticket is stored as the answer (direction out), sets the status answered and the first
// response time (the answer's arrival) with whether the SLA deadline (R6) was met, and the
// customer gets the full answer by email (R14, default preference). A second answer does
// not move the first-response time.
func TestStaffAnswerByEmail(t *testing.T) {
	f := newStaffFixture(t, nil)
	staffOpenTicket(f)
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Pinautomaat", msgID: "q2@bakkerij"}))
	f.once()
	t1, t2 := f.ticket(1), f.ticket(2)
	if t1.Due.IsZero() || !t1.Due.Equal(t2.Due) {
		t.Fatalf("deadlines %v, %v: want equal, non-zero", t1.Due, t2.Due)
	}
	due := t1.Due
	before := len(f.outbox())

	// Ticket 1 is answered exactly at the deadline (met: "by Due"), ticket 2 a minute late.
	f.deliverAt(due, staffMail(1, "a1@infobits", "Herstart de kassa.", staffPassAR))
	late := due.Add(time.Minute)
	f.deliverAt(late, mailOpts{from: "Jan <jan@infobits.example>", subject: "Re: [Infobits #2] Pinautomaat",
		msgID: "a2@infobits", body: "Controleer de kabel.", extra: []string{staffPassAR}})
	f.once()

	if hs := f.held(); len(hs) != 0 {
		t.Fatalf("held = %+v", hs)
	}
	tk := f.ticket(1)
	if tk.Status != helpdesk.StatusAnswered || tk.Messages != 2 || !tk.FirstResponse.Equal(due) || !tk.FirstResponseMet {
		t.Errorf("ticket 1: status %s, %d messages, first response %v met %v; want answered, 2, %v, true",
			tk.Status, tk.Messages, tk.FirstResponse, tk.FirstResponseMet, due)
	}
	ms := f.messages(1)
	if m := ms[1]; m.Direction != helpdesk.DirectionOut || m.Text != "Herstart de kassa." || m.From != staffJan {
		t.Errorf("staff message = direction %s from %s text %q; want out from jan, the answer", m.Direction, m.From, m.Text)
	}
	tk = f.ticket(2)
	if tk.Status != helpdesk.StatusAnswered || !tk.FirstResponse.Equal(late) || tk.FirstResponseMet {
		t.Errorf("ticket 2: status %s, first response %v met %v; want answered, %v, false", tk.Status, tk.FirstResponse,
			tk.FirstResponseMet, late)
	}

	got := f.staffNewSince(before)
	if len(got) != 2 {
		t.Fatalf("queued %v, want the two answers", staffKinds(got))
	}
	for i, want := range []struct {
		ticket uint64
		text   string
	}{{1, "Herstart de kassa."}, {2, "Controleer de kabel."}} {
		n := got[i]
		if n.Kind != helpdesk.KindAnswer || n.To != "info@bakkerijdevries.nl" || n.TicketID != want.ticket ||
			n.Data.Text != want.text || n.Automatic {
			t.Errorf("answer %d = %s to %s ticket %d text %q automatic %v; want answer to the customer with %q",
				i, n.Kind, n.To, n.TicketID, n.Data.Text, n.Automatic, want.text)
		}
	}
	// The answer continues the customer's thread.
	if got[0].InReplyTo != "q1@bakkerij" {
		t.Errorf("answer In-Reply-To %q, want the customer's email", got[0].InReplyTo)
	}

	// A second answer, later still, leaves the first response as it was.
	f.deliverAt(late.Add(time.Hour), staffMail(1, "a3@infobits", "Nog een tip.", staffPassAR))
	f.once()
	if tk := f.ticket(1); !tk.FirstResponse.Equal(due) || !tk.FirstResponseMet || tk.Messages != 3 {
		t.Errorf("after a second answer: first response %v met %v, %d messages; want %v, true, 3",
			tk.FirstResponse, tk.FirstResponseMet, tk.Messages, due)
	}
}

// TestStaffAnswerOnSite: R14 — with "answer via the site" the customer gets a notification
// that an answer waits on the site, not the answer text; the answer is kept on the ticket.
func TestStaffAnswerOnSite(t *testing.T) {
	f := newStaffFixture(t, nil)
	f.addCustomer(&helpdesk.Customer{Name: "Site", Emails: []string{"s@site.nl"}, Tier: helpdesk.SLA8, Answer: helpdesk.AnswerSite})
	f.deliver(buildMail(mailOpts{from: "S@Site.nl", subject: "Kassa start niet op", msgID: "s1@site"}))
	f.once()
	before := len(f.outbox())
	f.deliver(buildMail(staffMail(1, "a1@infobits", "Het geheime antwoord.", staffPassAR)))
	f.once()

	got := f.staffNewSince(before)
	if len(got) != 1 {
		t.Fatalf("queued %v, want one notification", staffKinds(got))
	}
	if n := got[0]; n.Kind != helpdesk.KindAnswerSite || n.To != "s@site.nl" || n.TicketID != 1 || n.Data.Text != "" {
		t.Errorf("notification = %s to %s ticket %d text %q; want answer_site to s@site.nl without the text",
			n.Kind, n.To, n.TicketID, n.Data.Text)
	}
	if tk := f.ticket(1); tk.Status != helpdesk.StatusAnswered {
		t.Errorf("status %s, want answered", tk.Status)
	}
	if ms := f.messages(1); ms[1].Direction != helpdesk.DirectionOut || ms[1].Text != "Het geheime antwoord." {
		t.Errorf("staff message = %+v, want the answer kept on the ticket", ms[1])
	}
}

// TestStaffCommands: every staff command on the first lines of a staff email, with
// and without an answer: what the ticket then is, what the thread keeps, and what the
// customer receives (a #note or a commands-only email: nothing).
func TestStaffCommands(t *testing.T) {
	cases := []struct {
		name      string
		setup     func(*testing.T, *fixture) // before the staff email
		body      string
		status    string
		priority  string
		assignee  string
		direction string // of the staff message
		text      string // of the staff message
		answer    string // the text the customer gets; "" nothing
	}{
		{name: "close with answer", body: "#close\n\nHerstart de kassa.",
			status: helpdesk.StatusClosed, direction: helpdesk.DirectionOut, text: "Herstart de kassa.", answer: "Herstart de kassa."},
		{name: "close alone", body: "#close",
			status: helpdesk.StatusClosed, direction: helpdesk.DirectionNote, text: "#close"},
		{name: "reopen", setup: staffClose, body: "#reopen",
			status: helpdesk.StatusOpen, direction: helpdesk.DirectionNote, text: "#reopen"},
		{name: "urgent with answer", body: "#urgent\nWe bellen u zo.",
			status: helpdesk.StatusAnswered, priority: helpdesk.PriorityUrgent, direction: helpdesk.DirectionOut,
			text: "We bellen u zo.", answer: "We bellen u zo."},
		{name: "normal", setup: staffUrgent, body: "#normal",
			status: helpdesk.StatusOpen, priority: helpdesk.PriorityNormal, direction: helpdesk.DirectionNote, text: "#normal"},
		{name: "assign", body: "#assign jan@infobits.example",
			status: helpdesk.StatusOpen, assignee: staffJan, direction: helpdesk.DirectionNote, text: "#assign jan@infobits.example"},
		{name: "assign with name and answer", body: "#ASSIGN Jan <Jan@Infobits.example>\nIk kijk ernaar.",
			status: helpdesk.StatusAnswered, assignee: staffJan, direction: helpdesk.DirectionOut,
			text: "Ik kijk ernaar.", answer: "Ik kijk ernaar."},
		{name: "note", body: "#note klant belt morgen terug\nNiet doorsturen: licentie verlopen.",
			status: helpdesk.StatusOpen, direction: helpdesk.DirectionNote,
			text: "klant belt morgen terug\nNiet doorsturen: licentie verlopen."},
		{name: "commands then note", body: "#urgent\n#note\nAlleen voor ons.",
			status: helpdesk.StatusOpen, priority: helpdesk.PriorityUrgent, direction: helpdesk.DirectionNote, text: "Alleen voor ons."},
		{name: "commands only", body: "#urgent\n\n#assign jan@infobits.example\n",
			status: helpdesk.StatusOpen, priority: helpdesk.PriorityUrgent, assignee: staffJan, direction: helpdesk.DirectionNote,
			text: "#urgent #assign jan@infobits.example"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newStaffFixture(t, nil)
			staffOpenTicket(f)
			if c.setup != nil {
				c.setup(t, f)
			}
			before := f.ticket(1)
			queued := len(f.outbox())
			f.deliverAt(arrival.Add(time.Hour), staffMail(1, "cmd@infobits", c.body, staffPassAR))
			f.once()

			if hs := f.held(); len(hs) != 0 {
				t.Fatalf("held = %+v", hs)
			}
			tk := f.ticket(1)
			priority := staffOr(c.priority, before.Priority)
			if tk.Status != c.status || tk.Priority != priority || tk.Assignee != c.assignee || tk.Messages != before.Messages+1 {
				t.Errorf("ticket: status %s priority %s assignee %q, %d messages; want %s, %s, %q, %d",
					tk.Status, tk.Priority, tk.Assignee, tk.Messages, c.status, priority, c.assignee, before.Messages+1)
			}
			ms := f.messages(1)
			if m := ms[len(ms)-1]; m.Direction != c.direction || m.Text != c.text {
				t.Errorf("staff message: direction %s text %q; want %s %q", m.Direction, m.Text, c.direction, c.text)
			}
			// Only an answer to the customer sets the first response.
			if answered := !tk.FirstResponse.IsZero(); answered != (c.answer != "") {
				t.Errorf("first response %v; want set only with an answer", tk.FirstResponse)
			}
			got := f.staffNewSince(queued)
			if c.answer == "" {
				if len(got) != 0 {
					t.Errorf("queued %v, want nothing sent (to the customer or anyone)", staffKinds(got))
				}
				return
			}
			if len(got) != 1 || got[0].Kind != helpdesk.KindAnswer || got[0].To != "info@bakkerijdevries.nl" || got[0].Data.Text != c.answer {
				t.Errorf("queued %v (text %q), want the answer %q to the customer", staffKinds(got), staffText(got), c.answer)
			}
		})
	}
}

func staffText(ns []*helpdesk.Notification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Data.Text)
	}
	return out
}

func staffOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// staffClose closes ticket 1 by a staff command.
func staffClose(t *testing.T, f *fixture) {
	t.Helper()
	f.deliver(buildMail(staffMail(1, "close@infobits", "#close", staffPassAR)))
	f.once()
	if tk := f.ticket(1); tk.Status != helpdesk.StatusClosed {
		t.Fatalf("setup: status %s, want closed", tk.Status)
	}
}

// staffUrgent makes ticket 1 urgent by a staff command.
func staffUrgent(t *testing.T, f *fixture) {
	t.Helper()
	f.deliver(buildMail(staffMail(1, "urgent@infobits", "#urgent", staffPassAR)))
	f.once()
	if tk := f.ticket(1); tk.Priority != helpdesk.PriorityUrgent {
		t.Fatalf("setup: priority %s, want urgent", tk.Priority)
	}
}

// TestStaffCommandErrors: unknown commands are answered to the staff member with an error,
// and nothing is half-applied — an unknown command, or #assign to someone who is
// not staff, leaves the ticket as it was (even the valid commands before it), keeps the
// email held, tells the staff member which line, and sends the customer nothing.
func TestStaffCommandErrors(t *testing.T) {
	cases := []struct {
		name, body string
		errHas     []string
	}{
		{"unknown command", "#urgent\n#sluit\n\nHerstart de kassa.", []string{"line 2", "#sluit"}},
		{"assign to a non-staff address", "#urgent\n#assign piet@bakkerijdevries.nl\nHerstart de kassa.",
			[]string{"line 2", "piet@bakkerijdevries.nl", "not a staff address"}},
		{"assign without an address", "#assign\nHerstart de kassa.", []string{"line 1", "#assign"}},
		{"close and reopen", "#close\n#reopen\nHerstart de kassa.", []string{"contradict"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newStaffFixture(t, nil)
			before := staffOpenTicket(f)
			queued := len(f.outbox())
			f.deliver(buildMail(staffMail(1, "bad@infobits", c.body, staffPassAR)))
			f.once()

			tk := f.ticket(1)
			if tk.Status != before.Status || tk.Priority != before.Priority || tk.Messages != before.Messages ||
				tk.Assignee != "" || !tk.FirstResponse.IsZero() {
				t.Errorf("ticket changed: status %s priority %s, %d messages, assignee %q, first response %v; want as before",
					tk.Status, tk.Priority, tk.Messages, tk.Assignee, tk.FirstResponse)
			}
			hs := f.held()
			if len(hs) != 1 || hs[0].Reason != helpdesk.HeldStaffCommand || hs[0].From != staffJan || hs[0].RawSHA256 == "" {
				t.Fatalf("held = %+v, want the email kept as staff_command", hs)
			}
			got := f.staffNewSince(queued)
			if len(got) != 1 || got[0].Kind != helpdesk.KindStaffError || got[0].To != staffJan {
				t.Fatalf("queued %v, want only a staff_error to jan", staffKinds(got))
			}
			for _, want := range c.errHas {
				if !strings.Contains(got[0].Data.Error, want) {
					t.Errorf("staff error %q lacks %q", got[0].Data.Error, want)
				}
			}
		})
	}

	// Commands are only the first lines: after the answer text, "#close" is text.
	t.Run("command after the text", func(t *testing.T) {
		f := newStaffFixture(t, nil)
		staffOpenTicket(f)
		queued := len(f.outbox())
		const body = "Herstart de kassa.\n#close\n#sluit"
		f.deliver(buildMail(staffMail(1, "late@infobits", body, staffPassAR)))
		f.once()
		if hs := f.held(); len(hs) != 0 {
			t.Fatalf("held = %+v", hs)
		}
		if tk := f.ticket(1); tk.Status != helpdesk.StatusAnswered {
			t.Errorf("status %s, want answered (not closed)", tk.Status)
		}
		got := f.staffNewSince(queued)
		if len(got) != 1 || got[0].Kind != helpdesk.KindAnswer || got[0].Data.Text != body {
			t.Errorf("queued %v text %q, want the whole text as the answer", staffKinds(got), staffText(got))
		}
	})
}

// TestForgedStaffRefused: "A From address is easy to forge": a staff From is
// believed only with a pass in the topmost Authentication-Results of the trusted server. A
// refused email is kept (staff_unverified), nothing of it is applied, and the staff list is
// told. With the check off (HELPDESK_REQUIRE_AUTH=false) a staff email needs no header.
func TestForgedStaffRefused(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
	}{
		{"no Authentication-Results", nil},
		{"pass from another server", []string{
			"Authentication-Results: mx.evil.example; dkim=pass header.d=infobits.example; dmarc=pass header.from=infobits.example"}},
		{"trusted server says fail", []string{staffFailAR}},
		{"forged pass below the trusted fail", []string{staffFailAR, staffPassAR}},
		{"pass for another domain", []string{
			"Authentication-Results: mx.infobits.example; dkim=pass header.d=evil.example; dmarc=pass header.from=evil.example"}},
		{"unaligned dkim pass", []string{"Authentication-Results: mx.infobits.example; dkim=pass header.d=evil.example"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newStaffFixture(t, nil)
			before := staffOpenTicket(f)
			queued := len(f.outbox())
			f.deliver(buildMail(staffMail(1, "forged@evil", "#close\n#assign jan@infobits.example\nBetaal eerst via evil.example.", c.headers...)))
			f.once()

			tk := f.ticket(1)
			if tk.Status != before.Status || tk.Messages != before.Messages || tk.Assignee != "" || !tk.FirstResponse.IsZero() {
				t.Errorf("forged staff email applied: status %s, %d messages, assignee %q, first response %v",
					tk.Status, tk.Messages, tk.Assignee, tk.FirstResponse)
			}
			hs := f.held()
			if len(hs) != 1 || hs[0].Reason != helpdesk.HeldStaffUnverified || hs[0].RawSHA256 == "" {
				t.Fatalf("held = %+v, want the email kept as staff_unverified", hs)
			}
			got := f.staffNewSince(queued)
			if len(got) != 1 || got[0].Kind != helpdesk.KindStaffRefused || got[0].To != staffListAddr || got[0].Data.Error == "" {
				t.Errorf("queued %v, want only a staff_refused to the staff list, with the reason", staffKinds(got))
			}
		})
	}

	t.Run("pass accepted with the id in another case", func(t *testing.T) {
		f := newStaffFixture(t, nil)
		staffOpenTicket(f)
		f.deliver(buildMail(staffMail(1, "ok@infobits", "Herstart de kassa.",
			"Authentication-Results: MX.Infobits.Example; dkim=pass header.d=infobits.example")))
		f.once()
		if tk := f.ticket(1); tk.Status != helpdesk.StatusAnswered {
			t.Errorf("status %s, want answered (aligned DKIM pass from the trusted server); held %+v", tk.Status, f.held())
		}
	})

	t.Run("check off", func(t *testing.T) {
		f := newStaffFixture(t, func(r *policy.Rules) { r.RequireStaffAuth = false })
		staffOpenTicket(f)
		queued := len(f.outbox())
		f.deliver(buildMail(staffMail(1, "nocheck@infobits", "#close\nHerstart de kassa.")))
		f.once()
		if hs := f.held(); len(hs) != 0 {
			t.Fatalf("held = %+v", hs)
		}
		if tk := f.ticket(1); tk.Status != helpdesk.StatusClosed {
			t.Errorf("status %s, want closed", tk.Status)
		}
		if got := f.staffNewSince(queued); len(got) != 1 || got[0].Kind != helpdesk.KindAnswer {
			t.Errorf("queued %v, want the answer", staffKinds(got))
		}
	})

	// With the check off, the trusted server can still say fail. A customer email is held as
	// spoofed on an explicit fail ("only an explicit fail holds it"); a staff From that the
	// trusted server says is forged must not get more power than a customer's.
	t.Run("check off, trusted server says fail", func(t *testing.T) {
		f := newStaffFixture(t, func(r *policy.Rules) { r.RequireStaffAuth = false })
		before := staffOpenTicket(f)
		queued := len(f.outbox())
		f.deliver(buildMail(staffMail(1, "failoff@evil", "#close\nBetaal eerst via evil.example.", staffFailAR)))
		f.once()
		tk := f.ticket(1)
		hs := f.held()
		if tk.Status != before.Status || tk.Messages != before.Messages || len(hs) != 1 {
			t.Errorf("forged staff email (dmarc=fail) applied with the check off: status %s, %d messages, held %+v",
				tk.Status, tk.Messages, hs)
		}
		if len(hs) == 1 && hs[0].Reason != helpdesk.HeldStaffUnverified {
			t.Errorf("held reason %s, want staff_unverified", hs[0].Reason)
		}
		if got := staffOfKind(f.staffNewSince(queued), helpdesk.KindAnswer); len(got) != 0 {
			t.Errorf("the customer got the forged answer: %v", staffKinds(got))
		}
	})
}

// TestSpoofedCustomer: customer email with no Authentication-Results from the
// trusted server is accepted as before; an explicit DMARC fail for the customer's domain is
// held as spoofed, opens no ticket and answers no one (not the forged address, not staff).
func TestSpoofedCustomer(t *testing.T) {
	f := newStaffFixture(t, nil)
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Nieuw rekeningnummer", msgID: "spoof@evil",
		extra: []string{"Authentication-Results: mx.infobits.example; spf=fail smtp.mailfrom=evil.example; dmarc=fail header.from=bakkerijdevries.nl"}}))
	f.once()
	if ts := f.tickets(); len(ts) != 0 {
		t.Errorf("tickets = %+v, want none", ts)
	}
	hs := f.held()
	if len(hs) != 1 || hs[0].Reason != helpdesk.HeldSpoofed || hs[0].From != "info@bakkerijdevries.nl" {
		t.Fatalf("held = %+v, want spoofed", hs)
	}
	if ob := f.outbox(); len(ob) != 0 {
		t.Errorf("queued %v, want no reply to anyone", staffKinds(ob))
	}

	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Nieuw rekeningnummer", msgID: "real@bakkerij"}))
	f.once()
	ts := f.tickets()
	if len(ts) != 1 || ts[0].Subject != "Nieuw rekeningnummer" {
		t.Fatalf("tickets = %+v, want one for the email without Authentication-Results", ts)
	}
	if acks := staffOfKind(f.outbox(), helpdesk.KindAck); len(acks) != 1 || acks[0].To != "info@bakkerijdevries.nl" {
		t.Errorf("acknowledgements = %v", staffKinds(acks))
	}
}

// TestStaffList: the staff list hears of new tickets and customer replies, with
// the ticket (its reference goes in the subject); a staff member's plain reply to such a
// notice answers the customer; a customer reply to an answered ticket sets it open again.
func TestStaffList(t *testing.T) {
	f := newStaffFixture(t, nil)
	staffOpenTicket(f)
	ob := f.outbox()
	news := staffOfKind(ob, helpdesk.KindStaffNew)
	if len(news) != 1 || news[0].To != staffListAddr || news[0].TicketID != 1 || news[0].Data.Text != "De kassa start niet op.\n" {
		t.Fatalf("outbox %v, want a staff_new to the staff list for ticket 1 with the question", staffKinds(ob))
	}
	if acks := staffOfKind(ob, helpdesk.KindAck); len(acks) != 1 || acks[0].To != "info@bakkerijdevries.nl" {
		t.Errorf("outbox %v, want the customer's acknowledgement too", staffKinds(ob))
	}

	// Jan replies to the notice from his mail program: In-Reply-To the notice, no reference.
	queued := len(ob)
	f.deliverAt(arrival.Add(time.Hour), mailOpts{from: "Jan <jan@infobits.example>", subject: "Re: nieuwe vraag",
		msgID: "reply@infobits", inReplyTo: news[0].MessageID, body: "Herstart de kassa.", extra: []string{staffPassAR}})
	f.once()
	if tk := f.ticket(1); tk.Status != helpdesk.StatusAnswered {
		t.Fatalf("status %s, want answered; held %+v", tk.Status, f.held())
	}
	got := f.staffNewSince(queued)
	if len(got) != 1 || got[0].Kind != helpdesk.KindAnswer || got[0].To != "info@bakkerijdevries.nl" || got[0].Data.Text != "Herstart de kassa." {
		t.Fatalf("queued %v, want the answer to the customer", staffKinds(got))
	}

	// The customer replies to the answer: open again, and the staff list hears of it.
	queued = len(f.outbox())
	f.deliverAt(arrival.Add(2*time.Hour), mailOpts{from: "info@bakkerijdevries.nl", subject: "Re: [Infobits #1] Kassa start niet op",
		msgID: "q3@bakkerij", inReplyTo: got[0].MessageID, body: "Werkt nog steeds niet."})
	f.once()
	if tk := f.ticket(1); tk.Status != helpdesk.StatusOpen || tk.Messages != 3 {
		t.Errorf("after the customer's reply: status %s, %d messages; want open, 3", tk.Status, tk.Messages)
	}
	got = f.staffNewSince(queued)
	if len(got) != 1 || got[0].Kind != helpdesk.KindStaffReply || got[0].To != staffListAddr || got[0].TicketID != 1 ||
		got[0].Data.Text != "Werkt nog steeds niet.\n" {
		t.Errorf("queued %v, want a staff_reply to the staff list with the reply", staffKinds(got))
	}
	// Staff answer the reply notice the same way.
	f.deliverAt(arrival.Add(3*time.Hour), mailOpts{from: "jan@infobits.example", subject: "Re: reactie",
		msgID: "reply2@infobits", inReplyTo: got[0].MessageID, body: "Dan kom ik langs.", extra: []string{staffPassAR}})
	f.once()
	if tk := f.ticket(1); tk.Status != helpdesk.StatusAnswered || tk.Messages != 4 {
		t.Errorf("after the second answer: status %s, %d messages; want answered, 4", tk.Status, tk.Messages)
	}
}

// TestRecoveryByEmail: R16 — "wachtwoord vergeten" (or "password forgotten", any case) from
// any of a customer's addresses queues a reset link to the login address; R18 — from an
// address that is no customer's, nothing at all is sent (no unknown-sender reply either);
// At most RecoveryPerHour links per address per hour. Every request is kept, held
// as recovery, and opens no ticket.
func TestRecoveryByEmail(t *testing.T) {
	t.Run("customer's second address", func(t *testing.T) {
		f := newStaffFixture(t, nil)
		f.deliver(buildMail(mailOpts{from: "Piet <piet@bakkerijdevries.nl>", subject: "wachtwoord vergeten", msgID: "r1@bakkerij"}))
		f.once()
		ob := f.outbox()
		if len(ob) != 1 {
			t.Fatalf("queued %v, want one password reset", staffKinds(ob))
		}
		n := ob[0]
		if n.Kind != helpdesk.KindPasswordReset || n.To != "info@bakkerijdevries.nl" || n.Data.TokenPurpose != helpdesk.PurposePassword ||
			n.Data.CustomerID != 1 {
			t.Errorf("notification = %s to %s purpose %q customer %d; want password_reset to the login address, password, 1",
				n.Kind, n.To, n.Data.TokenPurpose, n.Data.CustomerID)
		}
		staffRecoveryHeld(t, f, 1)
	})

	t.Run("other case and reply prefix", func(t *testing.T) {
		f := newStaffFixture(t, nil)
		f.deliver(buildMail(mailOpts{from: "kassa@slagerijjansen.nl", subject: "RE: PASSWORD Forgotten", msgID: "r2@slagerij"}))
		f.once()
		if ob := f.outbox(); len(ob) != 1 || ob[0].Kind != helpdesk.KindPasswordReset || ob[0].To != "kassa@slagerijjansen.nl" {
			t.Errorf("queued %v, want one password reset to kassa@slagerijjansen.nl", staffKinds(ob))
		}
		staffRecoveryHeld(t, f, 1)
	})

	// Punctuation as people type it, after a reply prefix.
	for _, subj := range []string{"wachtwoord vergeten?", "RE: Wachtwoord vergeten!", "Fwd: wachtwoord vergeten..."} {
		t.Run(subj, func(t *testing.T) {
			f := newStaffFixture(t, nil)
			f.deliver(buildMail(mailOpts{from: "kassa@slagerijjansen.nl", subject: subj, msgID: "rp@slagerij"}))
			f.once()
			if ob := f.outbox(); len(ob) != 1 || ob[0].Kind != helpdesk.KindPasswordReset {
				t.Errorf("subject %q: queued %v, want one password reset", subj, staffKinds(ob))
			}
			staffRecoveryHeld(t, f, 1)
		})
	}

	t.Run("unknown address", func(t *testing.T) {
		f := newStaffFixture(t, nil)
		f.deliver(buildMail(mailOpts{from: "vreemd@example.com", subject: "Wachtwoord vergeten", msgID: "r3@x"}))
		f.once()
		if ob := f.outbox(); len(ob) != 0 {
			t.Errorf("queued %v, want nothing (R18)", staffKinds(ob))
		}
		staffRecoveryHeld(t, f, 1)
	})

	t.Run("rate limit", func(t *testing.T) {
		f := newStaffFixture(t, nil) // RecoveryPerHour 2
		for i, from := range []string{"info@bakkerijdevries.nl", "piet@bakkerijdevries.nl", "info@bakkerijdevries.nl"} {
			f.deliverAt(arrival.Add(time.Duration(i)*10*time.Minute),
				mailOpts{from: from, subject: "wachtwoord vergeten", msgID: fmt.Sprintf("rl%d@bakkerij", i)})
		}
		f.once()
		if resets := staffOfKind(f.outbox(), helpdesk.KindPasswordReset); len(resets) != 2 {
			t.Errorf("password resets = %d (%v), want 2: the third request in the hour queues nothing",
				len(resets), staffKinds(f.outbox()))
		}
		staffRecoveryHeld(t, f, 3)
		// The hour after the first link, one more is allowed again.
		f.deliverAt(arrival.Add(61*time.Minute), mailOpts{from: "info@bakkerijdevries.nl", subject: "wachtwoord vergeten", msgID: "rl9@bakkerij"})
		f.once()
		if resets := staffOfKind(f.outbox(), helpdesk.KindPasswordReset); len(resets) != 3 {
			t.Errorf("password resets = %d, want 3 after the first one's hour", len(resets))
		}
	})
}

// staffRecoveryHeld checks that the gateway kept n recovery requests and opened no ticket.
func staffRecoveryHeld(t *testing.T, f *fixture, n int) {
	t.Helper()
	hs := f.held()
	if len(hs) != n || slices.ContainsFunc(hs, func(h *helpdesk.Held) bool { return h.Reason != helpdesk.HeldRecovery }) {
		t.Errorf("held = %+v, want %d recovery", hs, n)
	}
	if ts := f.tickets(); len(ts) != 0 {
		t.Errorf("tickets = %+v, want none", ts)
	}
}
