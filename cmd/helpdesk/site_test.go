package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/store"
)

// The customer's Helpdesk site, through the real listener of a running gateway,
// its SMTP peer and IMAP mailbox, on a clock the test moves. Every request is what a browser
// sends; cookies in a jar, redirects read one at a time.

const (
	siteA  = "info@bakkerijdevries.nl" // SLA8 with a contract and a phone number
	siteB  = "kassa@slagerijjansen.nl" // SLA24
	sitePW = "Krentenbol-2026!"
)

// freePort picks a loopback port for the gateway's listener, so that site_url can name it
// before the gateway starts (the links in emails point there).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// siteGateway runs serve on clk with two customers and the site on, and returns its base URL
// (also its site_url) once it answers.
func siteGateway(t *testing.T, p *peers, clk *stepClock, extra ...string) (base string, env []string, out *syncBuffer) {
	t.Helper()
	db, err := store.Open(filepath.Join(p.dir, "helpdesk.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		for _, c := range []*helpdesk.Customer{
			{Name: "Bakkerij de Vries", Emails: []string{siteA, "piet@bakkerijdevries.nl"}, Tier: helpdesk.SLA8, Contract: true,
				ValidUntil: helpdesk.Date{Year: 2027, Month: 12, Day: 31}, Phones: []string{"+31612345678"},
				Contacts: map[string]string{siteA: "Piet de Vries"}},
			{Name: "Slagerij Jansen", Emails: []string{siteB}, Tier: helpdesk.SLA24},
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
	addr := freePort(t)
	base = "http://" + addr
	env = p.env(append([]string{"HELPDESK_HTTP_ADDR=" + addr, "HELPDESK_SITE_URL=" + base, "HELPDESK_STAFF_LIST=" + staffList,
		"HELPDESK_SITE_PHONE=+31 20 123 4567"}, extra...)...)
	out = &syncBuffer{}
	exited, _ := serveWithClock(t, env, out, clk.Now)
	waitOutput(t, out, regexp.MustCompile(`"msg":"http listening"`), exited)
	waitHealthz(t, base, nil, func(h healthz) bool { return h.code == http.StatusOK })
	return base, env, out
}

// siteClock is a Monday morning in Amsterdam, within helpdesk hours.
func siteClock() *stepClock {
	return &stepClock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
}

// visitor is one browser: its cookies, no redirects followed.
type visitor struct {
	t    *testing.T
	base string
	c    *http.Client
	// header is added to every request (a forged Origin, say).
	header http.Header
}

func newVisitor(t *testing.T, base string) *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{t: t, base: base, header: http.Header{}, c: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type reply struct {
	status int
	body   string
	header http.Header
}

// text is the body with tags removed and entities decoded, white space squeezed: what a
// person reads.
func (r reply) text() string {
	s := regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(r.body, " ")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

func (v *visitor) do(req *http.Request) reply {
	v.t.Helper()
	for k, vs := range v.header {
		req.Header[k] = vs
	}
	resp, err := v.c.Do(req)
	if err != nil {
		v.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header}
}

func (v *visitor) get(path string) reply {
	v.t.Helper()
	req, _ := http.NewRequest("GET", v.base+path, nil)
	return v.do(req)
}

func (v *visitor) post(path string, form url.Values) reply {
	v.t.Helper()
	req, _ := http.NewRequest("POST", v.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return v.do(req)
}

type upload struct {
	name, ctype string
	content     []byte
}

func (v *visitor) postFiles(path string, fields map[string]string, files ...upload) reply {
	v.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, val := range fields {
		mw.WriteField(k, val)
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="attachment"; filename=%q`, f.name))
		h.Set("Content-Type", f.ctype)
		w, _ := mw.CreatePart(h)
		w.Write(f.content)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", v.base+path, &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return v.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the form token of the page at path.
func (v *visitor) csrf(path string) string {
	v.t.Helper()
	r := v.get(path)
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil {
		v.t.Fatalf("GET %s: no form token (%d)\n%s", path, r.status, r.text())
	}
	return m[1]
}

// login logs in and expects to land on the Helpdesk page.
func (v *visitor) login(addr, pw string) {
	v.t.Helper()
	r := v.post("/inloggen", url.Values{"email": {addr}, "password": {pw}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/helpdesk" {
		v.t.Fatalf("log in as %s: %d %s, want 303 to /helpdesk\n%s", addr, r.status, r.header.Get("Location"), r.text())
	}
}

var passwordLink = regexp.MustCompile(`http://[0-9.:]+/wachtwoord/herstel\?token=[A-Za-z0-9_-]{43}`)

// emailedLink waits for the count-th message to addr and returns the password link in it.
func emailedLink(t *testing.T, p *peers, addr string, count int) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if msgs := sinkTo(p.sink.Messages(), addr); len(msgs) >= count {
			l := passwordLink.FindString(plainText(t, msgs[count-1].Data))
			if l == "" {
				t.Fatalf("message %d to %s has no password link:\n%s", count, addr, plainText(t, msgs[count-1].Data))
			}
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message %d to %s; got %d", count, addr, len(sinkTo(p.sink.Messages(), addr)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setPassword sets a password with an emailed link, as the customer would.
func setPassword(t *testing.T, v *visitor, link, pw string) {
	t.Helper()
	u, _ := url.Parse(link)
	if r := v.get(u.RequestURI()); r.status != http.StatusOK || !strings.Contains(r.body, `name="password"`) {
		t.Fatalf("GET %s: %d\n%s", u.Path, r.status, r.text())
	}
	r := v.post("/wachtwoord/herstel", url.Values{"token": {u.Query().Get("token")}, "password": {pw}, "password2": {pw}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/helpdesk") {
		t.Fatalf("set the password: %d %s\n%s", r.status, r.header.Get("Location"), r.text())
	}
}

// TestSiteLogin: the way in. An invitation's link sets a password (GET shows the form and
// leaves the token alone; the token works once); the session is a cookie the server ends at
// logout; log-in attempts are throttled per address; an idle session ends; a reset link
// expires. Every page carries the security headers.
func TestSiteLogin(t *testing.T) {
	p := newPeers(t)
	clk := siteClock()
	base, env, _ := siteGateway(t, p, clk)
	v := newVisitor(t, base)

	// Logged out, the Helpdesk page sends to the log-in form, which knows where to go back.
	if r := v.get("/helpdesk"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/inloggen?terug=%2Fhelpdesk" {
		t.Fatalf("GET /helpdesk logged out: %d %q", r.status, r.header.Get("Location"))
	}
	r := v.get("/inloggen")
	if r.status != http.StatusOK || !strings.Contains(r.body, `<html lang="nl">`) || !strings.Contains(r.text(), "Wachtwoord vergeten?") {
		t.Fatalf("GET /inloggen: %d\n%s", r.status, r.text())
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": "frame-ancestors 'none'", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
	} {
		if got := r.header.Get(k); !strings.Contains(got, want) {
			t.Errorf("GET /inloggen: %s = %q, want %q in it", k, got, want)
		}
	}
	if h := r.header.Get("Strict-Transport-Security"); h != "" {
		t.Errorf("Strict-Transport-Security %q on a plain-http site", h)
	}
	if csp := r.header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q allows inline script", csp)
	}
	// The language switch.
	if r := v.get("/inloggen?taal=en"); !strings.Contains(r.body, `<html lang="en">`) || !strings.Contains(r.text(), "Forgot your password?") {
		t.Errorf("GET /inloggen?taal=en is not English:\n%s", r.text())
	}
	if r := v.get("/inloggen"); !strings.Contains(r.body, `<html lang="en">`) {
		t.Errorf("the language choice is not remembered")
	}
	v.get("/inloggen?taal=nl")

	// No password yet: the log-in is refused like any wrong password.
	if r := v.post("/inloggen", url.Values{"email": {siteA}, "password": {sitePW}}); r.status != http.StatusUnauthorized || !strings.Contains(r.text(), "klopt niet") {
		t.Fatalf("log in without a password: %d\n%s", r.status, r.text())
	}

	// helpdesk customer invite: the link reaches the login address.
	if o := mustRun(t, env, "customer", "invite", "piet@bakkerijdevries.nl"); !strings.Contains(o, "invitation queued") {
		t.Fatalf("customer invite: %s", o)
	}
	link := emailedLink(t, p, siteA, 1)
	lu, _ := url.Parse(link)
	// A link scanner opens it first: GET does not use the token.
	for range 2 {
		if r := v.get(lu.RequestURI()); r.status != http.StatusOK || !strings.Contains(r.body, lu.Query().Get("token")) {
			t.Fatalf("GET the invitation link: %d\n%s", r.status, r.text())
		}
	}
	// The password rules are explained, and the token stays usable.
	for pw, why := range map[string]string{"kort": "te kort", "bakkerijdevries": "lijkt op uw e-mailadres", siteA: "lijkt op uw e-mailadres"} {
		r := v.post("/wachtwoord/herstel", url.Values{"token": {lu.Query().Get("token")}, "password": {pw}, "password2": {pw}})
		if r.status != http.StatusBadRequest || !strings.Contains(r.text(), why) {
			t.Errorf("password %q: %d, want 400 saying %q\n%s", pw, r.status, why, r.text())
		}
	}
	setPassword(t, v, link, sitePW)
	r = v.get("/helpdesk")
	if r.status != http.StatusOK {
		t.Fatalf("GET /helpdesk after setting the password: %d", r.status)
	}
	// R3 exactly as customer status; the phone number for a contract (R19).
	status := strings.TrimSpace(mustRun(t, env, "customer", "status", siteA))
	for _, want := range []string{"Welkom, Piet de Vries.", status, "SLA8", "+31 20 123 4567", "+31612345678", "Nieuw ticket aanmaken", "Instructievideo back-up aanvragen"} {
		if !strings.Contains(r.text(), want) {
			t.Errorf("the Helpdesk page does not say %q:\n%s", want, r.text())
		}
	}
	// The cookie: HttpOnly, SameSite=Lax (not Secure: site_url is plain http on loopback).
	var sessionCookie *http.Cookie
	for _, c := range v.c.Jar.Cookies(mustURL(t, base)) {
		if c.Name == "helpdesk_session" {
			sessionCookie = c
		}
	}
	if sessionCookie == nil {
		t.Fatal("no session cookie")
	}
	// The link worked once.
	if r := v.get(lu.RequestURI()); r.status != http.StatusBadRequest || !strings.Contains(r.text(), "ongeldig, verlopen of al gebruikt") {
		t.Errorf("a used link: %d\n%s", r.status, r.text())
	}
	if r := v.post("/wachtwoord/herstel", url.Values{"token": {lu.Query().Get("token")}, "password": {"Another-one-2026"}}); r.status != http.StatusBadRequest {
		t.Errorf("a used link set a password again: %d", r.status)
	}

	// Log out: the server ends the session; the old cookie is worth nothing.
	tok := v.csrf("/helpdesk")
	if r := v.post("/uitloggen", url.Values{}); r.status != http.StatusForbidden {
		t.Errorf("log out without the form token: %d, want 403", r.status)
	}
	if r := v.post("/uitloggen", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
		t.Fatalf("log out: %d", r.status)
	}
	replay := newVisitor(t, base)
	replay.c.Jar.SetCookies(mustURL(t, base), []*http.Cookie{{Name: "helpdesk_session", Value: sessionCookie.Value}})
	if r := replay.get("/helpdesk"); r.status != http.StatusSeeOther {
		t.Errorf("the cookie of an ended session still opens the Helpdesk page: %d", r.status)
	}

	// Throttling: five wrong passwords for the address, then even the right one waits.
	for i := range 5 {
		if r := v.post("/inloggen", url.Values{"email": {siteA}, "password": {fmt.Sprintf("wrong-%d-password", i)}}); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i, r.status)
		}
	}
	if r := v.post("/inloggen", url.Values{"email": {siteA}, "password": {sitePW}}); r.status != http.StatusTooManyRequests || !strings.Contains(r.text(), "Te veel mislukte pogingen") {
		t.Fatalf("after five failures: %d\n%s", r.status, r.text())
	}
	clk.Advance(16 * time.Minute)
	v.login(siteA, sitePW)

	// The link of an "answer waits on the site" notice, logged out: to the log-in form and back.
	w := newVisitor(t, base)
	if r := w.get("/tickets/1"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/inloggen?terug=%2Ftickets%2F1" {
		t.Errorf("a ticket link, logged out: %d %q", r.status, r.header.Get("Location"))
	}
	if r := w.post("/inloggen", url.Values{"email": {siteA}, "password": {sitePW}, "terug": {"/tickets/1"}}); r.header.Get("Location") != "/tickets/1" {
		t.Errorf("log in from a ticket link: back to %q", r.header.Get("Location"))
	}
	if r := w.post("/inloggen", url.Values{"email": {siteA}, "password": {sitePW}, "terug": {"//evil.example/"}}); r.header.Get("Location") != "/helpdesk" {
		t.Errorf("log in with a return path to another site: to %q", r.header.Get("Location"))
	}

	// An idle session ends.
	clk.Advance(9 * time.Hour)
	if r := v.get("/helpdesk"); r.status != http.StatusSeeOther {
		t.Errorf("a session idle for 9 hours still works: %d", r.status)
	}

	// Wachtwoord vergeten: the same answer for an unknown address (R18); the link expires.
	for _, addr := range []string{"niemand@example.nl", siteB} {
		r := v.post("/wachtwoord/vergeten", url.Values{"email": {addr}})
		if r.status != http.StatusOK || !strings.Contains(r.text(), "Als "+addr+" bij een klant hoort") {
			t.Errorf("wachtwoord vergeten for %s: %d\n%s", addr, r.status, r.text())
		}
	}
	link = emailedLink(t, p, siteB, 1)
	clk.Advance(2 * time.Hour)
	lu, _ = url.Parse(link)
	if r := v.get(lu.RequestURI()); r.status != http.StatusBadRequest || !strings.Contains(r.text(), "verlopen") {
		t.Errorf("an expired link: %d\n%s", r.status, r.text())
	}
	if n := len(sinkTo(p.sink.Messages(), "niemand@example.nl")); n != 0 {
		t.Errorf("%d messages to an unknown address", n)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSiteCrossSite: a POST another site makes the browser send is refused (Go's
// cross-origin protection reads Sec-Fetch-Site and Origin), and a logged-in POST without the
// session's form token too; nothing is created.
func TestSiteCrossSite(t *testing.T) {
	p := newPeers(t)
	clk := siteClock()
	base, env, _ := siteGateway(t, p, clk)
	mustRun(t, env, "customer", "invite", siteB)
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteB, 1), sitePW)
	tok := v.csrf("/tickets/nieuw")

	evil := newVisitor(t, base)
	evil.c.Jar = v.c.Jar // the customer's own browser, on the attacker's page
	evil.header.Set("Origin", "https://evil.example")
	evil.header.Set("Sec-Fetch-Site", "cross-site")
	fields := map[string]string{"csrf": tok, "subject": "Gratis", "text": "x", "contact": "email"}
	if r := evil.postFiles("/tickets", fields); r.status != http.StatusForbidden {
		t.Errorf("a cross-site POST /tickets: %d, want 403", r.status)
	}
	if r := evil.post("/inloggen", url.Values{"email": {siteB}, "password": {sitePW}}); r.status != http.StatusForbidden {
		t.Errorf("a cross-site POST /inloggen: %d, want 403", r.status)
	}
	delete(fields, "csrf")
	if r := v.postFiles("/tickets", fields); r.status != http.StatusForbidden {
		t.Errorf("a POST /tickets without the form token: %d, want 403", r.status)
	}
	if o := mustRun(t, env, "ticket", "list"); strings.Contains(o, "Gratis") {
		t.Errorf("a refused POST made a ticket:\n%s", o)
	}
}

var ticketPath = regexp.MustCompile(`^/tickets/([0-9]+)\?nieuw=1$`)

// newSiteTicket posts the new-ticket form and returns the ticket's number.
func newSiteTicket(t *testing.T, v *visitor, fields map[string]string, files ...upload) string {
	t.Helper()
	fields["csrf"] = v.csrf("/tickets/nieuw")
	r := v.postFiles("/tickets", fields, files...)
	m := ticketPath.FindStringSubmatch(r.header.Get("Location"))
	if r.status != http.StatusSeeOther || m == nil {
		t.Fatalf("POST /tickets: %d %q\n%s", r.status, r.header.Get("Location"), r.text())
	}
	return m[1]
}

// TestSiteTickets: a ticket asked for on the site is the ticket an email would make — the
// acknowledgement reaches the SMTP peer, its file is the ticket's attachment 1 for `ticket
// attachment` too; staff answer by email, the notification links to the ticket page, which
// shows the answer and its file; the customer replies with a file and downloads it back byte
// for byte. Another customer sees none of it.
func TestSiteTickets(t *testing.T) {
	p := newPeers(t)
	clk := siteClock()
	base, env, _ := siteGateway(t, p, clk)
	mustRun(t, env, "customer", "invite", siteA)
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteA, 1), sitePW)

	pdf := []byte("%PDF-1.4\n% foutrapport van de bonprinter\n%%EOF\n")
	id := newSiteTicket(t, v, map[string]string{"subject": "Bonprinter geeft foutcode E4", "text": "Sinds vanochtend\nprint de bonprinter niet meer.",
		"contact": "site", "urgent": "on"}, upload{"foutrapport.pdf", "application/pdf", pdf})
	r := v.get("/tickets/" + id + "?nieuw=1")
	for _, want := range []string{"Uw ticket is aangemaakt", "Bonprinter geeft foutcode E4", "print de bonprinter niet meer", "foutrapport.pdf", "Spoed", "antwoord via de site"} {
		if !strings.Contains(r.text(), want) {
			t.Errorf("the new ticket's page does not say %q:\n%s", want, r.text())
		}
	}
	// The acknowledgement at the SMTP peer, as for an email (R12: urgent with a surcharge).
	ack := waitSubject(t, p, siteA, "[Infobits #"+id+"] Ontvangen: Bonprinter geeft foutcode E4")
	if txt := plainText(t, ack.Data); !strings.Contains(txt, "spoed") {
		t.Errorf("the acknowledgement does not mention urgent help:\n%s", txt)
	}
	waitSubject(t, p, staffList, "[Infobits #"+id+"] Nieuw ticket")
	// The file is the ticket's attachment 1 for staff too.
	if got := mustRun(t, env, "ticket", "attachment", id, "1", "-o", "-"); got != string(pdf) {
		t.Errorf("ticket attachment %s 1 = %q, want the uploaded bytes", id, got)
	}
	show := mustRun(t, env, "ticket", "show", id, "-json")
	if !strings.Contains(show, `"priority": "urgent"`) || !strings.Contains(show, `"followup": "site"`) || !strings.Contains(show, `"surcharge": true`) {
		t.Errorf("ticket show does not have the choices:\n%s", show)
	}

	// Staff answer by email, with a file; the customer is told the answer waits on the site.
	p.deliver(t, staffAuth+mailWithFiles("Jan <jan@infobits.example>", "Re: [Infobits #"+id+"] Bonprinter geeft foutcode E4", "antw-1@infobits.example", "",
		"Goedemorgen,\r\n\r\nE4 betekent: papier op. Zie de handleiding.\r\n\r\nJan",
		testFile{name: "handleiding E4.txt", ctype: "text/plain; charset=utf-8", content: []byte("Stap 1: open de klep.\n")}))
	note := waitSubject(t, p, siteA, "[Infobits #"+id+"] Er staat een antwoord voor u klaar")
	if txt := plainText(t, note.Data); !strings.Contains(txt, base+"/tickets/"+id) {
		t.Fatalf("the notification does not link to the ticket page:\n%s", txt)
	}
	r = v.get("/tickets/" + id)
	for _, want := range []string{"E4 betekent: papier op", "handleiding E4.txt", "Helpdesk"} {
		if !strings.Contains(r.text(), want) {
			t.Errorf("the ticket page does not show %q after the answer:\n%s", want, r.text())
		}
	}
	if strings.Contains(r.body, "jan@infobits.example") {
		t.Errorf("the ticket page shows the staff member's address")
	}
	// Download the staff answer's file.
	r = v.get("/tickets/" + id + "/bijlagen/2")
	if r.status != http.StatusOK || r.body != "Stap 1: open de klep.\n" {
		t.Fatalf("GET attachment 2: %d %q", r.status, r.body)
	}
	for k, want := range map[string]string{"Content-Disposition": `attachment; filename="handleiding E4.txt"`,
		"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"} {
		if got := r.header.Get(k); got != want {
			t.Errorf("attachment %s = %q, want %q", k, got, want)
		}
	}

	// The customer replies with a file; it is added as an emailed reply is (staff told).
	img := []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 1, 2, 3}
	r = v.postFiles("/tickets/"+id+"/reactie", map[string]string{"csrf": v.csrf("/tickets/" + id), "text": "Dank, het werkt weer. Foto erbij."},
		upload{`C:\Users\piet\foto kassa.png`, "image/png", img})
	if r.status != http.StatusSeeOther {
		t.Fatalf("POST reactie: %d\n%s", r.status, r.text())
	}
	waitSubject(t, p, staffList, "[Infobits #"+id+"] Reactie van de klant")
	r = v.get("/tickets/" + id + "/bijlagen/3")
	if r.status != http.StatusOK || r.body != string(img) || r.header.Get("Content-Disposition") != `attachment; filename="foto kassa.png"` {
		t.Errorf("GET attachment 3: %d %q %q", r.status, r.header.Get("Content-Disposition"), r.body)
	}
	if r := v.get("/tickets/" + id); !strings.Contains(r.text(), "Dank, het werkt weer") || !strings.Contains(r.text(), "Open") {
		t.Errorf("the reply is not on the ticket page, or the ticket not open again:\n%s", r.text())
	}
	// The request for the backup instruction video is a ticket form filled in.
	if r := v.get("/tickets/nieuw?verzoek=backup-video"); !strings.Contains(r.body, `value="Aanvraag instructievideo back-up"`) {
		t.Errorf("the backup video request does not fill in the form:\n%s", r.text())
	}
	// The Helpdesk page lists it.
	if r := v.get("/helpdesk"); !strings.Contains(r.text(), "#"+id+" Bonprinter geeft foutcode E4") {
		t.Errorf("the Helpdesk page does not list ticket %s:\n%s", id, r.text())
	}

	// Another customer: nothing of it, neither the page nor a file nor a reply.
	mustRun(t, env, "customer", "invite", siteB)
	w := newVisitor(t, base)
	setPassword(t, w, emailedLink(t, p, siteB, 1), sitePW)
	for _, path := range []string{"/tickets/" + id, "/tickets/" + id + "/bijlagen/1", "/tickets/" + id + "/bijlagen/2", "/tickets/999"} {
		if r := w.get(path); r.status != http.StatusNotFound || strings.Contains(r.body, "Bonprinter") || strings.Contains(r.body, "PDF") {
			t.Errorf("customer B GET %s: %d\n%s", path, r.status, r.text())
		}
	}
	r = w.postFiles("/tickets/"+id+"/reactie", map[string]string{"csrf": w.csrf("/helpdesk"), "text": "Ik kaap dit ticket"})
	if r.status != http.StatusNotFound {
		t.Errorf("customer B replying to A's ticket: %d", r.status)
	}
	if show := mustRun(t, env, "ticket", "show", id); strings.Contains(show, "kaap") {
		t.Errorf("customer B's reply landed on A's ticket")
	}
}

// waitSubject waits for a message to addr whose subject starts with subject.
func waitSubject(t *testing.T, p *peers, addr, subject string) smtpsink.Message {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, m := range sinkTo(p.sink.Messages(), addr) {
			if strings.HasPrefix(headerOf(m.Data, "Subject"), subject) {
				return m
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, m := range sinkTo(p.sink.Messages(), addr) {
				got = append(got, headerOf(m.Data, "Subject"))
			}
			t.Fatalf("no message to %s with subject %q; got %q", addr, subject, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSiteRefusals: the rules of an email refuse on the form what they would refuse by mail
// (R11–R13), say why, keep what the customer wrote, and store nothing: urgent with SLA24,
// postpaid with SLA24, a bad AnyDesk id, the SLA24 limits of open tickets and replies.
func TestSiteRefusals(t *testing.T) {
	p := newPeers(t)
	clk := siteClock()
	base, env, _ := siteGateway(t, p, clk, "HELPDESK_SLA24_OPEN_TICKETS=1", "HELPDESK_SLA24_REPLIES_PER_TICKET=1")
	mustRun(t, env, "customer", "invite", siteB)
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteB, 1), sitePW)

	if r := v.get("/helpdesk"); !strings.Contains(r.text(), "geldig") || strings.Contains(r.text(), "+31 20 123 4567") {
		t.Errorf("SLA24's Helpdesk page: the status, and no phone number:\n%s", r.text())
	}
	post := func(fields map[string]string) reply {
		fields["csrf"] = v.csrf("/tickets/nieuw")
		return v.postFiles("/tickets", fields)
	}
	for _, c := range []struct {
		fields map[string]string
		says   string
	}{
		{map[string]string{"subject": "Kassa kapot", "text": "Help snel", "contact": "email", "urgent": "on"}, "Spoed en SLA24 gaan niet samen"},
		{map[string]string{"subject": "Kassa kapot", "text": "Bel me", "contact": "callback-postpaid"}, "Achteraf betalen (postpaid) is alleen mogelijk"},
		{map[string]string{"subject": "Kassa kapot", "text": "Bel me", "contact": "callback-prepaid", "anydesk": "<script>"}, "Dat is geen AnyDesk-ID"},
		{map[string]string{"subject": "", "text": "x", "contact": "email"}, "Vul een onderwerp in"},
	} {
		r := post(c.fields)
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), c.says) || !strings.Contains(r.text(), "Er is niets opgeslagen") && c.fields["subject"] != "" && c.fields["anydesk"] == "" {
			t.Errorf("POST /tickets %v: %d, want 422 saying %q\n%s", c.fields, r.status, c.says, r.text())
		}
		if c.fields["text"] != "" && !strings.Contains(r.body, ">"+c.fields["text"]+"</textarea>") {
			t.Errorf("the refused form lost the text %q", c.fields["text"])
		}
		if strings.Contains(r.body, "<script>") {
			t.Errorf("the form echoes markup unescaped")
		}
	}
	if o := mustRun(t, env, "ticket", "list"); strings.Contains(o, "Kassa kapot") {
		t.Fatalf("a refused form made a ticket:\n%s", o)
	}
	// A prepaid callback is allowed; the AnyDesk id reaches staff in the text.
	id := newSiteTicket(t, v, map[string]string{"subject": "Kassa kapot", "text": "Bel me", "contact": "callback-prepaid", "anydesk": "123 456 789"})
	if show := mustRun(t, env, "ticket", "show", id, "-json"); !strings.Contains(show, `AnyDesk: 123 456 789`) || !strings.Contains(show, `"followup": "callback"`) || !strings.Contains(show, `"payment": "prepaid"`) {
		t.Errorf("ticket show of the callback:\n%s", show)
	}
	// R11: one open ticket at a time, one reply per ticket.
	r := post(map[string]string{"subject": "Tweede vraag", "text": "Nog iets", "contact": "email"})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), "hoogstens 1 tickets tegelijk open") {
		t.Errorf("a second open ticket on SLA24: %d\n%s", r.status, r.text())
	}
	reply := func(text string) reply {
		return v.postFiles("/tickets/"+id+"/reactie", map[string]string{"csrf": v.csrf("/tickets/" + id), "text": text})
	}
	if r := reply("Eerste reactie"); r.status != http.StatusSeeOther {
		t.Fatalf("the first reply: %d\n%s", r.status, r.text())
	}
	if r := reply("Tweede reactie"); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), "hoogstens 1 reacties per ticket") {
		t.Errorf("a reply over the SLA24 limit: %d\n%s", r.status, r.text())
	}
	if show := mustRun(t, env, "ticket", "show", id); strings.Contains(show, "Tweede reactie") || strings.Contains(show, "Tweede vraag") {
		t.Errorf("a refused reply or ticket was stored:\n%s", show)
	}
	if o := mustRun(t, env, "ticket", "held"); strings.Contains(o, "Tweede") {
		t.Errorf("a refused form was held (the customer was told on the form):\n%s", o)
	}
}

