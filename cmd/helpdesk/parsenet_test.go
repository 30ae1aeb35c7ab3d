package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
)

// One email must never stop ingest. The bounds (parse's structure walk)
// hold the attacks without the clock; these tests switch them off to show what stands behind
// them: /healthz sees a stalled parse, the parse deadline holds the email, SIGTERM is honoured
// while a parse runs away, and an email a gateway died reading is held at the next start.

// testGatewayEnv, set in its environment, makes this test binary a gateway process
// (TestMain): `serve` with every bound of reading an email and its nets switched off, so that
// the real attack makes a parse run away — the one thing the production binary cannot be
// made to do, which is the point. It is killed as the real one is: SIGTERM, SIGKILL.
const testGatewayEnv = "HDTEST_GATEWAY_UNBOUNDED_PARSE"

func testGatewayMain() int {
	return runProcess(os.Args[1:], func(e *env) {
		e.parseLimits = parse.Limits{Nesting: -1, OpenNesting: -1, Parts: -1, HeaderFields: -1, Reads: -1, Deadline: -1}
	})
}

// encodedWordAttack is a 3 kB email seen in practice: depth multiparts inside each other, none closed,
// their boundary parameters hidden in RFC 2047 encoded words. Unbounded, enmime's work doubles
// with every level; 40 levels never finish.
func encodedWordAttack(depth int, msgID string) string {
	var b strings.Builder
	param := func(i int) string {
		return "=?us-ascii?b?" + base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "boundary=b%d", i)) + "?="
	}
	b.WriteString("From: Bakkerij de Vries <info@bakkerijdevries.nl>\r\nTo: support@infobits.example\r\n" +
		"Subject: Kassa doet raar\r\nDate: Fri, 27 Nov 2026 16:00:00 +0100\r\nMessage-ID: <" + msgID + ">\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; " + param(0) + "\r\n\r\n")
	for i := 1; i < depth; i++ {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; %s\r\n\r\n", i-1, param(i))
	}
	fmt.Fprintf(&b, "--b%d\r\nContent-Type: text/plain\r\n\r\nDe kassa start niet.\r\n", depth-1)
	return b.String()
}

// listedHeld is a held email as `ticket held -json` prints it.
type listedHeld struct {
	MessageID string `json:"message_id"`
	From      string `json:"from"`
	Subject   string `json:"subject"`
	Reason    string `json:"reason"`
	Detail    string `json:"detail"`
}

// heldEmail is the held email with the Message-ID, as `ticket held -json -all` by the real
// binary lists it (through the running gateway's control socket when one runs); nil if none.
func heldEmail(t *testing.T, p *peers, msgID string) *listedHeld {
	t.Helper()
	var held []listedHeld
	if err := json.Unmarshal([]byte(mustRun(t, p.env(), "ticket", "held", "-json", "-all")), &held); err != nil {
		t.Fatal(err)
	}
	for i := range held {
		if held[i].MessageID == msgID {
			return &held[i]
		}
	}
	return nil
}

// checkHeldAttack fails unless the attack msgID is held as unparseable with a detail
// containing why, under its sender and subject.
func checkHeldAttack(t *testing.T, p *peers, msgID, why string) *listedHeld {
	t.Helper()
	h := heldEmail(t, p, msgID)
	if h == nil || h.Reason != helpdesk.HeldUnparseable || !strings.Contains(h.Detail, why) {
		t.Errorf("held email %s: %+v; want unparseable, %q in the detail", msgID, h, why)
		return h
	}
	if h.From != "info@bakkerijdevries.nl" || h.Subject != "Kassa doet raar" {
		t.Errorf("held email %s: From %q, Subject %q: staff must see who sent what", msgID, h.From, h.Subject)
	}
	return h
}

