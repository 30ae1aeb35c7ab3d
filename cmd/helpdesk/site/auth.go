package site

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/mail"
	"strconv"
	"strings"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/store"
)

const minPassword = desk.MinPasswordLength

func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	if s.current(r) != nil {
		http.Redirect(w, r, "/helpdesk", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/inloggen", http.StatusSeeOther)
}

// nextPath is where to go after logging in: a path of this site (never another site's), or
// the Helpdesk page.
func nextPath(s string) string {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsFunc(s, func(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }) ||
		strings.HasPrefix(s, "/inloggen") || strings.HasPrefix(s, "/uitloggen") {
		return "/helpdesk"
	}
	return s
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	u := s.current(r)
	if u != nil {
		http.Redirect(w, r, nextPath(r.URL.Query().Get("terug")), http.StatusSeeOther)
		return
	}
	p := &page{Title: "login.title", Next: nextPath(r.URL.Query().Get("terug"))}
	if r.URL.Query().Get("uit") != "" {
		p.Notice = "notice.logged_out"
	}
	s.render(w, r, nil, http.StatusOK, "login", p)
}

// login checks an address and password. Every refusal reads the same ("address or password
// wrong"), whether the address is a customer's, has no password yet, or the password is
// wrong, and takes the same work (an argon2id check in each case) (R18). Too many failures
// for the address or from the client are refused before any check; an attempt counts as a
// failure until its password proved right, so attempts sent at once are counted too.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	addr := strings.TrimSpace(r.PostFormValue("email"))
	pw := r.PostFormValue("password")
	next := nextPath(r.PostFormValue("terug"))
	p := &page{Title: "login.title", Next: next, Form: map[string]string{"email": addr}}
	if a, err := mail.ParseAddress(addr); err == nil {
		addr = helpdesk.NormalizeAddress(a.Address)
	} else {
		addr = helpdesk.ASCIILower(addr)
	}
	now := s.cfg.Now()
	cl := client(r)
	// The attempt counts as failed from here until the password proved right.
	if wait := s.throttle.reserve(now, limit{"a:" + addr, failuresPerAddr}, limit{"c:" + cl, failuresPerClient}); wait > 0 {
		s.log.Warn("log-in throttled", "address", addr, "client", cl, "wait", wait.String())
		p.Error, p.ErrorArgs = "login.throttled", []any{int(math.Ceil(wait.Minutes()))}
		s.render(w, r, nil, http.StatusTooManyRequests, "login", p)
		return
	}
	var c *helpdesk.Customer
	var hash string
	err := s.db.View(r.Context(), func(tx *store.Tx) error {
		var err error
		if c, err = tx.CustomerByAddress(addr); err != nil {
			return err
		}
		pw, err := tx.Password(c.ID)
		if err != nil {
			return err
		}
		hash = pw.Hash
		return nil
	})
	if err != nil && !errors.Is(err, helpdesk.ErrNotFound) {
		s.internal(w, r, nil, err)
		return
	}
	if !s.verify(r.Context(), hash, pw) || c == nil {
		s.log.Info("log-in refused", "address", addr, "client", cl, "known", c != nil, "has_password", hash != "")
		p.Error = "login.wrong"
		s.render(w, r, nil, http.StatusUnauthorized, "login", p)
		return
	}
	s.throttle.forget("a:" + addr)
	s.throttle.release("c:"+cl, now)
	if err := s.db.Update(r.Context(), func(tx *store.Tx) error { return s.startSession(w, r, tx, c, addr) }); err != nil {
		s.internal(w, r, nil, err)
		return
	}
	s.log.Info("logged in", "customer", c.ID, "address", addr, "client", cl)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// verify checks a password against a hash (an empty hash matches nothing after the same
// work), at most two at a time: each takes 46 MiB.
func (s *Server) verify(ctx context.Context, hash, pw string) bool {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-s.hashing }()
	return desk.VerifyPassword(hash, pw)
}

func (s *Server) hash(ctx context.Context, pw string) (string, error) {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.hashing }()
	return desk.HashPassword(pw), nil
}

// logout ends the session on the server, not only the cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, u *who) {
	if err := s.db.Update(r.Context(), func(tx *store.Tx) error { return tx.DeleteSession(u.raw) }); err != nil {
		s.internal(w, r, u, err)
		return
	}
	s.clearCookie(w)
	s.log.Info("logged out", "customer", u.customer.ID)
	http.Redirect(w, r, "/inloggen?uit=1", http.StatusSeeOther)
}

// --- wachtwoord vergeten (R16) ---

func (s *Server) passwordForgotForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, s.current(r), http.StatusOK, "password_forgot", &page{Title: "forgot.title"})
}

