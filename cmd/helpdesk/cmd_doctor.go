package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/cmd/helpdesk/site"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/internal/oauth"
	"github.com/infobits/helpdesk/mail/authres"
	"github.com/infobits/helpdesk/notify"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// doctor checks a configuration end to end and says, for each failure, how to fix it. It
// changes nothing: no mail is sent, no folder created, the database gets an empty write
// transaction only.

// probeTimeout bounds each server check of doctor (and the mailbox check of import).
const probeTimeout = 30 * time.Second

// doctorReport prints the checks: "ok", "WARN" (works, but look at it) or "FAIL" with the fix.
type doctorReport struct {
	w              io.Writer
	failed, warned int
}

func (d *doctorReport) ok(what, detail string) {
	fmt.Fprintf(d.w, "ok    %-10s %s\n", what, detail)
}

func (d *doctorReport) warn(what, detail, fix string) {
	d.warned++
	fmt.Fprintf(d.w, "WARN  %-10s %s\n", what, terminalSafe(detail))
	if fix != "" {
		fmt.Fprintf(d.w, "      %-10s fix: %s\n", "", fix)
	}
}

func (d *doctorReport) fail(what, detail, fix string) {
	d.failed++
	fmt.Fprintf(d.w, "FAIL  %-10s %s\n", what, terminalSafe(oneLine(detail)))
	if fix != "" {
		fmt.Fprintf(d.w, "      %-10s fix: %s\n", "", fix)
	}
}

func runDoctor(e *env, args []string) error {
	fs, _ := newFlags(e, "doctor", "[-config FILE]")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	d := &doctorReport{w: e.stdout}
	cfg, err := e.config(args)
	if err != nil {
		d.fail("config", err.Error(), "correct the file or the HELPDESK_* variable named; deploy/helpdesk.conf.example lists every key")
		fmt.Fprintln(e.stdout, "\n1 check failed: nothing else can be checked without a configuration")
		return &exitError{code: 1}
	}
	src := "environment only (no -config, no HELPDESK_CONFIG)"
	if e.cfgPath != "" {
		src = e.cfgPath
	}
	if err := cfg.validateServe(); err != nil {
		d.fail("config", err.Error(), "set or correct the keys named, in the config file or as HELPDESK_* variables (secrets belong in the environment file of the service)")
	} else {
		d.ok("config", "valid: "+src)
	}

	// The zone data is embedded in the binary (helpdesk.Amsterdam): a binary without it fails
	// at its first use, long before doctor.
	now := e.now().In(helpdesk.Amsterdam())
	d.ok("time zone", fmt.Sprintf("Europe/Amsterdam loaded (time zone data embedded in the binary); it is now %s %s there",
		now.Format("2006-01-02 15:04"), now.Format("MST")))

	// The site's pages as serve checks them at start (site.New renders each in every
	// language): a broken page override or an unknown text key would stop serve.
	what := "every notification renders in nl and en"
	_, err = templates.Load(cfg.Templates)
	if err == nil && cfg.Site {
		what = "every notification and every page of the site renders in nl and en"
		if _, serr := site.New(site.Config{SiteURL: cfg.SiteURL, Templates: cfg.Templates}, nil, nil); serr != nil {
			err = fmt.Errorf("site pages: %w", serr)
		}
	}
	if err != nil {
		d.fail("templates", err.Error(), "correct the override file named (templates_dir), or remove it to use the embedded text; `helpdesk templates preview NAME` shows one rendered")
	} else if cfg.Templates != "" {
		d.ok("templates", what+", with the overrides of "+cfg.Templates)
	} else {
		d.ok("templates", what+" (embedded texts, no templates_dir)")
	}

	doctorDB(e, d, cfg)
	tokens, tokensOK := doctorOAuth(e.ctx, d, cfg, e.now)
	doctorIMAP(e.ctx, d, cfg, tokens, tokensOK)
	doctorSMTP(e.ctx, d, cfg, tokens, tokensOK)

	if cfg.SiteURL == "" {
		d.warn("site_url", "not set: password-reset and login links (the website's recovery API) and \"your answer waits on the site\" notices cannot be sent; they fail with that reason",
			"set site_url (HELPDESK_SITE_URL) to the helpdesk website, e.g. https://helpdesk.infobits.example")
	} else if w := cfg.siteURLPath(); w != "" {
		d.warn("site_url", w, "set site = off (HELPDESK_SITE=off), or site_url to a host of its own")
	} else {
		d.ok("site_url", cfg.SiteURL)
	}
	switch {
	case len(cfg.Staff) == 0:
		d.ok("staff auth", "no staff addresses: staff answer on the website (or set staff to answer by email)")
	case cfg.RequireAuth && cfg.AuthServID == "":
		d.fail("staff auth", "require_auth is on but authserv_id is empty: no staff email would ever be applied",
			"set authserv_id (HELPDESK_AUTHSERV_ID) to the authserv-id your receiving mail server writes in Authentication-Results (look at the header of a staff email in the mailbox), or require_auth = false where no such server exists")
	case !cfg.RequireAuth:
		d.warn("staff auth", "require_auth = false: a staff email is applied on its From address alone, which anyone can forge",
			"set authserv_id and require_auth = true, unless the receiving server itself rejects forged mail from your domain")
	default:
		d.ok("staff auth", fmt.Sprintf("staff email is applied when %s vouches for it (DMARC or aligned DKIM pass)", cfg.AuthServID))
	}

	fmt.Fprintln(e.stdout)
	switch {
	case d.failed > 0:
		fmt.Fprintf(e.stdout, "%d check(s) failed, %d warning(s)\n", d.failed, d.warned)
		return &exitError{code: 1}
	case d.warned > 0:
		fmt.Fprintf(e.stdout, "all checks passed, %d warning(s)\n", d.warned)
	default:
		fmt.Fprintln(e.stdout, "all checks passed")
	}
	return nil
}

