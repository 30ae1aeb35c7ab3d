package notify_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/emersion/go-message/charset"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/notify"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/store/storetest"
	"github.com/infobits/helpdesk/templates"
)

const (
	fromAddr = "helpdesk@infobits.example"
	fromName = "Infobits Helpdesk"
	custAddr = "klant@bakkerij.example"
	smtpUser = "helpdesk"
	smtpPass = "s3cret"
)

// start is the injected "now" of every test: a Monday morning in Amsterdam.
var start = time.Date(2026, 11, 30, 8, 30, 0, 0, time.UTC)

// clock is an injected Config.Now that only moves when the test says so.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	tplOnce sync.Once
	tplSet  *templates.Set
	tplErr  error
)

func loadTemplates(tb testing.TB) *templates.Set {
	tb.Helper()
	tplOnce.Do(func() { tplSet, tplErr = templates.Load("") })
	if tplErr != nil {
		tb.Fatalf("templates.Load: %v", tplErr)
	}
	return tplSet
}

// env is one worker wired to a real store and a real SMTP sink.
type env struct {
	db     *store.DB
	sink   *smtpsink.Server
	clock  *clock
	worker *notify.Worker
	cfg    notify.Config
}

// newEnv starts a sink with opts and a worker that sends to it in plaintext (loopback);
// mod may change the worker's configuration.
func newEnv(tb testing.TB, opts smtpsink.Options, mod func(*notify.Config)) *env {
	tb.Helper()
	e := &env{db: storetest.New(tb), sink: smtptest.New(tb, opts), clock: &clock{t: start}}
	e.cfg = notify.Config{
		Addr: e.sink.Addr(), TLS: helpdesk.TLSNone,
		From:      &mail.Address{Name: fromName, Address: fromAddr},
		Templates: loadTemplates(tb), TicketTag: "Infobits", SiteURL: "https://helpdesk.infobits.example",
		Timeout: 2 * time.Minute, Now: e.clock.Now, // a hang guard: tests that need it set their own
	}
	if mod != nil {
		mod(&e.cfg)
	}
	w, err := notify.New(e.cfg, e.db)
	if err != nil {
		tb.Fatalf("notify.New: %v", err)
	}
	e.worker = w
	return e
}

// ctxT is a context for one test step: a hang guard, far above what a step needs on a busy
// machine.
func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

var msgSeq int

// ackNote is an ack for ticket id to addr, as ingest would queue it.
func ackNote(id uint64, to string) *helpdesk.Notification {
	msgSeq++
	return &helpdesk.Notification{
		Kind: helpdesk.KindAck, TicketID: id, To: to, Lang: "nl", Automatic: true,
		MessageID:  fmt.Sprintf("ack-%d-%d@helpdesk.infobits.example", id, msgSeq),
		InReplyTo:  fmt.Sprintf("question-%d@bakkerij.example", id),
		References: []string{fmt.Sprintf("question-%d@bakkerij.example", id)},
		Created:    start,
		Data: helpdesk.NotifyData{CustomerName: "Bakkerij de Vries", TicketSubject: fmt.Sprintf("Vraag %d", id),
			Address: to},
	}
}

func (e *env) enqueue(tb testing.TB, ns ...*helpdesk.Notification) []uint64 {
	tb.Helper()
	err := e.db.Update(ctxT(tb), func(tx *store.Tx) error {
		for _, n := range ns {
			if err := tx.Enqueue(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("enqueue: %v", err)
	}
	ids := make([]uint64, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	return ids
}

func (e *env) note(tb testing.TB, id uint64) *helpdesk.Notification {
	tb.Helper()
	var n *helpdesk.Notification
	err := e.db.View(ctxT(tb), func(tx *store.Tx) (err error) {
		n, err = tx.Notification(id)
		return err
	})
	if err != nil {
		tb.Fatalf("notification %d: %v", id, err)
	}
	return n
}

func (e *env) outbox(tb testing.TB) []*helpdesk.Notification {
	tb.Helper()
	var out []*helpdesk.Notification
	err := e.db.View(ctxT(tb), func(tx *store.Tx) (err error) {
		out, err = tx.Outbox()
		return err
	})
	if err != nil {
		tb.Fatalf("outbox: %v", err)
	}
	return out
}

func (e *env) drain(tb testing.TB, all bool) notify.Result {
	tb.Helper()
	res, err := e.worker.Drain(ctxT(tb), all)
	if err != nil {
		tb.Fatalf("Drain: %v", err)
	}
	return res
}

// wait returns the first n messages the sink accepted, failing if they do not arrive.
func (e *env) wait(tb testing.TB, n int) []smtpsink.Message {
	tb.Helper()
	msgs, err := e.sink.Wait(ctxT(tb), n)
	if err != nil {
		tb.Fatalf("sink has %d messages, want %d: %v", len(msgs), n, err)
	}
	return msgs
}

// parsed is a received notification as a mail client shows it.
type parsed struct {
	header         gomail.Header
	fields         []string // top-level header field names, in order
	text, html     string
	partTypes      []string // "text/plain; charset=utf-8", ...
	partHeaderKeys [][]string
}

func parse(tb testing.TB, raw []byte) parsed {
	tb.Helper()
	mr, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		tb.Fatalf("parse message: %v\n%s", err, raw)
	}
	defer mr.Close()
	p := parsed{header: mr.Header}
	for f := mr.Header.Fields(); f.Next(); {
		p.fields = append(p.fields, f.Key())
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatalf("next part: %v\n%s", err, raw)
		}
		h, ok := part.Header.(*gomail.InlineHeader)
		if !ok {
			tb.Fatalf("part with header %T, want an inline part", part.Header)
		}
		ct, params, err := h.ContentType()
		if err != nil {
			tb.Fatalf("part content type: %v", err)
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			tb.Fatalf("read %s part: %v", ct, err)
		}
		p.partTypes = append(p.partTypes, ct+"; charset="+strings.ToLower(params["charset"]))
		var keys []string
		for f := h.Fields(); f.Next(); {
			keys = append(keys, f.Key())
		}
		p.partHeaderKeys = append(p.partHeaderKeys, keys)
		switch ct {
		case "text/plain":
			p.text = string(body)
		case "text/html":
			p.html = string(body)
		}
	}
	return p
}

func (p parsed) msgID() string {
	id, _ := p.header.MessageID()
	return id
}

func (p parsed) msgIDs(tb testing.TB, key string) []string {
	tb.Helper()
	ids, err := p.header.MsgIDList(key)
	if err != nil {
		tb.Fatalf("%s: %v", key, err)
	}
	return ids
}

func TestAckDelivered(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	n := &helpdesk.Notification{
		Kind: helpdesk.KindAck, TicketID: 12, To: custAddr, Lang: "nl", Automatic: true,
		MessageID: "ack-12@helpdesk.infobits.example", InReplyTo: "vraag-1@bakkerij.example",
		References: []string{"eerder-0@bakkerij.example", "vraag-1@bakkerij.example"},
		Created:    start,
		Data: helpdesk.NotifyData{CustomerName: "Bakkerij de Vries", TicketSubject: "Kassa café",
			Due: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), Address: custAddr},
	}
	ids := e.enqueue(t, n)

	if res := e.drain(t, false); res != (notify.Result{Sent: 1}) {
		t.Errorf("Drain = %+v, want 1 sent", res)
	}
	msgs := e.wait(t, 1)
	if len(msgs) != 1 {
		t.Fatalf("sink has %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != fromAddr || !slices.Equal(m.To, []string{custAddr}) {
		t.Errorf("envelope MAIL FROM %q RCPT TO %q, want %q → [%q]", m.From, m.To, fromAddr, custAddr)
	}
	if m.Helo != "infobits.example" {
		t.Errorf("EHLO name %q, want the From domain", m.Helo)
	}

	p := parse(t, m.Data)
	if subj, err := p.header.Subject(); err != nil || subj != "[Infobits #12] Ontvangen: Kassa café" {
		t.Errorf("Subject = %q, %v", subj, err)
	}
	if from, err := p.header.AddressList("From"); err != nil || len(from) != 1 ||
		from[0].Address != fromAddr || from[0].Name != fromName {
		t.Errorf("From = %v, %v", from, err)
	}
	if to, err := p.header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != custAddr {
		t.Errorf("To = %v, %v", to, err)
	}
	if date, err := p.header.Date(); err != nil || !date.Equal(start) {
		t.Errorf("Date = %v, %v; want the injected clock %v", date, err, start)
	}
	if id, err := p.header.MessageID(); err != nil || id != n.MessageID {
		t.Errorf("Message-Id = %q, %v; want %q", id, err, n.MessageID)
	}
	if got := p.msgIDs(t, "In-Reply-To"); !slices.Equal(got, []string{"vraag-1@bakkerij.example"}) {
		t.Errorf("In-Reply-To = %q", got)
	}
	if got := p.msgIDs(t, "References"); !slices.Equal(got, n.References) {
		t.Errorf("References = %q, want %q", got, n.References)
	}
	if got := p.header.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted = %q, want auto-replied", got)
	}
	if got := p.header.Get("Content-Language"); got != "nl" {
		t.Errorf("Content-Language = %q, want nl", got)
	}
	if ct, _, err := p.header.ContentType(); err != nil || ct != "multipart/alternative" {
		t.Errorf("Content-Type = %q, %v; want multipart/alternative", ct, err)
	}
	if want := []string{"text/plain; charset=utf-8", "text/html; charset=utf-8"}; !slices.Equal(p.partTypes, want) {
		t.Errorf("parts %q, want %q", p.partTypes, want)
	}
	// 12:00 UTC is 13:00 in Amsterdam (CET).
	const due = "maandag 30 november 2026 om 13:00"
	for name, body := range map[string]string{"text": p.text, "html": p.html} {
		for _, want := range []string{due, "Kassa café", "Bakkerij de Vries", "[Infobits #12]"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s part lacks %q:\n%s", name, want, body)
			}
		}
	}

	got := e.note(t, ids[0])
	if got.Status != helpdesk.NotifySent || !got.Sent.Equal(start) || got.Attempts != 1 || got.LastError != "" {
		t.Errorf("stored: status %q sent %v attempts %d error %q; want sent at %v after 1 attempt",
			got.Status, got.Sent, got.Attempts, got.LastError, start)
	}
	if got.Subject != "[Infobits #12] Ontvangen: Kassa café" {
		t.Errorf("stored subject %q", got.Subject)
	}

	// Sent is sent: another drain, even of everything, sends nothing again.
	if res := e.drain(t, true); res != (notify.Result{}) {
		t.Errorf("second Drain = %+v, want nothing", res)
	}
	if n := len(e.sink.Messages()); n != 1 {
		t.Errorf("sink has %d messages after a second drain, want 1", n)
	}
}

