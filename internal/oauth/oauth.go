// Package oauth gets the OAuth 2.0 access tokens with which the gateway signs in to the
// support mailbox over IMAP and to the submission server over SMTP, and speaks the two SASL
// mechanisms that carry them: XOAUTH2 (Google's and Microsoft's) and OAUTHBEARER (RFC 7628).
//
// Two ways to a token (golang.org/x/oauth2):
//   - client credentials (RFC 6749 §4.4): Microsoft 365 app-only access, an app registration
//     with IMAP.AccessAsApp / SMTP.SendAsApp and a client secret; nothing is stored;
//   - a refresh token (RFC 6749 §6) from a person's one-time consent, obtained by Login (the
//     device authorization grant, RFC 8628, or for Google — whose device flow refuses the mail
//     scope — the authorization code grant with PKCE on a loopback redirect, RFC 8252). The
//     refresh token lives in a file of its own beside the database (mode 0600), never in the
//     database, whose backups go to synced folders; it is never logged. When the provider
//     rotates it, the new one replaces the file (a temporary file renamed over it, under a lock
//     that the gateway, doctor and `oauth login` share, so none of them refreshes with a
//     refresh token another has just spent).
//
// A Source keeps the access token in memory and fetches a new one before it expires (a
// quarter of its lifetime before, at most five minutes) and when a server refused it
// (Refused). Errors that only the operator can fix wrap ErrRefused and say what to do.
//
// The package does I/O (HTTPS to the provider, the token file) and imports nothing of the
// product: ingest and notify use it side by side, cmd/helpdesk wires it.
package oauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/infobits/helpdesk"
)

// Providers (oauth_provider).
const (
	Microsoft = "microsoft" // Microsoft 365 / Exchange Online (Entra ID)
	Google    = "google"    // Google Workspace / Gmail
	Generic   = "generic"   // any RFC 6749 server: token (and device) endpoint given
)

// Flows (oauth_flow).
const (
	// FlowRefreshToken: a person consents once (Login); the gateway keeps the refresh token.
	FlowRefreshToken = "refresh_token"
	// FlowClientCredentials: the app signs in as itself (Microsoft 365 app-only).
	FlowClientCredentials = "client_credentials"
)

// LoginCommand is the command that gives a refresh token; errors name it.
const LoginCommand = "helpdesk oauth login"

// ErrRefused: the provider refused what the configuration gave it (client, secret, scope,
// refresh token) or there is no refresh token yet. Retrying does not help; the operator must
// act, as the error says.
var ErrRefused = errors.New("OAuth sign-in refused")

// ErrConsent: the refresh token is missing, revoked or expired; Login gives a new one. It
// comes wrapped with ErrRefused.
var ErrConsent = errors.New("no valid OAuth consent")

// refused is an error that only the operator can fix: it is ErrRefused (and ErrConsent when
// consent is set), and its text says what to do, without the sentinels' words.
type refused struct {
	err     error
	consent bool
}

func (e *refused) Error() string { return e.err.Error() }
func (e *refused) Unwrap() error { return e.err }
func (e *refused) Is(target error) bool {
	return target == ErrRefused || (e.consent && target == ErrConsent)
}

func refusedErr(format string, args ...any) error {
	return &refused{err: fmt.Errorf(format, args...)}
}

func consentErr(format string, args ...any) error {
	return &refused{err: fmt.Errorf(format, args...), consent: true}
}

// Config says where and how to get tokens. Zero values take the provider's defaults.
type Config struct {
	Provider     string
	Flow         string // FlowRefreshToken (default) or FlowClientCredentials
	Tenant       string // microsoft: the directory (tenant) id or domain
	ClientID     string
	ClientSecret string
	// TokenURL, DeviceURL and AuthURL: the endpoints; required for Generic (DeviceURL only
	// for Login), optional overrides for the others.
	TokenURL, DeviceURL, AuthURL string
	Scopes                       []string // empty: DefaultScopes
	// TokenFile holds the refresh token (FlowRefreshToken): "<db>.oauth" by the gateway.
	TokenFile  string
	HTTPClient *http.Client // nil: one with a 30 s timeout
	Now        func() time.Time
}

// DefaultScopes returns the scopes a provider needs for IMAP and SMTP in a flow: one access
// token serves both.
func DefaultScopes(provider, flow string) []string {
	switch {
	case provider == Microsoft && flow == FlowClientCredentials:
		// App-only: the app's granted permissions (IMAP.AccessAsApp, SMTP.SendAsApp).
		return []string{"https://outlook.office365.com/.default"}
	case provider == Microsoft:
		return []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send", "offline_access"}
	case provider == Google:
		return []string{"https://mail.google.com/"}
	}
	return nil
}

