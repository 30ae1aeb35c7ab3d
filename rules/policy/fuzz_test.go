package policy_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/rules/policy"
)

// fuzzView is the store as policy sees it, in maps, with a notification to bounce and an
// address whose mail bounced. The embedded View is nil: a method added to policy.View later
// panics here until this view gets it, which the fuzzer reports at once.
type fuzzView struct {
	policy.View
	customers map[string]*helpdesk.Customer
	tickets   map[uint64]*helpdesk.Ticket
	msgIDs    map[string]uint64
	notes     map[string]*helpdesk.Notification
	bounced   map[string]time.Time
	replies   map[string]int // automatic replies already sent to an address this hour
}

func (v *fuzzView) CustomerByAddress(addr string) (*helpdesk.Customer, error) {
	c, ok := v.customers[helpdesk.NormalizeAddress(addr)]
	if !ok {
		return nil, helpdesk.ErrNotFound
	}
	cc := *c
	return &cc, nil
}

func (v *fuzzView) Ticket(id uint64) (*helpdesk.Ticket, error) {
	t, ok := v.tickets[id]
	if !ok {
		return nil, fmt.Errorf("ticket %d: %w", id, helpdesk.ErrNotFound)
	}
	tc := *t
	return &tc, nil
}

func (v *fuzzView) TicketByMessageID(id string) (uint64, error) {
	if t, ok := v.msgIDs[helpdesk.CanonicalMessageID(id)]; ok {
		return t, nil
	}
	return 0, helpdesk.ErrNotFound
}

func (v *fuzzView) CustomerTickets(id uint64) ([]*helpdesk.Ticket, error) {
	var out []*helpdesk.Ticket
	for _, t := range v.tickets {
		if t.CustomerID == id {
			tc := *t
			out = append(out, &tc)
		}
	}
	return out, nil
}

// CustomerReplies: the ticket's Replies stand for the customer emails on its thread.
func (v *fuzzView) CustomerReplies(id uint64) (int, error) {
	if t, ok := v.tickets[id]; ok {
		return t.Replies, nil
	}
	return 0, nil
}

func (v *fuzzView) LimitNoticeSent(uint64, helpdesk.Date) (bool, error) { return false, nil }

func (v *fuzzView) AutoRepliesSince(addr, kind string, since time.Time) (int, error) {
	if kind != "" {
		return 0, nil
	}
	return v.replies[addr], nil
}

func (v *fuzzView) NotificationByMessageID(id string) (*helpdesk.Notification, error) {
	if n, ok := v.notes[helpdesk.CanonicalMessageID(id)]; ok {
		nc := *n
		return &nc, nil
	}
	return nil, helpdesk.ErrNotFound
}

func (v *fuzzView) BouncedUntil(addr string) (time.Time, error) { return v.bounced[addr], nil }

func (v *fuzzView) LoginChange(id uint64) (*helpdesk.LoginChange, error) {
	return nil, helpdesk.ErrNotFound
}

func newFuzzView() *fuzzView {
	bakker := &helpdesk.Customer{ID: 1, Name: "Bakkerij de Vries", Emails: []string{"info@bakkerij.nl", "piet@bakkerij.nl"}, Tier: helpdesk.SLA8}
	slager := &helpdesk.Customer{ID: 2, Name: "Slagerij Jansen", Emails: []string{"kassa@slagerij.nl"}, Tier: helpdesk.SLA24}
	return &fuzzView{
		customers: map[string]*helpdesk.Customer{"info@bakkerij.nl": bakker, "piet@bakkerij.nl": bakker, "kassa@slagerij.nl": slager},
		tickets: map[uint64]*helpdesk.Ticket{
			5: {ID: 5, CustomerID: 1, Address: "info@bakkerij.nl", Subject: "Kassa start niet op", Status: helpdesk.StatusOpen},
			6: {ID: 6, CustomerID: 2, Address: "kassa@slagerij.nl", Subject: "Printer", Status: helpdesk.StatusOpen, Replies: 5},
			7: {ID: 7, CustomerID: 1, Address: "piet@bakkerij.nl", Subject: "Bonprinter", Status: helpdesk.StatusClosed},
			8: {ID: 8, CustomerID: 2, Address: "kassa@slagerij.nl", Subject: "Backup", Status: helpdesk.StatusAnswered},
			9: {ID: 9, CustomerID: 2, Address: "kassa@slagerij.nl", Subject: "Oud", Status: helpdesk.StatusClosed},
		},
		msgIDs: map[string]uint64{"m5@bakkerij.nl": 5, "n5@helpdesk.infobits.nl": 5, "m6@slagerij.nl": 6, "m7@bakkerij.nl": 7, "m9@slagerij.nl": 9},
		notes: map[string]*helpdesk.Notification{
			"n5@helpdesk.infobits.nl": {ID: 1, Kind: helpdesk.KindAck, TicketID: 5, To: "info@bakkerij.nl", MessageID: "n5@helpdesk.infobits.nl", Automatic: true},
			"u1@helpdesk.infobits.nl": {ID: 2, Kind: helpdesk.KindUnknownSender, To: "stranger@example.com", MessageID: "u1@helpdesk.infobits.nl", Automatic: true},
		},
		bounced: map[string]time.Time{"piet@bakkerij.nl": time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)},
		replies: map[string]int{"kassa@slagerij.nl": 9},
	}
}

