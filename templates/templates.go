// Package templates holds the texts of every notification the gateway sends, as Go templates
// embedded in the binary (Dutch by default, English), and renders them. Each kind has a
// text/plain template (which also defines the subject) and an HTML template; both share one
// layout per language. An operator may override any file from a directory of the same shape
// (nl/ack.txt.tmpl, ...). HTML is rendered with html/template, so what a customer wrote is
// escaped; subjects are made single-line, so nothing becomes a header.
//
// Templates contain formatting only; which notification goes to whom is policy's business.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/infobits/helpdesk"
)

//go:embed nl/*.tmpl en/*.tmpl
var embedded embed.FS

// Kinds returns the notification kinds that have templates.
func Kinds() []string {
	return []string{"ack", "answer", "answer_site", "unknown_sender", "over_limit", "staff_new", "staff_reply",
		"staff_error", "staff_refused", "password_reset", "login_confirm", "login_notice", "too_large", "staff_held",
		"staff_login", "login_changed", "staff_warning", "staff_breach", "staff_digest", "invite",
		"sla24_lapsed"}
}

// Langs returns the languages every kind exists in; the first is the default.
func Langs() []string { return []string{"nl", "en"} }

// Data is what a template may show. Strings from customers are escaped by html/template.
type Data struct {
	Ref           string // "[Infobits #12]"
	TicketID      uint64
	TicketSubject string
	CustomerName  string
	Due           string // formatted in the template's language; "" when unknown
	DueTime       time.Time
	Text          string // an answer's text
	StaffName     string
	OrigSubject   string
	Address       string
	Helpdesk      string // the sender's display name ("Infobits Helpdesk")
	SiteURL       string
	TicketURL     string
	Subject       string // the rendered subject, for the HTML title
	// What the SLA policy decided, for the acknowledgement's notes (R3, R4, R11–R14).
	Tier          string
	Priority      string
	SurchargeZone int
	Followup      string
	Payment       string
	Notes         []string // note codes (see the "notes" template of each layout)
	ValidUntil    string   // dd-mm-jjjj
	LimitKind     string   // tickets_per_month, open_tickets or replies_per_ticket
	LimitValue    int
	Error         string // why a staff email was not applied
	Auth          Auth   // why a staff email's authentication was refused, in parts (staff_refused)
	Link          string // a recovery link (password_reset, login_confirm)
	ValidFor      string // how long the link works, in words
	NewEmail      string // the new login address (R17)
	// CancelLink is the old login's link that stops a login change (login_notice); Link is
	// its link to agree. UntilTime is when the change takes effect unless cancelled; Until
	// is it in words, set by Render. CustomerID is the customer number (staff notices).
	CancelLink string
	UntilTime  time.Time
	Until      string
	CustomerID uint64
	// ContactName is the person behind the address the mail goes to, when known: the layout
	// greets them, and the company (CustomerName) otherwise.
	ContactName string
	// ToStaff is set by Render for the kinds that go to staff (staff_*): the layout greets
	// the team, not the customer the notice is about.
	ToStaff bool
	// OwnText is set by Render for an answer: the body is a staff member's own text, with
	// their greeting and sign-off, so the layout adds neither (seen in practice: a
	// customer was greeted twice); the answer template adds the ticket reference and a footer.
	OwnText bool
	// Files are the attachments of the email the notification is about. FilesNote says why
	// they are not attached: "" (they are, or there are none), FilesAboveLimit,
	// FilesAboveServer, FilesUnreadable; FilesLimit is the limit passed, in words.
	Files      []File
	FilesNote  string
	FilesLimit string
	// Held lists the held emails of a staff_held notice (or of the digest).
	Held []HeldItem
	// Assignee is the ticket's assignee (staff_warning, staff_breach).
	Assignee string
	// Digest is the daily digest's sections (staff_digest); Day is its day in words, set by
	// Render from DayTime.
	Digest  []DigestSection
	DayTime time.Time
	Day     string
}