// passwordForgot asks for a reset link. The answer is the same whatever happened (R18).
func (s *Server) passwordForgot(w http.ResponseWriter, r *http.Request) {
	u := s.current(r)
	a, err := mail.ParseAddress(strings.TrimSpace(r.PostFormValue("email")))
	if err != nil {
		s.render(w, r, u, http.StatusBadRequest, "password_forgot", &page{Title: "forgot.title", Error: "error.address",
			Form: map[string]string{"email": r.PostFormValue("email")}})
		return
	}
	addr := helpdesk.NormalizeAddress(a.Address)
	var res desk.RecoveryResult
	err = s.db.Update(r.Context(), func(tx *store.Tx) (err error) {
		res, err = s.desk.RequestPasswordReset(tx, addr, s.cfg.Now())
		return err
	})
	s.logRecovery(r, helpdesk.KindPasswordReset, res, err)
	s.message(w, r, u, http.StatusOK, "forgot.title", "forgot.sent", addr)
}

func (s *Server) logRecovery(r *http.Request, kind string, res desk.RecoveryResult, err error) {
	if err != nil {
		s.log.Error("recovery request failed; the requester was answered as always", "kind", kind, "err", err)
		return
	}
	attrs := []any{"kind", kind, "queued", res.Queued, "client", client(r), "via", "site"}
	if res.Detail != "" {
		attrs = append(attrs, "detail", res.Detail)
	}
	for _, x := range res.Suppressed {
		attrs = append(attrs, "not_sent", x.String())
	}
	s.log.Info("recovery request", attrs...)
}

// passwordResetForm shows the form of a password link. It does not use the token up: mail
// scanners (Outlook Safe Links and the like) open every link before the customer does.
func (s *Server) passwordResetForm(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	t, err := s.peek(r, tok, helpdesk.PurposePassword)
	if err != nil {
		s.badLink(w, r, err)
		return
	}
	r = s.linkLang(r, t)
	s.render(w, r, s.current(r), http.StatusOK, "password_reset", &page{Title: "reset.title", Token: tok})
}

// linkLang is r speaking the language of the customer of link token t (withLinkLang).
func (s *Server) linkLang(r *http.Request, t *helpdesk.Token) *http.Request {
	var c *helpdesk.Customer
	_ = s.db.View(r.Context(), func(tx *store.Tx) (err error) {
		c, err = tx.Customer(t.CustomerID)
		return err
	})
	return withLinkLang(r, c)
}

// peek looks at a link's token without using it; a token of another purpose is invalid.
func (s *Server) peek(r *http.Request, tok string, purposes ...string) (*helpdesk.Token, error) {
	var t *helpdesk.Token
	err := s.db.View(r.Context(), func(tx *store.Tx) (err error) {
		t, err = tx.PeekToken(tok, s.cfg.Now())
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, p := range purposes {
		if t.Purpose == p {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w: a %s link", store.ErrTokenInvalid, t.Purpose)
}

func (s *Server) badLink(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, store.ErrTokenInvalid) {
		s.internal(w, r, nil, err)
		return
	}
	s.log.Info("link refused", "path", r.URL.Path, "why", err.Error(), "client", client(r))
	p := &page{Title: "link.invalid.title", Message: "link.invalid.text"}
	if strings.HasPrefix(r.URL.Path, "/wachtwoord") {
		p.Link, p.LinkText = "/wachtwoord/vergeten", "forgot.title"
	} else {
		p.Link, p.LinkText = "/login/vergeten", "loginforgot.title"
	}
	s.render(w, r, s.current(r), http.StatusBadRequest, "message", p)
}

// passwordReset sets the password of a password link and logs the customer in: the token
// is used up together with the new password, every other session of the customer ends.
func (s *Server) passwordReset(w http.ResponseWriter, r *http.Request) {
	tok := r.PostFormValue("token")
	pw := r.PostFormValue("password")
	t, err := s.peek(r, tok, helpdesk.PurposePassword)
	if err != nil {
		s.badLink(w, r, err)
		return
	}
	var c *helpdesk.Customer
	if err := s.db.View(r.Context(), func(tx *store.Tx) (err error) {
		c, err = tx.Customer(t.CustomerID)
		return err
	}); err != nil {
		s.badLink(w, r, fmt.Errorf("%w: customer %d: %v", store.ErrTokenInvalid, t.CustomerID, err))
		return
	}
	r = withLinkLang(r, c)
	if key := passwordProblem(c, pw, r.PostFormValue("password2")); key != "" {
		s.render(w, r, nil, http.StatusBadRequest, "password_reset", &page{Title: "reset.title", Token: tok, Error: key, ErrorArgs: []any{minPassword}})
		return
	}
	hash, err := s.hash(r.Context(), pw)
	if err != nil {
		s.internal(w, r, nil, err)
		return
	}
	err = s.db.Update(r.Context(), func(tx *store.Tx) error {
		c, err = s.desk.ResetPassword(tx, tok, hash, s.cfg.Now())
		if err != nil {
			return err
		}
		return s.startSession(w, r, tx, c, c.Login())
	})
	if err != nil {
		s.badLink(w, r, err)
		return
	}
	s.throttle.forget("a:" + c.Login())
	s.log.Info("password set with a link", "customer", c.ID, "client", client(r))
	http.Redirect(w, r, "/helpdesk?gezet=1", http.StatusSeeOther)
}

// passwordProblem is the text key of what is wrong with a new password, or "".
func passwordProblem(c *helpdesk.Customer, pw, again string) string {
	if again != "" && again != pw {
		return "password.mismatch"
	}
	switch err := desk.CheckPassword(c, pw); {
	case errors.Is(err, desk.ErrPasswordShort):
		return "password.short"
	case errors.Is(err, desk.ErrPasswordLong):
		return "password.long"
	case errors.Is(err, desk.ErrPasswordAddress):
		return "password.address"
	case errors.Is(err, desk.ErrPasswordSimple):
		return "password.simple"
	case err != nil:
		return "password.short"
	}
	return ""
}

// --- login vergeten (R17) ---

func (s *Server) loginForgotForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, s.current(r), http.StatusOK, "login_forgot", &page{Title: "loginforgot.title"})
}

// loginForgot asks for a login change: a confirmation link to the new address, a notice to
// the old login (which can agree or stop it) and to staff; it takes effect only as
// desk.RequestLoginChange says. The answer is the same whatever happened (R18).
func (s *Server) loginForgot(w http.ResponseWriter, r *http.Request) {
	u := s.current(r)
	form := map[string]string{"customer": r.PostFormValue("customer"), "email": r.PostFormValue("email")}
	num, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(form["customer"], "#")), 10, 64)
	if err != nil || num == 0 {
		s.render(w, r, u, http.StatusBadRequest, "login_forgot", &page{Title: "loginforgot.title", Error: "error.customer", Form: form})
		return
	}
	a, err := mail.ParseAddress(strings.TrimSpace(form["email"]))
	if err != nil {
		s.render(w, r, u, http.StatusBadRequest, "login_forgot", &page{Title: "loginforgot.title", Error: "error.address", Form: form})
		return
	}
	addr := helpdesk.NormalizeAddress(a.Address)
	var res desk.RecoveryResult
	err = s.db.Update(r.Context(), func(tx *store.Tx) (err error) {
		res, err = s.desk.RequestLoginChange(tx, num, addr, s.cfg.Now())
		return err
	})
	s.logRecovery(r, helpdesk.KindLoginConfirm, res, err)
	s.message(w, r, u, http.StatusOK, "loginforgot.title", "loginforgot.sent", addr)
}

