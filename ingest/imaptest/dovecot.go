// Package imaptest starts real IMAP servers for tests and benchmarks: a private Dovecot instance
// (Dovecot 2.3, package dovecot-imapd; see StartDovecot and NewDovecot) listening on 127.0.0.1
// with its own config, logs and mail under one directory, so that several instances can run side
// by side without touching the system's Dovecot; and NewMem, the in-memory server of package
// imapmem tied to a test. It imports testing: only tests may import it.
package imaptest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const (
	// startTimeout bounds the wait for the first "* OK" greeting.
	startTimeout = 10 * time.Second
	// stopTimeout bounds the wait for the master and its children after SIGTERM, and again
	// after SIGKILL.
	stopTimeout = 10 * time.Second
	// pollInterval is the sleep between two checks inside a deadline loop.
	pollInterval = 20 * time.Millisecond
	// maxBaseDirLen keeps the longest UNIX socket path under base_dir below the 108-byte limit
	// of sun_path (Dovecot's longest socket names are about 30 bytes).
	maxBaseDirLen = 70
	// logTailBytes is how much of the log an error message carries.
	logTailBytes = 4096
)

// DovecotBinary returns the path of the dovecot binary, or "" when it is not installed.
// It looks in PATH first, then in /usr/sbin and /usr/local/sbin (which a non-root PATH often
// lacks).
func DovecotBinary() string {
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/dovecot", "/usr/local/sbin/dovecot"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Dovecot is a private Dovecot IMAP server started by StartDovecot or NewDovecot. It serves
// plaintext IMAP on Addr (LOGIN and AUTHENTICATE PLAIN allowed, no TLS) for one user, whose
// mail is kept as a Maildir under Dir and survives Restart. Failed logins are answered after
// ~0.5 s (Dovecot 2.3.19 flushes auth failures on a 500 ms tick even with auth_failure_delay = 0)
// and do not slow down later logins (no anvil penalty).
//
// The exported fields are read-only. Methods may be called from several goroutines.
type Dovecot struct {
	Addr     string // host:port on 127.0.0.1
	User     string // the login name, "helpdesk" when made by NewDovecot
	Password string // the login password
	Dir      string // the instance directory (config, logs, mail)

	binary    string
	port      int
	baseDir   string // Dovecot's base_dir (sockets, master.pid)
	ownedBase bool   // baseDir lies outside Dir (Dir's path was too long) and is removed by Stop
	mailUID   int
	mailGID   int
	mailUser  string  // default_internal_user and default_login_user
	mailGroup string  // default_internal_group
	token     string  // in the greeting, to tell this instance from another one on the same port
	oauth2    *OAuth2 // nil: passwords only

	mu     sync.Mutex    // serializes start and stop
	cmd    *exec.Cmd     // the running master, nil when stopped
	exited chan struct{} // closed when cmd.Wait has returned
}

// NewDovecot is the test helper: it skips the test with a visible message ("dovecot not
// installed: apt-get install dovecot-imapd") when DovecotBinary() is "", otherwise starts an
// instance under tb.TempDir() for user "helpdesk" with a random password and registers Stop in
// tb.Cleanup. It fails the test, with the log tail, when the instance does not start.
func NewDovecot(tb testing.TB) *Dovecot {
	tb.Helper()
	if DovecotBinary() == "" {
		tb.Skip("dovecot not installed: apt-get install dovecot-imapd")
	}
	d, err := StartDovecot(tb.TempDir(), "helpdesk", randomPassword())
	if err != nil {
		tb.Fatalf("imaptest: %v", err)
	}
	tb.Cleanup(func() {
		if err := d.Stop(); err != nil {
			tb.Errorf("imaptest: %v", err)
		}
	})
	return d
}

// StartDovecot starts a private instance in dir (created if missing) on a free 127.0.0.1 port
// with one user, user/password, and waits until it greets (~0.1–0.3 s). Dir holds dovecot.conf,
// passwd, dovecot.log (Dovecot's log and the master's stderr), state/, run/ (base_dir: sockets;
// moved to a fresh directory under the system temp directory when Dir's path is too long for
// UNIX sockets) and mail/USER/Maildir. Nothing outside Dir is read, such as /etc/dovecot.
//
// When running as root, Dovecot refuses to access mail as uid 0, so mail is owned by "nobody"
// and Dovecot's internal and login processes run as "nobody" too; dir and its ancestors inside
// the system temp directory get o+x so that nobody can enter it. A dir outside the temp
// directory must already be traversable by nobody.
//
// If Dovecot exits or does not greet within 10 s, StartDovecot stops it and returns an error
// that includes the tail of its log. The caller must call Stop.
func StartDovecot(dir, user, password string) (*Dovecot, error) {
	return startDovecot(dir, user, password, nil)
}

func startDovecot(dir, user, password string, oauth2 *OAuth2) (*Dovecot, error) {
	bin := DovecotBinary()
	if bin == "" {
		return nil, errors.New("dovecot not installed: apt-get install dovecot-imapd")
	}
	if user == "" || strings.ContainsAny(user, ":\r\n\t %/") {
		return nil, fmt.Errorf("invalid user name %q", user)
	}
	if strings.ContainsAny(password, ":\r\n") {
		return nil, errors.New("password must not contain ':' or line breaks")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(abs, " \t\r\n\"'#{}") {
		return nil, fmt.Errorf("dovecot dir %q: the path must not contain blanks, quotes, '#' or braces", abs)
	}
	d := &Dovecot{User: user, Password: password, Dir: abs, binary: bin, token: randomPassword()[:12], oauth2: oauth2}
	if err := d.prepare(); err != nil {
		return nil, fmt.Errorf("dovecot in %s: %w", abs, err)
	}
	// Another process may take the chosen port between our probe and Dovecot's bind: pick
	// another one in that case.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			d.removeOwnedBase()
			return nil, err
		}
		d.port = port
		d.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		logStart := d.logSize()
		err = d.start()
		if err == nil {
			return d, nil
		}
		if attempt < 3 && strings.Contains(d.logSince(logStart), "Address already in use") {
			continue
		}
		d.removeOwnedBase()
		return nil, err
	}
}

