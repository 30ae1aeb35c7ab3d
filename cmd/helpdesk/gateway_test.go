package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/cmd/helpdesk/api"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/ingest/imapmem"
	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/store/storetest"
)

// liveGateway is the wired gateway, in process, running against in-memory IMAP and a sink.
type liveGateway struct {
	appendMail func(raw []byte) error // delivers into the INBOX over a second IMAP connection
	dovecot    *imaptest.Dovecot      // the IMAP server, when kind is "dovecot"
	sink       *smtpsink.Server
	events     chan ingest.Event
	stop       func()
}

// Every email comes from one customer: the benchmark raises the limit on automatic replies
// per address (autoreplyPerHour, 0 for the default), which would otherwise stop the
// acknowledgements after ten. tweaks change the configuration before the gateway starts.
func startLiveGateway(tb testing.TB, kind string, autoreplyPerHour int, tweaks ...func(*Config)) *liveGateway {
	tb.Helper()
	var addr, user, pass string
	var d *imaptest.Dovecot
	if kind == "dovecot" {
		d = imaptest.NewDovecot(tb)
		addr, user, pass = d.Addr, d.User, d.Password
	} else {
		m := imaptest.NewMem(tb, imapmem.Options{})
		addr, user, pass = m.Addr, m.User, m.Password
	}
	appender, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { appender.Close() })
	if err := appender.Login(user, pass).Wait(); err != nil {
		tb.Fatal(err)
	}
	sink := smtptest.New(tb, smtpsink.Options{})
	cfg, _, err := loadConfig("", nil)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.DB = filepath.Join(tb.TempDir(), "helpdesk.db")
	cfg.IMAPAddr, cfg.IMAPUser, cfg.IMAPPassword, cfg.IMAPTLS = addr, user, pass, "none"
	cfg.SMTPAddr, cfg.SMTPTLS = sink.Addr(), "none"
	cfg.From = "Infobits Helpdesk <support@infobits.example>"
	cfg.IMAPPoll = time.Hour // only IDLE may deliver in time
	if autoreplyPerHour > 0 {
		cfg.AutoReplyPerHour = autoreplyPerHour
	}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	db, err := store.Open(cfg.DB, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		return tx.PutCustomer(&helpdesk.Customer{Name: "Bakkerij de Vries", Emails: []string{"info@bakkerijdevries.nl"}, Tier: helpdesk.SLA8})
	}); err != nil {
		tb.Fatal(err)
	}
	events := make(chan ingest.Event, 4096)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := newGateway(&cfg, db, log, time.Now, gatewayOptions{events: events})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		gw.run(ctx)
	}()
	lg := &liveGateway{dovecot: d, sink: sink, events: events, appendMail: func(raw []byte) error {
		cmd := appender.Append("INBOX", int64(len(raw)), nil)
		if _, err := cmd.Write(raw); err != nil {
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		_, err := cmd.Wait()
		return err
	}}
	lg.stop = func() {
		cancel()
		<-done
		db.Close()
	}
	tb.Cleanup(lg.stop)
	lg.waitIdle(tb)
	return lg
}

func (lg *liveGateway) waitIdle(tb testing.TB) {
	tb.Helper()
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	for {
		select {
		case ev := <-lg.events:
			if ev.Idling {
				return
			}
		case <-timer.C:
			tb.Fatal("the gateway never entered IDLE")
		}
	}
}