// DigestSection is one section of the daily digest: Kind is breached, due_today,
// due_tomorrow, urgent, unassigned or assignee (with Assignee).
type DigestSection struct {
	Kind     string
	Assignee string
	Tickets  []DigestTicket
}

// DigestTicket is one line of the digest.
type DigestTicket struct {
	Ref      string // "[Infobits #12]"
	ID       uint64
	Subject  string
	Customer string
	Tier     string
	Priority string
	DueTime  time.Time
	Due      string // DueTime in words, set by Render
	Assignee string
}

// Why a notification names files instead of carrying them.
const (
	FilesAboveLimit  = "limit"      // together above the limit for staff notices
	FilesAboveServer = "server"     // the message would be above the SMTP server's SIZE
	FilesUnreadable  = "unreadable" // they could not be read out of the stored email
)

// File is one attachment a notification carries or names.
type File struct {
	Number  int    // its number in the ticket: helpdesk ticket attachment TICKET NUMBER
	Name    string // the sender's file name
	Type    string
	Bytes   int64
	Size    string // Bytes in words, set by Render: "1,2 MB"
	Carried bool   // attached to this notification
}

// HeldItem is one held email in a staff_held notice.
type HeldItem struct {
	ID       uint64
	From     string
	Subject  string
	Reason   string // a helpdesk.Held* code; the template says what it means and what to do
	Detail   string
	Received time.Time
	When     string // Received in words, set by Render
}

// Auth is why an email's authentication was refused, for the template to say in its own
// language: Code names the sentence (the codes of mail/authres.Reason), the other fields fill
// it in. An empty Code: only Error is known (a notice queued by an older version).
type Auth struct {
	Code   string
	Result string // a dmarc result: none, temperror, ...
	Domain string // the From domain checked
	Other  string // the domain judged instead, or the DKIM signer
	Server string // the authentication server (authserv-id)
}

// Rendered is one notification, ready to be put into MIME.
type Rendered struct {
	Subject, Text, HTML string
}

// Set is a parsed set of templates. It is safe for concurrent use.
type Set struct {
	text map[string]*texttemplate.Template // by lang/kind
	html map[string]*htmltemplate.Template
	loc  *time.Location
}

// Load parses the embedded templates, with files from overrideDir (may be "") replacing the
// embedded ones of the same name, and renders every kind in every language with sample data:
// a broken override is reported now, at start-up, not when a customer's mail is due.
func Load(overrideDir string) (*Set, error) {
	loc := helpdesk.Amsterdam()
	s := &Set{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}, loc: loc}
	read := func(name string) (string, error) {
		if overrideDir != "" {
			b, err := os.ReadFile(filepath.Join(overrideDir, filepath.FromSlash(name)))
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("read template override: %w", err)
			}
		}
		b, err := embedded.ReadFile(name)
		return string(b), err
	}
	if overrideDir != "" {
		if fi, err := os.Stat(overrideDir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("templates directory %s: not a readable directory", overrideDir)
		}
	}
	for _, lang := range Langs() {
		for _, kind := range Kinds() {
			key := lang + "/" + kind
			t := texttemplate.New(key).Option("missingkey=error")
			for _, f := range []string{lang + "/layout.txt.tmpl", lang + "/" + kind + ".txt.tmpl"} {
				src, err := read(f)
				if err != nil {
					return nil, fmt.Errorf("template %s: %w", f, err)
				}
				if _, err := t.New(f).Parse(src); err != nil {
					return nil, fmt.Errorf("template %s: %w", f, err)
				}
			}
			h := htmltemplate.New(key).Option("missingkey=error")
			for _, f := range []string{lang + "/layout.html.tmpl", lang + "/" + kind + ".html.tmpl"} {
				src, err := read(f)
				if err != nil {
					return nil, fmt.Errorf("template %s: %w", f, err)
				}
				if _, err := h.New(f).Parse(src); err != nil {
					return nil, fmt.Errorf("template %s: %w", f, err)
				}
			}
			s.text[key], s.html[key] = t, h
			if _, err := s.Render(kind, lang, Sample()); err != nil {
				return nil, fmt.Errorf("template %s does not render: %w", key, err)
			}
		}
	}
	return s, nil
}

