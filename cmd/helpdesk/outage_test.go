package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
)

// An outage is visible — on the notification (`outbox list`), on /healthz,
// and in the logs — while it lasts, and gone once it is over.

// stepClock is the gateway's clock in a test: it stands still until the test moves it, so a
// test can let "minutes" pass without waiting for them.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *stepClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// healthz is the answer of GET /healthz.
type healthz struct {
	code       int
	Status     string            `json:"status"`
	Reason     string            `json:"reason"`
	Components map[string]string `json:"components"`
}

func getHealthz(t *testing.T, base string) healthz {
	t.Helper()
	code, body := httpCall(t, "GET", base+"/healthz", "", false)
	h := healthz{code: code}
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("GET /healthz: %d %q: %v", code, body, err)
	}
	if (code == http.StatusOK) != (h.Status == "ok") || (h.Status == "ok") != (h.Reason == "") {
		t.Errorf("GET /healthz: %d with status %q and reason %q", code, h.Status, h.Reason)
	}
	return h
}

// waitHealthz polls /healthz until ok accepts it; step, when not nil, runs before each poll.
func waitHealthz(t *testing.T, base string, step func(), ok func(healthz) bool) healthz {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if step != nil {
			step()
		}
		h := getHealthz(t, base)
		if ok(h) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz: still %d %+v", h.code, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outageGateway runs serve in this process with the peers and a customer, on clk, and returns
// the base URL of its HTTP listener once /healthz answers 200.
func outageGateway(t *testing.T, p *peers, clk *stepClock) (base string, out *syncBuffer) {
	t.Helper()
	addBakkerij(t, p)
	out = &syncBuffer{}
	exited, _ := serveWithClock(t, p.env(), out, clk.Now)
	m := waitOutput(t, out, regexp.MustCompile(`"msg":"http listening"[^\n]*"addr":"([^"]+)"`), exited)
	base = "http://" + m[1]
	h := waitHealthz(t, base, nil, func(h healthz) bool { return h.code == http.StatusOK })
	for _, c := range []string{"imap", "ingest", "smtp", "store"} {
		if h.Components[c] != "ok" {
			t.Errorf("healthy gateway: component %s = %q", c, h.Components[c])
		}
	}
	return base, out
}

// listedNotification is a notification as `outbox list -json` prints it.
type listedNotification struct {
	ID       uint64 `json:"id"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Error    string `json:"error"`
	// NextAttempt: RFC 3339 in Amsterdam time, "" when not waiting.
	NextAttempt string `json:"next_attempt"`
}

// outboxJSON is `helpdesk outbox list -json` of the running gateway, by the real binary.
func outboxJSON(t *testing.T, p *peers) []listedNotification {
	t.Helper()
	var ns []listedNotification
	if err := json.Unmarshal([]byte(mustRun(t, p.env(), "outbox", "list", "-json")), &ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

// TestOutageSMTPDown: with the SMTP server gone, `outbox list` shows the failed attempts and
// the error as soon as the first attempt failed, the log says when the next try comes in
// words ("1m0s"), /healthz stays 200 for a short outage and answers 503 with the reason once
// the server has failed for more than five minutes, and everything is back to normal — the
// notification sent, /healthz 200 — once the server is.
func TestOutageSMTPDown(t *testing.T) {
	p := newPeers(t)
	clk := &stepClock{t: time.Now()}
	base, out := outageGateway(t, p, clk)

	if err := p.sink.Stop(); err != nil {
		t.Fatal(err)
	}
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Pinautomaat offline", "outage-1@b", "", "Hij doet het niet."))
	var n listedNotification
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ns := outboxJSON(t, p); len(ns) == 1 && ns[0].Attempts >= 1 && ns[0].NextAttempt != "" {
			n = ns[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt in the outbox:\n%s\n%s", mustRun(t, p.env(), "outbox", "list"), out.String())
		}
	}
	if n.Status != helpdesk.NotifyQueued || !strings.Contains(n.Error, "connection refused") || !strings.Contains(n.Error, "connect to SMTP server "+p.sink.Addr()+" without TLS: ") {
		t.Errorf("outbox list -json during the outage: %+v; want queued, the refused connection to %s", n, p.sink.Addr())
	}
	// When the next attempt is: the notifier's first wait (retry_min, a minute) after the
	// failure, on the gateway's clock, in Amsterdam time.
	redial := clk.Now().Add(time.Minute)
	if want := redial.In(helpdesk.Amsterdam()).Format(time.RFC3339); n.NextAttempt != want {
		t.Errorf("outbox list -json next_attempt = %q, want %s (a minute after the failure, Amsterdam time)", n.NextAttempt, want)
	}
	text := mustRun(t, p.env(), "outbox", "list")
	row := regexp.MustCompile(`(?m)^1 +queued +ack +#1 +info@bakkerijdevries\.nl +([1-9][0-9]*) +retrying, next ` + regexp.QuoteMeta(redial.In(helpdesk.Amsterdam()).Format("2006-01-02 15:04")) + ` +(.*connection refused.*)$`)
	if !row.MatchString(text) {
		t.Errorf("outbox list during the outage:\n%s\nwant notification 1 queued, its attempts, retrying with the next attempt's time, and the error", text)
	}
	// The worker's wait before it redials, in the JSON log, in words.
	waitOutput(t, out, regexp.MustCompile(`"msg":"outbox: delivery interrupted; will retry"[^\n]*"retry_in":"1m0s"`), nil)

	// A short outage (a mail server restart) is no alarm; five minutes are.
	if h := getHealthz(t, base); h.code != http.StatusOK {
		t.Errorf("healthz right after the first failure: %d %+v; want 200", h.code, h)
	}
	clk.Advance(6 * time.Minute)
	h := getHealthz(t, base)
	if h.code != http.StatusServiceUnavailable || !strings.HasPrefix(h.Components["smtp"], "failing for 6m0s (since ") ||
		!strings.Contains(h.Reason, "smtp: failing for 6m0s") || !strings.Contains(h.Reason, "connection refused") ||
		h.Components["imap"] != "ok" || h.Components["ingest"] != "ok" {
		t.Errorf("healthz after six minutes of SMTP failing: %d %+v; want 503, the reason naming smtp and the error", h.code, h)
	}

	// The server is back; the operator sends the queue now rather than at the next try.
	if err := p.sink.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, p.env(), "outbox", "retry", "1"); !strings.Contains(got, "1 notification(s) queued again") {
		t.Errorf("outbox retry 1: %q", got)
	}
	if _, err := p.sink.Wait(ctxTimeout(t, 60*time.Second), 1); err != nil {
		t.Fatalf("the acknowledgement was not sent after the server came back: %v\n%s", err, out.String())
	}
	waitHealthz(t, base, nil, func(h healthz) bool { return h.code == http.StatusOK })
	if ns := outboxJSON(t, p); len(ns) != 1 || ns[0].Status != helpdesk.NotifySent || ns[0].Attempts <= n.Attempts || ns[0].Error != "" {
		t.Errorf("outbox after recovery: %+v; want sent, one attempt more than %d, no error", ns, n.Attempts)
	}
}

