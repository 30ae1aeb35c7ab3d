package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

func TestDoctor(t *testing.T) {
	p := archivePeers(t, smtpsink.Options{})
	auth := smtptest.New(t, smtpsink.Options{User: "support@infobits.example", Password: "smtp-secret", AllowInsecureAuth: true})
	authEnv := func(extra ...string) []string {
		return p.env(append([]string{"HELPDESK_SMTP_ADDR=" + auth.Addr(), "HELPDESK_SMTP_USER=support@infobits.example",
			"HELPDESK_SMTP_PASSWORD=smtp-secret"}, extra...)...)
	}
	check := func(t *testing.T, r result, code int, wants ...string) {
		t.Helper()
		if r.code != code {
			t.Errorf("exit %d, want %d\n%s%s", r.code, code, r.stdout, r.stderr)
		}
		for _, w := range wants {
			if !regexp.MustCompile(w).MatchString(r.stdout) {
				t.Errorf("doctor output lacks %q:\n%s", w, r.stdout)
			}
		}
	}
	t.Run("all ok", func(t *testing.T) {
		p.deliver(t, staffMailWith(1, staffAuth)) // the server's authserv-id, for the authserv check
		r := runBin(t, authEnv(), "doctor")
		check(t, r, 0, `(?m)^ok +config +valid`, `(?m)^ok +time zone +Europe/Amsterdam loaded`, `(?m)^ok +templates `,
			`(?m)^ok +database +.*helpdesk.db does not exist yet`, `(?m)^ok +IMAP +logged in at .* mailbox INBOX has 1 message`,
			`(?m)^ok +authserv +authserv_id mx.infobits.example is what the server writes`,
			`(?m)^ok +SMTP +connected to .*AUTH PLAIN as support@infobits.example accepted; nothing sent`,
			`(?m)^ok +site_url`, `(?m)^ok +staff auth`, `(?m)^all checks passed$`)
		if strings.Contains(r.stdout, "FAIL") || strings.Contains(r.stdout, "WARN") {
			t.Errorf("doctor:\n%s", r.stdout)
		}
		if n := len(auth.Messages()); n != 0 {
			t.Errorf("doctor sent %d messages", n)
		}
		// With a database: writable, with its counts.
		mustRun(t, authEnv(), "customer", "add", "-email", "a@example.nl", "-name", "A")
		check(t, runBin(t, authEnv(), "doctor"), 0, `(?m)^ok +database +.*helpdesk.db writable \(1 customers, 0 tickets`)
	})
	t.Run("the command's clock", func(t *testing.T) {
		// doctor reads the clock it is given (the OAuth token's expiry is counted by it too).
		var out syncBuffer
		summer := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
		run(&env{ctx: context.Background(), stdout: &out, stderr: &out, environ: authEnv(), now: func() time.Time { return summer }}, []string{"doctor"})
		if !regexp.MustCompile(`(?m)^ok +time zone +.*it is now 2026-07-01 12:00 CEST there`).MatchString(out.String()) {
			t.Errorf("doctor with the clock at %s:\n%s", summer, out.String())
		}
	})
	t.Run("wrong IMAP password", func(t *testing.T) {
		check(t, runBin(t, authEnv("HELPDESK_IMAP_PASSWORD=wrong"), "doctor"), 1,
			`(?m)^FAIL +IMAP +IMAP server .* refused login as "helpdesk"`, `(?m)^ +fix: check imap_user and imap_password .*app password`,
			`(?m)^ok +SMTP `, `(?m)^1 check\(s\) failed`)
	})
	t.Run("missing mailbox", func(t *testing.T) {
		check(t, runBin(t, authEnv("HELPDESK_IMAP_MAILBOX=Support"), "doctor"), 1,
			`(?m)^FAIL +IMAP +logged in .* but the mailbox "Support" does not exist`, `(?m)^ +fix: set imap_mailbox to one of: Archief, INBOX`)
	})
	t.Run("unreachable SMTP", func(t *testing.T) {
		check(t, runBin(t, p.env("HELPDESK_SMTP_ADDR=127.0.0.1:1"), "doctor"), 1,
			`(?m)^FAIL +SMTP +SMTP server 127.0.0.1:1 without TLS: connect: .*refused`, `(?m)^ +fix: nothing listens on 127.0.0.1:1`, `(?m)^ok +IMAP `)
	})
	t.Run("wrong SMTP password", func(t *testing.T) {
		check(t, runBin(t, authEnv("HELPDESK_SMTP_PASSWORD=wrong"), "doctor"), 1,
			`(?m)^FAIL +SMTP +SMTP server .* refused login as "support@infobits.example"`, `(?m)^ +fix: check smtp_user and smtp_password`)
	})
	t.Run("config and consistency", func(t *testing.T) {
		check(t, runBin(t, p.env("HELPDESK_AUTHSERV_ID=", "HELPDESK_SITE_URL=", "HELPDESK_IMAP_MOVE_TO=Verwerkt"), "doctor"), 1,
			`(?m)^FAIL +config +configuration: staff email`, `(?m)^FAIL +staff auth +require_auth is on but authserv_id is empty`,
			`(?m)^WARN +site_url +not set`, `(?m)^WARN +IMAP +the move-to folder "Verwerkt" does not exist yet`)
		// The times serve would refuse at start are named, all of them, before anything runs.
		bad := p.env("HELPDESK_ESCALATION_WARN=soon", "HELPDESK_DIGEST_TIME=25:00", "HELPDESK_BACKUP_TIME=9")
		check(t, runBin(t, bad, "doctor"), 1, `(?m)^FAIL +config +configuration: .*escalation_warn: warning threshold "soon".*; digest_time: digest time "25:00".*; backup_time = "9"`)
		if r := runBin(t, bad, "serve"); r.code == 0 || !strings.Contains(r.stderr, `escalation_warn: warning threshold "soon"`) ||
			!strings.Contains(r.stderr, `digest_time: digest time "25:00"`) || !strings.Contains(r.stderr, `backup_time = "9"`) {
			t.Errorf("serve with three bad times: exit %d\n%s", r.code, r.stderr)
		}
		check(t, runBin(t, p.env("HELPDESK_REQUIRE_AUTH=false", "HELPDESK_IMAP_MOVE_TO=Archief"), "doctor"), 0,
			`(?m)^WARN +staff auth +require_auth = false`, `(?m)^ok +IMAP +processed mail is moved to Archief`, `(?m)^all checks passed, 1 warning`)
	})
	// A site text override with an unknown key stops serve at start: doctor says so first,
	// naming the file and the key; with the site off it does not matter.
	t.Run("site page override", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "nl"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "nl", "site.txt"), []byte("login.intor = Log in\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		check(t, runBin(t, authEnv("HELPDESK_TEMPLATES_DIR="+dir), "doctor"), 1,
			`(?m)^FAIL +templates +site pages: nl/site.txt \(templates_dir\): unknown text key "login.intor"`)
		check(t, runBin(t, authEnv("HELPDESK_TEMPLATES_DIR="+dir, "HELPDESK_SITE=off"), "doctor"), 0,
			`(?m)^ok +templates +every notification renders in nl and en, with the overrides of `)
		check(t, runBin(t, authEnv(), "doctor"), 0, `(?m)^ok +templates +every notification and every page of the site renders in nl and en`)
	})
	// A site_url with a path is a website of the vendor's own (the gateway's site answers at
	// the root of a host): doctor warns while the site is on, and says what to set.
	t.Run("site_url with a path", func(t *testing.T) {
		check(t, runBin(t, authEnv("HELPDESK_SITE_URL=https://www.infobits.example/helpdesk"), "doctor"), 0,
			`(?m)^WARN +site_url +site_url = https://www.infobits.example/helpdesk has a path, but the gateway's site answers at the root of a host`,
			`(?m)^ +fix: set site = off`)
		check(t, runBin(t, authEnv("HELPDESK_SITE_URL=https://www.infobits.example/helpdesk", "HELPDESK_SITE=off"), "doctor"), 0,
			`(?m)^ok +site_url +https://www.infobits.example/helpdesk$`)
	})
	t.Run("certificates are checked", func(t *testing.T) {
		// A server whose certificate this machine does not trust (self-signed) is refused.
		tlsSink := smtptest.New(t, smtpsink.Options{TLS: true})
		check(t, runBin(t, p.env("HELPDESK_SMTP_ADDR="+tlsSink.Addr(), "HELPDESK_SMTP_TLS=starttls"), "doctor"), 1,
			`(?m)^FAIL +SMTP +SMTP server .* with STARTTLS: EHLO and STARTTLS: .*certificate`, `(?m)^ +fix: the server's certificate is not trusted by this machine`)
		// IMAPS against a server that speaks plaintext on that port.
		check(t, runBin(t, p.env("HELPDESK_IMAP_TLS=tls"), "doctor"), 1,
			`(?m)^FAIL +IMAP +connect to IMAP server .* over TLS:`, `(?m)^ +fix: the server does not speak TLS right away on this port: set imap_tls`)
	})
	t.Run("unreadable config file", func(t *testing.T) {
		check(t, runBin(t, p.env(), "doctor", "-config", filepath.Join(p.dir, "nope.conf")), 1, `(?m)^FAIL +config +config file: open`)
	})
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
			!regexp.MustCompile(`(?m)^ +fix: send an email from a staff address to the support address and run doctor again.*staff_no_ticket.*helpdesk ticket held dismiss ID$`).MatchString(r.stdout) {
			t.Errorf("doctor on an empty mailbox: exit %d\n%s", r.code, r.stdout)
		}
	})
}

