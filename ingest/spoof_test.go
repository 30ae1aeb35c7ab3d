package ingest_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/infobits/helpdesk"
)

// Sender spoofing of customers (R10 "a reply may only be added by the ticket's
// customer or by staff") through the real ingest path. The gateway trusts only the topmost
// Authentication-Results header whose authserv-id is the configured one (staffTrusted,
// "mx.infobits.example", as in newStaffFixture); an explicit dmarc=fail for the From domain
// there holds a customer email as spoofed, before the sender or a ticket is looked up.
// Headers of any other authserv-id are ignored whatever they say.

const (
	spoofCustomer = "info@bakkerijdevries.nl"
	// What the trusted server writes for mail that claims the customer's domain but is not
	// from it (SPF for the attacker's envelope, no DKIM, DMARC fail under p=reject).
	spoofTrustedFail = "Authentication-Results: mx.infobits.example; spf=fail smtp.mailfrom=evil.example; dkim=none; dmarc=fail (p=reject dis=none) header.from=bakkerijdevries.nl"
	// What it writes for the customer's genuine mail.
	spoofTrustedPass = "Authentication-Results: mx.infobits.example; spf=pass smtp.mailfrom=bakkerijdevries.nl; dkim=pass header.d=bakkerijdevries.nl; dmarc=pass header.from=bakkerijdevries.nl"
	// Headers of other servers: the sender's own (or the attacker's) or a relay's.
	spoofForeignFail = "Authentication-Results: mx.evil.example; spf=fail smtp.mailfrom=bakkerijdevries.nl; dmarc=fail header.from=bakkerijdevries.nl"
	spoofForeignPass = "Authentication-Results: mx.evil.example; dkim=pass header.d=bakkerijdevries.nl; dmarc=pass header.from=bakkerijdevries.nl"
	// An authserv-id that only starts like the trusted one is another server's.
	spoofLookalikeFail = "Authentication-Results: mx.infobits.example.evil.example; dmarc=fail header.from=bakkerijdevries.nl"
	spoofLookalikePass = "Authentication-Results: mx.infobits.example.evil.example; dmarc=pass header.from=bakkerijdevries.nl"
	// A header carrying the trusted id below the trusted server's own: written by the sender
	// (a server that strips them would have removed it) and never believed.
	spoofForgedTrustedPass = "Authentication-Results: mx.infobits.example; dkim=pass header.d=bakkerijdevries.nl; dmarc=pass header.from=bakkerijdevries.nl"
)

// spoofReport is a delivery report (RFC 3464) from the given From about our notification
// msgID, with the given header lines: a forged one says the customer's mailbox is gone.
func spoofReport(from, msgID string, headers ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: support@infobits.example\r\nSubject: Undelivered Mail Returned to Sender\r\n", from)
	b.WriteString("Date: Fri, 27 Nov 2026 10:05:00 +0100\r\nMessage-ID: <forged-bounce@evil.example>\r\nAuto-Submitted: auto-replied\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nMailbox gone. Our new address for invoices: betalen@evil.example\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.bakkerijdevries.nl\r\n\r\n" +
		"Final-Recipient: rfc822; " + spoofCustomer + "\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n" +
		"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Infobits Helpdesk <support@infobits.example>\r\nTo: " + spoofCustomer + "\r\n" +
		"Subject: [Infobits #1] Ontvangen\r\nMessage-Id: <" + msgID + ">\r\n\r\n--b--\r\n")
	return []byte(b.String())
}

// spoofState is what a spoofed email must leave alone: ticket 1, its thread and the outbox.
type spoofState struct {
	ticket   helpdesk.Ticket
	thread   []string
	statuses []string
	queued   int
}

func spoofSnapshot(f *fixture) spoofState {
	f.t.Helper()
	s := spoofState{ticket: *f.ticket(1)}
	for _, m := range f.messages(1) {
		s.thread = append(s.thread, fmt.Sprintf("%d %s %s %q", m.Seq, m.Direction, m.From, m.Text))
	}
	ob := f.outbox()
	for _, n := range ob {
		s.statuses = append(s.statuses, n.Kind+"→"+n.To+" "+n.Status)
	}
	s.queued = len(ob)
	return s
}