var fuzzRules = policy.Rules{Staff: []string{"jan@infobits.nl"}, TicketTag: "Infobits", Own: []string{"helpdesk@infobits.nl"},
	StaffList: "team@infobits.nl", AuthServID: "mx.infobits.nl", RequireStaffAuth: true,
	Limits:      policy.Limits{TicketsPerMonth: 3, OpenTickets: 2, RepliesPerTicket: 5},
	UrgentWords: []string{"SPOED"}, CallbackWords: []string{"terugbellen"}}

var fuzzArrival = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// fuzzSeeds are crafted emails that reach each branch of Decide.
var fuzzSeeds = []string{
	"From: info@bakkerij.nl\r\nSubject: Kassa kapot SPOED\r\nMessage-ID: <a@b>\r\n\r\nHelp\r\n",
	"From: info@bakkerij.nl\r\nSubject: Re: [Infobits #5] Kassa start niet op\r\nIn-Reply-To: <n5@helpdesk.infobits.nl>\r\n\r\nNog iets\r\n",
	"From: piet@bakkerij.nl\r\nSubject: Re: Bonprinter\r\nReferences: <m7@bakkerij.nl>\r\n\r\nweer kapot\r\n",
	"From: kassa@slagerij.nl\r\nSubject: [Infobits #6] Printer\r\n\r\nzesde antwoord\r\n",
	"From: kassa@slagerij.nl\r\nSubject: Nieuwe vraag terugbellen\r\n\r\nbel me\r\n",
	"From: Stranger <stranger@example.com>\r\nSubject: Vraag\r\n\r\nWie?\r\n",
	"From: stranger@example.com\r\nSubject: Afwezig\r\nAuto-Submitted: auto-replied\r\n\r\nweg\r\n",
	"From: info@bakkerij.nl\r\nSubject: Out of office\r\nX-Autoreply: yes\r\nIn-Reply-To: <n5@helpdesk.infobits.nl>\r\n\r\nweg\r\n",
	"From: helpdesk@infobits.nl\r\nSubject: [Infobits #5] Ontvangen\r\n\r\nloop\r\n",
	"From: jan@infobits.nl\r\nSubject: Re: [Infobits #5] Kassa\r\nAuthentication-Results: mx.infobits.nl; dmarc=pass header.from=infobits.nl\r\n\r\n#close\r\n#assign jan@infobits.nl\r\nOpgelost.\r\n",
	"From: jan@infobits.nl\r\nSubject: zonder ticket\r\nAuthentication-Results: mx.infobits.nl; dmarc=pass header.from=infobits.nl\r\n\r\n#bogus\r\n",
	"From: jan@infobits.nl\r\nSubject: Re: [Infobits #5] Kassa\r\n\r\nniet geverifieerd\r\n",
	"From: info@bakkerij.nl\r\nSubject: Kassa\r\nAuthentication-Results: mx.infobits.nl; dmarc=fail header.from=bakkerij.nl\r\n\r\nvals\r\n",
	"From: info@bakkerij.nl\r\nSubject: wachtwoord vergeten\r\n\r\nhelp\r\n",
	"From: stranger@example.com\r\nSubject: Re: password forgotten\r\n\r\nhelp\r\n",
	"From: piet@bakkerij.nl\r\nSubject: Nieuwe vraag\r\nX-Auto-Response-Suppress: All\r\n\r\ngeen ack\r\n",
	"To: support@infobits.nl\r\nSubject: geen afzender\r\n\r\n?\r\n",
	"From: a@x.nl, info@bakkerij.nl\r\nSubject: twee\r\n\r\n?\r\n",
	"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nTo: helpdesk@infobits.nl\r\nSubject: Undelivered Mail\r\nAuto-Submitted: auto-replied\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\n550 user unknown\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n" +
		"Final-Recipient: rfc822; info@bakkerij.nl\r\nAction: failed\r\nStatus: 5.1.1\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n" +
		"Message-Id: <n5@helpdesk.infobits.nl>\r\n\r\n--b--\r\n",
	"Return-Path: <>\r\nFrom: postmaster@mx.example.com\r\nSubject: Returned\r\n\r\n> Message-ID: <u1@helpdesk.infobits.nl>\r\n",
	// A second Subject on top of a staff member's genuine email; the From forms that
	// were read as a customer's address; the DMARC verdict in the second trusted field; an
	// automatic reply past the reply limit; a reply reopening a closed ticket at the open limit.
	"Subject: [Infobits #6]\r\nFrom: jan@infobits.nl\r\nSubject: Lunch vrijdag?\r\nAuthentication-Results: mx.infobits.nl; dmarc=pass header.from=infobits.nl\r\n\r\nZin in lunch?\r\n",
	"From: =?utf-8?q?kassa=40slagerij.nl?=\r\nSubject: [Infobits #6] Printer\r\n\r\nx\r\n",
	"From: \"kassa@slagerij.nl\" <>\r\nSubject: [Infobits #6] Printer\r\n\r\nx\r\n",
	"From: attacker (kassa@slagerij.nl)\r\nSubject: [Infobits #6] Printer\r\n\r\nx\r\n",
	"From: Piet <piet@ba\u212aerij.nl>\r\nSubject: Re: [Infobits #5] Kassa\r\n\r\nx\r\n",
	"From: info@bakkerij.nl\r\nSubject: Re: [Infobits #5] Kassa\r\nAuthentication-Results: mx.infobits.nl; dkim=none\r\n" +
		"Authentication-Results: mx.infobits.nl; dmarc=fail header.from=bakkerij.nl\r\n\r\nvals\r\n",
	"From: kassa@slagerij.nl\r\nSubject: Automatisch antwoord: [Infobits #6] Printer\r\nAuto-Submitted: auto-replied\r\n\r\nweg\r\n",
	"From: kassa@slagerij.nl\r\nSubject: Re: Oud\r\nIn-Reply-To: <m9@slagerij.nl>\r\n\r\nweer kapot\r\n",
	"From: info@bakkerij.nl\r\nSubject: genest\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n",
}

