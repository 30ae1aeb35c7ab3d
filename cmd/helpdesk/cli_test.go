package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/ingest/imapmem"
	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

// These tests run the real binary, built once, as an operator or cron would.

var binPath string

// trustedMX is the receiving server the tests' gateway trusts; staffAuth is the header it
// writes on staff mail whose DMARC passed.
const (
	trustedMX = "mx.infobits.example"
	staffAuth = "Authentication-Results: " + trustedMX + "; dkim=pass header.d=infobits.example; dmarc=pass (p=reject) header.from=infobits.example\r\n"
)

// raceEnv stops the race runtime's one-second sleep at every exit of the binary.
const raceEnv = "GORACE=atexit_sleep_ms=0"

func TestMain(m *testing.M) {
	if os.Getenv(testGatewayEnv) != "" {
		os.Exit(testGatewayMain()) // this process is a gateway of a test (parsenet_test.go)
	}
	if sock := os.Getenv("HELPDESK_TEST_CTL_PROBE"); sock != "" {
		os.Exit(ctlProbe(sock)) // TestControlSocketChecksPeers: a raw client as another user
	}
	if sock := os.Getenv("HELPDESK_TEST_CTL_FAKE"); sock != "" {
		os.Exit(ctlFake(sock)) // TestCLIChecksListener: a listener of another user posing as the gateway
	}
	dir, err := os.MkdirTemp("", "helpdesk-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "helpdesk")
	out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		// -race needs cgo; fall back to a plain build.
		if out2, err2 := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err2 != nil {
			fmt.Fprintf(os.Stderr, "build helpdesk: %v\n%s\n%s", err2, out, out2)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// peers are the servers a gateway under test talks to.
type peers struct {
	imapAddr, imapUser, imapPass string
	mem                          *imapmem.Server // nil with Dovecot
	dovecot                      *imaptest.Dovecot
	sink                         *smtpsink.Server
	dir                          string
}

func newPeers(t *testing.T) *peers {
	t.Helper()
	mem := imaptest.NewMem(t, imapmem.Options{})
	return &peers{imapAddr: mem.Addr, imapUser: mem.User, imapPass: mem.Password, mem: mem,
		sink: smtptest.New(t, smtpsink.Options{}), dir: t.TempDir()}
}

func (p *peers) deliver(t *testing.T, raw string) {
	t.Helper()
	var err error
	if p.mem != nil {
		_, err = p.mem.Append("INBOX", []byte(raw), time.Time{})
	} else {
		_, err = p.dovecot.AppendRaw("INBOX", []byte(raw), time.Now())
	}
	if err != nil {
		t.Fatal(err)
	}
}

// env is the gateway's configuration as environment variables.
func (p *peers) env(extra ...string) []string {
	return append([]string{
		"HELPDESK_DB=" + filepath.Join(p.dir, "helpdesk.db"),
		"HELPDESK_IMAP_ADDR=" + p.imapAddr, "HELPDESK_IMAP_USER=" + p.imapUser, "HELPDESK_IMAP_PASSWORD=" + p.imapPass,
		"HELPDESK_IMAP_TLS=none", "HELPDESK_SMTP_ADDR=" + p.sink.Addr(), "HELPDESK_SMTP_TLS=none",
		"HELPDESK_FROM=Infobits Helpdesk <support@infobits.example>", "HELPDESK_STAFF=jan@infobits.example",
		"HELPDESK_AUTHSERV_ID=" + trustedMX, "HELPDESK_HTTP_ADDR=127.0.0.1:0",
		"HELPDESK_SITE_URL=https://helpdesk.infobits.example", "HELPDESK_LOG_FORMAT=json",
		// No daily digest: its time is the wall clock's, and a test that counts the staff
		// list's mail would find one on a weekday morning (TestDailyDigest sets its own).
		"HELPDESK_DIGEST_TIME=off",
		"PATH=" + os.Getenv("PATH"), "HOME=" + p.dir,
	}, extra...)
}

type result struct {
	stdout, stderr string
	code           int
}

func runBin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runBinIn(t, "", env, args...)
}

// runBinIn is runBin in a working directory ("": the test's).
func runBinIn(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = dir
	cmd.Env = append(env, raceEnv)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{so.String(), se.String(), code}
}

func mustRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	r := runBin(t, env, args...)
	if r.code != 0 {
		t.Fatalf("helpdesk %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func customerMail(from, subject, msgID, extra, body string) string {
	return fmt.Sprintf("From: %s\r\nTo: support@infobits.example\r\nSubject: %s\r\nDate: Fri, 27 Nov 2026 16:00:00 +0100\r\nMessage-ID: <%s>\r\n%sMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		from, subject, msgID, extra, body)
}

// scenario is the end-to-end story shared by the in-memory and the Dovecot runs: customers
// registered through the CLI, mail ingested by `serve -once`, results read back as JSON.
func scenario(t *testing.T, p *peers) {
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "Info@BakkerijDeVries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8", "-valid-until", "2027-12-31", "-contract")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")

	p.deliver(t, customerMail("Piet <info@bakkerijdevries.nl>", "Kassa start niet op", "q1@bakkerij", "", "De kassa blijft zwart."))
	p.deliver(t, customerMail("onbekend@example.com", "Offerte", "u1@example.com", "", "Wat kost het?"))
	mustRun(t, env, "serve", "-once")

	var tickets []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &tickets); err != nil {
		t.Fatal(err)
	}
	if len(tickets) != 1 {
		t.Fatalf("ticket list = %v, want 1 ticket", tickets)
	}
	tk := tickets[0]
	for k, want := range map[string]any{"id": 1.0, "customer": "info@bakkerijdevries.nl", "subject": "Kassa start niet op",
		"status": "open", "priority": "normal", "sla": "SLA8", "calendar": "contract", "messages": 1.0} {
		if tk[k] != want {
			t.Errorf("ticket list: %s = %v, want %v", k, tk[k], want)
		}
	}
	created, err := time.Parse(time.RFC3339, tk["created"].(string))
	if err != nil {
		t.Errorf("created = %v: %v", tk["created"], err)
	}
	// SLA8 with a contract: 8 working hours of rate zone 1 after arrival (R6, R8).
	if due, err := time.Parse(time.RFC3339, tk["due"].(string)); err != nil || !due.After(created.Add(8*time.Hour-time.Second)) {
		t.Errorf("due = %v (created %v): %v", tk["due"], created, err)
	}

	// The acknowledgement reached the SMTP server, with the ticket reference.
	msgs, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 2)
	if err != nil {
		t.Fatalf("sink got %d messages: %v", len(msgs), err)
	}
	var ackID string
	for _, m := range msgs {
		subj := headerOf(m.Data, "Subject")
		switch m.To[0] {
		case "info@bakkerijdevries.nl":
			if subj != "[Infobits #1] Ontvangen: Kassa start niet op" {
				t.Errorf("ack subject = %q", subj)
			}
			ackID = strings.Trim(headerOf(m.Data, "Message-Id"), "<>")
			if headerOf(m.Data, "Auto-Submitted") != "auto-replied" {
				t.Error("ack lacks Auto-Submitted: auto-replied")
			}
		case "onbekend@example.com":
			if !strings.Contains(subj, "niet bekend") {
				t.Errorf("unknown-sender subject = %q", subj)
			}
		default:
			t.Errorf("unexpected recipient %v", m.To)
		}
	}

	// A reply to the acknowledgement joins the ticket; a staff answer is forwarded.
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Re: iets", "q2@bakkerij", "In-Reply-To: <"+ackID+">\r\n", "Hij piept ook."))
	p.deliver(t, customerMail("Jan <jan@infobits.example>", "Re: [Infobits #1] Kassa start niet op", "a1@infobits", staffAuth, "Herstart de kassa."))
	mustRun(t, env, "serve", "-once")

	var show map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "show", "1", "-json")), &show); err != nil {
		t.Fatal(err)
	}
	thread := show["messages"].([]any)
	if show["status"] != "answered" || len(thread) != 3 {
		t.Fatalf("ticket show: status %v, %d messages", show["status"], len(thread))
	}
	dirs := []string{}
	for _, m := range thread {
		mm := m.(map[string]any)
		dirs = append(dirs, mm["direction"].(string))
		for _, k := range []string{"from", "date", "message_id", "subject", "text", "attachments"} {
			if _, ok := mm[k]; !ok {
				t.Errorf("message lacks %q", k)
			}
		}
	}
	if strings.Join(dirs, ",") != "in,in,out" {
		t.Errorf("directions = %v", dirs)
	}
	notes := show["notifications"].([]any)
	if len(notes) != 2 {
		t.Fatalf("notifications = %v", notes)
	}
	for _, n := range notes {
		nn := n.(map[string]any)
		if nn["status"] != "sent" || nn["to"] != "info@bakkerijdevries.nl" || nn["sent"] == "" {
			t.Errorf("notification = %v", nn)
		}
	}
	if _, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 3); err != nil {
		t.Fatalf("answer not sent: %v", err)
	}

	var held []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "held", "-json")), &held); err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[0]["from"] != "onbekend@example.com" || held[0]["reason"] != "unknown_sender" ||
		held[0]["message_id"] != "u1@example.com" || held[0]["subject"] != "Offerte" || held[0]["id"] != 1.0 || held[0]["received"] == "" {
		t.Errorf("held = %v", held)
	}
}