func TestAnswerDelivered(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	n := &helpdesk.Notification{
		Kind: helpdesk.KindAnswer, TicketID: 7, To: custAddr, Lang: "en", Automatic: false,
		MessageID: "answer-7@helpdesk.infobits.example", InReplyTo: "q-7@bakkerij.example",
		References: []string{"q-7@bakkerij.example"}, Created: start,
		Data: helpdesk.NotifyData{CustomerName: "Mr Smith", TicketSubject: "Printer offline",
			Text: "Hello,\n\nPlease restart the printer.\nKind regards", StaffName: "Jan"},
	}
	e.enqueue(t, n)
	if res := e.drain(t, false); res.Sent != 1 {
		t.Fatalf("Drain = %+v", res)
	}
	p := parse(t, e.wait(t, 1)[0].Data)
	for _, k := range []string{"Auto-Submitted", "X-Auto-Response-Suppress"} {
		if p.header.Has(k) {
			t.Errorf("a staff answer carries %s: %q", k, p.header.Get(k))
		}
	}
	if subj, _ := p.header.Subject(); subj != "Re: [Infobits #7] Printer offline" {
		t.Errorf("Subject = %q", subj)
	}
	if got := p.header.Get("Content-Language"); got != "en" {
		t.Errorf("Content-Language = %q, want en", got)
	}
	text := strings.ReplaceAll(p.text, "\r\n", "\n")
	if !strings.Contains(text, "Hello,\n\nPlease restart the printer.\nKind regards") {
		t.Errorf("text part lacks the answer:\n%s", p.text)
	}
	if !strings.Contains(p.html, "Please restart the printer.") {
		t.Errorf("html part lacks the answer:\n%s", p.html)
	}
}

func TestNoHeaderInjectionAndHTMLEscaped(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	n := ackNote(3, custAddr)
	n.Data.TicketSubject = "Kassa\r\nBcc: evil@x"
	n.Data.CustomerName = "<script>alert(1)</script>\r\nBcc: evil@x"
	ids := e.enqueue(t, n)
	if res := e.drain(t, false); res.Sent != 1 {
		t.Fatalf("Drain = %+v; stored %+v", res, e.note(t, ids[0]))
	}
	m := e.wait(t, 1)[0]
	if !slices.Equal(m.To, []string{custAddr}) {
		t.Errorf("RCPT TO %q, want only %q", m.To, custAddr)
	}
	p := parse(t, m.Data)
	want := []string{"Content-Type", "Mime-Version", "Content-Language", "X-Auto-Response-Suppress",
		"Auto-Submitted", "References", "In-Reply-To", "Message-Id", "Subject", "To", "From", "Date"}
	if !sameSet(p.fields, want) {
		t.Errorf("header fields %q, want exactly %q", p.fields, want)
	}
	for i, keys := range p.partHeaderKeys {
		if !sameSet(keys, []string{"Content-Type", "Content-Transfer-Encoding", "Content-Disposition"}) {
			t.Errorf("part %d header fields %q", i, keys)
		}
	}
	if p.header.Has("Bcc") {
		t.Errorf("Bcc header present: %q", p.header.Get("Bcc"))
	}
	// The header block of the raw message has no line that starts a Bcc field.
	head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(head), "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "bcc") {
			t.Errorf("raw header line %q", line)
		}
	}
	if subj, _ := p.header.Subject(); subj != "[Infobits #3] Ontvangen: Kassa Bcc: evil@x" {
		t.Errorf("Subject = %q, want the subject on one line", subj)
	}
	if strings.Contains(p.html, "<script>") {
		t.Errorf("html part contains an unescaped <script>:\n%s", p.html)
	}
	if !strings.Contains(p.html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("html part lacks the escaped name:\n%s", p.html)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestTemporaryFailureRetriedLater(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, func(c *notify.Config) { c.RetryMin = 5 * time.Minute })
	n := ackNote(4, custAddr)
	id := e.enqueue(t, n)[0]
	e.sink.FailNext(smtpsink.StageRcpt, 451, smtp.EnhancedCode{4, 3, 0}, "Mailbox busy", 2)

	if res := e.drain(t, false); res != (notify.Result{Retrying: 1}) {
		t.Errorf("Drain = %+v, want 1 retrying", res)
	}
	got := e.note(t, id)
	if got.Status != helpdesk.NotifyQueued || got.Attempts != 1 || !got.NextAttempt.Equal(start.Add(5*time.Minute)) {
		t.Errorf("after a 451: status %q attempts %d next %v; want queued, 1, %v",
			got.Status, got.Attempts, got.NextAttempt, start.Add(5*time.Minute))
	}
	if !strings.Contains(got.LastError, "451") || !strings.Contains(got.LastError, "Mailbox busy") {
		t.Errorf("LastError = %q, want the server's 451 reply", got.LastError)
	}

	// Not due yet: nothing is attempted.
	e.clock.Advance(5*time.Minute - time.Second)
	if res := e.drain(t, false); res != (notify.Result{}) {
		t.Errorf("Drain before the retry time = %+v, want nothing", res)
	}
	// Due: the second 451 doubles the wait.
	e.clock.Advance(time.Second)
	if res := e.drain(t, false); res != (notify.Result{Retrying: 1}) {
		t.Errorf("Drain = %+v, want 1 retrying", res)
	}
	got = e.note(t, id)
	if want := start.Add(5*time.Minute + 10*time.Minute); got.Attempts != 2 || !got.NextAttempt.Equal(want) {
		t.Errorf("after a second 451: attempts %d next %v; want 2, %v", got.Attempts, got.NextAttempt, want)
	}
	if len(e.sink.Messages()) != 0 {
		t.Fatal("sink accepted a refused message")
	}

	e.clock.Advance(10 * time.Minute)
	if res := e.drain(t, false); res != (notify.Result{Sent: 1}) {
		t.Errorf("Drain = %+v, want 1 sent", res)
	}
	m := e.wait(t, 1)[0]
	if id := parse(t, m.Data).msgID(); id != n.MessageID {
		t.Errorf("retry sent Message-Id %q, want the original %q", id, n.MessageID)
	}
	got = e.note(t, id)
	if got.Status != helpdesk.NotifySent || got.Attempts != 3 || !got.Sent.Equal(e.clock.Now()) ||
		got.LastError != "" || !got.NextAttempt.IsZero() {
		t.Errorf("after delivery: %+v", got)
	}
}

