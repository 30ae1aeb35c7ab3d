package site

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/templates"
)

// page is what every page template gets. Texts are keys into the language's site.txt;
// the page-specific parts are set for their page only.
type page struct {
	Lang      string
	OtherLang string
	// Switch is the current path with ?taal= for the other language.
	Switch string
	Title  string // a text key
	// LoggedIn: a customer is logged in; Name is who they are (their contact name, or the
	// customer's name), CSRF the form token of their POSTs.
	LoggedIn bool
	Name     string
	CSRF     string
	// Nav is the current section, for aria-current: helpdesk, account.
	Nav string
	// Notice and Error are text keys (with their arguments) of what happened.
	Notice     string
	NoticeArgs []any
	Error      string
	ErrorArgs  []any
	// ErrorMore is a second sentence of the error (the files to choose again).
	ErrorMore     string
	ErrorMoreArgs []any
	// Form holds the values a form is shown with again after a refusal.
	Form map[string]string
	// Next is where the login form sends the customer after it (a path of the site).
	Next string

	Helpdesk *helpdeskPage
	Ticket   *ticketPage
	New      *newTicketPage
	Account  *accountPage
	// Token is the link's token of password_reset and login_confirm; Purpose is what the
	// token is for (login_confirm: login, login_allow, login_cancel).
	Token   string
	Purpose string
	// MinPassword is the least length of a password, for the forms to say.
	MinPassword int
	// Message is the message page's text key, with its arguments, and where it links on to.
	Message     string
	MessageArgs []any
	Link        string
	LinkText    string
}

type helpdeskPage struct {
	Customer     uint64
	Tier         string // the tier of the record
	Effective    string // the tier served today (R3)
	Status       string // the R3 line, in the page's language
	Hours        int    // the first-response time of the tier served, in working hours (R6)
	Lapsed       bool   // the free status lapsed (R21): no tier is served
	Phone        string // the helpdesk's number, for a telephone support contract (R19)
	Phones       []string
	Open, Closed []ticketRow
}

type ticketRow struct {
	ID       uint64
	Subject  string
	Status   string
	Priority string
	Created  time.Time
	Due      time.Time
	Followup string
}

type ticketPage struct {
	ticketRow
	Tier      string
	Payment   string
	Surcharge bool
	Messages  []messageRow
	// CanReply: a closed ticket can be reopened by a reply too, within the limits (R11).
	MaxUpload string
}

type messageRow struct {
	Staff bool // a staff answer (else the customer's own message)
	From  string
	Date  time.Time
	Text  string
	Files []fileRow
}

type fileRow struct {
	Number int
	Name   string
	Size   int64
	URL    string
}

type newTicketPage struct {
	Lapsed    bool // the free status lapsed (R21): a new ticket is refused, said before typing
	SLA24     bool // urgent is refused; postpaid too
	Postpaid  bool // postpaid callbacks are allowed (R13)
	NoRight   bool // the system is not maintained by the vendor: a callback is no right (R13)
	Contacts  []string
	MaxUpload string
}

type accountPage struct {
	Customer  uint64
	Company   string
	Login     string
	Addresses []addressRow
	Answer    string
	Language  string
	Phones    string // one a line
	Langs     []string
	// PendingLogin is the new login address of a login change that is pending.
	PendingLogin string
}

type addressRow struct {
	Address string
	Contact string
	Login   bool
}

