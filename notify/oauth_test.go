package notify_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/internal/oauth"
	"github.com/infobits/helpdesk/internal/oauth/oauthtest"
	"github.com/infobits/helpdesk/notify"
	"github.com/infobits/helpdesk/notify/smtpsink"
)

// TestOAuthSubmission: the worker logs in to the submission server with an OAuth access
// token, which the server checks against the token server's introspection endpoint; a token
// the server refuses is replaced once, and a revoked consent keeps the mail queued with an
// error naming the command that fixes it.
func TestOAuthSubmission(t *testing.T) {
	for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run(mech, func(t *testing.T) {
			ts := oauthtest.New(t, smtpUser)
			file := filepath.Join(t.TempDir(), "helpdesk.db.oauth")
			if err := oauth.WriteConsent(file, &oauth.Consent{Provider: oauth.Generic, ClientID: ts.ClientID, TokenURL: ts.TokenURL(),
				SignedIn: start, RefreshToken: ts.IssueRefresh()}); err != nil {
				t.Fatal(err)
			}
			clk := &clock{t: start}
			ts.SetClock(clk.Now)
			src, err := oauth.New(oauth.Config{Provider: oauth.Generic, ClientID: ts.ClientID, ClientSecret: ts.ClientSecret,
				TokenURL: ts.TokenURL(), TokenFile: file, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, smtpsink.Options{User: smtpUser, Password: "not-this-one", AllowInsecureAuth: true,
				Bearer: ts.Bearer, BearerMechanisms: []string{mech}},
				func(c *notify.Config) { c.User, c.OAuth = smtpUser, src })

			e.enqueue(t, ackNote(1, custAddr))
			if res := e.drain(t, false); res.Sent != 1 {
				t.Fatalf("Drain = %+v", res)
			}
			if m := e.wait(t, 1)[0]; m.User != smtpUser {
				t.Errorf("sent as %q, want %q", m.User, smtpUser)
			}

			// The access token ends early: the server refuses it, the worker takes a new one.
			ts.EndAccessTokens()
			e.enqueue(t, ackNote(2, custAddr))
			if res := e.drain(t, false); res.Sent != 1 {
				t.Fatalf("Drain after the token ended = %+v", res)
			}
			if g := ts.Grants("refresh_token"); g != 2 {
				t.Errorf("refresh grants = %d, want 2", g)
			}

			// Revoked: nothing sent, the notification stays queued, the error says what to run.
			ts.RevokeConsent()
			id := e.enqueue(t, ackNote(3, custAddr))[0]
			_, err = e.worker.Drain(ctxT(t), false)
			if !errors.Is(err, oauth.ErrConsent) || !strings.Contains(err.Error(), "`helpdesk oauth login`") {
				t.Fatalf("Drain with a revoked consent: %v", err)
			}
			for _, s := range ts.Secrets() {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error carries a secret: %v", err)
				}
			}
			if got := e.note(t, id); got.Status != helpdesk.NotifyQueued || got.Attempts != 0 {
				t.Errorf("notification %+v; want queued, no attempt", got)
			}
			if n := len(e.sink.Messages()); n != 2 {
				t.Errorf("%d messages, want 2", n)
			}
		})
	}
}
