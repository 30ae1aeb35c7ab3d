package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

// Issue 11 part 9: first steps — doctor names the authserv-id the server writes.

// staffMailWith is a staff member's email whose header starts with the given fields, as the
// receiving server left it.
func staffMailWith(i int, fields string) string {
	return fmt.Sprintf("%sFrom: jan@infobits.example\r\nTo: support@infobits.example\r\nSubject: Re: [Infobits #%d] Vraag\r\n"+
		"Date: Fri, 27 Nov 2026 16:00:00 +0100\r\nMessage-ID: <s%d@infobits.example>\r\nContent-Type: text/plain\r\n\r\nAntwoord.\r\n", fields, i, i)
}

// TestDoctorAuthServID: doctor reads the topmost Authentication-Results of the newest 20
// emails (older ones and fields further down do not count) and says which authserv-id the
// server writes, with or without DMARC results, and whether authserv_id names it; a wrong
// id with staff answering by email fails with the id to set; a server that writes fields
// without an id (Exchange Online) and an empty mailbox are explained.
func TestDoctorAuthServID(t *testing.T) {
	forked := "Authentication-Results: mx.evil.example; dmarc=pass header.from=infobits.example\r\n" // further down: forged or an earlier hop
	run := func(t *testing.T, p *peers) {
		for i := range 5 { // older than the newest 20: not read
			p.deliver(t, staffMailWith(i, "Authentication-Results: oud-mx.infobits.example; dmarc=pass header.from=infobits.example\r\n"))
		}
		for i := 5; i < 25; i++ {
			if i == 12 {
				p.deliver(t, staffMailWith(i, "")) // no field at all
				continue
			}
			p.deliver(t, staffMailWith(i, staffAuth+forked))
		}
		seen := `the topmost Authentication-Results of the newest 20 email\(s\) of INBOX: mx\.infobits\.example in 19 \(with a DMARC result in 19\), no Authentication-Results in 1$`
		r := runBin(t, p.env(), "doctor")
		if r.code != 0 || !regexp.MustCompile(`(?m)^ok +authserv +authserv_id mx\.infobits\.example is what the server writes: `+seen).MatchString(r.stdout) {
			t.Errorf("doctor with the right authserv_id: exit %d\n%s", r.code, r.stdout)
		}
		for _, wrong := range []string{"mail.infobits.example", "mx.evil.example", "oud-mx.infobits.example"} {
			r = runBin(t, p.env("HELPDESK_AUTHSERV_ID="+wrong), "doctor")
			if r.code != 1 || !regexp.MustCompile(`(?m)^FAIL +authserv +authserv_id `+regexp.QuoteMeta(wrong)+` is not what the server writes, so every staff email would be held as staff_unverified; `+seen).MatchString(r.stdout) ||
				!regexp.MustCompile(`(?m)^ +fix: set authserv_id = mx\.infobits\.example \(HELPDESK_AUTHSERV_ID\)`).MatchString(r.stdout) {
				t.Errorf("doctor with authserv_id %s: exit %d\n%s", wrong, r.code, r.stdout)
			}
		}
		// Without staff email to verify, a wrong id only weakens the spoofing check: a warning.
		r = runBin(t, p.env("HELPDESK_AUTHSERV_ID=mail.infobits.example", "HELPDESK_REQUIRE_AUTH=false"), "doctor")
		if r.code != 0 || !regexp.MustCompile(`(?m)^WARN +authserv +authserv_id mail\.infobits\.example is not what the server writes, so customer mail failing DMARC is not recognised`).MatchString(r.stdout) {
			t.Errorf("doctor with a wrong id and require_auth = false: exit %d\n%s", r.code, r.stdout)
		}
	}
	t.Run("mem", func(t *testing.T) { run(t, newPeers(t)) })
	t.Run("dovecot", func(t *testing.T) {
		d := imaptest.NewDovecot(t)
		run(t, &peers{imapAddr: d.Addr, imapUser: d.User, imapPass: d.Password, dovecot: d,
			sink: smtptest.New(t, smtpsink.Options{}), dir: t.TempDir()})
	})

	t.Run("exchange online", func(t *testing.T) {
		p := newPeers(t)
		for i := range 3 {
			p.deliver(t, staffMailWith(i, "Authentication-Results: spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=infobits.example; dkim=pass (signature was verified) header.d=infobits.example;dmarc=pass action=none header.from=infobits.example;compauth=pass reason=100\r\n"))
		}
		r := runBin(t, p.env(), "doctor")
		if r.code != 1 || !regexp.MustCompile(`(?m)^FAIL +authserv +.*no authserv-id in 3 \(with a DMARC result in 3\)$`).MatchString(r.stdout) ||
			!regexp.MustCompile(`(?m)^ +fix: these fields name no server \(Exchange Online writes them so\).*require_auth = false`).MatchString(r.stdout) {
			t.Errorf("doctor on Exchange Online's fields: exit %d\n%s", r.code, r.stdout)
		}
	})
	t.Run("empty mailbox", func(t *testing.T) {
		r := runBin(t, newPeers(t).env(), "doctor")
		if r.code != 0 || !regexp.MustCompile(`(?m)^WARN +authserv +INBOX has no email to check authserv_id "mx\.infobits\.example" against`).MatchString(r.stdout) ||
			!regexp.MustCompile(`(?m)^ +fix: send an email from a staff address to the support address and run doctor again`).MatchString(r.stdout) {
			t.Errorf("doctor on an empty mailbox: exit %d\n%s", r.code, r.stdout)
		}
	})
}