// FuzzDecide parses arbitrary bytes as ingest does and decides them: whatever arrives, Decide
// does not panic or fail, returns a known action, holds only with a reason, and writes only to
// the sender, the customer's login, the staff list or the ticket's address — never to a
// machine (an automatic email gets no notice at all) and never to the gateway itself.
func FuzzDecide(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "mail", "parse", "testdata", "*.eml"))
	// The real-world corpus too, when fuzzing: as seeds of every `go test` run it would only
	// slow them down.
	if fl := flag.Lookup("test.fuzz"); fl != nil && fl.Value.String() != "" {
		dir := filepath.Join("..", "..", "testdata", "corpus")
		for _, sub := range []string{"bounces", "mail-gem"} {
			more, _ := filepath.Glob(filepath.Join(dir, sub, "*.eml"))
			if len(more) == 0 {
				f.Fatalf("no emails in %s: the real-world corpus is part of the repository", filepath.Join(dir, sub))
			}
			seeds = append(seeds, more...)
		}
	}
	for _, name := range seeds {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n")))
	}
	p := policy.New(fuzzRules)
	f.Fuzz(func(t *testing.T, raw []byte) {
		e := parse.Parse(raw, fuzzArrival)
		if e.Err != nil && strings.Contains(e.Err.Error(), "parser panic") {
			t.Fatalf("the parser panicked (recovered): %v", e.Err)
		}
		v := newFuzzView()
		d, err := p.Decide(e, v)
		if err != nil {
			t.Fatalf("Decide failed with a working store: %v", err)
		}
		checkDecision(t, e, d)
	})
}

