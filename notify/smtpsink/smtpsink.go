// Package smtpsink runs a recording SMTP server on 127.0.0.1 — the sink that tests and
// `helpdesk demo` send notifications to. It can be scripted to answer chosen 4xx/5xx replies.
//
// The server is built on github.com/emersion/go-smtp. It records every accepted message
// (envelope and raw data) in memory, can offer STARTTLS with an in-memory self-signed
// certificate, can require AUTH PLAIN, and can be told to fail the next transactions at MAIL,
// RCPT or DATA (FailNext), to answer 421 to every MAIL (SetDown), or to stop listening
// altogether and come back on the same address (Stop, Restart).
//
// The demo command links it, so it must never import "testing": tests call notify/smtptest.New,
// which ties a server to a testing.TB.
package smtpsink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// DefaultMaxMessageBytes is the message size limit used when
// Options.MaxMessageBytes is zero. Bigger messages are answered 552.
const DefaultMaxMessageBytes int64 = 32 << 20

// NotifyBuffer is the capacity of the channel returned by Server.Notify.
const NotifyBuffer = 256

const (
	// Per-command timeouts of the server side. Generous enough for a
	// pooled client connection to sit idle between notifications, short
	// enough that an abandoned connection does not live forever.
	readTimeout  = 2 * time.Minute
	writeTimeout = 30 * time.Second
	// How long Stop/Close wait for session goroutines to finish after their
	// connections have been closed.
	shutdownTimeout = 5 * time.Second
)

// ErrClosed is returned by Restart after Close, and by Wait when the server
// is closed before enough messages arrived.
var ErrClosed = errors.New("smtpsink: server closed")

// Message is one message accepted by the server (the DATA reply was 250).
type Message struct {
	From     string    // envelope MAIL FROM (reverse-path, without brackets; "" for the null sender)
	To       []string  // envelope RCPT TO, in the order given
	Data     []byte    // raw message as received: dot-unstuffed, CRLF line endings
	Received time.Time // when the end of DATA was received

	Helo string // name the client gave in its (last) EHLO/HELO
	TLS  bool   // the transaction ran over TLS (after STARTTLS)
	User string // the user that authenticated with AUTH PLAIN; "" if none
}

// Options configure a Server. The zero value is a plaintext server without
// authentication.
type Options struct {
	// User and Password, when User is non-empty, make the server offer
	// AUTH PLAIN and require it before MAIL: an unauthenticated MAIL is
	// answered 530 5.7.0, a wrong user name or password 535 5.7.8.
	// AUTH is only offered over TLS unless AllowInsecureAuth is set, so
	// Start rejects a User without TLS or AllowInsecureAuth.
	User, Password string

	// Bearer, with User, makes the server also offer XOAUTH2 and OAUTHBEARER (RFC 7628) and
	// accept a login whose OAuth 2.0 bearer token it approves for the user — a test asks an
	// introspection endpoint (RFC 7662), as a provider's server does. BearerMechanisms narrows
	// the offer (Exchange Online offers only XOAUTH2); empty: both.
	Bearer           func(user, token string) bool
	BearerMechanisms []string

	// TLS makes the server offer STARTTLS with a self-signed certificate for
	// 127.0.0.1, ::1 and localhost, generated in memory by Start. Clients
	// trust it through CertPool or ClientTLSConfig. TLS is not required:
	// plaintext transactions are still accepted.
	TLS bool

	// AllowInsecureAuth offers and accepts AUTH over a plaintext connection
	// (loopback tests).
	AllowInsecureAuth bool

	// MaxMessageBytes limits the size of a message; bigger messages are
	// answered 552 5.3.4. Zero means DefaultMaxMessageBytes, a negative
	// value means no limit.
	MaxMessageBytes int64

	// ErrorLog receives go-smtp's internal server errors (failed handshakes,
	// connection errors). Nil discards them. New routes them to tb.Logf
	// when this is nil.
	ErrorLog smtp.Logger
}