// doctorDB checks that the database can be written: through the running gateway that holds
// it, or by opening it and committing an empty transaction.
func doctorDB(e *env, d *doctorReport, cfg *Config) {
	sock := socketPath(cfg.DB)
	if os.Getuid() == 0 {
		if line, ok := doctorGatewayOfUser(e, sock); ok {
			d.ok("database", cfg.DB+": "+line)
			return
		}
	}
	quiet := &env{ctx: e.ctx, stdout: io.Discard, stderr: io.Discard, environ: e.environ, now: e.now}
	code, err := ctlCall(quiet, sock, []string{"outbox", "list", "-json", "-status", "failed"})
	switch {
	case err == nil && code == 0:
		d.ok("database", cfg.DB+": in use by a running gateway, which answers commands on "+sock+": ok")
		return
	case err == nil:
		d.fail("database", fmt.Sprintf("%s: the running gateway could not read it (exit status %d)", cfg.DB, code),
			"look at the gateway's log (journalctl -u helpdesk) for the error")
		return
	case errors.Is(err, os.ErrPermission):
		d.fail("database", fmt.Sprintf("%s: a gateway runs, but its control socket %s refuses this user", cfg.DB, sock),
			"run doctor as the gateway's user (sudo -u helpdesk ...) or as root")
		return
	case !errors.Is(err, errNoGateway):
		d.fail("database", err.Error(), "is a gateway starting or stopping? run doctor again in a moment")
		return
	}
	fi, err := os.Stat(cfg.DB)
	if errors.Is(err, os.ErrNotExist) {
		dir := filepath.Dir(cfg.DB)
		f, err := os.CreateTemp(dir, ".helpdesk-doctor-*")
		if err != nil {
			d.fail("database", fmt.Sprintf("%s does not exist and its folder cannot be written: %v", cfg.DB, err),
				"create the folder and give it to the gateway's user (the systemd unit's StateDirectory does), or set db (HELPDESK_DB) to a writable path")
			return
		}
		f.Close()
		os.Remove(f.Name())
		d.ok("database", fmt.Sprintf("%s does not exist yet: the first command or `serve` creates it (the folder %s is writable)", cfg.DB, dir))
		return
	}
	if err != nil {
		d.fail("database", err.Error(), "check the path of db (HELPDESK_DB) and the permissions of its folders")
		return
	}
	if !fi.Mode().IsRegular() {
		d.fail("database", cfg.DB+" is not a file", "set db (HELPDESK_DB) to the database file, e.g. /var/lib/helpdesk/helpdesk.db")
		return
	}
	db, err := store.Open(cfg.DB, store.Options{LockTimeout: time.Second})
	if errors.Is(err, store.ErrLocked) {
		d.fail("database", fmt.Sprintf("%s is locked by another process and no gateway answers on %s", cfg.DB, sock),
			"another helpdesk command may be running (an import without a gateway): wait for it, or stop the process that holds the file")
		return
	}
	if err != nil {
		d.fail("database", err.Error(), "the gateway's user must own the file and its folder (chown helpdesk:helpdesk); a damaged file is restored from a backup")
		return
	}
	defer db.Close()
	var n store.Counts
	err = db.Update(e.ctx, func(tx *store.Tx) error {
		n = tx.Counts()
		return nil
	})
	if err != nil {
		d.fail("database", fmt.Sprintf("%s cannot be written: %v", cfg.DB, err), "the gateway's user must own the file and its folder; check that the disk is not full or read-only")
		return
	}
	d.ok("database", fmt.Sprintf("%s writable (%d customers, %d tickets, %d held, %d notifications)", cfg.DB, n.Customers, n.Tickets, n.Held, n.Outbox))
}

