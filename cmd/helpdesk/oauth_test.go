package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/internal/oauth"
	"github.com/infobits/helpdesk/internal/oauth/oauthtest"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

// oauthPeers are a token server, a Dovecot that checks bearer tokens against its
// introspection endpoint, and an SMTP server that checks them the same way.
func oauthPeers(t *testing.T) (*peers, *oauthtest.Server) {
	t.Helper()
	ts := oauthtest.New(t, "helpdesk")
	d := imaptest.NewDovecotOAuth2(t, imaptest.OAuth2{IntrospectionURL: ts.IntrospectURL()})
	sink := smtptest.New(t, smtpsink.Options{User: d.User, Password: "not-the-token-" + d.Password, AllowInsecureAuth: true, Bearer: ts.Bearer})
	return &peers{imapAddr: d.Addr, imapUser: d.User, dovecot: d, sink: sink, dir: t.TempDir()}, ts
}

// oauthEnv is the gateway's configuration for OAuth with the test's token server: no
// passwords, the client secret in a file, the debug log on (nothing secret may show there
// either).
func oauthEnv(t *testing.T, p *peers, ts *oauthtest.Server, flow string) []string {
	t.Helper()
	secretFile := filepath.Join(p.dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte(ts.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p.env("HELPDESK_IMAP_PASSWORD=", "HELPDESK_STAFF=", "HELPDESK_SMTP_USER="+p.imapUser, "HELPDESK_LOG_LEVEL=debug",
		"HELPDESK_OAUTH_PROVIDER=generic", "HELPDESK_OAUTH_FLOW="+flow, "HELPDESK_OAUTH_CLIENT_ID="+ts.ClientID,
		"HELPDESK_OAUTH_CLIENT_SECRET_FILE="+secretFile, "HELPDESK_OAUTH_TOKEN_URL="+ts.TokenURL(),
		"HELPDESK_OAUTH_DEVICE_URL="+ts.DeviceURL())
}

// noSecrets fails when any token or secret the token server handed out shows in text.
func noSecrets(t *testing.T, ts *oauthtest.Server, where, text string) {
	t.Helper()
	for _, s := range ts.Secrets() {
		if strings.Contains(text, s) {
			t.Errorf("%s shows a secret (%.6s…)", where, s)
		}
	}
}

// oauthLogin runs `helpdesk oauth login` as an operator would: it reads the code the command
// prints and approves it at the token server, as the person does in the browser.
func oauthLogin(t *testing.T, env []string, ts *oauthtest.Server) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "oauth", "login")
	cmd.Env = append(env, raceEnv)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	code := regexp.MustCompile(`enter the code (\S+?)[ .]`)
	sc := bufio.NewScanner(stdout)
	approved := false
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if m := code.FindStringSubmatch(sc.Text()); m != nil && !approved {
			if !ts.Approve(m[1]) {
				t.Errorf("the code %q shown is not the token server's", m[1])
			}
			approved = true
		}
	}
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("oauth login: %v\nstdout: %s\nstderr: %s", err, out.String(), stderr.String())
	}
	if !approved {
		t.Fatalf("oauth login showed no code:\n%s", out.String())
	}
	return out.String() + stderr.String()
}

