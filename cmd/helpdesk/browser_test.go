package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
)

// The customer's site in a real browser: headless Chromium (Debian's chromium)
// driven by chromedp through the journeys a customer makes, against a running gateway with its
// SMTP peer and IMAP mailbox. Where chromium is missing these tests skip with a message; the
// HTTP-level tests (TestSite*) cover the same paths without a browser.

var writeScreenshots = flag.Bool("screenshots", false, "TestBrowserJourney writes the site's screenshots into docs/")

// newBrowser starts headless Chromium with a fresh profile, or skips the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("browser test skipped: no chromium on this machine (apt-get install chromium); the HTTP-level tests TestSite* still ran")
	}
	profile, err := os.MkdirTemp("", "helpdesk-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(profile),
		chromedp.Flag("headless", "new"), chromedp.Flag("hide-scrollbars", true), chromedp.Flag("mute-audio", true),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.DisableGPU,
		// This machine's network is closed: Chromium must not try to reach Google's hosts.
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-default-apps", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("password-store", "basic"), chromedp.Flag("use-mock-keychain", true), chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "nl-NL"), chromedp.Env("LANGUAGE=nl", "LANG=nl_NL.UTF-8"), chromedp.WindowSize(1280, 900)}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute) // a hang guard, not a speed limit
	t.Cleanup(func() {
		cancelTime()
		cancelCtx()
		cancelAlloc()
		for range 50 { // Chromium's children may still write for a moment after it stops
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	return ctx
}

// tab is the browser the test clicks in.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// open navigates to a URL and returns the status of the page.
func (b tab) open(u string) int64 {
	b.t.Helper()
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(u))
	if err != nil {
		b.t.Fatalf("open %s: %v", u, err)
	}
	return resp.Status
}

// press clicks the element, waits for the page it leads to, and returns its status.
func (b tab) press(css string) int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("click %s: %v\n%s", css, err, b.text())
	}
	return resp.Status
}

func (b tab) fill(css, value string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.SendKeys(chromedp.CSS(css), value)); err != nil {
		b.t.Fatalf("type into %s: %v", css, err)
	}
}

func (b tab) click(css string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(css))); err != nil {
		b.t.Fatalf("click %s: %v", css, err)
	}
}

// text is what the page shows.
func (b tab) text() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		b.t.Fatalf("read the page: %v", err)
	}
	return strings.Join(strings.Fields(s), " ")
}

func (b tab) location() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// shows fails unless the page shows every text.
func (b tab) shows(what string, texts ...string) {
	b.t.Helper()
	page := b.text()
	for _, s := range texts {
		if !strings.Contains(page, s) {
			b.t.Errorf("%s: the page (%s) does not show %q:\n%s", what, b.location(), s, page)
		}
	}
}

// screenshot writes the whole page, at desktop width and at a phone's, into docs/ (with
// -screenshots only: the PNGs are the README's).
func (b tab) screenshot(name string) {
	b.t.Helper()
	if !*writeScreenshots {
		return
	}
	for _, size := range []struct {
		suffix string
		w, h   int64
		mobile bool
	}{{"desktop", 1280, 900, false}, {"phone", 390, 844, true}} {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
		if size.mobile {
			opts = []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile}
		}
		if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(size.w, size.h, opts...), chromedp.Reload()); err != nil {
			b.t.Fatal(err)
		}
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "site-"+name+"-"+size.suffix+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	if err := chromedp.Do(b.ctx, chromedp.EmulateReset(), chromedp.Reload()); err != nil {
		b.t.Fatal(err)
	}
}

var ticketURL = regexp.MustCompile(`http://[0-9.:]+/tickets/[0-9]+`)

