package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/ingest/imapmem"
	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

// Operations (issue 6): import, doctor, version, logs and the systemd unit, through the binary.

// archivePeers are peers whose IMAP account also has the folder "Archief".
func archivePeers(t *testing.T, smtpOpts smtpsink.Options) *peers {
	t.Helper()
	mem := imaptest.NewMem(t, imapmem.Options{Mailboxes: []string{"Archief"}})
	return &peers{imapAddr: mem.Addr, imapUser: mem.User, imapPass: mem.Password, mem: mem,
		sink: smtptest.New(t, smtpOpts), dir: t.TempDir()}
}

func day(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// archiveMail is one email of the archive and when it reached the mailbox.
type archiveMail struct {
	raw     string
	arrival time.Time
}

// fillArchive appends 30 emails to Archief: 8 from 2024 (old; one of them the last UID) and
// 22 from 2025 — 14 questions of two customers, 4 replies to them, 3 from unknown senders and
// one question delivered twice.
func fillArchive(t *testing.T, p *peers) {
	t.Helper()
	var mails []archiveMail
	add := func(raw string, at time.Time) { mails = append(mails, archiveMail{raw, at}) }
	customers := []string{"info@bakkerijdevries.nl", "kassa@slagerijjansen.nl"}
	for i := range 7 { // old, interleaved with the recent ones below
		add(customerMail(customers[i%2], fmt.Sprintf("Oude vraag %d", i), fmt.Sprintf("old%d@archief", i), "", "Van lang geleden."),
			day(fmt.Sprintf("2024-0%d-10T10:00:00+01:00", i+1)))
		add(customerMail(customers[i%2], fmt.Sprintf("Vraag %d", i), fmt.Sprintf("q%d@archief", i), "", "Een vraag."),
			day(fmt.Sprintf("2025-0%d-12T10:00:00+01:00", i+1)))
	}
	for i := 7; i < 14; i++ {
		add(customerMail(customers[i%2], fmt.Sprintf("Vraag %d", i), fmt.Sprintf("q%d@archief", i), "", "Een vraag."),
			day(fmt.Sprintf("2025-%02d-12T10:00:00+01:00", i-6)))
	}
	for i := range 4 { // replies to the questions 0..3, from the same customer
		add(customerMail(customers[i%2], fmt.Sprintf("Re: Vraag %d", i), fmt.Sprintf("r%d@archief", i),
			fmt.Sprintf("In-Reply-To: <q%d@archief>\r\n", i), "Nog een vraag erbij."),
			day(fmt.Sprintf("2025-09-%02dT10:00:00+02:00", i+1)))
	}
	for i := range 3 {
		add(customerMail(fmt.Sprintf("vreemde%d@example.com", i), "Offerte", fmt.Sprintf("u%d@example.com", i), "", "Wat kost het?"),
			day("2025-10-01T10:00:00+02:00"))
	}
	add(mails[1].raw, day("2025-10-02T10:00:00+02:00"))                                                                         // the same email again
	add(customerMail(customers[1], "Oude vraag 7", "old7@archief", "", "Laat gearchiveerd."), day("2024-12-31T23:30:00+01:00")) // the last UID is old
	if len(mails) != 30 {
		t.Fatalf("archive has %d emails", len(mails))
	}
	for _, m := range mails {
		if _, err := p.mem.Append("Archief", []byte(m.raw), m.arrival); err != nil {
			t.Fatal(err)
		}
	}
}

func addArchiveCustomers(t *testing.T, env []string) {
	t.Helper()
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8", "-valid-until", "2027-12-31", "-contract")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen", "-sla", "SLA8", "-valid-until", "2027-12-31")
}

func ticketCount(t *testing.T, env []string) int {
	t.Helper()
	var tickets []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &tickets); err != nil {
		t.Fatal(err)
	}
	return len(tickets)
}

