package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infobits/helpdesk/internal/oauth"
	"github.com/infobits/helpdesk/internal/oauth/oauthtest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	t.Cleanup(cancel)
	return ctx
}

func genericConfig(ts *oauthtest.Server, file string) oauth.Config {
	return oauth.Config{Provider: oauth.Generic, ClientID: ts.ClientID, ClientSecret: ts.ClientSecret,
		TokenURL: ts.TokenURL(), DeviceURL: ts.DeviceURL(), TokenFile: file}
}

// TestCheck: every mistake of the configuration is named at once, with its key.
func TestCheck(t *testing.T) {
	err := oauth.Config{Provider: "outlook", Flow: "password", TokenURL: "http://login.example.com/token"}.Check()
	for _, want := range []string{`oauth_provider = "outlook"`, `oauth_flow = "password"`, "oauth_client_id is not set", "oauth_token_url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v; want it to name %s", err, want)
		}
	}
	err = oauth.Config{Provider: oauth.Microsoft, Flow: oauth.FlowClientCredentials, ClientID: "x"}.Check()
	if err == nil || !strings.Contains(err.Error(), "oauth_client_secret") || !strings.Contains(err.Error(), "oauth_tenant") {
		t.Errorf("Check of app-only without secret and tenant = %v", err)
	}
	if err := (oauth.Config{Provider: oauth.Google, ClientID: "x", TokenFile: "f"}).Check(); err != nil {
		t.Errorf("Check of Google refresh_token = %v", err)
	}
}

