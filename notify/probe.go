package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/internal/oauth"
)

// The steps of opening an SMTP session, as ProbeError names them (the first four are the
// worker's too).
const (
	ProbeConnect  = "connect"
	ProbeTLS      = "TLS handshake"
	ProbeStartTLS = "STARTTLS"
	ProbeHello    = "EHLO"                           // with STARTTLS, the TLS handshake and the certificate check happen here
	ProbeNoAuth   = "no AUTH"                        // a user is set, but the server offers no AUTH
	ProbeNoPlain  = "no AUTH PLAIN"                  // the server offers AUTH, but not PLAIN, the mechanism the worker uses
	ProbeNoOAuth  = "no AUTH XOAUTH2 or OAUTHBEARER" // OAuth is configured, but the server offers neither
	ProbeToken    = "token"                          // the OAuth access token could not be had
	ProbeLogin    = "login"                          // AUTH refused
)

// ProbeError is a failed step of Probe; Mechanisms are the AUTH mechanisms the server offers
// (ProbeNoPlain).
type ProbeError struct {
	Step       string
	Mechanisms string
	Err        error
}

func (e *ProbeError) Error() string {
	if e.Err == nil {
		return "smtp " + e.Step
	}
	return fmt.Sprintf("smtp %s: %v", e.Step, e.Err)
}

func (e *ProbeError) Unwrap() error { return e.Err }

// Probe opens an SMTP session as the worker does — the same dial: cfg's address, TLS mode,
// certificate check and EHLO name — logs in with AUTH PLAIN when cfg.User is set, and quits
// without sending anything. A failure is a *ProbeError naming the step. cfg.Timeout (default
// 30 s) bounds the whole session; ctx ends it early. It blocks.
func Probe(ctx context.Context, cfg Config) error {
	if !helpdesk.ValidTLS(cfg.TLS) {
		return &ProbeError{Step: ProbeConnect, Err: fmt.Errorf("smtp tls mode %q: want tls, starttls or none", cfg.TLS)}
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, 30*time.Second)
	if cfg.Hostname == "" {
		if cfg.From != nil {
			_, cfg.Hostname, _ = strings.Cut(cfg.From.Address, "@")
		}
		cfg.Hostname = cmp.Or(cfg.Hostname, "localhost")
	}
	cl, err := open(ctx, cfg)
	if err != nil {
		var se *stepError
		if errors.As(err, &se) {
			return &ProbeError{Step: se.step, Err: se.err}
		}
		return err
	}
	if cfg.User != "" {
		ok, mechs := cl.c.Extension("AUTH")
		switch {
		case !ok:
			cl.abort()
			return &ProbeError{Step: ProbeNoAuth}
		case cfg.OAuth == nil && !cl.c.SupportsAuth("PLAIN"):
			cl.abort()
			return &ProbeError{Step: ProbeNoPlain, Mechanisms: mechs}
		}
		if err := authenticate(ctx, cl, cfg); err != nil {
			cl.abort()
			var te *tokenError
			switch {
			case errors.Is(err, oauth.ErrNoMechanism):
				return &ProbeError{Step: ProbeNoOAuth, Mechanisms: mechs, Err: err}
			case errors.As(err, &te):
				return &ProbeError{Step: ProbeToken, Err: te.err}
			}
			return &ProbeError{Step: ProbeLogin, Err: err}
		}
	}
	_ = cl.c.Quit()
	cl.stop()
	cl.c.Close()
	return nil
}