// summaryCount reads "  new tickets:   14" from the import summary.
func summaryCount(t *testing.T, out, what string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(what) + `:\s+(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("summary lacks %q:\n%s", what, out)
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

// jsonLines parses every line of a JSON log; a line that is not JSON fails the test.
func jsonLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("log line is not JSON: %q", sc.Text())
			continue
		}
		out = append(out, m)
	}
	return out
}

func emailLines(lines []map[string]any) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l["msg"] == "email" {
			out = append(out, l)
		}
	}
	return out
}

var progressLine = regexp.MustCompile(`(?m)^imported (\d+)/(\d+) \((\d+)%\), [0-9.]+/s, ETA \S+$`)

// TestImportArchive: an archive mailbox goes through ingest without a single notification;
// -since passes the old mail over, also for later runs; a re-run imports nothing twice (the
// checkpoint), -rescan re-reads everything and dedupe recognises what is there.
func TestImportArchive(t *testing.T) {
	p := archivePeers(t, smtpsink.Options{})
	env := p.env()
	addArchiveCustomers(t, env)
	fillArchive(t, p)

	r := runBin(t, env, "import", "-mailbox", "Archief", "-since", "2025-01-01")
	if r.code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Not a terminal: the line form, here only the final line (30 emails take well under 2 s).
	m := progressLine.FindStringSubmatch(r.stdout)
	if m == nil || m[1] != "22" || m[2] != "22" || m[3] != "100" {
		t.Errorf("no final progress line 22/22 (100%%):\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "\r") {
		t.Errorf("a progress bar (\\r) on a pipe:\n%q", r.stdout)
	}
	for what, want := range map[string]int{"new tickets": 14, "replies": 4, "held": 3, "duplicates": 1, "passed over": 8} {
		if got := summaryCount(t, r.stdout, what); got != want {
			t.Errorf("summary %s = %d, want %d\n%s", what, got, want, r.stdout)
		}
	}
	for _, want := range []string{`import of mailbox "Archief": 22 email(s) in `, "unknown_sender 3", "arrived before 2025-01-01", "notifications: none"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	// One JSON log line per email, with its outcome (and ticket).
	emails := emailLines(jsonLines(t, r.stderr))
	if len(emails) != 22 {
		t.Errorf("%d per-email log lines, want 22:\n%s", len(emails), r.stderr)
	}
	for _, l := range emails {
		if l["component"] != "import" || l["import_mailbox"] != "Archief" || l["outcome"] == nil {
			t.Errorf("email log line %v", l)
		}
		if (l["outcome"] == "new_ticket" || l["outcome"] == "reply") && l["ticket"] == nil {
			t.Errorf("email log line without ticket: %v", l)
		}
	}

	if n := ticketCount(t, env); n != 14 {
		t.Errorf("%d tickets, want 14", n)
	}
	// History, not work: every imported ticket is closed and has no deadline.
	var tickets []map[string]any
	json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &tickets)
	for _, tk := range tickets {
		if tk["status"] != "closed" || tk["due"] != "" {
			t.Errorf("imported ticket %v %v: status %v, due %q; want closed without a deadline", tk["id"], tk["subject"], tk["status"], tk["due"])
		}
	}
	var held []map[string]any
	json.Unmarshal([]byte(mustRun(t, env, "ticket", "held", "-json")), &held)
	if len(held) != 3 {
		t.Errorf("held = %v, want the 3 unknown senders", held)
	}
	if out := strings.TrimSpace(mustRun(t, env, "outbox", "list", "-json")); out != "[]" {
		t.Errorf("outbox after import = %s, want nothing queued", out)
	}
	// The imported mail is flagged \Seen; the old mail passed over is left as it was.
	if _, unseen, err := p.mem.Status("Archief"); err != nil || unseen != 8 {
		t.Errorf("Archief unseen = %d (%v), want the 8 passed over", unseen, err)
	}

	// Again, without -since: nothing imported twice, and the old mail is still passed over.
	r = runBin(t, env, "import", "-mailbox", "Archief")
	if r.code != 0 || summaryCount(t, r.stdout, "new tickets") != 0 || !strings.Contains(r.stdout, "imported 0/0 (100%)") {
		t.Errorf("re-run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := ticketCount(t, env); n != 14 {
		t.Errorf("after the re-run %d tickets, want 14", n)
	}
	// New mail in the archive: only that is imported. A second copy of a held email is a
	// duplicate, not another held email (with an empty reason).
	p.mem.Append("Archief", []byte(customerMail("info@bakkerijdevries.nl", "Nagekomen", "late@archief", "", "Nog eentje.")), day("2025-11-01T10:00:00+01:00"))
	p.mem.Append("Archief", []byte(customerMail("vreemde0@example.com", "Offerte", "u0@example.com", "", "Wat kost het?")), day("2025-11-02T10:00:00+01:00"))
	r = runBin(t, env, "import", "-mailbox", "Archief")
	if r.code != 0 || !strings.Contains(r.stdout, "imported 2/2 (100%)") || summaryCount(t, r.stdout, "new tickets") != 1 ||
		summaryCount(t, r.stdout, "duplicates") != 1 || summaryCount(t, r.stdout, "held") != 0 {
		t.Errorf("import of one new email and a copy of a held one: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Asked for: -rescan with an earlier -since takes the old mail in; everything else is
	// recognised (dedupe by content), nothing twice.
	r = runBin(t, env, "import", "-mailbox", "Archief", "-rescan", "-since", "2024-01-01")
	if r.code != 0 {
		t.Fatalf("rescan: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := summaryCount(t, r.stdout, "new tickets"); got != 8 {
		t.Errorf("rescan: %d new tickets, want the 8 old ones\n%s", got, r.stdout)
	}
	if got := summaryCount(t, r.stdout, "duplicates"); got != 24 {
		t.Errorf("rescan: %d duplicates, want 24\n%s", got, r.stdout)
	}
	if n := ticketCount(t, env); n != 23 {
		t.Errorf("after the rescan %d tickets, want 14 + 1 + 8", n)
	}

	// Nothing was queued, so a gateway run sends nothing.
	mustRun(t, env, "serve", "-once")
	if out := strings.TrimSpace(mustRun(t, env, "outbox", "list", "-json")); out != "[]" {
		t.Errorf("outbox = %s, want empty", out)
	}
	if n := len(p.sink.Messages()); n != 0 {
		t.Errorf("the SMTP server received %d messages, want none", n)
	}
}

func TestImportErrors(t *testing.T) {
	p := archivePeers(t, smtpsink.Options{})
	env := p.env()
	mustRun(t, env, "customer", "list") // the database exists: stderr is the error alone
	r := runBin(t, env, "import", "-mailbox", "Archive")
	if r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 ||
		!strings.Contains(r.stderr, `"Archive" does not exist`) || !strings.Contains(r.stderr, "Archief, INBOX") || !strings.Contains(r.stderr, "-mailbox") {
		t.Errorf("missing mailbox: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBin(t, env, "import"); r.code != 2 || !strings.Contains(r.stderr, "-mailbox is required") {
		t.Errorf("no -mailbox: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBin(t, env, "import", "-mailbox", "Archief", "-since", "1-1-2025"); r.code != 2 || !strings.Contains(r.stderr, "YYYY-MM-DD") {
		t.Errorf("bad -since: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBin(t, p.env("HELPDESK_IMAP_PASSWORD=wrong"), "import", "-mailbox", "Archief"); r.code != 1 || !strings.Contains(r.stderr, "refused login") {
		t.Errorf("wrong password: exit %d, stderr %q", r.code, r.stderr)
	}
}

// startServe runs `helpdesk serve` until the test ends and waits for its control socket.
func startServe(t *testing.T, p *peers, env []string) (stderr *syncBuffer, stop func()) {
	t.Helper()
	cmd := exec.Command(binPath, "serve")
	cmd.Env = append(env, raceEnv)
	stderr = &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("serve after SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			t.Errorf("serve did not stop after SIGTERM")
		}
	}
	t.Cleanup(stop)
	sock := filepath.Join(p.dir, "helpdesk.db.sock")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return stderr, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control socket; stderr:\n%s", stderr.String())
		}
	}
}

// TestImportWhileServing: the import runs inside the running gateway (over the control
// socket), in the line form, while the gateway goes on answering its own mailbox.
func TestImportWhileServing(t *testing.T) {
	p := archivePeers(t, smtpsink.Options{})
	env := p.env()
	addArchiveCustomers(t, env)
	for i := range 5 {
		p.mem.Append("Archief", []byte(customerMail("kassa@slagerijjansen.nl", fmt.Sprintf("Archief %d", i), fmt.Sprintf("a%d@archief", i), "", "Oud.")),
			day("2025-03-01T10:00:00+01:00"))
	}
	gwLog, stop := startServe(t, p, env)
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Live vraag", "live1@b", "", "Hallo"))
	if _, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 1); err != nil {
		t.Fatalf("no acknowledgement from the gateway: %v\n%s", err, gwLog.String())
	}

	r := runBin(t, env, "import", "-mailbox", "Archief")
	if r.code != 0 {
		t.Fatalf("import over the socket: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if m := progressLine.FindStringSubmatch(r.stdout); m == nil || m[1] != "5" || m[2] != "5" {
		t.Errorf("no line-form progress 5/5 over the socket:\n%q", r.stdout)
	}
	if strings.Contains(r.stdout, "\r") || summaryCount(t, r.stdout, "new tickets") != 5 {
		t.Errorf("import output:\n%q", r.stdout)
	}
	if n := ticketCount(t, env); n != 6 {
		t.Errorf("%d tickets, want 1 live + 5 imported", n)
	}
	// The gateway ran it and logged one line per email; nothing was queued for them.
	log := gwLog.String()
	if !strings.Contains(log, `"command":"import"`) {
		t.Errorf("the gateway did not run the import:\n%s", log)
	}
	imported := 0
	for _, l := range emailLines(jsonLines(t, log)) {
		if l["component"] == "import" {
			imported++
		}
	}
	if imported != 5 {
		t.Errorf("%d import email lines in the gateway's log, want 5", imported)
	}
	var outbox []map[string]any
	json.Unmarshal([]byte(mustRun(t, env, "outbox", "list", "-json")), &outbox)
	if len(outbox) != 1 {
		t.Errorf("outbox = %v, want only the live acknowledgement", outbox)
	}
	// The gateway's own mailbox is not for import while it reads it.
	if r := runBin(t, env, "import", "-mailbox", "INBOX"); r.code != 1 || !strings.Contains(r.stderr, "imap_mailbox") {
		t.Errorf("import of the gateway's mailbox: exit %d, stderr %q", r.code, r.stderr)
	}
	// doctor sees the database held by the gateway, and asks it.
	if out := runBin(t, env, "doctor").stdout; !strings.Contains(out, "in use by a running gateway") {
		t.Errorf("doctor while serving:\n%s", out)
	}
	// The gateway keeps working.
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Tweede live vraag", "live2@b", "", "Hallo weer"))
	msgs, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 2)
	if err != nil {
		t.Fatalf("no second acknowledgement after the import: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(p.sink.Messages()); n != 2 {
		t.Errorf("the SMTP server received %d messages, want the 2 live acknowledgements (%v)", n, msgs)
	}
	stop()
}

// openPTY opens a pseudo-terminal pair: the program writes to tty, the test reads ptmx.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlock pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("pseudo-terminal number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pseudo-terminal: %v", err)
	}
	return m, s
}

// TestImportProgressBarOnTerminal: on a terminal the progress is one line redrawn with \r.
// Stdout and stderr are both the terminal, as for an operator at a shell, and the
// configuration asks for JSON logs (as a service's does): no per-email log line is written
// between the redraws of the bar — only the bar, then the summary.
func TestImportProgressBarOnTerminal(t *testing.T) {
	p := archivePeers(t, smtpsink.Options{})
	env := p.env()
	addArchiveCustomers(t, env)
	fillArchive(t, p)
	ptmx, tty := openPTY(t)
	defer ptmx.Close()
	cmd := exec.Command(binPath, "import", "-mailbox", "Archief")
	cmd.Env = append(env, raceEnv)
	cmd.Stdout, cmd.Stderr = tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(ptmx) // ends with EIO once the program has closed the terminal
		out <- b
	}()
	waitErr := cmd.Wait()
	var screen string
	select {
	case b := <-out:
		screen = string(b)
	case <-time.After(time.Minute):
		t.Fatal("no end of the terminal output")
	}
	if waitErr != nil {
		t.Fatalf("import on a terminal: %v\n%q", waitErr, screen)
	}
	if !regexp.MustCompile(`\r\[=+\] 30/30 100%  [0-9.]+/s  ETA 0s\x1b\[K`).MatchString(screen) {
		t.Errorf("no progress bar on the terminal:\n%q", screen)
	}
	// Before the summary there is nothing but the bar, drawn again and again.
	before, _, ok := strings.Cut(screen, "import of mailbox")
	if !ok {
		t.Fatalf("no summary on the terminal:\n%q", screen)
	}
	rest := regexp.MustCompile(`\r\[[= >]{30}\] \d+/\d+ +\d+%  [0-9.]+/s  ETA \S+\x1b\[K`).ReplaceAllString(before, "")
	if strings.TrimSpace(strings.ReplaceAll(rest, "\r", "")) != "" {
		t.Errorf("the terminal shows more than the bar during the import (log lines?):\n%q", rest)
	}
	if strings.Contains(screen, `"msg":"email"`) || strings.Contains(screen, "msg=email") {
		t.Errorf("per-email log lines on the terminal:\n%q", screen)
	}
	if progressLine.MatchString(strings.ReplaceAll(screen, "\r\n", "\n")) {
		t.Errorf("line-form progress on a terminal:\n%q", screen)
	}
	if !strings.Contains(screen, "new tickets:   22") {
		t.Errorf("no summary on the terminal:\n%q", screen)
	}
}

// TestServeLogsOneJSONLinePerEmail: with log_format json every line of serve's log is JSON,
// and each email has one line with its outcome and ticket.
func TestServeLogsOneJSONLinePerEmail(t *testing.T) {
	p := newPeers(t)
	env := p.env("HELPDESK_LOG_FORMAT=json")
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Kassa 1", "k1@b", "", "Eén."))
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Kassa 2", "k2@b", "", "Twee."))
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Re: Kassa 1", "k3@b", "In-Reply-To: <k1@b>\r\n", "Drie."))
	p.deliver(t, customerMail("onbekend@example.com", "Vraag", "u@e", "", "Vier."))
	r := runBin(t, env, "serve", "-once")
	if r.code != 0 {
		t.Fatalf("serve -once: exit %d\n%s", r.code, r.stderr)
	}
	emails := emailLines(jsonLines(t, r.stderr))
	if len(emails) != 4 {
		t.Fatalf("%d email lines, want 4:\n%s", len(emails), r.stderr)
	}
	want := []struct {
		outcome string
		ticket  float64
	}{{"new_ticket", 1}, {"new_ticket", 2}, {"reply", 1}, {"held", 0}}
	for i, l := range emails {
		if l["outcome"] != want[i].outcome || l["level"] != "INFO" || l["time"] == nil {
			t.Errorf("line %d = %v, want outcome %s", i, l, want[i].outcome)
		}
		if want[i].ticket != 0 && l["ticket"] != want[i].ticket {
			t.Errorf("line %d ticket = %v, want %v", i, l["ticket"], want[i].ticket)
		}
		if want[i].ticket == 0 && (l["reason"] != "unknown_sender" || l["held"] == nil) {
			t.Errorf("held line %d = %v", i, l)
		}
	}
}

func TestDoctor(t *testing.T) {
	p := archivePeers(t, smtpsink.Options{})
	auth := smtptest.New(t, smtpsink.Options{User: "support@infobits.example", Password: "smtp-secret", AllowInsecureAuth: true})
	authEnv := func(extra ...string) []string {
		return p.env(append([]string{"HELPDESK_SMTP_ADDR=" + auth.Addr(), "HELPDESK_SMTP_USER=support@infobits.example",
			"HELPDESK_SMTP_PASSWORD=smtp-secret"}, extra...)...)
	}
	check := func(t *testing.T, r result, code int, wants ...string) {
		t.Helper()
		if r.code != code {
			t.Errorf("exit %d, want %d\n%s%s", r.code, code, r.stdout, r.stderr)
		}
		for _, w := range wants {
			if !regexp.MustCompile(w).MatchString(r.stdout) {
				t.Errorf("doctor output lacks %q:\n%s", w, r.stdout)
			}
		}
	}
	t.Run("all ok", func(t *testing.T) {
		p.deliver(t, staffMailWith(1, staffAuth)) // the server's authserv-id, for the authserv check
		r := runBin(t, authEnv(), "doctor")
		check(t, r, 0, `(?m)^ok +config +valid`, `(?m)^ok +time zone +Europe/Amsterdam loaded`, `(?m)^ok +templates `,
			`(?m)^ok +database +.*helpdesk.db does not exist yet`, `(?m)^ok +IMAP +logged in at .* mailbox INBOX has 1 message`,
			`(?m)^ok +authserv +authserv_id mx.infobits.example is what the server writes`,
			`(?m)^ok +SMTP +connected to .*AUTH PLAIN as support@infobits.example accepted; nothing sent`,
			`(?m)^ok +site_url`, `(?m)^ok +staff auth`, `(?m)^all checks passed$`)
		if strings.Contains(r.stdout, "FAIL") || strings.Contains(r.stdout, "WARN") {
			t.Errorf("doctor:\n%s", r.stdout)
		}
		if n := len(auth.Messages()); n != 0 {
			t.Errorf("doctor sent %d messages", n)
		}
		// With a database: writable, with its counts.
		mustRun(t, authEnv(), "customer", "add", "-email", "a@example.nl", "-name", "A")
		check(t, runBin(t, authEnv(), "doctor"), 0, `(?m)^ok +database +.*helpdesk.db writable \(1 customers, 0 tickets`)
	})
	t.Run("wrong IMAP password", func(t *testing.T) {
		check(t, runBin(t, authEnv("HELPDESK_IMAP_PASSWORD=wrong"), "doctor"), 1,
			`(?m)^FAIL +IMAP +IMAP server .* refused login as "helpdesk"`, `(?m)^ +fix: check imap_user and imap_password .*app password`,
			`(?m)^ok +SMTP `, `(?m)^1 check\(s\) failed`)
	})
	t.Run("missing mailbox", func(t *testing.T) {
		check(t, runBin(t, authEnv("HELPDESK_IMAP_MAILBOX=Support"), "doctor"), 1,
			`(?m)^FAIL +IMAP +logged in .* but the mailbox "Support" does not exist`, `(?m)^ +fix: set imap_mailbox to one of: Archief, INBOX`)
	})
	t.Run("unreachable SMTP", func(t *testing.T) {
		check(t, runBin(t, p.env("HELPDESK_SMTP_ADDR=127.0.0.1:1"), "doctor"), 1,
			`(?m)^FAIL +SMTP +SMTP server 127.0.0.1:1 \(none\): connect: .*refused`, `(?m)^ +fix: nothing listens on 127.0.0.1:1`, `(?m)^ok +IMAP `)
	})
	t.Run("wrong SMTP password", func(t *testing.T) {
		check(t, runBin(t, authEnv("HELPDESK_SMTP_PASSWORD=wrong"), "doctor"), 1,
			`(?m)^FAIL +SMTP +SMTP server .* refused login as "support@infobits.example"`, `(?m)^ +fix: check smtp_user and smtp_password`)
	})
	t.Run("config and consistency", func(t *testing.T) {
		check(t, runBin(t, p.env("HELPDESK_AUTHSERV_ID=", "HELPDESK_SITE_URL=", "HELPDESK_IMAP_MOVE_TO=Verwerkt"), "doctor"), 1,
			`(?m)^FAIL +config +configuration: staff email`, `(?m)^FAIL +staff auth +require_auth is on but authserv_id is empty`,
			`(?m)^WARN +site_url +not set`, `(?m)^WARN +IMAP +the move-to folder "Verwerkt" does not exist yet`)
		check(t, runBin(t, p.env("HELPDESK_REQUIRE_AUTH=false", "HELPDESK_IMAP_MOVE_TO=Archief"), "doctor"), 0,
			`(?m)^WARN +staff auth +require_auth = false`, `(?m)^ok +IMAP +processed mail is moved to Archief`, `(?m)^all checks passed, 1 warning`)
	})
	t.Run("certificates are checked", func(t *testing.T) {
		// A server whose certificate this machine does not trust (self-signed) is refused.
		tlsSink := smtptest.New(t, smtpsink.Options{TLS: true})
		check(t, runBin(t, p.env("HELPDESK_SMTP_ADDR="+tlsSink.Addr(), "HELPDESK_SMTP_TLS=starttls"), "doctor"), 1,
			`(?m)^FAIL +SMTP +SMTP server .* \(starttls\): EHLO and STARTTLS: .*certificate`, `(?m)^ +fix: the server's certificate is not trusted by this machine`)
		// IMAPS against a server that speaks plaintext on that port.
		check(t, runBin(t, p.env("HELPDESK_IMAP_TLS=tls"), "doctor"), 1,
			`(?m)^FAIL +IMAP +connect to IMAP server .* \(tls\)`, `(?m)^ +fix: the server does not speak TLS right away on this port: set imap_tls`)
	})
	t.Run("unreadable config file", func(t *testing.T) {
		check(t, runBin(t, p.env(), "doctor", "-config", filepath.Join(p.dir, "nope.conf")), 1, `(?m)^FAIL +config +config file: open`)
	})
}

func TestVersion(t *testing.T) {
	out := mustRun(t, []string{"PATH=" + os.Getenv("PATH")}, "version")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "version: ") || !strings.HasPrefix(lines[1], "commit:  ") ||
		lines[2] != fmt.Sprintf("go:      %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH) {
		t.Fatalf("version printed:\n%s", out)
	}
	// Built from the git work tree with VCS stamping and a version: both are shown.
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("no git work tree: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "helpdesk")
	build := exec.Command("go", "build", "-buildvcs=true", "-ldflags=-X main.version=v1.2.3", "-o", bin, ".")
	if b, err := build.CombinedOutput(); err != nil {
		t.Skipf("build with VCS stamping: %v\n%s", err, b)
	}
	dirty, _ := exec.Command("git", "status", "--porcelain").Output()
	commit := strings.TrimSpace(string(head))
	if len(bytes.TrimSpace(dirty)) > 0 {
		commit += "-modified"
	}
	out2, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("version: v1.2.3\ncommit:  %s\n", commit); !strings.HasPrefix(string(out2), want) {
		t.Errorf("version printed:\n%s\nwant it to start with:\n%s", out2, want)
	}
}

// TestSystemdUnit: deploy/helpdesk.service is key=value sections that run `helpdesk serve`
// hardened; systemd-analyze verifies it where it exists.
func TestSystemdUnit(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/helpdesk.service")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]map[string][]string{}
	var cur map[string][]string
	for n, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			cur = map[string][]string{}
			sections[strings.Trim(line, "[]")] = cur
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || cur == nil || strings.TrimSpace(k) != k || k == "" {
				t.Fatalf("line %d: not key=value in a section: %q", n+1, line)
			}
			cur[k] = append(cur[k], v)
		}
	}
	for _, s := range []string{"Unit", "Service", "Install"} {
		if sections[s] == nil {
			t.Errorf("no [%s] section", s)
		}
	}
	svc := sections["Service"]
	if start := svc["ExecStart"]; len(start) != 1 || !strings.Contains(start[0], "helpdesk serve") {
		t.Errorf("ExecStart = %v, want helpdesk serve", start)
	}
	for k, want := range map[string]string{
		"StateDirectory": "helpdesk", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"NoNewPrivileges": "yes", "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "LockPersonality": "yes",
		"MemoryDenyWriteExecute": "yes", "SystemCallFilter": "@system-service", "EnvironmentFile": "-/etc/helpdesk/helpdesk.env",
		"Restart": "on-failure", "KillSignal": "SIGTERM", "TimeoutStopSec": "30", "User": "helpdesk",
		"Environment": "HELPDESK_DB=/var/lib/helpdesk/helpdesk.db",
	} {
		if !strings.Contains(strings.Join(svc[k], "\n"), want) {
			t.Errorf("%s = %v, want %s", k, svc[k], want)
		}
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		// verify checks that ExecStart's program exists: point it at the test binary.
		unit := filepath.Join(t.TempDir(), "helpdesk.service")
		os.WriteFile(unit, []byte(strings.ReplaceAll(string(raw), "/usr/local/bin/helpdesk", binPath)), 0o644)
		out, err := exec.Command(sa, "verify", unit).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	} else {
		t.Log("systemd-analyze not installed: unit not verified by systemd")
	}
}