// TestOutageIMAPDown: /healthz answers 503 naming IMAP while the mail server is gone, and
// 200 again once the gateway has reconnected and read the mailbox; mail then flows again.
func TestOutageIMAPDown(t *testing.T) {
	p := newPeers(t)
	clk := &stepClock{t: time.Now()}
	base, out := outageGateway(t, p, clk)

	if err := p.mem.Stop(); err != nil {
		t.Fatal(err)
	}
	h := waitHealthz(t, base, nil, func(h healthz) bool { return h.code == http.StatusServiceUnavailable })
	if !strings.HasPrefix(h.Components["imap"], "reconnecting: ") || !strings.HasPrefix(h.Reason, "imap: reconnecting: ") ||
		h.Components["smtp"] != "ok" {
		t.Errorf("healthz with the IMAP server gone: %+v; want 503 with the reason naming imap", h)
	}
	if err := p.mem.Restart(); err != nil {
		t.Fatal(err)
	}
	waitHealthz(t, base, nil, func(h healthz) bool { return h.code == http.StatusOK })
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Na de storing", "outage-2@b", "", "Werkt het weer?"))
	if _, err := p.sink.Wait(ctxTimeout(t, 60*time.Second), 1); err != nil {
		t.Fatalf("no acknowledgement after the IMAP server came back: %v\n%s", err, out.String())
	}
}

// TestOutageStalledBatch: an IMAP server that stops answering in the middle of a batch FETCH
// leaves the session up (imap ok) but ingest without progress: /healthz answers 503 naming
// the stalled batch once that has lasted longer than the command timeout (2 min, by the
// gateway's clock), and 200 again when the server answers and the batch is committed.
func TestOutageStalledBatch(t *testing.T) {
	p := newPeers(t)
	clk := &stepClock{t: time.Now()}
	base, out := outageGateway(t, p, clk)

	release := p.mem.HoldFetches()
	t.Cleanup(release)
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Kassa hangt", "outage-3@b", "", "Alles staat stil."))
	// The minutes pass in steps; the batch started its fetch at one of them.
	h := waitHealthz(t, base, func() { clk.Advance(time.Minute) }, func(h healthz) bool { return h.code == http.StatusServiceUnavailable })
	if !strings.HasPrefix(h.Components["ingest"], "stalled: no progress for ") ||
		!strings.Contains(h.Components["ingest"], "fetching a batch of 1 email(s) (uids 1-1), over the limit of 2m0s") ||
		!strings.HasPrefix(h.Reason, "ingest: stalled: ") || h.Components["imap"] != "ok" {
		t.Errorf("healthz with the FETCH unanswered: %+v; want 503 with the reason naming the stalled batch", h)
	}
	release()
	if _, err := p.sink.Wait(ctxTimeout(t, 60*time.Second), 1); err != nil {
		t.Fatalf("no acknowledgement after the server answered: %v\n%s", err, out.String())
	}
	waitHealthz(t, base, nil, func(h healthz) bool { return h.code == http.StatusOK })
}
