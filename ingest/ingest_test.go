package ingest_test

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/ingest/imapmem"
	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/rules/calendar"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/store/storetest"
)

// mailOpts describe a test email.
type mailOpts struct {
	from, to, subject, msgID, inReplyTo, references, body string
	extra                                                 []string // more header lines
}

func buildMail(o mailOpts) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", o.from)
	if o.to == "" {
		o.to = "support@infobits.example"
	}
	fmt.Fprintf(&b, "To: %s\r\nSubject: %s\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\n", o.to, o.subject)
	if o.msgID != "" {
		fmt.Fprintf(&b, "Message-ID: <%s>\r\n", o.msgID)
	}
	if o.inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\n", o.inReplyTo)
	}
	if o.references != "" {
		fmt.Fprintf(&b, "References: %s\r\n", o.references)
	}
	for _, h := range o.extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(strings.ReplaceAll(o.body, "\n", "\r\n") + "\r\n")
	return []byte(b.String())
}

// server is the IMAP peer of a test: go-imap's in-memory server or a real Dovecot.
type server struct {
	addr, user, pass string
	mem              *imapmem.Server
	dovecot          *imaptest.Dovecot
}

// servers are the peers every ingest test runs against: the in-memory server as IMAP4rev2
// (MOVE, UIDPLUS), as a minimal IMAP4rev1 server, and Dovecot 2.3 (skipped when absent).
var servers = []string{"mem", "mem-rev1", "dovecot"}

func newServer(t *testing.T, kind string) *server {
	t.Helper()
	switch kind {
	case "dovecot":
		d := imaptest.NewDovecot(t)
		return &server{addr: d.Addr, user: d.User, pass: d.Password, dovecot: d}
	default:
		m := imaptest.NewMem(t, imapmem.Options{Rev1Only: kind == "mem-rev1"})
		return &server{addr: m.Addr, user: m.User, pass: m.Password, mem: m}
	}
}

func (s *server) append(t *testing.T, mailbox string, raw []byte, date time.Time) imap.UID {
	t.Helper()
	var uid imap.UID
	var err error
	if s.mem != nil {
		uid, err = s.mem.Append(mailbox, raw, date)
	} else {
		uid, err = s.dovecot.AppendRaw(mailbox, raw, date)
	}
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

// client is a second mail client on the mailbox, as staff's own mail program would be.
func (s *server) client(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(s.user, s.pass).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// status returns the number of messages and of unseen messages in a mailbox.
func (s *server) status(t *testing.T, mailbox string) (messages, unseen uint32) {
	t.Helper()
	c := s.client(t)
	defer c.Logout()
	st, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true, NumUnseen: true}).Wait()
	if err != nil {
		t.Fatalf("status %s: %v", mailbox, err)
	}
	return *st.NumMessages, *st.NumUnseen
}

func forEachServer(t *testing.T, test func(t *testing.T, kind string)) {
	for _, kind := range servers {
		t.Run(kind, func(t *testing.T) { test(t, kind) })
	}
}

type fixture struct {
	t      *testing.T
	srv    *server
	db     *store.DB
	poller *ingest.Poller
	events chan ingest.Event
	cfg    ingest.Config
}

var arrival = time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)

// testRules are the gateway's rules with the default calendars (R7–R9) and the given limits.
func testRules(t *testing.T, lim policy.Limits) policy.Rules {
	t.Helper()
	cals, err := calendar.NewSet(nil, calendar.Rules{DutchHolidays: true})
	if err != nil {
		t.Fatal(err)
	}
	return policy.Rules{Staff: []string{"jan@infobits.example"}, TicketTag: "Infobits",
		Own: []string{"support@infobits.example"}, Calendars: cals, Limits: lim,
		UrgentWords: []string{"SPOED", "URGENT"}, CallbackWords: []string{"terugbellen", "anydesk"}}
}

func newFixture(t *testing.T, kind string, tweak func(*ingest.Config)) *fixture {
	t.Helper()
	return newFixtureOn(t, newServer(t, kind), tweak)
}

// newFixtureOn is newFixture on a server of the test's own, an in-memory one with quirks.
func newMemFixture(t *testing.T, q imapmem.Quirks, tweak func(*ingest.Config)) *fixture {
	t.Helper()
	m := imaptest.NewMem(t, imapmem.Options{Quirks: q})
	return newFixtureOn(t, &server{addr: m.Addr, user: m.User, pass: m.Password, mem: m}, tweak)
}

