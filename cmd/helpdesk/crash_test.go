package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"mime"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

// The crash test ("Crashes and faults"): the real `helpdesk serve` ingests 500 emails
// from a real Dovecot while it is killed with SIGKILL at random moments and started again.
//
// Replay a failure with CRASHTEST_SEED=<seed printed in the log>; the seed fixes the kill
// schedule and the delivery pace (not the machine's timing). CRASHTEST_KEEP_LOGS=1 keeps the
// gateway's stderr (every start, one file) even when the test passes; it is always kept when
// the test fails, and its path is logged.
const (
	crashEmails     = 500
	crashCustomers  = 20
	crashPreload    = 40              // appended before the first gateway starts
	crashAppendSpan = 8 * time.Second // the rest is appended over about this long (more under load)
	crashMinKills   = 20
	crashKillAfter  = 2 * time.Second // kills go on this long after the last email was appended
	crashKillMin    = 50 * time.Millisecond
	crashKillMax    = 600 * time.Millisecond
	// Hang guards, with room for a busy machine (the race build, other jobs on the cores):
	crashCatchUp = 10 * time.Minute // the final gateway's deadline to account for everything
	crashStall   = 2 * time.Minute  // ... and how long it may go without progress
)

// crashGateway is one `helpdesk serve` process.
type crashGateway struct {
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result once
	done   bool       // exited has been read
}

// crashRun is the state shared by the test's steps.
type crashRun struct {
	t       *testing.T
	env     []string
	sock    string
	logFile *os.File
	starts  int
	gw      *crashGateway
}

func (r *crashRun) start(bin string) *crashGateway {
	r.t.Helper()
	r.starts++
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(slices.Clone(r.env), raceEnv)
	cmd.Stdout, cmd.Stderr = r.logFile, r.logFile
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start gateway #%d: %v", r.starts, err)
	}
	fmt.Fprintf(r.logFile, "=== test: start #%d (%s) pid %d at %s\n", r.starts, filepath.Base(bin), cmd.Process.Pid, time.Now().Format("15:04:05.000"))
	g := &crashGateway{cmd: cmd, exited: make(chan error, 1)}
	go func() { g.exited <- cmd.Wait() }()
	r.gw = g
	return g
}

// kill sends SIGKILL and waits until the process is gone.
func (r *crashRun) kill(g *crashGateway) {
	r.t.Helper()
	if g.done {
		return
	}
	_ = g.cmd.Process.Kill()
	select {
	case <-g.exited:
	case <-time.After(time.Minute):
		r.t.Fatalf("gateway pid %d still running a minute after SIGKILL", g.cmd.Process.Pid)
	}
	g.done = true
	fmt.Fprintf(r.logFile, "=== test: killed pid %d at %s\n", g.cmd.Process.Pid, time.Now().Format("15:04:05.000"))
}

// waitSocket waits until the gateway answers on its control socket (a stale socket file left
// by a killed gateway refuses connections).
func (r *crashRun) waitSocket(g *crashGateway, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if _, err := r.ctl("customer", "list"); err == nil {
			return nil
		}
		select {
		case err := <-g.exited:
			g.done = true
			return fmt.Errorf("gateway exited (%v) before answering on %s", err, r.sock)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no gateway answers on %s after %v", r.sock, limit)
		}
	}
}

// ctl runs a command inside the running gateway over its control socket (the protocol of
// ctl.go: one JSON request line, then {"out"}/{"err"} frames and a last {"exit"}), without
// starting a process: 500 `ticket show` calls cost milliseconds instead of a minute.
func (r *crashRun) ctl(args ...string) (string, error) {
	conn, err := net.DialTimeout("unix", r.sock, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute)) // a hang guard
	if err := json.NewEncoder(conn).Encode(map[string]any{"args": args}); err != nil {
		return "", err
	}
	var out, errOut strings.Builder
	dec := json.NewDecoder(bufio.NewReader(conn))
	for {
		var f struct {
			Out  string `json:"out"`
			Err  string `json:"err"`
			Exit *int   `json:"exit"`
		}
		if err := dec.Decode(&f); err != nil {
			return "", fmt.Errorf("helpdesk %s over the control socket: %w", strings.Join(args, " "), err)
		}
		out.WriteString(f.Out)
		errOut.WriteString(f.Err)
		if f.Exit != nil {
			if *f.Exit != 0 {
				return out.String(), fmt.Errorf("helpdesk %s over the control socket: exit %d: %s", strings.Join(args, " "), *f.Exit, errOut.String())
			}
			return out.String(), nil
		}
	}
}