// Stage is the SMTP command at which FailNext answers an error.
type Stage int

const (
	// StageMail fails the MAIL FROM command.
	StageMail Stage = iota
	// StageRcpt fails the RCPT TO commands of a transaction.
	StageRcpt
	// StageData fails the end of DATA, after the message has been received
	// (go-smtp always answers 354 to the DATA command itself).
	StageData

	numStages
)

// String returns "MAIL", "RCPT" or "DATA".
func (st Stage) String() string {
	switch st {
	case StageMail:
		return "MAIL"
	case StageRcpt:
		return "RCPT"
	case StageData:
		return "DATA"
	}
	return "Stage(" + strconv.Itoa(int(st)) + ")"
}

// failRule is one FailNext script: answer err to the next `left`
// transactions reaching its stage.
type failRule struct {
	err  *smtp.SMTPError
	left int
}

// Server is a recording SMTP server listening on 127.0.0.1. It is safe for
// concurrent use. Create it with Start (or New in tests) and release it with
// Close.
type Server struct {
	opts      Options
	maxBytes  int64 // value given to go-smtp (0 = no limit)
	tlsConfig *tls.Config
	certPool  *x509.CertPool
	errorLog  smtp.Logger
	addr      string // fixed at Start, reused by Restart

	// life serialises Stop, Restart and Close.
	life   sync.Mutex
	run    *instance // nil while stopped
	closed bool      // Close was called

	// mu guards everything below, which sessions read and write.
	mu       sync.Mutex
	msgs     []Message
	changed  chan struct{} // closed and replaced when msgs grows or on Close
	notify   chan Message
	fails    [numStages][]*failRule
	down     bool
	conns    int
	muClosed bool // Close has finished with the sessions (mirrors closed)
}

// instance is one listening incarnation of the server (Start or Restart).
type instance struct {
	srv       *smtp.Server
	ln        *trackingListener
	serveDone chan struct{}
}

// Start creates a Server listening on 127.0.0.1 on a free port and serves it
// in the background. Call Close to release it.
func Start(opts Options) (*Server, error) {
	if opts.User != "" && !opts.TLS && !opts.AllowInsecureAuth {
		return nil, errors.New("smtpsink: Options.User needs TLS or AllowInsecureAuth, else AUTH can never succeed")
	}
	s := &Server{
		opts:     opts,
		errorLog: opts.ErrorLog,
		changed:  make(chan struct{}),
		notify:   make(chan Message, NotifyBuffer),
	}
	switch {
	case opts.MaxMessageBytes == 0:
		s.maxBytes = DefaultMaxMessageBytes
	case opts.MaxMessageBytes > 0:
		s.maxBytes = opts.MaxMessageBytes
	}
	if s.errorLog == nil {
		s.errorLog = log.New(io.Discard, "", 0)
	}
	if opts.TLS {
		cert, pool, err := selfSignedCert()
		if err != nil {
			return nil, fmt.Errorf("smtpsink: generating certificate: %w", err)
		}
		s.tlsConfig = &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
		}
		s.certPool = pool
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtpsink: listen: %w", err)
	}
	s.addr = ln.Addr().String()
	s.life.Lock()
	s.run = s.serve(ln)
	s.life.Unlock()
	return s, nil
}

// serve starts a go-smtp server on ln in the background.
func (s *Server) serve(ln net.Listener) *instance {
	srv := smtp.NewServer(&backend{s: s})
	srv.Domain = "localhost"
	srv.ReadTimeout = readTimeout
	srv.WriteTimeout = writeTimeout
	srv.MaxMessageBytes = s.maxBytes
	srv.AllowInsecureAuth = s.opts.AllowInsecureAuth
	srv.TLSConfig = s.tlsConfig
	srv.ErrorLog = s.errorLog

	in := &instance{
		srv:       srv,
		ln:        newTrackingListener(ln),
		serveDone: make(chan struct{}),
	}
	go func() {
		defer close(in.serveDone)
		// Serve returns when the listener is closed; its error then
		// carries no information.
		_ = srv.Serve(in.ln)
	}()
	return in
}

