package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

const (
	liveEmails    = 1000
	liveCustomers = 100
	liveWarmUp    = 3 // emails sent (and acknowledged) before the measured ones
	liveEmailSize = 3 << 10
	liveAckWait   = 30 * time.Second
	liveIdleWait  = 5 * time.Second
)

// BenchmarkLiveArrival (W4): the real `helpdesk serve` (non-race build) IDLEs on a Dovecot
// INBOX with the smtptest sink as its SMTP server. A second IMAP client IDLEs on the same
// mailbox as an observer. 1,000 generated emails (no replies: each is a new ticket from one of
// 100 registered customers, so each is acknowledged) are appended one at a time by a third
// connection. Per email:
//
//	t_append   — the APPEND completed (tagged OK)
//	t_exists   — the observer received the EXISTS push for it
//	t_gwexists — the gateway's own connection carried that EXISTS push: the gateway talks to
//	             Dovecot through a loopback TCP proxy in this process that notes when
//	             "* N EXISTS" passes towards the gateway (one more loopback hop per round trip)
//	t_sink     — the sink accepted the acknowledgement (end of DATA; same clock)
//
// and it reports p50/p95/p99/max of t_sink − t_gwexists and of t_sink − t_exists (the time the
// gateway adds: fetch, parse, decide, commit, wake the notifier, render, SMTP), of t_sink −
// t_append (end to end), and the gateway's peak RSS (VmHWM) before it is stopped.
//
// Pacing. Dovecot (2.3, as observed here) does not push a change to an idling connection at
// once: the first change starts a 0.5 s timer of that connection, and everything that changed
// is pushed when it fires. So an email is appended only when
//   - its predecessor's acknowledgement is at the sink,
//   - the gateway is back in IDLE after the push that woke it for the predecessor (the
//     "+ idling" seen at the proxy) — else the APPEND races with its return to IDLE and the
//     gateway sees the email at once, in answer to its IDLE command (4 emails in 10 when
//     the next APPEND followed the acknowledgement at once), and
//   - the observer has been pushed the \Seen flag the gateway set on the predecessor —
//     else the observer's timer, started by that flag change, is running and pushes the
//     new EXISTS anywhere between 0 and 0.5 s after the APPEND, and t_sink − t_exists
//     means nothing.
//
// That costs ~0.5 s per email (W4 takes ~17 min). HELPDESK_AUTOREPLY_PER_HOUR is raised to
// 100000 so the per-address limit never holds an acknowledgement back.
// HDBENCH_LIVE_CSV=FILE writes every sample.
func BenchmarkLiveArrival(b *testing.B) {
	n := liveEmails
	if s, err := strconv.ParseFloat(os.Getenv("HDBENCH_SCALE"), 64); err == nil && s > 0 {
		n = max(1, int(float64(n)*s))
	}
	d := imaptest.NewDovecot(b)
	sink := smtptest.New(b, smtpsink.Options{})
	bin := buildBenchBinary(b)
	gwPushes := newPushLog()
	proxy := startExistsProxy(b, d.Addr, gwPushes)
	g := newBenchGateway(b, bin, d, liveCustomers, "HELPDESK_IMAP_ADDR="+proxy,
		"HELPDESK_SMTP_ADDR="+sink.Addr(), "HELPDESK_SMTP_TLS=none", "HELPDESK_AUTOREPLY_PER_HOUR=100000")

	// The observer.
	obsPushes, obsSeen := newPushLog(), newPushLog()
	obs, err := imapclient.DialInsecure(d.Addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(m *imapclient.UnilateralDataMailbox) {
			if m.NumMessages != nil {
				obsPushes.record(*m.NumMessages, time.Now())
			}
		},
		Fetch: func(msg *imapclient.FetchMessageData) {
			now := time.Now()
			for item := msg.Next(); item != nil; item = msg.Next() {
				if f, ok := item.(imapclient.FetchItemDataFlags); ok && slices.Contains(f.Flags, imap.FlagSeen) {
					obsSeen.record(msg.SeqNum, now)
				}
			}
		}}})
	if err != nil {
		b.Fatal(err)
	}
	defer obs.Close()
	if err := obs.Login(d.User, d.Password).Wait(); err != nil {
		b.Fatal(err)
	}
	if _, err := obs.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	idle, err := obs.Idle()
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		idle.Close()
		idle.Wait()
	}()

	// The gateway.
	logFile, err := os.Create(filepath.Join(g.dir, "serve.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	serve := exec.Command(bin, "serve")
	serve.Env = g.env
	serve.Stdout, serve.Stderr = logFile, logFile
	if err := serve.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		serve.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				b.Errorf("serve after SIGTERM: %v", err)
			}
		case <-time.After(30 * time.Second):
			serve.Process.Kill()
			<-exited
			b.Errorf("serve did not stop within 30 s of SIGTERM")
		}
	}
	defer stop()
	logTail := func() string {
		out, _ := os.ReadFile(logFile.Name())
		return tail(string(out), 4000)
	}

	// The sender: one connection, one APPEND at a time.
	app, err := d.Dial()
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	gen := imaptest.NewGenerator(11, benchSenders(liveCustomers))
	gen.ReplyShare = 0
	acks := sink.Notify()
	sent := uint32(0)
	largest := 0
	type sample struct {
		appended, exists, gwExists, sink time.Time
		busy                             bool // the pacing conditions did not hold within liveIdleWait
	}
	var woken time.Time // when the gateway was last pushed an EXISTS
	deliver := func(limit time.Duration) (sample, error) {
		// The pacing of the doc comment: the gateway back in IDLE, the observer quiet.
		busy := !gwPushes.idleAfter(woken, liveIdleWait)
		if sent > 0 {
			if _, ok := obsSeen.wait(sent, liveIdleWait); !ok {
				busy = true
			}
		}
		raw := gen.Next(liveEmailSize)
		m := genMessageIDRE.FindSubmatch(raw)
		if m == nil {
			return sample{}, fmt.Errorf("generated email without Message-ID:\n%s", raw[:min(len(raw), 600)])
		}
		id := string(m[1])
		largest = max(largest, len(raw))
		cmd := app.Append("INBOX", int64(len(raw)), nil)
		if _, err := cmd.Write(raw); err != nil {
			return sample{}, err
		}
		if err := cmd.Close(); err != nil {
			return sample{}, err
		}
		if _, err := cmd.Wait(); err != nil {
			return sample{}, err
		}
		s := sample{appended: time.Now(), busy: busy}
		sent++
		timeout := time.After(limit)
		for s.sink.IsZero() {
			select {
			case msg := <-acks:
				pm, err := mail.ReadMessage(strings.NewReader(string(msg.Data)))
				if err != nil {
					return s, fmt.Errorf("unreadable message at the sink: %v", err)
				}
				if strings.Trim(strings.TrimSpace(pm.Header.Get("In-Reply-To")), "<>") != id {
					return s, fmt.Errorf("the sink got a message to %v in reply to %q while waiting for the acknowledgement of %s",
						msg.To, pm.Header.Get("In-Reply-To"), id)
				}
				s.sink = msg.Received
			case err := <-exited:
				stopped = true
				return s, fmt.Errorf("serve exited: %v\n%s", err, logTail())
			case <-timeout:
				return s, fmt.Errorf("no acknowledgement of %s within %v\n%s", id, limit, logTail())
			}
		}
		s.exists, _ = obsPushes.wait(sent, time.Second)
		s.gwExists, _ = gwPushes.wait(sent, time.Second)
		if !s.gwExists.IsZero() {
			woken = s.gwExists
		}
		return s, nil
	}
	// Warm-up: the first acknowledgement also shows that the gateway is up and idling.
	for range liveWarmUp {
		if _, err := deliver(liveAckWait); err != nil {
			b.Fatalf("warm-up: %v", err)
		}
	}

	var samples []sample
	began := time.Now()
	b.ResetTimer()
	for range b.N {
		for range n {
			s, err := deliver(liveAckWait)
			if err != nil {
				b.Fatal(err)
			}
			samples = append(samples, s)
		}
	}
	b.StopTimer()
	total := time.Since(began)
	hwm, err := procStatusKiB(serve.Process.Pid, "VmHWM")
	if err != nil {
		b.Errorf("peak RSS: %v", err)
	}
	stop()

	// Every email is a ticket (warm-up included) and was acknowledged once.
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(g.mustRun(b, "ticket", "list", "-json")), &list); err != nil {
		b.Fatal(err)
	}
	if want := int(sent); len(list) != want {
		b.Errorf("%d tickets after %d emails", len(list), want)
	}
	if got := len(sink.Messages()); got != int(sent) {
		b.Errorf("%d messages at the sink for %d emails", got, sent)
	}

	var gwAdded, obsAdded, endToEnd, gwPush, obsPush []time.Duration
	busy := 0
	var csv strings.Builder
	csv.WriteString("append_done_unix_ns,observer_exists_ms,gateway_exists_ms,ack_accepted_ms,gateway_busy\n")
	rel := func(t, from time.Time) string {
		if t.IsZero() {
			return ""
		}
		return fmt.Sprintf("%.3f", float64(t.Sub(from).Microseconds())/1000)
	}
	for _, s := range samples {
		endToEnd = append(endToEnd, s.sink.Sub(s.appended))
		if !s.gwExists.IsZero() {
			gwAdded = append(gwAdded, s.sink.Sub(s.gwExists))
			gwPush = append(gwPush, s.gwExists.Sub(s.appended))
		}
		if !s.exists.IsZero() {
			obsAdded = append(obsAdded, s.sink.Sub(s.exists))
			obsPush = append(obsPush, s.exists.Sub(s.appended))
		}
		if s.busy {
			busy++
		}
		fmt.Fprintf(&csv, "%d,%s,%s,%s,%v\n", s.appended.UnixNano(), rel(s.exists, s.appended), rel(s.gwExists, s.appended), rel(s.sink, s.appended), s.busy)
	}
	if file := os.Getenv("HDBENCH_LIVE_CSV"); file != "" {
		if err := os.WriteFile(file, []byte(csv.String()), 0o644); err != nil {
			b.Error(err)
		}
	}
	if busy > 0 {
		b.Logf("%d of %d emails were appended without the gateway back in IDLE or the observer quiet after %v", busy, len(samples), liveIdleWait)
	}
	if k := len(samples) - len(gwAdded); k > 0 {
		b.Logf("%d of %d emails: no EXISTS seen on the gateway's connection (left out of its figures)", k, len(samples))
	}
	if k := len(samples) - len(obsAdded); k > 0 {
		b.Logf("%d of %d emails: no EXISTS at the observer (left out of its figures)", k, len(samples))
	}

	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	gw, ob, e2e := percentiles(gwAdded), percentiles(obsAdded), percentiles(endToEnd)
	b.ReportMetric(ms(gw[0]), "gw-p50-ms")
	b.ReportMetric(ms(gw[1]), "gw-p95-ms")
	b.ReportMetric(ms(gw[2]), "gw-p99-ms")
	b.ReportMetric(ms(gw[3]), "gw-max-ms")
	b.ReportMetric(ms(ob[0]), "obs-gw-p50-ms")
	b.ReportMetric(ms(ob[2]), "obs-gw-p99-ms")
	b.ReportMetric(ms(e2e[0]), "e2e-p50-ms")
	b.ReportMetric(ms(e2e[2]), "e2e-p99-ms")
	b.ReportMetric(float64(hwm)/1024, "peak-RSS-MiB")
	b.ReportMetric(0, "ns/op") // one op is 1,000 emails mostly spent waiting for Dovecot: meaningless
	row := func(what string, ds []time.Duration) {
		p := percentiles(ds)
		fmt.Printf("| %s | %d | %.1f | %.1f | %.1f | %.1f |\n", what, len(ds), ms(p[0]), ms(p[1]), ms(p[2]), ms(p[3]))
	}
	fmt.Printf("\n| W4 live, one email at a time | emails | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n")
	row("gateway added: EXISTS on its own connection → ack accepted (target p50 ≤ 20, p99 ≤ 100)", gwAdded)
	row("gateway added, from the observer's EXISTS → ack accepted", obsAdded)
	row("end to end: APPEND done → ack accepted", endToEnd)
	row("Dovecot: APPEND done → EXISTS on the gateway's connection", gwPush)
	row("Dovecot: APPEND done → EXISTS at the observer", obsPush)
	fmt.Printf("\n| W4 live | emails | wall s | peak RSS MiB (VmHWM) | RSS target MiB |\n|---|---:|---:|---:|---:|\n")
	fmt.Printf("| %d customers, AUTOREPLY_PER_HOUR=100000 | %d | %.1f | %.1f | %.0f |\n\n", liveCustomers, len(samples), total.Seconds(),
		float64(hwm)/1024, float64(rssBase+2*largest)/mib)
}