// Check reports every problem of the configuration at once, naming the config keys.
func (c Config) Check() error {
	var errs []string
	switch c.Provider {
	case Microsoft, Google, Generic:
	default:
		errs = append(errs, fmt.Sprintf("oauth_provider = %q: want microsoft, google or generic", c.Provider))
	}
	switch c.flow() {
	case FlowRefreshToken:
		if c.TokenFile == "" {
			errs = append(errs, "no file for the refresh token")
		}
	case FlowClientCredentials:
		if c.ClientSecret == "" {
			errs = append(errs, "oauth_flow = client_credentials needs oauth_client_secret (or oauth_client_secret_file)")
		}
		if c.Provider == Google {
			errs = append(errs, "oauth_flow = client_credentials does not exist for Google: Gmail over IMAP takes a person's consent (oauth_flow = refresh_token and `"+LoginCommand+"`)")
		}
		if c.Provider == Microsoft && (c.Tenant == "" || c.Tenant == "organizations" || c.Tenant == "common") {
			errs = append(errs, "oauth_flow = client_credentials needs oauth_tenant: the directory (tenant) id or domain of the Microsoft 365 organisation")
		}
	default:
		errs = append(errs, fmt.Sprintf("oauth_flow = %q: want refresh_token or client_credentials", c.Flow))
	}
	if c.ClientID == "" {
		errs = append(errs, "oauth_client_id is not set")
	}
	if c.Provider == Generic && c.TokenURL == "" {
		errs = append(errs, "oauth_provider = generic needs oauth_token_url")
	}
	for _, u := range []struct{ key, val string }{{"oauth_token_url", c.TokenURL}, {"oauth_device_url", c.DeviceURL}} {
		if u.val == "" {
			continue
		}
		p, err := url.Parse(u.val)
		if err != nil || (p.Scheme != "https" && !(p.Scheme == "http" && helpdesk.IsLoopback(p.Hostname()))) || p.Host == "" {
			errs = append(errs, fmt.Sprintf("%s = %q: want an https:// address (http:// only to a loopback address)", u.key, u.val))
		}
	}
	if c.Tenant != "" && strings.ContainsFunc(c.Tenant, func(r rune) bool { return r == '/' || r == '?' || r == '#' || unicode.IsSpace(r) }) {
		errs = append(errs, fmt.Sprintf("oauth_tenant = %q: want a tenant id or domain", c.Tenant))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func (c Config) flow() string { return cmp.Or(c.Flow, FlowRefreshToken) }

func (c Config) scopes() []string {
	if len(c.Scopes) > 0 {
		return c.Scopes
	}
	return DefaultScopes(c.Provider, c.flow())
}

// endpoint returns the provider's endpoints, with the configured overrides.
func (c Config) endpoint() oauth2.Endpoint {
	var e oauth2.Endpoint
	switch c.Provider {
	case Microsoft:
		base := "https://login.microsoftonline.com/" + url.PathEscape(cmp.Or(c.Tenant, "organizations")) + "/oauth2/v2.0/"
		e = oauth2.Endpoint{AuthURL: base + "authorize", TokenURL: base + "token", DeviceAuthURL: base + "devicecode",
			AuthStyle: oauth2.AuthStyleInParams}
	case Google:
		e = oauth2.Endpoint{AuthURL: "https://accounts.google.com/o/oauth2/v2/auth", TokenURL: "https://oauth2.googleapis.com/token",
			DeviceAuthURL: "https://oauth2.googleapis.com/device/code", AuthStyle: oauth2.AuthStyleInParams}
	}
	e.TokenURL = cmp.Or(c.TokenURL, e.TokenURL)
	e.DeviceAuthURL = cmp.Or(c.DeviceURL, e.DeviceAuthURL)
	e.AuthURL = cmp.Or(c.AuthURL, e.AuthURL)
	return e
}

func (c Config) oauth2() *oauth2.Config {
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: c.endpoint(), Scopes: c.scopes()}
}

// httpContext carries the HTTP client to x/oauth2.
func (c Config) httpContext(ctx context.Context) context.Context {
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return context.WithValue(ctx, oauth2.HTTPClient, hc)
}

// Source hands out access tokens and renews them. It is safe for concurrent use; a fetch
// holds the others up (one refresh for IMAP and SMTP together).
type Source struct {
	cfg Config

	mu       sync.Mutex
	access   string
	obtained time.Time
	expiry   time.Time // zero: the provider gave no lifetime; renewed when refused
	refused  string    // the access token a server refused
	lastErr  error
	fetches  int
}

// New checks cfg and makes a Source. It does no I/O: the first Token fetches.
func New(cfg Config) (*Source, error) {
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("oauth: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Source{cfg: cfg}, nil
}

// Flow returns the configured flow.
func (s *Source) Flow() string { return s.cfg.flow() }

// Provider returns the configured provider.
func (s *Source) Provider() string { return s.cfg.Provider }

// margin is how long before its expiry a token is renewed: a quarter of its lifetime, at
// most five minutes, so that a login never presents a token about to lapse.
func margin(lifetime time.Duration) time.Duration {
	return min(5*time.Minute, lifetime/4)
}

// Token returns an access token: the one in hand while it is good for longer than its
// margin and no server refused it, else a new one from the provider. It blocks on the
// provider (HTTPS) and the token file's lock; ctx bounds it.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	if s.access != "" && s.access != s.refused &&
		(s.expiry.IsZero() || now.Before(s.expiry.Add(-margin(s.expiry.Sub(s.obtained))))) {
		return s.access, nil
	}
	tok, err := s.fetch(ctx)
	s.fetches++
	if err != nil {
		s.lastErr = err
		return "", err
	}
	s.lastErr = nil
	s.access, s.obtained, s.refused = tok.AccessToken, now, ""
	s.expiry = time.Time{}
	switch {
	case tok.ExpiresIn > 0:
		s.expiry = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	case !tok.Expiry.IsZero():
		s.expiry = now.Add(time.Until(tok.Expiry))
	}
	return s.access, nil
}

// Refused tells the Source that a server refused token: the next Token fetches a new one.
// The caller tries once more with that one (an access token can be revoked, or the clocks
// disagree about its expiry); a second refusal is the account's rights, not the token.
func (s *Source) Refused(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token == s.access {
		s.refused = token
	}
}

// State is what the Source knows, for doctor and the logs; it holds no secret.
type State struct {
	Provider, Flow string
	Obtained       time.Time // when the access token in hand was obtained; zero: none
	Expiry         time.Time // when it expires; zero: unknown or none
	Fetches        int       // tokens asked of the provider so far
	Err            error     // the last fetch's error, nil after a success
	Consent        *Consent  // FlowRefreshToken: the token file, when it can be read
}

// State reports the Source's state; it reads the token file (no network).
func (s *Source) State() State {
	s.mu.Lock()
	st := State{Provider: s.cfg.Provider, Flow: s.cfg.flow(), Fetches: s.fetches, Err: s.lastErr}
	if s.access != "" && s.access != s.refused {
		st.Obtained, st.Expiry = s.obtained, s.expiry
	}
	s.mu.Unlock()
	if st.Flow == FlowRefreshToken {
		if c, err := ReadConsent(s.cfg.TokenFile); err == nil {
			st.Consent = c
		}
	}
	return st
}

// fetch gets a new access token by the configured flow. Called with s.mu held.
func (s *Source) fetch(ctx context.Context) (*oauth2.Token, error) {
	hctx := s.cfg.httpContext(ctx)
	if s.cfg.flow() == FlowClientCredentials {
		cc := clientcredentials.Config{ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret,
			TokenURL: s.cfg.endpoint().TokenURL, Scopes: s.cfg.scopes(), AuthStyle: s.cfg.endpoint().AuthStyle}
		tok, err := cc.Token(hctx)
		if err != nil {
			return nil, s.explain(err, "client credentials")
		}
		return tok, nil
	}
	return s.refresh(hctx)
}

// explain words a token endpoint's error for the operator, without the response body (which
// a provider may fill with anything) and never with a token or secret.
func (s *Source) explain(err error, grant string) error {
	return s.explainAt(err, grant, s.cfg.endpoint().TokenURL)
}

// explainAt is explain for an error of the endpoint at addr.
func (s *Source) explainAt(err error, grant, addr string) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("OAuth endpoint %s (%s): %w", addr, grant, cleanNetErr(err))
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	what := fmt.Sprintf("the OAuth provider (%s) refused the %s: HTTP %d %s", s.cfg.Provider, grant, status, describe(re))
	switch re.ErrorCode {
	case "invalid_grant":
		if grant == "refresh token" {
			return consentErr("%s: the consent was revoked, has expired or the password changed; run `%s` to sign in again",
				what, LoginCommand)
		}
		return refusedErr("%s", what)
	case "invalid_client", "unauthorized_client":
		return refusedErr("%s: check oauth_client_id and oauth_client_secret (a client secret expires: the app registration shows its end date)", what)
	case "invalid_scope":
		return refusedErr("%s: check oauth_scopes (empty: the provider's defaults) and the permissions granted to the app", what)
	case "invalid_request", "unsupported_grant_type":
		return refusedErr("%s: check oauth_provider, oauth_tenant and oauth_token_url", what)
	}
	if status >= 400 && status < 500 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout {
		return refusedErr("%s", what)
	}
	return fmt.Errorf("%s (the gateway tries again)", what) // 5xx, 429: the provider's trouble
}

// describe returns an endpoint error's code and description, cut short and made printable.
func describe(re *oauth2.RetrieveError) string {
	s := re.ErrorCode
	if s == "" {
		s = "(no error code)"
	}
	if d := re.ErrorDescription; d != "" {
		d = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, d)
		if len(d) > 300 {
			d = strings.ToValidUTF8(d[:300], "") + "…"
		}
		d = strings.TrimRight(d, ". ")
		s += ": " + d
	}
	return s
}

// cleanNetErr drops a *url.Error's URL, which for some libraries carries query parameters.
func cleanNetErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