func checkDecision(t *testing.T, e *parse.Email, d policy.Decision) {
	t.Helper()
	switch d.Action {
	case policy.ActionHold:
		if d.HoldReason == "" || d.HoldDetail == "" {
			t.Fatalf("held without a reason: %q %q", d.HoldReason, d.HoldDetail)
		}
	case policy.ActionNewTicket:
		if d.Customer == nil || d.Automatic {
			t.Fatalf("new ticket without a customer, or for a machine (%q): %+v", d.AutomaticReason, d)
		}
	case policy.ActionReply:
		if d.Customer == nil || d.Ticket == nil || d.Ticket.CustomerID != d.Customer.ID {
			t.Fatalf("reply on a ticket that is not the sender's: customer %+v ticket %+v", d.Customer, d.Ticket)
		}
	case policy.ActionStaffAnswer:
		if d.Ticket == nil || d.Staff == nil || !slices.Contains(fuzzRules.Staff, e.From) {
			t.Fatalf("staff answer from %q: ticket %+v staff %+v", e.From, d.Ticket, d.Staff)
		}
	case policy.ActionBounce:
		if d.Bounce == nil || d.Bounce.Notification == nil || !d.Automatic {
			t.Fatalf("bounce without its notification, or not automatic: %+v", d)
		}
	default:
		t.Fatalf("unknown action %d", d.Action)
	}
	if d.Action != policy.ActionHold && d.HoldReason != "" {
		t.Fatalf("%s with a hold reason %q", d.Action, d.HoldReason)
	}
	// An email with a once-only field twice is held for it, whatever else it is.
	if len(e.Duplicates) > 0 && e.Err == nil && (d.Action != policy.ActionHold || d.HoldReason != helpdesk.HeldDuplicateHeader) {
		t.Fatalf("duplicate %q: %s %q, want held as %s", e.Duplicates, d.Action, d.HoldReason, helpdesk.HeldDuplicateHeader)
	}
	// A sender taken as someone's is an address the strict parser reads back as itself.
	if d.Action != policy.ActionHold && d.Action != policy.ActionBounce {
		l, err := parse.ParseAddressList(e.From)
		if err != nil || len(l) != 1 || l[0].Address != e.From {
			t.Fatalf("%s from %q, which is no strict address (%v)", d.Action, e.From, err)
		}
	}
	// The SLA24 limits hold for every reply (customer 2 is SLA24, ticket 6 at the reply limit,
	// tickets 6 and 8 open: the open limit): an automatic reply counts, a reopening is an open
	// ticket more.
	if d.Action == policy.ActionReply && d.Customer.Tier == helpdesk.SLA24 {
		if d.Ticket.Replies >= fuzzRules.Limits.RepliesPerTicket {
			t.Fatalf("reply %d added to ticket %d past the limit of %d (automatic: %q)", d.Ticket.Replies+1, d.Ticket.ID,
				fuzzRules.Limits.RepliesPerTicket, d.AutomaticReason)
		}
		if d.Ticket.Status == helpdesk.StatusClosed && d.Reopen {
			t.Fatalf("closed ticket %d reopened past the open-tickets limit", d.Ticket.ID)
		}
	}
	allowed := map[string]bool{}
	if e.From != "" {
		allowed[e.From] = true
	}
	if fuzzRules.StaffList != "" {
		allowed[fuzzRules.StaffList] = true
	}
	if d.Customer != nil && d.Customer.Login() != "" {
		allowed[d.Customer.Login()] = true
	}
	if d.Ticket != nil {
		allowed[d.Ticket.Address] = true
	}
	for _, n := range d.Notify {
		if n.Kind == "" || !allowed[n.To] || slices.Contains(fuzzRules.Own, n.To) {
			t.Fatalf("notice %+v: not to the sender %q, the customer's login, the staff list or the ticket's address", n, e.From)
		}
		if !utf8.ValidString(n.To) || strings.ContainsAny(n.To, "\r\n") {
			t.Fatalf("notice to %q", n.To)
		}
		if d.Automatic && n.To != fuzzRules.StaffList {
			t.Fatalf("notice %+v about a machine-generated email (%s): a mail loop", n, d.AutomaticReason)
		}
	}
}