// logTail returns the end of the gateway log, for failure messages.
func (r *crashRun) logTail(n int) string {
	b, err := os.ReadFile(r.logFile.Name())
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// crashEmail is one customer email of the test.
type crashEmail struct {
	from, subject, msgID string
}

// sinkAck is what the SMTP sink received for one acknowledgement Message-ID.
type sinkAck struct {
	copies    int
	inReplyTo string
	to        string
	subject   string
}

// acksAtSink groups the sink's messages by their Message-ID header.
func acksAtSink(msgs []smtpsink.Message) (map[string]*sinkAck, []string) {
	acks := map[string]*sinkAck{}
	var bad []string
	for _, m := range msgs {
		pm, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
		if err != nil {
			bad = append(bad, fmt.Sprintf("unreadable message to %v: %v", m.To, err))
			continue
		}
		id := strings.Trim(strings.TrimSpace(pm.Header.Get("Message-Id")), "<>")
		if a := acks[id]; a != nil {
			a.copies++
			continue
		}
		dec := new(mime.WordDecoder)
		subj, err := dec.DecodeHeader(pm.Header.Get("Subject"))
		if err != nil {
			subj = pm.Header.Get("Subject")
		}
		acks[id] = &sinkAck{copies: 1, inReplyTo: strings.Trim(strings.TrimSpace(pm.Header.Get("In-Reply-To")), "<>"),
			to: strings.Join(m.To, ","), subject: subj}
	}
	return acks, bad
}

func TestCrashExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: 500 emails and 20+ SIGKILLs take about a minute; skipped with -short")
	}
	d := imaptest.NewDovecot(t)
	began := time.Now()

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CRASHTEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CRASHTEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("crash test seed %d (replay with CRASHTEST_SEED=%d)", seed, seed)
	fmt.Printf("crash test seed %d (replay with CRASHTEST_SEED=%d)\n", seed, seed)
	killRand := rand.New(rand.NewPCG(seed, 1))
	appendRand := rand.New(rand.NewPCG(seed, 2))

	p := &peers{imapAddr: d.Addr, imapUser: d.User, imapPass: d.Password, dovecot: d,
		sink: smtptest.New(t, smtpsink.Options{}), dir: t.TempDir()}
	// Every email gets its acknowledgement (the default allows 10 automatic replies per address
	// per hour), mail appended before the first sync is answered too, and each start's HTTP
	// API takes a free port (a fixed one could be held by anything else on the machine).
	env := p.env("HELPDESK_AUTOREPLY_PER_HOUR=1000", "HELPDESK_IMAP_BACKLOG_AGE=8760h", "HELPDESK_HTTP_ADDR=127.0.0.1:0")

	// The gateways that are killed are a plain build: the race-instrumented binary needs ~3 s
	// for its first batch of 200 emails on a 2-core machine, so no kill between 50 and 600 ms
	// would ever land after a commit or during a send, and the test would prove nothing. The
	// final gateway, which ingests what is left, sends what is queued and stops on SIGTERM
	// with exit 0, is the race build of TestMain (a data race makes it exit 66).
	plain := filepath.Join(filepath.Dir(binPath), "helpdesk-plain")
	if out, err := exec.Command("go", "build", "-o", plain, ".").CombinedOutput(); err != nil {
		t.Fatalf("build helpdesk without -race: %v\n%s", err, out)
	}

	logDir, err := os.MkdirTemp("", "helpdesk-crash-")
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.OpenFile(filepath.Join(logDir, fmt.Sprintf("gateway-%d.log", seed)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	r := &crashRun{t: t, env: env, sock: socketPath(filepath.Join(p.dir, "helpdesk.db")), logFile: logFile}
	t.Cleanup(func() {
		if r.gw != nil && !r.gw.done {
			r.gw.cmd.Process.Kill()
			<-r.gw.exited
		}
		logFile.Close()
		if t.Failed() || os.Getenv("CRASHTEST_KEEP_LOGS") != "" {
			t.Logf("gateway stderr (every start): %s", logFile.Name())
			fmt.Printf("gateway stderr (every start): %s\n", logFile.Name())
		} else {
			os.RemoveAll(logDir)
		}
	})

	// Customers, registered through the binary: paid (SLA8), because the free tier's limits
	// (3 new tickets a month, 2 open at a time) would hold most of their emails.
	customers := make([]string, crashCustomers)
	for i := range customers {
		customers[i] = fmt.Sprintf("klant%02d@bedrijf%02d.example", i+1, i+1)
		mustRun(t, env, "customer", "add", "-email", customers[i], "-name", fmt.Sprintf("Bedrijf %02d", i+1),
			"-sla", "SLA8", "-valid-until", "2099-12-31")
	}

	// The emails: distinct Message-IDs and subjects, spread over the customers.
	emails := make([]crashEmail, crashEmails)
	byMsgID := map[string]int{}
	for i := range emails {
		from := customers[i%crashCustomers]
		emails[i] = crashEmail{
			from:    from,
			subject: fmt.Sprintf("Storing %03d: kassa %d geeft foutcode E%03d", i+1, i%7+1, (i*37)%1000),
			msgID:   fmt.Sprintf("crash-%03d.%x@%s", i+1, seed, strings.SplitN(from, "@", 2)[1]),
		}
		byMsgID[emails[i].msgID] = i
	}

	// The deliverer: one IMAP connection, crashPreload emails before the gateway starts, the
	// rest at a random pace over about crashAppendSpan while the gateway is being killed.
	preloaded := make(chan struct{})
	appended := make(chan struct{})
	var appendErr error
	var appendedAt time.Time
	go func() {
		defer close(appended)
		defer func() {
			select {
			case <-preloaded:
			default:
				close(preloaded)
			}
		}()
		c, err := d.Dial()
		if err != nil {
			appendErr = err
			return
		}
		defer func() {
			c.Logout().Wait()
			c.Close()
		}()
		mean := crashAppendSpan / time.Duration(crashEmails-crashPreload)
		for i, e := range emails {
			if i == crashPreload {
				close(preloaded)
			}
			if i >= crashPreload {
				time.Sleep(time.Duration(appendRand.Int64N(int64(2 * mean))))
			}
			raw := customerMail(fmt.Sprintf("Bedrijf %s <%s>", e.from[5:7], e.from), e.subject, e.msgID, "",
				fmt.Sprintf("Melding %d.\r\nDe kassa in filiaal %d start niet meer op.", i+1, i%13+1))
			cmd := c.Append("INBOX", int64(len(raw)), nil)
			if _, err := cmd.Write([]byte(raw)); err != nil {
				cmd.Close()
				appendErr = fmt.Errorf("append email %d: %w", i+1, err)
				return
			}
			if err := cmd.Close(); err != nil {
				appendErr = fmt.Errorf("append email %d: %w", i+1, err)
				return
			}
			if _, err := cmd.Wait(); err != nil {
				appendErr = fmt.Errorf("append email %d: %w", i+1, err)
				return
			}
		}
		appendedAt = time.Now()
	}()
	<-preloaded

	// Kill at random moments, restart at once, until every email is appended, the gateway
	// has been killed a while longer as it works through the last ones, and at least
	// crashMinKills kills were made.
	kills, selfExits := 0, 0
	killPhase := time.Now()
killing:
	for {
		select {
		case <-appended:
			if kills >= crashMinKills && time.Since(appendedAt) >= crashKillAfter {
				break killing
			}
		default:
		}
		g := r.start(plain)
		wait := crashKillMin + time.Duration(killRand.Int64N(int64(crashKillMax-crashKillMin)+1))
		select {
		case err := <-g.exited:
			// The gateway must not stop by itself (a stale control socket, a lock it could not
			// get, a crash of its own); the log has its last words.
			g.done = true
			selfExits++
			t.Errorf("gateway start #%d (pid %d) exited by itself after less than %v: %v", r.starts, g.cmd.Process.Pid, wait, err)
			if selfExits >= 5 {
				t.Fatalf("gateway keeps exiting by itself; log tail:\n%s", r.logTail(4000))
			}
		case <-time.After(wait):
			r.kill(g)
			kills++
		}
	}
	killDuration := time.Since(killPhase)
	if appendErr != nil {
		t.Fatalf("delivering the emails: %v", appendErr)
	}
	t.Logf("%d kills in %v; %d emails appended before the first start, the last one %v into the kills; %d notifications at the sink so far",
		kills, killDuration.Round(time.Millisecond), crashPreload, appendedAt.Sub(killPhase).Round(time.Millisecond), len(p.sink.Messages()))

	// One last gateway, left alone until everything is accounted for.
	final := time.Now()
	g := r.start(binPath)
	if err := r.waitSocket(g, 2*time.Minute); err != nil {
		t.Fatalf("final gateway: %v\nlog tail:\n%s", err, r.logTail(4000))
	}
	status, err := d.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		status.Logout().Wait()
		status.Close()
	}()
	unseen := func() (messages, unseen uint32, err error) {
		sd, err := status.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumUnseen: true}).Wait()
		if err != nil {
			return 0, 0, err
		}
		if sd.NumMessages == nil || sd.NumUnseen == nil {
			return 0, 0, errors.New("STATUS answer lacks MESSAGES or UNSEEN")
		}
		return *sd.NumMessages, *sd.NumUnseen, nil
	}
	ackedEmails := func() int {
		acks, _ := acksAtSink(p.sink.Messages())
		n := 0
		for _, a := range acks {
			if _, ok := byMsgID[a.inReplyTo]; ok {
				n++
			}
		}
		return n
	}
	// Done when every email is acknowledged at the sink, is a ticket, and is flagged \Seen.
	// Nothing arrives any more, so a gateway that makes no progress for crashStall is stuck.
	deadline := time.Now().Add(crashCatchUp)
	nextReport := time.Now().Add(10 * time.Second)
	lastProgress, lastState := time.Now(), ""
	for {
		acked := ackedEmails()
		var list []json.RawMessage
		out, err := r.ctl("ticket", "list", "-json")
		if err == nil {
			err = json.Unmarshal([]byte(out), &list)
		}
		if err != nil {
			t.Fatalf("ticket list: %v", err)
		}
		_, u, err := unseen()
		if err != nil {
			t.Fatalf("STATUS INBOX: %v", err)
		}
		if acked >= crashEmails && len(list) >= crashEmails && u == 0 {
			break
		}
		state := fmt.Sprintf("%d of %d emails acknowledged at the sink, %d tickets, %d unseen in INBOX", acked, crashEmails, len(list), u)
		if state != lastState {
			lastState, lastProgress = state, time.Now()
		}
		if time.Now().After(deadline) || time.Since(lastProgress) > crashStall {
			t.Errorf("the final gateway has not caught up after %v (no progress for %v): %s\nlog tail:\n%s",
				time.Since(final).Round(time.Second), time.Since(lastProgress).Round(time.Second), state, r.logTail(6000))
			break
		}
		if time.Now().After(nextReport) {
			t.Logf("catching up: %s", state)
			nextReport = time.Now().Add(10 * time.Second)
		}
		select {
		case err := <-g.exited:
			g.done = true
			t.Fatalf("final gateway exited by itself: %v\nlog tail:\n%s", err, r.logTail(6000))
		case <-time.After(250 * time.Millisecond):
		}
	}
	catchUp := time.Since(final)

	// Every ticket with its thread and notifications, read by the running gateway.
	var list []struct {
		ID uint64 `json:"id"`
	}
	out, err := r.ctl("ticket", "list", "-json")
	if err == nil {
		err = json.Unmarshal([]byte(out), &list)
	}
	if err != nil {
		t.Fatalf("ticket list: %v", err)
	}
	type threadMsg struct {
		Direction string `json:"direction"`
		MessageID string `json:"message_id"`
		Subject   string `json:"subject"`
		From      string `json:"from"`
	}
	type notification struct {
		Kind   string `json:"kind"`
		To     string `json:"to"`
		Status string `json:"status"`
	}
	seen := map[string][]uint64{} // thread Message-ID -> tickets holding it (once per message)
	ticketOf := map[string]uint64{}
	for _, tk := range list {
		out, err := r.ctl("ticket", "show", "-json", strconv.FormatUint(tk.ID, 10))
		var show struct {
			Messages      []threadMsg    `json:"messages"`
			Notifications []notification `json:"notifications"`
		}
		if err == nil {
			err = json.Unmarshal([]byte(out), &show)
		}
		if err != nil {
			t.Fatalf("ticket show %d: %v", tk.ID, err)
		}
		for _, m := range show.Messages {
			seen[m.MessageID] = append(seen[m.MessageID], tk.ID)
			ticketOf[m.MessageID] = tk.ID
			if i, ok := byMsgID[m.MessageID]; ok && (m.Subject != emails[i].subject || m.From != emails[i].from || m.Direction != "in") {
				t.Errorf("ticket %d: message %s is %s from %s %q, want in from %s %q",
					tk.ID, m.MessageID, m.Direction, m.From, m.Subject, emails[i].from, emails[i].subject)
			}
		}
		if len(show.Messages) != 1 {
			t.Errorf("ticket %d has %d thread messages, want 1 (each email is its own question)", tk.ID, len(show.Messages))
		}
		if len(show.Notifications) != 1 || show.Notifications[0].Kind != "ack" || show.Notifications[0].Status != "sent" {
			t.Errorf("ticket %d notifications = %+v, want one ack, sent", tk.ID, show.Notifications)
		}
	}
	missing := 0
	for _, e := range emails {
		switch n := len(seen[e.msgID]); {
		case n == 0:
			missing++
			if missing <= 10 {
				t.Errorf("email %s (%q) is in no ticket", e.msgID, e.subject)
			}
		case n > 1:
			t.Errorf("email %s is in the threads %d times (tickets %v)", e.msgID, n, seen[e.msgID])
		}
	}
	for id, tks := range seen {
		if _, ok := byMsgID[id]; !ok {
			t.Errorf("thread message %q (tickets %v) is none of the test's emails", id, tks)
		}
	}
	if missing > 10 {
		t.Errorf("... %d emails in no ticket", missing)
	}

	// The sink: every email acknowledged, by one notification (one Message-ID) naming its
	// ticket, delivered at least once; extra copies at most one per kill.
	msgs := p.sink.Messages()
	acks, bad := acksAtSink(msgs)
	for _, b := range bad {
		t.Error(b)
	}
	ackIDs := map[string][]string{} // email Message-ID -> acknowledgement Message-IDs
	duplicates := 0
	refRE := regexp.MustCompile(`^\[Infobits #(\d+)\] Ontvangen: (.*)$`)
	for id, a := range acks {
		duplicates += a.copies - 1
		i, ok := byMsgID[a.inReplyTo]
		if !ok {
			t.Errorf("sink: message %s to %s (%q) answers no email of the test (In-Reply-To %q)", id, a.to, a.subject, a.inReplyTo)
			continue
		}
		ackIDs[a.inReplyTo] = append(ackIDs[a.inReplyTo], id)
		e := emails[i]
		if a.to != e.from {
			t.Errorf("acknowledgement of %s went to %s, want %s", e.msgID, a.to, e.from)
		}
		m := refRE.FindStringSubmatch(a.subject)
		if m == nil || m[2] != e.subject {
			t.Errorf("acknowledgement of %s: subject %q", e.msgID, a.subject)
		} else if tk, ok := ticketOf[e.msgID]; ok && m[1] != strconv.FormatUint(tk, 10) {
			t.Errorf("acknowledgement of %s names ticket #%s, but the email is in ticket %d", e.msgID, m[1], tk)
		}
	}
	unacked := 0
	for _, e := range emails {
		switch n := len(ackIDs[e.msgID]); {
		case n == 0:
			unacked++
			if unacked <= 10 {
				t.Errorf("email %s: no acknowledgement reached the sink", e.msgID)
			}
		case n > 1:
			t.Errorf("email %s acknowledged by %d different notifications %v", e.msgID, n, ackIDs[e.msgID])
		}
	}
	if unacked > 10 {
		t.Errorf("... %d emails without acknowledgement", unacked)
	}
	if duplicates > kills {
		t.Errorf("%d duplicate notifications at the sink for %d kills: more than one per kill", duplicates, kills)
	}

	// Every email flagged \Seen on the server.
	if n, u, err := unseen(); err != nil {
		t.Errorf("STATUS INBOX: %v", err)
	} else if n != crashEmails || u != 0 {
		t.Errorf("INBOX: %d messages, %d unseen; want %d, 0", n, u, crashEmails)
	}

	// SIGTERM: the last gateway stops cleanly.
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.exited:
		g.done = true
		if err != nil {
			t.Errorf("final gateway after SIGTERM: %v (want exit 0)\nlog tail:\n%s", err, r.logTail(4000))
		}
	case <-time.After(2 * time.Minute):
		t.Errorf("final gateway still running 2 minutes after SIGTERM")
	}

	// The file as the stopped gateway left it, read by the binary itself.
	var after []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &after); err != nil {
		t.Fatal(err)
	}
	threadTotal := 0
	for _, tk := range after {
		n, _ := tk["messages"].(float64)
		threadTotal += int(n)
	}
	if len(after) != crashEmails || threadTotal != crashEmails {
		t.Errorf("after the stop: %d tickets with %d thread messages, want %d and %d", len(after), threadTotal, crashEmails, crashEmails)
	}
	var held []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "held", "-json", "-all")), &held); err != nil {
		t.Fatal(err)
	}
	if len(held) != 0 {
		t.Errorf("%d emails held, want none: %v", len(held), held)
	}

	// Nothing in the gateways' stderr says something went wrong: no panic, no data race, no
	// error (the gap alarm, an email held as internal_error, a refused configuration ...).
	// Killed processes write nothing after the kill, so every such line is a real one.
	if b, err := os.ReadFile(logFile.Name()); err != nil {
		t.Error(err)
	} else {
		bad := 0
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, "panic:") ||
				strings.Contains(line, "fatal error:") || strings.Contains(line, "DATA RACE") {
				if bad++; bad <= 10 {
					t.Errorf("gateway stderr: %s", line)
				}
			}
		}
		if bad > 10 {
			t.Errorf("... %d such lines in %s", bad, logFile.Name())
		}
	}

	figures := fmt.Sprintf("crash test (seed %d): %d kills (%d gateway starts), %d emails, %d tickets, %d thread messages, %d held, "+
		"%d notifications at the sink (%d distinct, %d duplicates), kill phase %v, final catch-up %v, total %v",
		seed, kills, r.starts, crashEmails, len(after), threadTotal, len(held),
		len(msgs), len(acks), duplicates, killDuration.Round(time.Millisecond), catchUp.Round(time.Millisecond),
		time.Since(began).Round(time.Millisecond))
	t.Log(figures)
	fmt.Println(figures)
}