// ctxTimeout is a context for waiting for an event (a message at the sink). d is a hang guard,
// never a speed limit: it is raised to a minute at least, so that a busy machine does not fail
// the wait.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), max(d, time.Minute))
	t.Cleanup(cancel)
	return ctx
}

// TestServeOnceEndToEnd runs the scenario against go-imap's in-process server.
func TestServeOnceEndToEnd(t *testing.T) {
	scenario(t, newPeers(t))
}

// TestServeOnceDovecot runs the same scenario against a real Dovecot.
func TestServeOnceDovecot(t *testing.T) {
	d := imaptest.NewDovecot(t)
	p := &peers{imapAddr: d.Addr, imapUser: d.User, imapPass: d.Password, dovecot: d,
		sink: smtptest.New(t, smtpsink.Options{}), dir: t.TempDir()}
	scenario(t, p)
}

func TestConfigErrors(t *testing.T) {
	p := newPeers(t)
	t.Run("missing keys named at once", func(t *testing.T) {
		env := []string{"HELPDESK_DB=" + filepath.Join(p.dir, "x.db"), "PATH=" + os.Getenv("PATH")}
		r := runBin(t, env, "serve", "-once")
		if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Fatalf("exit %d, stderr %q: want a one-line error", r.code, r.stderr)
		}
		for _, want := range []string{"imap_addr (HELPDESK_IMAP_ADDR)", "smtp_addr (HELPDESK_SMTP_ADDR)", "from (HELPDESK_FROM)"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr %q lacks %q", r.stderr, want)
			}
		}
	})
	t.Run("unknown key in file with its line", func(t *testing.T) {
		file := filepath.Join(p.dir, "helpdesk.conf")
		os.WriteFile(file, []byte("# comment\ndb = "+filepath.Join(p.dir, "y.db")+"\nimap_adress = x:993\n"), 0o600)
		r := runBin(t, []string{"PATH=" + os.Getenv("PATH")}, "customer", "list", "-config", file)
		if r.code == 0 || !strings.Contains(r.stderr, "helpdesk.conf:3: unknown key \"imap_adress\"") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("file values and env override", func(t *testing.T) {
		file := filepath.Join(p.dir, "ok.conf")
		os.WriteFile(file, []byte("db = "+filepath.Join(p.dir, "file.db")+"\n"), 0o600)
		env := []string{"PATH=" + os.Getenv("PATH"), "HELPDESK_CONFIG=" + file}
		mustRun(t, env, "customer", "add", "-email", "a@example.nl", "-name", "A")
		if _, err := os.Stat(filepath.Join(p.dir, "file.db")); err != nil {
			t.Errorf("db from the file not used: %v", err)
		}
		env = append(env, "HELPDESK_DB="+filepath.Join(p.dir, "env.db"))
		mustRun(t, env, "customer", "list")
		if _, err := os.Stat(filepath.Join(p.dir, "env.db")); err != nil {
			t.Errorf("HELPDESK_DB did not win over the file: %v", err)
		}
	})
	t.Run("unknown variable is a warning", func(t *testing.T) {
		r := runBin(t, p.env("HELPDESK_FUTURE_KEY=1"), "customer", "list")
		if r.code != 0 || !strings.Contains(r.stderr, "unknown environment variable HELPDESK_FUTURE_KEY") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("refused IMAP login", func(t *testing.T) {
		r := runBin(t, p.env("HELPDESK_IMAP_PASSWORD=wrong"), "serve", "-once")
		if r.code == 0 || !strings.Contains(r.stderr, "refused login") || !strings.Contains(r.stderr, p.imapAddr) {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	// The site sends passwords and session cookies: plain http only where nothing but this
	// machine reaches it.
	t.Run("plain-http site beyond loopback", func(t *testing.T) {
		for _, c := range []struct{ addr, site, says string }{
			{"127.0.0.1:0", "http://helpdesk.example.nl", "in clear; use https://"},
			{"0.0.0.0:0", "http://127.0.0.1:8025", "a plain-http site must listen on loopback only"},
			{":0", "http://localhost:8025", "a plain-http site must listen on loopback only"},
		} {
			r := runBin(t, p.env("HELPDESK_HTTP_ADDR="+c.addr, "HELPDESK_SITE_URL="+c.site), "serve", "-once")
			if r.code == 0 || !strings.Contains(r.stderr, c.says) {
				t.Errorf("http_addr %s, site_url %s: exit %d, stderr %q; want refused saying %q", c.addr, c.site, r.code, r.stderr, c.says)
			}
		}
		// Behind a TLS proxy on another machine, or with the site off, it starts.
		for _, env := range [][]string{{"HELPDESK_HTTP_ADDR=0.0.0.0:0", "HELPDESK_SITE_URL=https://helpdesk.example.nl/"},
			{"HELPDESK_HTTP_ADDR=0.0.0.0:0", "HELPDESK_SITE_URL=http://127.0.0.1:8025", "HELPDESK_SITE=off"}} {
			if r := runBin(t, p.env(env...), "serve", "-once"); r.code != 0 {
				t.Errorf("%v: exit %d, stderr %q", env, r.code, r.stderr)
			}
		}
	})
	t.Run("plaintext IMAP to a remote host", func(t *testing.T) {
		r := runBin(t, p.env("HELPDESK_IMAP_ADDR=imap.example.com:143"), "serve", "-once")
		if r.code == 0 || !strings.Contains(r.stderr, "loopback") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("unreachable SMTP keeps notifications queued", func(t *testing.T) {
		q := newPeers(t)
		env := q.env("HELPDESK_SMTP_ADDR=127.0.0.1:1")
		mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")
		q.deliver(t, customerMail("kassa@slagerijjansen.nl", "Printer", "pr@s", "", "Kapot."))
		r := runBin(t, env, "serve", "-once")
		if r.code == 0 || !strings.Contains(r.stderr, "127.0.0.1:1") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		var show map[string]any
		json.Unmarshal([]byte(mustRun(t, env, "ticket", "show", "-json", "1")), &show)
		if n := show["notifications"].([]any); len(n) != 1 || n[0].(map[string]any)["status"] != "queued" {
			t.Fatalf("notifications = %v", show["notifications"])
		}
		mustRun(t, q.env(), "serve", "-once")
		if _, err := q.sink.Wait(ctxTimeout(t, 10*time.Second), 1); err != nil {
			t.Errorf("queued acknowledgement not sent when SMTP came back: %v", err)
		}
	})
}

func TestHelpAndUsage(t *testing.T) {
	p := newPeers(t)
	out := mustRun(t, p.env(), "help")
	for _, c := range commands() {
		if !strings.Contains(out, c.name) {
			t.Errorf("help lacks %q", c.name)
		}
		r := runBin(t, p.env(), append(strings.Fields(c.name), "-h")...)
		if r.code != 0 || !strings.Contains(r.stdout, "usage: helpdesk "+c.name) {
			t.Errorf("%s -h: exit %d, stdout %q", c.name, r.code, r.stdout)
		}
	}
	// Every group of commands: `help GROUP` and `GROUP -h` list its commands; the group alone
	// is a wrong invocation that lists them on stderr.
	groups := map[string][]string{}
	for _, c := range commands() {
		if w := strings.Fields(c.name); len(w) > 1 {
			groups[w[0]] = append(groups[w[0]], c.name)
		}
	}
	for _, g := range []string{"customer", "ticket", "outbox", "templates", "backup"} {
		if len(groups[g]) == 0 {
			t.Errorf("no command group %q", g)
		}
	}
	for g, names := range groups {
		if !strings.Contains(out, g) {
			t.Errorf("help does not name the group %q", g)
		}
		for _, r := range []result{runBin(t, p.env(), "help", g), runBin(t, p.env(), g, "-h")} {
			if r.code != 0 {
				t.Errorf("help of group %s: exit %d, stderr %q", g, r.code, r.stderr)
			}
			for _, n := range names {
				if !strings.Contains(r.stdout, "helpdesk "+n+" ") {
					t.Errorf("help of group %s lacks %q:\n%s", g, n, r.stdout)
				}
			}
		}
		if g != "backup" { // `backup` alone is a command
			if r := runBin(t, p.env(), g); r.code != 2 || !strings.Contains(r.stderr, "helpdesk "+names[0]+" ") {
				t.Errorf("%s alone: exit %d, stderr %q", g, r.code, r.stderr)
			}
		}
	}
	// A command with commands under it names them in its help: ticket held dismiss is found
	// from ticket held, as backup prune from backup.
	for _, args := range [][]string{{"help", "ticket", "held"}, {"ticket", "held", "-h"}} {
		if r := runBin(t, p.env(), args...); r.code != 0 || !strings.Contains(r.stdout, "helpdesk ticket held dismiss ") {
			t.Errorf("%s: exit %d, stdout %q; want ticket held dismiss named", strings.Join(args, " "), r.code, r.stdout)
		}
	}
	if r := runBin(t, p.env(), "help", "ticket", "lijst"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "ticket lijst"`) {
		t.Errorf("help of an unknown command: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBin(t, p.env(), "ticket", "show"); r.code != 2 {
		t.Errorf("ticket show without ID: exit %d, want 2", r.code)
	}
	if r := runBin(t, p.env(), "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, "unknown command") {
		t.Errorf("unknown command: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBin(t, p.env(), "customer", "add", "-email", "x@y.nl", "-name", "X", "-sla", "GOLD"); r.code != 2 || !strings.Contains(r.stderr, "SLA24") {
		t.Errorf("bad -sla: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestCommandsWhileServing: the operator's commands work while a gateway holds the database
// (through the control socket); a second gateway fails fast; SIGTERM stops it cleanly.
func TestCommandsWhileServing(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")

	cmd := exec.Command(binPath, "serve")
	cmd.Env = append(env, raceEnv)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	sock := filepath.Join(p.dir, "helpdesk.db.sock")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control socket; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want 0600", fi.Mode().Perm())
	}

	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	if out := mustRun(t, env, "customer", "list"); !strings.Contains(out, "Bakkerij de Vries") || !strings.Contains(out, "Slagerij Jansen") {
		t.Errorf("customer list while serving:\n%s", out)
	}
	// The customer added through the gateway is known to it at once.
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Live vraag", "live@b", "", "Hallo"))
	if _, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 1); err != nil {
		t.Fatalf("no acknowledgement from the running gateway: %v\n%s", err, stderr.String())
	}
	var tickets []map[string]any
	json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json", "-customer", "INFO@bakkerijdevries.nl")), &tickets)
	if len(tickets) != 1 || tickets[0]["subject"] != "Live vraag" {
		t.Errorf("ticket list over the socket = %v", tickets)
	}
	if r := runBin(t, env, "ticket", "show", "99"); r.code != 1 || !strings.Contains(r.stderr, "no ticket 99") {
		t.Errorf("error over the socket: exit %d, stderr %q", r.code, r.stderr)
	}

	// It fails on the lock (serve's 2 s lock timeout) instead of waiting for it forever:
	// runBin's hang guard would kill it, without "another gateway" in its stderr.
	r := runBin(t, env, "serve")
	if r.code == 0 || !strings.Contains(r.stderr, "another gateway") {
		t.Errorf("second gateway: exit %d, stderr %q", r.code, r.stderr)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("serve did not stop after SIGTERM")
	}
	exited <- nil // for the cleanup
	if _, err := os.Stat(sock); err == nil {
		t.Error("control socket left behind after a clean stop")
	}
	// With the gateway gone, commands open the file directly.
	if out := mustRun(t, env, "ticket", "list"); !strings.Contains(out, "Live vraag") {
		t.Errorf("ticket list after stop:\n%s", out)
	}
}

func TestDemoOnce(t *testing.T) {
	r := runBin(t, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}, "demo", "-once")
	if r.code != 0 {
		t.Fatalf("demo -once: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"opened ticket #1", "opened ticket #2", "held #1: unknown_sender", "added to ticket #1",
		"staff answer on ticket #1", "foutrapport.pdf (application/pdf",
		"[Infobits #1] Ontvangen: Kassa start niet op na update", "Uw e-mail aan de helpdesk: adres niet bekend",
		"Re: [Infobits #1] Kassa start niet op na update",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}

// TestDemoLive: without -once the demo keeps running, prints where to point a mail client,
// turns mail sent through its SMTP server into tickets, and stops cleanly on Ctrl-C.
func TestDemoLive(t *testing.T) {
	cmd := exec.Command(binPath, "demo")
	// A server's clock in UTC (most are): the demo's times are still the helpdesk's, Amsterdam's.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir(), "TZ=UTC", raceEnv}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
	}()
	smtpLine := waitOutput(t, out, regexp.MustCompile(`SMTP  (127\.0\.0\.1:\d+)`), exited)
	sendMail(t, smtpLine[1], "kassa@slagerijjansen.nl", "support@infobits.example",
		customerMail("kassa@slagerijjansen.nl", "Weegschaal geeft foutcode", "live-demo@s", "", "E42 op het display."))
	at := waitOutput(t, out, regexp.MustCompile(`\[(\d\d):(\d\d):\d\d\] email from kassa@slagerijjansen.nl: opened ticket #3`), exited)
	now := time.Now().In(helpdesk.Amsterdam())
	h, _ := strconv.Atoi(at[1])
	m, _ := strconv.Atoi(at[2])
	if (now.Hour()*60+now.Minute()-h*60-m+1440)%1440 > 5 {
		t.Errorf("the live line's time %s:%s is not Amsterdam's (%s), as the tickets' times are", at[1], at[2], now.Format("15:04"))
	}
	waitOutput(t, out, regexp.MustCompile(`notification to kassa@slagerijjansen.nl: \[Infobits #3\] Ontvangen: Weegschaal geeft foutcode`), exited)
	// The rounds' notifications were listed before the gateway went live: not again as new.
	if strings.Contains(out.String(), "notification to piet@bakkerijdevries.nl: Re: [Infobits #1]") {
		t.Errorf("the demo lists the rounds' notifications again as they arrive:\n%s", out.String())
	}

	// The customer's site: the URL and a login the demo prints open the Helpdesk page and
	// ticket #1 with Jan's answer.
	site := waitOutput(t, out, regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/inloggen\n\s+log in as (\S+), password (\S+)`), exited)
	v := newVisitor(t, site[1])
	v.login(site[2], site[3])
	if r := v.get("/helpdesk"); !strings.Contains(r.text(), "Kassa start niet op na update") || !strings.Contains(r.text(), "geldig tot 31-12-2027") {
		t.Errorf("the demo's Helpdesk page:\n%s", r.text())
	}
	if r := v.get("/tickets/1"); !strings.Contains(r.text(), "Drie piepjes betekent") {
		t.Errorf("the demo's ticket 1 lacks Jan's answer:\n%s", r.text())
	}
	// "Wachtwoord vergeten": the demo's mail reaches no mailbox a person reads, so the link
	// is printed, and it sets the password.
	w := newVisitor(t, site[1])
	w.post("/wachtwoord/vergeten", url.Values{"email": {"kassa@slagerijjansen.nl"}})
	link := waitOutput(t, out, regexp.MustCompile(`notification to kassa@slagerijjansen.nl: Nieuw wachtwoord instellen\n\s+open: (http://127\.0\.0\.1:\d+/wachtwoord/herstel\?token=\S+)\n`), exited)
	setPassword(t, w, link[1], sitePW)
	if r := w.get("/helpdesk"); !strings.Contains(r.text(), "Weegschaal geeft foutcode") {
		t.Errorf("the Helpdesk page after a password from the printed link:\n%s", r.text())
	}

	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("demo after Ctrl-C: %v\n%s", err, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("demo did not stop after Ctrl-C")
	}
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test reading.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitOutput(t *testing.T, out *syncBuffer, re *regexp.Regexp, exited <-chan error) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		select {
		case err := <-exited:
			t.Fatalf("exited (%v) before printing %q:\n%s", err, re, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %q in output:\n%s", re, out.String())
	return nil
}

func sendMail(t *testing.T, addr, from, to, raw string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail(from, []string{to}, strings.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	c.Quit()
}