// TestDoctorAsRootBesideGatewayUser: the docs run doctor as root (to read the secrets from the
// environment file) while the gateway runs as its own user. Root's CLI refuses that user's
// control socket, and doctor used to FAIL the database check with "is a gateway starting or
// stopping? run doctor again in a moment" — advice that never helps. It now says a gateway of
// that user listens there and how to run commands, and sends it nothing.
func TestDoctorAsRootBesideGatewayUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the gateway as another user")
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "helpdesk-doctor-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state") // the gateway user's StateDirectory
	if err := os.Mkdir(state, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helpdesk")
	if err := copyFile(binPath, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	p := newPeers(t)
	p.dir = state
	env := p.env()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(env, raceEnv)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
		}
	}()
	waitOutput(t, stderr, regexp.MustCompile(`"msg":"gateway running"`), exited)

	r := runBin(t, env, "doctor")
	if !regexp.MustCompile(`(?m)^ok +database +.*helpdesk\.db: in use by a running gateway of user nobody \(uid 65534\), listening on .*helpdesk\.db\.sock; as root, doctor sends it no command: run the operator's commands as that user \(sudo -u nobody helpdesk \.\.\.\)$`).MatchString(r.stdout) ||
		strings.Contains(r.stdout, "starting or stopping") {
		t.Errorf("doctor as root beside a gateway of another user: exit %d\n%s", r.code, r.stdout)
	}
	if strings.Contains(stderr.String(), `"msg":"control command"`) {
		t.Errorf("doctor as root sent the gateway a command:\n%s", stderr.String())
	}
}