// TestSpoofedReplyHeld: "an email whose sender claim fails (DMARC/DKIM/SPF per the
// trusted server's Authentication-Results) adds no reply in that customer's name". A reply to
// the customer's existing ticket, recognised by its reference and In-Reply-To (R10), from the
// customer's address but with dmarc=fail from the trusted server, is held as spoofed with the
// verdict in its detail; the ticket (status, message and reply counts), its thread and the
// outbox are unchanged: no acknowledgement or other mail in the customer's name or to them,
// nothing to the staff list, an answered ticket is not reopened. The same holds for a forged
// out-of-office reply and a forged delivery report (which would otherwise be filed on the
// thread and mark the customer's notification failed, suspending their mail), and a
// trusted-id header written below the trusted server's own does not rescue any of them. The
// customer's genuine reply afterwards is added as usual.
func TestSpoofedReplyHeld(t *testing.T) {
	cases := []struct {
		name     string
		answered bool // staff answered ticket 1 before the spoof arrives
		mail     func(ackID string) []byte
	}{
		{name: "reply with reference and In-Reply-To", mail: func(ackID string) []byte {
			return buildMail(mailOpts{from: "Bakkerij de Vries <" + spoofCustomer + ">", subject: "Re: [Infobits #1] Kassa start niet op",
				msgID: "spoof-reply@evil.example", inReplyTo: ackID, references: "<" + ackID + ">",
				body: "Ons rekeningnummer is gewijzigd: NL00EVIL0123456789.", extra: []string{spoofTrustedFail}})
		}},
		{name: "reply to an answered ticket", answered: true, mail: func(ackID string) []byte {
			return buildMail(mailOpts{from: spoofCustomer, subject: "Re: [Infobits #1] Kassa start niet op",
				msgID: "spoof-reopen@evil.example", inReplyTo: ackID, body: "Werkt nog steeds niet, bel 0900-EVIL.",
				extra: []string{spoofTrustedFail}})
		}},
		{name: "reply by In-Reply-To alone", mail: func(ackID string) []byte {
			return buildMail(mailOpts{from: spoofCustomer, subject: "Re: iets anders",
				msgID: "spoof-irt@evil.example", inReplyTo: ackID, body: "Nieuw rekeningnummer.", extra: []string{spoofTrustedFail}})
		}},
		{name: "forged trusted pass below the trusted fail", mail: func(ackID string) []byte {
			return buildMail(mailOpts{from: spoofCustomer, subject: "Re: [Infobits #1] Kassa start niet op",
				msgID: "spoof-below@evil.example", inReplyTo: ackID, body: "Nieuw rekeningnummer.",
				extra: []string{spoofTrustedFail, spoofForgedTrustedPass}})
		}},
		{name: "out-of-office reply", mail: func(ackID string) []byte {
			return buildMail(mailOpts{from: spoofCustomer, subject: "Automatisch antwoord: [Infobits #1] Kassa start niet op",
				msgID: "spoof-ooo@evil.example", inReplyTo: ackID, body: "Afwezig; mail betalen@evil.example.",
				extra: []string{"Auto-Submitted: auto-replied", spoofTrustedFail}})
		}},
		{name: "delivery report from the customer's address", mail: func(ackID string) []byte {
			return spoofReport("Bakkerij de Vries <"+spoofCustomer+">", ackID, spoofTrustedFail)
		}},
		{name: "delivery report from the customer domain's mailer-daemon", mail: func(ackID string) []byte {
			return spoofReport("MAILER-DAEMON@bakkerijdevries.nl", ackID, "Return-Path: <>", spoofTrustedFail)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newStaffFixture(t, nil)
			staffOpenTicket(f)
			acks := staffOfKind(f.outbox(), helpdesk.KindAck)
			if len(acks) != 1 {
				t.Fatalf("outbox %v, want one acknowledgement", staffKinds(f.outbox()))
			}
			ackID := acks[0].MessageID
			if c.answered {
				f.deliver(buildMail(staffMail(1, "a1@infobits", "Herstart de kassa.", staffPassAR)))
				f.once()
				if st := f.ticket(1).Status; st != helpdesk.StatusAnswered {
					t.Fatalf("status %s after the staff answer, want answered; held %+v", st, f.held())
				}
			}
			before := spoofSnapshot(f)
			heldBefore := len(f.held())

			f.deliver(c.mail(ackID))
			f.once()

			after := spoofSnapshot(f)
			if tk := after.ticket; tk.Status != before.ticket.Status || tk.Messages != before.ticket.Messages ||
				tk.Replies != before.ticket.Replies || !tk.Updated.Equal(before.ticket.Updated) {
				t.Errorf("ticket 1 changed: status %s→%s, messages %d→%d, replies %d→%d, updated %v→%v",
					before.ticket.Status, tk.Status, before.ticket.Messages, tk.Messages, before.ticket.Replies, tk.Replies,
					before.ticket.Updated, tk.Updated)
			}
			if !slices.Equal(after.thread, before.thread) {
				t.Errorf("thread of ticket 1 changed:\nbefore %q\nafter  %q", before.thread, after.thread)
			}
			if !slices.Equal(after.statuses, before.statuses) {
				t.Errorf("outbox changed (nothing may be sent in the customer's name, to them or to staff, nor marked failed):\nbefore %q\nafter  %q",
					before.statuses, after.statuses)
			}
			if n := len(f.tickets()); n != 1 {
				t.Errorf("tickets = %d, want only ticket 1", n)
			}
			hs := f.held()
			if len(hs) != heldBefore+1 {
				t.Fatalf("held = %+v, want the spoofed email held", hs)
			}
			h := hs[len(hs)-1]
			if h.Reason != helpdesk.HeldSpoofed || !strings.Contains(h.Detail, "dmarc=fail") ||
				!strings.Contains(h.Detail, "mx.infobits.example") || h.RawSHA256 == "" {
				t.Errorf("held = %+v, want reason spoofed, the trusted server's dmarc=fail in the detail, the raw email kept", h)
			}

			// The customer's own reply still gets in (and reopens an answered ticket).
			f.deliver(buildMail(mailOpts{from: spoofCustomer, subject: "Re: [Infobits #1] Kassa start niet op",
				msgID: "genuine@bakkerij", inReplyTo: ackID, body: "Echt van ons.", extra: []string{spoofTrustedPass}}))
			f.once()
			ms := f.messages(1)
			if last := ms[len(ms)-1]; len(ms) != len(before.thread)+1 || last.Direction != helpdesk.DirectionIn ||
				last.From != spoofCustomer || last.Text != "Echt van ons.\n" {
				t.Errorf("the genuine reply was not added: thread %d→%d messages, last %+v", len(before.thread), len(ms), last)
			}
			if st := f.ticket(1).Status; st != helpdesk.StatusOpen {
				t.Errorf("status %s after the genuine reply, want open", st)
			}
		})
	}
}