// TestBrowserJourney: a customer's whole way through the site in Chromium — the password
// from the emailed invitation, log out and in, a new ticket with a file (the acknowledgement
// arrives at the SMTP peer), staff's answer by email appears on the ticket page that the
// notification links to, a reply, a download of the answer's file, log out.
func TestBrowserJourney(t *testing.T) {
	p := newPeers(t)
	clk := siteClock()
	base, env, _ := siteGateway(t, p, clk)
	b := tab{t, newBrowser(t)}

	// The password from the emailed link.
	mustRun(t, env, "customer", "invite", siteA)
	if st := b.open(emailedLink(t, p, siteA, 1)); st != http.StatusOK {
		t.Fatalf("the invitation's link: %d\n%s", st, b.text())
	}
	b.shows("the password link", "Nieuw wachtwoord", "Minstens 10 tekens")
	b.fill("#password", sitePW)
	b.fill("#password2", sitePW)
	b.press("main form button")
	if !strings.HasSuffix(b.location(), "/helpdesk?gezet=1") {
		t.Fatalf("after setting the password: at %s\n%s", b.location(), b.text())
	}
	status := strings.TrimSpace(mustRun(t, env, "customer", "status", siteA))
	b.shows("the Helpdesk page", "Uw wachtwoord is ingesteld", "Welkom, Piet de Vries.", status, "+31 20 123 4567")

	// Log out, and in with the form.
	b.press("header form button")
	b.shows("after logging out", "U bent uitgelogd")
	b.fill("#email", siteA)
	b.fill("#password", sitePW)
	b.press("main form button")
	if !strings.HasSuffix(b.location(), "/helpdesk") {
		t.Fatalf("after logging in: at %s\n%s", b.location(), b.text())
	}

	// A new ticket with a file.
	dir := t.TempDir()
	pdf := filepath.Join(dir, "foutrapport.pdf")
	os.WriteFile(pdf, []byte("%PDF-1.4\n% foutrapport\n%%EOF\n"), 0o644)
	b.press(`a[href="/tickets/nieuw"]`)
	b.fill("#subject", "Bonprinter geeft foutcode E4")
	b.fill("#text", "Sinds vanochtend print de bonprinter niet meer. Foutrapport in de bijlage.")
	b.click("#contact-site")
	if err := chromedp.Do(b.ctx, chromedp.SetUploadFiles(chromedp.CSS("#attachment"), []string{pdf})); err != nil {
		t.Fatal(err)
	}
	b.press("main form button")
	m := regexp.MustCompile(`/tickets/([0-9]+)\?nieuw=1$`).FindStringSubmatch(b.location())
	if m == nil {
		t.Fatalf("after creating the ticket: at %s\n%s", b.location(), b.text())
	}
	id := m[1]
	b.shows("the new ticket", "Uw ticket is aangemaakt", "Bonprinter geeft foutcode E4", "foutrapport.pdf", "antwoord via de site")
	waitSubject(t, p, siteA, "[Infobits #"+id+"] Ontvangen: Bonprinter geeft foutcode E4")

	// Staff answer by email; the notification's link opens the ticket with the answer.
	answered := clk.Now().Add(95 * time.Minute) // the mailbox's arrival time, on the test's clock
	p.mem.Append("INBOX", []byte(staffAuth+mailWithFiles("Jan Bakker <jan@infobits.example>", "Re: [Infobits #"+id+"] Bonprinter geeft foutcode E4", "antw-1@infobits.example", "",
		"Goedemorgen Piet,\r\n\r\nFoutcode E4 betekent dat het papier op is of de klep niet goed dicht zit.\r\nIn de bijlage staat hoe u een nieuwe rol plaatst.\r\n\r\nMet vriendelijke groet,\r\nJan",
		testFile{name: "papierrol plaatsen.txt", ctype: "text/plain; charset=utf-8", content: []byte("1. Open de klep.\n2. Leg de rol erin.\n3. Sluit de klep.\n")})), answered)
	note := waitSubject(t, p, siteA, "[Infobits #"+id+"] Er staat een antwoord voor u klaar")
	link := ticketURL.FindString(plainText(t, note.Data))
	if link != base+"/tickets/"+id {
		t.Fatalf("the notification links to %q, want %s/tickets/%s", link, base, id)
	}
	b.open(link)
	b.shows("the ticket after the answer", "Foutcode E4 betekent dat het papier op is", "papierrol plaatsen.txt", "Beantwoord")
	b.screenshot("ticket")

	// A reply.
	b.fill("#text", "Dank u, met een nieuwe rol werkt het weer.")
	b.press("main form button")
	b.shows("after the reply", "Uw reactie is toegevoegd", "Dank u, met een nieuwe rol werkt het weer.")

	// Download the answer's file.
	downloads := t.TempDir()
	if _, err := cdp.Call(b.ctx, chromedp.FromContext(b.ctx).Browser, browser.SetDownloadBehavior,
		browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}
	b.click(`a[href="/tickets/` + id + `/bijlagen/2"]`)
	got := waitDownload(t, downloads)
	if got != "1. Open de klep.\n2. Leg de rol erin.\n3. Sluit de klep.\n" {
		t.Errorf("the downloaded file holds %q", got)
	}

	b.open(base + "/helpdesk")
	b.screenshot("helpdesk")
	// Log out: the Helpdesk page is gone with the session.
	b.press("header form button")
	b.open(base + "/helpdesk")
	if !strings.Contains(b.location(), "/inloggen") {
		t.Errorf("after logging out, /helpdesk shows %s", b.location())
	}
}

