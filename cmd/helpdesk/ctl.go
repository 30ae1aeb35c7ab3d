package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/infobits/helpdesk/desk/search"
	"github.com/infobits/helpdesk/store"
)

// The control socket. bbolt lets one process hold the database, so while a gateway runs the
// operator's commands are run by the gateway: the CLI sends its arguments over a unix socket
// beside the database (mode 0600: only the gateway's user can connect) and the gateway runs
// the same command function with its open database, streaming the output back.
//
// Both ends check the other: the gateway serves only a peer (SO_PEERCRED) of its
// own user or root, and the client uses only a socket owned by itself or root that neither
// group nor others can write (checkSocket).
//
// Protocol: the client writes one JSON line {"args": [...]}; the server answers JSON lines
// {"out": "..."} / {"err": "..."} and a last {"exit": N}.

func socketPath(dbPath string) string { return dbPath + ".sock" }

// errNoGateway: nothing answers on the socket, so the command opens the file itself.
var errNoGateway = errors.New("no gateway running")

type ctlRequest struct {
	Args []string `json:"args"`
	// Dir is the client's working directory: file arguments are relative to it.
	Dir string `json:"dir,omitempty"`
	// User is the operator at the client (env.operator), named in what the command records.
	// The socket is the gateway user's (mode 0600), so only that user or root can claim one.
	User string `json:"user,omitempty"`
}

type ctlFrame struct {
	Out string `json:"out,omitempty"`
	Err string `json:"err,omitempty"`
	// Bin is output that is not text (an attachment written to stdout): JSON strings would
	// mangle it.
	Bin []byte `json:"bin,omitempty"`
	// File and Data: the command writes a file on the client's side (ticket attachment -o);
	// the first frame of a File creates it (Excl: only if it does not exist), later ones append.
	File string `json:"file,omitempty"`
	Data []byte `json:"data,omitempty"`
	Excl bool   `json:"excl,omitempty"`
	Exit *int   `json:"exit,omitempty"`
}

// ctlCall runs args in the gateway listening on sock and copies its output. It returns
// errNoGateway when no gateway listens there. It refuses a socket that another user could
// have put there or could take over (checkSocket).
func ctlCall(e *env, sock string, args []string) (int, error) {
	if err := checkSocket(sock, os.Getuid()); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, errNoGateway
		}
		return 0, err
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(e.ctx, "unix", sock)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return 0, errNoGateway
		}
		return 0, fmt.Errorf("control socket %s: %w", sock, err)
	}
	defer conn.Close()
	// The file checked above is a name; what answers is a process. The kernel says who
	// listens (SO_PEERCRED: the credentials of the process that called listen): a socket
	// swapped in after the check, or a file chowned over another user's listener, is refused
	// before the command (and the operator's working directory) is sent.
	if _, err := peerAllowed(conn, os.Getuid(), "you"); err != nil {
		return 0, fmt.Errorf("control socket %s: refusing to use it: the process listening on it (%w); run the command as the gateway's user (sudo -u USER helpdesk ...)", sock, err)
	}
	stop := context.AfterFunc(e.ctx, func() { conn.Close() })
	defer stop()
	dir, _ := os.Getwd()
	if err := json.NewEncoder(conn).Encode(ctlRequest{Args: args, Dir: dir, User: e.operator()}); err != nil {
		return 0, fmt.Errorf("control socket %s: send: %w", sock, err)
	}
	dec := json.NewDecoder(bufio.NewReader(conn))
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for {
		var f ctlFrame
		if err := dec.Decode(&f); err != nil {
			return 0, fmt.Errorf("control socket %s: the gateway closed the connection before the command finished: %w", sock, err)
		}
		io.WriteString(e.stdout, f.Out)
		e.stdout.Write(f.Bin)
		io.WriteString(e.stderr, f.Err)
		if f.File != "" {
			if err := writeClientFile(files, f); err != nil {
				return 0, err
			}
		}
		if f.Exit != nil {
			for name, fh := range files {
				delete(files, name)
				if err := fh.Close(); err != nil {
					return 0, fmt.Errorf("write %s: %w", name, err)
				}
			}
			return *f.Exit, nil
		}
	}
}