// Sample is example data, for the start-up check and previews.
func Sample() Data {
	return Data{Ref: "[Infobits #123]", TicketID: 123, TicketSubject: "Kassa start niet op",
		CustomerName: "Bakkerij de Vries", DueTime: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		Text: "Goedemorgen,\n\nHerstart de kassa en probeer het opnieuw.", StaffName: "Jan",
		OrigSubject: "Vraag over de kassa", Address: "info@example.nl", Helpdesk: "Infobits Helpdesk",
		SiteURL: "https://helpdesk.example.nl", TicketURL: "https://helpdesk.example.nl/tickets/123",
		Tier: "SLA8", Priority: "urgent", SurchargeZone: 2, Followup: "callback", Payment: "prepaid",
		Notes:      []string{"urgent", "urgent_sla24", "expired", "callback", "prepaid_only", "callback_no_right", "free_support", "answer_on_site"},
		ValidUntil: "31-10-2026", LimitKind: "tickets_per_month", LimitValue: 3,
		Error: "line 1: unknown command \"#sluit\"", Link: "https://helpdesk.example.nl/wachtwoord/herstel?token=abc",
		ValidFor: "1 uur", NewEmail: "nieuw@example.nl", CustomerID: 12,
		CancelLink: "https://helpdesk.example.nl/login/bevestig?token=def", UntilTime: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC),
		Files: []File{{Number: 1, Name: "handleiding.pdf", Type: "application/pdf", Bytes: 1234567, Carried: true},
			{Number: 2, Name: "foto kassa.jpg", Type: "image/jpeg", Bytes: 12 << 20}},
		FilesNote: FilesAboveLimit, FilesLimit: "10 MB",
		Held: []HeldItem{
			{ID: 7, From: "inkoop@nieuwe-klant.nl", Subject: "Offerte kassasysteem", Reason: "unknown_sender",
				Detail: "no customer has the address inkoop@nieuwe-klant.nl", Received: time.Date(2026, 11, 30, 9, 12, 0, 0, time.UTC)},
			{ID: 8, From: "info@example.nl", Subject: "Nog een vraag", Reason: "over_limit",
				Detail: "SLA24 limit: 3 tickets per calendar month (3 this month)", Received: time.Date(2026, 11, 30, 9, 14, 0, 0, time.UTC)},
		},
		Assignee: "piet@infobits.example", DayTime: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		Digest: []DigestSection{
			{Kind: "breached", Tickets: []DigestTicket{{Ref: "[Infobits #120]", ID: 120, Subject: "Bonprinter print niet", Customer: "Slagerij Jansen",
				Tier: "SLA8", Priority: "normal", DueTime: time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)}}},
			{Kind: "due_today", Tickets: []DigestTicket{{Ref: "[Infobits #123]", ID: 123, Subject: "Kassa start niet op", Customer: "Bakkerij de Vries",
				Tier: "SLA4", Priority: "urgent", DueTime: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), Assignee: "piet@infobits.example"}}},
			{Kind: "assignee", Assignee: "piet@infobits.example", Tickets: []DigestTicket{{Ref: "[Infobits #123]", ID: 123, Subject: "Kassa start niet op",
				Customer: "Bakkerij de Vries", Tier: "SLA4", Priority: "urgent", DueTime: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}}},
		}}
}

