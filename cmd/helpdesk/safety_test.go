package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
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
	"github.com/infobits/helpdesk/store"
)

// What reaches an operator's terminal or the website is safe. Through the
// real binary (the CLI, the control socket) and the HTTP API of a running gateway.

// forbidden finds a character that must never reach the terminal raw: C0 controls other than
// tab and newline, DEL, C1 controls, and the bidi embeddings, overrides and isolates.
func forbidden(s string) (rune, bool) {
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n':
		case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return r, true
		}
	}
	return 0, false
}

func TestTerminalEscapes(t *testing.T) {
	for _, tc := range []struct{ in, line, text string }{
		{"plain café", "plain café", "plain café"},
		{"a\x1b[2Jb\x07", `a\x1b[2Jb\x07`, `a\x1b[2Jb\x07`},
		{"csi\u009b31m", `csi\x9b31m`, `csi\x9b31m`},
		{"gpj\u202e.exe\u2066x\u2069", `gpj\u202e.exe\u2066x\u2069`, `gpj\u202e.exe\u2066x\u2069`},
		{"one\ntwo\tthree\r", `one\ntwo\tthree\r`, "one\ntwo\tthree\\r"},
		{"del\x7f nul\x00", `del\x7f nul\x00`, `del\x7f nul\x00`},
		{"bad \xff byte", "bad \uFFFD byte", "bad \uFFFD byte"},
	} {
		if got := terminalSafe(tc.in); got != tc.line {
			t.Errorf("terminalSafe(%q) = %q, want %q", tc.in, got, tc.line)
		}
		if got := terminalText(tc.in); got != tc.text {
			t.Errorf("terminalText(%q) = %q, want %q", tc.in, got, tc.text)
		}
	}
}

// TestHostileHeadersEscapedOnTerminal: emails whose From, Subject and text carry BEL, C1
// controls and bidi overrides, and a customer whose name carries an escape sequence (a CSV
// from elsewhere), are listed by `ticket held`, `ticket list`, `ticket show` and `customer
// list` with every such character escaped — never raw, as ESC and BEL were seen in practice from a
// From header reach the terminal.
func TestHostileHeadersEscapedOnTerminal(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "kassa\u009b31m\u202e@slagerijjansen.nl", "-name", "Slagerij \x1b]0;pwned\x07Jansen\u202e")
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	// A customer's ticket: C1 and a bidi override in the From address, bidi in the subject
	// (encoded word) and in the text.
	p.deliver(t, "From: <kassa\u009b31m\u202e@slagerijjansen.nl>\r\nTo: support@infobits.example\r\n"+
		"Subject: =?utf-8?q?Factuur_=E2=80=AEfdp.exe?=\r\nDate: Fri, 27 Nov 2026 16:00:00 +0100\r\n"+
		"Message-ID: <t1@slagerij>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Zie bijlage \u202egpj.exe\r\nTweede regel.\r\n")
	// Unknown senders, held: BEL in the address (the From seen in practice), C1 and bidi.
	p.deliver(t, "From: x\x1b]0;t\x07@evil.example\r\nTo: support@infobits.example\r\nSubject: hallo\r\n"+
		"Date: Fri, 27 Nov 2026 16:01:00 +0100\r\nMessage-ID: <t2@evil>\r\n\r\nbody\r\n")
	p.deliver(t, "From: <a\u009bb\u2066@evil.example>\r\nTo: support@infobits.example\r\nSubject: =?utf-8?q?=E2=80=AEtxt.exe?=\r\n"+
		"Date: Fri, 27 Nov 2026 16:02:00 +0100\r\nMessage-ID: <t3@evil>\r\n\r\nbody\r\n")
	mustRun(t, env, "serve", "-once")

	outputs := map[string]string{
		"ticket held":   mustRun(t, env, "ticket", "held"),
		"ticket list":   mustRun(t, env, "ticket", "list"),
		"ticket show":   mustRun(t, env, "ticket", "show", "1"),
		"customer list": mustRun(t, env, "customer", "list"),
	}
	for cmd, out := range outputs {
		if r, bad := forbidden(out); bad {
			t.Errorf("%s printed %U raw:\n%q", cmd, r, out)
		}
	}
	for _, c := range []struct{ cmd, want string }{
		{"ticket list", `kassa\x9b31m\u202e@slagerijjansen.nl`},
		{"ticket list", `Factuur \u202efdp.exe`},
		{"ticket show", `Ticket 1: Factuur \u202efdp.exe`},
		{"ticket show", `customer kassa\x9b31m\u202e@slagerijjansen.nl`},
		{"ticket show", "    Zie bijlage \\u202egpj.exe\n    Tweede regel.\n"}, // the text keeps its lines
		{"ticket held", `a\x9bb\u2066@evil.example`},
		{"ticket held", `\u202etxt.exe`},
		{"customer list", `Slagerij \x1b]0;pwned\x07Jansen\u202e`},
	} {
		if !strings.Contains(outputs[c.cmd], c.want) {
			t.Errorf("%s lacks %q:\n%s", c.cmd, c.want, outputs[c.cmd])
		}
	}
	// The From with BEL: shown escaped, or refused as no sender ("-"): never raw.
	if held := outputs["ticket held"]; !strings.Contains(held, `\x07@evil.example`) && !regexp.MustCompile(`(?m)^\d+\s+\S+ \S+\s+-\s+no_sender`).MatchString(held) {
		t.Errorf("ticket held shows the From with BEL neither escaped nor as no sender:\n%s", held)
	}
}