// TestSiteAccount: Mijn account changes what customer set would (contact names, the answer
// preference, the language, the phone numbers of R19) through the same rules; a password
// change needs the current password and ends every other session. "Login vergeten" starts a
// login change that only the safeguards of R17 let through: the new address confirms (GET
// shows, POST confirms), and the old login's link stops it.
func TestSiteAccount(t *testing.T) {
	p := newPeers(t)
	clk := siteClock()
	base, env, _ := siteGateway(t, p, clk)
	mustRun(t, env, "customer", "invite", siteA)
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteA, 1), sitePW)
	other := newVisitor(t, base) // the same customer on another computer
	other.login(siteA, sitePW)

	save := func(form url.Values) reply {
		form.Set("csrf", v.csrf("/account"))
		return v.post("/account", form)
	}
	r := save(url.Values{"form": {"profile"}, "contact": {"Piet de Vries", "Piet"}, "answer": {"site"}, "lang": {"en"}, "phones": {"06 1234 5678\n020-7654321"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("save the profile: %d\n%s", r.status, r.text())
	}
	saved := r.header.Get("Location")
	c := showCustomer(t, env, siteA)
	if c["answer"] != "site" || c["lang"] != "en" || fmt.Sprint(c["phones"]) != "[+31612345678 +31207654321]" || fmt.Sprint(c["contacts"]) != "map[info@bakkerijdevries.nl:Piet de Vries piet@bakkerijdevries.nl:Piet]" {
		t.Errorf("customer show after the profile was saved: %v", c)
	}
	if r := v.get(saved); !strings.Contains(r.body, `<html lang="en">`) || !strings.Contains(r.text(), "Your details are saved") {
		t.Errorf("the account page after choosing English:\n%s", r.text())
	}
	if r := v.get("/helpdesk"); !strings.Contains(r.text(), "valid until 31-12-2027") || !strings.Contains(r.text(), "Telephone support") {
		t.Errorf("the Helpdesk page in English:\n%s", r.text())
	}
	if r := save(url.Values{"form": {"profile"}, "answer": {"site"}, "lang": {"en"}, "phones": {"bel me maar"}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), "A phone number is not right") {
		t.Errorf("a bad phone number: %d\n%s", r.status, r.text())
	}

	// A password change needs the current one.
	const newPW = "Appeltaart-met-slagroom"
	if r := save(url.Values{"form": {"password"}, "current_password": {"geraden"}, "password": {newPW}, "password2": {newPW}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), "current password is wrong") {
		t.Fatalf("change the password with a wrong current one: %d\n%s", r.status, r.text())
	}
	if r := save(url.Values{"form": {"password"}, "current_password": {sitePW}, "password": {newPW}, "password2": {newPW}}); r.status != http.StatusSeeOther {
		t.Fatalf("change the password: %d\n%s", r.status, r.text())
	}
	if r := v.get("/helpdesk"); r.status != http.StatusOK {
		t.Errorf("the browser that changed the password was logged out: %d", r.status)
	}
	if r := other.get("/helpdesk"); r.status != http.StatusSeeOther {
		t.Errorf("another session still works after a password change: %d", r.status)
	}
	if r := other.post("/inloggen", url.Values{"email": {siteA}, "password": {sitePW}}); r.status != http.StatusUnauthorized {
		t.Errorf("the old password still works: %d", r.status)
	}
	other.login("piet@bakkerijdevries.nl", newPW) // any of the customer's addresses

	// Login vergeten (R17): the same answer for a wrong number; a link to the new address.
	w := newVisitor(t, base)
	for _, num := range []string{"1", "99"} {
		r := w.post("/login/vergeten", url.Values{"customer": {num}, "email": {"nieuw@bakkerijdevries.nl"}})
		if r.status != http.StatusOK || !strings.Contains(r.text(), "Als het klantnummer bekend is") {
			t.Errorf("login vergeten for customer %s: %d\n%s", num, r.status, r.text())
		}
	}
	confirm := only(t, waitMessages(t, p, "nieuw@bakkerijdevries.nl", 1), "nieuw@bakkerijdevries.nl")
	toks := siteLoginLinks(t, confirm)
	if len(toks) != 1 {
		t.Fatalf("the confirmation has %d login links", len(toks))
	}
	// Links in emails point to site_url; the test's gateway is there under its own address.
	// The customer chose English above: the emails and the pages of their links are English.
	for range 2 { // a link scanner first: GET does nothing
		if r := w.get("/login/bevestig?token=" + toks[0]); r.status != http.StatusOK || !strings.Contains(r.text(), "Confirm that this email address") {
			t.Fatalf("GET the confirmation link: %d\n%s", r.status, r.text())
		}
	}
	r = w.post("/login/bevestig", url.Values{"token": {toks[0]}})
	if r.status != http.StatusOK || !strings.Contains(r.text(), "The change takes effect on") {
		t.Fatalf("POST the confirmation: %d\n%s", r.status, r.text())
	}
	if login, pending := loginOf(t, env, siteA); login != siteA || !pending {
		t.Fatalf("after the new address confirmed: login %s, pending %v; want unchanged and pending", login, pending)
	}
	if r := v.get("/account"); !strings.Contains(r.text(), "A change of your login to nieuw@bakkerijdevries.nl is pending") {
		t.Errorf("the account page does not show the pending change:\n%s", r.text())
	}
	// The old login's notice: its cancel link stops the change.
	notice := waitMessages(t, p, siteA, 2) // the invitation, the login notice
	var cancel string
	for _, m := range notice {
		if ls := siteLoginLinks(t, m); len(ls) == 2 {
			cancel = ls[1]
		}
	}
	if cancel == "" {
		t.Fatalf("no login notice with two links to %s", siteA)
	}
	if r := w.get("/login/bevestig?token=" + cancel); !strings.Contains(r.text(), "Stop the change") {
		t.Errorf("GET the cancel link:\n%s", r.text())
	}
	if r := w.post("/login/bevestig", url.Values{"token": {cancel}}); r.status != http.StatusOK || !strings.Contains(r.text(), "The change is stopped") {
		t.Fatalf("POST the cancel link: %d\n%s", r.status, r.text())
	}
	clk.Advance(73 * time.Hour)
	if login, pending := loginOf(t, env, siteA); login != siteA || pending {
		t.Errorf("after the cancel: login %s, pending %v", login, pending)
	}
	// A password link is no login link, and the other way round.
	if r := w.post("/login/bevestig", url.Values{"token": {toks[0]}}); r.status != http.StatusBadRequest {
		t.Errorf("a used login link: %d", r.status)
	}
}

// waitMessages waits until addr has at least n messages and returns them.
func waitMessages(t *testing.T, p *peers, addr string, n int) []smtpsink.Message {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if msgs := sinkTo(p.sink.Messages(), addr); len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages to %s, want %d", len(sinkTo(p.sink.Messages(), addr)), addr, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var siteLoginLink = regexp.MustCompile(`http://[0-9.:]+/login/bevestig\?token=([A-Za-z0-9_-]{43})`)

// siteLoginLinks returns the tokens of the login links in a message's text, in order.
func siteLoginLinks(t *testing.T, m smtpsink.Message) []string {
	t.Helper()
	var out []string
	for _, l := range siteLoginLink.FindAllStringSubmatch(plainText(t, m.Data), -1) {
		out = append(out, l[1])
	}
	return out
}

// TestSiteTextOverride: the site's texts are overridden the way the notifications are, from
// templates_dir: single texts by key in templates_dir/nl/site.txt (the rest keep their
// embedded text, English keeps its own), the stylesheet by templates_dir/site/site.css; an
// unknown key or a page that names a missing text stops serve at start, with the file and the
// key named, instead of failing a customer's request.
func TestSiteTextOverride(t *testing.T) {
	p := newPeers(t)
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("nl/site.txt", "# Bakkerij-support\nlogin.intro = Log in met het adres waarop u onze nieuwsbrief krijgt.\nhelpdesk.new = Stel uw vraag\n")
	write("site/site.css", "body { background: #fffbe6; }\n")
	base, _, _ := siteGateway(t, p, siteClock(), "HELPDESK_TEMPLATES_DIR="+dir)
	v := newVisitor(t, base)
	if r := v.get("/inloggen"); !strings.Contains(r.text(), "Log in met het adres waarop u onze nieuwsbrief krijgt.") || !strings.Contains(r.text(), "Wachtwoord vergeten?") {
		t.Errorf("the log-in page with an overridden text:\n%s", r.text())
	}
	if r := v.get("/inloggen?taal=en"); !strings.Contains(r.text(), "Log in with the email address we know you by.") {
		t.Errorf("the English log-in page lost its own text:\n%s", r.text())
	}
	if r := v.get("/site.css"); r.body != "body { background: #fffbe6; }\n" {
		t.Errorf("GET /site.css = %q, want the override", r.body)
	}

	// Broken overrides stop the start and say where.
	for _, c := range []struct{ file, content, says string }{
		{"nl/site.txt", "login.intor = Log in\n", `unknown text key "login.intor"`},
		{"site/login.html.tmpl", `{{define "content"}}<h1>{{t "login.welkom"}}</h1>{{end}}`, "login.welkom"},
	} {
		bad := t.TempDir()
		if err := os.MkdirAll(filepath.Join(bad, filepath.Dir(c.file)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bad, c.file), []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		env := p.env("HELPDESK_DB="+filepath.Join(bad, "helpdesk.db"), "HELPDESK_HTTP_ADDR="+freePort(t), "HELPDESK_TEMPLATES_DIR="+bad)
		out := &syncBuffer{}
		exited, _ := serveWithClock(t, env, out, siteClock().Now)
		select {
		case err := <-exited:
			if !strings.Contains(out.String(), c.says) || strings.Contains(out.String(), "http listening") {
				t.Errorf("serve with a broken %s (%v): want a refusal naming %q before listening:\n%s", c.file, err, c.says, out.String())
			}
		case <-time.After(time.Minute):
			t.Errorf("serve with a broken %s still runs:\n%s", c.file, out.String())
		}
	}
}

// TestSiteExpiredAndCallbacks: what the vendor's page promises customers who are not plain
// SLA8. A customer whose paid tier expired (R3) still logs in, reads "verlopen op" exactly as
// `customer status` prints it, is served as SLA24 (no phone number, even with a contract, R19),
// creates SLA24 tickets, is refused urgent help and a postpaid callback, and meets the SLA24
// tickets-per-month limit (R11) — each refusal on the form, nothing stored. A valid SLA8
// customer in arrears may only have a prepaid callback (R5, R13); a customer whose system the
// vendor does not maintain may ask for one and is told it is no right (R13).
func TestSiteExpiredAndCallbacks(t *testing.T) {
	p := newPeers(t)
	clk := siteClock()
	base, env, _ := siteGateway(t, p, clk, "HELPDESK_SLA24_TICKETS_PER_MONTH=1")
	const expired, arrears, thirdParty = "kassa@verlopen.nl", "kassa@achterstand.nl", "kassa@derden.nl"
	mustRun(t, env, "customer", "add", "-email", expired, "-name", "Verlopen BV", "-sla", "SLA8", "-valid-until", "2026-10-31", "-contract", "-phone", "0612345679")
	mustRun(t, env, "customer", "add", "-email", arrears, "-name", "Achterstand BV", "-sla", "SLA8", "-arrears")
	mustRun(t, env, "customer", "add", "-email", thirdParty, "-name", "Derden BV", "-sla", "SLA8", "-maintainer", "third-party")
	visit := func(addr string) *visitor {
		mustRun(t, env, "customer", "invite", addr)
		v := newVisitor(t, base)
		setPassword(t, v, emailedLink(t, p, addr, 1), sitePW)
		return v
	}
	post := func(v *visitor, fields map[string]string) reply {
		fields["csrf"] = v.csrf("/tickets/nieuw")
		return v.postFiles("/tickets", fields)
	}

	v := visit(expired)
	status := strings.TrimSpace(mustRun(t, env, "customer", "status", expired))
	if status != "verlopen op 31-10-2026" {
		t.Fatalf("customer status = %q", status)
	}
	r := v.get("/helpdesk")
	for _, want := range []string{status, "Vandaag geholpen als SLA24", "Uw betaalde helpdesktoegang is verlopen. U kunt nog steeds een ticket aanmaken"} {
		if !strings.Contains(r.text(), want) {
			t.Errorf("the expired customer's Helpdesk page does not say %q:\n%s", want, r.text())
		}
	}
	if strings.Contains(r.text(), "+31 20 123 4567") {
		t.Errorf("an expired tier shows the helpdesk's phone number (R19: a valid paid tier only)")
	}
	if r := v.get("/tickets/nieuw"); !strings.Contains(r.text(), "Spoed is niet mogelijk bij SLA24") || !strings.Contains(r.text(), "alleen prepaid mogelijk") || strings.Contains(r.text(), "vervallen") {
		t.Errorf("the expired customer's form does not say what SLA24 allows:\n%s", r.text())
	}
	for _, c := range []struct {
		fields map[string]string
		says   string
	}{
		{map[string]string{"subject": "Kassa kapot", "text": "Snel graag", "contact": "email", "urgent": "on"}, "Spoed en SLA24 gaan niet samen"},
		{map[string]string{"subject": "Kassa kapot", "text": "Bel me", "contact": "callback-postpaid"}, "Achteraf betalen (postpaid) is alleen mogelijk"},
	} {
		if r := post(v, c.fields); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), c.says) {
			t.Errorf("expired, POST /tickets %v: %d, want 422 saying %q\n%s", c.fields, r.status, c.says, r.text())
		}
	}
	// A browser shows a refused form again with the text, never with the files chosen: the
	// refusal names them, to choose again.
	r = v.postFiles("/tickets", map[string]string{"csrf": v.csrf("/tickets/nieuw"), "subject": "Kassa kapot", "text": "Foto erbij", "contact": "email", "urgent": "on"},
		upload{"kassa <scherm>.png", "image/png", []byte("\x89PNG\r\n\x1a\n")}, upload{"log.txt", "text/plain", []byte("E4\n")})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), "Kies uw bijlagen opnieuw (kassa <scherm>.png, log.txt)") || strings.Contains(r.body, "<scherm>") {
		t.Errorf("a refused form with files does not name them, escaped: %d\n%s", r.status, r.text())
	}
	id := newSiteTicket(t, v, map[string]string{"subject": "Kassa kapot", "text": "Hij start niet.", "contact": "email"})
	if show := mustRun(t, env, "ticket", "show", id, "-json"); !strings.Contains(show, `"sla": "SLA24"`) || !strings.Contains(show, `"priority": "normal"`) {
		t.Errorf("the expired customer's ticket is not SLA24:\n%s", show)
	}
	// The Helpdesk page lists it, open, with its due time as `ticket show` has it (SLA24:
	// 24 working hours from Monday 10:00 is Thursday 10:00); closed, among the recent ones.
	var tk map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "show", id, "-json")), &tk); err != nil {
		t.Fatal(err)
	}
	if tk["due"] != "2026-12-03T10:00:00+01:00" {
		t.Errorf("ticket show: due %v, want 2026-12-03T10:00:00+01:00", tk["due"])
	}
	if r := v.get("/helpdesk"); !strings.Contains(r.text(), "Open tickets Ticket Onderwerp Status Antwoord uiterlijk #"+id+" Kassa kapot Open donderdag 3 december 2026 om 10:00") {
		t.Errorf("the Helpdesk page does not list ticket %s open with its due time:\n%s", id, r.text())
	}
	mustRun(t, env, "ticket", "close", id)
	if r := v.get("/helpdesk"); !strings.Contains(r.text(), "Recent gesloten Ticket Onderwerp Status Antwoord uiterlijk #"+id+" Kassa kapot Gesloten") {
		t.Errorf("the Helpdesk page does not list the closed ticket %s among the recent ones:\n%s", id, r.text())
	}
	if r := post(v, map[string]string{"subject": "Tweede vraag", "text": "Nog iets", "contact": "email"}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), "hoogstens 1 tickets per kalendermaand") {
		t.Errorf("a second ticket this month on SLA24: %d\n%s", r.status, r.text())
	}

	// In arrears: prepaid only.
	a := visit(arrears)
	if r := a.get("/tickets/nieuw"); !strings.Contains(r.text(), "alleen prepaid mogelijk") {
		t.Errorf("the form does not tell a customer in arrears that only prepaid is possible:\n%s", r.text())
	}
	if r := post(a, map[string]string{"subject": "Bellen", "text": "Bel me", "contact": "callback-postpaid"}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), "zonder betaalachterstand") {
		t.Errorf("a postpaid callback in arrears: %d\n%s", r.status, r.text())
	}
	id = newSiteTicket(t, a, map[string]string{"subject": "Bellen", "text": "Bel me", "contact": "callback-prepaid"})
	if show := mustRun(t, env, "ticket", "show", id, "-json"); !strings.Contains(show, `"payment": "prepaid"`) || !strings.Contains(show, `"followup": "callback"`) {
		t.Errorf("the prepaid callback in arrears:\n%s", show)
	}

	// Maintained by a third party: a callback may be asked for, and is no right.
	d := visit(thirdParty)
	if r := d.get("/tickets/nieuw"); !strings.Contains(r.text(), "u kunt het niet opeisen") {
		t.Errorf("the form does not say a callback is no right:\n%s", r.text())
	}
	id = newSiteTicket(t, d, map[string]string{"subject": "AnyDesk graag", "text": "Kunt u inloggen?", "contact": "callback-postpaid", "anydesk": "123 456 789"})
	if show := mustRun(t, env, "ticket", "show", id, "-json"); !strings.Contains(show, `"payment": "postpaid"`) || !strings.Contains(show, `"followup": "callback"`) {
		t.Errorf("the third party's postpaid callback:\n%s", show)
	}
}

