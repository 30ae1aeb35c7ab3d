package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

// TestRealWorldMailFaithfully: the classes of real mail a mature helpdesk's parser fixtures
// showed the gateway reading wrong, through `serve -once`: what staff then see in `ticket show
// -json` and get from `ticket attachment`. Each email is small and made for its class; the
// parser's own tests (mail/parse/fidelity_test.go) cover each class in more shapes.
func TestRealWorldMailFaithfully(t *testing.T) {
	// Dovecot: go-imap's in-memory server refuses to hand out an email with junk before its
	// header (its own parser fails on it), as no real server does.
	d := imaptest.NewDovecot(t)
	p := &peers{imapAddr: d.Addr, imapUser: d.User, imapPass: d.Password, dovecot: d,
		sink: smtptest.New(t, smtpsink.Options{}), dir: t.TempDir()}
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	pdf := []byte("%PDF-1.4 offerte\x00\xff\x01 einde\n")
	pdf64 := base64.StdEncoding.EncodeToString(pdf)
	head := func(subject, id string) string {
		return "From: =?utf-8?q?Ren=C3=A9e_de_Vries?= <info@bakkerijdevries.nl>\r\nTo: support@infobits.example\r\nSubject: " + subject +
			"\r\nDate: Fri, 27 Nov 2026 16:00:00 +0100\r\nMessage-ID: <" + id + "@bakkerij>\r\n"
	}
	mails := []string{
		// No Content-Type at all, a UTF-8 body.
		head("Formulier", "f1") + "\r\nPrénom: Renée — bedankt\r\n",
		// Junk before the header; a nameless PDF.
		"---- Original email message ----\r\n" + head("Offerte", "f2") + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n" +
			"--m\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nZie de offerte.\r\n" +
			"--m\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + pdf64 + "\r\n--m--\r\n",
		// An empty text part beside HTML with a stray Latin-1 byte.
		head("Alleen HTML", "f3") + "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n" +
			"--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n" +
			"--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Het caf\xe9 is dicht.</p>\r\n--a--\r\n",
		// A folded file name with more parameters after it; a second HTML part after the text.
		head("Bijlagen", "f4") + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n" +
			"--m\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nTwee bijlagen.\r\n" +
			"--m\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename=\r\n \"offerte 2026.pdf\"; size=21;\r\n creation-date=\"Fri, 27 Nov 2026 10:00:00 +0100\"\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\n" + pdf64 + "\r\n" +
			"--m\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Handtekening</p>\r\n--m--\r\n",
	}
	for _, m := range mails {
		p.deliver(t, m)
	}
	mustRun(t, env, "serve", "-once")
	var held []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "held", "-json", "-all")), &held); err != nil {
		t.Fatal(err)
	}
	if len(held) != 0 {
		t.Errorf("held = %v, want every email a ticket", held)
	}
	type file struct {
		Number   int    `json:"number"`
		Filename string `json:"filename"`
		Type     string `json:"content_type"`
		Size     int64  `json:"size"`
	}
	type message struct {
		From        string `json:"from"`
		FromName    string `json:"from_name"`
		Subject     string `json:"subject"`
		Text        string `json:"text"`
		Attachments []file `json:"attachments"`
	}
	bySubject := map[string]message{}
	ids := map[string]int{}
	for _, tk := range ticketList(t, env) {
		id := int(tk["id"].(float64))
		var d struct {
			Messages []message `json:"messages"`
		}
		if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "show", "-json", fmt.Sprint(id))), &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Messages) == 1 {
			bySubject[d.Messages[0].Subject] = d.Messages[0]
			ids[d.Messages[0].Subject] = id
		}
	}
	for subject, want := range map[string]struct {
		text  string
		files []string
	}{
		"Formulier":   {"Prénom: Renée — bedankt", nil},
		"Offerte":     {"Zie de offerte.", []string{"bijlage.pdf application/pdf"}},
		"Alleen HTML": {"Het café is dicht.", nil},
		"Bijlagen":    {"Twee bijlagen.", []string{"offerte 2026.pdf application/pdf", "bijlage.html text/html"}},
	} {
		m, ok := bySubject[subject]
		if !ok {
			t.Errorf("no ticket %q (tickets: %v)", subject, ids)
			continue
		}
		if !strings.Contains(m.Text, want.text) || strings.ContainsRune(m.Text, '\uFFFD') {
			t.Errorf("%s: text %q, want %q", subject, m.Text, want.text)
		}
		if m.From != "info@bakkerijdevries.nl" || m.FromName != "Renée de Vries" {
			t.Errorf("%s: from %q, from_name %q; want the sender's display name kept", subject, m.From, m.FromName)
		}
		var got []string
		for _, f := range m.Attachments {
			got = append(got, f.Filename+" "+f.Type)
		}
		if strings.Join(got, ",") != strings.Join(want.files, ",") {
			t.Errorf("%s: files %q, want %q", subject, got, want.files)
		}
	}
	// The nameless PDF is written out under its made name, byte for byte.
	dir := t.TempDir()
	mustRunIn(t, dir, env, "ticket", "attachment", fmt.Sprint(ids["Offerte"]), "1")
	if got, err := os.ReadFile(filepath.Join(dir, "bijlage.pdf")); err != nil || !bytes.Equal(got, pdf) {
		t.Errorf("ticket attachment of the nameless PDF: %q, %v; want bijlage.pdf with the PDF's bytes", got, err)
	}
	if got := mustRun(t, env, "ticket", "attachment", fmt.Sprint(ids["Bijlagen"]), "1", "-o", "-"); got != string(pdf) {
		t.Errorf("ticket attachment offerte 2026.pdf: %q", got)
	}
	if show := mustRun(t, env, "ticket", "show", fmt.Sprint(ids["Formulier"])); !strings.Contains(show, "Renée de Vries <info@bakkerijdevries.nl>") {
		t.Errorf("ticket show does not name the sender:\n%s", show)
	}
}

func mustRunIn(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	r := runBinIn(t, dir, env, args...)
	if r.code != 0 {
		t.Fatalf("helpdesk %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}