func TestPermanentFailureRecordedOthersDelivered(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	ids := e.enqueue(t, ackNote(1, "a@example.com"), ackNote(2, "b@example.com"), ackNote(3, "c@example.com"))
	e.sink.FailNext(smtpsink.StageData, 554, smtp.EnhancedCode{5, 6, 0}, "Message rejected as spam", 1)

	if res := e.drain(t, false); res != (notify.Result{Sent: 2, Failed: 1}) {
		t.Errorf("Drain = %+v, want 2 sent, 1 failed", res)
	}
	msgs := e.wait(t, 2)
	var rcpts []string
	for _, m := range msgs {
		rcpts = append(rcpts, m.To...)
	}
	if !slices.Equal(rcpts, []string{"b@example.com", "c@example.com"}) {
		t.Errorf("delivered to %q", rcpts)
	}
	failed := e.note(t, ids[0])
	if failed.Status != helpdesk.NotifyFailed || !strings.Contains(failed.LastError, "554") ||
		!strings.Contains(failed.LastError, "Message rejected as spam") || !failed.NextAttempt.IsZero() {
		t.Errorf("refused notification: status %q error %q next %v", failed.Status, failed.LastError, failed.NextAttempt)
	}
	for _, id := range ids[1:] {
		if got := e.note(t, id); got.Status != helpdesk.NotifySent {
			t.Errorf("notification %d: status %q", id, got.Status)
		}
	}
	// A failed notification is not retried, even by a drain of everything.
	if res := e.drain(t, true); res != (notify.Result{}) {
		t.Errorf("later Drain = %+v, want nothing", res)
	}
}

func TestServerDownNothingLost(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	var ns []*helpdesk.Notification
	for i := range 5 {
		ns = append(ns, ackNote(uint64(10+i), fmt.Sprintf("k%d@example.com", i)))
	}
	ids := e.enqueue(t, ns...)
	if err := e.sink.Stop(); err != nil {
		t.Fatal(err)
	}

	res, err := e.worker.Drain(ctxT(t), false)
	if err == nil {
		t.Fatalf("Drain with the server down: no error (result %+v)", res)
	}
	if !strings.Contains(err.Error(), e.sink.Addr()) {
		t.Errorf("error %q does not name the server", err)
	}
	if res.Sent != 0 {
		t.Errorf("result %+v", res)
	}
	// The notification in hand shows the failed attempt and why (`outbox list` during an
	// outage); the ones behind it were not tried.
	for i, n := range e.outbox(t) {
		switch {
		case n.Status != helpdesk.NotifyQueued:
			t.Errorf("notification %d: status %q with the server down", n.ID, n.Status)
		case i == 0 && (n.Attempts != 1 || !strings.Contains(n.LastError, e.sink.Addr()) ||
			!strings.Contains(n.LastError, "connection refused") || !n.NextAttempt.IsZero()):
			t.Errorf("notification %d: attempts %d error %q next %v; want 1 attempt, the refused connection on record, still due",
				n.ID, n.Attempts, n.LastError, n.NextAttempt)
		case i > 0 && (n.Attempts != 0 || n.LastError != ""):
			t.Errorf("notification %d: attempts %d error %q; want untried", n.ID, n.Attempts, n.LastError)
		}
	}
	h := e.worker.Health()
	if !h.FailingSince.Equal(start) || !strings.Contains(h.LastError, "connection refused") {
		t.Errorf("Health with the server down = %+v; want failing since %v, the refused connection", h, start)
	}
	// Another failed drain later: the outage still counts from its start.
	e.clock.Advance(3 * time.Minute)
	if _, err := e.worker.Drain(ctxT(t), false); err == nil {
		t.Fatal("second Drain with the server down: no error")
	}
	if got := e.note(t, ids[0]); got.Attempts != 2 {
		t.Errorf("after a second drain: attempts %d, want 2", got.Attempts)
	}
	if h := e.worker.Health(); !h.FailingSince.Equal(start) {
		t.Errorf("Health after a second failed drain = %+v; want failing since %v", h, start)
	}

	if err := e.sink.Restart(); err != nil {
		t.Fatal(err)
	}
	// Every notification is due at once: the ones tried during the outage are not held back.
	if res := e.drain(t, false); res.Sent != len(ids) {
		t.Errorf("Drain after restart = %+v, want %d sent", res, len(ids))
	}
	if h := e.worker.Health(); h != (notify.Health{}) {
		t.Errorf("Health after the server came back = %+v, want zero", h)
	}
	if res := e.drain(t, true); res != (notify.Result{}) {
		t.Errorf("another Drain = %+v, want nothing", res)
	}
	msgs := e.wait(t, len(ids))
	if len(msgs) != len(ids) {
		t.Errorf("sink has %d messages, want %d", len(msgs), len(ids))
	}
	seen := map[string]int{}
	for _, m := range msgs {
		id := parse(t, m.Data).msgID()
		seen[id]++
	}
	for _, n := range ns {
		if seen[n.MessageID] != 1 {
			t.Errorf("%s received %d times", n.MessageID, seen[n.MessageID])
		}
		if got := e.note(t, n.ID); got.Status != helpdesk.NotifySent {
			t.Errorf("notification %d: status %q", n.ID, got.Status)
		}
	}
}

// A server that goes away between two messages of one drain (a restart, an idle timeout):
// the message that met the dead connection is retried, not failed, and the drain goes on
// over a new connection.
func TestConnectionLostMidDrain(t *testing.T) {
	var e *env
	var once sync.Once
	e = newEnv(t, smtpsink.Options{}, func(c *notify.Config) {
		c.Now = func() time.Time {
			// Restart the server as soon as it has accepted the first message: the
			// worker's open connection dies under it.
			if len(e.sink.Messages()) == 1 {
				once.Do(func() {
					if err := e.sink.Restart(); err != nil {
						t.Errorf("Restart: %v", err)
					}
				})
			}
			return e.clock.Now()
		}
	})
	ids := e.enqueue(t, ackNote(1, "a@example.com"), ackNote(2, "b@example.com"), ackNote(3, "c@example.com"))
	res, err := e.worker.Drain(ctxT(t), false)
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if res != (notify.Result{Sent: 2, Retrying: 1}) {
		t.Errorf("Drain = %+v, want 2 sent, 1 retrying", res)
	}
	if got := e.note(t, ids[1]); got.Status != helpdesk.NotifyQueued || got.LastError == "" {
		t.Errorf("message on the dead connection: status %q error %q; want queued for a retry", got.Status, got.LastError)
	}
	if n := e.sink.Connections(); n != 2 {
		t.Errorf("%d connections, want 2 (one redial)", n)
	}
	if res := e.drain(t, true); res != (notify.Result{Sent: 1}) {
		t.Errorf("retry Drain = %+v", res)
	}
	for _, id := range ids {
		if got := e.note(t, id); got.Status != helpdesk.NotifySent {
			t.Errorf("notification %d: %q", id, got.Status)
		}
	}
}

