package ingest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/ingest/imapmem"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
)

// encodedWordAttack is an email of 3 kB, seen in practice, that stopped the gateway for good: depth
// multiparts inside each other, none closed, whose boundary parameters hide in RFC 2047
// encoded words (enmime decodes them; the old nesting check looked for "boundary" in the raw
// bytes). enmime's work doubles with every level: 24 levels took 21 s, 40 never finish.
func encodedWordAttack(depth int) []byte {
	var b strings.Builder
	param := func(i int) string {
		return "=?us-ascii?b?" + base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "boundary=b%d", i)) + "?="
	}
	b.WriteString("From: Bakkerij de Vries <info@bakkerijdevries.nl>\r\nTo: support@infobits.example\r\n" +
		"Subject: Kassa\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\n" +
		fmt.Sprintf("Message-ID: <nest-%d@bakkerij>\r\n", depth) +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; " + param(0) + "\r\n\r\n")
	for i := 1; i < depth; i++ {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; %s\r\n\r\n", i-1, param(i))
	}
	fmt.Fprintf(&b, "--b%d\r\nContent-Type: text/plain\r\n\r\nDe kassa start niet.\r\n", depth-1)
	return []byte(b.String())
}

// tinyPartsAttack is the other such email: n parts of a few bytes in one multipart. enmime
// walks the list of parts for every part it adds: 160,000 parts stopped ingest for 7 min 45 s.
// (The fast reader reads it in linear time; tinyPartsForEnmime is the same email as the fast
// reader leaves it to enmime.)
func tinyPartsAttack(n int) []byte {
	var b bytes.Buffer
	b.WriteString("From: Bakkerij de Vries <info@bakkerijdevries.nl>\r\nTo: support@infobits.example\r\n" +
		"Subject: Onderdelen\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\n" +
		fmt.Sprintf("Message-ID: <parts-%d@bakkerij>\r\n", n) +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n")
	for range n {
		b.WriteString("--p\r\n\r\nx\r\n")
	}
	b.WriteString("--p--\r\n")
	return b.Bytes()
}

// tinyPartsForEnmime is tinyPartsAttack without its closing delimiter: the fast reader is not
// sure of such an email and leaves it to enmime, whose cost is what the nets are for.
func tinyPartsForEnmime(n int) []byte {
	return bytes.TrimSuffix(tinyPartsAttack(n), []byte("--p--\r\n"))
}

// normalMail is the customer's next email, which must not wait behind an attack.
func normalMail(id string) []byte {
	return buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Bonprinter " + id, msgID: id + "@bakkerij", body: "De bonprinter piept."})
}

// outcomesByUID collects the outcomes among events.
func outcomesByUID(events []ingest.Event) map[imap.UID]*desk.Outcome {
	out := map[imap.UID]*desk.Outcome{}
	for _, ev := range events {
		if ev.Outcome != nil {
			out[imap.UID(ev.Outcome.UID)] = ev.Outcome
		}
	}
	return out
}

// checkHeldUnparseable fails unless o is the email raw held as unparseable with a detail
// naming why, its raw bytes kept byte for byte.
func checkHeldUnparseable(t *testing.T, f *fixture, name string, o *desk.Outcome, raw []byte, why string) {
	t.Helper()
	if o == nil || o.Action != "held" || o.Reason != helpdesk.HeldUnparseable || !strings.Contains(o.Detail, why) {
		t.Errorf("%s: outcome %+v; want held as %s, the detail naming %q", name, o, helpdesk.HeldUnparseable, why)
		return
	}
	err := f.db.View(context.Background(), func(tx *store.Tx) error {
		h, err := tx.Held(o.HeldID)
		if err != nil {
			return err
		}
		got, err := tx.Raw(h.RawSHA256)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("%s: the held email keeps %d bytes, not the %d received", name, len(got), len(raw))
		}
		if h.From != "info@bakkerijdevries.nl" {
			t.Errorf("%s: held From %q: staff must see who sent it", name, h.From)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkTaken fails unless o made a ticket.
func checkTaken(t *testing.T, name string, o *desk.Outcome) {
	t.Helper()
	if o == nil || o.Action != "new_ticket" {
		t.Errorf("%s: outcome %+v; want a new ticket: the email behind the attack is taken in", name, o)
	}
}

// TestOneEmailNeverStopsIngest: both attacks through the ingest path, on
// go-imap's server and on Dovecot. Each is held as unparseable, with the bound it exceeds in
// the detail and its raw bytes kept; the customer's next email becomes a ticket in the same
// run, and a release of the attack is refused at once. Nothing here waits on the clock: the
// structure walk refuses the attacks before the MIME parser sees them.
func TestOneEmailNeverStopsIngest(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, nil)
		nest := encodedWordAttack(40)
		parts := tinyPartsAttack(100000) // 1.1 MB; the point is the growth, not the size
		uNest, uParts := f.deliver(nest), f.deliver(parts)
		uNext := f.deliver(normalMail("na-de-aanval"))
		onceWithin(t, f)
		got := outcomesByUID(drain(f.events))
		checkHeldUnparseable(t, f, "40 levels of encoded-word boundaries", got[uNest], nest, "more than 8 nested multipart parts cut off")
		checkHeldUnparseable(t, f, "100,000 tiny parts", got[uParts], parts, "more than 1000 MIME parts")
		checkTaken(t, "the email behind them", got[uNext])
		// Releasing one reads it again, within the same bounds: it answers, it does not hang
		// (a release runs in a write transaction: a hang would stop the store).
		for _, o := range []*desk.Outcome{got[uNest], got[uParts]} {
			if o == nil {
				continue
			}
			err := f.db.Update(context.Background(), func(tx *store.Tx) error {
				_, err := f.cfg.Desk.Release(tx, o.HeldID, desk.ReleaseOptions{By: "test"})
				return err
			})
			if err == nil || !strings.Contains(err.Error(), "cannot become a ticket message: unparseable") {
				t.Errorf("release of held email %d: %v; want it refused as unparseable", o.HeldID, err)
			}
		}
	})
}

// TestParseNetsHoldAndGoOn: the nets behind the bounds, through the ingest path. With the
// structure walk switched off, the 40-level attack reaches the MIME parser: the work budget
// (its reads of the input) stops it at once and the email is held; with the budget off too,
// the deadline does (a generous 2 s: the attack would run for ever, the normal email takes
// milliseconds). The tiny-parts attack, whose cost does not show in reads, meets the deadline
// (in the shape the fast reader leaves to enmime).
// Each time the email behind is taken in.
func TestParseNetsHoldAndGoOn(t *testing.T) {
	noWalk := parse.Limits{Nesting: -1, OpenNesting: -1, Parts: -1, HeaderFields: -1}
	for _, tc := range []struct {
		name   string
		limits parse.Limits
		raw    []byte
		why    string
	}{
		{"work budget", noWalk, encodedWordAttack(40), "reads of its"},
		{"deadline", withNets(noWalk, -1, 2*time.Second), encodedWordAttack(40), "not read within 2s"},
		{"deadline, tiny parts", withNets(noWalk, -1, 2*time.Second), tinyPartsForEnmime(100000), "not read within 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newMemFixture(t, imapmem.Quirks{}, func(c *ingest.Config) { c.Parse = tc.limits })
			u := f.deliver(tc.raw)
			uNext := f.deliver(normalMail("achter-" + strings.ReplaceAll(tc.name, " ", "-")))
			onceWithin(t, f)
			got := outcomesByUID(drain(f.events))
			checkHeldUnparseable(t, f, tc.name, got[u], tc.raw, tc.why)
			checkTaken(t, "the email behind it", got[uNext])
		})
	}
}

