package smtpsink_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

const (
	user = "helpdesk"
	pass = "s3cret"
)

// rawMsg has LF line endings and a line starting with a dot, to check that
// the recorded data is CRLF and dot-unstuffed.
const rawMsg = "From: helpdesk@example.com\nTo: alice@example.com\nSubject: Ticket #1\n\nHello\n.leading dot\n"

const wantData = "From: helpdesk@example.com\r\nTo: alice@example.com\r\nSubject: Ticket #1\r\n\r\nHello\r\n.leading dot\r\n"

// ctxT is a hang guard for one step, with room for a busy machine.
func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// setTimeouts bounds a client's commands: hang guards, below the server's own read timeout.
func setTimeouts(c *smtp.Client) {
	c.CommandTimeout = 60 * time.Second
	c.SubmissionTimeout = 60 * time.Second
}

// dial opens a plaintext client; it is closed at the end of the test.
func dial(t *testing.T, s *smtpsink.Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	setTimeouts(c)
	t.Cleanup(func() { c.Close() })
	return c
}

func dialTLS(t *testing.T, s *smtpsink.Server) *smtp.Client {
	t.Helper()
	c, err := smtp.DialStartTLS(s.Addr(), &tls.Config{RootCAs: s.CertPool()})
	if err != nil {
		t.Fatalf("DialStartTLS: %v", err)
	}
	setTimeouts(c)
	t.Cleanup(func() { c.Close() })
	return c
}

func send(c *smtp.Client, from string, to ...string) error {
	return c.SendMail(from, to, strings.NewReader(rawMsg))
}

// wantSMTPError checks that err is an *smtp.SMTPError with that code, and
// with that enhanced code and message when they are not zero.
func wantSMTPError(t *testing.T, err error, code int, enhanced smtp.EnhancedCode, msg string) *smtp.SMTPError {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("got error %v (%T), want *smtp.SMTPError %d", err, err, code)
	}
	if se.Code != code {
		t.Fatalf("got code %d (%v), want %d", se.Code, se, code)
	}
	if enhanced != (smtp.EnhancedCode{}) && se.EnhancedCode != enhanced {
		t.Fatalf("got enhanced code %v, want %v", se.EnhancedCode, enhanced)
	}
	if msg != "" && se.Message != msg {
		t.Fatalf("got message %q, want %q", se.Message, msg)
	}
	return se
}

func TestRecordsMessage(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{})
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.Port() == 0 || s.Host() != "127.0.0.1" {
		t.Fatalf("Addr %q Host %q Port %d", s.Addr(), s.Host(), s.Port())
	}

	c := dial(t, s)
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := send(c, "helpdesk@example.com", "alice@example.com", "bob@example.com"); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("Quit: %v", err)
	}

	msgs, err := s.Wait(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "helpdesk@example.com" {
		t.Errorf("From = %q", m.From)
	}
	if strings.Join(m.To, ",") != "alice@example.com,bob@example.com" {
		t.Errorf("To = %q", m.To)
	}
	if string(m.Data) != wantData {
		t.Errorf("Data = %q, want %q", m.Data, wantData)
	}
	if m.Received.Before(before) || m.Received.After(time.Now()) {
		t.Errorf("Received = %v", m.Received)
	}
	if m.Helo != "client.test" || m.TLS || m.User != "" {
		t.Errorf("Helo %q TLS %v User %q", m.Helo, m.TLS, m.User)
	}

	// Messages returns a copy.
	got := s.Messages()
	got[0].To[0] = "mallory@example.com"
	got[0].Data[0] = 'X'
	if again := s.Messages(); again[0].To[0] != "alice@example.com" || string(again[0].Data) != wantData {
		t.Error("Messages does not return a copy")
	}

	select {
	case n := <-s.Notify():
		if n.From != m.From || string(n.Data) != wantData {
			t.Errorf("Notify got %+v", n)
		}
	default:
		t.Error("Notify channel is empty")
	}
	if n := s.Connections(); n != 1 {
		t.Errorf("Connections = %d, want 1", n)
	}
}

func TestNullSender(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{})
	c := dial(t, s)
	if err := send(c, "", "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Wait(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].From != "" {
		t.Errorf("From = %q, want empty", msgs[0].From)
	}
}

