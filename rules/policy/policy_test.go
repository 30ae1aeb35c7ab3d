package policy_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/rules/policy"
)

// mapView is the store as policy sees it, held in maps: View is a plain read interface.
type mapView struct {
	customers map[string]*helpdesk.Customer // by lower-case address
	tickets   map[uint64]*helpdesk.Ticket
	msgIDs    map[string]uint64
	notices   map[string]bool // customer id + day: a limit notice was sent
	replies   []autoReply     // automatic replies sent
	err       error           // returned by every call when set: a failing store
}

type autoReply struct {
	to, kind string
	at       time.Time
}

func (v *mapView) CustomerTickets(id uint64) ([]*helpdesk.Ticket, error) {
	if v.err != nil {
		return nil, v.err
	}
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
func (v *mapView) CustomerReplies(id uint64) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if t, ok := v.tickets[id]; ok {
		return t.Replies, nil
	}
	return 0, nil
}

func (v *mapView) AutoRepliesSince(addr, kind string, since time.Time) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n := 0
	for _, r := range v.replies {
		if r.to == addr && (kind == "" || r.kind == kind) && !r.at.Before(since) {
			n++
		}
	}
	return n, nil
}

func (v *mapView) NotificationByMessageID(id string) (*helpdesk.Notification, error) {
	return nil, helpdesk.ErrNotFound
}

func (v *mapView) BouncedUntil(addr string) (time.Time, error) { return time.Time{}, v.err }

func (v *mapView) LoginChange(id uint64) (*helpdesk.LoginChange, error) {
	return nil, helpdesk.ErrNotFound
}

func (v *mapView) LimitNoticeSent(id uint64, day helpdesk.Date) (bool, error) {
	if v.err != nil {
		return false, v.err
	}
	return v.notices[fmt.Sprint(id, day)], nil
}

func (v *mapView) CustomerByAddress(addr string) (*helpdesk.Customer, error) {
	if v.err != nil {
		return nil, v.err
	}
	c, ok := v.customers[helpdesk.NormalizeAddress(addr)]
	if !ok {
		return nil, helpdesk.ErrNotFound
	}
	cc := *c
	return &cc, nil
}

func (v *mapView) Ticket(id uint64) (*helpdesk.Ticket, error) {
	if v.err != nil {
		return nil, v.err
	}
	t, ok := v.tickets[id]
	if !ok {
		return nil, fmt.Errorf("ticket %d: %w", id, helpdesk.ErrNotFound)
	}
	tc := *t
	return &tc, nil
}

func (v *mapView) TicketByMessageID(id string) (uint64, error) {
	if v.err != nil {
		return 0, v.err
	}
	t, ok := v.msgIDs[helpdesk.CanonicalMessageID(id)] // as the store compares
	if !ok {
		return 0, helpdesk.ErrNotFound
	}
	return t, nil
}

func newView() *mapView {
	bakker := &helpdesk.Customer{ID: 1, Name: "Bakkerij de Vries", Emails: []string{"info@bakkerij.nl", "piet@bakkerij.nl"}, Tier: helpdesk.SLA8}
	slager := &helpdesk.Customer{ID: 2, Name: "Slagerij Jansen", Emails: []string{"kassa@slagerij.nl"}, Tier: helpdesk.SLA24}
	return &mapView{
		customers: map[string]*helpdesk.Customer{"info@bakkerij.nl": bakker, "piet@bakkerij.nl": bakker, "kassa@slagerij.nl": slager},
		tickets: map[uint64]*helpdesk.Ticket{
			5: {ID: 5, CustomerID: 1, Address: "info@bakkerij.nl", Subject: "Kassa start niet op", Status: helpdesk.StatusOpen},
			6: {ID: 6, CustomerID: 2, Address: "kassa@slagerij.nl", Subject: "Printer", Status: helpdesk.StatusOpen},
			7: {ID: 7, CustomerID: 1, Address: "piet@bakkerij.nl", Subject: "Bonprinter", Status: helpdesk.StatusClosed},
			8: {ID: 8, CustomerID: 1, Address: "info@bakkerij.nl", Subject: "Backup", Status: helpdesk.StatusAnswered},
		},
		msgIDs: map[string]uint64{
			"m5@bakkerij.nl":          5, // the customer's first email of ticket 5
			"n5@helpdesk.infobits.nl": 5, // our acknowledgement of it
			"m6@slagerij.nl":          6,
			"m7@bakkerij.nl":          7,
		},
	}
}