// TestIdleAckOnPush: in IDLE mode an email appended to the mailbox is a ticket and its
// acknowledgement is handed to SMTP on the server's push: the poll interval is an hour, so
// nothing else could take it in while the test waits (a minute, room for a busy machine). How
// fast that goes is BenchmarkIdleToSMTP's (p50 4.3 ms here, docs/HACKING.md "Figures").
func TestIdleAckOnPush(t *testing.T) {
	lg := startLiveGateway(t, "mem", 0)
	raw := customerMail("info@bakkerijdevries.nl", "Pinautomaat offline", "idle-1@b", "", "Hij doet het niet.")
	if err := lg.appendMail([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs, err := lg.sink.Wait(ctx, 1)
	if err != nil {
		t.Fatalf("no acknowledgement at the SMTP server a minute after the push (the next poll is in an hour): %v", err)
	}
	if subj := headerOf(msgs[0].Data, "Subject"); subj != "[Infobits #1] Ontvangen: Pinautomaat offline" {
		t.Errorf("subject = %q", subj)
	}
}

// BenchmarkIdleToSMTP measures the time from APPEND (by a second client) to the
// acknowledgement's acceptance by the SMTP server, one email at a time, and reports the median
// and the 99th percentile. Against Dovecot the figure includes Dovecot's own ~0.5 s delay
// before it pushes EXISTS to an idling client.
func BenchmarkIdleToSMTP(b *testing.B) {
	for _, kind := range []string{"mem", "dovecot"} {
		b.Run(kind, func(b *testing.B) { benchIdleToSMTP(b, kind) })
	}
}

func benchIdleToSMTP(b *testing.B, kind string) {
	lg := startLiveGateway(b, kind, b.N+10)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		raw := customerMail("info@bakkerijdevries.nl", fmt.Sprintf("Vraag %d", i), fmt.Sprintf("bench-%d@b", i), "", "Tekst.")
		start := time.Now()
		if err := lg.appendMail([]byte(raw)); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := lg.sink.Wait(ctx, i+1)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// TestExampleConfig: the annotated example parses and mentions every key.
func TestExampleConfig(t *testing.T) {
	const path = "../../deploy/helpdesk.conf.example"
	if _, _, err := loadConfig(path, nil); err != nil {
		t.Fatalf("example config: %v", err)
	}
	b, _ := os.ReadFile(path)
	for _, f := range configFields() {
		if !regexp.MustCompile(`(?m)^#? ?` + f.key + ` =`).Match(b) {
			t.Errorf("example config does not show %s", f.key)
		}
	}
}

func TestParseArgsInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
	}{
		{[]string{"12", "-json"}, []string{"12"}, true},
		{[]string{"-json", "12"}, []string{"12"}, true},
		{[]string{"12"}, []string{"12"}, false},
		{[]string{"--", "-json"}, []string{"-json"}, false},
	} {
		e := &env{stdout: io.Discard}
		fs, _ := newFlags(e, "t", "")
		j := fs.Bool("json", false, "")
		pos, err := parseArgs(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *j != tc.json {
			t.Errorf("parseArgs(%q) = %q, json=%v, %v; want %q, json=%v", tc.args, pos, *j, err, tc.pos, tc.json)
		}
	}
}

const testAPIToken = "Zm9yLXRoZS10ZXN0cy1vZi10aGUtaHR0cC1hcGk"

// serveInProcess runs `helpdesk serve` in this process with the given environment until the
// returned stop is called; stop returns the exit status.
func serveInProcess(t *testing.T, environ []string, out *syncBuffer) (exited chan error, stop func() int) {
	t.Helper()
	return serveWithClock(t, environ, out, time.Now)
}

// addBakkerij registers Bakkerij de Vries (SLA8, info@bakkerijdevries.nl) in the peers'
// database before a gateway opens it.
func addBakkerij(t *testing.T, p *peers) {
	t.Helper()
	db, err := store.Open(filepath.Join(p.dir, "helpdesk.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		return tx.PutCustomer(&helpdesk.Customer{Name: "Bakkerij de Vries", Emails: []string{"info@bakkerijdevries.nl"}, Tier: helpdesk.SLA8})
	}); err != nil {
		t.Fatal(err)
	}
}

// serveWithClock is serveInProcess with the gateway's clock (what it stamps and how it
// judges ages: deadlines, health) given by the test.
func serveWithClock(t *testing.T, environ []string, out *syncBuffer, now func() time.Time) (exited chan error, stop func() int) {
	t.Helper()
	return serveAdjusted(t, environ, out, now, nil)
}

// serveAdjusted is serveWithClock with the env changed by adjust first (parse limits).
func serveAdjusted(t *testing.T, environ []string, out *syncBuffer, now func() time.Time, adjust func(*env)) (exited chan error, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	exited = make(chan error, 1)
	codes := make(chan int, 1)
	e := &env{ctx: ctx, stdout: out, stderr: out, environ: environ, now: now}
	if adjust != nil {
		adjust(e)
	}
	go func() {
		code := run(e, []string{"serve"})
		codes <- code
		exited <- fmt.Errorf("exit status %d", code)
	}()
	stopped := false
	stop = func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		select {
		case code := <-codes:
			return code
		case <-time.After(time.Minute):
			t.Fatalf("serve did not stop within a minute:\n%s", out.String())
			return -1
		}
	}
	t.Cleanup(func() { stop() })
	return exited, stop
}

// httpCall sends a request to the running gateway; auth adds the bearer token.
func httpCall(t *testing.T, method, url, body string, auth bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+testAPIToken)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// waitHTTP polls url until check accepts the answer.
func waitHTTP(t *testing.T, url string, check func(status int, body string) bool) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, body := httpCall(t, "GET", url, "", false)
		if check(status, body) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: still %d %s", url, status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeHTTP: with http_addr set, serve answers /healthz, /metrics and the API while it
// runs; its metrics count what it ingests; an answer given through the API reaches the
// customer over SMTP; and the port is closed when serve stops.
func TestServeHTTP(t *testing.T) {
	p := newPeers(t)
	addBakkerij(t, p)

	var out syncBuffer
	exited, stop := serveInProcess(t, p.env("HELPDESK_HTTP_ADDR=127.0.0.1:0", "HELPDESK_API_TOKEN="+testAPIToken), &out)
	m := waitOutput(t, &out, regexp.MustCompile(`"msg":"http listening"[^\n]*"addr":"([^"]+)"`), exited)
	base := "http://" + m[1]

	// Healthy once the mailbox has been read.
	body := waitHTTP(t, base+"/healthz", func(status int, _ string) bool { return status == http.StatusOK })
	var h struct {
		Status     string            `json:"status"`
		Components map[string]string `json:"components"`
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil || h.Status != "ok" ||
		h.Components["imap"] != "ok" || h.Components["smtp"] != "ok" || h.Components["store"] != "ok" {
		t.Errorf("healthz = %s (%v)", body, err)
	}

	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Pinautomaat offline", "http-1@b", "", "Hij doet het niet."))
	if _, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 1); err != nil {
		t.Fatalf("no acknowledgement: %v\n%s", err, out.String())
	}
	waitHTTP(t, base+"/metrics", func(status int, body string) bool {
		return status == http.StatusOK && strings.Contains(body, "helpdesk_ingest_emails_total{outcome=\"new_ticket\"} 1\n") &&
			strings.Contains(body, "helpdesk_ingest_latency_seconds_count 1\n") && strings.Contains(body, "helpdesk_tickets_open 1\n")
	})

	if status, _ := httpCall(t, "GET", base+"/api/tickets/1", "", false); status != http.StatusUnauthorized {
		t.Errorf("API without token: %d", status)
	}
	status, body := httpCall(t, "GET", base+"/api/tickets/1", "", true)
	if status != http.StatusOK || !strings.Contains(body, `"subject":"Pinautomaat offline"`) {
		t.Errorf("GET /api/tickets/1: %d %s", status, body)
	}
	status, body = httpCall(t, "POST", base+"/api/tickets/1/answers", `{"from": "jan@infobits.example", "text": "Zet hem uit en weer aan."}`, true)
	if status != http.StatusCreated {
		t.Fatalf("answer through the API: %d %s", status, body)
	}
	msgs, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 2)
	if err != nil {
		t.Fatalf("the answer did not reach SMTP: %v\n%s", err, out.String())
	}
	if got := plainText(t, msgs[1].Data); !strings.Contains(got, "Zet hem uit en weer aan.") || !slices.Contains(msgs[1].To, "info@bakkerijdevries.nl") {
		t.Errorf("answer mail to %v:\n%s", msgs[1].To, got)
	}

	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, out.String())
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the HTTP port still answers after serve stopped")
	}
}