// TestForeignAuthResultsIgnored: "Authentication-Results from anyone but the trusted
// server are ignored": a dmarc=fail in a header of another authserv-id (the sender's own
// server, a relay, or a lookalike id that merely starts with the trusted one) does not hold the
// customer's email. With the trusted server's pass, or with no header from it at all (accepted
// as before), a reply joins the customer's ticket and a new question opens a ticket
// with its acknowledgement, whether the foreign header is below or above the trusted one.
func TestForeignAuthResultsIgnored(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
	}{
		{"trusted pass, foreign fail below", []string{spoofTrustedPass, spoofForeignFail}},
		{"foreign fail above trusted pass", []string{spoofForeignFail, spoofTrustedPass}},
		{"no trusted header, foreign fail", []string{spoofForeignFail}},
		{"no trusted header, lookalike authserv-id fail", []string{spoofLookalikeFail}},
		{"trusted pass, lookalike authserv-id fail above", []string{spoofLookalikeFail, spoofTrustedPass}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newStaffFixture(t, nil)
			staffOpenTicket(f)
			threadBefore := len(f.messages(1))
			queued := len(f.outbox())

			f.deliver(buildMail(mailOpts{from: spoofCustomer, subject: "Re: [Infobits #1] Kassa start niet op",
				msgID: "reply@bakkerij", body: "Nog een detail.", extra: c.headers}))
			f.deliver(buildMail(mailOpts{from: spoofCustomer, subject: "Pinautomaat", msgID: "new@bakkerij",
				body: "De pinautomaat is stuk.", extra: c.headers}))
			f.once()

			if hs := f.held(); len(hs) != 0 {
				t.Fatalf("held = %+v, want nothing held: the foreign header is ignored", hs)
			}
			ms := f.messages(1)
			if last := ms[len(ms)-1]; len(ms) != threadBefore+1 || last.Direction != helpdesk.DirectionIn ||
				last.From != spoofCustomer || last.Text != "Nog een detail.\n" {
				t.Errorf("reply not added to ticket 1: thread %d→%d, last %+v", threadBefore, len(ms), last)
			}
			ts := f.tickets()
			if len(ts) != 2 || ts[1].Subject != "Pinautomaat" || ts[1].Address != spoofCustomer {
				t.Fatalf("tickets = %+v, want ticket 2 for the new question", ts)
			}
			got := f.staffNewSince(queued)
			acks := staffOfKind(got, helpdesk.KindAck)
			if len(acks) != 1 || acks[0].To != spoofCustomer || acks[0].TicketID != 2 {
				t.Errorf("queued %v, want the acknowledgement of ticket 2 to the customer", staffKinds(got))
			}
			if n := len(staffOfKind(got, helpdesk.KindStaffReply)); n != 1 {
				t.Errorf("queued %v, want the staff list told of the reply", staffKinds(got))
			}
		})
	}
}