// doctorGatewayOfUser is the database check of doctor run as root (as the docs say, to read
// the secrets) beside a gateway that runs as its own user: root's CLI sends no command to a
// socket another user owns (checkSocket), so doctor does not either; it says that a gateway
// of that user listens there — the kernel's word on the listening process, not the file's
// owner alone — and how to run commands. ok is false when no such gateway listens.
func doctorGatewayOfUser(e *env, sock string) (line string, ok bool) {
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return "", false
	}
	st, isStat := fi.Sys().(*syscall.Stat_t)
	if !isStat || st.Uid == 0 {
		return "", false
	}
	owner := int(st.Uid)
	dl := net.Dialer{Timeout: 2 * time.Second}
	conn, err := dl.DialContext(e.ctx, "unix", sock)
	if err != nil {
		return "", false
	}
	defer conn.Close()
	uid, err := peerAllowed(conn, owner, "the socket's owner")
	if err != nil || uid != owner {
		return "", false
	}
	name := strconv.Itoa(owner)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return fmt.Sprintf("in use by a running gateway of user %s (uid %d), listening on %s; as root, doctor sends it no command: run the operator's commands as that user (sudo -u %s helpdesk ...)",
		name, owner, sock, name), true
}

// mailboxList names the account's mailboxes for a message, at most 20.
func mailboxList(a *ingest.Account) string {
	names := slices.Clone(a.Mailboxes)
	slices.Sort(names)
	if len(names) > 20 {
		return strings.Join(names[:20], ", ") + fmt.Sprintf(" and %d more", len(names)-20)
	}
	return strings.Join(names, ", ")
}

// probeError is a failed check with what to do about it.
type probeError struct {
	msg, fix string
	err      error
}

func (e *probeError) Error() string { return e.msg + " (" + e.fix + ")" }
func (e *probeError) Unwrap() error { return e.err }