// 421 means the server is closing the channel (RFC 5321 §3.8): the drain stops rather than
// burning an attempt of every queued notification on it.
func TestServiceUnavailableStopsDrain(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	ids := e.enqueue(t, ackNote(1, "a@example.com"), ackNote(2, "b@example.com"), ackNote(3, "c@example.com"))
	e.sink.SetDown(true)
	if _, err := e.worker.Drain(ctxT(t), false); err == nil || !strings.Contains(err.Error(), "421") {
		t.Errorf("Drain against a 421 server: err %v, want one naming the 421", err)
	}
	attempted := 0
	for _, id := range ids {
		got := e.note(t, id)
		if got.Status != helpdesk.NotifyQueued {
			t.Errorf("notification %d: %q", id, got.Status)
		}
		attempted += got.Attempts
	}
	if attempted > 1 {
		t.Errorf("%d attempts used up on a server that said 421, want at most 1", attempted)
	}
	e.sink.SetDown(false)
	if res := e.drain(t, true); res.Sent != 3 {
		t.Errorf("Drain after recovery = %+v", res)
	}
}

func TestConnectionReused(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	var ns []*helpdesk.Notification
	for i := range 50 {
		ns = append(ns, ackNote(uint64(100+i), fmt.Sprintf("k%d@example.com", i)))
	}
	e.enqueue(t, ns...)
	if res := e.drain(t, false); res != (notify.Result{Sent: 50}) {
		t.Errorf("Drain = %+v, want 50 sent", res)
	}
	msgs := e.wait(t, 50)
	if len(msgs) != 50 {
		t.Errorf("sink has %d messages", len(msgs))
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("k%d@example.com", i); !slices.Equal(m.To, []string{want}) {
			t.Errorf("message %d to %q, want %q (queue order)", i, m.To, want)
		}
	}
	if n := e.sink.Connections(); n != 1 {
		t.Errorf("50 notifications over %d connections, want 1", n)
	}
}

func TestStartTLSAuth(t *testing.T) {
	tlsOpts := smtpsink.Options{TLS: true, User: smtpUser, Password: smtpPass}
	t.Run("ok", func(t *testing.T) {
		e := newEnv(t, tlsOpts, nil)
		// The sink's certificate is known only once it runs: make the worker now.
		w, err := notify.New(withTLS(e.cfg, e.sink, smtpPass), e.db)
		if err != nil {
			t.Fatal(err)
		}
		id := e.enqueue(t, ackNote(1, custAddr))[0]
		res, err := w.Drain(ctxT(t), false)
		if err != nil || res != (notify.Result{Sent: 1}) {
			t.Fatalf("Drain = %+v, %v", res, err)
		}
		m := e.wait(t, 1)[0]
		if !m.TLS || m.User != smtpUser {
			t.Errorf("message sent with TLS %v as user %q; want TLS as %q", m.TLS, m.User, smtpUser)
		}
		if got := e.note(t, id); got.Status != helpdesk.NotifySent {
			t.Errorf("status %q", got.Status)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		e := newEnv(t, tlsOpts, nil)
		w, err := notify.New(withTLS(e.cfg, e.sink, "wrong"), e.db)
		if err != nil {
			t.Fatal(err)
		}
		id := e.enqueue(t, ackNote(1, custAddr))[0]
		_, err = w.Drain(ctxT(t), false)
		if err == nil || !strings.Contains(err.Error(), "refused login") || !strings.Contains(err.Error(), smtpUser) ||
			!strings.Contains(err.Error(), "535") {
			t.Fatalf("Drain with a wrong password: %v; want an error naming the refused login", err)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("error %q shows the password", err)
		}
		if got := e.note(t, id); got.Status != helpdesk.NotifyQueued || got.Attempts != 0 ||
			!strings.Contains(got.LastError, "535") {
			t.Errorf("status %q attempts %d error %q; want queued, no attempt, the 535 on record",
				got.Status, got.Attempts, got.LastError)
		}
		if n := len(e.sink.Messages()); n != 0 {
			t.Errorf("%d messages sent without login", n)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		e := newEnv(t, tlsOpts, nil)
		cfg := withTLS(e.cfg, e.sink, smtpPass)
		cfg.TLSConfig = nil // system roots do not trust the sink's self-signed certificate
		w, err := notify.New(cfg, e.db)
		if err != nil {
			t.Fatal(err)
		}
		id := e.enqueue(t, ackNote(1, custAddr))[0]
		if _, err := w.Drain(ctxT(t), false); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Drain to an untrusted server: %v; want a certificate error", err)
		}
		if got := e.note(t, id); got.Status != helpdesk.NotifyQueued || got.Attempts != 1 || !strings.Contains(got.LastError, "certificate") {
			t.Errorf("status %q attempts %d error %q; want queued, the failed attempt and the certificate error on record",
				got.Status, got.Attempts, got.LastError)
		}
	})
}

func withTLS(cfg notify.Config, sink *smtpsink.Server, password string) notify.Config {
	cfg.TLS = helpdesk.TLSStart
	cfg.TLSConfig = sink.ClientTLSConfig()
	cfg.User, cfg.Password = smtpUser, password
	return cfg
}

func TestRunDeliversOnEnqueue(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.worker.Run(ctx) }()

	// Without the wake-up after commit the worker would sleep for a minute between looks at
	// the outbox; each notification must arrive well before that (30 s: room for a busy
	// machine, and still half the minute).
	for i := 1; i <= 3; i++ {
		e.enqueue(t, ackNote(uint64(i), fmt.Sprintf("k%d@example.com", i)))
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		msgs, err := e.sink.Wait(wctx, i)
		wcancel()
		if err != nil {
			t.Fatalf("notification %d not delivered by Run within 30 s, before its minute's look at the outbox (sink has %d): %v", i, len(msgs), err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
	for _, n := range e.outbox(t) {
		if n.Status != helpdesk.NotifySent || !n.Sent.Equal(start) {
			t.Errorf("notification %d: status %q sent %v", n.ID, n.Status, n.Sent)
		}
	}
}

// logTap is a slog handler that passes the messages of records at or above Warn to a channel.
type logTap struct{ ch chan string }

func (h logTap) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h logTap) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.ch <- r.Message:
	default:
	}
	return nil
}
func (h logTap) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logTap) WithGroup(string) slog.Handler      { return h }