var rules = policy.Rules{Staff: []string{"jan@infobits.nl"}, TicketTag: "Infobits", Own: []string{"helpdesk@infobits.nl"}}

// mail builds and parses an email, as ingest does: policy sees only what the parser makes of it.
func mail(from, subject string, headers ...string) *parse.Email {
	var b strings.Builder
	if from != "" {
		b.WriteString("From: " + from + "\r\n")
	}
	b.WriteString("To: Infobits Helpdesk <helpdesk@infobits.nl>\r\nSubject: " + subject + "\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\nMessage-ID: <new@example.com>\r\n")
	ct := "Content-Type: text/plain; charset=utf-8\r\n"
	for _, h := range headers {
		if strings.HasPrefix(strings.ToLower(h), "content-type:") {
			ct = h + "\r\n"
			continue
		}
		b.WriteString(h + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\n" + ct + "\r\nDe kassa doet het niet.\r\n")
	return parse.Parse([]byte(b.String()), time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
}

type want struct {
	action    policy.Action
	customer  uint64 // 0: none
	ticket    uint64 // 0: none
	reopen    bool
	reason    string // hold reason
	automatic bool
	notify    []policy.Notice
}

func TestDecide(t *testing.T) {
	p := policy.New(rules)
	ack := func(to string) []policy.Notice {
		return []policy.Notice{{Kind: helpdesk.KindAck, To: to, Automatic: true}}
	}
	cases := []struct {
		name string
		e    *parse.Email
		want want
	}{
		// R15: unknown senders get no ticket, but are told how to get access; never machines.
		{"unknown sender", mail("Stranger <Stranger@Example.com>", "Vraag"),
			want{action: policy.ActionHold, reason: helpdesk.HeldUnknownSender,
				notify: []policy.Notice{{Kind: helpdesk.KindUnknownSender, To: "stranger@example.com", Automatic: true}}}},
		{"unknown sender, Auto-Submitted: auto-replied", mail("stranger@example.com", "Out of office", "Auto-Submitted: auto-replied"),
			want{action: policy.ActionHold, reason: helpdesk.HeldUnknownSender, automatic: true}},
		{"unknown sender, Auto-Submitted: no is a person", mail("stranger@example.com", "Vraag", "Auto-Submitted: no"),
			want{action: policy.ActionHold, reason: helpdesk.HeldUnknownSender,
				notify: []policy.Notice{{Kind: helpdesk.KindUnknownSender, To: "stranger@example.com", Automatic: true}}}},
		{"unknown sender, Precedence: bulk", mail("news@example.com", "Nieuwsbrief", "Precedence: bulk"),
			want{action: policy.ActionHold, reason: helpdesk.HeldUnknownSender, automatic: true}},
		{"unknown sender, List-Id", mail("list@example.com", "[list] x", "List-Id: <kassa.lists.example.com>"),
			want{action: policy.ActionHold, reason: helpdesk.HeldUnknownSender, automatic: true}},
		{"unknown sender, empty Return-Path", mail("someone@example.com", "Returned mail", "Return-Path: <>"),
			want{action: policy.ActionHold, reason: helpdesk.HeldUnknownSender, automatic: true}},
		{"unknown sender, MAILER-DAEMON", mail("Mail Delivery System <MAILER-DAEMON@mx.example.com>", "Undelivered Mail Returned to Sender"),
			want{action: policy.ActionHold, reason: helpdesk.HeldUnknownSender, automatic: true}},
		{"unknown sender, postmaster Return-Path", mail("someone@example.com", "Delivery Status", "Return-Path: <postmaster@mx.example.com>"),
			want{action: policy.ActionHold, reason: helpdesk.HeldUnknownSender, automatic: true}},
		{"unknown sender, multipart/report", mail("reports@example.com", "Delivery Status Notification",
			`Content-Type: multipart/report; report-type=delivery-status; boundary="R"`),
			want{action: policy.ActionHold, reason: helpdesk.HeldUnknownSender, automatic: true}},

		// R10: a known customer's new email opens a ticket and is acknowledged.
		{"customer, new email", mail("Bakkerij <Info@Bakkerij.NL>", "Kassa kapot"),
			want{action: policy.ActionNewTicket, customer: 1, notify: ack("info@bakkerij.nl")}},
		// R1: any of the customer's addresses, in any case.
		{"customer, second address", mail("piet@bakkerij.nl", "Kassa kapot"),
			want{action: policy.ActionNewTicket, customer: 1, notify: ack("piet@bakkerij.nl")}},
		{"customer, reference to own ticket", mail("info@bakkerij.nl", "Re: [Infobits #5] Kassa start niet op"),
			want{action: policy.ActionReply, customer: 1, ticket: 5}},
		{"customer, reference to own ticket, other subject", mail("info@bakkerij.nl", "[Infobits #5] nog iets"),
			want{action: policy.ActionReply, customer: 1, ticket: 5}},
		{"customer, reference to someone else's ticket", mail("info@bakkerij.nl", "Re: [Infobits #6] Printer"),
			want{action: policy.ActionNewTicket, customer: 1, notify: ack("info@bakkerij.nl")}},
		{"customer, reference to a ticket that does not exist", mail("info@bakkerij.nl", "Re: [Infobits #99] x"),
			want{action: policy.ActionNewTicket, customer: 1, notify: ack("info@bakkerij.nl")}},
		{"customer, In-Reply-To own ticket's message", mail("info@bakkerij.nl", "Re: iets anders", "In-Reply-To: <M5@Bakkerij.nl>"),
			want{action: policy.ActionReply, customer: 1, ticket: 5}},
		{"customer, In-Reply-To our acknowledgement", mail("info@bakkerij.nl", "Re: Ontvangen", "In-Reply-To: <n5@helpdesk.infobits.nl>"),
			want{action: policy.ActionReply, customer: 1, ticket: 5}},
		{"customer, In-Reply-To someone else's ticket", mail("info@bakkerij.nl", "Re: Printer", "In-Reply-To: <m6@slagerij.nl>"),
			want{action: policy.ActionNewTicket, customer: 1, notify: ack("info@bakkerij.nl")}},
		{"customer, References only, same subject", mail("info@bakkerij.nl", "Re: Kassa start niet op", "References: <other@x> <m5@bakkerij.nl>"),
			want{action: policy.ActionReply, customer: 1, ticket: 5}},
		{"customer, References only, other subject", mail("info@bakkerij.nl", "Nieuwe vraag over de printer", "References: <m5@bakkerij.nl>"),
			want{action: policy.ActionNewTicket, customer: 1, notify: ack("info@bakkerij.nl")}},
		{"customer, reply to closed ticket", mail("piet@bakkerij.nl", "Re: [Infobits #7] Bonprinter"),
			want{action: policy.ActionReply, customer: 1, ticket: 7, reopen: true}},
		{"customer, reply to answered ticket", mail("info@bakkerij.nl", "Re: [Infobits #8] Backup"),
			want{action: policy.ActionReply, customer: 1, ticket: 8, reopen: true}},
		{"customer, automatic reply referencing own ticket", mail("info@bakkerij.nl", "Automatisch antwoord: [Infobits #5] Ontvangen", "Auto-Submitted: auto-replied"),
			want{action: policy.ActionReply, customer: 1, ticket: 5, automatic: true}},
		{"customer, automatic mail without reference", mail("info@bakkerij.nl", "Afwezig", "Auto-Submitted: auto-replied"),
			want{action: policy.ActionHold, customer: 1, reason: helpdesk.HeldAutomatic, automatic: true}},
		{"customer, X-Autoreply without reference", mail("info@bakkerij.nl", "Afwezig", "X-Autoreply: yes"),
			want{action: policy.ActionHold, customer: 1, reason: helpdesk.HeldAutomatic, automatic: true}},
		{"customer From, our own Return-Path", mail("info@bakkerij.nl", "Kassa", "Return-Path: <helpdesk@infobits.nl>"),
			want{action: policy.ActionHold, customer: 1, reason: helpdesk.HeldAutomatic, automatic: true}},

		// Staff answer tickets by email; the answer goes to the address the ticket came from.
		{"staff, reference in subject", mail("Jan <Jan@Infobits.nl>", "Re: [Infobits #7] Bonprinter"),
			want{action: policy.ActionStaffAnswer, ticket: 7, notify: []policy.Notice{{Kind: helpdesk.KindAnswer, To: "piet@bakkerij.nl"}}}},
		{"staff, In-Reply-To the customer's email", mail("jan@infobits.nl", "Re: Printer", "In-Reply-To: <m6@slagerij.nl>"),
			want{action: policy.ActionStaffAnswer, ticket: 6, notify: []policy.Notice{{Kind: helpdesk.KindAnswer, To: "kassa@slagerij.nl"}}}},
		// Staff are told why their email was not applied.
		{"staff, no reference", mail("jan@infobits.nl", "Vraagje"),
			want{action: policy.ActionHold, reason: helpdesk.HeldStaffNoTicket,
				notify: []policy.Notice{{Kind: helpdesk.KindStaffError, To: "jan@infobits.nl"}}}},
		{"staff, reference to a missing ticket", mail("jan@infobits.nl", "[Infobits #99]"),
			want{action: policy.ActionHold, reason: helpdesk.HeldStaffNoTicket,
				notify: []policy.Notice{{Kind: helpdesk.KindStaffError, To: "jan@infobits.nl"}}}},

		// Loops and senders that cannot be told apart.
		{"from the gateway itself", mail("Infobits Helpdesk <Helpdesk@Infobits.nl>", "[Infobits #5] Ontvangen: Kassa"),
			want{action: policy.ActionHold, reason: helpdesk.HeldAutomatic}},
		{"no From", mail("", "anoniem"),
			want{action: policy.ActionHold, reason: helpdesk.HeldNoSender}},
		{"two From addresses", mail("info@bakkerij.nl, kassa@slagerij.nl", "wie?"),
			want{action: policy.ActionHold, reason: helpdesk.HeldNoSender}},
		{"unreadable email", &parse.Email{From: "info@bakkerij.nl", FromCount: 1, Err: errors.New("no MIME")},
			want{action: policy.ActionHold, reason: helpdesk.HeldUnparseable}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newView()
			d, err := p.Decide(tc.e, v)
			if err != nil {
				t.Fatalf("Decide(%s) error = %v", tc.name, err)
			}
			got := want{action: d.Action, reopen: d.Reopen, reason: d.HoldReason, automatic: d.Automatic, notify: d.Notify}
			if d.Customer != nil {
				got.customer = d.Customer.ID
			}
			if d.Ticket != nil {
				got.ticket = d.Ticket.ID
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decide(%s) = %+v, want %+v", tc.name, got, tc.want)
			}
			if d.Action == policy.ActionHold && d.HoldDetail == "" {
				t.Errorf("Decide(%s).HoldDetail is empty, want a sentence for staff", tc.name)
			}
			if d.Automatic && d.AutomaticReason == "" {
				t.Errorf("Decide(%s).AutomaticReason is empty for an automatic email", tc.name)
			}
			if d.Ticket != nil && v.tickets[d.Ticket.ID].Status != newView().tickets[d.Ticket.ID].Status {
				t.Errorf("Decide(%s) changed the store's ticket; it must only read", tc.name)
			}
		})
	}
}

// A failing store is an error, never a decision: the batch is retried, the email not held.
func TestDecideStoreError(t *testing.T) {
	p := policy.New(rules)
	boom := errors.New("disk on fire")
	for _, e := range []*parse.Email{
		mail("info@bakkerij.nl", "Kassa"),
		mail("jan@infobits.nl", "Re: [Infobits #5] x"),
	} {
		v := newView()
		v.err = boom
		if _, err := p.Decide(e, v); !errors.Is(err, boom) {
			t.Errorf("Decide(from %s) with a failing store = %v, want the store's error", e.From, err)
		}
	}
}

func TestSubjectTicket(t *testing.T) {
	p := policy.New(rules)
	cases := []struct {
		subject string
		want    uint64 // 0: none
	}{
		{"[Infobits #12]", 12},
		{"[infobits#12]", 12},
		{"[ INFOBITS # 12 ]", 12},
		{"Re: AW: [Infobits #12] x", 12},
		{"Infobits #12", 12}, // brackets stripped by a mail client
		{"Kassa [Infobits #7] kapot", 7},
		{"[Other #12]", 0},
		{"[XInfobits #12]", 0}, // the tag must start a word
		{"MyInfobits #12", 0},
		{"#12", 0},
		{"[Infobits #]", 0},
		{"[Infobits #0]", 0},
		{"[Infobits #12a]", 0},
		{"[Infobits #1234567890123456789012]", 0}, // not a ticket number
		{"", 0},
	}
	for _, tc := range cases {
		id, ok := p.SubjectTicket(tc.subject)
		if ok != (tc.want != 0) || id != tc.want {
			t.Errorf("SubjectTicket(%q) = %d, %v, want %d, %v", tc.subject, id, ok, tc.want, tc.want != 0)
		}
	}
	if got, want := p.Ref(12), "[Infobits #12]"; got != want {
		t.Errorf("Ref(12) = %q, want %q", got, want)
	}
	if id, ok := p.SubjectTicket(p.Ref(4711)); !ok || id != 4711 {
		t.Errorf("SubjectTicket(Ref(4711)) = %d, %v, want 4711, true", id, ok)
	}
	if id, ok := policy.New(policy.Rules{}).SubjectTicket("[Infobits #12]"); ok {
		t.Errorf("SubjectTicket without a tag = %d, true, want none", id)
	}
}

func TestBaseSubject(t *testing.T) {
	p := policy.New(rules)
	cases := []struct{ in, want string }{
		{"Re: Fwd: [Infobits #3] Kassa", "kassa"},
		{"kassa", "kassa"},
		{"Antw: Kassa", "kassa"},
		{"Antwoord: Kassa", "kassa"},
		{"Doorst: Kassa", "kassa"},
		{"AW: WG: Kassa", "kassa"},
		{"RE[2]: Kassa", "kassa"},
		{"SV: VS: TR: Kassa", "kassa"},
		{"Re: [Infobits #3] Re: Kassa  start   niet op", "kassa start niet op"},
		{"Kassa [Infobits #3] kapot", "kassa kapot"},
		{"Reparatie kassa", "reparatie kassa"}, // "Re" only as a prefix with a colon
		{"Re:", ""},
		{"", ""},
	}
	for _, tc := range cases {
		if got := p.BaseSubject(tc.in); got != tc.want {
			t.Errorf("BaseSubject(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	same := []struct {
		a, b string
		want bool
	}{
		{"Re: Fwd: [Infobits #3] Kassa", "kassa", true},
		{"Antw: Kassa start niet op", "Kassa start niet op", true},
		{"Doorst: [Infobits #5] Kassa start niet op", "Kassa  start niet op", true},
		{"Re: Kassa", "Printer", false},
		{"Re:", "", false}, // nothing left is never the same conversation
		{"[Infobits #3]", "[Infobits #4]", false},
	}
	for _, tc := range same {
		if got := p.SameSubject(tc.a, tc.b); got != tc.want {
			t.Errorf("SameSubject(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[policy.Action]string{policy.ActionHold: "held", policy.ActionNewTicket: "new_ticket",
		policy.ActionReply: "reply", policy.ActionStaffAnswer: "staff_answer"} {
		if got := a.String(); got != want {
			t.Errorf("Action(%d).String() = %q, want %q", a, got, want)
		}
	}
}

// TestStripQuoted: a staff reply to a staff notice forwards only what staff wrote, not the
// quoted notice with its internal details.
func TestStripQuoted(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Herstart de kassa.\n\nOp vr 27 nov 2026 om 10:00 schreef Infobits Helpdesk <support@infobits.example>:\n> Nieuw ticket 12\n> SLA8", "Herstart de kassa."},
		{"Restart it.\n\nOn Fri, Nov 27, 2026 at 10:00 AM Infobits Helpdesk <support@infobits.example> wrote:\n> New ticket", "Restart it."},
		{"Herstart.\n\n-----Original Message-----\nFrom: x\nSubject: y", "Herstart."},
		{"Herstart.\n\nVan: Infobits Helpdesk <support@infobits.example>\nVerzonden: vrijdag 27 november 2026 10:00\nAan: team", "Herstart."},
		{"Herstart.\n\n> quoted\n> more\n", "Herstart."},
		{"> quoted first\nthen my answer", "> quoted first\nthen my answer"}, // interleaved: kept as written
		{"Van: de leverancier kregen we dit bericht.\nDat klopt.", "Van: de leverancier kregen we dit bericht.\nDat klopt."},
		{"Gewoon antwoord.", "Gewoon antwoord."},
	}
	for _, tc := range cases {
		if got := policy.StripQuoted(tc.in); got != tc.want {
			t.Errorf("StripQuoted(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
