package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

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

// TestImportedArchiveIsHistory: an archive imported from Dovecot becomes closed tickets
// without a deadline, below today's work in `ticket list`; they do not count against the SLA24
// limits of the present (sla24_open_tickets = 2 by default; the archive has 4), so the same
// customer's new email becomes a ticket and is acknowledged; the customer's reply to an
// archived ticket opens it again.
func TestImportedArchiveIsHistory(t *testing.T) {
	d := imaptest.NewDovecot(t)
	c, err := d.Dial()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Archief", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p := &peers{imapAddr: d.Addr, imapUser: d.User, imapPass: d.Password, dovecot: d,
		sink: smtptest.New(t, smtpsink.Options{}), dir: t.TempDir()}
	env := p.env()
	const jansen = "kassa@slagerijjansen.nl"
	mustRun(t, env, "customer", "add", "-email", jansen, "-name", "Slagerij Jansen") // SLA24
	long := time.Now().Add(-70 * 24 * time.Hour)
	for i := range 4 {
		raw := customerMail(jansen, fmt.Sprintf("Vraag %d", i), fmt.Sprintf("q%d@archief", i), "", "Een vraag.")
		if _, err := d.AppendRaw("Archief", []byte(raw), long.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.AppendRaw("Archief", []byte(customerMail(jansen, "Re: Vraag 0", "r0@archief", "In-Reply-To: <q0@archief>\r\n", "Nog iets.")), long.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}

	r := runBin(t, env, "import", "-mailbox", "Archief")
	if r.code != 0 || summaryCount(t, r.stdout, "new tickets") != 4 || summaryCount(t, r.stdout, "replies") != 1 || summaryCount(t, r.stdout, "held") != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, tk := range ticketList(t, env) {
		if tk["status"] != "closed" || tk["due"] != "" {
			t.Errorf("imported ticket %v: status %v, due %q; want closed, no deadline", tk["id"], tk["status"], tk["due"])
		}
	}

	// Today's email from the same SLA24 customer is today's work.
	p.deliver(t, customerMail(jansen, "Kassa print niet", "new@jansen", "", "Help."))
	mustRun(t, env, "serve", "-once")
	if out := strings.TrimSpace(mustRun(t, env, "ticket", "held", "-json")); out != "[]" {
		t.Errorf("held after today's email = %s: the archive counted against today's limits", out)
	}
	ts := ticketList(t, env)
	if len(ts) != 5 || ts[0]["subject"] != "Kassa print niet" || ts[0]["status"] != "open" || ts[0]["due"] == "" {
		t.Fatalf("ticket list = %v, want today's ticket first, open with a deadline", ts)
	}
	if msgs := p.sink.Messages(); len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Kassa print niet") {
		t.Errorf("the SMTP server received %d messages, want the one acknowledgement", len(msgs))
	}

	// The customer answers on an archived ticket (#2, "Vraag 1"): open again, listed as work.
	p.deliver(t, customerMail(jansen, "Re: Vraag 1", "again@jansen", "In-Reply-To: <q1@archief>\r\n", "Het is er weer."))
	mustRun(t, env, "serve", "-once")
	if tk := ticketShow(t, env, 2); tk["status"] != "open" || len(tk["messages"].([]any)) != 2 {
		t.Errorf("archived ticket after the customer's reply: status %v, %d messages; want open, 2", tk["status"], len(tk["messages"].([]any)))
	}
	ts = ticketList(t, env)
	if ts[1]["id"] != float64(2) || ts[2]["status"] != "closed" {
		t.Errorf("ticket list = %v, want the reopened archived ticket among the work, before the closed ones", ts)
	}
}