func newFixtureOn(t *testing.T, srv *server, tweak func(*ingest.Config)) *fixture {
	t.Helper()
	db := storetest.New(t)
	err := db.Update(context.Background(), func(tx *store.Tx) error {
		for _, c := range []*helpdesk.Customer{
			{Name: "Bakkerij de Vries", Emails: []string{"info@bakkerijdevries.nl", "piet@bakkerijdevries.nl"}, Tier: helpdesk.SLA8},
			{Name: "Slagerij Jansen", Emails: []string{"kassa@slagerijjansen.nl"}, Tier: helpdesk.SLA24},
		} {
			if err := tx.PutCustomer(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, srv: srv, db: db, events: make(chan ingest.Event, 1000)}
	f.cfg = ingest.Config{
		Addr: srv.addr, User: srv.user, Password: srv.pass, TLS: helpdesk.TLSNone,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Desk: &desk.Desk{
			Policy:          policy.New(testRules(t, policy.Limits{})),
			MessageIDDomain: "infobits.example",
			Now:             func() time.Time { return arrival.Add(time.Hour) },
		},
	}
	if tweak != nil {
		tweak(&f.cfg)
	}
	if f.cfg.Mailbox != "" && f.cfg.Mailbox != "INBOX" {
		if err := srv.client(t).Create(f.cfg.Mailbox, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	f.poller, err = ingest.New(f.cfg, db, f.events)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) deliver(raw []byte) imap.UID {
	f.t.Helper()
	return f.srv.append(f.t, cmp.Or(f.cfg.Mailbox, "INBOX"), raw, arrival)
}

func (f *fixture) once() {
	f.t.Helper()
	if err := f.poller.Once(context.Background()); err != nil {
		f.t.Fatalf("Once: %v", err)
	}
}

func (f *fixture) tickets() []*helpdesk.Ticket {
	f.t.Helper()
	var ts []*helpdesk.Ticket
	if err := f.db.View(context.Background(), func(tx *store.Tx) (err error) {
		ts, err = tx.Tickets()
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return ts
}

func (f *fixture) messages(id uint64) []*helpdesk.Message {
	f.t.Helper()
	var ms []*helpdesk.Message
	if err := f.db.View(context.Background(), func(tx *store.Tx) (err error) {
		ms, err = tx.Messages(id)
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return ms
}

func (f *fixture) held() []*helpdesk.Held {
	f.t.Helper()
	var hs []*helpdesk.Held
	if err := f.db.View(context.Background(), func(tx *store.Tx) (err error) {
		hs, err = tx.HeldEmails()
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return hs
}

func (f *fixture) outbox() []*helpdesk.Notification {
	f.t.Helper()
	var ns []*helpdesk.Notification
	if err := f.db.View(context.Background(), func(tx *store.Tx) (err error) {
		ns, err = tx.Outbox()
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return ns
}

// TestThreadLifecycle drives R10 and R15 through a real IMAP session: a new question opens a
// ticket with an acknowledgement, a reply joins it silently, a staff answer is forwarded, an
// unknown sender is held and told how to get access.
func TestThreadLifecycle(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, nil)
		f.deliver(buildMail(mailOpts{from: "Piet <Piet@BakkerijDeVries.nl>", subject: "Kassa start niet op", msgID: "q1@bakkerij", body: "Help, de kassa doet het niet."}))
		f.deliver(buildMail(mailOpts{from: "onbekend@example.com", subject: "Vraag", msgID: "u1@example.com", body: "Wie ben ik?"}))
		f.once()

		ts := f.tickets()
		if len(ts) != 1 {
			t.Fatalf("tickets = %d, want 1", len(ts))
		}
		tk := ts[0]
		if tk.Subject != "Kassa start niet op" || tk.Status != helpdesk.StatusOpen || tk.Tier != helpdesk.SLA8 || !tk.Created.Equal(arrival) {
			t.Errorf("ticket = %+v (created must be the INTERNALDATE %v)", tk, arrival)
		}
		hs := f.held()
		if len(hs) != 1 || hs[0].Reason != helpdesk.HeldUnknownSender || hs[0].From != "onbekend@example.com" || hs[0].RawSHA256 == "" {
			t.Fatalf("held = %+v", hs)
		}
		ob := f.outbox()
		if len(ob) != 2 || ob[0].Kind != helpdesk.KindAck || ob[0].To != "piet@bakkerijdevries.nl" || ob[0].TicketID != tk.ID ||
			ob[1].Kind != helpdesk.KindUnknownSender || ob[1].To != "onbekend@example.com" {
			t.Fatalf("outbox = %+v", ob)
		}
		ack := ob[0]

		// The customer answers the acknowledgement (In-Reply-To alone is enough, R10).
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Re: iets anders", msgID: "q2@bakkerij", inReplyTo: ack.MessageID, body: "Nog een detail."}))
		// Staff answer with the reference in the subject.
		f.deliver(buildMail(mailOpts{from: "Jan <jan@infobits.example>", subject: "Re: [Infobits #1] Kassa start niet op", msgID: "a1@infobits", body: "Herstart de kassa."}))
		f.once()

		if ts := f.tickets(); len(ts) != 1 || ts[0].Status != helpdesk.StatusAnswered || ts[0].Messages != 3 {
			t.Fatalf("after reply and answer: %+v", ts[0])
		}
		ms := f.messages(1)
		if ms[1].Direction != helpdesk.DirectionIn || ms[1].Text != "Nog een detail.\n" || ms[2].Direction != helpdesk.DirectionOut {
			t.Errorf("thread = %+v %+v", ms[1], ms[2])
		}
		ob = f.outbox()
		if len(ob) != 3 || ob[2].Kind != helpdesk.KindAnswer || ob[2].To != "piet@bakkerijdevries.nl" ||
			ob[2].Data.Text != "Herstart de kassa." || ob[2].InReplyTo != "q2@bakkerij" || ob[2].Automatic {
			t.Fatalf("answer notification = %+v", ob[2])
		}
		// Every ingested message is flagged \Seen on the server after the commit.
		if n, unseen := f.srv.status(t, "INBOX"); n != 4 || unseen != 0 {
			t.Errorf("INBOX: %d messages, %d unseen; want 4, 0", n, unseen)
		}
	})
}

// TestReplyToClosedTicketReopens: R10, a reply to a closed ticket reopens it.
func TestReplyToClosedTicketReopens(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, nil)
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Bon printer", msgID: "p1@b"}))
		f.once()
		err := f.db.Update(context.Background(), func(tx *store.Tx) error {
			tk, err := tx.Ticket(1)
			if err != nil {
				return err
			}
			tk.Status = helpdesk.StatusClosed
			return tx.PutTicket(tk)
		})
		if err != nil {
			t.Fatal(err)
		}
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "RE: [infobits#1] Bon printer", msgID: "p2@b"}))
		f.once()
		ts := f.tickets()
		if len(ts) != 1 || ts[0].Status != helpdesk.StatusOpen || ts[0].Messages != 2 {
			t.Fatalf("tickets = %+v", ts)
		}
		if n := len(f.outbox()); n != 1 {
			t.Errorf("outbox has %d notifications; a reply must not be acknowledged", n)
		}
	})
}

// TestForeignTicketReferenceOpensOwnTicket: a reference to someone else's ticket never
// attaches an email to it (R10).
func TestForeignTicketReferenceOpensOwnTicket(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, nil)
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Kassa kapot", msgID: "k1@b"}))
		f.once()
		f.deliver(buildMail(mailOpts{from: "kassa@slagerijjansen.nl", subject: "Re: [Infobits #1] Kassa kapot", msgID: "s1@s", inReplyTo: "k1@b", references: "<k1@b>"}))
		f.once()
		ts := f.tickets()
		if len(ts) != 2 {
			t.Fatalf("tickets = %d, want 2 (the stranger's own)", len(ts))
		}
		if ts[0].Messages != 1 || ts[1].CustomerID == ts[0].CustomerID || ts[1].Messages != 1 {
			t.Errorf("tickets = %+v %+v", ts[0], ts[1])
		}
	})
}

// TestReferencesNeedMatchingSubject: References alone attaches only with the ticket's subject.
func TestReferencesNeedMatchingSubject(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, nil)
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Weegschaal", msgID: "w1@b"}))
		f.once()
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Nieuwe vraag: pinautomaat", msgID: "w2@b", references: "<w1@b>"}))
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Re: Weegschaal", msgID: "w3@b", references: "<x@y> <W1@B>"}))
		f.once()
		ts := f.tickets()
		if len(ts) != 2 || ts[0].Messages != 2 || ts[1].Subject != "Nieuwe vraag: pinautomaat" {
			t.Fatalf("tickets = %+v", ts)
		}
	})
}

