package ingest_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/rules/policy"
)

// TestCallbackMaintainedByNoOne: R13, R14 — a customer whose system is maintained by no one
// (maintainer "none") may ask for a callback: it is recorded on the ticket as a callback for
// staff to follow up (prepaid, R13), and staff are told of it as for anyone, with the note
// that it is no right. The customer's acknowledgement says the request is noted but that they
// have no right to it, and does not promise the follow-up of R14. A customer whose system the
// vendor maintains (the default, and "vendor" set explicitly) asking the same is promised it,
// without that sentence. Read from the mail as it reaches the SMTP server.
func TestCallbackMaintainedByNoOne(t *testing.T) {
	const staffList = "team@infobits.example"
	f := newFixture(t, "mem", func(c *ingest.Config) {
		a := *c.Desk
		r := testRules(t, policy.Limits{})
		r.StaffList = staffList
		a.Policy = policy.New(r)
		c.Desk = &a
	})
	f.addCustomer(&helpdesk.Customer{Name: "Niemand", Emails: []string{"n@niemand.nl"}, Tier: helpdesk.SLA8, Maintainer: helpdesk.MaintainerNone})
	f.addCustomer(&helpdesk.Customer{Name: "Eigen", Emails: []string{"e@eigen.nl"}, Tier: helpdesk.SLA8})
	f.addCustomer(&helpdesk.Customer{Name: "Leverancier", Emails: []string{"l@leverancier.nl"}, Tier: helpdesk.SLA8, Maintainer: helpdesk.MaintainerVendor})
	sink, w := newNotifier(t, f.db, "support@infobits.example", "Infobits")
	at := amsTime("2026-11-30 10:00")
	f.deliverAt(at, mailOpts{from: "n@niemand.nl", subject: "Terugbellen a.u.b.", msgID: "cb1@n"})
	f.deliverAt(at, mailOpts{from: "e@eigen.nl", subject: "Terugbellen a.u.b.", msgID: "cb2@e"})
	f.deliverAt(at, mailOpts{from: "l@leverancier.nl", subject: "Terugbellen a.u.b.", msgID: "cb3@l"})
	f.once()

	// The ticket: a callback for all three, prepaid (SLA8 without postpaid in the subject).
	for id := uint64(1); id <= 3; id++ {
		if tk := f.ticket(id); tk.Followup != helpdesk.FollowupCallback || tk.Payment != helpdesk.PaymentPrepaid {
			t.Errorf("ticket %d: followup %s, payment %q; want %s, %s", id, tk.Followup, tk.Payment, helpdesk.FollowupCallback, helpdesk.PaymentPrepaid)
		}
	}
	// The acknowledgement's notes: only the unmaintained system has no right.
	notes := map[string][]string{}
	for _, n := range f.outbox() {
		if n.Kind == helpdesk.KindAck {
			notes[n.To] = n.Data.Notes
		}
	}
	if got := notes["n@niemand.nl"]; slices.Contains(got, policy.NoteCallback) || !slices.Contains(got, policy.NoteCallbackNoRight) {
		t.Errorf("maintained by no one: acknowledgement notes %v, want %s instead of %s", got, policy.NoteCallbackNoRight, policy.NoteCallback)
	}
	for _, addr := range []string{"e@eigen.nl", "l@leverancier.nl"} {
		if got := notes[addr]; !slices.Contains(got, policy.NoteCallback) || slices.Contains(got, policy.NoteCallbackNoRight) {
			t.Errorf("maintained by the vendor (%s): acknowledgement notes %v, want %s without %s", addr, got, policy.NoteCallback, policy.NoteCallbackNoRight)
		}
	}

	// What the customers and staff read.
	if _, err := w.Drain(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	acks, staff := map[string]string{}, map[string]string{}
	for _, m := range sink.Messages() {
		e := parse.Parse(m.Data, at)
		switch {
		case len(m.To) == 1 && m.To[0] == staffList:
			staff[e.Subject] = e.Text
		case len(m.To) == 1:
			acks[m.To[0]] = e.Text
		}
	}
	// The vendor's customers are promised the follow-up of R14; the other one is told it is
	// not a right (R13), and not promised it.
	const recorded, noRight, promise = "Uw terugbelverzoek is genoteerd (prepaid, vooruit betaald)", "u kunt er geen aanspraak op maken", "opvolging tot het probleem is opgelost"
	if got := oneLine(acks["n@niemand.nl"]); !strings.Contains(got, recorded) || !strings.Contains(got, noRight) ||
		!strings.Contains(got, "Uw systeem wordt niet door ons onderhouden") || strings.Contains(got, promise) {
		t.Errorf("acknowledgement to the customer maintained by no one:\n%s", got)
	}
	for _, addr := range []string{"e@eigen.nl", "l@leverancier.nl"} {
		if got := oneLine(acks[addr]); !strings.Contains(got, recorded) || strings.Contains(got, noRight) || !strings.Contains(got, promise) {
			t.Errorf("acknowledgement to %s (maintained by the vendor):\n%s", addr, got)
		}
	}
	if len(staff) != 3 {
		t.Fatalf("staff got %d new-ticket notices, want 3: %v", len(staff), staff)
	}
	for subj, text := range staff {
		if !strings.Contains(text, "terugbelverzoek (prepaid)") {
			t.Errorf("staff notice %q does not name the callback request:\n%s", subj, text)
		}
		// Staff make the call: they are told when it is not a right.
		if want := strings.Contains(text, "Niemand"); strings.Contains(oneLine(text), "zonder recht erop") != want {
			t.Errorf("staff notice %q: says the callback is no right = %v, want %v:\n%s", subj, !want, want, text)
		}
		if !strings.HasPrefix(text, "Hallo,") {
			t.Errorf("staff notice %q greets %.30q, want the team (Hallo,)", subj, text)
		}
	}
}

// oneLine joins a text's lines with spaces, so that a sentence can be found across a wrap.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
