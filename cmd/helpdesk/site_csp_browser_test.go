package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/audits"
	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"
)

// TestBrowserNoCSPViolations: the site's Content-Security-Policy (no inline script or style at
// all) must not break its own pages: in Chromium, every page a customer opens — logged out,
// logged in, a ticket with a file, the refused forms, a link page, not found — loads without
// one violation of the policy, and without an error in the console.
func TestBrowserNoCSPViolations(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	b := tab{t, newBrowser(t)}
	var mu sync.Mutex
	var problems []string
	if err := chromedp.Listen(b.ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *cdplog.EventEntryAdded:
			// A 404 or 4xx status the test asks for is logged as a failed resource; the
			// favicon the browser asks for by itself too.
			if !strings.Contains(e.Entry.Text, "the server responded with a status of 4") &&
				(e.Entry.Level == cdplog.EntryLevelError || strings.Contains(e.Entry.Text, "Content Security Policy")) {
				problems = append(problems, string(e.Entry.Source)+": "+e.Entry.Text+" at "+e.Entry.URL)
			}
		case *audits.EventIssueAdded:
			if e.Issue.Code == audits.InspectorIssueCodeContentSecurityPolicyIssue {
				problems = append(problems, "CSP issue: "+string(e.Issue.Code))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []cdp.Command[cdp.Empty, cdp.Empty]{cdplog.Enable, audits.Enable} {
		if _, err := chromedp.Call(b.ctx, c, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
	}

	mustRun(t, env, "customer", "invite", siteA)
	link := emailedLink(t, p, siteA, 1)
	for _, path := range []string{"/inloggen", "/wachtwoord/vergeten", "/login/vergeten", "/bestaat-niet"} {
		b.open(base + path)
	}
	b.open(link)
	b.fill("#password", sitePW)
	b.fill("#password2", sitePW)
	b.press("main form button")
	a := newVisitor(t, base)
	a.login(siteA, sitePW)
	id := newSiteTicket(t, a, map[string]string{"subject": "Bonprinter", "text": "Hij print niet.", "contact": "site", "urgent": "on"},
		upload{"foto.png", "image/png", []byte("\x89PNG\r\n\x1a\n")})
	for _, path := range []string{"/helpdesk", "/tickets/nieuw", "/tickets/nieuw?verzoek=backup-video", "/tickets/" + id, "/account", "/helpdesk?taal=en", "/account?taal=nl"} {
		if st := b.open(base + path); st != http.StatusOK {
			t.Errorf("GET %s: %d", path, st)
		}
	}
	b.open(base + "/tickets/nieuw")
	b.click("main form button") // refused by the browser's own check (required fields): no new page
	b.open(link)                // a used link: the message page
	b.press("header form button")

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("the browser reports: %s", p)
	}
}