// TestExactlyOnce: running again ingests nothing twice, over several batches; messages read
// by another client are still ingested (the checkpoint, not \Seen, says what is new).
func TestExactlyOnce(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, func(c *ingest.Config) { c.BatchSize = 7 })
		for i := range 30 {
			f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: fmt.Sprintf("Vraag %d", i), msgID: fmt.Sprintf("m%d@b", i)}))
		}
		c := f.srv.client(t)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		setSeen(t, c, imap.StoreFlagsAdd)
		f.once()
		f.once()
		if n := len(f.tickets()); n != 30 {
			t.Fatalf("tickets = %d, want 30", n)
		}
		// All from one address within the hour: RFC 3834 rate limit, 10 automatic replies.
		if n := len(f.outbox()); n != 10 {
			t.Fatalf("acknowledgements = %d, want 10 (the per-address hourly limit)", n)
		}
	})
}

func setSeen(t *testing.T, c *imapclient.Client, op imap.StoreFlagsOp) {
	t.Helper()
	var all imap.SeqSet
	all.AddRange(1, 0)
	if err := c.Store(all, &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
}

// TestUIDValidityResetNoDuplicates: the mailbox recreated with the same mail (new
// UIDVALIDITY, UIDs from 1 again) creates no duplicate tickets, and new mail still comes in.
func TestUIDValidityResetNoDuplicates(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, func(c *ingest.Config) { c.Mailbox = "Support" })
		var raws [][]byte
		for i := range 5 {
			raws = append(raws, buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: fmt.Sprintf("Vraag %d", i), msgID: fmt.Sprintf("r%d@b", i)}))
			f.deliver(raws[i])
		}
		f.once()
		c := f.srv.client(t)
		if err := c.Delete("Support").Wait(); err != nil {
			t.Fatal(err)
		}
		if err := c.Create("Support", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		for _, raw := range raws {
			f.deliver(raw)
		}
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Echt nieuw", msgID: "new@b"}))
		f.once()
		if n := len(f.tickets()); n != 6 {
			t.Fatalf("tickets = %d, want 6", n)
		}
		if n := len(f.outbox()); n != 6 {
			t.Fatalf("acknowledgements = %d, want 6", n)
		}
	})
}

// TestPendingFlagsFinishedAfterCrash: a crash after the commit and before \Seen leaves the
// UIDs in the checkpoint's pending list; the next run flags them and ingests nothing twice.
func TestPendingFlagsFinishedAfterCrash(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, nil)
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Eén", msgID: "c1@b"}))
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Twee", msgID: "c2@b"}))
		f.once()
		// Simulate the crash: the server never got the flags.
		c := f.srv.client(t)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		setSeen(t, c, imap.StoreFlagsDel)
		err := f.db.Update(context.Background(), func(tx *store.Tx) error {
			st, err := tx.Mailbox("INBOX")
			if err != nil {
				return err
			}
			st.PendingMark = []helpdesk.UIDRange{{Start: 1, Stop: 2}}
			return tx.PutMailbox(st)
		})
		if err != nil {
			t.Fatal(err)
		}
		f.once()
		if _, unseen := f.srv.status(t, "INBOX"); unseen != 0 {
			t.Errorf("unseen = %d after restart, want 0", unseen)
		}
		if n := len(f.tickets()); n != 2 {
			t.Errorf("tickets = %d, want 2", n)
		}
	})
}

