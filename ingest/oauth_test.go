package ingest_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/internal/oauth"
	"github.com/infobits/helpdesk/internal/oauth/oauthtest"
)

// clock is a test clock shared by the gateway's token source and the token server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// oauthPeers: a token server and a Dovecot that checks bearer tokens against its
// introspection endpoint, offering mechs.
func oauthPeers(t *testing.T, mechs ...string) (*oauthtest.Server, *server, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	ts := oauthtest.New(t, "helpdesk")
	ts.SetClock(clk.now)
	d := imaptest.NewDovecotOAuth2(t, imaptest.OAuth2{IntrospectionURL: ts.IntrospectURL(), Mechanisms: mechs})
	return ts, &server{addr: d.Addr, user: d.User, pass: d.Password, dovecot: d}, clk
}

func oauthSource(t *testing.T, ts *oauthtest.Server, clk *clock, flow string) (*oauth.Source, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "helpdesk.db.oauth")
	src, err := oauth.New(oauth.Config{Provider: oauth.Generic, Flow: flow, ClientID: ts.ClientID, ClientSecret: ts.ClientSecret,
		TokenURL: ts.TokenURL(), TokenFile: file, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return src, file
}

// consent writes the token file as `helpdesk oauth login` would have.
func consent(t *testing.T, ts *oauthtest.Server, file string) {
	t.Helper()
	err := oauth.WriteConsent(file, &oauth.Consent{Provider: oauth.Generic, ClientID: ts.ClientID, TokenURL: ts.TokenURL(),
		SignedIn: time.Now(), RefreshToken: ts.IssueRefresh()})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOAuthLogin: the poller signs in to Dovecot with an OAuth access token, which Dovecot
// checks against the token server's introspection endpoint, by each flow and mechanism.
func TestOAuthLogin(t *testing.T) {
	for _, tc := range []struct{ flow, mech string }{
		{oauth.FlowClientCredentials, "xoauth2"},
		{oauth.FlowClientCredentials, "oauthbearer"},
		{oauth.FlowRefreshToken, "xoauth2"},
		{oauth.FlowRefreshToken, "oauthbearer"},
	} {
		t.Run(tc.flow+"/"+tc.mech, func(t *testing.T) {
			ts, srv, clk := oauthPeers(t, tc.mech)
			src, file := oauthSource(t, ts, clk, tc.flow)
			if tc.flow == oauth.FlowRefreshToken {
				consent(t, ts, file)
			}
			f := newFixtureOn(t, srv, func(c *ingest.Config) { c.Password, c.OAuth = "", src })
			f.deliver(buildMail(mailOpts{from: "Piet <piet@bakkerijdevries.nl>", subject: "Kassa start niet op", msgID: "q1@bakkerij", body: "Help."}))
			f.once()
			if n := len(f.tickets()); n != 1 {
				t.Fatalf("tickets = %d, want 1", n)
			}
			grant := map[string]string{oauth.FlowClientCredentials: "client_credentials", oauth.FlowRefreshToken: "refresh_token"}[tc.flow]
			if g := ts.Grants(grant); g != 1 {
				t.Errorf("%s grants = %d, want 1", grant, g)
			}
			if p := ts.Presented(); len(p) != 1 {
				t.Errorf("tokens presented to Dovecot's introspection: %d, want 1", len(p))
			}
		})
	}
}

// TestOAuthRenewal: an access token is renewed before it expires (never presented in its last
// minutes), one that the server refuses is replaced once on the same login, a rotated refresh
// token replaces the file's, and a revoked consent stops the poller with one error naming the
// command that fixes it.
func TestOAuthRenewal(t *testing.T) {
	for _, mech := range []string{"xoauth2", "oauthbearer"} {
		t.Run(mech, func(t *testing.T) { testOAuthRenewal(t, mech) })
	}
}

func testOAuthRenewal(t *testing.T, mech string) {
	ts, srv, clk := oauthPeers(t, mech)
	ts.SetRotate(true)
	src, file := oauthSource(t, ts, clk, oauth.FlowRefreshToken)
	consent(t, ts, file)
	first, _ := oauth.ReadConsent(file)
	f := newFixtureOn(t, srv, func(c *ingest.Config) { c.Password, c.OAuth = "", src })

	f.once()
	if g := ts.Grants("refresh_token"); g != 1 {
		t.Fatalf("refresh grants = %d, want 1", g)
	}
	// The provider rotated the refresh token: the file has the new one, 0600.
	rotated, err := oauth.ReadConsent(file)
	if err != nil || rotated.RefreshToken == first.RefreshToken || rotated.Mode != 0o600 || rotated.Rotated.IsZero() {
		t.Fatalf("after rotation: %+v, %v", rotated, err)
	}

	// 50 minutes into the hour: the token in hand is still good for 10 minutes, more than
	// its margin: reused.
	clk.add(50 * time.Minute)
	f.once()
	if g := ts.Grants("refresh_token"); g != 1 {
		t.Errorf("refresh grants at 50 min = %d, want 1 (token reused)", g)
	}
	// 56 minutes: 4 minutes left, inside the margin: a new token before the login, and the
	// server never saw the old one refused.
	clk.add(6 * time.Minute)
	f.once()
	if g := ts.Grants("refresh_token"); g != 2 {
		t.Errorf("refresh grants at 56 min = %d, want 2 (renewed before expiry)", g)
	}
	p := ts.Presented()
	if len(p) != 3 || p[1] != p[0] || p[2] == p[1] {
		t.Errorf("tokens presented: %d, want the first twice, then a new one", len(p))
	}

	// The provider ends the access token early (the clocks disagree, or it was revoked):
	// Dovecot refuses it, the poller gets a new one and logs in on the same connection.
	ts.EndAccessTokens()
	f.once()
	if g := ts.Grants("refresh_token"); g != 3 {
		t.Errorf("refresh grants after the token ended = %d, want 3", g)
	}
	if p := ts.Presented(); len(p) != 5 {
		t.Errorf("tokens presented after the token ended: %d, want 5 (the refused one, then the new one)", len(p))
	}

	// An expired access token (past its expiry by the server's clock) is never presented.
	clk.add(2 * time.Hour)
	before := len(ts.Presented())
	f.once()
	if g, p := ts.Grants("refresh_token"), ts.Presented(); g != 4 || len(p) != before+1 {
		t.Errorf("after expiry: grants %d, presented %d more; want 4 and 1", g, len(p)-before)
	}

	// The consent is revoked: one clear error, naming the command that fixes it, with no
	// secret in it.
	ts.RevokeConsent()
	ts.EndAccessTokens()
	err = f.poller.Once(context.Background())
	if !errors.Is(err, ingest.ErrLoginRefused) || !errors.Is(err, oauth.ErrConsent) || !strings.Contains(err.Error(), "`helpdesk oauth login`") ||
		!strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("revoked consent: %v", err)
	}
	for _, s := range ts.Secrets() {
		if strings.Contains(err.Error(), s) {
			t.Errorf("the error carries a secret: %v", err)
		}
	}
	// Run stops with it when no session ever succeeded (serve refuses to start).
	f2 := newFixtureOn(t, srv, func(c *ingest.Config) { c.Password, c.OAuth = "", src })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f2.poller.Run(ctx); !errors.Is(err, oauth.ErrConsent) {
		t.Errorf("Run with a revoked consent = %v, want the consent error", err)
	}
	if slices.Contains(ts.Presented()[before+1:], "") {
		t.Error("an empty token was presented")
	}
}
