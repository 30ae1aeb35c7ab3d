// Package site is the customer's Helpdesk site served by `serve` beside the JSON API: log in,
// the personal Helpdesk page (R3 status, the tier served, the phone number for customers with
// a telephone support contract (R19), the tickets), new tickets and replies with files, the
// ticket thread as the customer may see it, Mijn account, and the password and login links
// the notifications point to (R16–R18). Server-rendered html/template pages (templates.Pages),
// Dutch by default, usable without JavaScript.
//
// It owns HTTP only — routing, sessions and cookies, forms, the language, headers — and is an
// interface layer beside the JSON API: what a ticket or reply given on a form does is the
// desk's (desk.WebTicket, desk.WebReply: the rules of an email, R10–R14), what a customer may
// see is desk/view's, what a customer field may hold is desk/customers', what a password must
// be and how it is hashed is the desk's, and what a recovery link does is the desk's.
//
// Security: a session is a random 256-bit id, stored hashed with an idle and an absolute
// expiry, renewed at login and ended at logout and at a password change (all of the
// customer's sessions); its cookie is HttpOnly, SameSite=Lax and Secure when site_url is
// https. Every POST passes Go's cross-origin protection (Sec-Fetch-Site / Origin), and a
// logged-in customer's POST carries the session's form token as well. Every page has a
// Content-Security-Policy without inline script and frame-ancestors 'none', and Referrer-Policy
// no-referrer (a link page must not leak its token). Every ticket and file is checked against
// the session's customer; another customer's is "not found". Log-in attempts are throttled
// per address and per client.
package site

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// Config is what the site needs besides the store and the desk.
type Config struct {
	// SiteURL is where customers reach the site (site_url): https makes the session cookie
	// Secure, and its origin is trusted for POSTs besides the request's own host.
	SiteURL string
	// Phone is the helpdesk's telephone number, shown on the Helpdesk page to customers with
	// a telephone support contract (R19); "" shows none.
	Phone string
	// MaxUpload bounds the files of one form together, in bytes (max_message_bytes: the
	// bound of an email).
	MaxUpload int64
	// Templates is the override directory of the page templates (templates_dir).
	Templates string
	// Now is the clock (sessions, throttling, R3 status). Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Session lifetimes: idle, and absolute from the login.
const (
	SessionIdle     = 8 * time.Hour
	SessionAbsolute = 7 * 24 * time.Hour
	// touchEvery: a session's last use is written at most this often.
	touchEvery = time.Minute
)

// Server is the site's handler.
type Server struct {
	cfg    Config
	db     *store.DB
	desk   *desk.Desk
	pages  *templates.Pages
	log    *slog.Logger
	mux    *http.ServeMux
	secure bool
	// throttle bounds failed log-ins per address and per client.
	throttle *throttle
	// hashing bounds the password hashes computed at once (each takes 46 MiB).
	hashing chan struct{}
	// uploading lets a customer send one form with files at a time (uploads.go).
	uploading *perCustomer
	cop       *http.CrossOriginProtection
	// handler is the routes behind the cross-origin check and the form reader.
	handler http.Handler
}

// maxForm bounds the body of a POST without files (log-in, Mijn account, the link pages):
// it is read before the handler runs, so an endless body is cut off after maxForm bytes.
const maxForm = 64 << 10

// uploads are the routes whose forms carry files: their handlers read the body themselves,
// within the upload bound (readForm).
var uploads = map[string]bool{"POST /tickets": true, "POST /tickets/{id}/reactie": true}

// Mount serves the site beside the JSON API: /api, /api/..., /healthz and /metrics go to
// api, every other path to the site.
func Mount(s *Server, api http.Handler) http.Handler {
	m := http.NewServeMux()
	m.Handle("/", s)
	for _, p := range []string{"/api", "/api/", "/healthz", "/metrics"} {
		m.Handle(p, api)
	}
	return m
}

// New builds the site, parsing the pages and rendering each in every language with sample
// data: a broken override fails here, at start-up.
func New(cfg Config, db *store.DB, dk *desk.Desk) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = 25 << 20
	}
	pages, err := templates.LoadPages(cfg.Templates)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, db: db, desk: dk, pages: pages, log: cfg.Logger, mux: http.NewServeMux(),
		throttle: newThrottle(), hashing: make(chan struct{}, 2), uploading: newPerCustomer()}
	if u, err := url.Parse(cfg.SiteURL); err == nil && u.Scheme == "https" {
		s.secure = true
	}
	s.cop = http.NewCrossOriginProtection()
	if u, err := url.Parse(cfg.SiteURL); err == nil && u.Scheme != "" && u.Host != "" {
		if err := s.cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, err
		}
	}
	s.cop.SetDenyHandler(http.HandlerFunc(s.crossOrigin))
	s.handler = s.cop.Handler(http.HandlerFunc(s.readPost))
	if err := s.selfCheck(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /site.css", s.css)
	m.HandleFunc("GET /{$}", s.root)
	m.HandleFunc("GET /inloggen", s.loginForm)
	m.HandleFunc("POST /inloggen", s.login)
	m.HandleFunc("POST /uitloggen", s.auth(s.logout))
	m.HandleFunc("GET /helpdesk", s.auth(s.helpdesk))
	m.HandleFunc("GET /tickets/nieuw", s.auth(s.newTicketForm))
	m.HandleFunc("POST /tickets", s.auth(s.createTicket))
	m.HandleFunc("GET /tickets/{id}", s.auth(s.ticket))
	m.HandleFunc("POST /tickets/{id}/reactie", s.auth(s.reply))
	m.HandleFunc("GET /tickets/{id}/bijlagen/{n}", s.auth(s.attachment))
	m.HandleFunc("GET /account", s.auth(s.account))
	m.HandleFunc("POST /account", s.auth(s.saveAccount))
	m.HandleFunc("GET /wachtwoord/vergeten", s.passwordForgotForm)
	m.HandleFunc("POST /wachtwoord/vergeten", s.passwordForgot)
	m.HandleFunc("GET /wachtwoord/herstel", s.passwordResetForm)
	m.HandleFunc("POST /wachtwoord/herstel", s.passwordReset)
	m.HandleFunc("GET /login/vergeten", s.loginForgotForm)
	m.HandleFunc("POST /login/vergeten", s.loginForgot)
	m.HandleFunc("GET /login/bevestig", s.loginConfirmForm)
	m.HandleFunc("POST /login/bevestig", s.loginConfirm)
}