func TestWait(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{})

	type result struct {
		msgs []smtpsink.Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		msgs, err := s.Wait(ctxT(t), 2)
		done <- result{msgs, err}
	}()

	c := dial(t, s)
	if err := send(c, "a@example.com", "b@example.com"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		t.Fatalf("Wait(2) returned after one message: %d messages, %v", len(r.msgs), r.err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := send(c, "c@example.com", "d@example.com"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.msgs) != 2 {
		t.Fatalf("Wait(2) = %d messages, %v", len(r.msgs), r.err)
	}
	if r.msgs[0].From != "a@example.com" || r.msgs[1].From != "c@example.com" {
		t.Errorf("order: %q, %q", r.msgs[0].From, r.msgs[1].From)
	}

	// Already satisfied: returns at once.
	if msgs, err := s.Wait(ctxT(t), 1); err != nil || len(msgs) != 2 {
		t.Errorf("Wait(1) = %d, %v", len(msgs), err)
	}

	// Context expiry.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	msgs, err := s.Wait(ctx, 3)
	if !errors.Is(err, context.DeadlineExceeded) || len(msgs) != 2 {
		t.Errorf("Wait(3) with deadline = %d, %v", len(msgs), err)
	}
}

func TestWaitReturnsOnClose(t *testing.T) {
	s, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Wait(context.Background(), 1)
		done <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, smtpsink.ErrClosed) {
		t.Fatalf("Wait after Close = %v, want ErrClosed", err)
	}
	if _, ok := <-s.Notify(); ok {
		t.Error("Notify channel not closed by Close")
	}
}

func TestFailNext(t *testing.T) {
	cases := []struct {
		stage    smtpsink.Stage
		code     int
		enhanced smtp.EnhancedCode
		msg      string
	}{
		{smtpsink.StageMail, 451, smtp.EnhancedCode{4, 3, 0}, "Try later (mail)"},
		{smtpsink.StageMail, 550, smtp.EnhancedCode{5, 7, 1}, "Sender rejected"},
		{smtpsink.StageRcpt, 450, smtp.EnhancedCode{4, 2, 1}, "Mailbox busy"},
		{smtpsink.StageRcpt, 550, smtp.EnhancedCode{5, 1, 1}, "No such user"},
		{smtpsink.StageData, 452, smtp.EnhancedCode{4, 3, 1}, "Out of storage"},
		{smtpsink.StageData, 554, smtp.EnhancedCode{5, 6, 0}, "Content rejected"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%v_%d", tc.stage, tc.code), func(t *testing.T) {
			s := smtptest.New(t, smtpsink.Options{})
			s.FailNext(tc.stage, tc.code, tc.enhanced, tc.msg, 2)

			// Two failing transactions, on the same connection, then one
			// that succeeds.
			c := dial(t, s)
			for i := 0; i < 2; i++ {
				err := send(c, "helpdesk@example.com", "alice@example.com")
				se := wantSMTPError(t, err, tc.code, tc.enhanced, tc.msg)
				if se.Temporary() != (tc.code/100 == 4) {
					t.Errorf("Temporary() = %v for %d", se.Temporary(), tc.code)
				}
			}
			if err := send(c, "helpdesk@example.com", "alice@example.com"); err != nil {
				t.Fatalf("third transaction: %v", err)
			}
			msgs, err := s.Wait(ctxT(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 1 || strings.Join(msgs[0].To, ",") != "alice@example.com" {
				t.Fatalf("recorded %+v", msgs)
			}
		})
	}
}

// A RCPT script is used once per transaction, whatever the number of
// recipients, and a transaction refused at MAIL does not use it.
func TestFailNextRcptPerTransaction(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{})
	s.FailNext(smtpsink.StageMail, 421, smtp.EnhancedCode{}, "", 1)
	s.FailNext(smtpsink.StageRcpt, 550, smtp.EnhancedCode{5, 1, 1}, "No such user", 1)

	c := dial(t, s)
	// Transaction 1: refused at MAIL with the default text and X.0.0.
	se := wantSMTPError(t, c.Mail("a@example.com", nil), 421, smtp.EnhancedCode{4, 0, 0}, "")
	if !strings.Contains(se.Message, "MAIL") {
		t.Errorf("default message %q", se.Message)
	}
	// Transaction 2: every RCPT refused.
	if err := c.Mail("a@example.com", nil); err != nil {
		t.Fatal(err)
	}
	wantSMTPError(t, c.Rcpt("x@example.com", nil), 550, smtp.EnhancedCode{5, 1, 1}, "No such user")
	wantSMTPError(t, c.Rcpt("y@example.com", nil), 550, smtp.EnhancedCode{5, 1, 1}, "No such user")
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	// Transaction 3: fine.
	if err := send(c, "a@example.com", "x@example.com", "y@example.com"); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Wait(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(msgs[0].To, ","); got != "x@example.com,y@example.com" {
		t.Errorf("To = %q", got)
	}
}

func TestFailNextPanicsOnBadArguments(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{})
	for _, tc := range []struct {
		stage smtpsink.Stage
		code  int
		times int
	}{
		{smtpsink.StageMail, 250, 1},
		{smtpsink.StageMail, 600, 1},
		{smtpsink.StageData, 550, 0},
		{smtpsink.Stage(7), 550, 1},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("FailNext(%v, %d, times %d) did not panic", tc.stage, tc.code, tc.times)
				}
			}()
			s.FailNext(tc.stage, tc.code, smtp.EnhancedCode{}, "", tc.times)
		}()
	}
}

