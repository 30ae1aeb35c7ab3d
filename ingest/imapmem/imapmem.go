// Package imapmem runs go-imap's in-memory IMAP server on 127.0.0.1, with the quirks of real
// servers a client must survive switched on at will. The demo runs on it and fast tests use it
// (through imaptest.NewMem); interoperability tests use Dovecot (imaptest). The demo links it,
// so it must never import "testing".
package imapmem

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// Options configure an in-process IMAP server.
type Options struct {
	User, Password string   // default "helpdesk" / "secret"
	Mailboxes      []string // created besides INBOX
	// Rev1Only advertises IMAP4rev1 alone (IDLE, but no MOVE or UIDPLUS), like a minimal
	// server; the default also advertises IMAP4rev2, which implies them.
	Rev1Only bool
	// Log receives the server's error messages; nil discards them.
	Log io.Writer
	// Quirks make the server behave like servers seen in the wild.
	Quirks Quirks
	// TLS is the server's certificate configuration. With it the server offers STARTTLS on
	// its plain listener and refuses LOGIN before it (LOGINDISABLED), as production servers
	// do; with ImplicitTLS as well it speaks TLS from the first byte instead (IMAPS). Nil:
	// plaintext only, with LOGIN allowed (loopback).
	TLS         *tls.Config
	ImplicitTLS bool
}

// Quirks are behaviours of real IMAP servers that a client must survive, for tests.
type Quirks struct {
	// FlagsBeforeBody: every FETCH of a body is preceded by an unsolicited FETCH (UID FLAGS)
	// of the same messages — RFC 3501 allows a server to send FETCH data at any time, and a
	// flag change by another client arrives this way.
	FlagsBeforeBody bool
	// RefuseBody: a FETCH of a body that includes a UID it returns true for is answered NO,
	// like a server with a corrupt message file.
	RefuseBody func(imap.UID) bool
	// HangFetch: FETCHes of a body never answer, like a stuck server (until it is closed).
	HangFetch bool
	// DropFetches: the first this many FETCHes of a body cut the connection after the
	// first message's body went out, like a server restarted in the middle of a fetch.
	DropFetches int
}

// Server is go-imap's reference server (imapserver + imapmemserver) on 127.0.0.1: the
// real IMAP protocol over a real socket, with mailboxes held in memory. The demo runs on it,
// and fast tests use it; interoperability tests use Dovecot.
type Server struct {
	Addr, User, Password string

	user    *imapmemserver.User
	srvOpts *imapserver.Options
	tls     *tls.Config // for an implicit-TLS listener; nil: plain
	// closed is closed by Close: it releases sessions a quirk keeps waiting.
	closed    chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex // guards the fields below
	srv  *imapserver.Server
	ln   net.Listener
	done chan struct{}
	// hold, when not nil, keeps every FETCH of a body waiting until it is closed (HoldFetches).
	hold chan struct{}
}

// Start starts a server with one user whose INBOX (and opts.Mailboxes) exist.
func Start(opts Options) (*Server, error) {
	if opts.User == "" {
		opts.User, opts.Password = "helpdesk", "secret"
	}
	u := imapmemserver.NewUser(opts.User, opts.Password)
	for _, name := range append([]string{"INBOX"}, opts.Mailboxes...) {
		if err := u.Create(name, nil); err != nil {
			return nil, fmt.Errorf("create mailbox %s: %w", name, err)
		}
	}
	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	if opts.Rev1Only {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIdle: {}}
	}
	var drops atomic.Int32
	drops.Store(int32(opts.Quirks.DropFetches))
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	m := &Server{User: opts.User, Password: opts.Password, user: u, closed: make(chan struct{})}
	m.srvOpts = &imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &memSession{user: u, name: opts.User, password: opts.Password, quirks: opts.Quirks, closed: m.closed,
				conn: c, drops: &drops, srv: m}, nil, nil
		},
		Caps:         caps,
		InsecureAuth: opts.TLS == nil, // plaintext: loopback only
		Logger:       log.New(logw, "imapserver: ", 0),
	}
	if opts.TLS != nil && !opts.ImplicitTLS {
		m.srvOpts.TLSConfig = opts.TLS // STARTTLS
	}
	if opts.TLS != nil && opts.ImplicitTLS {
		m.tls = opts.TLS
	}
	if err := m.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	m.Addr = m.ln.Addr().String()
	return m, nil
}

// listen starts serving on addr; m.mu is held or m is not shared yet.
func (m *Server) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if m.tls != nil {
		ln = tls.NewListener(ln, m.tls)
	}
	srv, done := imapserver.New(m.srvOpts), make(chan struct{})
	m.srv, m.ln, m.done = srv, ln, done
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return nil
}

// Stop stops listening and closes every connection, so that clients get "connection
// refused" — the server is gone. The mailboxes are kept; Restart listens again on the same
// address. Stop on a stopped or closed server does nothing.
func (m *Server) Stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopLocked()
}