// TestIdleDelivers: with IDLE, an appended email becomes a ticket on the server's push: the
// poll interval is an hour, so nothing else can take it in while the test waits (a minute, room
// for a busy machine). How fast the push is taken in is BenchmarkIdleToSMTP's (cmd/helpdesk).
func TestIdleDelivers(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, func(c *ingest.Config) { c.PollInterval = time.Hour })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.poller.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		waitFor(t, f.events, func(ev ingest.Event) bool { return ev.Idling }, time.Minute)
		start := time.Now()
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Via IDLE", msgID: "idle@b"}))
		ev := waitFor(t, f.events, func(ev ingest.Event) bool { return ev.Outcome != nil }, time.Minute)
		if ev.Outcome.Action != "new_ticket" {
			t.Errorf("outcome = %+v", ev.Outcome)
		}
		t.Logf("APPEND to committed ticket: %v", time.Since(start))
	})
}

// TestReconnectAfterServerRestart: the IMAP server goes away under a running poller and comes
// back; the poller reconnects by itself and loses nothing.
func TestReconnectAfterServerRestart(t *testing.T) {
	f := newFixture(t, "dovecot", func(c *ingest.Config) { c.PollInterval = 200 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.poller.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Voor de herstart", msgID: "before@b"}))
	waitFor(t, f.events, func(ev ingest.Event) bool { return ev.Outcome != nil }, time.Minute)
	if err := f.srv.dovecot.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f.events, func(ev ingest.Event) bool { return ev.Err != nil }, time.Minute)
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Na de herstart", msgID: "after@b"}))
	ev := waitFor(t, f.events, func(ev ingest.Event) bool { return ev.Outcome != nil }, time.Minute)
	if ev.Outcome.MessageID != "after@b" || ev.Outcome.Action != "new_ticket" {
		t.Errorf("after restart: %+v", ev.Outcome)
	}
	if n := len(f.tickets()); n != 2 {
		t.Errorf("tickets = %d, want 2", n)
	}
}

// panicOnce is a log handler that panics at the first record with the message msg: a bug in
// the session that the poller must survive. The records of Error and above go to errs.
type panicOnce struct {
	msg  string
	done *atomic.Bool
	errs chan string
}

func (h panicOnce) Enabled(context.Context, slog.Level) bool { return true }
func (h panicOnce) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg && h.done.CompareAndSwap(false, true) {
		panic("a bug in the session")
	}
	if r.Level >= slog.LevelError {
		select {
		case h.errs <- r.Message:
		default:
		}
	}
	return nil
}
func (h panicOnce) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h panicOnce) WithGroup(string) slog.Handler      { return h }

// TestRunSurvivesPanic: a panic in the IMAP session (here while it logs that it connected) is
// reported and the poller reconnects: the email waiting is taken in.
func TestRunSurvivesPanic(t *testing.T) {
	errs := make(chan string, 10)
	f := newFixture(t, "mem", func(c *ingest.Config) {
		c.Logger = slog.New(panicOnce{msg: "imap connected", done: &atomic.Bool{}, errs: errs})
	})
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Na de paniek", msgID: "panic@b"}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.poller.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	ev := waitFor(t, f.events, func(ev ingest.Event) bool { return ev.Outcome != nil }, time.Minute)
	if ev.Outcome.MessageID != "panic@b" || ev.Outcome.Action != "new_ticket" {
		t.Errorf("after the panic: %+v", ev.Outcome)
	}
	select {
	case msg := <-errs:
		if msg != "the IMAP session failed with a panic (a bug); reconnecting" {
			t.Errorf("logged %q", msg)
		}
	default:
		t.Error("the panic was not logged")
	}
}

// TestMoveToFolder: with a move-to folder, processed mail leaves the INBOX, flagged \Seen;
// a server without MOVE only flags it.
func TestMoveToFolder(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, func(c *ingest.Config) { c.MoveTo = "Verwerkt" })
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Verplaats mij", msgID: "mv@b"}))
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Mij ook", msgID: "mv2@b"}))
		f.once()
		if kind == "mem-rev1" {
			// No MOVE: the fallback's EXPUNGE would take staff's \Deleted mail with it.
			if n, unseen := f.srv.status(t, "INBOX"); n != 2 || unseen != 0 {
				t.Errorf("INBOX: %d messages, %d unseen; want 2, 0 (flagged, not moved)", n, unseen)
			}
			return
		}
		if n, _ := f.srv.status(t, "INBOX"); n != 0 {
			t.Errorf("INBOX still has %d messages", n)
		}
		if n, unseen := f.srv.status(t, "Verwerkt"); n != 2 || unseen != 0 {
			t.Errorf("Verwerkt: %d messages, %d unseen; want 2, 0", n, unseen)
		}
		// Again, and again: moved mail is not moved twice, new mail keeps coming in.
		f.once()
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Nog een", msgID: "mv3@b"}))
		f.once()
		if n, _ := f.srv.status(t, "Verwerkt"); n != 3 || len(f.tickets()) != 3 {
			t.Errorf("after more mail: Verwerkt has %d, %d tickets; want 3, 3", n, len(f.tickets()))
		}
	})
}