// With the server unreachable, Run backs off instead of redialling in a loop, and the
// queued notifications keep their place: the first shows the failed attempts and the error,
// the others are untouched, nothing is lost.
func TestRunBacksOffWhileServerDown(t *testing.T) {
	warn := make(chan string, 100)
	e := newEnv(t, smtpsink.Options{}, func(c *notify.Config) { c.Logger = slog.New(logTap{ch: warn}) })
	if err := e.sink.Stop(); err != nil {
		t.Fatal(err)
	}
	var ns []*helpdesk.Notification
	for i := range 20 {
		ns = append(ns, ackNote(uint64(i+1), fmt.Sprintf("k%d@example.com", i)))
	}
	e.enqueue(t, ns...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.worker.Run(ctx) }()
	select {
	case <-warn:
	case <-ctxT(t).Done():
		t.Fatal("Run logged no warning with the server down")
	}
	// A worker that redials in a loop warns again within milliseconds; one that backs off
	// (RetryMin, one minute here) does not.
	quiet, qcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer qcancel()
	select {
	case msg := <-warn:
		t.Errorf("second warning %q right after the first: Run is not backing off", msg)
	case <-quiet.Done():
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
	for i, n := range e.outbox(t) {
		switch {
		case n.Status != helpdesk.NotifyQueued:
			t.Errorf("notification %d: status %q while the server is unreachable", n.ID, n.Status)
		case i == 0 && (n.Attempts != 1 || !strings.Contains(n.LastError, "connection refused")):
			t.Errorf("notification %d: attempts %d error %q; want the one failed attempt and its error",
				n.ID, n.Attempts, n.LastError)
		case i > 0 && (n.Attempts != 0 || n.LastError != ""):
			t.Errorf("notification %d: attempts %d error %q; want untouched", n.ID, n.Attempts, n.LastError)
		}
	}

	// The server comes back: the queue goes out in full, no notification held back.
	if err := e.sink.Restart(); err != nil {
		t.Fatal(err)
	}
	e.drain(t, false)
	if n := len(e.wait(t, 20)); n != 20 {
		t.Errorf("sink has %d", n)
	}
}

func TestGiveUpAfter(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, func(c *notify.Config) { c.GiveUpAfter = 72 * time.Hour })
	old := ackNote(1, "a@example.com")
	old.Created = start.Add(-73 * time.Hour)
	fresh := ackNote(2, "b@example.com")
	fresh.Created = time.Time{} // queued without a creation time: counts from its first attempt
	ids := e.enqueue(t, old, fresh)
	e.sink.FailNext(smtpsink.StageRcpt, 450, smtp.EnhancedCode{4, 2, 1}, "Try later", 2)

	if res := e.drain(t, false); res != (notify.Result{Failed: 1, Retrying: 1}) {
		t.Errorf("Drain = %+v, want 1 failed, 1 retrying", res)
	}
	got := e.note(t, ids[0])
	if got.Status != helpdesk.NotifyFailed || !strings.Contains(got.LastError, "gave up") ||
		!strings.Contains(got.LastError, "450") {
		t.Errorf("old notification: status %q error %q; want failed, gave up, with the 450", got.Status, got.LastError)
	}
	if got := e.note(t, ids[1]); got.Status != helpdesk.NotifyQueued {
		t.Errorf("notification without a creation time: status %q error %q; want queued", got.Status, got.LastError)
	}
}

func TestNewRefusesPlaintextToRemote(t *testing.T) {
	db := storetest.New(t)
	base := notify.Config{TLS: helpdesk.TLSNone, From: &mail.Address{Address: fromAddr}, Templates: loadTemplates(t)}
	for addr, ok := range map[string]bool{
		"smtp.example.com:25": false,
		"192.0.2.1:25":        false,
		"[2001:db8::1]:25":    false,
		"127.0.0.1:25":        true,
		"[::1]:25":            true,
		"localhost:2525":      true,
	} {
		cfg := base
		cfg.Addr = addr
		_, err := notify.New(cfg, db)
		if ok && err != nil {
			t.Errorf("tls=none to %s: %v", addr, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "loopback")) {
			t.Errorf("tls=none to %s: err %v, want a refusal", addr, err)
		}
	}
	for name, cfg := range map[string]notify.Config{
		"no address":   {From: base.From, Templates: base.Templates},
		"no from":      {Addr: "smtp.example.com:587", Templates: base.Templates},
		"no templates": {Addr: "smtp.example.com:587", From: base.From},
		"bad tls mode": {Addr: "smtp.example.com:587", From: base.From, Templates: base.Templates, TLS: "ssl"},
	} {
		if _, err := notify.New(cfg, db); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := notify.New(notify.Config{Addr: "smtp.example.com:587", From: base.From, Templates: base.Templates}, db); err != nil {
		t.Errorf("starttls to a remote server: %v", err)
	}
}

// A notification that cannot be rendered or addressed fails at once, without a connection.
func TestUndeliverableFailsWithoutRetry(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	bad := ackNote(1, "not an address")
	unknown := ackNote(2, "b@example.com")
	unknown.Kind = "no_such_kind"
	ids := e.enqueue(t, bad, unknown)
	if res := e.drain(t, false); res != (notify.Result{Failed: 2}) {
		t.Errorf("Drain = %+v, want 2 failed", res)
	}
	for _, id := range ids {
		if got := e.note(t, id); got.Status != helpdesk.NotifyFailed || got.LastError == "" {
			t.Errorf("notification %d: status %q error %q", id, got.Status, got.LastError)
		}
	}
	if n := e.sink.Connections(); n != 0 {
		t.Errorf("%d connections for nothing to send", n)
	}
}

// An unknown language falls back to Dutch, and the message says so.
func TestUnknownLanguageFallsBack(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	n := ackNote(5, custAddr)
	n.Lang = "fr"
	e.enqueue(t, n)
	e.drain(t, false)
	p := parse(t, e.wait(t, 1)[0].Data)
	if got := p.header.Get("Content-Language"); got != "nl" {
		t.Errorf("Content-Language = %q for a Dutch text", got)
	}
	if subj, _ := p.header.Subject(); !strings.Contains(subj, "Ontvangen") {
		t.Errorf("Subject %q", subj)
	}
}

// The envelope carries the bare address even when the outbox row has a display name, and a
// notification queued without a usable Message-ID gets one, kept for its retries.
func TestEnvelopeAndMessageID(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	named := ackNote(1, "Bakkerij de Vries <"+custAddr+">")
	named.MessageID = "<ack-1@helpdesk.infobits.example>"
	noID := ackNote(2, "b@example.com")
	noID.MessageID = ""
	ids := e.enqueue(t, named, noID)
	if res := e.drain(t, false); res != (notify.Result{Sent: 2}) {
		t.Fatalf("Drain = %+v; %+v", res, e.outbox(t))
	}
	msgs := e.wait(t, 2)
	if !slices.Equal(msgs[0].To, []string{custAddr}) {
		t.Errorf("RCPT TO %q, want %q", msgs[0].To, custAddr)
	}
	if id := parse(t, msgs[0].Data).msgID(); id != "ack-1@helpdesk.infobits.example" {
		t.Errorf("Message-Id %q", id)
	}
	id := parse(t, msgs[1].Data).msgID()
	if !strings.HasSuffix(id, "@infobits.example") || len(id) < 20 {
		t.Errorf("generated Message-Id %q", id)
	}
	if got := e.note(t, ids[1]); got.MessageID != id {
		t.Errorf("stored Message-ID %q, sent %q", got.MessageID, id)
	}
}

func BenchmarkDrain(b *testing.B) {
	const batch = 1000
	e := newEnv(b, smtpsink.Options{}, nil)
	ns := make([]*helpdesk.Notification, batch)
	sent := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range ns {
			ns[j] = ackNote(uint64(j+1), fmt.Sprintf("k%d@example.com", j))
		}
		e.enqueue(b, ns...)
		b.StartTimer()
		res, err := e.worker.Drain(context.Background(), false)
		if err != nil || res.Sent != batch {
			b.Fatalf("Drain = %+v, %v", res, err)
		}
		sent += res.Sent
	}
	b.StopTimer()
	// None lost, none doubled: every round's 1,000 recipients got exactly one each.
	perRcpt := map[string]int{}
	for _, m := range e.sink.Messages() {
		for _, to := range m.To {
			perRcpt[to]++
		}
	}
	if len(perRcpt) != batch {
		b.Fatalf("sink has mail for %d recipients, want %d", len(perRcpt), batch)
	}
	for to, n := range perRcpt {
		if n != b.N {
			b.Fatalf("%s got %d notifications in %d rounds, want one per round", to, n, b.N)
		}
	}
	conns := e.sink.Connections()
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "notifications/s")
	b.ReportMetric(float64(conns)/float64(b.N), "connections/round")
	fmt.Printf("| outbox drain | %d notifications × %d rounds | %.0f notifications/s | %d SMTP connection(s) in all | none lost or doubled |\n",
		batch, b.N, float64(sent)/b.Elapsed().Seconds(), conns)
	if err := e.sink.Close(); err != nil { // drop the recorded messages before the next run
		b.Fatal(err)
	}
}