// pushLog notes when each "N EXISTS" was first seen and, on the gateway's connection, when
// the server accepted an IDLE ("+ idling").
type pushLog struct {
	mu   sync.Mutex
	at   map[uint32]time.Time
	idle []time.Time
}

func (p *pushLog) recordIdle(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle = append(p.idle, t)
}

// idleAfter waits up to limit for an IDLE accepted after t, and reports whether there was one.
func (p *pushLog) idleAfter(t time.Time, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		p.mu.Lock()
		ok := len(p.idle) > 0 && p.idle[len(p.idle)-1].After(t)
		p.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return ok
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func newPushLog() *pushLog { return &pushLog{at: map[uint32]time.Time{}} }

func (p *pushLog) record(n uint32, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.at[n]; !ok {
		p.at[n] = t
	}
}

// wait returns when n was first seen, waiting up to limit for it.
func (p *pushLog) wait(n uint32, limit time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(limit)
	for {
		p.mu.Lock()
		t, ok := p.at[n]
		p.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return t, ok
		}
		time.Sleep(time.Millisecond)
	}
}

var (
	genMessageIDRE = regexp.MustCompile(`(?m)^Message-ID: <([^>]+)>\r$`)
	existsLineRE   = regexp.MustCompile(`(?:^|\n)\* (\d+) EXISTS\r\n`)
	// contLineRE is a continuation request; towards the gateway (which never APPENDs) only
	// IDLE's: Dovecot answers "+ idling".
	contLineRE = regexp.MustCompile(`(?:^|\n)\+ [^\r\n]*\r\n`)
)