func (m *Server) stopLocked() error {
	if m.srv == nil {
		return nil
	}
	err := m.srv.Close()
	m.ln.Close()
	<-m.done
	m.srv = nil
	if err != nil && !errors.Is(err, net.ErrClosed) && err.Error() != "imapserver: server closed" {
		return err
	}
	return nil
}

// Restart listens again on the same address after Stop, with the same mailboxes. It fails
// after Close, or when the port was taken in the meantime.
func (m *Server) Restart() error {
	select {
	case <-m.closed:
		return errors.New("imaptest: restart of a closed server")
	default:
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.stopLocked(); err != nil {
		return err
	}
	return m.listen(m.Addr)
}

// HoldFetches makes every FETCH of a body, from now on, wait without answering — a server
// that stops answering in the middle of a batch — until release is called; the held FETCHes
// then answer as usual (over a connection Stop closed meanwhile, to no one). Close ends the
// wait too.
func (m *Server) HoldFetches() (release func()) {
	ch := make(chan struct{})
	m.mu.Lock()
	m.hold = ch
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			if m.hold == ch {
				m.hold = nil
			}
			m.mu.Unlock()
			close(ch)
		})
	}
}

// held returns the channel a FETCH of a body must wait for, or nil.
func (m *Server) held() chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hold
}

// Append delivers a message straight into a mailbox, as an MTA would; sessions that IDLE on
// it are told (EXISTS). The arrival time (INTERNALDATE) is date, or now when zero.
func (m *Server) Append(mailbox string, raw []byte, date time.Time) (imap.UID, error) {
	data, err := m.user.Append(mailbox, bytes.NewReader(raw), &imap.AppendOptions{Time: date})
	if err != nil {
		return 0, fmt.Errorf("append to %s: %w", mailbox, err)
	}
	return data.UID, nil
}

// Status returns the message count and the unseen count of a mailbox.
func (m *Server) Status(mailbox string) (messages, unseen uint32, err error) {
	st, err := m.user.Status(mailbox, &imap.StatusOptions{NumMessages: true, NumUnseen: true})
	if err != nil {
		return 0, 0, err
	}
	return *st.NumMessages, *st.NumUnseen, nil
}

// Close stops the server and closes every connection.
func (m *Server) Close() error {
	m.closeOnce.Do(func() { close(m.closed) })
	return m.Stop()
}

// memSession is imapmemserver's session for the one user, with one fix: imapmemserver's IDLE
// does not report updates queued before it started (an APPEND between a client's last command
// and its IDLE would only be announced at the next change). Real servers (Dovecot) do report
// them, and a poller's latency depends on it, so IDLE here flushes pending updates first.
type memSession struct {
	*imapmemserver.UserSession // nil until LOGIN
	user                       *imapmemserver.User
	name, password             string
	quirks                     Quirks
	closed                     <-chan struct{}
	conn                       *imapserver.Conn
	drops                      *atomic.Int32 // body FETCHes still to cut, shared by the sessions
	srv                        *Server
}

func (s *memSession) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	if len(options.BodySection) > 0 {
		q := s.quirks
		if q.HangFetch {
			<-s.closed
			return errors.New("server closed")
		}
		if hold := s.srv.held(); hold != nil {
			select {
			case <-hold:
			case <-s.closed:
				return errors.New("server closed")
			}
		}
		if uids, ok := numSet.(imap.UIDSet); ok && q.RefuseBody != nil {
			if nums, ok := uids.Nums(); ok {
				for _, uid := range nums {
					if q.RefuseBody(uid) {
						return &imap.Error{Type: imap.StatusResponseTypeNo, Text: fmt.Sprintf("message %d is corrupt", uid)}
					}
				}
			}
		}
		if s.drops.Add(-1) >= 0 {
			// Send the first message's body, then cut the connection mid-answer.
			if uids, ok := numSet.(imap.UIDSet); ok {
				if nums, ok := uids.Nums(); ok && len(nums) > 0 {
					_ = s.UserSession.Fetch(w, imap.UIDSetNum(nums[0]), options)
				}
			}
			s.conn.NetConn().Close()
			return errors.New("connection cut")
		}
		if q.FlagsBeforeBody {
			if err := s.UserSession.Fetch(w, numSet, &imap.FetchOptions{UID: true, Flags: true}); err != nil {
				return err
			}
		}
	}
	return s.UserSession.Fetch(w, numSet, options)
}

func (s *memSession) Login(username, password string) error {
	if username != s.name || password != s.password {
		return imapserver.ErrAuthFailed
	}
	s.UserSession = imapmemserver.NewUserSession(s.user)
	return nil
}

func (s *memSession) Close() error {
	if s.UserSession == nil {
		return nil
	}
	return s.UserSession.Close()
}

func (s *memSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if err := s.UserSession.Poll(w, true); err != nil {
		return err
	}
	return s.UserSession.Idle(w, stop)
}
