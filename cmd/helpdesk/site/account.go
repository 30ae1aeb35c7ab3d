package site

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk/customers"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// Mijn account: the customer's addresses (read here; a new login goes through "login
// vergeten", R17), the names of the people behind them, the answer preference (R14), the
// language, the phone numbers calls are recognised by (R19), and the password.

func (s *Server) accountPage(tx *store.Tx, c *helpdesk.Customer) (*accountPage, error) {
	ap := &accountPage{Customer: c.ID, Company: c.Name, Login: c.Login(), Answer: c.AnswerBy(), Language: c.Language(),
		Phones: strings.Join(c.Phones, "\n"), Langs: templates.Langs()}
	for i, a := range c.Emails {
		ap.Addresses = append(ap.Addresses, addressRow{Address: a, Contact: c.ContactName(a), Login: i == 0})
	}
	switch ch, err := tx.PendingLoginChange(c.ID); {
	case err == nil:
		ap.PendingLogin = ch.NewEmail
	case !errors.Is(err, helpdesk.ErrNotFound):
		return nil, err
	}
	return ap, nil
}

func (s *Server) account(w http.ResponseWriter, r *http.Request, u *who) {
	s.showAccount(w, r, u, http.StatusOK, &page{})
}

func (s *Server) showAccount(w http.ResponseWriter, r *http.Request, u *who, status int, p *page) {
	p.Title, p.Nav = "account.title", "account"
	err := s.db.View(r.Context(), func(tx *store.Tx) error {
		c, err := tx.Customer(u.customer.ID)
		if err != nil {
			return err
		}
		u.customer = c
		p.Account, err = s.accountPage(tx, c)
		return err
	})
	if err != nil {
		s.internal(w, r, u, err)
		return
	}
	if r.URL.Query().Get("opgeslagen") != "" {
		p.Notice = "notice.saved"
	}
	s.render(w, r, u, status, "account", p)
}

// saveAccount saves one of the account's forms: form=profile (contact names, answer
// preference, language, phone numbers) or form=password (the current password and a new
// one).
func (s *Server) saveAccount(w http.ResponseWriter, r *http.Request, u *who) {
	switch r.PostFormValue("form") {
	case "password":
		s.changePassword(w, r, u)
	default:
		s.saveProfile(w, r, u)
	}
}

// saveProfile sets the fields through the rules of `customer set` (desk/customers).
func (s *Server) saveProfile(w http.ResponseWriter, r *http.Request, u *who) {
	fields := map[string]customers.Field{}
	for _, f := range customers.Fields() {
		fields[f.Flag] = f
	}
	refuse := func(key string) { s.showAccount(w, r, u, http.StatusUnprocessableEntity, &page{Error: key}) }
	var phones []string
	for _, line := range strings.FieldsFunc(r.PostFormValue("phones"), func(r rune) bool { return r == '\n' || r == ',' }) {
		if line = strings.TrimSpace(line); line != "" {
			phones = append(phones, line)
		}
	}
	err := s.db.Update(r.Context(), func(tx *store.Tx) error {
		c, err := tx.Customer(u.customer.ID)
		if err != nil {
			return err
		}
		for flag, vals := range map[string][]string{"answer": {r.PostFormValue("answer")}, "lang": {r.PostFormValue("lang")}, "phone": phones} {
			if err := fields[flag].Set(c, vals); err != nil {
				return &fieldError{key: "account.bad." + flag, err: err}
			}
		}
		// A name as `customer set -contact` takes it (policy.CleanName): no control or
		// format characters (a bidi override turns a greeting around), at most 64 characters.
		names := r.PostForm["contact"]
		for i, a := range c.Emails {
			if i < len(names) {
				n := policy.CleanName(names[i])
				if n == "" && strings.TrimSpace(names[i]) != "" {
					return &fieldError{key: "account.bad.contact", err: fmt.Errorf("contact name for %s: %d characters", a, utf8.RuneCountInString(names[i]))}
				}
				c.SetContactName(a, n)
			}
		}
		if err := tx.PutCustomer(c); err != nil {
			if errors.Is(err, store.ErrPhoneTaken) {
				return &fieldError{key: "account.bad.phone_taken", err: err}
			}
			return err
		}
		u.customer = c
		return nil
	})
	var fe *fieldError
	switch {
	case errors.As(err, &fe):
		refuse(fe.key)
		return
	case err != nil:
		s.internal(w, r, u, err)
		return
	}
	// The language chosen here wins over the switch's cookie.
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: u.customer.Language(), Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: 365 * 24 * 3600})
	s.log.Info("account saved on the site", "customer", u.customer.ID)
	http.Redirect(w, r, "/account?opgeslagen=1", http.StatusSeeOther)
}