// TestTooLargeIsHeldAndLeft: above the size limit an email is held from its envelope and left
// unread on the server; the emails around it go on.
func TestTooLargeIsHeldAndLeft(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, func(c *ingest.Config) { c.MaxMessageBytes = 4096 })
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Klein", msgID: "s@b"}))
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Groot", msgID: "big@b", body: strings.Repeat("x", 10000)}))
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Ook klein", msgID: "s2@b"}))
		f.once()
		if n := len(f.tickets()); n != 2 {
			t.Errorf("tickets = %d, want 2", n)
		}
		hs := f.held()
		if len(hs) != 1 || hs[0].Reason != helpdesk.HeldTooLarge || hs[0].From != "info@bakkerijdevries.nl" || hs[0].Subject != "Groot" || hs[0].MessageID != "big@b" {
			t.Fatalf("held = %+v", hs)
		}
		if _, unseen := f.srv.status(t, "INBOX"); unseen != 1 {
			t.Errorf("unseen = %d, want the large one left unread", unseen)
		}
		// The sender is told, once: a second large email the same day gets no second notice.
		told := func() int {
			n := 0
			for _, x := range f.outbox() {
				if x.Kind == helpdesk.KindTooLarge && x.To == "info@bakkerijdevries.nl" {
					n++
				}
			}
			return n
		}
		first := told()
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Weer groot", msgID: "big2@b", body: strings.Repeat("y", 10000)}))
		f.once()
		if second := told(); first != 1 || second != 1 {
			t.Errorf("too-large notices after one and two large emails = %d, %d; want 1, 1", first, second)
		}
	})
}

func waitFor(t *testing.T, ch <-chan ingest.Event, match func(ingest.Event) bool, d time.Duration) ingest.Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev := <-ch:
			if match(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no matching event within %v", d)
			return ingest.Event{}
		}
	}
}

// TestUnsolicitedFetchLosesNothing: a server may send FETCH data (a flag change) for a message
// before its body; the body that follows must still be read — no UID passes the checkpoint
// without its email (seen in review: the email was skipped as "expunged").
func TestUnsolicitedFetchLosesNothing(t *testing.T) {
	f := newMemFixture(t, imapmem.Quirks{FlagsBeforeBody: true}, nil)
	for i := range 3 {
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: fmt.Sprintf("Vraag %d", i), msgID: fmt.Sprintf("u%d@b", i)}))
	}
	f.once()
	if n := len(f.tickets()); n != 3 {
		t.Fatalf("tickets = %d, want 3; held = %+v", n, f.held())
	}
}

// TestUnfetchableMessageIsHeld: a server that refuses one message's body (a corrupt file) does
// not stall the mailbox: the others become tickets, the refused one is held with the server's
// answer and left unread; nothing passes the checkpoint unaccounted for.
func TestUnfetchableMessageIsHeld(t *testing.T) {
	f := newMemFixture(t, imapmem.Quirks{RefuseBody: func(uid imap.UID) bool { return uid == 2 }}, nil)
	for i := range 3 {
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: fmt.Sprintf("Vraag %d", i), msgID: fmt.Sprintf("c%d@b", i)}))
	}
	f.once()
	if n := len(f.tickets()); n != 2 {
		t.Errorf("tickets = %d, want 2", n)
	}
	hs := f.held()
	if len(hs) != 1 || hs[0].Reason != helpdesk.HeldUnfetchable || hs[0].Source.UID != 2 || hs[0].Subject != "Vraag 1" ||
		!strings.Contains(hs[0].Detail, "corrupt") {
		t.Fatalf("held = %+v", hs)
	}
	if _, unseen := f.srv.status(t, "INBOX"); unseen != 1 {
		t.Errorf("unseen = %d, want the refused one left unread", unseen)
	}
}

// TestStuckServerDropped: a server that stops answering in the middle of a FETCH has its
// connection dropped after the command timeout, and a cancelled Run returns, instead of
// hanging the gateway (and its shutdown) forever.
func TestStuckServerDropped(t *testing.T) {
	f := newMemFixture(t, imapmem.Quirks{HangFetch: true}, func(c *ingest.Config) {
		c.CommandTimeout = 200 * time.Millisecond
		c.StopGrace = 200 * time.Millisecond
	})
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Vast", msgID: "h@b"}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.poller.Run(ctx) }()
	// The FETCH's error (on a machine busy enough to slow the listing past 200 ms, the
	// listing fails first and the poller reconnects: the fetch still comes).
	waitFor(t, f.events, func(ev ingest.Event) bool { return ev.Err != nil && strings.Contains(ev.Err.Error(), "fetch") }, time.Minute)
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute): // a hang guard: the stuck FETCH would hold it forever
		t.Fatal("Run did not return after cancel against a stuck server")
	}
	if n := len(f.tickets()); n != 0 {
		t.Errorf("tickets = %d", n)
	}
}

