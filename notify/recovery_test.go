package notify_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/notify"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/store"
)

// Recovery links (R16–R18): notify issues the token when it
// sends, so the raw token exists only in the email; the link is under the site URL.

const recSite = "https://helpdesk.infobits.example"

// recCustomer stores the customer whose account is being recovered.
func recCustomer(t *testing.T, db *store.DB, emails ...string) *helpdesk.Customer {
	t.Helper()
	c := &helpdesk.Customer{Name: "Bakkerij de Vries", Emails: emails, Tier: helpdesk.SLA8}
	if err := db.Update(ctxT(t), func(tx *store.Tx) error { return tx.PutCustomer(c) }); err != nil {
		t.Fatal(err)
	}
	return c
}

// recReset is a password-reset notification as ingest queues it.
func recReset(c *helpdesk.Customer) *helpdesk.Notification {
	return &helpdesk.Notification{Kind: helpdesk.KindPasswordReset, To: c.Login(), Lang: "nl", Automatic: true,
		MessageID: "reset-1@helpdesk.infobits.example", Created: start,
		Data: helpdesk.NotifyData{CustomerName: c.Name, CustomerID: c.ID, TokenPurpose: helpdesk.PurposePassword}}
}

// recToken finds the recovery link under path in both parts of a received message and
// returns its token, failing unless both carry the same 43-character URL-safe token.
func recToken(t *testing.T, raw []byte, path string) string {
	t.Helper()
	p := parse(t, raw)
	re := regexp.MustCompile(regexp.QuoteMeta(recSite+path+"?token=") + `([A-Za-z0-9_-]*)`)
	var tokens []string
	for name, body := range map[string]string{"text": p.text, "html": p.html} {
		m := re.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("%s part has no link %s%s?token=…:\n%s", name, recSite, path, body)
		}
		tokens = append(tokens, m[1])
	}
	if tokens[0] != tokens[1] {
		t.Errorf("text and html carry different tokens: %q", tokens)
	}
	if len(tokens[0]) != 43 {
		t.Errorf("token %q has %d characters, want 43 (256 bits, base64url)", tokens[0], len(tokens[0]))
	}
	return tokens[0]
}

func recRedeem(t *testing.T, db *store.DB, raw string, now time.Time) (*helpdesk.Token, error) {
	t.Helper()
	var tok *helpdesk.Token
	err := db.Update(ctxT(t), func(tx *store.Tx) (err error) {
		tok, err = tx.RedeemToken(raw, now)
		return err
	})
	return tok, err
}

// recNotStored checks that no stored trace of the notification carries the token: neither the
// outbox record nor any byte of the database file.
func recNotStored(t *testing.T, e *env, id uint64, tokens ...string) {
	t.Helper()
	rec, err := json.Marshal(e.note(t, id))
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(e.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if bytes.Contains(rec, []byte(tok)) {
			t.Errorf("the outbox record contains the token: %s", rec)
		}
		if bytes.Contains(file, []byte(tok)) {
			t.Errorf("the database file contains the token %q", tok)
		}
	}
}

// TestPasswordResetLink: R16 — the reset message goes to the login address with a link
// SITE_URL/wachtwoord/herstel?token=…; that token redeems once for that customer, and the
// store keeps no copy of it.
func TestPasswordResetLink(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	c := recCustomer(t, e.db, "info@bakkerij.example", "piet@bakkerij.example")
	id := e.enqueue(t, recReset(c))[0]

	if res := e.drain(t, false); res != (notify.Result{Sent: 1}) {
		t.Fatalf("Drain = %+v; stored %+v", res, e.note(t, id))
	}
	m := e.wait(t, 1)[0]
	if !slices.Equal(m.To, []string{"info@bakkerij.example"}) {
		t.Errorf("sent to %q, want the login address", m.To)
	}
	tok := recToken(t, m.Data, notify.PasswordPath)
	recNotStored(t, e, id, tok)

	got, err := recRedeem(t, e.db, tok, start.Add(10*time.Minute))
	if err != nil {
		t.Fatalf("redeem the emailed token: %v", err)
	}
	if got.CustomerID != c.ID || got.Purpose != helpdesk.PurposePassword {
		t.Errorf("token = %+v, want password for customer %d", got, c.ID)
	}
	if _, err := recRedeem(t, e.db, tok, start.Add(11*time.Minute)); !errors.Is(err, store.ErrTokenInvalid) {
		t.Errorf("second redeem = %v, want ErrTokenInvalid", err)
	}
}

