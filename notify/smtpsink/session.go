package smtpsink

import (
	"crypto/subtle"
	"io"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// errAuthRequired is the reply to MAIL before AUTH when Options.User is set.
var errAuthRequired = &smtp.SMTPError{
	Code:         530,
	EnhancedCode: smtp.EnhancedCode{5, 7, 0},
	Message:      "Authentication required",
}

// backend implements smtp.Backend for a Server.
type backend struct {
	s *Server
}

// NewSession runs at EHLO/HELO, and again at the first EHLO after STARTTLS.
func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	if !isTLS {
		// The server only offers STARTTLS (no implicit TLS), so a TLS
		// session is the second session of an already counted connection.
		b.s.mu.Lock()
		b.s.conns++
		b.s.mu.Unlock()
	}
	return &session{s: b.s, helo: c.Hostname(), tls: isTLS}, nil
}

// session is one SMTP session. go-smtp calls its methods from the
// connection's goroutine only (Logout may come from Close, and touches
// nothing), so its fields need no lock; shared state lives in Server.
type session struct {
	s    *Server
	helo string
	tls  bool
	user string // authenticated user, "" before AUTH

	// Current transaction.
	from        string
	to          []string
	inTx        bool
	rcptChecked bool            // the RCPT script was consulted for this transaction
	rcptErr     *smtp.SMTPError // scripted RCPT failure for this transaction
}

var _ smtp.AuthSession = (*session)(nil)

// AuthMechanisms offers PLAIN when Options.User is set (go-smtp advertises it
// only over TLS unless AllowInsecureAuth).
func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.User == "" {
		return nil
	}
	if ss.s.opts.Bearer != nil {
		return append([]string{sasl.Plain}, ss.s.bearerMechs()...)
	}
	return []string{sasl.Plain}
}

// Auth checks AUTH PLAIN credentials against Options.User/Password.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.s.opts.User == "" {
		return nil, smtp.ErrAuthUnsupported
	}
	if mech != sasl.Plain {
		for _, m := range ss.s.bearerMechs() {
			if m == mech {
				return &bearerServer{ss: ss, mech: mech}, nil
			}
		}
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return smtp.ErrAuthFailed
		}
		userOK := subtle.ConstantTimeCompare([]byte(username), []byte(ss.s.opts.User)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(password), []byte(ss.s.opts.Password)) == 1
		if !userOK || !passOK {
			return smtp.ErrAuthFailed // 535 5.7.8
		}
		ss.user = username
		return nil
	}), nil
}

// Mail starts a transaction. go-smtp does not call Reset before a second
// MAIL on the same connection (e.g. after a refused RCPT without RSET), so
// the transaction state is cleared here too.
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.Reset()
	if ss.s.isDown() {
		return errDown
	}
	if ss.s.opts.User != "" && ss.user == "" {
		return errAuthRequired
	}
	if err := ss.s.takeFailure(StageMail); err != nil {
		return err
	}
	ss.from = from
	ss.inTx = true
	return nil
}

// Rcpt adds a recipient, unless a StageRcpt script applies to the
// transaction.
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !ss.inTx {
		// Not reached through go-smtp, which refuses RCPT before MAIL.
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Need MAIL first"}
	}
	if !ss.rcptChecked {
		ss.rcptChecked = true
		ss.rcptErr = ss.s.takeFailure(StageRcpt)
	}
	if ss.rcptErr != nil {
		return ss.rcptErr
	}
	ss.to = append(ss.to, to)
	return nil
}

// Data reads the message and records it, unless a StageData script applies.
func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err // e.g. smtp.ErrDataTooLarge (552)
	}
	if err := ss.s.takeFailure(StageData); err != nil {
		return err
	}
	ss.s.record(Message{
		From:     ss.from,
		To:       append([]string(nil), ss.to...),
		Data:     data,
		Received: time.Now(),
		Helo:     ss.helo,
		TLS:      ss.tls,
		User:     ss.user,
	})
	return nil
}

// Reset ends the transaction (after DATA, RSET, a repeated EHLO).
func (ss *session) Reset() {
	ss.from = ""
	ss.to = nil
	ss.inTx = false
	ss.rcptChecked = false
	ss.rcptErr = nil
}

// Logout ends the session; nothing to release.
func (ss *session) Logout() error { return nil }