// TestJSONOutputEscapedOnTerminal: the `-json` forms of the same commands print no C1 or
// bidi control raw either (encoding/json escapes only C0): each is written as \uXXXX, so the
// JSON reads back to the very same text.
func TestJSONOutputEscapedOnTerminal(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "kassa\u009b31m\u202e@slagerijjansen.nl", "-name", "Slagerij \u009b2J\x7fJansen\u202e")
	p.deliver(t, "From: <kassa\u009b31m\u202e@slagerijjansen.nl>\r\nTo: support@infobits.example\r\n"+
		"Subject: =?utf-8?q?Factuur_=E2=80=AEfdp.exe?=\r\nDate: Fri, 27 Nov 2026 16:00:00 +0100\r\n"+
		"Message-ID: <j1@slagerij>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Zie bijlage \u202egpj.exe\r\n")
	p.deliver(t, "From: <a\u009bb\u2066@evil.example>\r\nTo: support@infobits.example\r\nSubject: =?utf-8?q?=E2=80=AEtxt.exe?=\r\n"+
		"Date: Fri, 27 Nov 2026 16:02:00 +0100\r\nMessage-ID: <j2@evil>\r\n\r\nbody\r\n")
	mustRun(t, env, "serve", "-once")

	for _, args := range [][]string{
		{"ticket", "list", "-json"}, {"ticket", "show", "-json", "1"}, {"ticket", "held", "-json"},
		{"customer", "list", "-json"}, {"outbox", "list", "-json"},
	} {
		out := mustRun(t, env, args...)
		if r, bad := forbidden(out); bad {
			t.Errorf("%s printed %U raw:\n%q", strings.Join(args, " "), r, out)
		}
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("%s: not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var d struct {
		Subject  string `json:"subject"`
		Customer string `json:"customer"`
	}
	out := mustRun(t, env, "ticket", "show", "-json", "1")
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.Subject != "Factuur \u202efdp.exe" || d.Customer != "kassa\u009b31m\u202e@slagerijjansen.nl" {
		t.Errorf("ticket show -json reads back as subject %q, customer %q: not the text the email had", d.Subject, d.Customer)
	}
	if !strings.Contains(out, `Factuur \u202efdp.exe`) || !strings.Contains(out, `kassa\u009b31m\u202e@`) {
		t.Errorf("ticket show -json does not escape the subject and the address:\n%s", out)
	}
}

