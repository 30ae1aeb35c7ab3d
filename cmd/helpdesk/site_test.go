package main

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/textproto"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/store"
)

// The customer's Helpdesk site (issue 15), through the real listener of a running gateway,
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
