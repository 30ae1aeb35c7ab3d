package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/store"
)

// A customer number is not enough to take an account (R17), and no
// one can make the gateway flood an inbox. Against a running gateway: its HTTP API through a
// real listener, its SMTP peer, its IMAP mailbox and its CLI, on a clock the test moves.

const attacker = "attacker@evil.example"

// accountGateway runs serve in this process on clk with four customers, the API and a staff
// list, and returns the base URL of its HTTP listener once it is healthy.
func accountGateway(t *testing.T, p *peers, clk *stepClock, extra ...string) (base string, out *syncBuffer) {
	t.Helper()
	db, err := store.Open(filepath.Join(p.dir, "helpdesk.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		for _, c := range []*helpdesk.Customer{
			{Name: "Bakkerij de Vries", Emails: []string{"info@bakkerijdevries.nl"}, Tier: helpdesk.SLA8},
			{Name: "Slagerij Jansen", Emails: []string{"kassa@slagerijjansen.nl"}, Tier: helpdesk.SLA24},
			{Name: "Café de Hoek", Emails: []string{"info@cafedehoek.nl"}, Tier: helpdesk.SLA24},
			{Name: "Drukkerij Smit", Emails: []string{"info@drukkerijsmit.nl"}, Tier: helpdesk.SLA8},
		} {
			if err := tx.PutCustomer(c); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out = &syncBuffer{}
	env := p.env(append([]string{"HELPDESK_API_TOKEN=" + testAPIToken, "HELPDESK_STAFF_LIST=" + staffList}, extra...)...)
	exited, _ := serveWithClock(t, env, out, clk.Now)
	m := waitOutput(t, out, regexp.MustCompile(`"msg":"http listening"[^\n]*"addr":"([^"]+)"`), exited)
	base = "http://" + m[1]
	waitHealthz(t, base, nil, func(h healthz) bool { return h.code == http.StatusOK })
	return base, out
}

var loginLink = regexp.MustCompile(`https://helpdesk\.infobits\.example/login/bevestig\?token=([A-Za-z0-9_-]{43})`)

// links returns the tokens of the login links in a message's text, in order.
func links(t *testing.T, m smtpsink.Message) []string {
	t.Helper()
	var out []string
	for _, l := range loginLink.FindAllStringSubmatch(plainText(t, m.Data), -1) {
		out = append(out, l[1])
	}
	return out
}

// redeemLink calls POST /api/recovery/redeem with a link's token.
func redeemLink(t *testing.T, base, tok string) (int, map[string]any, string) {
	t.Helper()
	status, body := httpCall(t, "POST", base+"/api/recovery/redeem", `{"token": "`+tok+`"}`, true)
	var got map[string]any
	_ = json.Unmarshal([]byte(body), &got)
	return status, got, body
}

// waitCustomer waits until an address is a customer's login (GET /api/customers/ADDR/status).
func waitCustomer(t *testing.T, base, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, body := httpCall(t, "GET", base+"/api/customers/"+addr+"/status", "", true)
		if status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still no customer's: %d %s", addr, status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// only returns the one message to an address among msgs, failing unless there is exactly one.
func only(t *testing.T, msgs []smtpsink.Message, to string) smtpsink.Message {
	t.Helper()
	got := sinkTo(msgs, to)
	if len(got) != 1 {
		t.Fatalf("%d messages to %s, want 1", len(got), to)
	}
	return got[0]
}

// loginOf is the login address of a customer, as `customer show -json` prints it.
func loginOf(t *testing.T, env []string, addr string) (login string, pending bool) {
	t.Helper()
	c := showCustomer(t, env, addr)
	_, pending = c["pending_login"]
	return c["emails"].([]any)[0].(string), pending
}

// TestAccountTakeoverRefused replays an attack seen in practice: POST /api/recovery/login with
// customer 2's number and the attacker's address. The confirmation names nothing of the
// account; redeeming it changes nothing (not even a password reset reaches the attacker);
// a second request does not cancel the first; the old login's cancel link stops it for good.
// The change takes effect only with the old login's agreement, a staff approval (CLI or the
// staff email command), or — for a login nobody reads any more — once the cooling-off period
// passed without anyone stopping it.
func TestAccountTakeoverRefused(t *testing.T) {
	p := newPeers(t)
	clk := &stepClock{t: time.Now()}
	base, out := accountGateway(t, p, clk)
	env := p.env("HELPDESK_STAFF_LIST=" + staffList)
	requested := clk.Now()

	// The attack.
	status, accepted := httpCall(t, "POST", base+"/api/recovery/login", `{"customer": 2, "email": "`+attacker+`"}`, true)
	if status != http.StatusAccepted {
		t.Fatalf("login request: %d %s", status, accepted)
	}
	msgs := waitSink(t, p, 3) // the confirmation, the notice to the old login, the staff notice
	confirm := only(t, msgs, attacker)
	text := plainText(t, confirm.Data) + headerOf(confirm.Data, "Subject")
	for _, secret := range []string{"Slagerij", "Jansen", "kassa@slagerijjansen.nl", "klantnummer", "customer number"} {
		if strings.Contains(text, secret) {
			t.Errorf("the confirmation to the attacker's address names %q:\n%s", secret, text)
		}
	}
	if !strings.Contains(text, "Beste klant,") {
		t.Errorf("the confirmation greets someone:\n%s", text)
	}
	notice := only(t, msgs, "kassa@slagerijjansen.nl")
	if nt := plainText(t, notice.Data); !strings.Contains(nt, attacker) || len(links(t, notice)) != 2 {
		t.Errorf("the notice to the old login names the new address and carries two links (agree, cancel):\n%s", nt)
	}
	if st := plainText(t, only(t, msgs, staffList).Data); !strings.Contains(st, "helpdesk customer approve-login 2") || !strings.Contains(st, attacker) {
		t.Errorf("the staff notice:\n%s", st)
	}

	// The attacker confirms: nothing changes, and the answer tells him neither the login nor
	// anything else of the account.
	status, got, body := redeemLink(t, base, links(t, confirm)[0])
	if status != http.StatusOK || got["status"] != "pending" || got["login"] != nil || strings.Contains(body, "kassa@") {
		t.Errorf("the attacker's confirmation: %d %s", status, body)
	}
	if want := requested.Add(72 * time.Hour).Format(time.RFC3339); got["takes_effect"] != want {
		t.Errorf("takes_effect = %v, want %s (login_change_cooling 72h)", got["takes_effect"], want)
	}
	if status, _ := httpCall(t, "GET", base+"/api/customers/"+attacker+"/status", "", true); status != http.StatusNotFound {
		t.Errorf("the attacker's address is a customer's: %d", status)
	}
	if login, _ := loginOf(t, env, "kassa@slagerijjansen.nl"); login != "kassa@slagerijjansen.nl" {
		t.Errorf("login of customer 2 = %s after the attacker's confirmation", login)
	}
	// A password reset by the attacker's address: the answer as for anyone, no mail.
	status, reset := httpCall(t, "POST", base+"/api/recovery/password", `{"email": "`+attacker+`"}`, true)
	_, unknown := httpCall(t, "POST", base+"/api/recovery/password", `{"email": "nobody@example.com"}`, true)
	if status != http.StatusAccepted || reset != unknown {
		t.Errorf("password reset for the attacker: %d %s, for an unknown address %s", status, reset, unknown)
	}
	// A second request: the same answer; it neither sends nor cancels the pending change.
	if _, again := httpCall(t, "POST", base+"/api/recovery/login", `{"customer": 2, "email": "other@evil.example"}`, true); again != accepted {
		t.Errorf("second request answered %s, the first %s", again, accepted)
	}
	if c := showCustomer(t, env, "kassa@slagerijjansen.nl"); jsonText(c["pending_login"]) == "null" ||
		c["pending_login"].(map[string]any)["new_email"] != attacker {
		t.Errorf("after a second request the pending change is %s, want the first one", jsonText(c["pending_login"]))
	}
	// The old login stops it.
	status, got, body = redeemLink(t, base, links(t, notice)[1])
	if status != http.StatusOK || got["status"] != "cancelled" {
		t.Errorf("the old login's cancel link: %d %s", status, body)
	}

	// Customer 4: staff approve on the command line; the change takes effect when the new
	// address confirms — at once.
	httpCall(t, "POST", base+"/api/recovery/login", `{"customer": 4, "email": "nieuw@drukkerijsmit.nl"}`, true)
	msgs = waitSink(t, p, 6)
	if o := mustRun(t, env, "customer", "approve-login", "4"); !strings.Contains(o, "approved by") {
		t.Errorf("customer approve-login 4: %s", o)
	}
	status, got, body = redeemLink(t, base, links(t, only(t, msgs, "nieuw@drukkerijsmit.nl"))[0])
	if status != http.StatusOK || got["status"] != "done" || got["login"] != "nieuw@drukkerijsmit.nl" {
		t.Errorf("confirmation after staff approval: %d %s", status, body)
	}
	if login, pending := loginOf(t, env, "info@drukkerijsmit.nl"); login != "nieuw@drukkerijsmit.nl" || pending {
		t.Errorf("customer 4: login %s, pending %v; want the new address", login, pending)
	}
	msgs = waitSink(t, p, 8) // login_changed to the old and the new login

	// Customer 1: a staff member answers the staff notice with #approve-login.
	httpCall(t, "POST", base+"/api/recovery/login", `{"customer": 1, "email": "piet@nieuw-adres.nl"}`, true)
	msgs = waitSink(t, p, 11)
	var staffNotice smtpsink.Message
	for _, m := range sinkTo(msgs, staffList) {
		if strings.Contains(plainText(t, m.Data), "piet@nieuw-adres.nl") {
			staffNotice = m
		}
	}
	if _, got, body := redeemLink(t, base, links(t, only(t, msgs, "piet@nieuw-adres.nl"))[0]); got["status"] != "pending" {
		t.Errorf("confirmation of customer 1's change: %s", body)
	}
	p.deliver(t, fmt.Sprintf("From: Jan <jan@infobits.example>\r\nTo: support@infobits.example\r\nSubject: Re: %s\r\n"+
		"Date: %s\r\nMessage-ID: <approve-1@infobits.example>\r\nIn-Reply-To: %s\r\n%sMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n#approve-login\r\n\r\nKlopt, Piet belde net.\r\n",
		headerOf(staffNotice.Data, "Subject"), time.Now().Format(time.RFC1123Z), headerOf(staffNotice.Data, "Message-Id"), staffAuth))
	waitCustomer(t, base, "piet@nieuw-adres.nl")
	if h := heldList(t, env); len(h) != 0 {
		t.Errorf("the staff command is left as held work: %v", h)
	}
	if h := heldList(t, env, "-all"); len(h) != 1 || h[0]["reason"] != "recovery" || !strings.Contains(h[0]["detail"].(string), "approved by jan@infobits.example") {
		t.Errorf("the staff command email is not kept as a handled recovery email: %v", h)
	}
	msgs = waitSink(t, p, 13)

	// Customer 3's old login is read by nobody: the change takes effect after the cooling-off
	// period, once the new address confirmed.
	httpCall(t, "POST", base+"/api/recovery/login", `{"customer": 3, "email": "nieuw@cafedehoek.nl"}`, true)
	msgs = waitSink(t, p, 16)
	if _, got, body := redeemLink(t, base, links(t, only(t, msgs, "nieuw@cafedehoek.nl"))[0]); got["status"] != "pending" {
		t.Errorf("confirmation of customer 3's change: %s", body)
	}
	clk.Advance(71 * time.Hour)
	if login, pending := loginOf(t, env, "info@cafedehoek.nl"); login != "info@cafedehoek.nl" || !pending {
		t.Errorf("customer 3 after 71 hours: login %s, pending %v; want unchanged and pending", login, pending)
	}
	clk.Advance(time.Hour + time.Minute)
	waitCustomer(t, base, "nieuw@cafedehoek.nl")
	msgs = waitSink(t, p, 18)
	for _, to := range []string{"info@cafedehoek.nl", "nieuw@cafedehoek.nl"} {
		if s := headerOf(only(t, sinkTo(msgs[16:], to), to).Data, "Subject"); s != "Uw inlogadres is gewijzigd" {
			t.Errorf("to %s: %q, want the notice that the login changed", to, s)
		}
	}

	// Past its cooling-off period, the attacker's cancelled change is still not in effect,
	// and the second request sent nothing at all.
	if login, pending := loginOf(t, env, "kassa@slagerijjansen.nl"); login != "kassa@slagerijjansen.nl" || pending {
		t.Errorf("customer 2 after 73 hours: login %s, pending %v; want unchanged, nothing pending", login, pending)
	}
	if n := len(sinkTo(p.sink.Messages(), "other@evil.example")) + len(sinkTo(p.sink.Messages(), attacker)); n != 1 {
		t.Errorf("%d messages to the attacker's addresses, want the one confirmation", n)
	}
	if t.Failed() {
		t.Logf("gateway log:\n%s", out.String())
	}
}

// TestRecoveryFlood replays a flood seen in practice: 40 login-change requests for one customer,
// each with another third party's address, and 40 password requests for it, then requests
// walking the customer numbers. Every answer is the same; the mail sent is bounded per
// address, per customer and in total; /metrics counts what was not sent.
func TestRecoveryFlood(t *testing.T) {
	p := newPeers(t)
	clk := &stepClock{t: time.Now()}
	base, _ := accountGateway(t, p, clk, "HELPDESK_UNSOLICITED_PER_HOUR=10")
	env := p.env()

	var first string
	same := func(what string, body string) {
		t.Helper()
		if first == "" {
			first = body
		}
		if body != first && !strings.Contains(what, "password") {
			t.Errorf("%s answered %s, the first %s", what, body, first)
		}
	}
	for i := range 40 {
		status, body := httpCall(t, "POST", base+"/api/recovery/login", fmt.Sprintf(`{"customer": 1, "email": "victim%d@third-party.example"}`, i), true)
		if status != http.StatusAccepted {
			t.Fatalf("request %d: %d %s", i, status, body)
		}
		same(fmt.Sprintf("login request %d", i), body)
	}
	var firstReset string
	for i := range 40 {
		status, body := httpCall(t, "POST", base+"/api/recovery/password", `{"email": "info@bakkerijdevries.nl"}`, true)
		if firstReset == "" {
			firstReset = body
		}
		if status != http.StatusAccepted || body != firstReset {
			t.Errorf("password request %d: %d %s", i, status, body)
		}
	}
	// Walking the customer numbers (2, 3, 4 and unknown ones).
	for id := 2; id <= 12; id++ {
		_, body := httpCall(t, "POST", base+"/api/recovery/login", fmt.Sprintf(`{"customer": %d, "email": "walk%d@evil.example"}`, id, id), true)
		same(fmt.Sprintf("login request for customer %d", id), body)
	}

	// What was queued is what will be sent: the outbox, read over the control socket.
	var outbox []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "outbox", "list", "-json")), &outbox); err != nil {
		t.Fatal(err)
	}
	perTo := map[string]int{}
	for _, n := range outbox {
		perTo[n["to"].(string)]++
	}
	// Customer 1: one confirmation (the first address), one notice and one staff notice; the
	// 39 other requests sent nothing (the pending change is not cancelled either); two
	// password links to the login, whose third account mail of the hour was the notice
	// (recovery_per_hour 3). Customer 2's change: three mails. That makes 8; customers 3 and
	// 4's requests would pass unsolicited_per_hour (10) and send nothing at all (all or none);
	// the unknown numbers send nothing.
	if len(outbox) != 8 || perTo["victim0@third-party.example"] != 1 || perTo["info@bakkerijdevries.nl"] != 3 ||
		perTo[staffList] != 2 || perTo["walk2@evil.example"] != 1 || perTo["kassa@slagerijjansen.nl"] != 1 {
		t.Errorf("%d mails queued, to %v", len(outbox), perTo)
	}
	for to := range perTo {
		if strings.HasPrefix(to, "victim") && to != "victim0@third-party.example" || strings.HasPrefix(to, "walk") && to != "walk2@evil.example" {
			t.Errorf("mail to %s: %v", to, perTo)
		}
	}
	msgs := waitSink(t, p, len(outbox))
	t.Logf("%d requests → %d mails: %v", 40+40+11, len(msgs), perTo)

	// /metrics: the 39 requests that met a pending change, the 38 password links over the
	// per-address limit, the 2 requests over the total.
	body := waitHTTP(t, base+"/metrics", func(status int, _ string) bool { return status == http.StatusOK })
	for limit, want := range map[string]int{"pending": 39, "address": 38, "total": 2, "customer": 0} {
		if line := fmt.Sprintf("helpdesk_mail_suppressed_total{limit=%q} %d\n", limit, want); !strings.Contains(body, line) {
			t.Errorf("/metrics lacks %q:\n%s", line, body)
		}
	}

	// An hour later the limits have room again: a password link goes out.
	clk.Advance(61 * time.Minute)
	httpCall(t, "POST", base+"/api/recovery/password", `{"email": "info@bakkerijdevries.nl"}`, true)
	waitSink(t, p, len(outbox)+1)
}