type fieldError struct {
	key string
	err error
}

func (e *fieldError) Error() string { return e.key + ": " + e.err.Error() }

// changePassword needs the current password; the new one ends every session of the customer,
// and this browser gets a new one.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, u *who) {
	refuse := func(key string, status int) {
		s.showAccount(w, r, u, status, &page{Error: key, ErrorArgs: []any{minPassword}})
	}
	var hash string
	if err := s.db.View(r.Context(), func(tx *store.Tx) error {
		p, err := tx.Password(u.customer.ID)
		if err == nil {
			hash = p.Hash
		}
		if errors.Is(err, helpdesk.ErrNotFound) {
			err = nil
		}
		return err
	}); err != nil {
		s.internal(w, r, u, err)
		return
	}
	now := s.cfg.Now()
	key := "a:" + u.session.Address
	if s.throttle.reserve(now, limit{key, failuresPerAddr}) > 0 {
		refuse("login.throttled_short", http.StatusTooManyRequests)
		return
	}
	if !s.verify(r.Context(), hash, r.PostFormValue("current_password")) {
		refuse("password.current_wrong", http.StatusUnprocessableEntity)
		return
	}
	s.throttle.release(key, now)
	pw := r.PostFormValue("password")
	if k := passwordProblem(u.customer, pw, r.PostFormValue("password2")); k != "" {
		refuse(k, http.StatusUnprocessableEntity)
		return
	}
	newHash, err := s.hash(r.Context(), pw)
	if err != nil {
		s.internal(w, r, u, err)
		return
	}
	if err := s.db.Update(r.Context(), func(tx *store.Tx) error {
		if err := s.desk.SetPassword(tx, u.customer.ID, newHash, now); err != nil {
			return err
		}
		return s.startSession(w, r, tx, u.customer, u.session.Address)
	}); err != nil {
		s.internal(w, r, u, err)
		return
	}
	s.log.Info("password changed on the site; every other session ended", "customer", u.customer.ID)
	http.Redirect(w, r, "/account?opgeslagen=1", http.StatusSeeOther)
}

// handlerTexts are the text keys the handlers name (besides those in the markup), for the
// start-up check.
func handlerTexts() []string {
	keys := []string{"login.title", "login.wrong", "login.throttled", "login.throttled_short", "notice.logged_out",
		"notice.password_set", "notice.saved", "notice.created", "notice.replied",
		"forgot.title", "forgot.sent", "reset.title", "loginforgot.title", "loginforgot.sent",
		"confirm.title", "confirm.taken", "confirm.done", "confirm.pending", "confirm.waiting", "confirm.cancelled", "confirm.settled",
		"link.invalid.title", "link.invalid.text", "error.address", "error.customer", "error.title", "error.text", "error.form",
		"notfound.title", "notfound.text", "forbidden.title", "forbidden.text", "nav.helpdesk",
		"password.mismatch", "password.short", "password.long", "password.address", "password.simple", "password.current_wrong",
		"helpdesk.title", "new.title", "ticket.title", "account.title",
		"new.subject_missing", "new.text_missing", "new.too_long", "new.anydesk", "upload.too_large", "upload.too_many", "upload.again",
		"backup.subject", "backup.text",
		"account.bad.answer", "account.bad.contact", "account.bad.lang", "account.bad.phone", "account.bad.phone_taken"}
	for _, c := range []string{"urgent_sla24", "postpaid", "contact", "sla24_lapsed"} {
		keys = append(keys, "refuse."+c)
	}
	for _, l := range []string{"tickets_per_month", "open_tickets", "replies_per_ticket"} {
		keys = append(keys, "refuse.limit."+l)
	}
	return slices.Clip(keys)
}