// ServeHTTP sets the headers of every page, refuses cross-site POSTs, and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("site handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}()
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	if s.secure {
		// The site is https only (site_url): the browser keeps to https for a year, so
		// that no later visit starts in clear (RFC 6797). Not includeSubDomains: other
		// hosts of the vendor's domain are not the gateway's to decide.
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	s.rememberLang(w, r)
	if _, pattern := s.mux.Handler(r); pattern == "" && r.Method == http.MethodGet {
		s.notFound(w, r, s.current(r))
		return
	}
	s.handler.ServeHTTP(w, r)
}

// readPost reads the form of a POST without files, at most maxForm bytes of it, whatever its
// encoding, before the route's handler sees it; a longer or unreadable body is refused. The
// routes with files read theirs themselves.
func (s *Server) readPost(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); r.Method == http.MethodPost && !uploads[pattern] {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		err := r.ParseForm() // a urlencoded body (ParseMultipartForm drops its error)
		if err == nil {
			if err = r.ParseMultipartForm(maxForm); errors.Is(err, http.ErrNotMultipart) {
				err = nil
			}
		}
		if err != nil {
			status := http.StatusBadRequest
			if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
				status = http.StatusRequestEntityTooLarge
			}
			s.log.Info("form refused", "path", r.URL.Path, "err", err.Error(), "client", client(r))
			s.message(w, r, s.current(r), status, "error.title", "error.form")
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// --- sessions ---

type ctxKey struct{}

// who is the logged-in customer of a request.
type who struct {
	raw      string // the session id
	session  *helpdesk.Session
	customer *helpdesk.Customer
}

func (s *Server) cookieName() string {
	if s.secure {
		return "__Host-helpdesk" // RFC 6265bis: Secure, Path=/, no Domain
	}
	return "helpdesk_session"
}

// current returns the request's logged-in customer, or nil: no cookie, an unknown session,
// an expired one (removed), a customer that no longer exists, or an address that is no
// longer the customer's (the session removed).
func (s *Server) current(r *http.Request) *who {
	ck, err := r.Cookie(s.cookieName())
	if err != nil || ck.Value == "" {
		return nil
	}
	now := s.cfg.Now()
	var w who
	var expired, touch bool
	err = s.db.View(r.Context(), func(tx *store.Tx) error {
		sess, err := tx.Session(ck.Value)
		if err != nil {
			return err
		}
		if now.Sub(sess.LastSeen) >= SessionIdle || now.Sub(sess.Created) >= SessionAbsolute {
			expired = true
			return nil
		}
		c, err := tx.Customer(sess.CustomerID)
		if err != nil {
			return err
		}
		if !slices.Contains(c.Emails, sess.Address) {
			// The address it logged in with is no longer the customer's (staff removed it,
			// or gave it to another customer): whoever holds it is no longer let in.
			expired = true
			return nil
		}
		w = who{raw: ck.Value, session: sess, customer: c}
		touch = now.Sub(sess.LastSeen) >= touchEvery
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNoSession), errors.Is(err, helpdesk.ErrNotFound):
		return nil
	case err != nil:
		s.log.Error("session lookup failed", "err", err)
		return nil
	case expired:
		_ = s.db.Update(context.WithoutCancel(r.Context()), func(tx *store.Tx) error { return tx.DeleteSession(ck.Value) })
		return nil
	}
	if touch {
		w.session.LastSeen = now
		if err := s.db.Update(r.Context(), func(tx *store.Tx) error { return tx.PutSession(w.raw, w.session) }); err != nil && !errors.Is(err, store.ErrNoSession) {
			s.log.Warn("session last use not recorded", "err", err)
		}
	}
	return &w
}

// auth runs h for a logged-in customer, and sends anyone else to the login page (and back
// after it, for a GET). A POST must carry the session's form token.
func (s *Server) auth(h func(http.ResponseWriter, *http.Request, *who)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := s.current(r)
		if u == nil {
			next := ""
			if r.Method == http.MethodGet {
				next = "?terug=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, "/inloggen"+next, http.StatusSeeOther)
			return
		}
		// The forms with files are read by their handlers (within the upload bound), which
		// check the token (readForm); every other form was read already (readPost),
		// whatever its encoding.
		if r.Method == http.MethodPost && !uploads[r.Pattern] && !s.checkCSRF(r, u) {
			s.forbidden(w, r, u)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, u)), u)
	}
}

