package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/notify"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// newNotifier is the real notify worker on the fixture's store, sending to a recording SMTP
// server: what the gateway would put on the wire, headers and all.
func newNotifier(t *testing.T, db *store.DB, from, tag string) (*smtpsink.Server, *notify.Worker) {
	t.Helper()
	sink := smtptest.New(t, smtpsink.Options{MaxMessageBytes: -1})
	tpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	w, err := notify.New(notify.Config{Addr: sink.Addr(), TLS: helpdesk.TLSNone,
		From: &mail.Address{Name: "Helpdesk " + tag, Address: from}, Templates: tpl, TicketTag: tag,
		Timeout: 10 * time.Second, Now: func() time.Time { return arrival.Add(time.Hour) }}, db)
	if err != nil {
		t.Fatal(err)
	}
	return sink, w
}

// loopGateway is a fixture with its notifier: mail in over IMAP, mail out over SMTP.
type loopGateway struct {
	*fixture
	addr string
	sink *smtpsink.Server
	w    *notify.Worker
	sent int // sink messages already handed on
}

// round ingests what waits in the mailbox, sends the outbox and returns the messages sent.
func (g *loopGateway) round(t *testing.T) []smtpsink.Message {
	t.Helper()
	g.once()
	if _, err := g.w.Drain(context.Background(), true); err != nil {
		t.Fatalf("drain outbox of %s: %v", g.addr, err)
	}
	msgs := g.sink.Messages()
	out := msgs[g.sent:]
	g.sent = len(msgs)
	return out
}

// notificationsTo counts the outbox rows to an address.
func (g *loopGateway) notificationsTo(addr string) int {
	n := 0
	for _, x := range g.outbox() {
		if strings.EqualFold(x.To, addr) {
			n++
		}
	}
	return n
}

// asDelivered is a sent message as the receiving server files it: a Return-Path with the
// envelope sender on top, optionally with header fields a relay removed.
func asDelivered(m smtpsink.Message, strip ...string) []byte {
	raw := m.Data
	if len(strip) > 0 {
		end := bytes.Index(raw, []byte("\r\n\r\n"))
		var keep []string
		skipping := false
		for _, line := range strings.SplitAfter(string(raw[:end+2]), "\r\n") {
			if line == "" {
				continue
			}
			if line[0] == ' ' || line[0] == '\t' {
				if !skipping {
					keep = append(keep, line)
				}
				continue
			}
			name, _, _ := strings.Cut(line, ":")
			skipping = false
			for _, s := range strip {
				if strings.EqualFold(strings.TrimSpace(name), s) {
					skipping = true
				}
			}
			if !skipping {
				keep = append(keep, line)
			}
		}
		raw = append([]byte(strings.Join(keep, "")+"\r\n"), raw[end+4:]...)
	}
	return append([]byte("Return-Path: <"+m.From+">\r\n"), raw...)
}

func sentHeader(t *testing.T, raw []byte) mail.Header {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("sent message does not parse: %v", err)
	}
	return m.Header
}