// checkSocket refuses a control socket the client cannot trust: one owned by
// another user than uid (the client) or root, or one that group or others may write to. Such
// a socket may be another user's listener posing as the gateway — which would see the
// operator's commands and could write files on the operator's side (ticket attachment) — or
// one through which other users can command the gateway. A missing socket is
// os.ErrNotExist: no gateway runs.
func checkSocket(path string, uid int) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("control socket %s: cannot read its owner", path)
	}
	switch {
	case fi.Mode()&os.ModeSocket == 0:
		return fmt.Errorf("control socket %s is not a socket (%s): refusing to use it; remove it if no gateway runs", path, fi.Mode().Type())
	case int(st.Uid) != uid && st.Uid != 0:
		return fmt.Errorf("control socket %s belongs to uid %d, not to you (uid %d) or root: refusing to use it; run the command as the gateway's user (sudo -u USER helpdesk ...)", path, st.Uid, uid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("control socket %s can be written by group or others (mode %04o): refusing to use it; the gateway makes it 0600 — restart the gateway, or chmod 600 it", path, fi.Mode().Perm())
	}
	return nil
}

// peerAllowed checks the credentials of the other end of a control-socket connection
// (SO_PEERCRED): in the gateway, of a client — only the gateway's own user and root may run
// commands (the socket's mode 0600 says the same to the kernel; this holds when the file's
// mode was changed, or the socket handed on); in the CLI, of the listening process — only
// the CLI's own user or root is trusted with a command.
func peerAllowed(conn net.Conn, self int, selfName string) (uid int, err error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return -1, errors.New("not a unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, fmt.Errorf("peer credentials: %w", cerr)
	}
	if int(cred.Uid) != self && cred.Uid != 0 {
		return int(cred.Uid), fmt.Errorf("uid %d (pid %d) is neither %s (uid %d) nor root", cred.Uid, cred.Pid, selfName, self)
	}
	return int(cred.Uid), nil
}

// writeClientFile writes a File frame on the client's side: the file is the operator's, in
// their directory and with their rights, not the gateway's.
func writeClientFile(files map[string]*os.File, f ctlFrame) error {
	fh := files[f.File]
	if fh == nil {
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if f.Excl {
			flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
		}
		var err error
		if fh, err = os.OpenFile(f.File, flags, 0o644); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return existsError(f.File)
			}
			return fmt.Errorf("create %s: %w", f.File, err)
		}
		files[f.File] = fh
	}
	if _, err := fh.Write(f.Data); err != nil {
		return fmt.Errorf("write %s: %w", f.File, err)
	}
	return nil
}

// ctlServer serves the control socket of a running gateway.
type ctlServer struct {
	ln   net.Listener
	path string
	db   *store.DB
	cfg  *Config
	log  *slog.Logger
	now  func() time.Time
	wg   sync.WaitGroup
	// search is the gateway's search index (nil when it could not be opened).
	search *search.Index
	// smtpNextTry is when the gateway's notifier tries the SMTP server again after a failure
	// (zero: it is not waiting on one); nil when no notifier runs.
	smtpNextTry func() time.Time
}

// listenCtl creates the socket. A stale socket left by a crashed gateway is replaced; one a
// live gateway answers on means a second gateway, which cannot hold the database anyway.
func listenCtl(path string, db *store.DB, cfg *Config, log *slog.Logger, now func() time.Time) (*ctlServer, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another gateway answers on %s", path)
	}
	_ = os.Remove(path)
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &ctlServer{ln: ln, path: path, db: db, cfg: cfg, log: log, now: now}
	return s, nil
}