// Stop sends SIGTERM to the master and all its children (they share a process group) and waits
// until they are gone (zombies count as gone); mail already appended is kept. This takes ~30 ms,
// sometimes ~1 s when the master is slow to notice. After 10 s it sends SIGKILL to the process
// group and returns an error saying so. Stop on a stopped instance does nothing and returns nil.
func (d *Dovecot) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.stopLocked()
	d.removeOwnedBase()
	return err
}

// Restart stops and starts the same instance again on the same port and dir (mail kept), for
// reconnect tests. Open connections are dropped. It also starts an instance that was stopped.
// While the port is free, another test's port probe may hold it for a moment: binding is retried
// for up to 1.5 s.
func (d *Dovecot) Restart() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.stopLocked(); err != nil {
		return err
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for {
		logStart := d.logSize()
		err := d.startLocked()
		if err == nil || !time.Now().Before(deadline) ||
			!strings.Contains(d.logSince(logStart), "Address already in use") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Log returns the contents of the instance's log file (for failure messages): Dovecot's own
// log and anything the master wrote to stderr, across restarts.
func (d *Dovecot) Log() string {
	b, err := os.ReadFile(d.logPath())
	if err != nil {
		return fmt.Sprintf("(cannot read dovecot log: %v)", err)
	}
	return string(b)
}

// Dial connects to the instance with imapclient.DialInsecure and logs in as User. The caller
// must close the client (Logout, then Close). To pass imapclient.Options (for instance an
// UnilateralDataHandler), call imapclient.DialInsecure(d.Addr, options) and Login(d.User,
// d.Password) directly.
func (d *Dovecot) Dial() (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(d.Addr, nil)
	if err != nil {
		return nil, fmt.Errorf("dial dovecot at %s: %w", d.Addr, err)
	}
	if err := c.Login(d.User, d.Password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login to dovecot at %s as %s: %w", d.Addr, d.User, err)
	}
	return c, nil
}

// AppendRaw connects, logs in, appends raw to mailbox with date as its internal date (the
// server's clock when date is zero), and logs out; it returns the new message's UID. Bare LFs in
// raw are turned into CRLF first, as IMAP requires. Convenient for seeding a mailbox.
func (d *Dovecot) AppendRaw(mailbox string, raw []byte, date time.Time) (imap.UID, error) {
	c, err := d.Dial()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	msg := toCRLF(raw)
	cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Time: date})
	if _, err := cmd.Write(msg); err != nil {
		cmd.Close()
		return 0, fmt.Errorf("append to %s: %w", mailbox, err)
	}
	if err := cmd.Close(); err != nil {
		return 0, fmt.Errorf("append to %s: %w", mailbox, err)
	}
	data, err := cmd.Wait()
	if err != nil {
		return 0, fmt.Errorf("append to %s: %w", mailbox, err)
	}
	if data.UID == 0 {
		return 0, fmt.Errorf("append to %s: server returned no APPENDUID", mailbox)
	}
	if err := c.Logout().Wait(); err != nil {
		return 0, fmt.Errorf("logout after append: %w", err)
	}
	return data.UID, nil
}

