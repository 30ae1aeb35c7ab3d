// Package oauthtest is an OAuth 2.0 authorization server for tests, on 127.0.0.1: the token
// endpoint (client credentials, refresh token with rotation, device code RFC 8628,
// authorization code with PKCE RFC 7636), the device authorization endpoint, an authorization
// endpoint that a test approves for the person, and token introspection (RFC 7662) as Dovecot's
// oauth2 passdb and a test SMTP server ask it. Its clock is the test's; a test revokes consents
// and ends access tokens early to see the gateway cope. It imports testing: only tests may
// import it.
package oauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Server is the authorization server. Exported fields may be changed between requests.
type Server struct {
	URL          string // http://127.0.0.1:PORT
	ClientID     string
	ClientSecret string // required from a confidential client (client credentials); "" accepts any
	User         string // the account every token is for (introspection's username)

	mu       sync.Mutex
	now      func() time.Time
	ttl      time.Duration
	rotate   bool
	access   map[string]*accessToken
	refresh  map[string]bool // refresh token -> still valid
	devices  map[string]*device
	codes    map[string]*authCode
	grants   map[string]int
	seen     []string // access tokens presented to introspection, in order
	approve  bool     // the authorization endpoint approves at once
	srv      *http.Server
	listener net.Listener
}

type accessToken struct {
	user    string
	expires time.Time
	ended   bool
}

type device struct {
	userCode string
	approved bool
	denied   bool
}

type authCode struct {
	challenge, redirect string
}

// New starts a server for client id "helpdesk-app", secret "s3cret-...", user user, with
// access tokens valid one hour, and stops it at the end of the test.
func New(tb testing.TB, user string) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), ClientID: "helpdesk-app", ClientSecret: "s3cret-" + random(6), User: user,
		now: time.Now, ttl: time.Hour, access: map[string]*accessToken{}, refresh: map[string]bool{}, devices: map[string]*device{},
		codes: map[string]*authCode{}, grants: map[string]int{}, approve: true, listener: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /device", s.device)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /introspect", s.introspect)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	tb.Cleanup(func() { s.srv.Close() })
	return s
}

// Endpoints.
func (s *Server) TokenURL() string      { return s.URL + "/token" }
func (s *Server) DeviceURL() string     { return s.URL + "/device" }
func (s *Server) AuthURL() string       { return s.URL + "/authorize" }
func (s *Server) IntrospectURL() string { return s.URL + "/introspect" }

// SetClock makes now the server's clock (token expiry).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetTTL sets the lifetime of access tokens issued from now on.
func (s *Server) SetTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttl = d
}

// SetRotate makes every refresh give a new refresh token and spend the old one (as
// Microsoft's and many others' do).
func (s *Server) SetRotate(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate = on
}

// SetApprove says whether the authorization endpoint approves (true) or declines.
func (s *Server) SetApprove(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.approve = on
}

// IssueRefresh makes a refresh token as if the person had consented.
func (s *Server) IssueRefresh() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := "rt-" + random(16)
	s.refresh[rt] = true
	return rt
}

// RevokeConsent spends every refresh token and ends every access token: the person (or an
// administrator) revoked the app's access.
func (s *Server) RevokeConsent() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for rt := range s.refresh {
		s.refresh[rt] = false
	}
	for _, a := range s.access {
		a.ended = true
	}
}

// EndAccessTokens ends every access token issued so far (introspection says inactive) while
// the consent stays: the gateway must get a new one.
func (s *Server) EndAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.access {
		a.ended = true
	}
}

// Grants returns how many tokens were issued per grant type ("client_credentials",
// "refresh_token", "device_code", "authorization_code").
func (s *Server) Grants(grant string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grants[grant]
}

// Active reports whether token is an active access token now, and for whom: the
// introspection answer.
func (s *Server) Active(token string) (user string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, token)
	a := s.access[token]
	if a == nil || a.ended || !s.now().Before(a.expires) {
		return "", false
	}
	return a.user, true
}

// Presented returns the access tokens introspected so far, in order.
func (s *Server) Presented() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// Secrets returns every token and secret the server handed out or holds, for tests that
// check nothing secret leaks.
func (s *Server) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []string{s.ClientSecret}
	for t := range s.access {
		out = append(out, t)
	}
	for t := range s.refresh {
		out = append(out, t)
	}
	for t := range s.devices {
		out = append(out, t)
	}
	return out
}