// newWorker makes another worker on e's store, with e's configuration changed by mod.
func (e *env) newWorker(tb testing.TB, mod func(*notify.Config)) *notify.Worker {
	tb.Helper()
	cfg := e.cfg
	if mod != nil {
		mod(&cfg)
	}
	w, err := notify.New(cfg, e.db)
	if err != nil {
		tb.Fatalf("notify.New: %v", err)
	}
	return w
}

// logRecord is one record of a logRecorder, its attributes as text.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// logRecorder is a slog handler that passes records at or above level to a channel.
type logRecorder struct {
	level slog.Level
	ch    chan logRecord
	attrs []slog.Attr
}

func newLogRecorder(level slog.Level) *logRecorder {
	return &logRecorder{level: level, ch: make(chan logRecord, 100)}
}

func (h *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	select {
	case h.ch <- rec:
	default:
	}
	return nil
}
func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{level: h.level, ch: h.ch, attrs: append(slices.Clone(h.attrs), as...)}
}
func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// records returns the records logged so far.
func (h *logRecorder) records() []logRecord {
	var out []logRecord
	for {
		select {
		case r := <-h.ch:
			out = append(out, r)
		default:
			return out
		}
	}
}

// assertHeld checks that every one of ids is still queued with no attempt counted, and
// that the first carries the server's refusal in its LastError (for `ticket show`).
func (e *env) assertHeld(tb testing.TB, ids []uint64, reply string) {
	tb.Helper()
	for i, id := range ids {
		got := e.note(tb, id)
		if got.Status != helpdesk.NotifyQueued || got.Attempts != 0 {
			tb.Errorf("notification %d: status %q attempts %d; want queued, no attempt counted",
				id, got.Status, got.Attempts)
		}
		if i == 0 && !strings.Contains(got.LastError, reply) {
			tb.Errorf("notification %d: LastError %q, want the server's %s", id, got.LastError, reply)
		}
	}
}

// H4: a server that requires AUTH refuses MAIL with 530 5.7.0 when the worker has no
// user: that is the configuration, not the messages. The drain stops with an error (so
// `serve -once` exits non-zero), the outbox stays queued, and once the credentials are
// configured everything goes out.
func TestAuthRequiredKeepsOutboxQueued(t *testing.T) {
	rec := newLogRecorder(slog.LevelError)
	e := newEnv(t, smtpsink.Options{User: smtpUser, Password: smtpPass, AllowInsecureAuth: true},
		func(c *notify.Config) { c.Logger = slog.New(rec) })
	ids := e.enqueue(t, ackNote(1, "a@example.com"), ackNote(2, "b@example.com"), ackNote(3, "c@example.com"))

	res, err := e.worker.Drain(ctxT(t), false)
	if err == nil || !strings.Contains(err.Error(), "530") || !strings.Contains(err.Error(), e.sink.Addr()) {
		t.Fatalf("Drain without a user against a server that requires AUTH: %v; want an error naming the 530 and the server", err)
	}
	if !strings.Contains(err.Error(), "smtp_user") {
		t.Errorf("error %q does not tell what to configure", err)
	}
	if res != (notify.Result{}) {
		t.Errorf("Drain = %+v, want nothing counted", res)
	}
	e.assertHeld(t, ids, "530")
	if n := e.sink.Connections(); n != 1 {
		t.Errorf("%d connections, want 1: the drain stops at the first refusal", n)
	}
	recs := rec.records()
	if len(recs) != 1 || recs[0].attrs["server"] != e.sink.Addr() || !strings.Contains(recs[0].attrs["reply"], "530 5.7.0") {
		t.Errorf("logged %+v; want one Error naming the server and the 530 5.7.0 reply", recs)
	}

	w := e.newWorker(t, func(c *notify.Config) { c.User, c.Password = smtpUser, smtpPass })
	if res, err := w.Drain(ctxT(t), false); err != nil || res != (notify.Result{Sent: 3}) {
		t.Fatalf("Drain with credentials = %+v, %v; want 3 sent", res, err)
	}
	for _, id := range ids {
		if got := e.note(t, id); got.Status != helpdesk.NotifySent || got.Attempts != 1 || got.LastError != "" {
			t.Errorf("notification %d: status %q attempts %d error %q; want sent at the first attempt",
				id, got.Status, got.Attempts, got.LastError)
		}
	}
}

// H4: refusals that concern the account or the server, whatever the message, keep the
// outbox queued and stop the drain with an error.
func TestConfigRefusalKeepsOutboxQueued(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stage    smtpsink.Stage
		code     int
		enhanced smtp.EnhancedCode
		msg      string
	}{
		{"sender not owned", smtpsink.StageMail, 553, smtp.EnhancedCode{5, 7, 1}, "Sender address not owned by user"},
		{"sender refused", smtpsink.StageMail, 550, smtp.EnhancedCode{5, 1, 8}, "Bad sender address domain"},
		{"auth required at RCPT", smtpsink.StageRcpt, 530, smtp.EnhancedCode{5, 7, 0}, "Authentication required"},
		{"auth at RCPT by enhanced code", smtpsink.StageRcpt, 550, smtp.EnhancedCode{5, 7, 0}, "Must authenticate"},
		{"credentials at DATA", smtpsink.StageData, 554, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, smtpsink.Options{}, nil)
			ids := e.enqueue(t, ackNote(1, "a@example.com"), ackNote(2, "b@example.com"), ackNote(3, "c@example.com"))
			e.sink.FailNext(tc.stage, tc.code, tc.enhanced, tc.msg, 1)
			reply := fmt.Sprintf("%d %d.%d.%d %s", tc.code, tc.enhanced[0], tc.enhanced[1], tc.enhanced[2], tc.msg)

			res, err := e.worker.Drain(ctxT(t), false)
			if err == nil || !strings.Contains(err.Error(), reply) || !strings.Contains(err.Error(), e.sink.Addr()) ||
				!strings.Contains(err.Error(), tc.stage.String()) {
				t.Fatalf("Drain: %v; want an error naming the server, the %s stage and %q", err, tc.stage, reply)
			}
			if res != (notify.Result{}) {
				t.Errorf("Drain = %+v, want nothing counted", res)
			}
			e.assertHeld(t, ids, reply)
			if n := len(e.sink.Messages()); n != 0 {
				t.Errorf("%d messages sent after the refusal, want the drain stopped", n)
			}

			// The server is fixed: everything goes out, and the refusal costs no attempt.
			if res := e.drain(t, false); res != (notify.Result{Sent: 3}) {
				t.Errorf("Drain after the fix = %+v, want 3 sent", res)
			}
			for _, id := range ids {
				if got := e.note(t, id); got.Status != helpdesk.NotifySent || got.Attempts != 1 {
					t.Errorf("notification %d: status %q attempts %d", id, got.Status, got.Attempts)
				}
			}
		})
	}
}