// probeIMAP looks at the configured IMAP account as the gateway connects to it (ingest.Probe:
// same TLS mode and certificate checks), for mailbox, reading the Authentication-Results of
// the newest emails when newest > 0, and words a failure for the operator: what failed and
// which setting to check. It changes nothing on the server.
func probeIMAP(ctx context.Context, cfg *Config, tokens *oauth.Source, mailbox string, newest int) (*ingest.Account, error) {
	if cfg.IMAPTLS == helpdesk.TLSNone && !helpdesk.IsLoopback(cfg.IMAPAddr) {
		return nil, &probeError{msg: fmt.Sprintf("imap_tls = none to %s: plaintext is allowed only to a loopback address", cfg.IMAPAddr),
			fix: "use imap_tls = tls (port 993) or starttls (port 143)"}
	}
	if !helpdesk.ValidTLS(cfg.IMAPTLS) {
		return nil, &probeError{msg: fmt.Sprintf("imap_tls = %q", cfg.IMAPTLS), fix: "want tls (IMAPS, 993), starttls (143) or none (loopback only)"}
	}
	a, err := ingest.Probe(ctx, ingest.Config{Addr: cfg.IMAPAddr, User: cfg.IMAPUser, Password: cfg.IMAPPassword, OAuth: tokens, TLS: cfg.IMAPTLS,
		TLSConfig: withServerName(nil, cfg.IMAPAddr), Mailbox: mailbox, MoveTo: cfg.IMAPMoveTo,
		DialTimeout: 15 * time.Second, CommandTimeout: probeTimeout}, newest)
	var pe *ingest.ProbeError
	if !errors.As(err, &pe) {
		return a, err
	}
	switch pe.Step {
	case ingest.ProbeConnect:
		return nil, &probeError{msg: fmt.Sprintf("connect to IMAP server %s %s: %v", cfg.IMAPAddr, helpdesk.TLSWords(cfg.IMAPTLS), pe.Err),
			fix: connectFix(pe.Err, "imap", cfg.IMAPAddr, cfg.IMAPTLS), err: pe.Err}
	case ingest.ProbeToken:
		return nil, &probeError{msg: fmt.Sprintf("IMAP login at %s: no OAuth access token: %v", cfg.IMAPAddr, pe.Err),
			fix: "see the OAuth check", err: pe.Err}
	case ingest.ProbeLogin:
		if pe.Refused && pe.Fix != "" {
			return nil, &probeError{msg: fmt.Sprintf("IMAP server %s refused the OAuth login as %q: %s", cfg.IMAPAddr, cfg.IMAPUser, pe.Text),
				fix: pe.Fix, err: pe.Err}
		}
		if pe.Refused {
			return nil, &probeError{msg: fmt.Sprintf("IMAP server %s refused login as %q: %s", cfg.IMAPAddr, cfg.IMAPUser, pe.Text),
				fix: "check imap_user and imap_password (HELPDESK_IMAP_PASSWORD); Microsoft 365 and Google take an app password, not the account's own, and IMAP must be enabled for the mailbox", err: pe.Err}
		}
		return nil, &probeError{msg: fmt.Sprintf("IMAP login at %s: %v", cfg.IMAPAddr, pe.Err),
			fix: "the server closed the connection: check imap_tls and the port", err: pe.Err}
	case ingest.ProbeList:
		return nil, &probeError{msg: fmt.Sprintf("list the mailboxes at %s: %v", cfg.IMAPAddr, pe.Err), fix: "the server refused LIST; ask its administrator", err: pe.Err}
	case ingest.ProbeStatus:
		return nil, &probeError{msg: fmt.Sprintf("IMAP mailbox %q at %s: %v", pe.Mailbox, cfg.IMAPAddr, pe.Err),
			fix: "the server lists the mailbox but will not open it: check the account's rights on it", err: pe.Err}
	}
	return nil, &probeError{msg: fmt.Sprintf("read the headers of the newest emails of %q at %s: %v", pe.Mailbox, cfg.IMAPAddr, pe.Err),
		fix: "the server refused EXAMINE or FETCH: check the account's rights on the mailbox", err: pe.Err}
}