// Approve approves the device sign-in shown with userCode, as the person would.
func (s *Server) Approve(userCode string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.userCode == userCode {
			d.approved = true
			return true
		}
	}
	return false
}

func (s *Server) issue(w http.ResponseWriter, grant string, withRefresh bool) {
	at := "at-" + random(16)
	s.access[at] = &accessToken{user: s.User, expires: s.now().Add(s.ttl)}
	s.grants[grant]++
	body := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(s.ttl / time.Second)}
	if withRefresh {
		rt := "rt-" + random(16)
		s.refresh[rt] = true
		body["refresh_token"] = rt
	}
	writeJSON(w, http.StatusOK, body)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Server) clientOK(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == s.ClientID && (s.ClientSecret == "" || secret == s.ClientSecret)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", "bad form")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := r.PostForm
	switch f.Get("grant_type") {
	case "client_credentials":
		if !s.clientOK(r) {
			oauthError(w, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
			return
		}
		s.issue(w, "client_credentials", false)
	case "refresh_token":
		rt := f.Get("refresh_token")
		if !s.clientOK(r) {
			oauthError(w, 401, "invalid_client", "unknown client")
			return
		}
		if !s.refresh[rt] {
			oauthError(w, 400, "invalid_grant", "AADSTS70000: The refresh token was revoked or has expired.")
			return
		}
		if s.rotate {
			s.refresh[rt] = false
			s.issue(w, "refresh_token", true)
			return
		}
		s.issue(w, "refresh_token", false)
	case "urn:ietf:params:oauth:grant-type:device_code":
		d := s.devices[f.Get("device_code")]
		switch {
		case d == nil:
			oauthError(w, 400, "expired_token", "unknown device code")
		case d.denied:
			oauthError(w, 400, "access_denied", "the user declined")
		case !d.approved:
			oauthError(w, 400, "authorization_pending", "waiting for the user")
		default:
			delete(s.devices, f.Get("device_code"))
			s.issue(w, "device_code", true)
		}
	case "authorization_code":
		c := s.codes[f.Get("code")]
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		if c == nil || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge || f.Get("redirect_uri") != c.redirect {
			oauthError(w, 400, "invalid_grant", "bad code, verifier or redirect")
			return
		}
		delete(s.codes, f.Get("code"))
		s.issue(w, "authorization_code", true)
	default:
		oauthError(w, 400, "unsupported_grant_type", f.Get("grant_type"))
	}
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") != s.ClientID {
		oauthError(w, 400, "invalid_client", "unknown client")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dc := "dc-" + random(16)
	uc := random(4)
	s.devices[dc] = &device{userCode: uc}
	writeJSON(w, 200, map[string]any{"device_code": dc, "user_code": uc, "verification_uri": s.URL + "/devicelogin",
		"expires_in": 900, "interval": 1})
}

// authorize is the person's browser at the provider: it approves (or declines) at once and
// redirects back with the code.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.ClientID || q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" {
		http.Error(w, "bad request", 400)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect", 400)
		return
	}
	v := url.Values{"state": {q.Get("state")}}
	if s.approve {
		code := "code-" + random(8)
		s.codes[code] = &authCode{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		v.Set("code", code)
	} else {
		v.Set("error", "access_denied")
	}
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", 400)
		return
	}
	user, ok := s.Active(r.PostForm.Get("token"))
	if !ok {
		writeJSON(w, 200, map[string]any{"active": false})
		return
	}
	writeJSON(w, 200, map[string]any{"active": true, "username": user, "token_type": "Bearer"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Port returns the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.listener.Addr().String())
	n, _ := strconv.Atoi(p)
	return n
}

// Introspect asks the introspection endpoint at introspectURL about token over HTTP (RFC 7662
// §2.1), as Dovecot does: the user it is for, when it is active.
func Introspect(introspectURL, token string) (user string, active bool, err error) {
	resp, err := http.PostForm(introspectURL, url.Values{"token": {token}})
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	var v struct {
		Active   bool   `json:"active"`
		Username string `json:"username"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", false, err
	}
	return v.Username, v.Active, nil
}

// Bearer is a check for smtpsink.Options.Bearer: the token is active for user, by the
// introspection endpoint.
func (s *Server) Bearer(user, token string) bool {
	u, ok, err := Introspect(s.IntrospectURL(), token)
	return err == nil && ok && u == user
}
