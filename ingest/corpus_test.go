package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
)

// corpusDir is the real-world corpus in the repository's testdata/corpus (see its README.md);
// a corpus that is not there fails the test: it is part of the repository.
func corpusDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "testdata", "corpus")
	if _, err := os.Stat(filepath.Join(dir, "bounces")); err != nil {
		t.Fatalf("real-world corpus missing from the repository (testdata/corpus): %v", err)
	}
	return dir
}

// corpusFile is one email of the corpus as appended: CRLF line ends.
type corpusFile struct {
	name   string // bounces/x.eml
	raw    []byte
	bounce bool // machine-generated delivery or feedback report: never answered, never a ticket
	uid    uint32
}

func readCorpus(t *testing.T, dir string) []*corpusFile {
	t.Helper()
	var out []*corpusFile
	for _, sub := range []string{"bounces", "mail-gem"} {
		names, err := filepath.Glob(filepath.Join(dir, sub, "*.eml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(names) == 0 {
			t.Fatalf("no emails in %s", filepath.Join(dir, sub))
		}
		sort.Strings(names)
		for _, name := range names {
			if strings.HasPrefix(filepath.Base(name), "LICENSE") {
				continue
			}
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			raw = bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
			base := filepath.Base(name)
			out = append(out, &corpusFile{name: sub + "/" + base, raw: raw,
				// bounces/ holds three messages that are not bounces (corpus README); mail-gem
				// has a few real bounces of its own.
				bounce: (sub == "bounces" && !strings.HasPrefix(base, "not-bounce-")) ||
					strings.HasPrefix(base, "multipart_report_emails__")})
		}
	}
	return out
}

// corpusCustomers appear as From in mail-gem only: their mail there may become tickets.
var corpusCustomers = []string{"jamis@37signals.com", "test@lindsaar.net", "foo@example.com",
	"raasdnil@gmail.com", "jdoe@machine.example", "xxxxxxxxx.xxxxxxx@gmail.com"}

// personForwards are files of the bounce corpus that are not machine mail: a person forwarding
// a bounce to support, with a question of their own (no RFC 3834 headers, no report part, a
// person's address). The gateway treats it as any email from that address — answering is right
// — and the test requires that, so that a rule too eager to call mail automatic is seen too.
var personForwards = map[string]bool{
	"bounces/lhost-sendmail-14.eml": true,
}

// TestCorpusThroughIngest: every email of the real-world corpus (629 bounces and reports from
// many mail servers, 104 real and broken client emails) goes through the real path — IMAP
// APPEND, the poller, parse, policy, one commit per batch — in one run, with a bounce of one of
// the gateway's own acknowledgements among them. The gateway keeps going, every email is
// accounted for (a thread message, held with a reason, or a duplicate of an identical one), no
// bounce opens a ticket or is answered, and the planted bounce is linked to its notification.
func TestCorpusThroughIngest(t *testing.T) {
	dir := corpusDir(t)
	for _, kind := range []string{"mem", "dovecot"} {
		t.Run(kind, func(t *testing.T) {
			if kind == "dovecot" && testing.Short() {
				t.Skip("-short: the in-memory server only")
			}
			testCorpus(t, kind, dir)
		})
	}
}

func testCorpus(t *testing.T, kind, dir string) {
	files := readCorpus(t, dir)
	f := newFixture(t, kind, nil)
	for i, addr := range corpusCustomers {
		f.addCustomer(&helpdesk.Customer{Name: fmt.Sprintf("Corpus %d", i), Emails: []string{addr}, Tier: helpdesk.SLA8})
	}
	// The premise: no registered address sends a bounce.
	bounceAddrs := map[string]string{} // From and Return-Path of bounces -> a file
	knownAddrs := map[string]bool{}    // addresses of the person forwards (personForwards)
	for _, cf := range files {
		if !cf.bounce {
			continue
		}
		e := parse.Parse(cf.raw, arrival)
		for _, a := range []string{e.From, e.ReturnPath} {
			if a == "" {
				continue
			}
			if slices.Contains(corpusCustomers, a) {
				t.Fatalf("registered address %s sends the bounce %s", a, cf.name)
			}
			bounceAddrs[a] = cf.name
			if personForwards[cf.name] {
				knownAddrs[a] = true
			}
		}
	}

	// One customer question first, so that there is an acknowledgement to bounce.
	f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Vraag voor de bounce", msgID: "corpus-q@b"}))
	f.once()
	ob := f.outbox()
	if len(ob) != 1 || ob[0].Kind != helpdesk.KindAck {
		t.Fatalf("outbox after the first question = %+v", ob)
	}
	ack := ob[0]
	drain(f.events)
	messagesBefore, heldBefore := countThread(f), len(f.held())

	start := time.Now()
	planted := &corpusFile{name: "planted bounce of the acknowledgement", bounce: true,
		raw: bounceOf("info@bakkerijdevries.nl", ack.MessageID, "5.1.1")}
	files = slices.Insert(files, len(files)/2, planted)
	byUID := map[uint32]*corpusFile{}
	for _, cf := range files {
		cf.uid = uint32(f.deliver(cf.raw))
		byUID[cf.uid] = cf
	}
	t.Logf("appended %d emails to %s in %v", len(files), kind, time.Since(start).Round(time.Millisecond))

	// The poller, with room for an event per email.
	events := make(chan ingest.Event, len(files)+100)
	p, err := ingest.New(f.cfg, f.db, events)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := p.Once(ctx); err != nil {
		t.Fatalf("Once: %v — the gateway must keep going", err)
	}
	t.Logf("ingested %d emails in %v", len(files), time.Since(start).Round(time.Millisecond))

	outcomes := map[uint32]*desk.Outcome{}
	for _, ev := range drain(events) {
		if o := ev.Outcome; o != nil {
			if outcomes[o.UID] != nil {
				t.Errorf("uid %d has two outcomes", o.UID)
			}
			outcomes[o.UID] = o
		}
	}
	unread := map[string]bool{helpdesk.HeldUnfetchable: true, helpdesk.HeldVanished: true, helpdesk.HeldTooLarge: true}
	// Expected duplicates: files identical after CRLF conversion, or with the same identity
	// (Message-ID, sender, subject) as an earlier one — what the gateway's dedupe collapses —
	// among the emails the server handed out (one it would not is held unread, and deduped
	// with nothing).
	wantDup := map[string]string{}
	hashes, ids := map[[32]byte]string{}, map[[32]byte]string{}
	sameBytes, sameIdentity := 0, 0
	for _, cf := range files {
		if o := outcomes[cf.uid]; o != nil && o.Action == "held" && unread[o.Reason] {
			continue
		}
		e := parse.Parse(cf.raw, arrival)
		if first, ok := hashes[e.SHA256]; ok {
			wantDup[cf.name] = first
			sameBytes++
			continue
		}
		hashes[e.SHA256] = cf.name
		if key, ok := store.IdentityKey(e.MessageID, e.From, e.Subject); ok {
			if first, ok := ids[key]; ok {
				wantDup[cf.name] = first + " (same Message-ID, sender, subject)"
				sameIdentity++
				continue
			}
			ids[key] = cf.name
		}
	}
	t.Logf("expected duplicates: %d identical files, %d with the identity of an earlier one", sameBytes, sameIdentity)

	byAction, byReason := map[string]int{}, map[string]int{}
	var falseDup, missedDup []string
	for uid, cf := range byUID {
		o := outcomes[uid]
		if o == nil {
			t.Errorf("%s (uid %d): no outcome", cf.name, uid)
			continue
		}
		byAction[o.Action]++
		if o.Action == "held" {
			byReason[o.Reason]++
		}
		switch {
		case o.Action == "duplicate" && wantDup[cf.name] == "":
			falseDup = append(falseDup, cf.name)
		case o.Action != "duplicate" && wantDup[cf.name] != "":
			missedDup = append(missedDup, fmt.Sprintf("%s: %s, want a duplicate of %s", cf.name, o.Action, wantDup[cf.name]))
		case o.Action == "held" && o.Reason == "":
			t.Errorf("%s: held without a reason", cf.name)
		case cf.bounce && (o.Action == "new_ticket" || o.Action == "reply" || o.Action == "staff_answer"):
			t.Errorf("%s: a bounce became %s on ticket %d", cf.name, o.Action, o.TicketID)
		}
	}
	if len(falseDup) > 0 {
		sort.Strings(falseDup)
		t.Errorf("%d emails taken for duplicates of an earlier email that no earlier file is the same as "+
			"(lost: flagged \\Seen, nothing kept but the outcome): %v", len(falseDup), falseDup)
	}
	for _, m := range missedDup {
		t.Error(m)
	}
	t.Logf("outcomes: %v", byAction)
	t.Logf("held reasons: %v", byReason)
	if n := len(outcomes); n != len(files) {
		t.Errorf("%d outcomes for %d emails", n, len(files))
	}

	// Accounted for in the store: thread messages + held + duplicates = appended.
	messages, held := countThread(f)-messagesBefore, len(f.held())-heldBefore
	if messages+held+byAction["duplicate"] != len(files) {
		t.Errorf("thread messages %d + held %d + duplicates %d = %d, want the %d emails appended",
			messages, held, byAction["duplicate"], messages+held+byAction["duplicate"], len(files))
	}
	var emptyRaw []string
	for _, h := range f.held() {
		if h.RawSHA256 == "" && h.Reason != helpdesk.HeldTooLarge && h.Reason != helpdesk.HeldUnfetchable && h.Reason != helpdesk.HeldVanished {
			emptyRaw = append(emptyRaw, fmt.Sprintf("held %d (%s)", h.ID, h.Reason))
		}
		// (Sizes may differ a little: a server may normalise bare CRs, as Dovecot does.)
		if cf := byUID[h.Source.UID]; cf != nil && h.Size == 0 && len(cf.raw) > 0 {
			t.Errorf("%s: held (%s) as an empty email, but %d bytes were appended", cf.name, h.Reason, len(cf.raw))
		}
	}
	if len(emptyRaw) > 0 {
		t.Errorf("held emails without their raw message: %v", emptyRaw)
	}
	for _, tk := range f.tickets() {
		for _, m := range f.messages(tk.ID) {
			if cf := byUID[m.Source.UID]; cf != nil && m.Size == 0 && len(cf.raw) > 0 {
				t.Errorf("%s: on ticket %d as an empty email, but %d bytes were appended", cf.name, tk.ID, len(cf.raw))
			}
		}
	}

	// The planted bounce is linked: a report on the acknowledgement's ticket, which failed.
	if o := outcomes[planted.uid]; o == nil || o.Action != "bounce" || o.TicketID != ack.TicketID {
		t.Errorf("planted bounce: outcome %+v, want bounce on ticket %d", o, ack.TicketID)
	}
	report := false
	for _, m := range f.messages(ack.TicketID) {
		if m.Direction == helpdesk.DirectionReport && m.Source.UID == planted.uid {
			report = true
		}
	}
	if !report {
		t.Errorf("ticket %d has no report message of the planted bounce", ack.TicketID)
	}
	var notes []*helpdesk.Notification
	for _, n := range f.outbox() {
		if n.ID == ack.ID && n.Status != helpdesk.NotifyFailed {
			t.Errorf("acknowledgement after its bounce: status %s, want failed", n.Status)
		}
		notes = append(notes, n)
	}

	// Nothing was said to a bounce: no notification queued for it, none it was kept from only by
	// a rate limit, and none to the address a bounce came from.
	t.Run("no bounce answered", func(t *testing.T) {
		for uid, cf := range byUID {
			o := outcomes[uid]
			if !cf.bounce || o == nil {
				continue
			}
			answeredThis := o.Notified > 0 || len(o.Suppressed) > 0
			switch {
			case personForwards[cf.name] && !answeredThis:
				t.Errorf("%s (a person's forward, not machine mail) was not answered: outcome %s %s", cf.name, o.Action, o.Reason)
			case !personForwards[cf.name] && answeredThis:
				t.Errorf("%s answered: %d notifications queued, %q held back only by a limit (outcome %s %s)",
					cf.name, o.Notified, o.Suppressed, o.Action, o.Reason)
			}
		}
		senders := map[string]bool{} // addresses of emails that are no bounce
		for _, cf := range files {
			if !cf.bounce {
				senders[parse.Parse(cf.raw, arrival).From] = true
			}
		}
		for _, n := range notes {
			to := strings.ToLower(n.To)
			if name, ok := bounceAddrs[to]; ok && !senders[to] && !knownAddrs[to] {
				t.Errorf("notification %d (%s) to %s, who sent the bounce %s", n.ID, n.Kind, n.To, name)
			}
		}
	})
}

// countThread is the number of thread messages over all tickets.
func countThread(f *fixture) int {
	n := 0
	for _, tk := range f.tickets() {
		n += len(f.messages(tk.ID))
	}
	return n
}