// TestDeviceLogin: the device flow (RFC 8628) shows the address and code, waits for the
// person's approval and writes the refresh token file, mode 0600; a declined sign-in says so.
func TestDeviceLogin(t *testing.T) {
	ts := oauthtest.New(t, "support@infobits.example")
	file := filepath.Join(t.TempDir(), "helpdesk.db.oauth")
	var shown oauth.Prompt
	c, err := oauth.Login(ctxT(t), genericConfig(ts, file), oauth.LoginOptions{Show: func(p oauth.Prompt) {
		shown = p
		go ts.Approve(p.Code)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if shown.URL != ts.URL+"/devicelogin" || shown.Code == "" || shown.Expires.IsZero() {
		t.Errorf("prompt = %+v", shown)
	}
	got, err := oauth.ReadConsent(file)
	if err != nil || got.RefreshToken != c.RefreshToken || got.RefreshToken == "" || got.Mode != 0o600 || got.ClientID != ts.ClientID {
		t.Fatalf("token file = %+v, %v", got, err)
	}
	// The token works.
	src, _ := oauth.New(genericConfig(ts, file))
	tok, err := src.Token(ctxT(t))
	if _, ok := ts.Active(tok); err != nil || !ok {
		t.Errorf("token after login: %v, active %v", err, ok)
	}
}

// TestBrowserLogin: the browser flow (RFC 8252, PKCE) — Google's, since its device flow
// refuses the mail scope — by the loopback redirect and by a pasted address; a declined
// sign-in ends with that reason.
func TestBrowserLogin(t *testing.T) {
	ts := oauthtest.New(t, "support@infobits.example")
	cfg := oauth.Config{Provider: oauth.Google, ClientID: ts.ClientID, ClientSecret: ts.ClientSecret,
		TokenURL: ts.TokenURL(), AuthURL: ts.AuthURL()}
	if f := oauth.LoginFlow(cfg); f != "browser" {
		t.Fatalf("LoginFlow(google) = %s", f)
	}
	browse := func(u string) *http.Response {
		resp, err := http.Get(u) // follows the redirect to the loopback listener
		if err != nil {
			t.Errorf("browser: %v", err)
			return nil
		}
		resp.Body.Close()
		return resp
	}
	t.Run("redirect", func(t *testing.T) {
		cfg.TokenFile = filepath.Join(t.TempDir(), "helpdesk.db.oauth")
		if _, err := oauth.Login(ctxT(t), cfg, oauth.LoginOptions{Show: func(p oauth.Prompt) {
			if !strings.HasPrefix(p.Redirect, "http://127.0.0.1:") || !strings.Contains(p.URL, "code_challenge=") {
				t.Errorf("prompt = %+v", p)
			}
			go browse(p.URL)
		}}); err != nil {
			t.Fatal(err)
		}
		if c, err := oauth.ReadConsent(cfg.TokenFile); err != nil || c.RefreshToken == "" || ts.Grants("authorization_code") != 1 {
			t.Fatalf("after the browser sign-in: %+v, %v", c, err)
		}
	})
	t.Run("pasted", func(t *testing.T) {
		cfg.TokenFile = filepath.Join(t.TempDir(), "helpdesk.db.oauth")
		pasted := make(chan string, 2)
		if _, err := oauth.Login(ctxT(t), cfg, oauth.LoginOptions{Pasted: pasted, Show: func(p oauth.Prompt) {
			// The browser is elsewhere: it shows an error page at the loopback address, which
			// the person copies into the terminal.
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Get(p.URL)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			pasted <- "not an address with a code"
			pasted <- resp.Header.Get("Location")
		}}); err != nil {
			t.Fatal(err)
		}
		if _, err := oauth.ReadConsent(cfg.TokenFile); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("declined", func(t *testing.T) {
		ts.SetApprove(false)
		defer ts.SetApprove(true)
		cfg.TokenFile = filepath.Join(t.TempDir(), "helpdesk.db.oauth")
		_, err := oauth.Login(ctxT(t), cfg, oauth.LoginOptions{Show: func(p oauth.Prompt) { go browse(p.URL) }})
		if !errors.Is(err, oauth.ErrRefused) || !strings.Contains(err.Error(), "declined") {
			t.Fatalf("declined sign-in: %v", err)
		}
		if _, err := os.Stat(cfg.TokenFile); err == nil {
			t.Error("a declined sign-in wrote the token file")
		}
	})
}

// TestRotationShared: the gateway and doctor (two processes, here two sources) refresh with
// the same file while the provider rotates the refresh token and spends the old one: the lock
// and the re-read keep both working, and the file always holds the newest.
func TestRotationShared(t *testing.T) {
	ts := oauthtest.New(t, "support@infobits.example")
	ts.SetRotate(true)
	file := filepath.Join(t.TempDir(), "helpdesk.db.oauth")
	if err := oauth.WriteConsent(file, &oauth.Consent{Provider: oauth.Generic, ClientID: ts.ClientID, TokenURL: ts.TokenURL(),
		RefreshToken: ts.IssueRefresh()}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 2 {
		src, err := oauth.New(genericConfig(ts, file))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range 10 {
				tok, err := src.Token(ctxT(t))
				if err != nil {
					errs <- err
					return
				}
				src.Refused(tok) // force a refresh next time
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("refresh: %v", err)
	}
	if g := ts.Grants("refresh_token"); g != 20 {
		t.Errorf("refresh grants = %d, want 20", g)
	}
	// The file's refresh token is the live one.
	src, _ := oauth.New(genericConfig(ts, file))
	if _, err := src.Token(ctxT(t)); err != nil {
		t.Errorf("after the rotations: %v", err)
	}
}

// TestConsentErrors: no file, a file of another app, a revoked consent: each an ErrConsent
// that names the command.
func TestConsentErrors(t *testing.T) {
	ts := oauthtest.New(t, "support@infobits.example")
	file := filepath.Join(t.TempDir(), "helpdesk.db.oauth")
	src, _ := oauth.New(genericConfig(ts, file))
	check := func(what, want string) {
		t.Helper()
		_, err := src.Token(ctxT(t))
		if !errors.Is(err, oauth.ErrConsent) || !errors.Is(err, oauth.ErrRefused) || !strings.Contains(err.Error(), "`helpdesk oauth login`") ||
			!strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want ErrConsent naming the command and %q", what, err, want)
		}
	}
	check("no file", "no OAuth sign-in yet")
	oauth.WriteConsent(file, &oauth.Consent{Provider: oauth.Generic, ClientID: "another-app", TokenURL: ts.TokenURL(), RefreshToken: ts.IssueRefresh()})
	check("another app's file", "was given to client another-app")
	oauth.WriteConsent(file, &oauth.Consent{Provider: oauth.Generic, ClientID: ts.ClientID, TokenURL: ts.TokenURL(), RefreshToken: ts.IssueRefresh()})
	ts.RevokeConsent()
	check("revoked", "invalid_grant")
}
