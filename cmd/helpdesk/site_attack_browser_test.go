package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserUploadTooLarge: in Chromium, a file far larger than max_message_bytes (40 MB
// against 2 MB) gets the form back with why and what the customer wrote — not a connection
// error and not "not allowed" — and nothing is stored.
func TestBrowserUploadTooLarge(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock(), "HELPDESK_MAX_MESSAGE_BYTES=2000000")
	b := tab{t, newBrowser(t)}
	mustRun(t, env, "customer", "invite", siteA)
	b.open(emailedLink(t, p, siteA, 1))
	b.fill("#password", sitePW)
	b.fill("#password2", sitePW)
	b.press("main form button")

	big := filepath.Join(t.TempDir(), "kassa-video.mp4")
	if err := os.WriteFile(big, bytes.Repeat([]byte{0}, 40<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	b.open(base + "/tickets/nieuw")
	b.fill("#subject", "Filmpje van de storing")
	b.fill("#text", "In het filmpje ziet u wat de kassa doet.")
	b.click("#contact-email")
	if err := chromedp.Do(b.ctx, chromedp.SetUploadFiles(chromedp.CSS("#attachment"), []string{big})); err != nil {
		t.Fatal(err)
	}
	if st := b.press("main form button"); st != http.StatusUnprocessableEntity {
		t.Errorf("a 40 MB file: %d, want 422", st)
	}
	b.shows("the refused upload", "De bijlagen zijn samen groter dan 2,0 MB", "Er is niets opgeslagen")
	if v, _ := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS("#text"))); v != "In het filmpje ziet u wat de kassa doet." {
		t.Errorf("the refused form lost the text: %q", v)
	}
	if v, _ := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS("#subject"))); v != "Filmpje van de storing" {
		t.Errorf("the refused form lost the subject: %q", v)
	}
	if o := mustRun(t, env, "ticket", "list"); strings.Contains(o, "Filmpje") {
		t.Errorf("the refused upload made a ticket:\n%s", o)
	}
}