func doctorIMAP(ctx context.Context, d *doctorReport, cfg *Config, tokens *oauth.Source, tokensOK bool) {
	if err := cfg.require(cfg.imapKeys()...); err != nil {
		d.fail("IMAP", "not checked: "+err.Error(), "set them; secrets best as HELPDESK_IMAP_PASSWORD in the service's environment file")
		return
	}
	if cfg.OAuthProvider != "" && !tokensOK {
		d.fail("IMAP", "not checked: no OAuth access token (see the OAuth check)", "")
		return
	}
	facts, err := probeIMAP(ctx, cfg, tokens, cfg.IMAPMailbox, authSample)
	if err != nil {
		var pe *probeError
		if errors.As(err, &pe) {
			d.fail("IMAP", pe.msg, pe.fix)
		} else {
			d.fail("IMAP", err.Error(), "")
		}
		return
	}
	how := map[string]string{helpdesk.TLSImplicit: "IMAPS, certificate checked", helpdesk.TLSStart: "STARTTLS, certificate checked", helpdesk.TLSNone: "plaintext on loopback"}[cfg.IMAPTLS]
	if tokens != nil {
		how += ", OAuth token"
	}
	if !facts.Exists {
		d.fail("IMAP", fmt.Sprintf("logged in at %s as %s (%s), but the mailbox %q does not exist", cfg.IMAPAddr, cfg.IMAPUser, how, cfg.IMAPMailbox),
			fmt.Sprintf("set imap_mailbox to one of: %s (names are case-sensitive)", mailboxList(facts)))
		return
	}
	d.ok("IMAP", fmt.Sprintf("logged in at %s as %s (%s); mailbox %s has %d message(s)", cfg.IMAPAddr, cfg.IMAPUser, how, cfg.IMAPMailbox, facts.Messages))
	doctorAuthServID(d, cfg, facts)
	if cfg.IMAPMoveTo == "" {
		return
	}
	switch {
	case !facts.CanMove:
		d.warn("IMAP", fmt.Sprintf("the server has no MOVE: imap_move_to %q is not used, processed mail stays in %s flagged \\Seen", cfg.IMAPMoveTo, cfg.IMAPMailbox),
			"leave imap_move_to empty, or use a server with MOVE (RFC 6851)")
	case !facts.Has(cfg.IMAPMoveTo):
		d.warn("IMAP", fmt.Sprintf("the move-to folder %q does not exist yet: the gateway creates it at start", cfg.IMAPMoveTo),
			fmt.Sprintf("create it in a mail client if the account may not create folders; existing folders: %s", mailboxList(facts)))
	default:
		d.ok("IMAP", fmt.Sprintf("processed mail is moved to %s", cfg.IMAPMoveTo))
	}
}

// doctorSMTP opens a session as the notifier does (notify.Probe: EHLO, STARTTLS or TLS as
// configured, AUTH when a user is set) and quits without sending anything.
func doctorSMTP(ctx context.Context, d *doctorReport, cfg *Config, tokens *oauth.Source, tokensOK bool) {
	if err := cfg.require("smtp_addr"); err != nil {
		d.fail("SMTP", "not checked: "+err.Error(), "set it, e.g. smtp.example.com:587")
		return
	}
	addr := cfg.SMTPAddr
	if cfg.SMTPTLS == helpdesk.TLSNone && !helpdesk.IsLoopback(addr) {
		d.fail("SMTP", fmt.Sprintf("smtp_tls = none to %s: plaintext is allowed only to a loopback address", addr),
			"use smtp_tls = starttls (port 587) or tls (port 465)")
		return
	}
	how, ok := map[string]string{helpdesk.TLSImplicit: "TLS, certificate checked", helpdesk.TLSStart: "STARTTLS, certificate checked",
		helpdesk.TLSNone: "plaintext on loopback"}[cfg.SMTPTLS]
	if !ok {
		d.fail("SMTP", fmt.Sprintf("smtp_tls = %q", cfg.SMTPTLS), "want starttls (587), tls (465) or none (loopback only)")
		return
	}
	if !cfg.smtpOAuth() {
		tokens = nil
	} else if !tokensOK {
		d.fail("SMTP", "not checked: no OAuth access token (see the OAuth check)", "")
		return
	}
	hostname := "localhost"
	if from, err := cfg.fromAddress(); err == nil {
		_, hostname, _ = strings.Cut(from.Address, "@")
	}
	err := notify.Probe(ctx, notify.Config{Addr: addr, TLS: cfg.SMTPTLS, TLSConfig: withServerName(nil, addr), Hostname: hostname,
		User: cfg.SMTPUser, Password: cfg.SMTPPassword, OAuth: tokens, Timeout: probeTimeout})
	var pe *notify.ProbeError
	switch {
	case err == nil:
	case !errors.As(err, &pe):
		d.fail("SMTP", fmt.Sprintf("SMTP server %s %s: %v", addr, helpdesk.TLSWords(cfg.SMTPTLS), err), connectFix(err, "smtp", addr, cfg.SMTPTLS))
		return
	case pe.Step == notify.ProbeNoAuth:
		d.fail("SMTP", fmt.Sprintf("connected to %s (%s), but the server offers no AUTH for smtp_user %q", addr, how, cfg.SMTPUser),
			"use the submission port (587 with starttls, or 465 with tls), which takes AUTH; or leave smtp_user empty for a relay that needs none")
		return
	case pe.Step == notify.ProbeNoPlain:
		d.fail("SMTP", fmt.Sprintf("connected to %s (%s), but the server offers AUTH %s and the gateway uses PLAIN", addr, how, pe.Mechanisms),
			"use the provider's submission server with AUTH PLAIN (smtp.office365.com:587, smtp.gmail.com:587)")
		return
	case pe.Step == notify.ProbeNoOAuth:
		d.fail("SMTP", fmt.Sprintf("connected to %s (%s), but the server offers AUTH %s and neither XOAUTH2 nor OAUTHBEARER for the OAuth token", addr, how, pe.Mechanisms),
			"use the provider's submission server (smtp.office365.com:587, smtp.gmail.com:587), or set smtp_password for a relay that takes a password")
		return
	case pe.Step == notify.ProbeToken:
		d.fail("SMTP", fmt.Sprintf("SMTP login at %s: no OAuth access token: %v", addr, pe.Err), "see the OAuth check")
		return
	case pe.Step == notify.ProbeLogin && tokens != nil:
		d.fail("SMTP", fmt.Sprintf("SMTP server %s refused the OAuth login as %q: %v", addr, cfg.SMTPUser, pe.Err),
			"a freshly obtained token was refused too: Microsoft 365 needs SMTP AUTH enabled for the mailbox and the SMTP.Send (or SMTP.SendAsApp) permission; smtp_user must be the mailbox the token is for")
		return
	case pe.Step == notify.ProbeLogin:
		d.fail("SMTP", fmt.Sprintf("SMTP server %s refused login as %q: %v", addr, cfg.SMTPUser, pe.Err),
			"check smtp_user and smtp_password (HELPDESK_SMTP_PASSWORD); Microsoft 365 needs SMTP AUTH enabled for the mailbox and, with two-factor sign-in, an app password; Google takes an app password")
		return
	default:
		step := pe.Step
		if step == notify.ProbeHello && cfg.SMTPTLS == helpdesk.TLSStart {
			step = "EHLO and STARTTLS"
		}
		d.fail("SMTP", fmt.Sprintf("SMTP server %s %s: %s: %v", addr, helpdesk.TLSWords(cfg.SMTPTLS), step, pe.Err), connectFix(pe.Err, "smtp", addr, cfg.SMTPTLS))
		return
	}
	auth := "no AUTH (smtp_user empty)"
	if cfg.SMTPUser != "" {
		auth = "AUTH PLAIN as " + cfg.SMTPUser + " accepted"
	}
	if tokens != nil {
		auth = "AUTH with the OAuth token as " + cfg.SMTPUser + " accepted"
	}
	d.ok("SMTP", fmt.Sprintf("connected to %s (%s), %s; nothing sent", addr, how, auth))
}