// loginConfirmForm shows what a login link does (confirm the new address, agree, stop) with
// one button; GET never uses the token.
func (s *Server) loginConfirmForm(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	t, err := s.peek(r, tok, helpdesk.PurposeLogin, helpdesk.PurposeLoginAllow, helpdesk.PurposeLoginCancel)
	if err != nil {
		s.badLink(w, r, err)
		return
	}
	r = s.linkLang(r, t)
	s.render(w, r, s.current(r), http.StatusOK, "login_confirm", &page{Title: "confirm.title", Token: tok, Purpose: t.Purpose})
}

// loginConfirm uses a login link (desk.Redeem) and says what became of the change.
func (s *Server) loginConfirm(w http.ResponseWriter, r *http.Request) {
	tok := r.PostFormValue("token")
	t, err := s.peek(r, tok, helpdesk.PurposeLogin, helpdesk.PurposeLoginAllow, helpdesk.PurposeLoginCancel)
	if err != nil {
		s.badLink(w, r, err)
		return
	}
	r = s.linkLang(r, t)
	var res desk.RedeemResult
	err = s.db.Update(r.Context(), func(tx *store.Tx) (err error) {
		res, err = s.desk.Redeem(tx, tok, s.cfg.Now())
		return err
	})
	u := s.current(r)
	switch {
	case errors.Is(err, store.ErrAddressTaken):
		s.message(w, r, u, http.StatusConflict, "confirm.title", "confirm.taken")
		return
	case err != nil:
		s.badLink(w, r, err)
		return
	}
	s.log.Info("login link used", "purpose", res.Purpose, "customer", res.Customer, "status", res.Status, "login_change", res.Change)
	switch res.Status {
	case desk.RedeemDone:
		s.message(w, r, u, http.StatusOK, "confirm.title", "confirm.done", res.Login)
	case desk.RedeemPending:
		s.message(w, r, u, http.StatusOK, "confirm.title", "confirm.pending", s.dateText(w, r, u, res.TakesEffect))
	case desk.RedeemWaiting:
		s.message(w, r, u, http.StatusOK, "confirm.title", "confirm.waiting")
	case desk.RedeemCancelled:
		s.message(w, r, u, http.StatusOK, "confirm.title", "confirm.cancelled")
	default:
		s.message(w, r, u, http.StatusOK, "confirm.title", "confirm.settled")
	}
}