// TestNewDatabaseIsAnnounced: a command that creates the database says so on stderr with the
// absolute path, once; `serve` logs it; a command on an existing database says nothing.
func TestNewDatabaseIsAnnounced(t *testing.T) {
	p := newPeers(t)
	dbPath := filepath.Join(p.dir, "helpdesk.db")
	r := runBin(t, p.env(), "ticket", "list")
	want := "helpdesk: created a new, empty database " + dbPath + " (if you meant an existing one, check db in the config file or HELPDESK_DB)\n"
	if r.code != 0 || r.stderr != want {
		t.Errorf("ticket list on a new path: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	if r := runBin(t, p.env(), "ticket", "list"); r.code != 0 || r.stderr != "" {
		t.Errorf("ticket list on the existing database: exit %d, stderr %q, want nothing", r.code, r.stderr)
	}
	// A relative path is named absolute, as the operator must find the file.
	cwd := t.TempDir()
	cmd := exec.Command(binPath, "customer", "list")
	cmd.Dir, cmd.Env = cwd, append(p.env("HELPDESK_DB=sub.db"), raceEnv)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "created a new, empty database "+filepath.Join(cwd, "sub.db")+" ") {
		t.Errorf("customer list with a relative db: %v\n%s", err, out)
	}
	// serve logs it.
	r = runBin(t, p.env("HELPDESK_DB="+filepath.Join(p.dir, "serve.db")), "serve", "-once")
	var found bool
	for _, l := range jsonLines(t, r.stderr) {
		if l["msg"] == "created a new, empty database (if you meant an existing one, check db in the config file or HELPDESK_DB)" && l["path"] == filepath.Join(p.dir, "serve.db") {
			found = true
		}
	}
	if r.code != 0 || !found {
		t.Errorf("serve -once on a new path: exit %d, no log line of the new database:\n%s", r.code, r.stderr)
	}
}

// TestOneConfigPath: the README, the docs and the deploy files name one configuration file,
// the one the unit file runs serve with.
func TestOneConfigPath(t *testing.T) {
	unit, err := os.ReadFile("../../deploy/helpdesk.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=\S+ serve -config (\S+)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("the unit file runs serve without -config")
	}
	want := string(m[1])
	use := regexp.MustCompile(`(?:-config[ =]|HELPDESK_CONFIG=)(/[^\s'"` + "`" + `)]+)`)
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	for _, f := range append([]string{"../../README.md", "../../deploy/helpdesk.service", "../../deploy/helpdesk.conf.example"}, docs...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, u := range use.FindAllSubmatch(b, -1) {
			n++
			if string(u[1]) != want {
				t.Errorf("%s names the config file %s, the unit file %s", f, u[1], want)
			}
		}
		if n == 0 && (f == "../../README.md" || f == "../../deploy/helpdesk.conf.example" || f == "../../docs/operations.md") {
			t.Errorf("%s names no config file", f)
		}
	}
}