func withNets(l parse.Limits, reads int, deadline time.Duration) parse.Limits {
	l.Reads, l.Deadline = reads, deadline
	return l
}

// TestStopDuringRunawayParse: with every bound and net off, the attack makes the parse run
// away. The poller records it once it has run longer than the suspect time (5 s); told to
// stop, it does so within its stop grace without waiting for the parse, and commits nothing
// of the batch. The next start does not read that email again: it is held as unparseable,
// raw kept, and the email behind it becomes a ticket.
func TestStopDuringRunawayParse(t *testing.T) {
	f := newMemFixture(t, imapmem.Quirks{}, func(c *ingest.Config) {
		c.Parse = parse.Limits{Nesting: -1, OpenNesting: -1, Parts: -1, HeaderFields: -1, Reads: -1, Deadline: -1}
		c.StopGrace = time.Second
	})
	attack := encodedWordAttack(40)
	u := f.deliver(attack)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- f.poller.Run(ctx) }()
	waitSuspect(t, f, u)
	uNext := f.deliver(normalMail("na-de-stop"))
	cancel()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the poller did not stop while a parse ran away: it waits for it")
	}
	if n := len(f.tickets()) + len(f.held()); n != 0 {
		t.Fatalf("%d tickets and held emails after the stop; want none: the batch was not done", n)
	}

	// The next start: bounds at their defaults (it would be held either way), and the email
	// is not parsed again — the record says so, and the detail tells staff.
	f.cfg.Parse = parse.Limits{}
	p, err := ingest.New(f.cfg, f.db, f.events)
	if err != nil {
		t.Fatal(err)
	}
	drain(f.events)
	if err := p.Once(context.Background()); err != nil {
		t.Fatalf("Once: %v", err)
	}
	got := outcomesByUID(drain(f.events))
	checkHeldUnparseable(t, f, "the runaway email", got[u], attack, "took longer than 5s and the gateway stopped before it was done; it is not read again")
	checkTaken(t, "the email behind it", got[uNext])
	checkNoReadings(t, f)
}