// stop closes the listener and every connection, then waits for the Serve
// goroutine and the session goroutines to finish.
//
// The listener is closed by us, not only by smtp.Server.Close: if Close ran
// before Serve registered the listener, Serve would block in Accept forever.
func (in *instance) stop() error {
	in.ln.Close() // also closes every accepted connection
	<-in.serveDone
	// Serve has returned, so no more connection goroutines start; Shutdown
	// waits for the running ones, which end quickly as their connections
	// are closed.
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := in.srv.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("smtpsink: shutdown: %w", err)
	}
	return nil
}

// Addr returns the address the server listens on, "127.0.0.1:port". It stays
// the same across Stop and Restart.
func (s *Server) Addr() string { return s.addr }

// Host returns "127.0.0.1".
func (s *Server) Host() string {
	host, _, _ := net.SplitHostPort(s.addr)
	return host
}

// Port returns the TCP port the server listens on.
func (s *Server) Port() int {
	_, port, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(port)
	return n
}

// Close stops accepting connections, closes the open ones and waits for
// their sessions to end. Recorded messages stay readable. Afterwards Wait
// returns ErrClosed instead of blocking, the Notify channel is closed and
// Restart fails. Close is safe to call more than once; later calls return nil.
func (s *Server) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.run != nil {
		err = s.run.stop()
		s.run = nil
	}
	s.mu.Lock()
	s.muClosed = true
	close(s.changed)
	close(s.notify)
	s.mu.Unlock()
	return err
}

// Stop stops listening and closes the open connections, so that clients get
// "connection refused" — a server that is really gone, unlike SetDown.
// Recorded messages, scripted failures and the address are kept; Restart
// listens again. Stop on a stopped or closed server does nothing.
func (s *Server) Stop() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.run == nil {
		return nil
	}
	err := s.run.stop()
	s.run = nil
	return err
}

// Restart listens again on the same address (Addr) after Stop. On a running
// server it first stops it, dropping the open connections. It fails after
// Close, or if the port was taken by someone else in the meantime.
func (s *Server) Restart() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.run != nil {
		err := s.run.stop()
		s.run = nil
		if err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("smtpsink: restart: %w", err)
	}
	s.run = s.serve(ln)
	return nil
}

// Messages returns a copy of every message accepted so far, in the order
// their DATA completed.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copyMessages()
}

func (s *Server) copyMessages() []Message {
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = m.clone()
	}
	return out
}

func (m Message) clone() Message {
	m.To = append([]string(nil), m.To...)
	m.Data = append([]byte(nil), m.Data...)
	return m
}

// Wait blocks until at least n messages have been accepted in total (not n
// new ones) and returns a copy of all of them. If ctx is done first it
// returns the messages so far and ctx.Err(); if the server is closed first,
// the messages so far and ErrClosed.
func (s *Server) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			msgs := s.copyMessages()
			s.mu.Unlock()
			return msgs, nil
		}
		if s.muClosed {
			msgs := s.copyMessages()
			s.mu.Unlock()
			return msgs, ErrClosed
		}
		changed := s.changed
		s.mu.Unlock()

		select {
		case <-changed:
		case <-ctx.Done():
			return s.Messages(), ctx.Err()
		}
	}
}

// Notify returns a channel that receives a copy of each message as it is
// accepted. Every call returns the same channel, so with several readers
// each message goes to only one of them. It holds NotifyBuffer messages;
// when it is full, further messages are not sent on it (they are still
// recorded for Messages and Wait). The channel is closed by Close, so
// `for m := range s.Notify()` ends when the server is closed.
func (s *Server) Notify() <-chan Message { return s.notify }