// H4: refusals of one message (its mailbox, its content) fail that notification; the
// others go out and the drain ends without an error.
func TestMessageRefusalFailsOnlyThatOne(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stage    smtpsink.Stage
		code     int
		enhanced smtp.EnhancedCode
		msg      string
	}{
		{"user unknown", smtpsink.StageRcpt, 550, smtp.EnhancedCode{5, 1, 1}, "User unknown"},
		{"mailbox disabled", smtpsink.StageRcpt, 550, smtp.EnhancedCode{5, 2, 1}, "Mailbox disabled"},
		{"no enhanced code", smtpsink.StageRcpt, 550, smtp.EnhancedCode{}, "No such user"},
		{"recipient policy", smtpsink.StageRcpt, 554, smtp.EnhancedCode{5, 7, 1}, "Recipient address rejected"},
		{"content", smtpsink.StageData, 554, smtp.EnhancedCode{5, 6, 0}, "Message content rejected"},
		{"too big", smtpsink.StageData, 552, smtp.EnhancedCode{5, 3, 4}, "Message too big"},
		{"spam", smtpsink.StageData, 550, smtp.EnhancedCode{5, 7, 1}, "Message rejected as spam"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, smtpsink.Options{}, nil)
			ids := e.enqueue(t, ackNote(1, "a@example.com"), ackNote(2, "b@example.com"), ackNote(3, "c@example.com"))
			e.sink.FailNext(tc.stage, tc.code, tc.enhanced, tc.msg, 1)

			res, err := e.worker.Drain(ctxT(t), false)
			if err != nil || res != (notify.Result{Sent: 2, Failed: 1}) {
				t.Fatalf("Drain = %+v, %v; want 2 sent, 1 failed, no error", res, err)
			}
			failed := e.note(t, ids[0])
			if failed.Status != helpdesk.NotifyFailed || failed.Attempts != 1 ||
				!strings.Contains(failed.LastError, strconv.Itoa(tc.code)) || !strings.Contains(failed.LastError, tc.msg) ||
				!strings.Contains(failed.LastError, tc.stage.String()) {
				t.Errorf("refused notification: status %q attempts %d error %q; want failed with the %s reply",
					failed.Status, failed.Attempts, failed.LastError, tc.stage)
			}
			for _, id := range ids[1:] {
				if got := e.note(t, id); got.Status != helpdesk.NotifySent {
					t.Errorf("notification %d: status %q", id, got.Status)
				}
			}
		})
	}
}

// H4: a server that refuses to relay for the account refuses every recipient, which looks
// like a series of bad mailboxes. Three different recipients all refused, none accepted:
// the drain stops and they stay queued.
func TestEveryRecipientRefusedIsRelayDenied(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	ids := e.enqueue(t, ackNote(1, "a@example.com"), ackNote(2, "b@example.net"), ackNote(3, "c@example.org"),
		ackNote(4, "d@example.com"))
	e.sink.FailNext(smtpsink.StageRcpt, 554, smtp.EnhancedCode{5, 7, 1}, "Relay access denied", 3)

	res, err := e.worker.Drain(ctxT(t), false)
	if err == nil || !strings.Contains(err.Error(), "554 5.7.1 Relay access denied") ||
		!strings.Contains(err.Error(), "every recipient") || !strings.Contains(err.Error(), e.sink.Addr()) {
		t.Fatalf("Drain: %v; want an error naming the relay refusal and the server", err)
	}
	if res != (notify.Result{}) {
		t.Errorf("Drain = %+v, want nothing counted", res)
	}
	e.assertHeld(t, ids, "Relay access denied")
	for _, id := range ids[:3] {
		if got := e.note(t, id); !strings.Contains(got.LastError, "554") {
			t.Errorf("notification %d: LastError %q", id, got.LastError)
		}
	}
	if got := e.note(t, ids[3]); got.LastError != "" {
		t.Errorf("notification after the stop: LastError %q, want untouched", got.LastError)
	}
	if res := e.drain(t, false); res != (notify.Result{Sent: 4}) {
		t.Errorf("Drain after the fix = %+v, want 4 sent", res)
	}
}

// The relay check does not mistake bad mailboxes, or one bad mailbox written to three
// times, for a relay refusal.
func TestRecipientRefusalsThatAreNotRelayDenied(t *testing.T) {
	t.Run("unknown users", func(t *testing.T) {
		e := newEnv(t, smtpsink.Options{}, nil)
		ids := e.enqueue(t, ackNote(1, "a@example.com"), ackNote(2, "b@example.net"), ackNote(3, "c@example.org"))
		e.sink.FailNext(smtpsink.StageRcpt, 550, smtp.EnhancedCode{5, 1, 1}, "User unknown", 3)
		if res := e.drain(t, false); res != (notify.Result{Failed: 3}) {
			t.Errorf("Drain = %+v, want 3 failed", res)
		}
		for _, id := range ids {
			if got := e.note(t, id); got.Status != helpdesk.NotifyFailed {
				t.Errorf("notification %d: %q", id, got.Status)
			}
		}
	})
	t.Run("one address", func(t *testing.T) {
		e := newEnv(t, smtpsink.Options{}, nil)
		ids := e.enqueue(t, ackNote(1, custAddr), ackNote(2, custAddr), ackNote(3, custAddr))
		e.sink.FailNext(smtpsink.StageRcpt, 554, smtp.EnhancedCode{5, 7, 1}, "Recipient rejected", 3)
		if res := e.drain(t, false); res != (notify.Result{Failed: 3}) {
			t.Errorf("Drain = %+v, want 3 failed", res)
		}
		for _, id := range ids {
			if got := e.note(t, id); got.Status != helpdesk.NotifyFailed || got.Attempts != 1 {
				t.Errorf("notification %d: status %q attempts %d", id, got.Status, got.Attempts)
			}
		}
	})
	t.Run("refused before an accepted one", func(t *testing.T) {
		e := newEnv(t, smtpsink.Options{}, nil)
		ids := e.enqueue(t, ackNote(1, "a@example.com"), ackNote(2, "b@example.net"), ackNote(3, "c@example.org"),
			ackNote(4, "d@example.com"))
		e.sink.FailNext(smtpsink.StageRcpt, 554, smtp.EnhancedCode{5, 7, 1}, "Recipient rejected", 2)
		if res := e.drain(t, false); res != (notify.Result{Sent: 2, Failed: 2}) {
			t.Errorf("Drain = %+v, want 2 sent, 2 failed", res)
		}
		for i, id := range ids {
			want := helpdesk.NotifySent
			if i < 2 {
				want = helpdesk.NotifyFailed
			}
			if got := e.note(t, id); got.Status != want {
				t.Errorf("notification %d: %q, want %q", id, got.Status, want)
			}
		}
	})
}

// H4: after a configuration refusal Run backs off (RetryMin, a minute here) instead of
// asking the server again at once.
func TestRunBacksOffAfterConfigRefusal(t *testing.T) {
	rec := newLogRecorder(slog.LevelError)
	e := newEnv(t, smtpsink.Options{User: smtpUser, Password: smtpPass, AllowInsecureAuth: true},
		func(c *notify.Config) { c.Logger = slog.New(rec) })
	ids := e.enqueue(t, ackNote(1, "a@example.com"), ackNote(2, "b@example.com"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.worker.Run(ctx) }()
	select {
	case r := <-rec.ch:
		if !strings.Contains(r.attrs["reply"], "530") {
			t.Errorf("logged %+v, want the 530", r)
		}
	case <-ctxT(t).Done():
		t.Fatal("Run logged no error against a server that requires AUTH")
	}
	quiet, qcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer qcancel()
	select {
	case r := <-rec.ch:
		t.Errorf("second error %q right after the first: Run is not backing off", r.msg)
	case <-quiet.Done():
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
	if n := e.sink.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	e.assertHeld(t, ids, "530")
}

// stalledServer accepts TCP connections on 127.0.0.1 and never says anything.
func stalledServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// drainAsync runs Drain in the background and returns its outcome, failing the test if it
// does not return within 60 s: a hang guard, below go-smtp's own timeouts (minutes) and the
// worker's Timeout in these tests (2 min), so that only what the test means can end it.
func drainAsync(tb testing.TB, w *notify.Worker, ctx context.Context) (notify.Result, error) {
	tb.Helper()
	type outcome struct {
		res notify.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := w.Drain(ctx, false)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-time.After(60 * time.Second):
		tb.Fatal("Drain hangs against a stalled server")
		return notify.Result{}, nil
	}
}

// M2: a server that accepts the connection and never greets holds Drain only until its
// context ends — in every TLS mode: the greeting, EHLO, STARTTLS and the TLS handshake
// all honour the context.
func TestDrainHonoursContextAgainstStalledServer(t *testing.T) {
	for _, mode := range []string{helpdesk.TLSNone, helpdesk.TLSStart, helpdesk.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, smtpsink.Options{}, nil) // Timeout 2 min: only the context can end it
			id := e.enqueue(t, ackNote(1, custAddr))[0]
			w := e.newWorker(t, func(c *notify.Config) { c.Addr, c.TLS = stalledServer(t), mode })

			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			res, err := drainAsync(t, w, ctx)
			if ctx.Err() == nil {
				t.Errorf("Drain returned (%+v, %v) before its context ended", res, err)
			}
			if err == nil || res != (notify.Result{}) {
				t.Errorf("Drain = %+v, %v; want an error and nothing counted", res, err)
			}
			if got := e.note(t, id); got.Status != helpdesk.NotifyQueued || got.Attempts != 0 {
				t.Errorf("status %q attempts %d; want queued, no attempt counted", got.Status, got.Attempts)
			}
		})
	}
}