// checkCSRF compares the form's token with the session's, in constant time.
func (s *Server) checkCSRF(r *http.Request, u *who) bool {
	return csrfMatches(r.PostFormValue("csrf"), u)
}

func csrfMatches(got string, u *who) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(u.session.CSRF)) == 1
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// startSession logs customer c in: a new session (a new id, whatever the browser had), the
// cookie, and any session the request came with ended.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, tx *store.Tx, c *helpdesk.Customer, addr string) error {
	now := s.cfg.Now()
	if ck, err := r.Cookie(s.cookieName()); err == nil && ck.Value != "" {
		if err := tx.DeleteSession(ck.Value); err != nil {
			return err
		}
	}
	if _, err := tx.ExpireSessions(now.Add(-SessionIdle), now.Add(-SessionAbsolute), 100); err != nil {
		return err
	}
	raw, err := tx.CreateSession(&helpdesk.Session{CustomerID: c.ID, Address: addr, Created: now, LastSeen: now, CSRF: randomToken()})
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: raw, Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(SessionAbsolute / time.Second)})
	return nil
}

func (s *Server) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: "", Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// --- language ---

// langCookie keeps the language chosen with the switch.
const langCookie = "taal"

// lang is the request's language: ?taal= (the switch; remembered in a cookie), the cookie,
// the logged-in customer's language, Dutch.
func (s *Server) lang(w http.ResponseWriter, r *http.Request, u *who) string {
	return langOf(r, u)
}

// rememberLang keeps the language chosen with the switch (?taal=) in a cookie, on every
// request that names one — also one answered with a redirect (the log-in page of a customer
// who is logged in already).
func (s *Server) rememberLang(w http.ResponseWriter, r *http.Request) {
	if q := r.URL.Query().Get("taal"); slices.Contains(templates.Langs(), q) {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: q, Path: "/", HttpOnly: true, Secure: s.secure,
			SameSite: http.SameSiteLaxMode, MaxAge: 365 * 24 * 3600})
	}
}

// langOf is the request's language: ?taal= (the switch), the switch's cookie, the logged-in
// customer's language, Dutch.
func langOf(r *http.Request, u *who) string {
	if q := r.URL.Query().Get("taal"); slices.Contains(templates.Langs(), q) {
		return q
	}
	if ck, err := r.Cookie(langCookie); err == nil && slices.Contains(templates.Langs(), ck.Value) {
		return ck.Value
	}
	if u != nil {
		return u.customer.Language()
	}
	if l := r.Context().Value(linkLangKey{}); l != nil {
		return l.(string)
	}
	return templates.Langs()[0]
}

type linkLangKey struct{}

// withLinkLang is r for a link page (a password or login link) whose token is the customer
// c's: the page speaks c's language, as the email with the link did, unless the switch chose
// another or someone is logged in.
func withLinkLang(r *http.Request, c *helpdesk.Customer) *http.Request {
	if c == nil {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), linkLangKey{}, c.Language()))
}

// --- clients ---

// client is who is asking, for the throttle: the peer's address, or — when the peer is on
// this machine, a TLS proxy in front of the gateway — the last address it put in
// X-Forwarded-For. A remote peer cannot name another client that way. An IPv6 client is its
// /64 network: one subscriber gets a /64 (or more) and can use any address in it.
func client(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if helpdesk.IsLoopback(host) {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if last := strings.TrimSpace(parts[len(parts)-1]); net.ParseIP(last) != nil {
				host = last
			}
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a = a.Unmap(); a.Is6() {
			p, _ := a.WithZone("").Prefix(64)
			return p.String()
		}
		return a.String()
	}
	return cmp.Or(host, "unknown")
}