// checkRawKept opens the database of the stopped gateway and fails unless every email of raws
// (by Message-ID) is held with its raw bytes, byte for byte.
func checkRawKept(t *testing.T, p *peers, raws map[string]string) {
	t.Helper()
	db, err := store.Open(filepath.Join(p.dir, "helpdesk.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(context.Background(), func(tx *store.Tx) error {
		hs, err := tx.HeldEmails()
		if err != nil {
			return err
		}
		kept := map[string]bool{}
		for _, h := range hs {
			raw, ok := raws[h.MessageID]
			if !ok {
				continue
			}
			got, err := tx.Raw(h.RawSHA256)
			if err != nil {
				return err
			}
			if string(got) != raw {
				t.Errorf("held email %s keeps %d bytes, not the %d received", h.MessageID, len(got), len(raw))
			}
			kept[h.MessageID] = true
		}
		for id := range raws {
			if !kept[id] {
				t.Errorf("held email %s: no raw bytes kept", id)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestParseStallHealth: with the structure walk and the work budget off, the attack makes
// the parse run until its deadline (10 s here). While it runs past the step's limit (by the
// gateway's clock, stepped by the test), /healthz answers 503 naming the batch being read;
// then the deadline holds the email as unparseable, /healthz is 200 again and the customer's
// next email is answered.
func TestParseStallHealth(t *testing.T) {
	p := newPeers(t)
	mustRun(t, p.env(), "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	clk := &stepClock{t: time.Now()}
	out := &syncBuffer{}
	exited, stop := serveAdjusted(t, p.env(), out, clk.Now, func(e *env) {
		e.parseLimits = parse.Limits{Nesting: -1, OpenNesting: -1, Parts: -1, HeaderFields: -1, Reads: -1, Deadline: 10 * time.Second}
	})
	m := waitOutput(t, out, regexp.MustCompile(`"msg":"http listening"[^\n]*"addr":"([^"]+)"`), exited)
	base := "http://" + m[1]
	waitHealthz(t, base, nil, func(h healthz) bool { return h.code == http.StatusOK })

	attack := encodedWordAttack(40, "stall@bakkerij")
	p.deliver(t, attack)
	h := waitHealthz(t, base, func() { clk.Advance(time.Minute) }, func(h healthz) bool { return h.code == http.StatusServiceUnavailable })
	if !strings.Contains(h.Components["ingest"], "reading the emails of a batch of 1 email(s) (uids 1-1), over the limit of 2m10s") ||
		!strings.HasPrefix(h.Reason, "ingest: stalled: ") || h.Components["imap"] != "ok" {
		t.Errorf("healthz while a parse runs away: %+v; want 503 naming the batch being read", h)
	}
	waitHealthz(t, base, nil, func(h healthz) bool { return h.code == http.StatusOK })
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Bonprinter", "next@bakkerij", "", "De bonprinter piept."))
	if _, err := p.sink.Wait(ctxTimeout(t, time.Minute), 1); err != nil {
		t.Fatalf("the email behind the attack was not answered: %v\n%s", err, out.String())
	}
	checkHeldAttack(t, p, "stall@bakkerij", "not read within 10s")
	stop()
	checkRawKept(t, p, map[string]string{"stall@bakkerij": attack})
}

// parseGateway is a gateway process of testGatewayMain.
type parseGateway struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
}

func startParseGateway(t *testing.T, p *peers) *parseGateway {
	t.Helper()
	g := &parseGateway{out: &syncBuffer{}, exited: make(chan error, 1)}
	g.cmd = exec.Command(os.Args[0], "serve")
	g.cmd.Env = append(p.env("HELPDESK_LOG_LEVEL=debug"), testGatewayEnv+"=1", raceEnv)
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.exited <- g.cmd.Wait() }()
	t.Cleanup(func() {
		if g.cmd.ProcessState == nil {
			_ = g.cmd.Process.Kill()
			<-g.exited
		}
		if t.Failed() {
			t.Logf("gateway pid %d:\n%s", g.cmd.Process.Pid, g.out.String())
		}
	})
	return g
}

// wait waits for a log line of the gateway.
func (g *parseGateway) wait(t *testing.T, re string) {
	t.Helper()
	waitOutput(t, g.out, regexp.MustCompile(re), g.exited)
}

// kill sends sig and waits (two minutes at most: SIGTERM lets the batch in hand its stop
// grace of 15 s) until the process is gone; it returns the exit error.
func (g *parseGateway) kill(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-g.exited:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatalf("gateway pid %d still runs 2 minutes after %v:\n%s", g.cmd.Process.Pid, sig, g.out.String())
		return nil
	}
}

// TestParseCrashHeldAtNextStart: gateway processes whose parse runs away on the real attack
// (every bound and net off) are stopped and killed as an operator would; at every next start
// the email is not read again but held as unparseable, raw kept, and the customer's next
// email is taken in.
//
//  1. SIGTERM while the parse runs away: the gateway stops within its stop grace (it does not
//     wait for the parse) and exits 0; it had recorded the email as reading long.
//  2. The next start holds it without reading it; the next email gets its acknowledgement.
//  3. Another attack, SIGKILL while its batch is read; the next start reads that batch's
//     emails one at a time, and is killed while the attack is read on its own, and so is the
//     start after it; the start after that holds it (or, had the machine been slow enough for
//     a reading to run past 5 s before a kill, holds it as reading long: the same for the
//     user).
func TestParseCrashHeldAtNextStart(t *testing.T) {
	p := newPeers(t)
	mustRun(t, p.env(), "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")

	// 1. SIGTERM while the parse runs away.
	g := startParseGateway(t, p)
	g.wait(t, `"msg":"gateway running"`)
	first := encodedWordAttack(40, "aanval-1@bakkerij")
	p.deliver(t, first) // uid 1
	g.wait(t, `"msg":"reading an email runs long; recorded[^\n]*"uid":1`)
	if err := g.kill(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM during a runaway parse: %v; want 0\n%s", err, g.out.String())
	}
	if !strings.Contains(g.out.String(), `"msg":"stopped"`) {
		t.Errorf("the gateway did not stop in order:\n%s", g.out.String())
	}

	// 2. The next start does not read it again.
	g = startParseGateway(t, p)
	g.wait(t, `"msg":"gateway running"`)
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Bonprinter", "next-1@bakkerij", "", "De bonprinter piept.")) // uid 2
	if _, err := p.sink.Wait(ctxTimeout(t, time.Minute), 1); err != nil {
		t.Fatalf("the email behind the attack was not answered: %v\n%s", err, g.out.String())
	}
	checkHeldAttack(t, p, "aanval-1@bakkerij", "took longer than 5s and the gateway stopped before it was done; it is not read again")

	// 3. SIGKILL while its batch is read, and again twice while it is parsed alone.
	second := encodedWordAttack(40, "aanval-2@bakkerij")
	p.deliver(t, second) // uid 3
	g.wait(t, `"msg":"reading emails"[^\n]*"first":3,"last":3,"alone":false`)
	if err := g.kill(t, syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL: the gateway exited 0")
	}
	for range 2 {
		g = startParseGateway(t, p)
		g.wait(t, `"msg":"parsing an email alone"[^\n]*"uid":3`)
		if err := g.kill(t, syscall.SIGKILL); err == nil {
			t.Fatal("SIGKILL: the gateway exited 0")
		}
	}
	g = startParseGateway(t, p)
	g.wait(t, `"msg":"gateway running"`)
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Pinautomaat", "next-2@bakkerij", "", "De pin doet het niet.")) // uid 4
	if _, err := p.sink.Wait(ctxTimeout(t, time.Minute), 2); err != nil {
		t.Fatalf("the email behind the second attack was not answered: %v\n%s", err, g.out.String())
	}
	h := checkHeldAttack(t, p, "aanval-2@bakkerij", "it is not read again automatically")
	if h != nil {
		t.Logf("the second attack, held: %s", h.Detail)
	}
	if h != nil && !strings.Contains(h.Detail, "the gateway stopped while reading it three times") && !strings.Contains(h.Detail, "took longer than 5s") {
		t.Errorf("held detail %q: want it to say the gateway stopped while reading it", h.Detail)
	}
	if err := g.kill(t, syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v; want 0\n%s", err, g.out.String())
	}
	var tickets []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, p.env(), "ticket", "list", "-json")), &tickets); err != nil {
		t.Fatal(err)
	}
	if len(tickets) != 2 {
		t.Errorf("%d tickets, want 2: the two emails behind the attacks", len(tickets))
	}
	checkRawKept(t, p, map[string]string{"aanval-1@bakkerij": first, "aanval-2@bakkerij": second})
}