// TestOAuthGateway: an operator signs in once with `helpdesk oauth login` (the device flow),
// and the gateway then reads the mailbox from Dovecot and sends notifications over SMTP with
// the OAuth tokens, both servers checking them at the token server; doctor shows the token's
// state; a revoked consent stops the gateway with one error naming the command that fixes it;
// nothing secret shows in the output, the logs, doctor or a backup.
func TestOAuthGateway(t *testing.T) {
	p, ts := oauthPeers(t)
	ts.SetRotate(true)
	env := oauthEnv(t, p, ts, oauth.FlowRefreshToken)
	tokenFile := filepath.Join(p.dir, "helpdesk.db.oauth")

	// Before the sign-in: doctor says what to run, serve will not start.
	r := runBin(t, env, "doctor")
	if r.code != 1 || !regexp.MustCompile(`FAIL  OAuth .*no sign-in yet`).MatchString(r.stdout) || !strings.Contains(r.stdout, "`helpdesk oauth login`") {
		t.Fatalf("doctor before the sign-in: exit %d\n%s", r.code, r.stdout)
	}
	r = runBin(t, env, "serve", "-once")
	if r.code == 0 || !strings.Contains(r.stderr, "`helpdesk oauth login`") {
		t.Fatalf("serve before the sign-in: exit %d\n%s", r.code, r.stderr)
	}

	out := oauthLogin(t, env, ts)
	if !strings.Contains(out, "signed in: the refresh token is in "+tokenFile) || !strings.Contains(out, "IMAP: logged in at "+p.imapAddr) {
		t.Errorf("oauth login said:\n%s", out)
	}
	noSecrets(t, ts, "oauth login", out)
	fi, err := os.Stat(tokenFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v; want mode 0600", fi, err)
	}

	// The gateway reads the mailbox and answers over SMTP, with tokens only.
	p.deliver(t, customerMail("Piet <info@bakkerijdevries.nl>", "Kassa start niet op", "q1@bakkerij", "", "Help."))
	addBakkerij(t, p)
	r = runBin(t, env, "serve", "-once")
	if r.code != 0 {
		t.Fatalf("serve -once: exit %d\n%s", r.code, r.stderr)
	}
	noSecrets(t, ts, "serve's log", r.stdout+r.stderr)
	msgs, err := p.sink.Wait(ctxTimeout(t, time.Minute), 1)
	if err != nil || msgs[0].User != p.imapUser || !strings.Contains(string(msgs[0].Data), "Kassa start niet op") {
		t.Fatalf("SMTP: %d message(s), %v", len(msgs), err)
	}
	if n := ts.Grants("refresh_token"); n < 1 {
		t.Errorf("refresh grants = %d", n)
	}

	// doctor: the OAuth state, the logins with the token; nothing secret.
	r = runBin(t, env, "doctor")
	if r.code != 0 || !regexp.MustCompile(`ok    OAuth      generic, refresh_token: access token obtained, expires \d\d:\d\d CES?T \(in 60 min\); renewed before then; signed in .*mode 0600`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "OAuth token); mailbox INBOX has 1 message(s)") || !strings.Contains(r.stdout, "AUTH with the OAuth token as helpdesk accepted") {
		t.Errorf("doctor: exit %d\n%s", r.code, r.stdout)
	}
	noSecrets(t, ts, "doctor", r.stdout+r.stderr)

	// A backup holds the database only: no token, no secret, in it or its manifest.
	dir := filepath.Join(p.dir, "backups")
	os.Mkdir(dir, 0o700)
	mustRun(t, env, "backup", "-dir", dir)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(e.Name(), ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if b, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		noSecrets(t, ts, "backup "+e.Name(), string(b))
	}
	if len(entries) < 2 {
		t.Errorf("backup wrote %d file(s)", len(entries))
	}

	// The consent is revoked: serve stops with one error that names the command.
	ts.RevokeConsent()
	r = runBin(t, env, "serve", "-once")
	if r.code == 0 || !strings.Contains(r.stderr, "invalid_grant") || !strings.Contains(r.stderr, "run `helpdesk oauth login` to sign in again") {
		t.Fatalf("serve after the consent was revoked: exit %d\n%s", r.code, r.stderr)
	}
	noSecrets(t, ts, "serve's log after the revocation", r.stderr)
	r = runBin(t, env, "doctor")
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL  OAuth") || !strings.Contains(r.stdout, "run `helpdesk oauth login` to sign in again") {
		t.Errorf("doctor after the revocation: exit %d\n%s", r.code, r.stdout)
	}

	// Signing in again brings it back, without touching the database.
	oauthLogin(t, env, ts)
	p.deliver(t, customerMail("Piet <info@bakkerijdevries.nl>", "Re: Kassa", "q2@bakkerij", "", "Nog iets."))
	if r = runBin(t, env, "serve", "-once"); r.code != 0 {
		t.Fatalf("serve after signing in again: exit %d\n%s", r.code, r.stderr)
	}
}

