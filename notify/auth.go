package notify

import (
	"context"
	"errors"
	"net"
	"strconv"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/infobits/helpdesk/internal/oauth"
)

// tokenError: the OAuth access token could not be had; the SMTP server was not asked.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "OAuth access token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// authenticate logs in on an open session: AUTH PLAIN with the password, or, with cfg.OAuth,
// with an access token — OAUTHBEARER (RFC 7628) where offered, else XOAUTH2. A token the
// server refuses for good (5xx) is reported to the source and a fresh one tried once more on
// the same session. Errors: *tokenError, oauth.ErrNoMechanism, or the server's.
func authenticate(ctx context.Context, cl *client, cfg Config) error {
	if cfg.OAuth == nil {
		return cl.c.Auth(sasl.NewPlainClient("", cfg.User, cfg.Password))
	}
	mech, err := oauth.Mechanism(cl.c.SupportsAuth)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(cfg.Addr)
	portN, _ := strconv.Atoi(port)
	for attempt := 1; ; attempt++ {
		tok, err := cfg.OAuth.Token(ctx)
		if err != nil {
			return &tokenError{err}
		}
		err = cl.c.Auth(oauth.NewSASLClient(mech, cfg.User, tok, host, portN))
		var serr *smtp.SMTPError
		if err == nil || !errors.As(err, &serr) || serr.Temporary() {
			return err
		}
		cfg.OAuth.Refused(tok)
		if attempt == 2 {
			return err
		}
		cfg.Logger.Info("smtp: the server refused the OAuth access token; trying a new one", "mechanism", mech, "reply", replyText(serr))
	}
}