// prepare decides the mail user, creates the directory tree and writes the passwd file.
func (d *Dovecot) prepare() error {
	d.mailUID, d.mailGID = os.Getuid(), os.Getgid()
	if d.mailUID == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			return fmt.Errorf("running as root needs user nobody for mail: %w", err)
		}
		d.mailUser = u.Username
		if d.mailUID, err = strconv.Atoi(u.Uid); err != nil {
			return fmt.Errorf("uid of nobody: %w", err)
		}
		if d.mailGID, err = strconv.Atoi(u.Gid); err != nil {
			return fmt.Errorf("gid of nobody: %w", err)
		}
	} else {
		u, err := user.Current()
		if err != nil {
			return fmt.Errorf("current user: %w", err)
		}
		d.mailUser = u.Username
	}
	g, err := user.LookupGroupId(strconv.Itoa(d.mailGID))
	if err != nil {
		return fmt.Errorf("group %d: %w", d.mailGID, err)
	}
	d.mailGroup = g.Name

	for _, sub := range []string{"", "state"} {
		if err := os.MkdirAll(filepath.Join(d.Dir, sub), 0o755); err != nil {
			return err
		}
	}
	if err := d.makeTraversable(); err != nil {
		return err
	}

	// base_dir holds UNIX sockets, whose paths are limited to 108 bytes.
	d.baseDir = filepath.Join(d.Dir, "run")
	if len(d.baseDir) > maxBaseDirLen {
		base, err := os.MkdirTemp("", "dovecot-run-")
		if err != nil {
			return err
		}
		if err := os.Chmod(base, 0o755); err != nil {
			os.RemoveAll(base)
			return err
		}
		d.baseDir, d.ownedBase = base, true
	}

	// The mail tree belongs to the mail user; Dovecot creates Maildir inside the home.
	mailRoot := filepath.Join(d.Dir, "mail")
	home := filepath.Join(mailRoot, d.User)
	for _, p := range []string{mailRoot, home} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
		if err := os.Lchown(p, d.mailUID, d.mailGID); err != nil {
			return err
		}
	}

	// The auth process runs as the internal user and reads the passwd file on every lookup
	// (re-reading it when it changes).
	passwd := filepath.Join(d.Dir, "passwd")
	line := fmt.Sprintf("%s:{PLAIN}%s::::::\n", d.User, d.Password)
	if err := os.WriteFile(passwd, []byte(line), 0o600); err != nil {
		return err
	}
	if err := os.Chmod(passwd, 0o600); err != nil {
		return err
	}
	return os.Lchown(passwd, d.mailUID, d.mailGID)
}

// makeTraversable gives o+x to Dir and to its ancestors inside the temp directory when mail runs
// as another user than ours, then checks that every ancestor can be entered by the mail user.
func (d *Dovecot) makeTraversable() error {
	if d.mailUID == os.Getuid() {
		return nil
	}
	tmp, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		tmp = os.TempDir()
	}
	resolved, err := filepath.EvalSymlinks(d.Dir)
	if err != nil {
		return err
	}
	for p := resolved; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm()
		insideTmp := strings.HasPrefix(p, tmp+string(filepath.Separator))
		if (p == resolved || insideTmp) && mode&0o001 == 0 {
			if err := os.Chmod(p, mode|0o001); err != nil {
				return fmt.Errorf("making %s traversable for %s: %w", p, d.mailUser, err)
			}
		} else if !d.canEnter(fi) {
			return fmt.Errorf("%s (mode %v) cannot be entered by %s, which Dovecot runs mail as; use a directory under %s or chmod o+x it",
				p, mode, d.mailUser, tmp)
		}
		if parent := filepath.Dir(p); parent == p {
			return nil
		}
	}
}