// TestForeignPassDoesNotRescue: the reverse: when the trusted server says
// dmarc=fail, a pass in a header of another authserv-id (the attacker's own, above or below,
// or a lookalike id) does not make the email the customer's. A new question and a reply to
// the customer's ticket are both held as spoofed; no ticket, no thread message, no mail.
func TestForeignPassDoesNotRescue(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
	}{
		{"foreign pass below trusted fail", []string{spoofTrustedFail, spoofForeignPass}},
		{"foreign pass above trusted fail", []string{spoofForeignPass, spoofTrustedFail}},
		{"lookalike authserv-id pass above trusted fail", []string{spoofLookalikePass, spoofTrustedFail}},
		{"forged trusted-id pass below trusted fail", []string{spoofTrustedFail, spoofForgedTrustedPass, spoofForeignPass}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newStaffFixture(t, nil)
			staffOpenTicket(f)
			before := spoofSnapshot(f)

			f.deliver(buildMail(mailOpts{from: spoofCustomer, subject: "Re: [Infobits #1] Kassa start niet op",
				msgID: "spoof-reply@evil.example", body: "Nieuw rekeningnummer.", extra: c.headers}))
			f.deliver(buildMail(mailOpts{from: spoofCustomer, subject: "Nieuw rekeningnummer", msgID: "spoof-new@evil.example",
				body: "Betaal voortaan aan NL00EVIL0123456789.", extra: c.headers}))
			f.once()

			after := spoofSnapshot(f)
			if n := len(f.tickets()); n != 1 {
				t.Errorf("tickets = %d, want only ticket 1", n)
			}
			if after.ticket.Messages != before.ticket.Messages || !slices.Equal(after.thread, before.thread) {
				t.Errorf("thread of ticket 1 changed:\nbefore %q\nafter  %q", before.thread, after.thread)
			}
			if !slices.Equal(after.statuses, before.statuses) {
				t.Errorf("outbox changed:\nbefore %q\nafter  %q", before.statuses, after.statuses)
			}
			hs := f.held()
			if len(hs) != 2 {
				t.Fatalf("held = %+v, want both emails held", hs)
			}
			for _, h := range hs {
				if h.Reason != helpdesk.HeldSpoofed || h.From != spoofCustomer || !strings.Contains(h.Detail, "dmarc=fail for bakkerijdevries.nl by mx.infobits.example") {
					t.Errorf("held = %+v, want spoofed with the trusted server's verdict", h)
				}
			}
		})
	}
}

// TestAmbiguousFromHeld: a From that parsers read differently — here
// "<info@bakkerijdevries.nl@evil.example>", which the gateway's lenient parser once read as the
// customer while the receiving server judged it evil.example's and found DMARC in order for
// that domain. It is no RFC 5322 address, so the gateway reads no sender at all (From is
// read strictly) and holds it as no_sender. And where the gateway and the server read
// a From differently in another way, a pass for another domain proves nothing about the From
// the gateway read: the reply is held as spoofed. Ticket 1 is left alone either way
// (R10).
func TestAmbiguousFromHeld(t *testing.T) {
	cases := []struct {
		name, from, headerFrom, reason, detail string
	}{
		{"address with two @", "<" + spoofCustomer + "@evil.example>", "evil.example", helpdesk.HeldNoSender, "no RFC 5322 address"},
		{"server judged another From", spoofCustomer, "evil.example", helpdesk.HeldSpoofed, "read another From"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newStaffFixture(t, nil)
			staffOpenTicket(f)
			acks := staffOfKind(f.outbox(), helpdesk.KindAck)
			if len(acks) != 1 {
				t.Fatalf("outbox %v, want one acknowledgement", staffKinds(f.outbox()))
			}
			ackID := acks[0].MessageID
			before := spoofSnapshot(f)
			raw := buildMail(mailOpts{from: c.from, subject: "Re: [Infobits #1] Kassa start niet op",
				msgID: "ambiguous@evil.example", inReplyTo: ackID, body: "Nieuw rekeningnummer: NL00EVIL0123456789.",
				extra: []string{"Authentication-Results: mx.infobits.example; spf=pass smtp.mailfrom=evil.example; dkim=pass header.d=evil.example; dmarc=pass header.from=" + c.headerFrom}})
			f.deliver(raw)
			f.once()
			after := spoofSnapshot(f)
			if !slices.Equal(after.thread, before.thread) || after.ticket.Status != before.ticket.Status {
				t.Errorf("ticket 1 changed by an ambiguous From:\nbefore %q\nafter  %q", before.thread, after.thread)
			}
			if !slices.Equal(after.statuses, before.statuses) {
				t.Errorf("outbox changed:\nbefore %q\nafter  %q", before.statuses, after.statuses)
			}
			hs := f.held()
			if len(hs) == 0 {
				t.Fatal("nothing held; the email was taken as the customer's")
			}
			if h := hs[len(hs)-1]; h.Reason != c.reason || !strings.Contains(h.Detail, c.detail) {
				t.Errorf("held = %+v, want reason %s saying %q", h, c.reason, c.detail)
			}
		})
	}
}