// render writes a page with status code; a failing template is logged and answered 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, u *who, status int, name string, p *page) {
	p.Lang = s.lang(w, r, u)
	p.OtherLang = "en"
	if p.Lang == "en" {
		p.OtherLang = "nl"
	}
	q := r.URL.Query()
	q.Set("taal", p.OtherLang)
	path := r.URL.Path
	if r.Method != http.MethodGet {
		path = strings.TrimSuffix(path, "/reactie")
		if path == "/tickets" {
			path = "/tickets/nieuw"
		}
		q = url.Values{"taal": {p.OtherLang}}
	}
	p.Switch = path + "?" + q.Encode()
	if u != nil {
		p.LoggedIn, p.CSRF = true, u.session.CSRF
		p.Name = u.customer.ContactName(u.session.Address)
		if p.Name == "" {
			p.Name = u.customer.Name
		}
	}
	p.MinPassword = minPassword
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	if err := s.pages.Render(&b, name, p.Lang, p); err != nil {
		s.log.Error("page does not render", "page", name, "lang", p.Lang, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// message shows the message page: a text key and where to go on.
func (s *Server) message(w http.ResponseWriter, r *http.Request, u *who, status int, title, msg string, args ...any) {
	p := &page{Title: title, Message: msg, MessageArgs: args}
	if u != nil {
		p.Link, p.LinkText = "/helpdesk", "nav.helpdesk"
	} else {
		p.Link, p.LinkText = "/inloggen", "login.title"
	}
	s.render(w, r, u, status, "message", p)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request, u *who) {
	s.message(w, r, u, http.StatusNotFound, "notfound.title", "notfound.text")
}

func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, u *who) {
	s.message(w, r, u, http.StatusForbidden, "forbidden.title", "forbidden.text")
}

// crossOrigin answers a POST that another site made the browser send.
func (s *Server) crossOrigin(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("cross-origin POST refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"),
		"sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "client", client(r))
	s.forbidden(w, r, nil)
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, u *who, err error) {
	s.log.Error("site request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	s.message(w, r, u, http.StatusInternalServerError, "error.title", "error.text")
}

func (s *Server) css(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(s.pages.CSS())
}

// selfCheck renders every page in every language with sample data, so that a broken
// template or a missing text fails the start, not a customer's request.
func (s *Server) selfCheck() error {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	row := ticketRow{ID: 12, Subject: "Kassa start niet op", Status: helpdesk.StatusOpen, Priority: helpdesk.PriorityUrgent,
		Created: now, Due: now.Add(8 * time.Hour), Followup: helpdesk.FollowupCallback}
	closed := row
	closed.Status, closed.Priority, closed.Followup = helpdesk.StatusClosed, helpdesk.PriorityNormal, helpdesk.FollowupSite
	answered := row
	answered.Status, answered.Followup = helpdesk.StatusAnswered, helpdesk.FollowupEmail
	sample := &page{Title: "helpdesk.title", LoggedIn: true, Name: "Piet", CSRF: "x", Nav: "helpdesk",
		Notice: "notice.saved", Error: "refuse.limit.tickets_per_month", ErrorArgs: []any{3}, ErrorMore: "upload.again", ErrorMoreArgs: []any{"a.pdf"},
		Form:     map[string]string{"subject": "s", "text": "t", "contact": "site", "email": "a@b", "customer": "1", "anydesk": "1", "urgent": "on"},
		Next:     "/helpdesk",
		Helpdesk: &helpdeskPage{Customer: 1, Tier: "SLA8", Effective: "SLA8", Status: "geldig tot 31-12-2027", Hours: 8, Phone: "+31 20 123 4567", Phones: []string{"+31612345678"}, Open: []ticketRow{row, answered}, Closed: []ticketRow{closed}},
		Ticket: &ticketPage{ticketRow: row, Tier: "SLA8", Payment: helpdesk.PaymentPrepaid, Surcharge: true, MaxUpload: "25 MB",
			Messages: []messageRow{{From: "piet@example.nl", Date: now, Text: "Hallo", Files: []fileRow{{Number: 1, Name: "a.pdf", Size: 1234, URL: "/tickets/12/bijlagen/1"}}}, {Staff: true, From: "Helpdesk", Date: now, Text: "Antwoord"}}},
		New:     &newTicketPage{Lapsed: true, SLA24: true, Postpaid: true, NoRight: true, Contacts: contacts(), MaxUpload: "25 MB"},
		Account: &accountPage{Customer: 1, Company: "Bakkerij", Login: "a@b", Addresses: []addressRow{{Address: "a@b", Contact: "Piet", Login: true}}, Answer: "site", Language: "nl", Phones: "+31612345678", Langs: templates.Langs(), PendingLogin: "c@d"},
		Token:   "tok", Purpose: helpdesk.PurposeLoginCancel, Message: "forgot.sent", Link: "/", LinkText: "nav.helpdesk"}
	for _, lang := range templates.Langs() {
		for _, name := range templates.PageNames() {
			p := *sample
			p.Lang, p.OtherLang = lang, "en"
			var b strings.Builder
			if err := s.pages.Render(&b, name, lang, &p); err != nil {
				return err
			}
		}
	}
	// Every text a handler names must exist in every language.
	for _, lang := range templates.Langs() {
		for _, key := range handlerTexts() {
			if _, err := s.pages.Text(lang, key); err != nil {
				return err
			}
		}
	}
	return nil
}

// dateText is a moment in words in the request's language.
func (s *Server) dateText(w http.ResponseWriter, r *http.Request, u *who, t time.Time) string {
	return templates.FormatDate(t.In(helpdesk.Amsterdam()), langOf(r, u))
}