// serve accepts commands until ctx is done.
func (s *ctlServer) serve(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, conn)
		}()
	}
	s.wg.Wait()
	_ = os.Remove(s.path)
}

// frameWriter sends what a command writes as frames of one stream. A client that stops
// reading (a pager left open) fails the write after a while instead of holding the gateway's
// shutdown.
type frameWriter struct {
	mu     *sync.Mutex
	conn   net.Conn
	enc    *json.Encoder
	stderr bool
}

func (w frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	f := ctlFrame{Out: string(p)}
	switch {
	case w.stderr:
		f = ctlFrame{Err: string(p)}
	case !utf8.Valid(p):
		f = ctlFrame{Bin: p}
	}
	if err := w.enc.Encode(f); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *ctlServer) handle(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("control command panicked", "panic", r)
		}
	}()
	if uid, err := peerAllowed(conn, os.Getuid(), "the gateway's user"); err != nil {
		s.log.Warn("control socket: connection refused", "uid", uid, "err", err)
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		code := 1
		enc := json.NewEncoder(conn)
		_ = enc.Encode(ctlFrame{Err: "helpdesk: the gateway refuses commands from " + err.Error() + "\n"})
		_ = enc.Encode(ctlFrame{Exit: &code})
		return
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var req ctlRequest
	if err := json.NewDecoder(io.LimitReader(conn, 1<<20)).Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return // a probe: another process checking whether a gateway answers here
		}
		s.log.Warn("control socket: bad request", "err", err)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	var mu sync.Mutex
	enc := json.NewEncoder(conn)
	e := &env{ctx: ctx, stdout: frameWriter{&mu, conn, enc, false}, stderr: frameWriter{&mu, conn, enc, true},
		cfg: s.cfg, db: s.db, search: s.search, smtpNextTry: s.smtpNextTry, remote: true, dir: req.Dir, user: cmp.Or(req.User, "an unknown operator"), now: s.now, log: s.log}
	code := 2
	if cmd, _ := findCommand(req.Args); cmd != nil && cmd.db {
		s.log.Info("control command", "command", cmd.name, "user", e.user)
		code = run(e, req.Args)
	} else {
		fmt.Fprintf(e.stderr, "helpdesk: %q cannot run in the gateway\n", strings.Join(req.Args, " "))
	}
	mu.Lock()
	defer mu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_ = enc.Encode(ctlFrame{Exit: &code})
}

// createFile creates the file a command writes (ticket attachment -o): on the control socket,
// on the client's side, relative to the client's directory; excl refuses an existing file.
func (e *env) createFile(path string, excl bool) (io.WriteCloser, error) {
	if !e.remote {
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if excl {
			flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
		}
		f, err := os.OpenFile(path, flags, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return nil, existsError(path)
		}
		return f, err
	}
	fw, ok := e.stdout.(frameWriter)
	if !ok {
		return nil, errors.New("no control-socket client to write a file for")
	}
	return &clientFile{w: fw, name: path, excl: excl}, nil
}

// existsError refuses to write over a file that is there: what to do instead.
func existsError(path string) error {
	return fmt.Errorf("%s exists already and is not written over: give another name with -o FILE (or -o - for stdout)", terminalSafe(path))
}

// clientFile sends a file's bytes to the control-socket client in File frames.
type clientFile struct {
	w    frameWriter
	name string
	excl bool
	sent bool
}

func (c *clientFile) Write(p []byte) (int, error) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	_ = c.w.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	total := len(p)
	for len(p) > 0 || !c.sent {
		n := min(len(p), 1<<20)
		if err := c.w.enc.Encode(ctlFrame{File: c.name, Data: p[:n], Excl: c.excl && !c.sent}); err != nil {
			return 0, err
		}
		c.sent, p = true, p[n:]
	}
	return total, nil
}

func (c *clientFile) Close() error {
	if c.sent {
		return nil
	}
	_, err := c.Write(nil) // an empty file still exists
	return err
}