// TestBacklogIsQuiet: at the first sync, mail that arrived long before is ingested without
// automatic replies — the gateway does not answer a mailbox's history — while recent mail is
// acknowledged as usual.
func TestBacklogIsQuiet(t *testing.T) {
	f := newFixture(t, "mem", nil)
	old := arrival.Add(-72 * time.Hour)
	f.srv.append(t, "INBOX", buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Oud", msgID: "old@b"}), old)
	f.srv.append(t, "INBOX", buildMail(mailOpts{from: "vreemd@example.com", subject: "Oud", msgID: "old@x"}), old)
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Nieuw", msgID: "new@b"}))
	f.once()
	if n := len(f.tickets()); n != 2 {
		t.Errorf("tickets = %d, want 2 (old mail is still ingested)", n)
	}
	ob := f.outbox()
	if len(ob) != 1 || ob[0].Data.OrigSubject != "Nieuw" {
		t.Errorf("outbox = %+v, want only the new email's acknowledgement", ob)
	}
}

// TestBacklogIsHistory: at the first sync, mail older than the backlog age
// is the mailbox's past: its tickets are closed and have no deadline, a reply among it
// reopens nothing, and they do not count against an SLA24 customer's limits today (open
// tickets; tickets per month count by arrival, in their own month). New mail from the same
// customer becomes a ticket as usual, and the customer's later reply to an archived ticket
// reopens it.
func TestBacklogIsHistory(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, func(c *ingest.Config) {
			a := *c.Desk
			a.Policy = policy.New(testRules(t, policy.Limits{TicketsPerMonth: 2, OpenTickets: 1}))
			c.Desk = &a
		})
		const jansen = "kassa@slagerijjansen.nl" // SLA24
		oct := time.Date(2026, 10, 5, 10, 0, 0, 0, time.UTC)
		for i := range 3 {
			f.srv.append(t, "INBOX", buildMail(mailOpts{from: jansen, subject: fmt.Sprintf("Oud %d", i), msgID: fmt.Sprintf("old%d@j", i)}), oct.Add(time.Duration(i)*24*time.Hour))
		}
		f.srv.append(t, "INBOX", buildMail(mailOpts{from: jansen, subject: "Re: Oud 0", msgID: "old0r@j", inReplyTo: "old0@j"}), oct.Add(5*24*time.Hour))
		f.srv.append(t, "INBOX", buildMail(mailOpts{from: jansen, subject: "Eerder deze maand", msgID: "nov@j"}), arrival.Add(-72*time.Hour))
		f.deliver(buildMail(mailOpts{from: jansen, subject: "Nieuw", msgID: "new@j"}))
		f.once()

		ts := f.tickets()
		if len(ts) != 5 {
			t.Fatalf("tickets = %d, want 4 from the backlog and the new one; held: %+v", len(ts), f.held())
		}
		for _, tk := range ts[:4] {
			if tk.Status != helpdesk.StatusClosed || !tk.Due.IsZero() {
				t.Errorf("backlog ticket %d %q: status %s, due %v; want closed without a deadline", tk.ID, tk.Subject, tk.Status, tk.Due)
			}
		}
		if ms := f.messages(1); len(ms) != 2 {
			t.Errorf("ticket 1 has %d messages, want the question and the backlog reply", len(ms))
		}
		if tk := ts[4]; tk.Subject != "Nieuw" || tk.Status != helpdesk.StatusOpen || tk.Due.IsZero() {
			t.Errorf("new ticket = %q %s due %v, want Nieuw open with a deadline", tk.Subject, tk.Status, tk.Due)
		}
		if h := f.held(); len(h) != 0 {
			t.Errorf("held = %+v: the backlog counted against today's limits", h[0])
		}
		if ob := f.outbox(); len(ob) != 1 || ob[0].Data.OrigSubject != "Nieuw" {
			t.Errorf("outbox = %+v, want only the new email's acknowledgement", ob)
		}
		// The due queue is today's work only.
		if err := f.db.View(context.Background(), func(tx *store.Tx) error {
			due, err := tx.DueQueue(10)
			if err != nil || len(due) != 1 || due[0].Subject != "Nieuw" {
				t.Errorf("due queue = %v (%v), want only the new ticket", len(due), err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}

		// The customer writes again on an archived ticket: as any closed one, that would open it
		// again, and with "Nieuw" open the customer is at the open-tickets limit of 1
		// (R11): the reply is held, the archived ticket stays closed.
		f.deliver(buildMail(mailOpts{from: jansen, subject: "Re: Oud 1", msgID: "again@j", inReplyTo: "old1@j"}))
		f.once()
		if tk := f.ticket(2); tk.Status != helpdesk.StatusClosed || tk.Messages != 1 {
			t.Errorf("archived ticket after the customer's reply: %s with %d messages, want closed with 1", tk.Status, tk.Messages)
		}
		if h := f.held(); len(h) != 1 || h[0].Reason != helpdesk.HeldOverLimit || !strings.Contains(h[0].Detail, "open tickets") {
			t.Errorf("held = %+v, want the reply held over the open-tickets limit", h)
		}
	})
}

// TestAutoReplyLimits: RFC 3834 — a stranger writing again and again is told once a day, and a
// customer's automatic mail never reopens a ticket (it counts as a reply, R11).
func TestAutoReplyLimits(t *testing.T) {
	f := newFixture(t, "mem", nil)
	for i := range 4 {
		f.deliver(buildMail(mailOpts{from: "vreemd@example.com", subject: fmt.Sprintf("Hallo %d", i), msgID: fmt.Sprintf("v%d@x", i)}))
	}
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Vraag", msgID: "q@b",
		extra: []string{"X-Auto-Response-Suppress: All"}}))
	f.once()
	if n := len(f.held()); n != 4 {
		t.Errorf("held = %d, want every stranger's email kept", n)
	}
	if ob := f.outbox(); len(ob) != 1 || ob[0].Kind != helpdesk.KindUnknownSender {
		t.Errorf("outbox = %+v, want one unknown-sender reply (and no acknowledgement for a suppress request)", ob)
	}
	if ts := f.tickets(); len(ts) != 1 {
		t.Fatalf("tickets = %d: X-Auto-Response-Suppress still opens a ticket", len(ts))
	}
	// Staff answer; the customer's out-of-office reply is recorded but does not reopen. It
	// counts as a reply for the SLA24 limit like any other.
	f.deliver(buildMail(mailOpts{from: "jan@infobits.example", subject: "Re: [Infobits #1] Vraag", msgID: "a@i", body: "Antwoord."}))
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Afwezig: Re: [Infobits #1] Vraag", msgID: "ooo@b",
		extra: []string{"Auto-Submitted: auto-replied"}}))
	f.once()
	tk := f.ticket(1)
	if tk.Status != helpdesk.StatusAnswered || tk.Messages != 3 || tk.Replies != 1 {
		t.Errorf("ticket after an out-of-office reply: status %s, %d messages, %d replies; want answered, 3, 1", tk.Status, tk.Messages, tk.Replies)
	}
}