// startExistsProxy forwards every TCP connection made to the returned address to target, and
// records in log when an "* N EXISTS" line or an IDLE continuation passes from the server to
// the client (read time, before it is passed on). A line split over two reads is found through
// the carried tail; a match lying wholly in the tail was counted with the read before.
func startExistsProxy(tb testing.TB, target string, log *pushLog) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() {
					io.Copy(s, c)
					s.Close()
				}()
				buf := make([]byte, 256<<10)
				var carry []byte
				for {
					n, err := s.Read(buf)
					if n > 0 {
						now := time.Now()
						scan := append(carry, buf[:n]...)
						for _, m := range existsLineRE.FindAllSubmatchIndex(scan, -1) {
							if m[1] <= len(carry) {
								continue
							}
							if k, err := strconv.ParseUint(string(scan[m[2]:m[3]]), 10, 32); err == nil {
								log.record(uint32(k), now)
							}
						}
						for _, m := range contLineRE.FindAllIndex(scan, -1) {
							if m[1] > len(carry) {
								log.recordIdle(now)
							}
						}
						carry = append([]byte(nil), scan[max(0, len(scan)-32):]...)
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// percentiles returns p50, p95, p99 and max (nearest rank) of ds; zeros when empty.
func percentiles(ds []time.Duration) [4]time.Duration {
	var p [4]time.Duration
	if len(ds) == 0 {
		return p
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return [4]time.Duration{rank(0.50), rank(0.95), rank(0.99), s[len(s)-1]}
}