func TestAuthRequired(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{User: user, Password: pass, AllowInsecureAuth: true})

	// No AUTH: 530 at MAIL.
	c := dial(t, s)
	if ok, params := c.Extension("AUTH"); !ok || params != "PLAIN" {
		t.Fatalf("AUTH extension = %v %q, want PLAIN", ok, params)
	}
	wantSMTPError(t, send(c, "a@example.com", "b@example.com"), 530, smtp.EnhancedCode{5, 7, 0}, "")

	// Bad password: 535.
	c = dial(t, s)
	wantSMTPError(t, c.Auth(sasl.NewPlainClient("", user, "wrong")), 535, smtp.EnhancedCode{5, 7, 8}, "")
	wantSMTPError(t, send(c, "a@example.com", "b@example.com"), 530, smtp.EnhancedCode{}, "")

	// Bad user, and an authorization identity that is not the user: 535.
	c = dial(t, s)
	wantSMTPError(t, c.Auth(sasl.NewPlainClient("", "nobody", pass)), 535, smtp.EnhancedCode{}, "")
	c = dial(t, s)
	wantSMTPError(t, c.Auth(sasl.NewPlainClient("admin", user, pass)), 535, smtp.EnhancedCode{}, "")

	// Good credentials.
	c = dial(t, s)
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	if err := send(c, "a@example.com", "b@example.com"); err != nil {
		t.Fatalf("SendMail after AUTH: %v", err)
	}
	msgs, err := s.Wait(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].User != user {
		t.Fatalf("recorded %+v", msgs)
	}
}

func TestNoAuthWithoutUser(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{AllowInsecureAuth: true})
	c := dial(t, s)
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH advertised without Options.User")
	}
	if err := send(c, "a@example.com", "b@example.com"); err != nil {
		t.Fatal(err)
	}
}

func TestStartRejectsUnusableAuth(t *testing.T) {
	if s, err := smtpsink.Start(smtpsink.Options{User: user, Password: pass}); err == nil {
		s.Close()
		t.Fatal("Start with User but neither TLS nor AllowInsecureAuth succeeded")
	}
}