// TestServeHTTPAddrInUse: a port in use stops serve at once with one line naming http_addr;
// serve -once does not listen at all.
func TestServeHTTPAddrInUse(t *testing.T) {
	p := newPeers(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	environ := p.env("HELPDESK_HTTP_ADDR=" + ln.Addr().String())
	var out syncBuffer
	_, stop := serveInProcess(t, environ, &out)
	if code := stop(); code != 1 {
		t.Fatalf("serve with the port in use: exit %d\n%s", code, out.String())
	}
	want := "helpdesk serve: http_addr = " + ln.Addr().String() + " (HELPDESK_HTTP_ADDR): cannot listen: bind: address already in use"
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, want) || strings.Count(out.String(), "http_addr") != 1 {
		t.Errorf("stderr:\n%s\nwant one line starting %q", out.String(), want)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "helpdesk.db.sock")); err == nil {
		t.Error("control socket left behind")
	}
	var once syncBuffer
	if code := run(&env{ctx: context.Background(), stdout: &once, stderr: &once, environ: environ, now: time.Now}, []string{"serve", "-once"}); code != 0 {
		t.Errorf("serve -once with http_addr in use: exit %d\n%s", code, once.String())
	}
}

// TestGatewayHealthAndEvents: the health of IMAP follows the poller's events, SMTP the
// outbox; every event is counted and forwarded, in order, before the pump stops.
func TestGatewayHealthAndEvents(t *testing.T) {
	cfg, _, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.IMAPAddr, cfg.IMAPUser, cfg.IMAPPassword, cfg.IMAPTLS = "127.0.0.1:1", "u", "p", "none"
	cfg.SMTPAddr, cfg.SMTPTLS = "127.0.0.1:1", "none"
	cfg.From = "Infobits Helpdesk <support@infobits.example>"
	db := storetest.New(t)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	forward := make(chan ingest.Event, 100)
	gw, err := newGateway(&cfg, db, slog.New(slog.DiscardHandler), func() time.Time { return now }, gatewayOptions{events: forward})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if h := gw.health(ctx); !strings.HasPrefix(h["imap"], "connecting") || h["smtp"] != "ok" || h["store"] != "ok" {
		t.Errorf("health at start = %v", h)
	}

	stop := gw.pumpEvents()
	sent := []ingest.Event{
		{Synced: true},
		{Outcome: &desk.Outcome{Action: "new_ticket", Arrival: now.Add(-time.Second)}},
		{Err: errors.New("read tcp: connection reset by peer")},
	}
	for _, ev := range sent {
		gw.events <- ev
	}
	stop()
	if len(forward) != len(sent) {
		t.Fatalf("forwarded %d events before stop returned, want %d", len(forward), len(sent))
	}
	for i := range sent {
		if ev := <-forward; fmt.Sprint(ev) != fmt.Sprint(sent[i]) {
			t.Errorf("event %d = %v, want %v", i, ev, sent[i])
		}
	}
	if h := gw.health(ctx); h["imap"] != "reconnecting: read tcp: connection reset by peer" {
		t.Errorf("imap after a failure = %q", h["imap"])
	}
	gw.imap.observe(ingest.Event{Synced: true}, now)
	if h := gw.health(ctx); h["imap"] != "ok" || h["ingest"] != "ok" {
		t.Errorf("imap, ingest after a sync = %q, %q", h["imap"], h["ingest"])
	}
	// A batch that stays at one step longer than its limit is reported, the longest first;
	// a step reached, the batch done or the session gone ends it.
	gw.imap.observe(ingest.Event{Batch: &ingest.Batch{First: 5, Last: 9, Count: 5, Step: ingest.BatchCommit, Limit: 2 * time.Minute}}, now)
	gw.imap.observe(ingest.Event{Batch: &ingest.Batch{First: 10, Last: 10, Count: 1, Step: ingest.BatchFetch, Limit: 2 * time.Minute}}, now.Add(time.Minute))
	if got := gw.imap.progress(now.Add(2 * time.Minute)); got != "ok" {
		t.Errorf("ingest at the limit = %q", got)
	}
	if got, want := gw.imap.progress(now.Add(3*time.Minute)), "stalled: no progress for 3m0s committing a batch of 5 email(s) (uids 5-9), over the limit of 2m0s"; got != want {
		t.Errorf("ingest over the limit = %q, want %q", got, want)
	}
	gw.imap.observe(ingest.Event{Batch: &ingest.Batch{First: 5, Last: 9, Count: 5, Step: ingest.BatchDone}}, now.Add(3*time.Minute))
	if got, want := gw.imap.progress(now.Add(4*time.Minute)), "stalled: no progress for 3m0s fetching a batch of 1 email(s) (uids 10-10), over the limit of 2m0s"; got != want {
		t.Errorf("ingest with the other batch over = %q, want %q", got, want)
	}
	gw.imap.observe(ingest.Event{Err: errors.New("read tcp: i/o timeout")}, now.Add(4*time.Minute))
	if got := gw.imap.progress(now.Add(time.Hour)); got != "ok" {
		t.Errorf("ingest after the session ended = %q", got)
	}
	gw.imap.observe(ingest.Event{Synced: true}, now)
	var metrics strings.Builder
	srv := httptest.NewServer(api.New(api.Config{}, db, gw.desk, gw.metrics))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(&metrics, res.Body)
	res.Body.Close()
	for _, want := range []string{"helpdesk_ingest_emails_total{outcome=\"new_ticket\"} 1\n", "helpdesk_imap_reconnects_total 1\n",
		"helpdesk_ingest_latency_seconds_bucket{le=\"1\"} 1\n"} {
		if !strings.Contains(metrics.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics.String())
		}
	}

	// SMTP: degraded when the oldest queued notification failed and waits > 10 min (the
	// server failing for > 5 min is TestHealthzSMTPDown's).
	enqueue := func(age time.Duration, lastErr string) {
		if err := db.Update(ctx, func(tx *store.Tx) error {
			return tx.Enqueue(&helpdesk.Notification{Kind: helpdesk.KindAck, To: "a@example.com", MessageID: fmt.Sprintf("%d@x", age),
				Created: now.Add(-age), LastError: lastErr, Attempts: 1})
		}); err != nil {
			t.Fatal(err)
		}
	}
	enqueue(5*time.Minute, "421 4.7.0 try again later")
	if h := gw.health(ctx); h["smtp"] != "ok" {
		t.Errorf("smtp with a young failure = %q", h["smtp"])
	}
	enqueue(11*time.Minute, "421 4.7.0 try again later")
	if h := gw.health(ctx); h["smtp"] != "2 notification(s) queued, the oldest for 11m0s: 421 4.7.0 try again later" {
		t.Errorf("smtp with an old failure = %q", h["smtp"])
	}
}