// TestSiteEnglishPages: a Dutch customer who switches to English reads every page in English
// — no Dutch sentence left, the sizes and dates in English — and the switch is remembered by
// one cookie.
func TestSiteEnglishPages(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	mustRun(t, env, "customer", "invite", siteA)
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteA, 1), sitePW)
	id := newSiteTicket(t, v, map[string]string{"subject": "Printer", "text": "Printer stopt.", "contact": "email"},
		upload{"log.txt", "text/plain", []byte("E4\n")})
	// An English customer's emailed link opens an English page, as the email was English,
	// and the form's refusals are English too.
	mustRun(t, env, "customer", "set", siteB, "-lang", "en")
	mustRun(t, env, "customer", "invite", siteB)
	link := mustURL(t, emailedLink(t, p, siteB, 1))
	w := newVisitor(t, base)
	if r := w.get(link.RequestURI()); !strings.Contains(r.body, `<html lang="en">`) || !strings.Contains(r.text(), "New password") {
		t.Errorf("an English customer's password link opens a page that is not English:\n%s", r.text())
	}
	if r := w.post("/wachtwoord/herstel", url.Values{"token": {link.Query().Get("token")}, "password": {"kort"}, "password2": {"kort"}}); !strings.Contains(r.body, `<html lang="en">`) {
		t.Errorf("the refusal of an English customer's password is not English:\n%s", r.text())
	}
	setPassword(t, w, link.String(), sitePW)
	// The link of an English "an answer is waiting" notice, opened logged out, leads to an
	// English log-in page, and from there to the ticket.
	mustRun(t, env, "customer", "set", siteB, "-answer", "site")
	bid := newSiteTicket(t, w, map[string]string{"subject": "Scale", "text": "It weighs wrong.", "contact": "site"})
	p.deliver(t, staffAuth+customerMail("jan@infobits.example", "Re: [Infobits #"+bid+"] Scale", "en-1@infobits.example", "", "Calibrate it."))
	note := waitSubject(t, p, siteB, "[Infobits #"+bid+"] An answer is waiting for you")
	nl := regexp.MustCompile(`http://[0-9.:]+(/tickets/[0-9]+\S*)`).FindStringSubmatch(plainText(t, note.Data))
	if nl == nil {
		t.Fatalf("the notice has no ticket link:\n%s", plainText(t, note.Data))
	}
	fresh := newVisitor(t, base)
	r := fresh.get(nl[1])
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/inloggen?terug=") {
		t.Fatalf("the notice's link %s, logged out: %d %q", nl[1], r.status, r.header.Get("Location"))
	}
	if r := fresh.get(r.header.Get("Location")); !strings.Contains(r.body, `<html lang="en">`) {
		t.Errorf("the log-in page an English notice's link leads to is not English:\n%s", r.text())
	}
	r = fresh.post("/inloggen", url.Values{"email": {siteB}, "password": {sitePW}, "terug": {nl[1]}})
	if r := fresh.get(r.header.Get("Location")); !strings.Contains(r.text(), "Calibrate it.") || !strings.Contains(r.body, `<html lang="en">`) {
		t.Errorf("after logging in from the notice's link: %d\n%s", r.status, r.text())
	}

	// The switch on the log-in page of a customer logged in already: a redirect, remembered.
	if r := v.get("/inloggen?taal=en"); r.status != http.StatusSeeOther {
		t.Fatalf("GET /inloggen?taal=en logged in: %d", r.status)
	}
	if r := v.get("/helpdesk"); !strings.Contains(r.body, `<html lang="en">`) {
		t.Errorf("the language chosen on a page that redirects is forgotten:\n%s", r.text())
	}
	v.get("/helpdesk?taal=nl")
	dutch := regexp.MustCompile(`(?i)\b(het|een|uw|niet|wordt|voor|naar|bij|aanmaken|versturen|bijlagen|geldig|werkuren|zondag|maandag)\b`)
	for _, path := range []string{"/helpdesk", "/tickets/nieuw", "/tickets/" + id, "/account", "/wachtwoord/vergeten", "/login/vergeten"} {
		r := v.get(path + "?taal=en")
		if r.status != http.StatusOK || !strings.Contains(r.body, `<html lang="en">`) {
			t.Errorf("GET %s?taal=en: %d, not English", path, r.status)
			continue
		}
		// What the customer wrote stays as written; the page around it is English.
		text := strings.ReplaceAll(strings.ReplaceAll(r.text(), "Printer stopt.", ""), "Nederlands", "")
		if m := dutch.FindAllString(text, -1); m != nil {
			t.Errorf("GET %s?taal=en has Dutch words %q:\n%s", path, m, text)
		}
		if m := regexp.MustCompile(`[0-9]+,[0-9] [kM]B`).FindString(text); m != "" {
			t.Errorf("GET %s?taal=en writes a size the Dutch way: %q", path, m)
		}
		if n := len(r.header.Values("Set-Cookie")); n != 1 {
			t.Errorf("GET %s?taal=en sets %d cookies, want the language's one: %q", path, n, r.header.Values("Set-Cookie"))
		}
	}
}

// TestSitePhoneTaken: a number registered for another customer cannot be claimed on Mijn
// account — calls from it would be put through as the wrong customer (R19); the form says so
// and nothing of it is saved, the other customer keeps the number.
func TestSitePhoneTaken(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	mustRun(t, env, "customer", "invite", siteB)
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteB, 1), sitePW)
	r := v.post("/account", url.Values{"csrf": {v.csrf("/account")}, "form": {"profile"}, "answer": {"site"}, "lang": {"nl"}, "phones": {"020 7654321\n06 12345678"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), "al bij een andere klant geregistreerd") {
		t.Errorf("claim another customer's number: %d\n%s", r.status, r.text())
	}
	if c := showCustomer(t, env, siteB); c["phones"] != nil && fmt.Sprint(c["phones"]) != "[]" || c["answer"] == "site" {
		t.Errorf("a refused form saved something: %v", c)
	}
	if who := mustRun(t, env, "caller", "0612345678"); !strings.Contains(who, "Bakkerij de Vries") {
		t.Errorf("the number's customer after the refusal: %s", who)
	}
}