func TestStartTLS(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{TLS: true, User: user, Password: pass})
	if s.CertPool() == nil || s.ClientTLSConfig() == nil {
		t.Fatal("no CertPool/ClientTLSConfig with TLS set")
	}

	// Over plaintext, STARTTLS is offered but AUTH is not, and MAIL needs it.
	c := dial(t, s)
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS not advertised")
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH advertised before TLS without AllowInsecureAuth")
	}
	wantSMTPError(t, send(c, "a@example.com", "b@example.com"), 530, smtp.EnhancedCode{}, "")

	// A client that does not trust the certificate fails the handshake. The
	// go-smtp client handshakes lazily, so DialStartTLS itself succeeds and
	// the error comes with the next command.
	if c, err := smtp.DialStartTLS(s.Addr(), &tls.Config{}); err == nil {
		setTimeouts(c)
		err = c.Noop()
		c.Close()
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("untrusted certificate: got %v, want a certificate error", err)
		}
	}

	for name, cfg := range map[string]*tls.Config{
		"CertPool":        {RootCAs: s.CertPool()},
		"ClientTLSConfig": s.ClientTLSConfig(),
		"localhost":       {RootCAs: s.CertPool(), ServerName: "localhost"},
	} {
		c, err := smtp.DialStartTLS(s.Addr(), cfg)
		if err != nil {
			t.Fatalf("%s: DialStartTLS: %v", name, err)
		}
		setTimeouts(c)
		if ok, params := c.Extension("AUTH"); !ok || params != "PLAIN" {
			t.Errorf("%s: AUTH after STARTTLS = %v %q", name, ok, params)
		}
		if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
			t.Fatalf("%s: Auth: %v", name, err)
		}
		if err := send(c, "a@example.com", "b@example.com"); err != nil {
			t.Fatalf("%s: SendMail: %v", name, err)
		}
		if err := c.Quit(); err != nil {
			t.Fatalf("%s: Quit: %v", name, err)
		}
	}
	msgs, err := s.Wait(ctxT(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if !m.TLS || m.User != user || string(m.Data) != wantData {
			t.Errorf("message TLS %v User %q Data %q", m.TLS, m.User, m.Data)
		}
	}
	// 2 plaintext connections that sent EHLO (the untrusting client sent
	// EHLO and STARTTLS, then failed) + 3 STARTTLS ones, each counted once.
	if n := s.Connections(); n != 5 {
		t.Errorf("Connections = %d, want 5", n)
	}
}

func TestCertPoolNilWithoutTLS(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{})
	if s.CertPool() != nil || s.ClientTLSConfig() != nil {
		t.Error("CertPool/ClientTLSConfig not nil without TLS")
	}
	c := dial(t, s)
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS advertised without Options.TLS")
	}
}

func TestSetDown(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{})
	s.FailNext(smtpsink.StageMail, 550, smtp.EnhancedCode{}, "", 1)

	open := dial(t, s) // opened while up
	if err := open.Noop(); err != nil {
		t.Fatal(err)
	}

	s.SetDown(true)
	for _, c := range []*smtp.Client{open, dial(t, s)} {
		se := wantSMTPError(t, send(c, "a@example.com", "b@example.com"), 421, smtp.EnhancedCode{4, 3, 2}, "")
		if !se.Temporary() {
			t.Error("421 is not Temporary")
		}
	}

	s.SetDown(false)
	// The scripted 550 was not used up while down.
	wantSMTPError(t, send(open, "a@example.com", "b@example.com"), 550, smtp.EnhancedCode{}, "")
	if err := send(open, "a@example.com", "b@example.com"); err != nil {
		t.Fatalf("after SetDown(false): %v", err)
	}
	if msgs := s.Messages(); len(msgs) != 1 {
		t.Fatalf("%d messages recorded, want 1", len(msgs))
	}
}