// TestImportFileTheGatewayCannotRead: `customer import FILE` while the gateway runs (as its
// own user, as the unit does) is run by the gateway, which opens the file. A file it may not
// read — in root's home, which the unit's ProtectHome hides too — used to give only "open
// FILE: permission denied", puzzling the operator who can read it; the error now says that
// the gateway opens it, as which user, and where to put it.
func TestImportFileTheGatewayCannotRead(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the gateway as another user")
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "helpdesk-import-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(dir, "root-only") // as /root is to the gateway's user
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(private, "klanten.csv")
	if err := os.WriteFile(csv, []byte("email,name\ninfo@buurtkast.nl,De Buurtkast\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helpdesk")
	if err := copyFile(binPath, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	p := newPeers(t)
	p.dir = state
	env := p.env()
	asNobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(env, raceEnv)
	cmd.SysProcAttr = asNobody
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
		}
	}()
	waitOutput(t, stderr, regexp.MustCompile(`"msg":"gateway running"`), exited)

	imp := exec.Command(bin, "customer", "import", csv) // as the docs say: sudo -u helpdesk helpdesk customer import …
	imp.Env = append(env, raceEnv)
	imp.Dir = dir
	imp.SysProcAttr = asNobody
	out, err := imp.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "permission denied: the running gateway opens the file, as user nobody and without access to /home, /root and /tmp under systemd; put it where that user can read it, e.g. "+state) {
		t.Errorf("import of a file the gateway cannot read: %v\n%s", err, out)
	}
}