// connectFix says what to check when a connection to a mail server fails.
func connectFix(err error, kind, addr, mode string) string {
	key := kind + "_addr"
	tlsKey := kind + "_tls"
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var recErr tls.RecordHeaderError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &hostErr):
		name := "see the certificate"
		if c := hostErr.Certificate; c != nil {
			name = strings.Join(append([]string{c.Subject.CommonName}, c.DNSNames...), ", ")
		}
		return fmt.Sprintf("the server's certificate is not for this host name: set %s to a name the certificate carries (%s); certificate checks are never turned off", key, name)
	case errors.As(err, &authErr), errors.As(err, &certErr):
		return fmt.Sprintf("the server's certificate is not trusted by this machine (self-signed, expired, or the clock is wrong): install the CA certificates (apt-get install ca-certificates), check the clock, or use the provider's host name in %s; certificate checks are never turned off", key)
	case errors.As(err, &recErr), strings.Contains(err.Error(), "first record does not look like a TLS handshake"):
		return fmt.Sprintf("the server does not speak TLS right away on this port: set %s to match the port (%s)", tlsKey, portHint(kind))
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("the host name does not resolve: check %s (%s)", key, addr)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing listens on %s: check the host and port of %s (%s)", addr, key, portHint(kind))
	case isTimeout(err):
		return fmt.Sprintf("no answer from %s: check %s and that a firewall lets this machine reach it", addr, key)
	case strings.Contains(strings.ToLower(err.Error()), "starttls"):
		return fmt.Sprintf("the server does not offer STARTTLS on this port: set %s to match the port (%s)", tlsKey, portHint(kind))
	}
	return fmt.Sprintf("check %s and %s (%s = %s; %s)", key, tlsKey, tlsKey, mode, portHint(kind))
}

