package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/infobits/helpdesk/ingest/imapmem"
	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

// Operations: import, doctor, version, logs and the systemd unit, through the binary.

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