// TestUnusableMoveToFolder: a move-to folder the server refuses is reported at connect with
// what to check, before any mail is committed.
func TestUnusableMoveToFolder(t *testing.T) {
	f := newFixture(t, "dovecot", func(c *ingest.Config) { c.MoveTo = "~Verwerkt" })
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Hallo", msgID: "x@b"}))
	err := f.poller.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "imap_move_to") {
		t.Fatalf("Once = %v, want an error naming imap_move_to", err)
	}
	if n := len(f.tickets()); n != 0 {
		t.Errorf("tickets = %d, want none committed", n)
	}
}

// bounceOf is a delivery report (RFC 3464) about a message we sent.
func bounceOf(to, msgID, status string) []byte {
	return []byte("From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n" +
		"To: support@infobits.example\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Date: Fri, 27 Nov 2026 10:05:00 +0100\r\nMessage-ID: <bounce-" + msgID + ">\r\nAuto-Submitted: auto-replied\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nThe mail system: <" + to + ">: host said: 550 5.1.1 User unknown\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n" +
		"Final-Recipient: rfc822; " + to + "\r\nAction: failed\r\nStatus: " + status + "\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n" +
		"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Infobits Helpdesk <support@infobits.example>\r\nTo: " + to + "\r\n" +
		"Subject: [Infobits #1] Ontvangen\r\nMessage-Id: <" + msgID + ">\r\n\r\n--b--\r\n")
}

// TestBounceLinkedToNotification: RFC 3464 — a delivery report about an acknowledgement is
// filed on that ticket, marks the notification failed, opens no ticket and is not answered;
// no automatic mail goes to the bounced address for a while (a password link asked for by
// email is withheld); the customer's next email becomes a ticket, and — a person writing from
// the address again — ends that: it is acknowledged.
func TestBounceLinkedToNotification(t *testing.T) {
	f := newFixture(t, "mem", nil)
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Vraag", msgID: "q@b"}))
	f.once()
	ack := f.outbox()[0]
	f.deliver(bounceOf("info@bakkerijdevries.nl", ack.MessageID, "5.1.1"))
	f.once()
	if n := len(f.tickets()); n != 1 {
		t.Fatalf("tickets = %d, want 1: a bounce opens no ticket", n)
	}
	ms := f.messages(1)
	if len(ms) != 2 || ms[1].Direction != helpdesk.DirectionReport {
		t.Fatalf("thread = %+v, want the report on the ticket", ms)
	}
	ob := f.outbox()
	if len(ob) != 1 || ob[0].Status != helpdesk.NotifyFailed || !strings.Contains(ob[0].LastError, "5.1.1") {
		t.Fatalf("notification after the bounce = %+v", ob)
	}
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Wachtwoord vergeten", msgID: "pw@b"}))
	f.once()
	if n := len(f.outbox()); n != 1 {
		t.Errorf("outbox = %d notifications, want no password link to the bounced address", n)
	}
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Nog een vraag", msgID: "q2@b"}))
	f.once()
	if n := len(f.tickets()); n != 2 {
		t.Errorf("tickets = %d, want the new question as a ticket", n)
	}
	if ob := f.outbox(); len(ob) != 2 || ob[1].Kind != helpdesk.KindAck || ob[1].TicketID != 2 {
		t.Errorf("outbox = %+v, want the acknowledgement of the new question: the customer wrote from the address again", ob)
	}
}