// TestDueLoop: serve's loops (held notices, login changes, the due queue) run a round at
// start, on a wake and a minute after the last round by the gateway's clock — counted from the
// moment the round ran for, not from a reading taken after a slow round (here each round takes
// 50 s of the gateway's clock); a round that panics is reported in the log and the loop goes
// on.
func TestDueLoop(t *testing.T) {
	t0 := amsAt("2026-11-30 09:00:00")
	clk := &stepClock{t: t0}
	logs := &syncBuffer{}
	g := &gateway{log: slog.New(slog.NewJSONHandler(logs, nil)), now: clk.Now}
	rounds := make(chan time.Time, 16)
	wake := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		g.dueLoop(ctx, "the test round", wake, func(now time.Time) time.Time {
			n++
			rounds <- now
			clk.Advance(50 * time.Second)
			if n == 1 {
				panic("a bug in the first round")
			}
			return time.Time{}
		})
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitRound := func(want time.Time) {
		t.Helper()
		select {
		case got := <-rounds:
			if !got.Equal(want) {
				t.Fatalf("a round at %s, want %s", got.Format(time.TimeOnly), want.Format(time.TimeOnly))
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no round at %s:\n%s", want.Format(time.TimeOnly), logs.String())
		}
	}
	waitRound(t0)
	waitOutput(t, logs, regexp.MustCompile(`"level":"ERROR","msg":"the test round failed with a panic \(a bug\); the gateway goes on and tries again in a minute","panic":\{"value":"a bug in the first round","stack":"goroutine`), nil)
	clk.Set(t0.Add(time.Minute)) // the first round ran for 09:00:00: the next is due at 09:01:00
	waitRound(t0.Add(time.Minute))
	clk.Set(t0.Add(2 * time.Minute))
	waitRound(t0.Add(2 * time.Minute))
	wake <- struct{}{}
	waitRound(t0.Add(2*time.Minute + 50*time.Second))
}