func portHint(kind string) string {
	if kind == "imap" {
		return "993: tls, 143: starttls"
	}
	return "587: starttls, 465: tls"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// authSample is how many of the newest emails doctor reads the Authentication-Results of.
const authSample = 20

// doctorAuthServID says which authserv-id the receiving server writes in the topmost
// Authentication-Results of the newest emails, whether that field gives a DMARC result, and
// whether authserv_id names it. An id the server never writes holds every staff answer as
// staff_unverified — silently for the staff member, whose answers never reach a customer —
// and leaves customer mail failing DMARC unrecognised.
func doctorAuthServID(d *doctorReport, cfg *Config, facts *ingest.Account) {
	staffAuth := len(cfg.staffAddresses()) > 0 && cfg.RequireAuth
	if len(facts.AuthResults) == 0 {
		if staffAuth {
			d.warn("authserv", fmt.Sprintf("%s has no email to check authserv_id %q against: whether the server writes it is unknown", cfg.IMAPMailbox, cfg.AuthServID),
				"send an email from a staff address to the support address and run doctor again before staff answer by email; "+
					"a running gateway holds that email as staff_no_ticket (and tells its sender): clear it with helpdesk ticket held dismiss ID")
		} else {
			d.ok("authserv", cfg.IMAPMailbox+" has no email yet to read the server's authserv-id from")
		}
		return
	}
	type seen struct {
		id       string // as first written
		n, dmarc int
	}
	var ids []*seen
	noID, noField, noIDDMARC := 0, 0, 0
	for _, values := range facts.AuthResults {
		id, dmarc, found := authres.Topmost(values)
		switch {
		case !found:
			noField++
		case id == "":
			noID++
			if dmarc {
				noIDDMARC++
			}
		default:
			i := slices.IndexFunc(ids, func(s *seen) bool { return strings.EqualFold(s.id, id) })
			if i < 0 {
				ids = append(ids, &seen{id: id})
				i = len(ids) - 1
			}
			ids[i].n++
			if dmarc {
				ids[i].dmarc++
			}
		}
	}
	slices.SortStableFunc(ids, func(a, b *seen) int { return cmp.Compare(b.n, a.n) })
	var parts []string
	for i, s := range ids {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("%d other id(s)", len(ids)-5))
			break
		}
		parts = append(parts, fmt.Sprintf("%s in %d (with a DMARC result in %d)", s.id, s.n, s.dmarc))
	}
	if noID > 0 {
		parts = append(parts, fmt.Sprintf("no authserv-id in %d (with a DMARC result in %d)", noID, noIDDMARC))
	}
	if noField > 0 {
		parts = append(parts, fmt.Sprintf("no Authentication-Results in %d", noField))
	}
	seenText := fmt.Sprintf("the topmost Authentication-Results of the newest %d email(s) of %s: %s",
		len(facts.AuthResults), strings.Join(facts.AuthFrom, " and "), strings.Join(parts, ", "))

	if i := slices.IndexFunc(ids, func(s *seen) bool { return authres.SameID(cfg.AuthServID, s.id) }); i >= 0 {
		s := ids[i]
		if s.dmarc == 0 && staffAuth {
			d.warn("authserv", fmt.Sprintf("authserv_id %s is written by the server, without a DMARC result: %s", s.id, seenText),
				"a staff email then passes only with a DKIM signature aligned with its From domain: have the server add DMARC results (OpenDMARC on Postfix), or make sure staff mail is DKIM-signed by its domain")
			return
		}
		d.ok("authserv", fmt.Sprintf("authserv_id %s is what the server writes: %s", s.id, seenText))
		return
	}
	var fix string
	switch {
	case len(ids) > 0 && ids[0].n >= noID:
		fix = fmt.Sprintf("set authserv_id = %s (HELPDESK_AUTHSERV_ID), the id most of these emails carry — if that is your own receiving server (Gmail: mx.google.com; Postfix with OpenDMARC: its AuthservID); a field from the sender's side proves nothing", ids[0].id)
	case noID > 0:
		fix = "these fields name no server (Exchange Online writes them so): the gateway cannot tell them from forged ones, so no staff email can be verified. With Microsoft 365 as the receiving server, set require_auth = false (and rely on Exchange Online's spoofing protection) or let staff answer on the website; see the provider table in docs/operations.md"
	default:
		fix = "the receiving server writes no Authentication-Results: have it check DKIM and DMARC (OpenDKIM and OpenDMARC on Postfix), or set require_auth = false"
	}
	switch {
	case cfg.AuthServID == "":
		if staffAuth {
			d.warn("authserv", "authserv_id is not set; "+seenText, fix)
		} else {
			d.ok("authserv", "authserv_id is not set (customer mail failing DMARC is not recognised); "+seenText)
		}
	case staffAuth:
		d.fail("authserv", fmt.Sprintf("authserv_id %s is not what the server writes, so every staff email would be held as staff_unverified; %s", cfg.AuthServID, seenText), fix)
	default:
		d.warn("authserv", fmt.Sprintf("authserv_id %s is not what the server writes, so customer mail failing DMARC is not recognised; %s", cfg.AuthServID, seenText), fix)
	}
}