// waitSuspect waits until the poller has recorded uid as an email whose reading runs long.
func waitSuspect(t *testing.T, f *fixture, uid imap.UID) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		var a *helpdesk.ParseAttempts
		if err := f.db.View(context.Background(), func(tx *store.Tx) (err error) {
			a, err = tx.ParseAttempts("INBOX")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, sp := range a.Suspects {
			if sp.UID == uint32(uid) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("uid %d was not recorded as a suspect: %+v", uid, a)
		}
	}
}

// checkNoReadings fails when the record of emails being read is left with anything: every
// email is committed.
func checkNoReadings(t *testing.T, f *fixture) {
	t.Helper()
	if err := f.db.View(context.Background(), func(tx *store.Tx) error {
		a, err := tx.ParseAttempts("INBOX")
		if err == nil && !a.Empty() {
			t.Errorf("record of emails being read after everything was committed: %+v", a)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestReadAgainAloneAfterDeath: what a gateway that died while reading a batch left in the
// store — the batch on record (written before its reading), and for one email of earlier
// recoveries the mark that it was being read alone when the process died, twice. The next
// start reads the batch's emails one at a time, each in a batch and commit of its own, holds
// the one read alone at the deaths without reading it, and takes the others in. (The deaths
// themselves, by SIGKILL, are TestParseCrashHeldAtNextStart's.)
func TestReadAgainAloneAfterDeath(t *testing.T) {
	f := newMemFixture(t, imapmem.Quirks{}, nil)
	first := f.deliver(normalMail("voor"))
	f.once()
	drain(f.events)
	attack := encodedWordAttack(40)
	uA, uB := f.deliver(normalMail("een")), f.deliver(attack)
	uC := f.deliver(normalMail("twee"))
	uD := f.deliver(normalMail("daarna"))
	if err := f.db.Update(context.Background(), func(tx *store.Tx) error {
		st, err := tx.Mailbox("INBOX")
		if err != nil || st.LastUID != uint32(first) {
			return fmt.Errorf("checkpoint %+v, %v; want uid %d", st, err, first)
		}
		// The process died once in uB's parse before (on record), and again now: the mark of the
		// parse it died in is left beside the database.
		mark := fmt.Sprintf(`{"uidvalidity":%d,"uid":%d}`, st.UIDValidity, uB)
		if err := os.WriteFile(ingest.ReadingMarker(f.db.Path(), "INBOX"), []byte(mark), 0o600); err != nil {
			return err
		}
		return tx.PutParseAttempts(&helpdesk.ParseAttempts{Mailbox: "INBOX", UIDValidity: st.UIDValidity,
			Batches: []helpdesk.UIDRange{{Start: uint32(uA), Stop: uint32(uC)}}, Alone: uint32(uB), AloneDeaths: 1})
	}); err != nil {
		t.Fatal(err)
	}
	f.once()
	events := drain(f.events)
	got := outcomesByUID(events)
	checkTaken(t, "read alone before the attack", got[uA])
	checkHeldUnparseable(t, f, "read alone at two deaths", got[uB], attack, "the gateway stopped while reading it three times")
	checkTaken(t, "read alone after the attack", got[uC])
	checkTaken(t, "after the batch", got[uD])
	// One email per batch while recovering, the rest as usual.
	var batches [][2]uint32
	for _, ev := range events {
		if b := ev.Batch; b != nil && b.Step == ingest.BatchCommit {
			batches = append(batches, [2]uint32{b.First, b.Last})
		}
	}
	want := [][2]uint32{{uint32(uA), uint32(uA)}, {uint32(uB), uint32(uB)}, {uint32(uC), uint32(uC)}, {uint32(uD), uint32(uD)}}
	if fmt.Sprint(batches) != fmt.Sprint(want) {
		t.Errorf("committed batches %v, want %v: the batch of the death is read one email at a time", batches, want)
	}
	checkNoReadings(t, f)
}
