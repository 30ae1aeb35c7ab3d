package imaptest_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/infobits/helpdesk/ingest/imaptest"
)

func testMessage(n int) []byte {
	// Bare LFs on purpose: AppendRaw must turn them into CRLF.
	return []byte(fmt.Sprintf("From: customer%d@example.com\nTo: helpdesk@example.com\n"+
		"Subject: test %d\nMessage-Id: <test-%d@example.com>\n\nHello %d\n", n, n, n, n))
}

// selectInbox dials d, selects INBOX and returns the client with the SELECT data.
func selectInbox(t *testing.T, d *imaptest.Dovecot) (*imapclient.Client, *imap.SelectData) {
	t.Helper()
	c, err := d.Dial()
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, d.Log())
	}
	t.Cleanup(func() { c.Close() })
	data, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("select INBOX: %v", err)
	}
	return c, data
}

func TestDovecot(t *testing.T) {
	t.Parallel()
	began := time.Now()
	d := imaptest.NewDovecot(t)
	t.Logf("started in %v on %s (dir %s)", time.Since(began), d.Addr, d.Dir)
	if d.User != "helpdesk" || d.Password == "" {
		t.Fatalf("User/Password = %q/%q", d.User, d.Password)
	}

	date := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	var uids []imap.UID
	for i := 1; i <= 2; i++ {
		uid, err := d.AppendRaw("INBOX", testMessage(i), date)
		if err != nil {
			t.Fatalf("append %d: %v\n%s", i, err, d.Log())
		}
		uids = append(uids, uid)
	}
	if uids[0] == 0 || uids[1] <= uids[0] {
		t.Fatalf("APPENDUIDs %v, want increasing and non-zero", uids)
	}

	c, sel := selectInbox(t, d)
	if sel.NumMessages != 2 {
		t.Fatalf("NumMessages = %d, want 2", sel.NumMessages)
	}
	if sel.UIDValidity == 0 {
		t.Fatal("UIDValidity = 0")
	}
	uidValidity := sel.UIDValidity

	// The message comes back with CRLF line ends and the given internal date.
	msgs, err := c.Fetch(imap.UIDSetNum(uids[0]), &imap.FetchOptions{
		InternalDate: true,
		BodySection:  []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("fetched %d messages, want 1", len(msgs))
	}
	if !msgs[0].InternalDate.Equal(date) {
		t.Errorf("internal date %v, want %v", msgs[0].InternalDate, date)
	}
	var body []byte
	for _, b := range msgs[0].BodySection {
		body = b.Bytes
	}
	if want := strings.ReplaceAll(string(testMessage(1)), "\n", "\r\n"); string(body) != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("logout: %v", err)
	}

	t.Run("Idle", func(t *testing.T) {
		exists := make(chan uint32, 16)
		c, err := imapclient.DialInsecure(d.Addr, &imapclient.Options{
			UnilateralDataHandler: &imapclient.UnilateralDataHandler{
				Mailbox: func(data *imapclient.UnilateralDataMailbox) {
					if data.NumMessages != nil {
						select {
						case exists <- *data.NumMessages:
						default:
						}
					}
				},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Login(d.User, d.Password).Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		idle, err := c.Idle()
		if err != nil {
			t.Fatal(err)
		}
		appended := time.Now()
		if _, err := d.AppendRaw("INBOX", testMessage(3), time.Time{}); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(60 * time.Second) // a wait for the push, with room for a busy machine
	wait:
		for {
			select {
			case n := <-exists:
				if n == 3 {
					t.Logf("EXISTS 3 pushed %v after the append started", time.Since(appended))
					break wait
				}
			case <-timeout:
				t.Fatal("no EXISTS 3 during IDLE within 60s")
			}
		}
		if err := idle.Close(); err != nil {
			t.Fatal(err)
		}
		if err := idle.Wait(); err != nil {
			t.Fatal(err)
		}
		if err := c.Logout().Wait(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Restart", func(t *testing.T) {
		addr := d.Addr
		c, _ := selectInbox(t, d)
		began := time.Now()
		if err := d.Restart(); err != nil {
			t.Fatal(err)
		}
		t.Logf("restarted in %v", time.Since(began))
		if d.Addr != addr {
			t.Fatalf("Addr changed from %s to %s", addr, d.Addr)
		}
		// The old connection is gone.
		if err := c.Noop().Wait(); err == nil {
			t.Error("NOOP on a connection from before the restart succeeded")
		}
		_, sel := selectInbox(t, d)
		if sel.NumMessages != 3 {
			t.Errorf("after restart NumMessages = %d, want 3", sel.NumMessages)
		}
		if sel.UIDValidity != uidValidity {
			t.Errorf("after restart UIDValidity = %d, want %d", sel.UIDValidity, uidValidity)
		}
	})

	t.Run("Stop", func(t *testing.T) {
		began := time.Now()
		if err := d.Stop(); err != nil {
			t.Fatal(err)
		}
		t.Logf("stopped in %v", time.Since(began))
		if err := d.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		if c, err := d.Dial(); err == nil {
			c.Close()
			t.Error("Dial after Stop succeeded")
		}
		// Restart also brings a stopped instance back.
		if err := d.Restart(); err != nil {
			t.Fatal(err)
		}
		if _, sel := selectInbox(t, d); sel.NumMessages != 3 {
			t.Errorf("NumMessages = %d, want 3", sel.NumMessages)
		}
	})
}

func TestDovecotSideBySide(t *testing.T) {
	t.Parallel()
	a, b := imaptest.NewDovecot(t), imaptest.NewDovecot(t)
	if a.Addr == b.Addr || a.Dir == b.Dir {
		t.Fatalf("instances share Addr or Dir: %s %s, %s %s", a.Addr, b.Addr, a.Dir, b.Dir)
	}
	if _, err := a.AppendRaw("INBOX", testMessage(1), time.Time{}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if _, err := b.AppendRaw("INBOX", testMessage(i), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, sel := selectInbox(t, a); sel.NumMessages != 1 {
		t.Errorf("a: NumMessages = %d, want 1", sel.NumMessages)
	}
	if _, sel := selectInbox(t, b); sel.NumMessages != 2 {
		t.Errorf("b: NumMessages = %d, want 2", sel.NumMessages)
	}
	// Stopping one leaves the other serving.
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, sel := selectInbox(t, b); sel.NumMessages != 2 {
		t.Errorf("b after stopping a: NumMessages = %d, want 2", sel.NumMessages)
	}
}

func TestDovecotWrongPassword(t *testing.T) {
	t.Parallel()
	d := imaptest.NewDovecot(t)
	c, err := imapclient.DialInsecure(d.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Dovecot 2.3.19 answers a failure at its next 500 ms failure-queue tick even with
	// auth_failure_delay = 0; without the anvil penalty the delay does not grow (by default it
	// goes 2 s, 4 s, ...). How long an answer takes is logged, not asserted: a busy machine
	// must not fail this test, and the delay costs the suite time, not correctness.
	for i := 0; i < 3; i++ {
		began := time.Now()
		err := c.Login(d.User, "wrong").Wait()
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAuthenticationFailed {
			t.Fatalf("login %d with a wrong password: %v; want NO [AUTHENTICATIONFAILED]", i+1, err)
		}
		t.Logf("failed login %d answered in %v", i+1, time.Since(began))
	}
	began := time.Now()
	if err := c.Login(d.User, d.Password).Wait(); err != nil {
		t.Fatalf("login after a failure: %v", err)
	}
	t.Logf("login after failures took %v", time.Since(began))
}

func TestDovecotStartFailure(t *testing.T) {
	t.Parallel()
	d := imaptest.NewDovecot(t)
	// A second master on the same dir finds the first one's master.pid and exits.
	began := time.Now()
	other, err := imaptest.StartDovecot(d.Dir, d.User, d.Password)
	if err == nil {
		other.Stop()
		t.Fatal("second instance in the same dir started")
	}
	t.Logf("failed after %v: %v", time.Since(began), err)
	if !strings.Contains(err.Error(), "already running") {
		t.Errorf("error does not carry the log tail: %v", err)
	}
	// The first instance still serves.
	if _, sel := selectInbox(t, d); sel.NumMessages != 0 {
		t.Errorf("NumMessages = %d, want 0", sel.NumMessages)
	}
}

func TestDovecotLongDir(t *testing.T) {
	t.Parallel()
	if imaptest.DovecotBinary() == "" {
		t.Skip("dovecot not installed: apt-get install dovecot-imapd")
	}
	// A path too long for UNIX sockets under it, in a fresh subdirectory of a 0700 temp dir.
	dir := filepath.Join(t.TempDir(), strings.Repeat("long", 25), "instance")
	d, err := imaptest.StartDovecot(dir, "agent", "secret")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Stop(); err != nil {
			t.Error(err)
		}
	}()
	if _, err := d.AppendRaw("INBOX", testMessage(1), time.Time{}); err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
	if _, err := os.Stat(filepath.Join(dir, "mail", "agent", "Maildir")); err != nil {
		t.Errorf("no Maildir under Dir: %v", err)
	}
}

func TestDovecotPortTaken(t *testing.T) {
	t.Parallel()
	d := imaptest.NewDovecot(t)
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	// Another server, greeting like an IMAP server, takes the port while d is down.
	l, err := net.Listen("tcp", d.Addr)
	if err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(conn, "* OK [CAPABILITY IMAP4rev1] impostor ready.\r\n")
			conn.Close()
		}
	}()
	began := time.Now()
	err = d.Restart()
	if err == nil {
		t.Fatal("Restart succeeded on a port held by another server")
	}
	t.Logf("Restart failed after %v", time.Since(began))
	if !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("error does not tell the port is in use: %v", err)
	}
	// Once the port is free again, Restart works.
	l.Close()
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, sel := selectInbox(t, d); sel.NumMessages != 0 {
		t.Errorf("NumMessages = %d, want 0", sel.NumMessages)
	}
}

func BenchmarkDovecotAppendRaw(b *testing.B) {
	d := imaptest.NewDovecot(b)
	msg := testMessage(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.AppendRaw("INBOX", msg, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}