// doctorOAuth checks the OAuth sign-in, when oauth_provider is set: the configuration, the
// token file of a refresh_token flow (there, 0600), and an access token from the provider
// (by the same source the IMAP and SMTP checks then use). It shows the token's state and
// expiry (by now, the command's clock), never a token or secret. ok is false when no token
// could be had.
func doctorOAuth(ctx context.Context, d *doctorReport, cfg *Config, now func() time.Time) (tokens *oauth.Source, ok bool) {
	if cfg.OAuthProvider == "" {
		return nil, false
	}
	src, err := cfg.oauthSource(now)
	if err != nil {
		d.fail("OAuth", err.Error(), "set the oauth_* keys named; docs/operations.md (Microsoft 365 and Google Workspace: OAuth 2.0) lists what each provider needs")
		return nil, false
	}
	file := cfg.oauthTokenFile()
	var signed string
	if src.Flow() == oauth.FlowRefreshToken {
		c, err := oauth.ReadConsent(file)
		switch {
		case errors.Is(err, os.ErrNotExist):
			d.fail("OAuth", fmt.Sprintf("%s, %s: no sign-in yet (%s does not exist)", cfg.OAuthProvider, src.Flow(), file),
				"run `"+oauth.LoginCommand+"` as the gateway's user (sudo -u helpdesk ...): it shows an address and a code to sign in with, once")
			return src, false
		case err != nil:
			d.fail("OAuth", err.Error(), "run `"+oauth.LoginCommand+"` to write it anew")
			return src, false
		}
		signed = fmt.Sprintf("signed in %s", c.SignedIn.In(helpdesk.Amsterdam()).Format("2006-01-02 15:04 MST"))
		if !c.Rotated.IsZero() {
			signed += fmt.Sprintf(", refresh token renewed by the provider %s", c.Rotated.In(helpdesk.Amsterdam()).Format("2006-01-02 15:04 MST"))
		}
		signed += fmt.Sprintf(" (%s, mode %04o)", file, c.Mode)
		if c.Mode&0o077 != 0 {
			d.warn("OAuth", fmt.Sprintf("%s can be read by other users (mode %04o): it holds the refresh token to the mailbox", file, c.Mode),
				"chmod 600 "+file)
		}
	}
	tctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if _, err := src.Token(tctx); err != nil {
		fix := ""
		if !errors.Is(err, oauth.ErrRefused) {
			fix = "the provider could not be reached: check the network and oauth_token_url; the gateway keeps trying"
		}
		d.fail("OAuth", err.Error(), fix)
		return src, false
	}
	st := src.State()
	expiry := "no expiry given"
	if !st.Expiry.IsZero() {
		expiry = fmt.Sprintf("expires %s (in %d min); renewed before then", st.Expiry.In(helpdesk.Amsterdam()).Format("15:04 MST"), int(st.Expiry.Sub(now()).Round(time.Minute)/time.Minute))
	}
	detail := fmt.Sprintf("%s, %s: access token obtained, %s", cfg.OAuthProvider, src.Flow(), expiry)
	if signed != "" {
		detail += "; " + signed
	}
	d.ok("OAuth", detail)
	return src, true
}