// Render renders one notification. Unknown languages fall back to Dutch.
func (s *Set) Render(kind, lang string, d Data) (Rendered, error) {
	key := lang + "/" + kind
	t, ok := s.text[key]
	if !ok {
		key = Langs()[0] + "/" + kind
		if t, ok = s.text[key]; !ok {
			return Rendered{}, fmt.Errorf("no template for notification kind %q", kind)
		}
		lang = Langs()[0]
	}
	if !d.DueTime.IsZero() {
		d.Due = FormatDate(d.DueTime.In(s.loc), lang)
	}
	if !d.UntilTime.IsZero() {
		d.Until = FormatDate(d.UntilTime.In(s.loc), lang)
	}
	if kind == "login_confirm" {
		// It goes to an address anyone may name; it names no account. Whatever the
		// data holds, the greeting is "Beste klant" and no name, number or address is shown.
		d.CustomerName, d.ContactName, d.CustomerID, d.Address, d.NewEmail = "", "", 0, "", ""
	}
	d.ToStaff = strings.HasPrefix(kind, "staff_")
	d.OwnText = kind == "answer"
	d.Files = slices.Clone(d.Files)
	for i := range d.Files {
		d.Files[i].Size = FormatSize(d.Files[i].Bytes, lang)
	}
	d.Held = slices.Clone(d.Held)
	for i := range d.Held {
		d.Held[i].When = FormatDate(d.Held[i].Received.In(s.loc), lang)
	}
	d.Digest = slices.Clone(d.Digest)
	for i := range d.Digest {
		d.Digest[i].Tickets = slices.Clone(d.Digest[i].Tickets)
		for j := range d.Digest[i].Tickets {
			if dt := d.Digest[i].Tickets[j].DueTime; !dt.IsZero() {
				d.Digest[i].Tickets[j].Due = FormatDate(dt.In(s.loc), lang)
			}
		}
	}
	if !d.DayTime.IsZero() {
		d.Day = FormatDay(d.DayTime, lang)
	}
	var subj, text, html bytes.Buffer
	if err := t.ExecuteTemplate(&subj, "subject", d); err != nil {
		return Rendered{}, fmt.Errorf("render %s subject: %w", key, err)
	}
	d.Subject = oneLine(subj.String())
	if err := t.ExecuteTemplate(&text, "layout", d); err != nil {
		return Rendered{}, fmt.Errorf("render %s text: %w", key, err)
	}
	if err := s.html[key].ExecuteTemplate(&html, "layout", d); err != nil {
		return Rendered{}, fmt.Errorf("render %s html: %w", key, err)
	}
	return Rendered{Subject: d.Subject, Text: strings.TrimLeft(text.String(), "\n"), HTML: html.String()}, nil
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// FormatSize writes a file size the way people read it: "812 bytes", "12,3 kB", "4,5 MB" in
// Dutch, with a decimal point in English.
func FormatSize(n int64, lang string) string {
	var s string
	switch {
	case n < 1000:
		return fmt.Sprintf("%d bytes", n)
	case n < 1000*1000:
		s = fmt.Sprintf("%.1f kB", float64(n)/1e3)
	default:
		s = fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	if lang != "en" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

var (
	dutchDays   = [...]string{"zondag", "maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag"}
	dutchMonths = [...]string{"januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
		"september", "oktober", "november", "december"}
)

// FormatDay writes a day: "maandag 30 november 2026", "Monday 30 November 2026".
func FormatDay(t time.Time, lang string) string {
	if lang == "en" {
		return t.Format("Monday 2 January 2006")
	}
	return fmt.Sprintf("%s %d %s %d", dutchDays[t.Weekday()], t.Day(), dutchMonths[t.Month()-1], t.Year())
}

// FormatDate writes a moment the way a customer reads it: "maandag 30 november 2026 om 13:00"
// in Dutch, "Monday 30 November 2026 at 13:00" in English, in t's location.
func FormatDate(t time.Time, lang string) string {
	if lang == "en" {
		return t.Format("Monday 2 January 2006 at 15:04")
	}
	return fmt.Sprintf("%s %d %s %d om %s", dutchDays[t.Weekday()], t.Day(), dutchMonths[t.Month()-1], t.Year(), t.Format("15:04"))
}