// TestProgressLines: not on a terminal, a line every 2 seconds and one at the end, with the
// count, percent, rate and ETA.
func TestProgressLines(t *testing.T) {
	start := time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC)
	clock := start
	var mu sync.Mutex
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}
	out := &syncBuffer{}
	p := newProgress(out, now, func() {})
	if p.tty {
		t.Fatal("a buffer taken for a terminal")
	}
	stop := p.run()
	p.observe(ingest.Event{Listed: 10000})
	for range 1200 {
		p.observe(ingest.Event{Outcome: &desk.Outcome{Action: "new_ticket"}})
	}
	mu.Lock()
	clock = start.Add(4 * time.Second)
	mu.Unlock()
	for deadline := time.Now().Add(lineEvery + time.Minute); !strings.Contains(out.String(), "\n") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if got, want := out.String(), "imported 1200/10000 (12%), 300/s, ETA 29s\n"; got != want {
		t.Errorf("after 2 s: %q, want %q", got, want)
	}
	for range 8799 {
		p.observe(ingest.Event{Outcome: &desk.Outcome{Action: "held", Reason: "unknown_sender", HeldID: 1}})
	}
	// A delivery report about a notification without a ticket is kept as a held email: it
	// counts as a bounce and under held, as `ticket held` lists it.
	p.observe(ingest.Event{Outcome: &desk.Outcome{Action: "bounce", Reason: "bounce", HeldID: 2}})
	mu.Lock()
	clock = start.Add(20 * time.Second)
	mu.Unlock()
	stop(true)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; last != "imported 10000/10000 (100%), 500/s, ETA 0s" {
		t.Errorf("final line %q", last)
	}
	sum := p.summary("Archief", time.Time{})
	for _, want := range []string{"10000 email(s) in 20s", "new tickets:   1200", "bounces:       1", "held:          8800 (bounce 1, unknown_sender 8799;"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
}