// TestPasswordResetLinkExpires: the emailed link is valid for TokenTTL from sending.
func TestPasswordResetLinkExpires(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, func(c *notify.Config) { c.TokenTTL = 30 * time.Minute })
	c := recCustomer(t, e.db, "info@bakkerij.example")
	e.enqueue(t, recReset(c))
	e.drain(t, false)
	tok := recToken(t, e.wait(t, 1)[0].Data, notify.PasswordPath)
	if _, err := recRedeem(t, e.db, tok, start.Add(30*time.Minute)); !errors.Is(err, store.ErrTokenInvalid) {
		t.Errorf("redeem after the TTL = %v, want ErrTokenInvalid", err)
	}
}

// TestLoginChangeLinks: R17 — the confirmation goes to the new address with one
// link (SITE_URL/login/bevestig?token=…) valid for TokenTTL, and names no customer; the
// notice to the old login carries two links, to agree and to cancel, valid until the change
// would take effect. Each is a token of the login change, only its hash stored.
func TestLoginChangeLinks(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, nil)
	c := recCustomer(t, e.db, "oud@bakkerij.example")
	ch := &helpdesk.LoginChange{CustomerID: c.ID, NewEmail: "nieuw@bakkerij.example", OldLogin: c.Login(),
		Requested: start, Until: start.Add(72 * time.Hour)}
	if err := e.db.Update(ctxT(t), func(tx *store.Tx) error { return tx.PutLoginChange(ch) }); err != nil {
		t.Fatal(err)
	}
	confirm := &helpdesk.Notification{Kind: helpdesk.KindLoginConfirm, To: "nieuw@bakkerij.example", Lang: "nl", Automatic: true,
		MessageID: "confirm-1@helpdesk.infobits.example", Created: start,
		Data: helpdesk.NotifyData{TokenPurpose: helpdesk.PurposeLogin, LoginChange: ch.ID, Until: ch.Until}}
	notice := &helpdesk.Notification{Kind: helpdesk.KindLoginNotice, To: c.Login(), Lang: "nl", Automatic: true,
		MessageID: "notice-1@helpdesk.infobits.example", Created: start,
		Data: helpdesk.NotifyData{CustomerName: c.Name, CustomerID: c.ID, NewEmail: ch.NewEmail, LoginChange: ch.ID, Until: ch.Until}}
	ids := e.enqueue(t, confirm, notice)
	if res := e.drain(t, false); res != (notify.Result{Sent: 2}) {
		t.Fatalf("Drain = %+v; stored %+v %+v", res, e.note(t, ids[0]), e.note(t, ids[1]))
	}
	msgs := e.wait(t, 2)
	m := msgs[0]
	if !slices.Equal(m.To, []string{"nieuw@bakkerij.example"}) {
		t.Errorf("sent to %q, want the new address", m.To)
	}
	p := parse(t, m.Data)
	for _, secret := range []string{c.Name, "oud@bakkerij.example", "nieuw@bakkerij.example"} {
		if subj, _ := p.header.Subject(); strings.Contains(p.text+p.html+subj, secret) {
			t.Errorf("the confirmation to the new address names %q:\n%s", secret, p.text)
		}
	}
	tok := recToken(t, m.Data, notify.LoginPath)
	recNotStored(t, e, ids[0], tok)

	// The notice: two links, agree first.
	n := parse(t, msgs[1].Data)
	re := regexp.MustCompile(regexp.QuoteMeta(recSite+notify.LoginPath+"?token=") + `([A-Za-z0-9_-]{43})`)
	links := re.FindAllStringSubmatch(n.text, -1)
	if len(links) != 2 || links[0][1] == links[1][1] {
		t.Fatalf("notice to the old login: links %v, want two different ones:\n%s", links, n.text)
	}
	recNotStored(t, e, ids[1], links[0][1], links[1][1])
	later := start.Add(71 * time.Hour) // after TokenTTL, before the change would take effect
	for i, want := range []string{helpdesk.PurposeLoginAllow, helpdesk.PurposeLoginCancel} {
		got, err := recRedeem(t, e.db, links[i][1], later)
		if err != nil || got.Purpose != want || got.LoginChange != ch.ID {
			t.Errorf("notice link %d = %+v, %v; want a %s token of change %d working until it takes effect", i, got, err, want, ch.ID)
		}
	}
	got, err := recRedeem(t, e.db, tok, start.Add(time.Minute))
	if err != nil || got.Purpose != helpdesk.PurposeLogin || got.LoginChange != ch.ID || !got.Expires.Equal(start.Add(time.Hour)) {
		t.Errorf("confirmation token = %+v, %v; want a login token of change %d valid for TokenTTL", got, err, ch.ID)
	}
	var after *helpdesk.LoginChange
	if err := e.db.View(ctxT(t), func(tx *store.Tx) (err error) { after, err = tx.LoginChange(ch.ID); return err }); err != nil {
		t.Fatal(err)
	}
	if !after.ConfirmBy.Equal(start.Add(time.Hour)) {
		t.Errorf("ConfirmBy = %v, want the confirmation link's expiry", after.ConfirmBy)
	}
}