// TestAutoresponderLoopStops: RFC 3834 — the gateway and an autoresponder that answers every
// message play against each other; the exchange stops, and the gateway never sends the
// responder more than autoreply_per_hour automatic messages within the hour (every email
// arrives at the same INTERNALDATE).
func TestAutoresponderLoopStops(t *testing.T) {
	const responder = "info@bakkerijdevries.nl" // a customer's address
	for _, tc := range []struct {
		name     string
		headers  []string // of the auto-reply
		threaded bool     // the auto-reply keeps subject and In-Reply-To
	}{
		{"without Auto-Submitted", nil, true},
		{"with Auto-Submitted", []string{"Auto-Submitted: auto-replied"}, true},
		// A worse responder: no markers and no threading, every reply looks like a new question.
		{"without Auto-Submitted or threading", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "mem", nil)
			sink, w := newNotifier(t, f.db, "support@infobits.example", "Infobits")
			g := &loopGateway{fixture: f, addr: "support@infobits.example", sink: sink, w: w}
			f.deliver(buildMail(mailOpts{from: responder, subject: "Kassa start niet op", msgID: "first@bakkerij", body: "Help."}))

			perHour := 10 // Rules.AutoRepliesPerHour default
			prev, stopped, replies := 0, 0, 0
			for round := 1; round <= 50; round++ {
				sent := g.round(t)
				now := g.notificationsTo(responder)
				if now > perHour {
					t.Fatalf("round %d: %d notifications to the responder, above the hourly limit %d", round, now, perHour)
				}
				if now == prev && round > 1 && stopped == 0 {
					stopped = round
				}
				if now != prev && stopped != 0 {
					t.Fatalf("round %d: the gateway wrote to the responder again after it had stopped in round %d", round, stopped)
				}
				prev = now
				for _, m := range sent {
					if len(m.To) != 1 || !strings.EqualFold(m.To[0], responder) {
						continue
					}
					h := sentHeader(t, m.Data)
					if h.Get("Auto-Submitted") != "auto-replied" {
						t.Errorf("round %d: an acknowledgement without Auto-Submitted: auto-replied: %v", round, h)
					}
					replies++
					o := mailOpts{from: "Bakkerij de Vries <" + responder + ">", msgID: fmt.Sprintf("auto-%d@bakkerij", replies),
						body: "Ik ben afwezig tot maandag.", extra: tc.headers}
					if tc.threaded {
						subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
						if err != nil {
							t.Fatalf("subject %q: %v", h.Get("Subject"), err)
						}
						o.subject = "Re: " + subject
						o.inReplyTo = strings.Trim(h.Get("Message-Id"), "<>")
					} else {
						o.subject = fmt.Sprintf("Afwezig (%d)", replies)
					}
					f.deliver(buildMail(o))
				}
				if stopped != 0 && round >= stopped+2 {
					break
				}
			}
			if stopped == 0 {
				t.Fatalf("the exchange did not stop within 50 rounds: %d notifications to the responder", prev)
			}
			t.Logf("stopped in round %d: %d notifications to the responder, %d auto-replies, %d tickets, %d held",
				stopped, prev, replies, len(f.tickets()), len(f.held()))
			if tc.threaded && (prev != 1 || len(f.tickets()) != 1) {
				t.Errorf("threaded auto-replies: %d notifications, %d tickets; want 1 acknowledgement and 1 ticket (the replies join it)",
					prev, len(f.tickets()))
			}
			if tc.threaded {
				if tk := f.ticket(1); tk.Status != helpdesk.StatusOpen || tk.Messages != 1+replies {
					t.Errorf("ticket = status %s, %d messages; want open with the question and %d auto-replies", tk.Status, tk.Messages, replies)
				}
			}
		})
	}
}

// TestTwoGatewaysDoNotLoop: two helpdesks, each a customer of the other, exchange what they
// send; one question to A must not become an endless exchange of acknowledgements — not even
// when a relay strips the RFC 3834 markers from the messages.
func TestTwoGatewaysDoNotLoop(t *testing.T) {
	for _, tc := range []struct {
		name  string
		strip []string
	}{
		{"as sent", nil},
		{"markers stripped by a relay", []string{"Auto-Submitted", "X-Auto-Response-Suppress"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newLoopGateway(t, "support@infobits.example", "Infobits", "infobits.example", "support@beta.example")
			b := newLoopGateway(t, "support@beta.example", "Beta", "beta.example", "support@infobits.example")
			// Someone at B writes to A from B's support address.
			a.deliver(buildMail(mailOpts{from: "Beta Support <support@beta.example>", subject: "Koppeling met jullie kassa",
				msgID: "start@beta.example", body: "Hoe koppelen we onze systemen?"}))

			quiet := 0
			rounds := 0
			for rounds < 20 && quiet < 2 {
				rounds++
				moved := 0
				for _, pair := range [][2]*loopGateway{{a, b}, {b, a}} {
					from, to := pair[0], pair[1]
					for _, m := range from.round(t) {
						if len(m.To) == 1 && strings.EqualFold(m.To[0], to.addr) {
							to.deliver(asDelivered(m, tc.strip...))
							moved++
						}
					}
				}
				if moved == 0 {
					quiet++
				} else {
					quiet = 0
				}
			}
			ab, ba := a.notificationsTo(b.addr), b.notificationsTo(a.addr)
			t.Logf("%d rounds: A wrote %d to B, B wrote %d to A; tickets A %d, B %d; held A %d, B %d",
				rounds, ab, ba, len(a.tickets()), len(b.tickets()), len(a.held()), len(b.held()))
			if quiet < 2 {
				t.Fatalf("the exchange did not stop within %d rounds (A→B %d, B→A %d)", rounds, ab, ba)
			}
			if rounds > 5 {
				t.Errorf("the exchange took %d rounds to stop, want a few", rounds)
			}
			if ab > 10 || ba > 10 {
				t.Errorf("A→B %d, B→A %d notifications: above the hourly limit", ab, ba)
			}
			if tc.strip == nil {
				if ab != 1 || ba != 0 {
					t.Errorf("A→B %d, B→A %d; want A's acknowledgement only (B must not answer an Auto-Submitted message)", ab, ba)
				}
				if hs := b.held(); len(hs) != 1 || hs[0].Reason != helpdesk.HeldAutomatic || hs[0].From != a.addr {
					t.Errorf("B held %+v; want A's acknowledgement kept as automatic", hs)
				}
			}
		})
	}
}