// waitDownload waits for the one finished file in dir and returns its content.
func waitDownload(t *testing.T, dir string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		es, _ := os.ReadDir(dir)
		for _, e := range es {
			if !strings.HasSuffix(e.Name(), ".crdownload") {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err == nil {
					return string(b)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no download finished in %s", dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowserRefusals: what the site refuses, in Chromium — another customer's ticket (not
// found), urgent help on SLA24 (explained on the form, the text kept, nothing stored), a
// used and an expired link, and a form on another site that posts to the helpdesk.
func TestBrowserRefusals(t *testing.T) {
	p := newPeers(t)
	clk := siteClock()
	base, env, out := siteGateway(t, p, clk)
	b := tab{t, newBrowser(t)}

	// Customer A's ticket, made over HTTP.
	mustRun(t, env, "customer", "invite", siteA)
	a := newVisitor(t, base)
	setPassword(t, a, emailedLink(t, p, siteA, 1), sitePW)
	idA := newSiteTicket(t, a, map[string]string{"subject": "Geheime omzetcijfers", "text": "Alleen voor ons.", "contact": "email"},
		upload{"omzet.csv", "text/csv", []byte("dag;omzet\nma;1234\n")})

	// Customer B (SLA24) in the browser.
	mustRun(t, env, "customer", "invite", siteB)
	invite := emailedLink(t, p, siteB, 1)
	b.open(invite)
	b.fill("#password", sitePW)
	b.fill("#password2", sitePW)
	b.press("main form button")
	b.shows("B's Helpdesk page", "Welkom, Slagerij Jansen.", "SLA24", "spoed is niet mogelijk")

	for _, path := range []string{"/tickets/" + idA, "/tickets/" + idA + "/bijlagen/1"} {
		if st := b.open(base + path); st != http.StatusNotFound {
			t.Errorf("B opens %s: %d, want 404", path, st)
		}
		b.shows("B at "+path, "Niet gevonden")
		if strings.Contains(b.text(), "omzet") {
			t.Errorf("B sees A's ticket at %s", path)
		}
	}

	// Urgent and SLA24: explained on the form, which keeps the text; nothing stored.
	b.open(base + "/tickets/nieuw")
	b.fill("#subject", "Kassa hangt")
	b.fill("#text", "De kassa hangt bij het afrekenen.")
	b.click("#contact-email")
	b.click("#urgent")
	if st := b.press("main form button"); st != http.StatusUnprocessableEntity {
		t.Errorf("urgent on SLA24: %d, want 422", st)
	}
	b.shows("the refused form", "Spoed en SLA24 gaan niet samen", "Er is niets opgeslagen")
	if v, _ := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS("#text"))); v != "De kassa hangt bij het afrekenen." {
		t.Errorf("the refused form lost the text: %q", v)
	}
	if o := mustRun(t, env, "ticket", "list"); strings.Contains(o, "Kassa hangt") {
		t.Errorf("urgent on SLA24 made a ticket:\n%s", o)
	}

	// A form on another site (localhost is another site than 127.0.0.1) posts to the
	// helpdesk in B's browser: refused by the cross-origin check.
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!DOCTYPE html><html><body><form method="post" action="%s/tickets" enctype="multipart/form-data">
<input name="subject" value="Gratis kassa"><input name="text" value="x"><input name="contact" value="email">
<button>Win een gratis kassa!</button></form></body></html>`, base)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go evil.Serve(ln)
	t.Cleanup(func() { evil.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	b.open("http://localhost:" + port + "/")
	if st := b.press("button"); st != http.StatusForbidden {
		t.Errorf("the forged POST: %d, want 403", st)
	}
	b.shows("the forged POST", "Niet toegestaan")
	if !strings.Contains(out.String(), "cross-origin POST refused") {
		t.Errorf("the gateway's log does not name the refused cross-origin POST")
	}
	if o := mustRun(t, env, "ticket", "list"); strings.Contains(o, "Gratis kassa") {
		t.Errorf("the forged POST made a ticket:\n%s", o)
	}

	// The invitation's link was used; a reset link runs out.
	b.open(invite)
	b.shows("a used link", "Link werkt niet", "ongeldig, verlopen of al gebruikt")
	b.press("header form button") // log out
	b.open(base + "/wachtwoord/vergeten")
	b.fill("#email", siteB)
	b.press("main form button")
	b.shows("wachtwoord vergeten", "Als "+siteB+" bij een klant hoort")
	link := emailedLink(t, p, siteB, 2)
	clk.Advance(61 * time.Minute)
	lu, _ := url.Parse(link)
	if st := b.open(base + lu.RequestURI()); st != http.StatusBadRequest {
		t.Errorf("an expired link: %d", st)
	}
	b.shows("an expired link", "Link werkt niet")
}