// TestWebsiteSeesOnlyTheCustomersView: GET /api/tickets/{id} and the customer's ticket list,
// on a running gateway, show the customer's email and the staff answer, but not the
// internal note (#note), not the notices to the staff list, and no staff address.
func TestWebsiteSeesOnlyTheCustomersView(t *testing.T) {
	p := newPeers(t)
	db, err := store.Open(filepath.Join(p.dir, "helpdesk.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		return tx.PutCustomer(&helpdesk.Customer{Name: "Bakkerij de Vries", Emails: []string{"info@bakkerijdevries.nl"}, Tier: helpdesk.SLA8})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	var out syncBuffer
	exited, _ := serveInProcess(t, p.env("HELPDESK_API_TOKEN="+testAPIToken, "HELPDESK_STAFF_LIST="+staffList), &out)
	m := waitOutput(t, &out, regexp.MustCompile(`"msg":"http listening"[^\n]*"addr":"([^"]+)"`), exited)
	base := "http://" + m[1]

	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Pinautomaat offline", "web-1@b", "", "Hij doet het niet."))
	waitSink(t, p, 2) // the acknowledgement and staff_new to the staff list
	for _, text := range []string{"#note\nKlant belt vaak; eerst factuur 2026-118 innen.", "Zet hem uit en weer aan."} {
		b, _ := json.Marshal(map[string]string{"from": "jan@infobits.example", "text": text})
		if status, body := httpCall(t, "POST", base+"/api/tickets/1/answers", string(b), true); status != http.StatusCreated {
			t.Fatalf("answer %q: %d %s", text, status, body)
		}
	}
	waitSink(t, p, 3)
	// What staff see (ticket show -json) has it all: the premise.
	var full map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, p.env(), "ticket", "show", "-json", "1")), &full); err != nil {
		t.Fatal(err)
	}
	if s := jsonText(full); !strings.Contains(s, "factuur 2026-118") || !strings.Contains(s, staffList) {
		t.Fatalf("the staff view lacks the note or the staff notice: %s", s)
	}

	status, body := httpCall(t, "GET", base+"/api/tickets/1", "", true)
	if status != http.StatusOK {
		t.Fatalf("GET /api/tickets/1: %d %s", status, body)
	}
	var d struct {
		Assignee string `json:"assignee"`
		Messages []struct {
			Direction, From, Text string
		} `json:"messages"`
		Notifications []struct{ Kind, To string } `json:"notifications"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"factuur 2026-118", "#note", staffList, "jan@infobits.example"} {
		if strings.Contains(body, leak) {
			t.Errorf("the website's ticket shows %q:\n%s", leak, body)
		}
	}
	var dirs []string
	for _, m := range d.Messages {
		dirs = append(dirs, m.Direction)
	}
	if strings.Join(dirs, ",") != "in,out" || !strings.Contains(d.Messages[1].Text, "Zet hem uit") {
		t.Errorf("messages = %+v, want the customer's email and the answer", d.Messages)
	}
	for _, n := range d.Notifications {
		if n.To != "info@bakkerijdevries.nl" {
			t.Errorf("notification %s to %s shown to the customer", n.Kind, n.To)
		}
	}
	if len(d.Notifications) != 2 { // the acknowledgement and the answer
		t.Errorf("notifications = %+v, want the acknowledgement and the answer", d.Notifications)
	}
	status, body = httpCall(t, "GET", base+"/api/customers/info@bakkerijdevries.nl/tickets", "", true)
	if status != http.StatusOK || !strings.Contains(body, `"messages":2`) {
		t.Errorf("the customer's ticket list counts the note: %d %s", status, body)
	}
}

// TestControlSocketChecksPeers: the gateway serves only its own user and root (SO_PEERCRED),
// even when the socket's mode was loosened; the CLI refuses a socket that others can write to
// or that another user owns. Needs root (to act as another user); CI runs it as root.
func TestControlSocketChecksPeers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to connect as another user and to chown the socket")
	}
	const nobody = 65534
	// Directories another user can traverse: the socket's, and one with a copy of this test
	// binary, which is the raw client (TestMain: HELPDESK_TEST_CTL_PROBE).
	dir, err := os.MkdirTemp("", "helpdesk-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(dir, "probe")
	if err := copyFile(os.Args[0], probe, 0o755); err != nil {
		t.Fatal(err)
	}
	p := newPeers(t)
	p.dir = dir
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries")
	stderr, stop := startServe(t, p, env)
	defer stop()
	sock := filepath.Join(dir, "helpdesk.db.sock")

	// Its own user (root here) is served.
	if out := mustRun(t, env, "customer", "list"); !strings.Contains(out, "Bakkerij de Vries") {
		t.Fatalf("customer list over the socket: %s", out)
	}

	// The mode loosened: another user can connect, but the gateway refuses to serve it.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(probe, "-test.run=^$")
	cmd.Env = []string{"HELPDESK_TEST_CTL_PROBE=" + sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe as uid %d: %v\n%s", nobody, err, got)
	}
	if !strings.Contains(string(got), "refuses commands from uid 65534") || strings.Contains(string(got), "Bakkerij") {
		t.Errorf("the gateway answered another user:\n%s", got)
	}
	if !strings.Contains(stderr.String(), "control socket: connection refused") {
		t.Errorf("the refusal is not logged:\n%s", stderr.String())
	}
	// ... and the CLI refuses to use a socket others can write to.
	r := runBin(t, env, "customer", "list")
	if r.code == 0 || !strings.Contains(r.stderr, "can be written by group or others") || strings.Contains(r.stdout, "Bakkerij") {
		t.Errorf("the CLI used a world-writable socket: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A socket another user owns (a listener posing as the gateway): refused.
	if err := os.Chmod(sock, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sock, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	r = runBin(t, env, "customer", "list")
	if r.code == 0 || !strings.Contains(r.stderr, "belongs to uid 65534") {
		t.Errorf("the CLI used a socket of uid %d: exit %d\n%s%s", nobody, r.code, r.stdout, r.stderr)
	}
	if err := os.Chown(sock, 0, 0); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, env, "customer", "list"); !strings.Contains(out, "Bakkerij de Vries") {
		t.Errorf("customer list after the socket was put right: %s", out)
	}
}

// TestCLIChecksListener: the CLI trusts the process that listens, not the socket file's
// owner. Another user's listener posing as the gateway, whose socket file is then owned by
// root with mode 0600 (as a socket swapped in after the CLI looked at the file would be),
// gets no command: the CLI asks the kernel (SO_PEERCRED) who listens and refuses uid 65534,
// before it sends the command and the operator's working directory. Needs root.
func TestCLIChecksListener(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to listen as another user and to chown the socket")
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "helpdesk-fake-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil { // the fake listener binds its socket here
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "fake")
	if err := copyFile(os.Args[0], fake, 0o755); err != nil {
		t.Fatal(err)
	}
	p := newPeers(t)
	p.dir = dir
	sock := filepath.Join(dir, "helpdesk.db.sock")
	cmd := exec.Command(fake, "-test.run=^$")
	cmd.Env = []string{"HELPDESK_TEST_CTL_FAKE=" + sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var fakeOut syncBuffer
	cmd.Stdout, cmd.Stderr = &fakeOut, &fakeOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(time.Minute) // a hang guard
	for !strings.Contains(fakeOut.String(), "listening") {
		if time.Now().After(deadline) {
			t.Fatalf("the fake listener did not start: %s", fakeOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The file now looks like a socket the CLI may use: root's, 0600.
	if err := os.Chown(sock, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runBin(t, p.env(), "customer", "list")
	if r.code == 0 || !strings.Contains(r.stderr, "uid 65534") || !strings.Contains(r.stderr, "refusing to use it") {
		t.Errorf("the CLI used another user's listener: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "got:") { // the fake echoes what it got
		t.Errorf("the fake listener received the command:\n%s", r.stdout)
	}
}

// ctlFake is the listener of TestCLIChecksListener, run as another user: it answers each
// request with what it got, as output, and exit 0.
func ctlFake(sock string) int {
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	fmt.Println("listening")
	for {
		conn, err := l.Accept()
		if err != nil {
			return 1
		}
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		line, _ := bufio.NewReader(conn).ReadString('\n')
		code := 0
		enc := json.NewEncoder(conn)
		_ = enc.Encode(ctlFrame{Out: "got: " + line})
		_ = enc.Encode(ctlFrame{Exit: &code})
		conn.Close()
	}
}

// ctlProbe is the raw client of TestControlSocketChecksPeers, run as another user: it sends
// one command and prints what comes back.
func ctlProbe(sock string) int {
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	// The gateway may answer and close before the request is written (it checks the peer
	// first): a failed send is no failure, what it answered is read all the same.
	_ = json.NewEncoder(conn).Encode(ctlRequest{Args: []string{"customer", "list"}})
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		fmt.Println(sc.Text())
	}
	return 0
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