// newLoopGateway is a fixture whose own address, ticket tag and Message-ID domain are its own,
// with the other gateway's support address registered as a customer.
func newLoopGateway(t *testing.T, own, tag, domain, peer string) *loopGateway {
	t.Helper()
	f := newFixture(t, "mem", func(c *ingest.Config) {
		r := testRules(t, policy.Limits{})
		r.Own, r.TicketTag, r.Staff = []string{own}, tag, []string{"jan@" + domain}
		c.Desk.Policy = policy.New(r)
		c.Desk.MessageIDDomain = domain
	})
	f.addCustomer(&helpdesk.Customer{Name: "Helpdesk van " + peer, Emails: []string{peer}, Tier: helpdesk.SLA8})
	sink, w := newNotifier(t, f.db, own, tag)
	return &loopGateway{fixture: f, addr: own, sink: sink, w: w}
}

// TestStaffMailboxLoopStops: a staff mailbox that sends every mail it gets back to
// the helpdesk "as itself" (From rewritten to the staff member, the RFC 3834 markers
// stripped) answered each "Niet verwerkt" notice with a new staff email, which earned another
// notice: "Niet verwerkt: Niet verwerkt: …". The loop stops: at once when the mail comes back
// with the notice's Message-ID (one of the gateway's own notifications is never answered),
// and within staff_notice_per_hour notices when the mailbox gives it a new Message-ID; with
// the markers kept, at once.
func TestStaffMailboxLoopStops(t *testing.T) {
	const staff = "jan@infobits.example"
	for _, tc := range []struct {
		name       string
		newID      bool // the mailbox gives each message a new Message-ID
		markers    bool // the RFC 3834 markers survive
		wantAtMost int
	}{
		{"redirected with its Message-ID", false, false, 1},
		{"resent with a new Message-ID", true, false, 1},
		{"markers kept", true, true, 1},
		// Without its threading headers too, a copy looks like a new email from jan: the
		// hourly limit for staff notices ends it.
		{"resent without threading", true, false, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "mem", nil)
			sink, w := newNotifier(t, f.db, "support@infobits.example", "Infobits")
			g := &loopGateway{fixture: f, addr: "support@infobits.example", sink: sink, w: w}
			// A staff email without a ticket reference: not applied, jan is told.
			f.deliver(buildMail(mailOpts{from: "Jan <" + staff + ">", subject: "Lunch vrijdag?", msgID: "lunch@infobits", body: "Wie gaat er mee?"}))
			notices, resent := 0, 0
			for round := 1; round <= 30; round++ {
				sent := g.round(t)
				moved := 0
				for _, m := range sent {
					if len(m.To) != 1 || !strings.EqualFold(m.To[0], staff) {
						continue
					}
					notices++
					strip := []string{"From", "Auto-Submitted", "X-Auto-Response-Suppress"}
					if tc.markers {
						strip = strip[:1]
					}
					if tc.newID {
						strip = append(strip, "Message-Id")
					}
					if tc.name == "resent without threading" {
						strip = append(strip, "In-Reply-To", "References")
					}
					// Resent by jan's mailbox: its envelope sender is jan's, not the gateway's.
					raw := asDelivered(m, strip...)
					raw = raw[bytes.IndexByte(raw, '\n')+1:]
					head := "Return-Path: <" + staff + ">\r\nFrom: Jan <" + staff + ">\r\n"
					if tc.newID {
						resent++
						head += fmt.Sprintf("Message-ID: <resent-%d@infobits.example>\r\n", resent)
					}
					f.deliver(append([]byte(head), raw...))
					moved++
				}
				if moved == 0 {
					break
				}
				if round == 30 {
					t.Fatalf("the exchange did not stop within 30 rounds: %d notices to %s", notices, staff)
				}
			}
			var subjects []string
			for _, n := range f.outbox() {
				if n.To == staff {
					subjects = append(subjects, n.Subject)
				}
			}
			t.Logf("%d notices to the staff mailbox: %q", notices, subjects)
			if notices < 1 || notices > tc.wantAtMost {
				t.Errorf("%d notices to the staff mailbox, want 1 to %d", notices, tc.wantAtMost)
			}
			// Every returned notice is kept, none becomes a ticket.
			if n := len(f.tickets()); n != 0 {
				t.Errorf("%d tickets, want none", n)
			}
			if got, want := len(f.held()), 1+notices; got != want {
				t.Errorf("%d held emails, want %d (the staff email and every notice sent back)", got, want)
			}
		})
	}
}