// canEnter reports whether the mail user may search the directory fi.
func (d *Dovecot) canEnter(fi os.FileInfo) bool {
	mode := fi.Mode().Perm()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return mode&0o001 != 0
	}
	switch {
	case int(st.Uid) == d.mailUID:
		return mode&0o100 != 0
	case int(st.Gid) == d.mailGID:
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}

func (d *Dovecot) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.startLocked()
}

// startLocked writes the config, starts the master in the foreground in its own process group
// and waits for the greeting. On failure the master is stopped again.
func (d *Dovecot) startLocked() error {
	if d.cmd != nil {
		return errors.New("dovecot already running")
	}
	if err := os.MkdirAll(d.baseDir, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(d.Dir, "dovecot.conf")
	if err := os.WriteFile(conf, []byte(d.config()), 0o644); err != nil {
		return err
	}
	logFile, err := os.OpenFile(d.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own copy

	cmd := exec.Command(d.binary, "-F", "-c", conf)
	cmd.Dir = d.Dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // Stop can then find and kill every child
		Pdeathsig: syscall.SIGTERM, // do not outlive a crashed test binary
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.binary, err)
	}
	d.cmd = cmd
	d.exited = make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait() // the status is read from cmd.ProcessState after exited is closed
		close(exited)
	}(d.exited)

	if err := d.waitGreeting(began.Add(startTimeout)); err != nil {
		d.stopLocked()
		return fmt.Errorf("dovecot on %s did not start: %w\n--- %s (tail) ---\n%s",
			d.Addr, err, d.logPath(), d.logTail())
	}
	return nil
}

// waitGreeting polls Addr until a connection reads "* OK", the master exits or deadline passes.
// Called with d.mu held.
func (d *Dovecot) waitGreeting(deadline time.Time) error {
	var lastErr error
	for {
		select {
		case <-d.exited:
			return fmt.Errorf("dovecot exited before greeting (%s)", d.cmd.ProcessState)
		default:
		}
		if !time.Now().Before(deadline) {
			if lastErr == nil {
				lastErr = errors.New("no answer")
			}
			return fmt.Errorf("no greeting within %v: %w", startTimeout, lastErr)
		}
		lastErr = greets(d.Addr, d.token, deadline)
		if lastErr == nil {
			return nil
		}
		time.Sleep(pollInterval)
	}
}

// greets dials addr once and reports whether the server sent an "* OK" greeting carrying token.
// The token matters: another test's server may have taken the port between our probe and
// Dovecot's bind (this happened), and its greeting must not pass for ours while our master is
// still on its way to exit with "Address already in use".
func greets(addr, token string, deadline time.Time) error {
	conn, err := net.DialTimeout("tcp", addr, 250*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	rd := deadline
	if limit := time.Now().Add(2 * time.Second); rd.After(limit) {
		rd = limit
	}
	conn.SetDeadline(rd)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading greeting: %w", err)
	}
	if !strings.HasPrefix(line, "* OK") || !strings.Contains(line, token) {
		return fmt.Errorf("greeting %q is not from this instance", strings.TrimSpace(line))
	}
	fmt.Fprint(conn, "a LOGOUT\r\n")
	return nil
}

// stopLocked stops the running master, if any. Called with d.mu held.
func (d *Dovecot) stopLocked() error {
	if d.cmd == nil {
		return nil
	}
	cmd, exited := d.cmd, d.exited
	pgid := cmd.Process.Pid // Setpgid: the master leads its own group
	d.cmd, d.exited = nil, nil

	var errs []error
	deadline := time.Now().Add(stopTimeout)
	// SIGTERM to the whole group, not just the master: a master alone takes ~1.1 s to exit,
	// and imap processes serving a connected client outlive it (with the log and stats
	// processes) despite shutdown_clients = yes. Every process shuts down cleanly on SIGTERM
	// (clients read "BYE Server shutting down"), all within ~20 ms.
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	if !waitGone(exited, pgid, deadline) {
		errs = append(errs, fmt.Errorf("dovecot (pgid %d) still running %v after SIGTERM; sent SIGKILL", pgid, stopTimeout))
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if !waitGone(exited, pgid, time.Now().Add(stopTimeout)) {
			errs = append(errs, fmt.Errorf("dovecot (pgid %d) still running %v after SIGKILL", pgid, stopTimeout))
		}
	}

	return errors.Join(errs...)
}

