package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/internal/oauth"
)

// loginTimeout bounds the wait for the person to sign in (Microsoft's codes last 15 minutes).
const loginTimeout = 20 * time.Minute

// runOAuthLogin runs the one-time consent of oauth_flow = refresh_token and saves the refresh
// token beside the database; then it logs in to the IMAP server with it, to show the consent
// is the mailbox's. It runs in the CLI process, never over the control socket: it needs the
// operator's terminal, and a running gateway reads the new token file at its next login.
func runOAuthLogin(e *env, args []string) error {
	fs, _ := newFlags(e, "oauth login", "[-config FILE] [-port N]")
	port := fs.Int("port", 0, "browser sign-in (Google): the loopback `port` the browser returns to (0: any free port), for ssh -L PORT:127.0.0.1:PORT")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	cfg, err := e.config(args)
	if err != nil {
		return err
	}
	switch {
	case cfg.OAuthProvider == "":
		return errors.New("oauth_provider is not set: set it (microsoft, google or generic) with oauth_client_id first; docs/operations.md (Microsoft 365 and Google Workspace: OAuth 2.0) walks through the app registration")
	case cfg.OAuthFlow == oauth.FlowClientCredentials:
		return errors.New("oauth_flow = client_credentials needs no sign-in: the app signs in with its client secret; `helpdesk doctor` checks it")
	}
	oc, err := cfg.oauthConfig()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, loginTimeout)
	defer cancel()
	var pasted chan string
	if e.stdin != nil {
		pasted = make(chan string)
		go func() {
			defer close(pasted)
			sc := bufio.NewScanner(e.stdin)
			for sc.Scan() {
				select {
				case pasted <- sc.Text():
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	who := "the support mailbox's account"
	if cfg.IMAPUser != "" {
		who = cfg.IMAPUser
	}
	show := func(p oauth.Prompt) {
		if p.Code != "" {
			until := ""
			if !p.Expires.IsZero() {
				until = fmt.Sprintf(" (valid until %s)", p.Expires.In(time.Local).Format("15:04"))
			}
			fmt.Fprintf(e.stdout, "To sign in, open\n\n  %s\n\nand enter the code %s%s.\nSign in as %s and accept the permissions. Waiting…\n",
				terminalSafe(p.URL), terminalSafe(p.Code), until, terminalSafe(who))
			return
		}
		fmt.Fprintf(e.stdout, "To sign in, open this address in a browser and sign in as %s:\n\n  %s\n\n"+
			"The browser then returns to %s on this machine. From a browser on another machine, forward the port first\n"+
			"(ssh -L %s), or paste here the address the browser shows when it cannot load that page.\nWaiting…\n",
			terminalSafe(who), terminalSafe(p.URL), p.Redirect, sshForward(p.Redirect))
	}
	if _, err := oauth.Login(ctx, oc, oauth.LoginOptions{Show: show, Pasted: pasted, Port: *port}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "signed in: the refresh token is in %s (mode 0600, for this user only; not in the database or its backups)\n", cfg.oauthTokenFile())
	if cfg.IMAPAddr != "" && cfg.IMAPUser != "" {
		src, err := cfg.oauthSource(e.now)
		if err != nil {
			return err
		}
		a, err := ingest.Probe(ctx, ingest.Config{Addr: cfg.IMAPAddr, User: cfg.IMAPUser, OAuth: src, TLS: cfg.IMAPTLS,
			TLSConfig: withServerName(nil, cfg.IMAPAddr), Mailbox: cfg.IMAPMailbox, DialTimeout: 15 * time.Second, CommandTimeout: probeTimeout}, 0)
		if err != nil {
			return fmt.Errorf("the sign-in worked, but the IMAP login with it did not: %w; run `helpdesk doctor` for what to check", err)
		}
		fmt.Fprintf(e.stdout, "IMAP: logged in at %s as %s with the new token; mailbox %s has %d message(s)\n",
			cfg.IMAPAddr, cfg.IMAPUser, cfg.IMAPMailbox, a.Messages)
	}
	fmt.Fprintln(e.stdout, "A running gateway uses the new sign-in at its next login; nothing to restart.")
	return nil
}

// sshForward is the -L argument of ssh that brings redirect's port to a remote browser.
func sshForward(redirect string) string {
	var port string
	if i := len("http://127.0.0.1:"); len(redirect) > i {
		port = redirect[i:]
		if n := len(port); n > 0 && port[n-1] == '/' {
			port = port[:n-1]
		}
	}
	return port + ":127.0.0.1:" + port + " this-server"
}
