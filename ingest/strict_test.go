package ingest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
)

// Hostile headers replayed through the real ingest path (the in-memory IMAP server, a bbolt
// file): duplicate once-only fields (RFC 5322 §3.6), From read strictly, the run of trusted
// Authentication-Results (RFC 8601), and the SLA24 limits (R11) — what was read from a header,
// whose verdict counted, which limit applied.

// rawMail is an email with exactly these header lines, in this order (buildMail puts its own
// fields first), and a plain-text body.
func rawMail(body string, header ...string) []byte {
	return []byte(strings.Join(header, "\r\n") + "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		strings.ReplaceAll(body, "\n", "\r\n") + "\r\n")
}

// strictTwoTickets has info@bakkerijdevries.nl open ticket 1 ("Kassa start niet op") and
// kassa@slagerijjansen.nl ticket 2 ("Weegschaal"), and returns the acknowledgement ids.
func strictTwoTickets(f *fixture) (ack1, ack2 string) {
	f.t.Helper()
	staffOpenTicket(f)
	f.deliver(buildMail(mailOpts{from: "kassa@slagerijjansen.nl", subject: "Weegschaal", msgID: "w1@slagerij", body: "De weegschaal telt niet."}))
	f.once()
	if ts := f.tickets(); len(ts) != 2 || ts[1].Address != "kassa@slagerijjansen.nl" {
		f.t.Fatalf("tickets = %+v, want ticket 2 of the butcher", ts)
	}
	for _, n := range staffOfKind(f.outbox(), helpdesk.KindAck) {
		switch n.TicketID {
		case 1:
			ack1 = n.MessageID
		case 2:
			ack2 = n.MessageID
		}
	}
	return ack1, ack2
}

// ticketState is what an attack must leave alone: a ticket, its thread and the outbox.
type ticketState struct {
	ticket helpdesk.Ticket
	thread []string
	outbox []string
}

func snapshotTicket(f *fixture, id uint64) ticketState {
	f.t.Helper()
	s := ticketState{ticket: *f.ticket(id)}
	for _, m := range f.messages(id) {
		s.thread = append(s.thread, fmt.Sprintf("%d %s %s %q", m.Seq, m.Direction, m.From, m.Text))
	}
	for _, n := range f.outbox() {
		s.outbox = append(s.outbox, n.Kind+"→"+n.To+" "+n.Status)
	}
	return s
}

func (s ticketState) same(t *testing.T, what string, after ticketState) {
	t.Helper()
	if a, b := after.ticket, s.ticket; a.Status != b.Status || a.Messages != b.Messages || a.Replies != b.Replies || !a.Updated.Equal(b.Updated) {
		t.Errorf("%s: ticket %d changed: status %s→%s, messages %d→%d, replies %d→%d", what, b.ID, b.Status, a.Status,
			b.Messages, a.Messages, b.Replies, a.Replies)
	}
	if !slices.Equal(after.thread, s.thread) {
		t.Errorf("%s: thread of ticket %d changed:\nbefore %q\nafter  %q", what, s.ticket.ID, s.thread, after.thread)
	}
	if !slices.Equal(after.outbox, s.outbox) {
		t.Errorf("%s: outbox changed:\nbefore %q\nafter  %q", what, s.outbox, after.outbox)
	}
}

func (f *fixture) release(id uint64, asStaff bool) (desk.Outcome, error) {
	f.t.Helper()
	var out desk.Outcome
	err := f.db.Update(context.Background(), func(tx *store.Tx) (err error) {
		out, err = f.cfg.Desk.Release(tx, id, desk.ReleaseOptions{AsStaff: asStaff, By: "operator"})
		return err
	})
	return out, err
}

func (f *fixture) lastHeld() *helpdesk.Held {
	f.t.Helper()
	hs := f.held()
	if len(hs) == 0 {
		f.t.Fatal("nothing held")
	}
	return hs[len(hs)-1]
}

// TestDuplicateHeaderHeld: "A genuine DKIM-signed email from a staff member
// (Subject "Lunch vrijdag?") with `Subject: [Infobits #2]` added on top answered another
// customer's ticket". Replayed: the trusted server's DMARC pass for the staff domain (the
// signature covers the bottom-most Subject) above a header with two Subjects. It is held as
// duplicate_header naming both; ticket 2's thread, status and the outbox are untouched (no
// answer reaches the butcher). Released by the operator, it is read as signed — "Lunch
// vrijdag?", which names no ticket — so the release is refused and ticket 2 is still untouched.
// The same for a customer: a second Subject naming ticket 1 on top of a new question is held,
// and released it opens a ticket with the signed subject instead of joining ticket 1; two From
// fields are held, and released the signed (bottom-most) From counts. A staff answer with one
// Subject still works.
func TestDuplicateHeaderHeld(t *testing.T) {
	f := newStaffFixture(t, nil)
	strictTwoTickets(f)
	before2 := snapshotTicket(f, 2)

	lunch := rawMail("Zin in lunch vrijdag? Ik trakteer.",
		staffPassAR,
		"Subject: [Infobits #2]",
		"From: Jan <"+staffJan+">",
		"To: collega@infobits.example",
		"Subject: Lunch vrijdag?",
		"Date: Fri, 27 Nov 2026 10:00:00 +0100",
		"Message-ID: <lunch@infobits.example>")
	f.deliver(lunch)
	f.once()
	before2.same(t, "a second Subject on a staff email", snapshotTicket(f, 2))
	h := f.lastHeld()
	if h.Reason != helpdesk.HeldDuplicateHeader || !strings.Contains(h.Detail, "2 Subject fields") ||
		!strings.Contains(h.Detail, `"[Infobits #2]"`) || !strings.Contains(h.Detail, `"Lunch vrijdag?"`) || h.RawSHA256 == "" {
		t.Fatalf("held = %+v, want duplicate_header naming both subjects, the raw email kept", h)
	}
	_, err := f.release(h.ID, true)
	if err == nil || !strings.Contains(err.Error(), helpdesk.HeldStaffNoTicket) {
		t.Errorf("release = %v, want refused: the signed subject names no ticket", err)
	}
	before2.same(t, "the release of the lunch email", snapshotTicket(f, 2))

	// A customer's new question with a subject naming their ticket added on top.
	before1 := snapshotTicket(f, 1)
	f.deliver(rawMail("De pinautomaat geeft een foutmelding.",
		spoofTrustedPass,
		"Subject: Re: [Infobits #1] Kassa start niet op",
		"From: "+spoofCustomer,
		"Subject: Pinautomaat",
		"Message-ID: <pin@bakkerij>"))
	f.once()
	before1.same(t, "a second Subject on a customer email", snapshotTicket(f, 1))
	if n := len(f.tickets()); n != 2 {
		t.Errorf("tickets = %d, want 2", n)
	}
	h = f.lastHeld()
	if h.Reason != helpdesk.HeldDuplicateHeader {
		t.Fatalf("held = %+v, want duplicate_header", h)
	}
	out, err := f.release(h.ID, false)
	if err != nil || out.Action != "new_ticket" {
		t.Fatalf("release = %+v, %v; want a new ticket", out, err)
	}
	if tk := f.ticket(out.TicketID); tk.Subject != "Pinautomaat" || tk.Address != spoofCustomer {
		t.Errorf("released ticket = %q from %s, want the signed subject Pinautomaat", tk.Subject, tk.Address)
	}
	if ms := f.messages(1); len(ms) != len(before1.thread) {
		t.Errorf("ticket 1 has %d messages after the release, want %d", len(ms), len(before1.thread))
	}

	// Two From fields: the butcher's address on top of an evil.example one that DKIM signed.
	before2 = snapshotTicket(f, 2)
	f.deliver(rawMail("Nieuw rekeningnummer: NL00EVIL0123456789.",
		"Authentication-Results: mx.infobits.example; dkim=pass header.d=evil.example; dmarc=pass header.from=evil.example",
		"From: kassa@slagerijjansen.nl",
		"From: boekhouding@evil.example",
		"Subject: Re: [Infobits #2] Weegschaal",
		"Message-ID: <twofrom@evil.example>"))
	f.once()
	before2.same(t, "a second From", snapshotTicket(f, 2))
	h = f.lastHeld()
	if h.Reason != helpdesk.HeldDuplicateHeader || !strings.Contains(h.Detail, "2 From fields") {
		t.Fatalf("held = %+v, want duplicate_header naming the From fields", h)
	}
	if _, err := f.release(h.ID, false); err == nil || !strings.Contains(err.Error(), "boekhouding@evil.example") ||
		!strings.Contains(err.Error(), helpdesk.HeldUnknownSender) {
		t.Errorf("release = %v, want refused for the signed From, an unknown sender", err)
	}
	before2.same(t, "the release of the two-From email", snapshotTicket(f, 2))

	// One Subject: the staff answer to ticket 2 is applied as always.
	f.deliver(buildMail(mailOpts{from: "Jan <" + staffJan + ">", subject: "Re: [Infobits #2] Weegschaal", msgID: "a2@infobits",
		body: "Kalibreer de weegschaal opnieuw.", extra: []string{staffPassAR}}))
	f.once()
	if tk := f.ticket(2); tk.Status != helpdesk.StatusAnswered {
		t.Errorf("ticket 2 is %s after a staff answer with one Subject, want answered; held %+v", tk.Status, f.lastHeld())
	}
}

// TestStrictFrom: each From form of the attacks that is not the customer's address
// but was read as it (a DMARC verifier finds no domain in them, so it writes no verdict) is
// held as no_sender, with the From in the detail: no reply joins the customer's ticket, nothing
// is sent. A domain with U+212A KELVIN SIGN is not the customer's domain (ASCII lower-casing
// only): it is an unknown sender. The legitimate forms — display names, quoted display names
// with commas, quoted local parts, capitals — still reach the customer's ticket.
func TestStrictFrom(t *testing.T) {
	attacks := []struct{ name, from, reason string }{
		{"encoded word", "=?utf-8?q?info=40bakkerijdevries.nl?=", helpdesk.HeldNoSender},
		{"quoted display name only", `"info@bakkerijdevries.nl"`, helpdesk.HeldNoSender},
		{"quoted display name, empty address", `"info@bakkerijdevries.nl" <>`, helpdesk.HeldNoSender},
		{"comment", "attacker (info@bakkerijdevries.nl)", helpdesk.HeldNoSender},
		{"spaces in the angle address", `"your secret past" <power quadrant info@bakkerijdevries.nl>`, helpdesk.HeldNoSender},
		{"unquoted comma", "Vries, Piet <info@bakkerijdevries.nl>", helpdesk.HeldNoSender},
		{"Kelvin sign", "Piet <info@ba\u212akerijdevries.nl>", helpdesk.HeldUnknownSender},
	}
	for _, c := range attacks {
		t.Run(c.name, func(t *testing.T) {
			f := newStaffFixture(t, nil)
			ack1, _ := strictTwoTickets(f)
			before := snapshotTicket(f, 1)
			f.deliver(buildMail(mailOpts{from: c.from, subject: "Re: [Infobits #1] Kassa start niet op", msgID: "attack@evil.example",
				inReplyTo: ack1, body: "Ons rekeningnummer is gewijzigd: NL00EVIL0123456789."}))
			f.once()
			// The unknown-sender reply goes to the look-alike address, never to the customer.
			lookalike := func(s ticketState) ticketState {
				s.outbox = slices.DeleteFunc(s.outbox, func(n string) bool {
					return c.reason == helpdesk.HeldUnknownSender && strings.HasPrefix(n, helpdesk.KindUnknownSender+"→info@ba\u212akerijdevries.nl ")
				})
				return s
			}
			before.same(t, c.from, lookalike(snapshotTicket(f, 1)))
			h := f.lastHeld()
			if h.Reason != c.reason || h.CustomerID != 0 || h.RawSHA256 == "" {
				t.Errorf("held = %+v, want %s for no customer", h, c.reason)
			}
			if c.reason == helpdesk.HeldNoSender && (h.From != "" || !strings.Contains(h.Detail, "no RFC 5322 address")) {
				t.Errorf("held from %q: %q, want no sender read and the From quoted", h.From, h.Detail)
			}
			if _, err := f.release(h.ID, false); err == nil {
				t.Errorf("held email %d (%s) was released into a ticket", h.ID, c.reason)
			}
			before.same(t, "the release of "+c.from, lookalike(snapshotTicket(f, 1)))
		})
	}

	f := newStaffFixture(t, nil)
	ack1, _ := strictTwoTickets(f)
	for i, from := range []string{
		"Piet de Vries <Piet@BakkerijDeVries.NL>",
		`"Vries, Piet de" <piet@bakkerijdevries.nl>`,
		`Bakkerij de Vries <"info"@bakkerijdevries.nl>`,
		"info@bakkerijdevries.nl (Bakkerij de Vries)",
		"=?utf-8?q?Bakkerij_de_Vries_=E2=80=93_kassa?= <INFO@bakkerijdevries.nl>",
	} {
		n := len(f.messages(1))
		f.deliver(buildMail(mailOpts{from: from, subject: "Re: [Infobits #1] Kassa start niet op", msgID: fmt.Sprintf("ok%d@bakkerij", i),
			inReplyTo: ack1, body: fmt.Sprintf("Aanvulling %d.", i)}))
		f.once()
		ms := f.messages(1)
		if len(ms) != n+1 || ms[n].Direction != helpdesk.DirectionIn || !strings.HasSuffix(ms[n].From, "@bakkerijdevries.nl") {
			t.Errorf("From: %s: reply not added to ticket 1 (thread %d→%d); held %+v", from, n, len(ms), f.held())
		}
	}
	if hs := f.held(); len(hs) != 0 {
		t.Errorf("held = %+v, want every legitimate From accepted", hs)
	}
}

// TestStrictFromIDN: TestStrictFrom with an internationalized domain — a customer at
// bäckerij.nl writes from the U-label, the trusted server names the A-label (OpenDMARC's
// form): their new question is theirs, not spoofed; the same address with a capital Ä is
// another address (compared exactly beyond ASCII).
func TestStrictFromIDN(t *testing.T) {
	f := newStaffFixture(t, nil)
	f.addCustomer(&helpdesk.Customer{Name: "Bäckerij", Emails: []string{"jan@bäckerij.nl"}, Tier: helpdesk.SLA8})
	ar := "Authentication-Results: mx.infobits.example; dkim=pass header.d=xn--bckerij-5wa.nl; dmarc=pass header.from=xn--bckerij-5wa.nl"
	f.deliver(buildMail(mailOpts{from: "Jan <Jan@bäckerij.nl>", subject: "Kassa", msgID: "idn@b", body: "Vraag.", extra: []string{ar}}))
	f.deliver(buildMail(mailOpts{from: "Jan <jan@BÄCKERIJ.nl>", subject: "Kassa 2", msgID: "idn2@b", body: "Vraag.", extra: []string{ar}}))
	f.once()
	ts := f.tickets()
	if len(ts) != 1 || ts[0].Address != "jan@bäckerij.nl" || ts[0].Subject != "Kassa" {
		t.Fatalf("tickets = %+v, want the IDN customer's ticket", ts)
	}
	if h := f.lastHeld(); h.Reason != helpdesk.HeldSpoofed && h.Reason != helpdesk.HeldUnknownSender {
		t.Errorf("held = %+v, want the capital-Ä address not taken as the customer's", h)
	}
}

// TestAuthResultsRun: "Servers that write one Authentication-Results field
// per check (OpenDKIM and OpenDMARC both use the server's authserv-id) put the DMARC verdict in
// the second field; only the topmost trusted field was read, so a forged customer reply with
// dmarc=fail there was accepted." Replayed with the fields as Postfix with the two milters
// writes them (below the server's Received field): the forged reply is held as spoofed and
// ticket 1 is left alone; a staff email whose DMARC fail is in the second field (its first an
// aligned DKIM pass) is not applied. A pass in the second field is a pass (the customer's
// reply joins the ticket, the staff answer is applied); a trusted-id field further down, after
// an earlier hop's Received field, came with the message and rescues nothing.
func TestAuthResultsRun(t *testing.T) {
	received := "Received: from mail.example (mail.example [192.0.2.7]) by mx.infobits.example (Postfix) with ESMTPS id 4Xy; Fri, 27 Nov 2026 10:00:01 +0100"
	earlier := "Received: from [10.0.0.3] by mail.example; Fri, 27 Nov 2026 10:00:00 +0100"
	dkimNone := "Authentication-Results: mx.infobits.example; dkim=none (message not signed) header.d=bakkerijdevries.nl"
	dmarcFail := "Authentication-Results: mx.infobits.example; dmarc=fail (p=reject dis=none) header.from=bakkerijdevries.nl"
	dmarcPass := "Authentication-Results: mx.infobits.example; dmarc=pass (p=reject dis=none) header.from=bakkerijdevries.nl"
	forged := "Authentication-Results: mx.infobits.example; dkim=pass header.d=infobits.example; dmarc=pass header.from=infobits.example"

	t.Run("customer", func(t *testing.T) {
		f := newStaffFixture(t, nil)
		ack1, _ := strictTwoTickets(f)
		before := snapshotTicket(f, 1)
		f.deliver(rawMail("Ons rekeningnummer is gewijzigd: NL00EVIL0123456789.",
			received, dkimNone, dmarcFail, earlier,
			"From: Bakkerij de Vries <"+spoofCustomer+">", "Subject: Re: [Infobits #1] Kassa start niet op",
			"Message-ID: <second-field@evil.example>", "In-Reply-To: <"+ack1+">"))
		f.once()
		before.same(t, "dmarc=fail in the second field", snapshotTicket(f, 1))
		if h := f.lastHeld(); h.Reason != helpdesk.HeldSpoofed || !strings.Contains(h.Detail, "dmarc=fail for bakkerijdevries.nl by mx.infobits.example") {
			t.Errorf("held = %+v, want spoofed with the second field's verdict", h)
		}

		f.deliver(rawMail("Echt van ons.",
			received, dkimNone, dmarcPass, earlier,
			"From: "+spoofCustomer, "Subject: Re: [Infobits #1] Kassa start niet op", "Message-ID: <genuine@bakkerij>", "In-Reply-To: <"+ack1+">"))
		f.once()
		if ms := f.messages(1); len(ms) != len(before.thread)+1 || ms[len(ms)-1].Text != "Echt van ons.\n" {
			t.Errorf("the genuine reply (pass in the second field) was not added: %d→%d messages", len(before.thread), len(ms))
		}
	})

	t.Run("staff", func(t *testing.T) {
		f := newStaffFixture(t, nil)
		strictTwoTickets(f)
		dkimStaff := "Authentication-Results: mx.infobits.example; dkim=pass (2048-bit key) header.d=infobits.example header.s=mail"
		staffFail := "Authentication-Results: mx.infobits.example; dmarc=fail (p=reject dis=none) header.from=infobits.example"
		staffPass := "Authentication-Results: mx.infobits.example; dmarc=pass (p=reject dis=none) header.from=infobits.example"
		spf := "Authentication-Results: mx.infobits.example; spf=pass smtp.mailfrom=infobits.example"
		answer := func(msgID, body string, header ...string) []byte {
			return rawMail(body, append(header, "From: Jan <"+staffJan+">", "Subject: Re: [Infobits #2] Weegschaal",
				"Message-ID: <"+msgID+">")...)
		}
		before := snapshotTicket(f, 2)
		for _, c := range []struct {
			name   string
			header []string
		}{
			{"aligned dkim pass, dmarc=fail in the second field", []string{received, dkimStaff, staffFail, earlier}},
			{"a forged pass after an earlier hop", []string{received, spf, earlier, forged}},
		} {
			f.deliver(answer("forged-"+strings.ReplaceAll(c.name, " ", "-")+"@evil.example", "#close\nBetaal aan NL00EVIL0123456789.", c.header...))
			f.once()
			after := snapshotTicket(f, 2)
			after.outbox = slices.DeleteFunc(after.outbox, func(s string) bool { return strings.HasPrefix(s, helpdesk.KindStaffRefused+"→") })
			before.same(t, c.name, after)
			if h := f.lastHeld(); h.Reason != helpdesk.HeldStaffUnverified {
				t.Errorf("%s: held = %+v, want staff_unverified", c.name, h)
			}
		}

		f.deliver(answer("real@infobits.example", "Kalibreer de weegschaal opnieuw.", received, spf, staffPass, earlier))
		f.once()
		if tk := f.ticket(2); tk.Status != helpdesk.StatusAnswered {
			t.Errorf("ticket 2 is %s; want answered by the staff email with dmarc=pass in its second field; held %+v", tk.Status, f.held())
		}
	})
}

// TestAutomaticRepliesCountForLimit: "SLA24's reply limit counts every
// customer reply stored on the ticket; Auto-Submitted replies get no automatic answer but still
// count (12 such replies were all added past a limit of 5)." Replayed: 12 out-of-office replies
// of an SLA24 customer to their ticket with a limit of 5: 5 join the thread, 7 are held
// over_limit, and none of them is answered (no limit notice to a machine); the customer's own
// reply after them is held too, and they are told once.
func TestAutomaticRepliesCountForLimit(t *testing.T) {
	f := newSLAFixture(t, policy.Limits{RepliesPerTicket: 5})
	const butcher = "kassa@slagerijjansen.nl" // SLA24
	f.deliver(buildMail(mailOpts{from: butcher, subject: "Weegschaal", msgID: "w@s"}))
	f.once()
	queued := len(f.outbox())
	for i := range 12 {
		f.deliver(buildMail(mailOpts{from: butcher, subject: "Automatisch antwoord: Re: [Infobits #1] Weegschaal", msgID: fmt.Sprintf("ooo%d@s", i),
			body: "Ik ben afwezig.", extra: []string{"Auto-Submitted: auto-replied"}}))
	}
	f.once()
	if tk := f.ticket(1); tk.Messages != 6 || tk.Replies != 5 {
		t.Errorf("ticket 1: %d messages, %d replies; want 6 and 5 (the limit)", tk.Messages, tk.Replies)
	}
	hs := f.held()
	if len(hs) != 7 {
		t.Fatalf("held = %d, want 7 automatic replies past the limit", len(hs))
	}
	for _, h := range hs {
		if h.Reason != helpdesk.HeldOverLimit || h.Detail != "SLA24 limit: 5 replies per ticket (5 so far)" {
			t.Errorf("held = %+v, want over_limit", h)
		}
	}
	if ob := f.outbox(); len(ob) != queued {
		t.Errorf("outbox %v: an automatic reply was answered", staffKinds(ob[queued:]))
	}

	f.deliver(buildMail(mailOpts{from: butcher, subject: "Re: [Infobits #1] Weegschaal", msgID: "human@s", body: "Nog een vraag."}))
	f.once()
	if tk := f.ticket(1); tk.Messages != 6 {
		t.Errorf("ticket 1 has %d messages, want the customer's reply held too", tk.Messages)
	}
	if got := staffOfKind(f.outbox()[queued:], helpdesk.KindOverLimit); len(got) != 1 || got[0].To != butcher {
		t.Errorf("outbox %v, want one limit notice to the customer", staffKinds(f.outbox()[queued:]))
	}
}

// TestReopenChecksOpenLimit: "A customer reply that reopens a closed ticket
// is checked against the open-tickets limit." An SLA24 customer with the open-tickets limit of
// 1 reached replies to their closed ticket: the reply is held over_limit, the closed ticket
// stays closed, the customer is told which limit. With the open ticket closed, the same reply
// reopens it; and an out-of-office reply to a closed ticket (which reopens nothing) is stored.
func TestReopenChecksOpenLimit(t *testing.T) {
	f := newSLAFixture(t, policy.Limits{OpenTickets: 1})
	const butcher = "kassa@slagerijjansen.nl" // SLA24
	setStatus := func(id uint64, status string) {
		t.Helper()
		if err := f.db.Update(context.Background(), func(tx *store.Tx) error {
			tk, err := tx.Ticket(id)
			if err != nil {
				return err
			}
			tk.Status = status
			return tx.PutTicket(tk)
		}); err != nil {
			t.Fatal(err)
		}
	}
	f.deliver(buildMail(mailOpts{from: butcher, subject: "Weegschaal", msgID: "w@s"}))
	f.once()
	setStatus(1, helpdesk.StatusClosed)
	f.deliver(buildMail(mailOpts{from: butcher, subject: "Printer", msgID: "p@s"}))
	f.once()
	if ts := f.tickets(); len(ts) != 2 || ts[1].Status != helpdesk.StatusOpen {
		t.Fatalf("tickets = %+v, want ticket 2 open", ts)
	}
	queued := len(f.outbox())

	f.deliver(buildMail(mailOpts{from: butcher, subject: "Re: [Infobits #1] Weegschaal", msgID: "again@s", body: "Weer stuk."}))
	f.once()
	if tk := f.ticket(1); tk.Status != helpdesk.StatusClosed || tk.Messages != 1 {
		t.Errorf("ticket 1: %s with %d messages, want closed with 1: reopening it would pass the open-tickets limit", tk.Status, tk.Messages)
	}
	h := f.lastHeld()
	if h.Reason != helpdesk.HeldOverLimit || h.Detail != "SLA24 limit: 1 open tickets at a time (1 open)" {
		t.Errorf("held = %+v, want over the open-tickets limit", h)
	}
	if got := staffOfKind(f.outbox()[queued:], helpdesk.KindOverLimit); len(got) != 1 || got[0].Data.LimitKind != policy.LimitOpenTickets {
		t.Errorf("outbox %v, want the open-tickets limit notice", staffKinds(f.outbox()[queued:]))
	}

	f.deliver(buildMail(mailOpts{from: butcher, subject: "Automatisch antwoord: [Infobits #1] Weegschaal", msgID: "ooo@s",
		extra: []string{"Auto-Submitted: auto-replied"}}))
	f.once()
	if tk := f.ticket(1); tk.Status != helpdesk.StatusClosed || tk.Messages != 2 {
		t.Errorf("ticket 1: %s with %d messages, want the out-of-office reply stored, the ticket still closed", tk.Status, tk.Messages)
	}

	setStatus(2, helpdesk.StatusClosed)
	f.deliver(buildMail(mailOpts{from: butcher, subject: "Re: [Infobits #1] Weegschaal", msgID: "again2@s", body: "Nog steeds stuk."}))
	f.once()
	if tk := f.ticket(1); tk.Status != helpdesk.StatusOpen || tk.Messages != 3 {
		t.Errorf("ticket 1: %s with %d messages, want reopened with the reply", tk.Status, tk.Messages)
	}
}

// TestDuplicateHeaderObsoleteSpelling: item 3 with the field name spelled as RFC 5322 section
// 4.5 allows (white space before the colon). enmime, DKIM verifiers and Postfix read "Subject
// : [Infobits #2]" as a Subject; the gateway's header reader skipped it, so the staff email
// had one Subject for the duplicate check while enmime's topmost Subject was read — and the
// lunch email answered the butcher's ticket. Held as duplicate_header now, ticket 2 untouched;
// a second From spelled so is held too.
func TestDuplicateHeaderObsoleteSpelling(t *testing.T) {
	f := newStaffFixture(t, nil)
	strictTwoTickets(f)
	before2 := snapshotTicket(f, 2)

	for _, spelling := range []string{"Subject : [Infobits #2]", "Subject\t: [Infobits #2]"} {
		f.deliver(rawMail("Zin in lunch vrijdag? Ik trakteer.",
			staffPassAR,
			spelling,
			"From: Jan <"+staffJan+">",
			"To: collega@infobits.example",
			"Subject: Lunch vrijdag?",
			"Date: Fri, 27 Nov 2026 10:00:00 +0100",
			fmt.Sprintf("Message-ID: <lunch-%d@infobits.example>", len(f.held()))))
		f.once()
		before2.same(t, fmt.Sprintf("%q on a staff email", spelling), snapshotTicket(f, 2))
		h := f.lastHeld()
		if h.Reason != helpdesk.HeldDuplicateHeader || !strings.Contains(h.Detail, "2 Subject fields") ||
			!strings.Contains(h.Detail, `"[Infobits #2]"`) {
			t.Fatalf("%q: held = %+v, want duplicate_header naming both subjects", spelling, h)
		}
	}

	f.deliver(rawMail("Nieuw rekeningnummer: NL00EVIL0123456789.",
		"Authentication-Results: mx.infobits.example; dkim=pass header.d=evil.example; dmarc=pass header.from=evil.example",
		"From : kassa@slagerijjansen.nl",
		"From: boekhouding@evil.example",
		"Subject: Re: [Infobits #2] Weegschaal",
		"Message-ID: <twofrom-obs@evil.example>"))
	f.once()
	before2.same(t, "a second From spelled \"From :\"", snapshotTicket(f, 2))
	if h := f.lastHeld(); h.Reason != helpdesk.HeldDuplicateHeader || !strings.Contains(h.Detail, "2 From fields") {
		t.Fatalf("held = %+v, want duplicate_header naming the From fields", h)
	}
}

// TestStrictFromGroupAndUnicodeSpace: item 4, two more Froms that are not the customer's
// address but were read as it. A group ("Bakkerij: info@bakkerijdevries.nl;") is no RFC 5322
// From (a mailbox-list, section 3.6.2): a DMARC verifier that finds no domain in it writes
// no verdict, and the gateway took the member as the sender. A no-break space after the
// address was trimmed away as if it were white space, leaving the customer's address; it is
// part of the field (another address, or none). Both are held for no customer, ticket 1 is
// untouched, and neither can be released into it.
func TestStrictFromGroupAndUnicodeSpace(t *testing.T) {
	for _, c := range []struct{ name, from string }{
		{"group", "Bakkerij: info@bakkerijdevries.nl;"},
		{"group without a name", ":info@bakkerijdevries.nl;"},
		{"no-break space", "info@bakkerijdevries.nl\u00a0"},
		{"no-break space in angle brackets", "Piet <info@bakkerijdevries.nl>\u00a0, \u00a0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newStaffFixture(t, nil)
			ack1, _ := strictTwoTickets(f)
			before := snapshotTicket(f, 1)
			f.deliver(buildMail(mailOpts{from: c.from, subject: "Re: [Infobits #1] Kassa start niet op", msgID: "attack@evil.example",
				inReplyTo: ack1, body: "Ons rekeningnummer is gewijzigd: NL00EVIL0123456789."}))
			f.once()
			// An unknown-sender reply may go to the look-alike address, never to the customer.
			lookalike := func(s ticketState) ticketState {
				s.outbox = slices.DeleteFunc(s.outbox, func(n string) bool {
					return strings.HasPrefix(n, helpdesk.KindUnknownSender+"→info@bakkerijdevries.nl\u00a0 ")
				})
				return s
			}
			before.same(t, c.from, lookalike(snapshotTicket(f, 1)))
			h := f.lastHeld()
			if h.CustomerID != 0 || h.RawSHA256 == "" || (h.Reason != helpdesk.HeldNoSender && h.Reason != helpdesk.HeldUnknownSender) ||
				h.From == "info@bakkerijdevries.nl" {
				t.Errorf("held = %+v, want no_sender or unknown_sender, for no customer", h)
			}
			if _, err := f.release(h.ID, false); err == nil {
				t.Errorf("held email %d (%s) was released into a ticket", h.ID, h.Reason)
			}
			before.same(t, "the release of "+c.from, lookalike(snapshotTicket(f, 1)))
		})
	}
}