// waitGone waits until the master has been reaped and no live process is left in its process
// group, or deadline passes.
func waitGone(exited <-chan struct{}, pgid int, deadline time.Time) bool {
	for {
		select {
		case <-exited:
			if !groupAlive(pgid) {
				return true
			}
		default:
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}

// groupAlive reports whether a process other than a zombie belongs to process group pgid. It
// reads /proc/PID/stat because exited children may be reaped late (kill(pid, 0) succeeds on
// zombies).
func groupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			return true
		}
	}
	return false
}

// config returns the complete, self-contained dovecot.conf (no include of /etc/dovecot).
// Dovecot's syntax needs a line break after every "{".
func (d *Dovecot) config() string {
	sum := sha256.Sum256([]byte(d.Dir))
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by imaptest.StartDovecot; rewritten at every start.")
	w("instance_name = imaptest-%s", hex.EncodeToString(sum[:6]))
	w("base_dir = %s", d.baseDir)
	w("state_dir = %s", filepath.Join(d.Dir, "state"))
	w("log_path = %s", d.logPath())
	w("auth_verbose = yes")
	w("login_greeting = Dovecot (imaptest %s) ready.", d.token)
	w("protocols = imap")
	w("listen = 127.0.0.1")
	w("ssl = no")
	w("disable_plaintext_auth = no")
	w("auth_mechanisms = plain login%s", d.oauth2Mechanisms())
	w("auth_failure_delay = 0")
	w("default_internal_user = %s", d.mailUser)
	w("default_login_user = %s", d.mailUser)
	w("default_internal_group = %s", d.mailGroup)
	w("mail_location = maildir:~/Maildir")
	w("mail_fsync = never") // test data need not survive a power cut; APPEND ~12 ms -> ~5 ms
	w("namespace inbox {")
	w("  inbox = yes")
	w("  separator = .")
	w("  mailbox INBOX {")
	w("    auto = create")
	w("  }")
	w("}")
	w("service anvil {")
	w("  chroot =")
	w("  unix_listener anvil-auth-penalty {")
	w("    mode = 0")
	w("  }")
	w("}")
	w("service imap-login {")
	w("  chroot =")
	w("  service_count = 0")
	w("  process_min_avail = 1")
	w("  inet_listener imap {")
	w("    address = 127.0.0.1")
	w("    port = %d", d.port)
	w("  }")
	w("  inet_listener imaps {")
	w("    port = 0")
	w("  }")
	w("}")
	// Speed: reuse login and imap processes instead of one fork+exec per connection (login
	// ~55 ms -> ~4 ms); all users map to the same uid, so reuse is allowed. process_limit keeps
	// the auth client_limit warning away.
	w("service imap {")
	w("  service_count = 0")
	w("  process_min_avail = 2")
	w("  process_limit = 100")
	w("}")
	d.oauth2Config(w)
	w("passdb {")
	w("  driver = passwd-file")
	w("  args = scheme=PLAIN username_format=%%u %s", filepath.Join(d.Dir, "passwd"))
	w("}")
	w("userdb {")
	w("  driver = static")
	w("  args = uid=%d gid=%d home=%s/%%u", d.mailUID, d.mailGID, filepath.Join(d.Dir, "mail"))
	w("}")
	return b.String()
}

func (d *Dovecot) logPath() string { return filepath.Join(d.Dir, "dovecot.log") }

func (d *Dovecot) logSize() int64 {
	fi, err := os.Stat(d.logPath())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince returns the log from byte offset off on.
func (d *Dovecot) logSince(off int64) string {
	s := d.Log()
	if off > int64(len(s)) {
		return ""
	}
	return s[off:]
}

// logTail returns the last few KB of the log.
func (d *Dovecot) logTail() string {
	s := d.Log()
	if len(s) > logTailBytes {
		s = s[len(s)-logTailBytes:]
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}

func (d *Dovecot) removeOwnedBase() {
	if d.ownedBase {
		os.RemoveAll(d.baseDir)
	}
}

// freePort returns a port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomPassword() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// toCRLF turns every LF not preceded by CR into CRLF.
func toCRLF(raw []byte) []byte {
	n := 0
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			n++
		}
	}
	if n == 0 {
		return raw
	}
	out := make([]byte, 0, len(raw)+n)
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}