// TestTooLargeNoticesCountInTotal: item 6 — the notice to the sender of an email too large to
// read answers anyone who can send mail, so it counts in the hourly total of unsolicited mail
// (unsolicited_per_hour) like the unknown-sender reply, and one past the total is counted as
// suppressed. It was checked against the total but never counted in it: strangers' large
// emails did not use up the total, and the suppressed notices were not reported.
func TestTooLargeNoticesCountInTotal(t *testing.T) {
	f := newFixture(t, "mem", func(c *ingest.Config) {
		c.MaxMessageBytes = 4096
		r := testRules(t, policy.Limits{})
		r.UnsolicitedPerHour = 2
		c.Desk.Policy = policy.New(r)
	})
	for i, from := range []string{"a@one.example", "b@two.example"} {
		f.deliver(buildMail(mailOpts{from: from, subject: "Groot", msgID: fmt.Sprintf("big%d@x", i), body: strings.Repeat("x", 10000)}))
	}
	f.once()
	kinds := func() map[string]int {
		n := map[string]int{}
		for _, x := range f.outbox() {
			n[x.Kind]++
		}
		return n
	}
	if n := kinds()[helpdesk.KindTooLarge]; n != 2 {
		t.Fatalf("too_large notices = %d, want 2 (the total is 2)", n)
	}
	// The total is used up: a stranger's email gets no unknown-sender reply, a third large
	// email no notice, and the event says what was not sent.
	f.deliver(buildMail(mailOpts{from: "c@three.example", subject: "Vraag", msgID: "q@three"}))
	f.deliver(buildMail(mailOpts{from: "d@four.example", subject: "Groot", msgID: "big3@x", body: strings.Repeat("y", 10000)}))
	for len(f.events) > 0 {
		<-f.events
	}
	f.once()
	if k := kinds(); k[helpdesk.KindUnknownSender] != 0 || k[helpdesk.KindTooLarge] != 2 {
		t.Errorf("outbox kinds = %v, want no unknown_sender reply and still 2 too_large notices past unsolicited_per_hour 2", k)
	}
	suppressed := map[string]string{}
	for len(f.events) > 0 {
		if ev := <-f.events; ev.Outcome != nil {
			for _, s := range ev.Outcome.Suppressed {
				suppressed[s.Kind] = s.Limit
			}
		}
	}
	if suppressed[helpdesk.KindTooLarge] != policy.LimitTotal || suppressed[helpdesk.KindUnknownSender] != policy.LimitTotal {
		t.Errorf("suppressed in the events = %v, want too_large and unknown_sender for the total", suppressed)
	}
}
