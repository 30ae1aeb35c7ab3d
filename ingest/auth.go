package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/infobits/helpdesk/internal/oauth"
)

// tokenError: the OAuth access token could not be had (the provider refused, or could not be
// reached); the IMAP server was not asked.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// refusal is the IMAP server's refusal of a login; how names the mechanism (and the server's
// OAuth error status), again is true when a fresh OAuth token was refused too.
type refusal struct {
	ie    *imap.Error
	how   string
	oauth bool
}

func (r *refusal) Error() string { return r.ie.Error() }
func (r *refusal) Unwrap() error { return r.ie }

// login signs in to the IMAP server: LOGIN with the password, or, with cfg.OAuth, AUTHENTICATE
// with an access token — OAUTHBEARER (RFC 7628) where the server offers it, else XOAUTH2. A
// refused token is reported to the source and a fresh one tried once more on the same
// connection: an access token can be revoked, or the clocks disagree about its expiry.
// Errors: *tokenError, *refusal (the server's NO), or the connection's.
func login(ctx context.Context, c *imapclient.Client, cfg *Config) error {
	if cfg.OAuth == nil {
		err := c.Login(cfg.User, cfg.Password).Wait()
		var ie *imap.Error
		if errors.As(err, &ie) {
			return &refusal{ie: ie, how: "LOGIN"}
		}
		return err
	}
	mech, err := oauth.Mechanism(func(m string) bool { return c.Caps().Has(imap.Cap("AUTH=" + m)) })
	if err != nil {
		return &refusal{ie: &imap.Error{Type: imap.StatusResponseTypeNo, Text: err.Error()}, how: "OAuth", oauth: true}
	}
	host, port, _ := net.SplitHostPort(cfg.Addr)
	portN, _ := strconv.Atoi(port)
	for attempt := 1; ; attempt++ {
		tok, err := cfg.OAuth.Token(ctx)
		if err != nil {
			return &tokenError{err}
		}
		sc := oauth.NewSASLClient(mech, cfg.User, tok, host, portN)
		err = c.Authenticate(sc)
		var ie *imap.Error
		if !errors.As(err, &ie) {
			return err
		}
		cfg.OAuth.Refused(tok)
		if attempt == 2 {
			return &refusal{ie: ie, how: sc.Describe(), oauth: true}
		}
		cfg.Logger.Info("imap: the server refused the OAuth access token; trying a new one", "mechanism", sc.Describe(),
			"server", ie.Text)
	}
}

// loginFix says what to check after the server refused the login.
func loginFix(r *refusal) string {
	if !r.oauth {
		return "check the IMAP user and password"
	}
	return fmt.Sprintf("a freshly obtained OAuth token was refused too (%s): check imap_user, and that the app may use this mailbox "+
		"(Microsoft 365: the IMAP.AccessAsApp or IMAP.AccessAsUser.All permission with admin consent, and for app-only access the "+
		"service principal's mailbox permission; Google: IMAP enabled for the account)", r.how)
}