// greylister is a real SMTP server (go-smtp) that receives every message and refuses the
// first `refuse` of them with 451 after the data, as greylisting servers do: a message that
// may well have reached the mailbox all the same.
type greylister struct {
	mu     sync.Mutex
	refuse int
	got    [][]byte
}

func (g *greylister) NewSession(*smtp.Conn) (smtp.Session, error) { return &greySession{g: g}, nil }

type greySession struct{ g *greylister }

func (s *greySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *greySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *greySession) Reset()                               {}
func (s *greySession) Logout() error                        { return nil }
func (s *greySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.g.got = append(s.g.got, b)
	if s.g.refuse > 0 {
		s.g.refuse--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Greylisted, try again later"}
	}
	return nil
}

func (g *greylister) messages() [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.got)
}

func startGreylister(t *testing.T, refuse int) (*greylister, string) {
	t.Helper()
	g := &greylister{refuse: refuse}
	srv := smtp.NewServer(g)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return g, ln.Addr().String()
}

// TestPasswordResetRetryVoidsFirstToken: a new token for the same purpose voids the older ones
// (R16) — a retry after a 4xx sends a new token; the link of the first attempt (which a
// greylisting server may have delivered after all) no longer works.
func TestPasswordResetRetryVoidsFirstToken(t *testing.T) {
	g, addr := startGreylister(t, 1)
	e := newEnv(t, smtpsink.Options{}, func(c *notify.Config) { c.Addr = addr; c.RetryMin = time.Minute })
	c := recCustomer(t, e.db, "info@bakkerij.example")
	id := e.enqueue(t, recReset(c))[0]

	if res := e.drain(t, false); res != (notify.Result{Retrying: 1}) {
		t.Fatalf("first Drain = %+v, want 1 retrying; stored %+v", res, e.note(t, id))
	}
	e.clock.Advance(time.Minute)
	if res := e.drain(t, false); res != (notify.Result{Sent: 1}) {
		t.Fatalf("second Drain = %+v, want 1 sent; stored %+v", res, e.note(t, id))
	}
	msgs := g.messages()
	if len(msgs) != 2 {
		t.Fatalf("server received %d messages, want 2", len(msgs))
	}
	first := recToken(t, msgs[0], notify.PasswordPath)
	second := recToken(t, msgs[1], notify.PasswordPath)
	if first == second {
		t.Fatalf("the retry sent the same token %q", first)
	}
	recNotStored(t, e, id, first, second)

	now := e.clock.Now().Add(time.Minute)
	if _, err := recRedeem(t, e.db, first, now); !errors.Is(err, store.ErrTokenInvalid) {
		t.Errorf("the first attempt's token = %v, want ErrTokenInvalid", err)
	}
	if tok, err := recRedeem(t, e.db, second, now); err != nil || tok.CustomerID != c.ID {
		t.Errorf("the retry's token = %+v, %v; want it to work for customer %d", tok, err, c.ID)
	}
}

// TestPasswordResetWithoutSiteURL: a recovery link needs the website; without a site URL the
// notification fails with an error that says so, and no message without a link goes out.
func TestPasswordResetWithoutSiteURL(t *testing.T) {
	e := newEnv(t, smtpsink.Options{}, func(c *notify.Config) { c.SiteURL = "" })
	c := recCustomer(t, e.db, "info@bakkerij.example")
	id := e.enqueue(t, recReset(c))[0]
	if res := e.drain(t, false); res != (notify.Result{Failed: 1}) {
		t.Errorf("Drain = %+v, want 1 failed", res)
	}
	got := e.note(t, id)
	if got.Status != helpdesk.NotifyFailed || !strings.Contains(got.LastError, "site_url") {
		t.Errorf("stored: status %s error %q; want failed naming site_url", got.Status, got.LastError)
	}
	if n := len(e.sink.Messages()); n != 0 {
		t.Errorf("sink has %d messages, want none", n)
	}
}