// TestBounceOfRecoveryHeld: a delivery report about a notification without a ticket (a
// password reset) cannot go on a thread, so it is kept as a held email with the reason bounce
// (what `ticket held` lists and /metrics counts), still marks the notification failed, opens
// no ticket and is not answered.
func TestBounceOfRecoveryHeld(t *testing.T) {
	f := newStaffFixture(t, nil)
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "wachtwoord vergeten", msgID: "rb@b"}))
	f.once()
	ob := f.outbox()
	if len(ob) != 1 || ob[0].Kind != helpdesk.KindPasswordReset {
		t.Fatalf("queued %v, want one password reset", staffKinds(ob))
	}
	drain(f.events)
	f.deliver(bounceOf("info@bakkerijdevries.nl", ob[0].MessageID, "5.1.1"))
	f.once()
	var out *desk.Outcome
	for _, ev := range drain(f.events) {
		if ev.Outcome != nil {
			out = ev.Outcome
		}
	}
	if out == nil || out.Action != "bounce" || out.HeldID == 0 || out.Reason != helpdesk.HeldBounce ||
		!strings.Contains(out.Detail, "delivery report about notification") {
		t.Fatalf("outcome = %+v, want action bounce held with reason %q and what it reports", out, helpdesk.HeldBounce)
	}
	var h *helpdesk.Held
	for _, x := range f.held() {
		if x.ID == out.HeldID {
			h = x
		}
	}
	if h == nil || h.Reason != helpdesk.HeldBounce || !strings.Contains(h.Detail, "5.1.1") {
		t.Fatalf("held %d = %+v, want the report kept with reason bounce and its status", out.HeldID, h)
	}
	if n := len(f.tickets()); n != 0 {
		t.Errorf("tickets = %d, want none: a report opens no ticket", n)
	}
	ob = f.outbox()
	if len(ob) != 1 || ob[0].Status != helpdesk.NotifyFailed {
		t.Errorf("outbox after the bounce = %+v, want only the reset, marked failed", ob)
	}
}

// TestGapAlarm: an email below the checkpoint that the store never took in — mail silently
// skipped — is reported (logged and counted), not left unnoticed.
func TestGapAlarm(t *testing.T) {
	f := newFixture(t, "mem", nil)
	for i := range 3 {
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: fmt.Sprintf("Vraag %d", i), msgID: fmt.Sprintf("g%d@b", i)}))
	}
	f.once()
	for _, ev := range drain(f.events) {
		if ev.Gap != 0 {
			t.Fatalf("gap %d reported with nothing skipped", ev.Gap)
		}
	}
	// Two more arrive, and a (simulated) bug moves the checkpoint past them.
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Overgeslagen 1", msgID: "s1@b"}))
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Overgeslagen 2", msgID: "s2@b"}))
	if err := f.db.Update(context.Background(), func(tx *store.Tx) error {
		st, err := tx.Mailbox("INBOX")
		if err != nil {
			return err
		}
		st.LastUID = 5
		return tx.PutMailbox(st)
	}); err != nil {
		t.Fatal(err)
	}
	f.once()
	gap := 0
	for _, ev := range drain(f.events) {
		gap += ev.Gap
	}
	if gap != 2 {
		t.Errorf("gap reported = %d, want 2", gap)
	}
}

func drain(ch chan ingest.Event) []ingest.Event {
	var out []ingest.Event
	for {
		select {
		case ev := <-ch:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// TestConnectionCutMidFetch: the server drops the connection in the middle of a batch FETCH
// (twice); the poller reconnects with backoff and every email becomes a ticket exactly once.
func TestConnectionCutMidFetch(t *testing.T) {
	f := newMemFixture(t, imapmem.Quirks{DropFetches: 2}, func(c *ingest.Config) { c.PollInterval = 100 * time.Millisecond })
	for i := range 20 {
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: fmt.Sprintf("Vraag %d", i), msgID: fmt.Sprintf("cut%d@b", i)}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.poller.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	errs, outcomes := 0, 0
	deadline := time.After(90 * time.Second) // a hang guard
	for outcomes < 20 {
		select {
		case ev := <-f.events:
			if ev.Err != nil {
				errs++
			}
			if ev.Outcome != nil {
				outcomes++
			}
		case <-deadline:
			t.Fatalf("after 90 s: %d emails taken in, %d session errors", outcomes, errs)
		}
	}
	if errs < 2 {
		t.Errorf("session errors = %d, want the two cut connections", errs)
	}
	if n := len(f.tickets()); n != 20 {
		t.Errorf("tickets = %d, want 20 exactly once", n)
	}
}

// TestPoisonousEmailDoesNotBlock: an email whose handling panics (here: a policy whose
// calendars are missing, so planning a new ticket dereferences nil) is held with the reason,
// and the emails before and after it in the same batch are taken in as usual.
func TestPoisonousEmailDoesNotBlock(t *testing.T) {
	f := newFixture(t, "mem", func(c *ingest.Config) {
		a := *c.Desk
		rules := testRules(t, policy.Limits{})
		rules.Calendars = &calendar.Set{} // no calendars at all: a new ticket panics
		a.Policy = policy.New(rules)
		c.Desk = &a
	})
	f.deliver(buildMail(mailOpts{from: "vreemd@example.com", subject: "Ervoor", msgID: "p1@x"}))
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Giftig", msgID: "p2@b"}))
	f.deliver(buildMail(mailOpts{from: "anders@example.com", subject: "Erna", msgID: "p3@x"}))
	f.once()
	hs := f.held()
	if len(hs) != 3 {
		t.Fatalf("held = %d, want 3", len(hs))
	}
	reasons := map[string]string{}
	for _, h := range hs {
		reasons[h.Subject] = h.Reason
	}
	if reasons["Ervoor"] != helpdesk.HeldUnknownSender || reasons["Giftig"] != helpdesk.HeldInternal || reasons["Erna"] != helpdesk.HeldUnknownSender {
		t.Errorf("held reasons = %v", reasons)
	}
	if _, unseen := f.srv.status(t, "INBOX"); unseen != 0 {
		t.Errorf("unseen = %d: the batch was not committed and flagged", unseen)
	}
}
