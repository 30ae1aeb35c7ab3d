package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTemplatesPreview: the operator sees what customers will get, overrides included; a
// broken override is reported with the file's name (and serve would refuse to start).
func TestTemplatesPreview(t *testing.T) {
	p := newPeers(t)
	out := mustRun(t, p.env(), "templates", "preview", "ack")
	if !strings.HasPrefix(out, "Subject: [Infobits #123] Ontvangen: Kassa start niet op") || !strings.Contains(out, "maandag 30 november 2026 om 13:00") {
		t.Errorf("preview ack:\n%s", out)
	}
	if out := mustRun(t, p.env(), "templates", "preview", "password_reset", "-lang", "en", "-html"); !strings.Contains(out, `<html lang="en">`) || !strings.Contains(out, "Set a new password") {
		t.Errorf("preview -html:\n%s", out)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "nl"), 0o755)
	os.WriteFile(filepath.Join(dir, "nl", "ack.txt.tmpl"), []byte(`{{define "subject"}}Bedankt: {{.TicketSubject}}{{end}}{{define "body"}}Dank!{{end}}`), 0o644)
	if out := mustRun(t, p.env("HELPDESK_TEMPLATES_DIR="+dir), "templates", "preview", "ack"); !strings.HasPrefix(out, "Subject: Bedankt: Kassa start niet op") {
		t.Errorf("preview with an override:\n%s", out)
	}
	os.WriteFile(filepath.Join(dir, "nl", "ack.txt.tmpl"), []byte(`{{define "subject"}}{{.NoSuchField}}{{end}}`), 0o644)
	r := runBin(t, p.env("HELPDESK_TEMPLATES_DIR="+dir), "templates", "preview", "ack")
	if r.code == 0 || !strings.Contains(r.stderr, "ack") {
		t.Errorf("broken override: exit %d, %q", r.code, r.stderr)
	}
	r = runBin(t, p.env("HELPDESK_TEMPLATES_DIR="+dir), "serve", "-once")
	if r.code == 0 || !strings.Contains(r.stderr, "template") {
		t.Errorf("serve with a broken override: exit %d, %q", r.code, r.stderr)
	}
	if r := runBin(t, p.env(), "templates", "preview", "nope"); r.code != 2 {
		t.Errorf("unknown template: exit %d", r.code)
	}
}