func TestMaxMessageBytes(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{MaxMessageBytes: 64})
	c := dial(t, s)
	if ok, params := c.Extension("SIZE"); !ok || params != "64" {
		t.Errorf("SIZE = %v %q", ok, params)
	}
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", 200) + "\r\n"
	err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(big))
	wantSMTPError(t, err, 552, smtp.EnhancedCode{5, 3, 4}, "")
	if err := send(c, "a@example.com", "b@example.com"); err == nil {
		// rawMsg is longer than 64 bytes too.
		t.Fatal("second oversized message accepted")
	}
	if err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: s\r\n\r\nok\r\n")); err != nil {
		t.Fatalf("small message: %v", err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestConnectionsCountsSessions(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{})
	c := dial(t, s)
	for i := 0; i < 3; i++ {
		if err := send(c, "a@example.com", "b@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Connections(); n != 1 {
		t.Errorf("Connections after 3 messages on one connection = %d, want 1", n)
	}
	if err := send(dial(t, s), "a@example.com", "b@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := s.Connections(); n != 2 {
		t.Errorf("Connections = %d, want 2", n)
	}
}

func TestConcurrentSenders(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(s.Addr())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			setTimeouts(c)
			if err := send(c, fmt.Sprintf("s%d@example.com", i), "r@example.com"); err != nil {
				errs <- err
				return
			}
			errs <- c.Quit()
		}()
	}
	msgs, err := s.Wait(ctxT(t), n)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err != nil || len(msgs) != n {
		t.Fatalf("Wait = %d, %v", len(msgs), err)
	}
	if got := len(s.Notify()); got != n {
		t.Errorf("Notify holds %d, want %d", got, n)
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := smtpsink.Start(smtpsink.Options{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	// An idle open connection must not keep Close waiting.
	c := dial(t, s)
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Noop(); err == nil {
		t.Error("connection still usable after Close")
	}
	if c, err := smtp.Dial(s.Addr()); err == nil {
		// Dial does not read the greeting; a command would fail.
		setTimeouts(c)
		if err := c.Noop(); err == nil {
			t.Error("server still answering after Close")
		}
		c.Close()
	}
	if err := s.Restart(); !errors.Is(err, smtpsink.ErrClosed) {
		t.Errorf("Restart after Close = %v, want ErrClosed", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop after Close = %v", err)
	}
}

// Close right after Start, possibly before the Serve goroutine has
// registered its listener, must return and leave nothing running.
func TestCloseRightAfterStart(t *testing.T) {
	for i := 0; i < 50; i++ {
		s, err := smtpsink.Start(smtpsink.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStopRestart(t *testing.T) {
	s := smtptest.New(t, smtpsink.Options{})
	addr := s.Addr()
	c := dial(t, s)
	if err := send(c, "a@example.com", "b@example.com"); err != nil {
		t.Fatal(err)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := send(c, "a@example.com", "b@example.com"); err == nil {
		t.Fatal("open connection still works after Stop")
	}
	if c, err := smtp.Dial(addr); err == nil {
		c.Close()
		t.Fatal("Dial succeeded while stopped")
	}

	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if s.Addr() != addr {
		t.Fatalf("Addr changed: %s -> %s", addr, s.Addr())
	}
	if err := send(dial(t, s), "c@example.com", "d@example.com"); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	// Restart of a running server bounces it.
	if err := s.Restart(); err != nil {
		t.Fatalf("Restart while running: %v", err)
	}
	if err := send(dial(t, s), "e@example.com", "f@example.com"); err != nil {
		t.Fatalf("after second Restart: %v", err)
	}
	msgs, err := s.Wait(ctxT(t), 3)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("Wait = %d, %v", len(msgs), err)
	}
}

func TestStageString(t *testing.T) {
	for st, want := range map[smtpsink.Stage]string{
		smtpsink.StageMail: "MAIL", smtpsink.StageRcpt: "RCPT", smtpsink.StageData: "DATA", smtpsink.Stage(9): "Stage(9)",
	} {
		if got := st.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(st), got, want)
		}
	}
}

// Close closes open connections, including one in the middle of DATA, and
// waits for their sessions: no server goroutine outlives it.
func TestCloseEndsSessions(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := smtpsink.Start(smtpsink.Options{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	idle, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	setTimeouts(idle)
	if err := idle.Noop(); err != nil {
		t.Fatal(err)
	}
	tlsc, err := smtp.DialStartTLS(s.Addr(), s.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer tlsc.Close()
	setTimeouts(tlsc)
	if err := tlsc.Noop(); err != nil {
		t.Fatal(err)
	}
	mid, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer mid.Close()
	setTimeouts(mid)
	if err := mid.Mail("a@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := mid.Rcpt("b@example.com", nil); err != nil {
		t.Fatal(err)
	}
	w, err := mid.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("Subject: unfinished\r\n\r\npart")); err != nil {
		t.Fatal(err)
	}

	// Close returns an error when a session outlived its shutdown timeout: the sessions
	// ended because Close closed their connections, not because the clients gave up.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("unfinished message recorded (%d)", n)
	}
	// go-smtp's connection goroutine signals Shutdown (wg.Done) just before it returns:
	// give such goroutines a moment to finish before counting.
	// (A wait for an event, not a speed limit: a minute is room for a busy machine.)
	after := runtime.NumGoroutine()
	for deadline := time.Now().Add(time.Minute); after > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before Start, %d after Close\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}
