package oauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Prompt is what Login asks the person to do.
type Prompt struct {
	// Device flow (RFC 8628): open URL on any device and enter Code.
	// Browser flow (RFC 8252): open URL in a browser; it comes back to Redirect, a loopback
	// address of this machine (through an SSH tunnel from another one), or the person
	// pastes the address the browser ended at.
	URL, Code, Redirect string
	Expires             time.Time // zero: not said
}

// LoginOptions tune Login.
type LoginOptions struct {
	Show func(Prompt) // called once, before Login waits
	// Pasted delivers addresses the person pasted (browser flow): the address the browser
	// ended at, with ?code= and &state=. Nil: only the loopback redirect.
	Pasted <-chan string
	// Port is the loopback port of the browser flow's redirect; 0: any free port.
	Port int
}

// LoginFlow says which consent flow Login uses for cfg: "device" (RFC 8628) for Microsoft
// and a generic provider with a device endpoint, "browser" (RFC 8252, authorization code
// with PKCE on a loopback redirect) for Google — whose device flow refuses the mail scope —
// and a generic provider with only an authorization endpoint.
func LoginFlow(cfg Config) string {
	switch {
	case cfg.Provider == Google:
		return "browser"
	case cfg.Provider == Generic && cfg.DeviceURL == "" && cfg.AuthURL != "":
		return "browser"
	}
	return "device"
}

// Login runs a person's one-time consent and writes the refresh token to cfg.TokenFile. It
// blocks until the person consents or refuses, the code expires or ctx ends.
func Login(ctx context.Context, cfg Config, opt LoginOptions) (*Consent, error) {
	cfg.Flow = FlowRefreshToken
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if opt.Show == nil {
		opt.Show = func(Prompt) {}
	}
	conf := cfg.oauth2()
	hctx := cfg.httpContext(ctx)
	var tok *oauth2.Token
	var err error
	if LoginFlow(cfg) == "browser" {
		tok, err = browserLogin(hctx, cfg, conf, opt)
	} else {
		tok, err = deviceLogin(hctx, cfg, conf, opt)
	}
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		hint := "check oauth_scopes"
		if cfg.Provider == Microsoft {
			hint = "oauth_scopes must include offline_access (the default does)"
		}
		return nil, refusedErr("the provider gave an access token but no refresh token: %s", hint)
	}
	c := &Consent{Provider: cfg.Provider, ClientID: cfg.ClientID, TokenURL: conf.Endpoint.TokenURL, Scopes: conf.Scopes,
		SignedIn: cfg.Now().UTC(), RefreshToken: tok.RefreshToken}
	unlock, err := lockFile(ctx, cfg.TokenFile)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := WriteConsent(cfg.TokenFile, c); err != nil {
		return nil, err
	}
	return c, nil
}

func deviceLogin(ctx context.Context, cfg Config, conf *oauth2.Config, opt LoginOptions) (*oauth2.Token, error) {
	if conf.Endpoint.DeviceAuthURL == "" {
		return nil, errors.New("no device authorization endpoint: set oauth_device_url")
	}
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		return nil, (&Source{cfg: cfg}).explainAt(err, "device authorization", conf.Endpoint.DeviceAuthURL)
	}
	if da.VerificationURI == "" || da.UserCode == "" || da.DeviceCode == "" {
		return nil, errors.New("the device authorization endpoint gave no verification address or code")
	}
	opt.Show(Prompt{URL: da.VerificationURI, Code: da.UserCode, Expires: da.Expiry})
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		var re *oauth2.RetrieveError
		switch {
		case errors.As(err, &re) && re.ErrorCode == "access_denied":
			return nil, refusedErr("the sign-in was declined (access_denied); run `%s` again to retry", LoginCommand)
		case errors.As(err, &re) && re.ErrorCode == "expired_token", errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return nil, refusedErr("the code expired before the sign-in was completed; run `%s` again", LoginCommand)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("sign-in not completed: %w", context.Cause(ctx))
		}
		return nil, (&Source{cfg: cfg}).explain(err, "device code")
	}
	return tok, nil
}

// browserLogin runs the authorization code grant with PKCE (RFC 7636) on a loopback redirect
// (RFC 8252 §7.3).
func browserLogin(ctx context.Context, cfg Config, conf *oauth2.Config, opt LoginOptions) (*oauth2.Token, error) {
	if conf.Endpoint.AuthURL == "" {
		return nil, errors.New("no authorization endpoint: set oauth_auth_url")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(opt.Port)))
	if err != nil {
		return nil, fmt.Errorf("listen for the browser's redirect on 127.0.0.1: %w", err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/"
	conf.RedirectURL = redirect
	b := make([]byte, 16)
	rand.Read(b)
	state := hex.EncodeToString(b)
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL(state, oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("prompt", "consent"))

	type result struct {
		code string
		err  error
	}
	results := make(chan result, 1)
	answer := func(q url.Values) (string, error) {
		if q.Get("state") != state {
			return "", errors.New("the address does not belong to this sign-in (state differs)")
		}
		if e := q.Get("error"); e != "" {
			if e == "access_denied" {
				return "", refusedErr("the sign-in was declined (access_denied); run `%s` again to retry", LoginCommand)
			}
			return "", refusedErr("the provider answered %s: %s", e, q.Get("error_description"))
		}
		if q.Get("code") == "" {
			return "", errors.New("the address carries no code")
		}
		return q.Get("code"), nil
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" || r.URL.Query().Get("state") == "" {
			http.NotFound(w, r)
			return
		}
		code, err := answer(r.URL.Query())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err != nil {
			fmt.Fprintf(w, "<p>Sign-in failed: %s</p>", html.EscapeString(err.Error()))
		} else {
			fmt.Fprint(w, "<p>Signed in. You can close this window; the helpdesk continues.</p>")
		}
		select {
		case results <- result{code, err}:
		default:
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	opt.Show(Prompt{URL: authURL, Redirect: redirect})
	var code string
	for code == "" {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("sign-in not completed: %w", context.Cause(ctx))
		case r := <-results:
			if r.err != nil {
				return nil, r.err
			}
			code = r.code
		case p, ok := <-opt.Pasted:
			if !ok {
				opt.Pasted = nil
				continue
			}
			u, err := url.Parse(strings.TrimSpace(p))
			if err != nil {
				continue
			}
			if c, err := answer(u.Query()); err == nil {
				code = c
			} else if u.Query().Get("state") == state {
				return nil, err
			}
		}
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, (&Source{cfg: cfg}).explain(err, "authorization code")
	}
	return tok, nil
}