// M2: the login phase as a whole is bounded by Config.Timeout, not by go-smtp's 5-minute
// default (which DialStartTLS used for the greeting, EHLO and STARTTLS).
func TestLoginPhaseHonoursTimeout(t *testing.T) {
	for _, mode := range []string{helpdesk.TLSNone, helpdesk.TLSStart, helpdesk.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, smtpsink.Options{}, nil)
			id := e.enqueue(t, ackNote(1, custAddr))[0]
			addr := stalledServer(t)
			w := e.newWorker(t, func(c *notify.Config) { c.Addr, c.TLS, c.Timeout = addr, mode, 200*time.Millisecond })

			res, err := drainAsync(t, w, ctxT(t))
			if err == nil || !strings.Contains(err.Error(), addr) {
				t.Errorf("Drain = %+v, %v; want an error naming the server", res, err)
			}
			if got := e.note(t, id); got.Status != helpdesk.NotifyQueued || got.Attempts != 1 || !strings.Contains(got.LastError, addr) {
				t.Errorf("status %q attempts %d error %q; want queued, the failed attempt and its error on record",
					got.Status, got.Attempts, got.LastError)
			}
		})
	}
}

// scriptedServer is a minimal SMTP server on 127.0.0.1 that accepts every command and,
// after the message of a DATA, calls afterData instead of replying.
func scriptedServer(tb testing.TB, afterData func(w io.Writer)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				fmt.Fprint(c, "220 scripted ESMTP\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); verb {
					case "EHLO", "HELO":
						fmt.Fprint(c, "250-scripted\r\n250 8BITMIME\r\n")
					case "DATA":
						fmt.Fprint(c, "354 Go ahead\r\n")
						for line != ".\r\n" {
							if line, err = r.ReadString('\n'); err != nil {
								return
							}
						}
						afterData(c)
					case "QUIT":
						fmt.Fprint(c, "221 Bye\r\n")
						return
					default:
						fmt.Fprint(c, "250 OK\r\n")
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// M2: a transaction stuck after the message (the server never answers the end of DATA)
// ends soon after the context does, and the notification stays queued: a send cut off by
// the context is not an attempt.
func TestStuckTransactionEndsWithContext(t *testing.T) {
	release := make(chan struct{})
	addr := scriptedServer(t, func(io.Writer) { <-release })
	t.Cleanup(func() { close(release) }) // before the server's cleanup, which waits for it
	e := newEnv(t, smtpsink.Options{}, nil)
	id := e.enqueue(t, ackNote(1, custAddr))[0]
	w := e.newWorker(t, func(c *notify.Config) { c.Addr = addr })

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := drainAsync(t, w, ctx)
	if ctx.Err() == nil {
		t.Errorf("Drain returned (%+v, %v) before its context ended", res, err)
	}
	if err == nil || res != (notify.Result{}) {
		t.Errorf("Drain = %+v, %v; want an error and nothing counted", res, err)
	}
	if got := e.note(t, id); got.Status != helpdesk.NotifyQueued || got.Attempts != 0 || !got.NextAttempt.IsZero() {
		t.Errorf("status %q attempts %d next %v; want queued as it was", got.Status, got.Attempts, got.NextAttempt)
	}
}

// The server's reply to a message it has received still counts when it comes just after
// the context ended: the notification is sent, not queued to be sent twice.
func TestReplyAfterCancelStillCounts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := scriptedServer(t, func(w io.Writer) {
		cancel() // the shutdown comes while the server is busy with the message
		fmt.Fprint(w, "250 2.0.0 Queued\r\n")
	})
	e := newEnv(t, smtpsink.Options{}, nil)
	id := e.enqueue(t, ackNote(1, custAddr))[0]
	w := e.newWorker(t, func(c *notify.Config) { c.Addr = addr })

	res, err := drainAsync(t, w, ctx)
	if res != (notify.Result{Sent: 1}) || err != nil {
		t.Errorf("Drain = %+v, %v; want 1 sent", res, err)
	}
	if got := e.note(t, id); got.Status != helpdesk.NotifySent {
		t.Errorf("status %q, want sent", got.Status)
	}
}

// panicClock is a Config.Now that panics at its readings numbered in at (1 is the first): a
// bug the worker must survive.
type panicClock struct {
	mu sync.Mutex
	n  int
	at []int
}

func (c *panicClock) Now() time.Time {
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	if slices.Contains(c.at, n) {
		panic(fmt.Sprintf("a bug at clock reading %d", n))
	}
	return start
}

// TestPanicFailsOneNotification: a notification whose delivery panics (here: the clock's
// second reading, the start of the first delivery) fails alone, with the panic as its error
// and in the log; the next notification of the drain is delivered.
func TestPanicFailsOneNotification(t *testing.T) {
	var logs bytes.Buffer
	clk := &panicClock{at: []int{2}}
	e := newEnv(t, smtpsink.Options{}, func(c *notify.Config) {
		c.Now = clk.Now
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	ids := e.enqueue(t, ackNote(1, "k1@example.com"), ackNote(2, "k2@example.com"))
	if res := e.drain(t, false); res.Sent != 1 || res.Failed != 1 {
		t.Errorf("Drain = %+v, want one sent and one failed", res)
	}
	if n := e.note(t, ids[0]); n.Status != helpdesk.NotifyFailed || !strings.Contains(n.LastError, "a bug at clock reading 2") {
		t.Errorf("the notification that panicked: status %q, error %q", n.Status, n.LastError)
	}
	if n := e.note(t, ids[1]); n.Status != helpdesk.NotifySent {
		t.Errorf("the next notification: status %q, error %q", n.Status, n.LastError)
	}
	if msgs := e.wait(t, 1); len(msgs) != 1 || msgs[0].To[0] != "k2@example.com" {
		t.Errorf("sink received %v", msgs)
	}
	if !strings.Contains(logs.String(), `"msg":"sending a notification failed with a panic (a bug); the rest of the outbox goes on"`) {
		t.Errorf("the panic was not logged:\n%s", logs.String())
	}
}

// TestRunSurvivesPanic: a panic in Run's drain outside any notification (here the clock's
// first reading) is logged, and Run goes on: the notification is delivered at the next try.
func TestRunSurvivesPanic(t *testing.T) {
	var logs safeBuffer
	clk := &panicClock{at: []int{1}}
	e := newEnv(t, smtpsink.Options{}, func(c *notify.Config) {
		c.Now = clk.Now
		c.RetryMin = 10 * time.Millisecond
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	e.enqueue(t, ackNote(1, "k1@example.com"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.worker.Run(ctx) }()
	if msgs := e.wait(t, 1); len(msgs) != 1 {
		t.Fatalf("sink received %d", len(msgs))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"the outbox failed with a panic (a bug); the gateway goes on","panic":{"value":"a bug at clock reading 1"`) {
		t.Errorf("the panic was not logged:\n%s", logs.String())
	}
}

// safeBuffer is a log destination shared by a goroutine and the test.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