// Connections returns the number of SMTP sessions opened so far: one per
// connection that sent EHLO/HELO (the new session go-smtp opens after
// STARTTLS on the same connection is not counted again). Comparing it with
// the number of messages shows whether a client reuses its connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// FailNext makes the next `times` transactions that reach stage answer
// code/enhanced/msg there, as an *smtp.SMTPError on the client side. After
// that, transactions succeed again. A transaction is one MAIL FROM:
//   - StageMail: the MAIL command is refused.
//   - StageRcpt: every RCPT of the transaction is refused (one use per
//     transaction, however many recipients it has).
//   - StageData: the message is received and then refused; it is not recorded.
//
// A transaction that fails at an earlier stage does not use up a later
// stage's script. Scripts for the same stage queue up in call order.
// A zero enhanced code is sent as X.0.0; an empty msg gets a default text.
// FailNext panics if code is not in 400–599, times is below 1 or stage is
// unknown. SetDown, when set, takes precedence.
func (s *Server) FailNext(stage Stage, code int, enhanced smtp.EnhancedCode, msg string, times int) {
	if stage < 0 || stage >= numStages {
		panic(fmt.Sprintf("smtpsink: FailNext: unknown stage %v", stage))
	}
	if code < 400 || code > 599 {
		panic(fmt.Sprintf("smtpsink: FailNext: code %d is not a 4xx or 5xx reply", code))
	}
	if times < 1 {
		panic(fmt.Sprintf("smtpsink: FailNext: times = %d, want at least 1", times))
	}
	if msg == "" {
		msg = fmt.Sprintf("Scripted failure at %v", stage)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails[stage] = append(s.fails[stage], &failRule{
		err:  &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: msg},
		left: times,
	})
}

// takeFailure uses up one transaction of the first script for stage, if any.
func (s *Server) takeFailure(stage Stage) *smtp.SMTPError {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.fails[stage]
	if len(q) == 0 {
		return nil
	}
	r := q[0]
	r.left--
	if r.left == 0 {
		q[0] = nil
		s.fails[stage] = q[1:]
	}
	return r.err
}

// errDown is the reply to MAIL while the server is down.
var errDown = &smtp.SMTPError{
	Code:         421,
	EnhancedCode: smtp.EnhancedCode{4, 3, 2},
	Message:      "Service not available, try again later",
}

// SetDown sets whether the server is "down": while it is, every MAIL is
// answered 421 4.3.2 (service not available), on new and already open
// connections alike; connections stay open. Use Stop to refuse connections
// instead.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *Server) isDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// CertPool returns a pool holding the server's self-signed certificate, for
// a client's tls.Config.RootCAs. It is nil unless Options.TLS is set. Each
// call returns a new pool.
func (s *Server) CertPool() *x509.CertPool {
	if s.certPool == nil {
		return nil
	}
	return s.certPool.Clone()
}

// ClientTLSConfig returns a client TLS configuration that trusts the
// server's certificate, with ServerName "127.0.0.1"; nil unless Options.TLS
// is set. Pass it to smtp.DialStartTLS(s.Addr(), s.ClientTLSConfig()).
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.certPool == nil {
		return nil
	}
	return &tls.Config{
		RootCAs:    s.CertPool(),
		ServerName: s.Host(),
		MinVersion: tls.VersionTLS12,
	}
}

// record stores an accepted message and wakes Wait and Notify.
func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	if s.muClosed {
		// Only possible if a session outlived Close's shutdown timeout.
		return
	}
	select {
	case s.notify <- m.clone():
	default: // full: drop; Messages still has it
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// bearerMechs returns the bearer token mechanisms offered: none without Options.Bearer.
func (s *Server) bearerMechs() []string {
	switch {
	case s.opts.Bearer == nil:
		return nil
	case len(s.opts.BearerMechanisms) > 0:
		return s.opts.BearerMechanisms
	}
	return []string{mechOAuthBearer, mechXOAuth2}
}