// TestOAuthClientCredentials: Microsoft 365 app-only access — the app signs in with its
// client secret, no person's consent, no token file.
func TestOAuthClientCredentials(t *testing.T) {
	p, ts := oauthPeers(t)
	env := oauthEnv(t, p, ts, oauth.FlowClientCredentials)
	p.deliver(t, customerMail("Piet <info@bakkerijdevries.nl>", "Kassa start niet op", "q1@bakkerij", "", "Help."))
	addBakkerij(t, p)
	r := runBin(t, env, "serve", "-once")
	if r.code != 0 {
		t.Fatalf("serve -once: exit %d\n%s", r.code, r.stderr)
	}
	if msgs, err := p.sink.Wait(ctxTimeout(t, time.Minute), 1); err != nil || msgs[0].User != p.imapUser {
		t.Fatalf("SMTP: %v", err)
	}
	if n := ts.Grants("client_credentials"); n < 1 {
		t.Errorf("client credential grants = %d", n)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "helpdesk.db.oauth")); err == nil {
		t.Error("client credentials wrote a token file")
	}
	noSecrets(t, ts, "serve's log", r.stderr)
	r = runBin(t, env, "doctor")
	if r.code != 0 || !strings.Contains(r.stdout, "ok    OAuth      generic, client_credentials: access token obtained") {
		t.Errorf("doctor: exit %d\n%s", r.code, r.stdout)
	}
	noSecrets(t, ts, "doctor", r.stdout)

	// Importing an archive signs in the same way: no password is asked for (the mailbox
	// read again from its start: the email is a duplicate of the one serve took in).
	r = runBin(t, env, "import", "-mailbox", "INBOX", "-rescan")
	if r.code != 0 || !strings.Contains(r.stdout, `import of mailbox "INBOX": 1 email(s)`) {
		t.Errorf("import with OAuth: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	noSecrets(t, ts, "import", r.stdout+r.stderr)

	// A wrong secret: one error naming the keys to check.
	os.WriteFile(filepath.Join(p.dir, "client-secret"), []byte("wrong"), 0o600)
	r = runBin(t, env, "serve", "-once")
	if r.code == 0 || !strings.Contains(r.stderr, "invalid_client") || !strings.Contains(r.stderr, "check oauth_client_id and oauth_client_secret") {
		t.Errorf("serve with a wrong secret: exit %d\n%s", r.code, r.stderr)
	}
}

// TestOAuthLoginBrowser: `oauth login` for a provider whose device flow cannot be used
// (Google's refuses the mail scope): it prints an address for the browser, which comes back to
// the command's loopback listener; the gateway then signs in with the saved refresh token.
func TestOAuthLoginBrowser(t *testing.T) {
	p, ts := oauthPeers(t)
	env := append(oauthEnv(t, p, ts, oauth.FlowRefreshToken), "HELPDESK_OAUTH_DEVICE_URL=", "HELPDESK_OAUTH_AUTH_URL="+ts.AuthURL())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "oauth", "login")
	cmd.Env = append(env, raceEnv)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if u := strings.TrimSpace(line); strings.HasPrefix(u, ts.AuthURL()+"?") {
			// The person's browser: the provider approves and sends it back to the command.
			go func() {
				if resp, err := http.Get(u); err == nil {
					resp.Body.Close()
				} else {
					t.Errorf("browser: %v", err)
				}
			}()
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("oauth login: %v\n%s\n%s", err, out.String(), stderr.String())
	}
	if !strings.Contains(out.String(), "ssh -L ") || !strings.Contains(out.String(), "signed in: the refresh token is in") ||
		ts.Grants("authorization_code") != 1 {
		t.Fatalf("oauth login said:\n%s", out.String())
	}
	noSecrets(t, ts, "oauth login", out.String()+stderr.String())
	if r := runBin(t, env, "serve", "-once"); r.code != 0 {
		t.Fatalf("serve after the browser sign-in: exit %d\n%s", r.code, r.stderr)
	}
}
