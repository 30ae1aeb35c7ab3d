package site

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/cmd/helpdesk/download"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/desk/view"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// recentClosed is how many closed tickets the Helpdesk page lists.
const recentClosed = 10

// Bounds of a form's text fields.
const (
	maxSubject = 200
	maxText    = 64 << 10
	maxFiles   = 10
)

// helpdesk is the personal Helpdesk page: the R3 status, the tier served today, the phone
// number for a telephone support contract (R19), the open and recent tickets.
func (s *Server) helpdesk(w http.ResponseWriter, r *http.Request, u *who) {
	now := s.cfg.Now()
	c := u.customer
	st := view.StatusOf(c, now, s.desk.Policy.SLA24LapseMonths())
	hp := &helpdeskPage{Customer: c.ID, Tier: st.SLA, Effective: st.EffectiveSLA, Status: statusText(st.Status, langOf(r, u)),
		Hours: helpdesk.Tier(st.EffectiveSLA).Hours(), Lapsed: st.EffectiveSLA == string(helpdesk.TierNone)}
	if through, _ := policy.CallerVerdict(c, now); through && s.cfg.Phone != "" {
		hp.Phone, hp.Phones = s.cfg.Phone, c.Phones
	}
	err := s.db.View(r.Context(), func(tx *store.Tx) error {
		ts, err := view.CustomerTickets(tx, c.Login())
		if err != nil {
			return err
		}
		for _, t := range ts {
			row := rowOf(t)
			if t.Status == helpdesk.StatusClosed {
				hp.Closed = append(hp.Closed, row)
			} else {
				hp.Open = append(hp.Open, row)
			}
		}
		return nil
	})
	if err != nil {
		s.internal(w, r, u, err)
		return
	}
	slices.SortStableFunc(hp.Closed, func(a, b ticketRow) int { return b.Created.Compare(a.Created) })
	if len(hp.Closed) > recentClosed {
		hp.Closed = hp.Closed[:recentClosed]
	}
	p := &page{Title: "helpdesk.title", Nav: "helpdesk", Helpdesk: hp}
	if r.URL.Query().Get("gezet") != "" {
		p.Notice = "notice.password_set"
	}
	s.render(w, r, u, http.StatusOK, "helpdesk", p)
}

func rowOf(t view.Ticket) ticketRow {
	return ticketRow{ID: t.ID, Subject: t.Subject, Status: t.Status, Priority: t.Priority,
		Created: timeOf(t.Created), Due: timeOf(t.Due), Followup: t.Followup}
}

func contacts() []string { return policy.Contacts() }

// maxUpload is the bound of a form's files in words, in the page's language.
func (s *Server) maxUpload(r *http.Request, u *who) string {
	return templates.FormatSize(s.cfg.MaxUpload, langOf(r, u))
}

func (s *Server) newTicketPage(r *http.Request, u *who) *newTicketPage {
	now := s.cfg.Now()
	c := u.customer
	lapsed := view.StatusOf(c, now, s.desk.Policy.SLA24LapseMonths()).EffectiveSLA == string(helpdesk.TierNone)
	return &newTicketPage{Lapsed: lapsed, SLA24: !policy.UrgentAllowed(c, now), Postpaid: policy.PostpaidAllowed(c, now),
		NoRight: c.MaintainedBy() != helpdesk.MaintainerVendor, Contacts: contacts(),
		MaxUpload: s.maxUpload(r, u)}
}

// backupVideo is the request for the backup instruction video: a ticket like any other,
// with its subject and text filled in.
const backupVideo = "backup-video"

func (s *Server) newTicketForm(w http.ResponseWriter, r *http.Request, u *who) {
	form := map[string]string{"contact": policy.ContactEmail}
	if u.customer.AnswerBy() == helpdesk.AnswerSite {
		form["contact"] = policy.ContactSite
	}
	p := &page{Title: "new.title", Nav: "helpdesk", New: s.newTicketPage(r, u), Form: form}
	if r.URL.Query().Get("verzoek") == backupVideo {
		lang := langOf(r, u)
		form["subject"], _ = s.pages.Text(lang, "backup.subject")
		form["text"], _ = s.pages.Text(lang, "backup.text")
	}
	s.render(w, r, u, http.StatusOK, "ticket_new", p)
}

// Bounds of a form with files besides the files themselves: its text fields together, and
// its parts (fields and files).
const (
	maxFields = 1 << 20
	maxParts  = 100
)

// Why the files of a form are refused (readParts).
const (
	filesTooLarge = "upload.too_large"
	filesTooMany  = "upload.too_many"
)

// readForm reads a form with files as it arrives — its text fields, then its files — and
// never more of it than the upload bound plus the fields: the files are kept in memory (at
// most max_message_bytes together, at most maxFiles), nothing goes to disk. It fills in keep
// (the fields to show again, by name) before anything is refused, checks the form token, and
// returns the files. ok false: it answered the request itself (refuse, forbidden, a form that
// cannot be read).
func (s *Server) readForm(w http.ResponseWriter, r *http.Request, u *who, keep map[string]string, refuse func(key string, args ...any)) ([]desk.Upload, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload+maxFields+64<<10)
	values, files, problem, err := s.readParts(r)
	for k := range keep {
		keep[k] = values.Get(k)
	}
	switch {
	case err != nil:
		s.log.Info("form with files refused", "path", r.URL.Path, "customer", u.customer.ID, "err", err.Error())
		s.message(w, r, u, http.StatusBadRequest, "error.title", "error.form")
	case !csrfMatches(values.Get("csrf"), u):
		s.forbidden(w, r, u)
	case problem == filesTooMany:
		refuse(filesTooMany, maxFiles)
	case problem == filesTooLarge:
		s.log.Info("files refused: too large together", "path", r.URL.Path, "customer", u.customer.ID, "max_message_bytes", s.cfg.MaxUpload)
		refuse(filesTooLarge, s.maxUpload(r, u))
	default:
		return files, true
	}
	return nil, false
}

// readParts reads the form's parts in order: the text fields into values (also those read
// before the files were refused, to show them again), the files in "attachment" into files.
// problem says why the files are refused; err is a form that cannot be read.
func (s *Server) readParts(r *http.Request) (values url.Values, files []desk.Upload, problem string, err error) {
	values = url.Values{}
	mr, err := r.MultipartReader()
	if errors.Is(err, http.ErrNotMultipart) { // a form sent without its files' encoding
		if err := r.ParseForm(); err != nil {
			if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
				return values, nil, filesTooLarge, nil
			}
			return values, nil, "", err
		}
		return r.PostForm, nil, "", nil
	}
	if err != nil {
		return values, nil, "", err
	}
	var total, fields int64
	for n := 0; ; n++ {
		part, err := mr.NextPart()
		switch tooLarge := (*http.MaxBytesError)(nil); {
		case errors.Is(err, io.EOF):
			return values, files, "", nil
		case errors.As(err, &tooLarge):
			return values, nil, filesTooLarge, nil
		case err != nil:
			return values, nil, "", fmt.Errorf("part %d: %w", n+1, err)
		case n == maxParts:
			return values, nil, "", fmt.Errorf("more than %d parts", maxParts)
		}
		name := part.FormName()
		if name != "attachment" {
			b, err := io.ReadAll(io.LimitReader(part, maxFields-fields+1))
			if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
				return values, nil, filesTooLarge, nil
			} else if err != nil {
				return values, nil, "", fmt.Errorf("field %q: %w", name, err)
			}
			if fields += int64(len(b)); fields > maxFields {
				return values, nil, "", fmt.Errorf("the fields are longer than %d bytes together", maxFields)
			}
			values.Add(name, string(b))
			continue
		}
		b, err := io.ReadAll(io.LimitReader(part, s.cfg.MaxUpload-total+1))
		if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
			return values, nil, filesTooLarge, nil
		} else if err != nil {
			return values, nil, "", fmt.Errorf("file %q: %w", part.FileName(), err)
		}
		if len(b) == 0 && part.FileName() == "" {
			continue // the empty file field of a form sent without a file
		}
		if total += int64(len(b)); total > s.cfg.MaxUpload {
			return values, nil, filesTooLarge, nil
		}
		if len(files) == maxFiles {
			return values, nil, filesTooMany, nil
		}
		files = append(files, desk.Upload{Name: part.FileName(), Type: part.Header.Get("Content-Type"), Content: b})
	}
}

// createTicket creates a ticket through the rules of an email (desk.WebTicket): a refused
// choice is explained on the form, which keeps what the customer wrote; nothing is stored.
func (s *Server) createTicket(w http.ResponseWriter, r *http.Request, u *who) {
	p := &page{Title: "new.title", Nav: "helpdesk", New: s.newTicketPage(r, u), Form: map[string]string{}}
	refuse := func(key string, args ...any) {
		p.Error, p.ErrorArgs = key, args
		s.render(w, r, u, http.StatusUnprocessableEntity, "ticket_new", p)
	}
	for _, k := range []string{"subject", "text", "contact", "anydesk", "urgent"} {
		p.Form[k] = ""
	}
	unlock, err := s.uploading.lock(r.Context(), u.customer.ID)
	if err != nil {
		return // the request ended while it waited for the customer's form before it
	}
	defer unlock()
	files, ok := s.readForm(w, r, u, p.Form, refuse)
	if !ok {
		return
	}
	againFiles(p, files)
	subject, text := strings.TrimSpace(p.Form["subject"]), strings.TrimSpace(p.Form["text"])
	switch {
	case subject == "":
		refuse("new.subject_missing")
		return
	case text == "":
		refuse("new.text_missing")
		return
	case utf8.RuneCountInString(subject) > maxSubject || len(text) > maxText || !utf8.ValidString(subject+text):
		refuse("new.too_long")
		return
	}
	anydesk := strings.TrimSpace(p.Form["anydesk"])
	if anydesk != "" && !validAnyDesk(anydesk) {
		refuse("new.anydesk")
		return
	}
	post := desk.WebPost{Customer: u.customer, From: u.session.Address, Subject: subject, Text: text, Files: files,
		At: s.cfg.Now(), Choices: policy.WebChoices{Urgent: p.Form["urgent"] != "", Contact: p.Form["contact"]}}
	if strings.HasPrefix(post.Choices.Contact, "callback") {
		post.AnyDesk = anydesk
	}
	var out desk.Outcome
	var refusal *policy.Refusal
	err = s.db.Update(r.Context(), func(tx *store.Tx) (err error) {
		out, refusal, err = s.desk.WebTicket(tx, post)
		return err
	})
	switch {
	case err != nil:
		s.internal(w, r, u, err)
		return
	case refusal != nil:
		s.log.Info("site ticket refused", "customer", u.customer.ID, "refusal", refusal.Code, "detail", refusal.Error())
		s.refusal(refuse, refusal)
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "site ticket", append(out.LogAttrs(), slog.Uint64("customer", u.customer.ID), slog.Int("files", len(files)))...)
	http.Redirect(w, r, fmt.Sprintf("/tickets/%d?nieuw=1", out.TicketID), http.StatusSeeOther)
}

// againFiles makes a refusal of the form say which files it dropped: a browser shows a form
// again with what was typed, never with the files chosen, so the customer must choose them
// again.
func againFiles(p *page, files []desk.Upload) {
	if len(files) == 0 {
		return
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = cmp.Or(parse.CleanLine(f.Name), "?")
	}
	p.ErrorMore, p.ErrorMoreArgs = "upload.again", []any{strings.Join(names, ", ")}
}

// refusal explains a refusal of the rules on the form.
func (s *Server) refusal(refuse func(string, ...any), rf *policy.Refusal) {
	if rf.Limit != nil {
		refuse("refuse.limit."+rf.Limit.Kind, rf.Limit.Limit)
		return
	}
	refuse("refuse." + rf.Code)
}

// validAnyDesk: an AnyDesk id (9 or 10 digits, spaces allowed) or alias (name@ad).
func validAnyDesk(s string) bool {
	digits := strings.ReplaceAll(s, " ", "")
	if n := len(digits); n >= 8 && n <= 12 && strings.Trim(digits, "0123456789") == "" {
		return true
	}
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@._-", r)) {
			return false
		}
	}
	return strings.Contains(s, "@")
}

// ticketFor reads ticket {id} of the path as its customer may see it; another customer's
// ticket is not found, as an unknown one is.
func (s *Server) ticketFor(r *http.Request, u *who) (*view.TicketDetail, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		return nil, helpdesk.ErrNotFound
	}
	var d *view.TicketDetail
	err = s.db.View(r.Context(), func(tx *store.Tx) error {
		t, err := tx.Ticket(id)
		if err != nil {
			return err
		}
		if t.CustomerID != u.customer.ID {
			return fmt.Errorf("ticket %d is customer %d's: %w", id, t.CustomerID, helpdesk.ErrNotFound)
		}
		d, err = view.CustomerTicketDetail(tx, id)
		return err
	})
	return d, err
}

func (s *Server) ticketPage(r *http.Request, d *view.TicketDetail, u *who) *ticketPage {
	tp := &ticketPage{ticketRow: ticketRow{ID: d.ID, Subject: d.Subject, Status: d.Status, Priority: d.Priority,
		Created: timeOf(d.Created), Due: timeOf(d.Due), Followup: d.Followup}, Tier: d.SLA, Payment: d.Payment,
		Surcharge: d.Surcharge, MaxUpload: s.maxUpload(r, u)}
	for _, m := range d.Messages {
		mr := messageRow{Staff: m.Direction == helpdesk.DirectionOut, From: m.From, Date: timeOf(m.Date), Text: m.Text}
		for _, a := range m.Attachments {
			mr.Files = append(mr.Files, fileRow{Number: a.Number, Name: a.Filename, Size: a.Size,
				URL: fmt.Sprintf("/tickets/%d/bijlagen/%d", d.ID, a.Number)})
		}
		tp.Messages = append(tp.Messages, mr)
	}
	return tp
}

// ticket shows a ticket's thread as its customer may see it: no internal notes, no staff
// addresses, the files to download.
func (s *Server) ticket(w http.ResponseWriter, r *http.Request, u *who) {
	d, err := s.ticketFor(r, u)
	switch {
	case errors.Is(err, helpdesk.ErrNotFound):
		s.log.Info("ticket not shown", "customer", u.customer.ID, "path", r.URL.Path, "why", err)
		s.notFound(w, r, u)
		return
	case err != nil:
		s.internal(w, r, u, err)
		return
	}
	p := &page{Title: "ticket.title", Nav: "helpdesk", Ticket: s.ticketPage(r, d, u)}
	switch {
	case r.URL.Query().Get("nieuw") != "":
		p.Notice = "notice.created"
	case r.URL.Query().Get("reactie") != "":
		p.Notice = "notice.replied"
	}
	s.render(w, r, u, http.StatusOK, "ticket", p)
}

// reply adds the customer's reply through the rules of an emailed reply (desk.WebReply): the
// SLA24 reply limit applies (R11); a refused reply stays in the form.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, u *who) {
	d, err := s.ticketFor(r, u)
	switch {
	case errors.Is(err, helpdesk.ErrNotFound):
		s.notFound(w, r, u)
		return
	case err != nil:
		s.internal(w, r, u, err)
		return
	}
	p := &page{Title: "ticket.title", Nav: "helpdesk", Ticket: s.ticketPage(r, d, u), Form: map[string]string{}}
	refuse := func(key string, args ...any) {
		p.Error, p.ErrorArgs = key, args
		s.render(w, r, u, http.StatusUnprocessableEntity, "ticket", p)
	}
	p.Form["text"] = ""
	unlock, err := s.uploading.lock(r.Context(), u.customer.ID)
	if err != nil {
		return // the request ended while it waited for the customer's form before it
	}
	defer unlock()
	files, ok := s.readForm(w, r, u, p.Form, refuse)
	if !ok {
		return
	}
	againFiles(p, files)
	text := strings.TrimSpace(p.Form["text"])
	switch {
	case text == "" && len(files) == 0:
		refuse("new.text_missing")
		return
	case len(text) > maxText || !utf8.ValidString(text):
		refuse("new.too_long")
		return
	}
	var out desk.Outcome
	var refusal *policy.Refusal
	err = s.db.Update(r.Context(), func(tx *store.Tx) (err error) {
		out, refusal, err = s.desk.WebReply(tx, d.ID, desk.WebPost{Customer: u.customer, From: u.session.Address,
			Text: text, Files: files, At: s.cfg.Now()})
		return err
	})
	switch {
	case err != nil:
		s.internal(w, r, u, err)
		return
	case refusal != nil:
		s.log.Info("site reply refused", "customer", u.customer.ID, "ticket", d.ID, "refusal", refusal.Code, "detail", refusal.Error())
		s.refusal(refuse, refusal)
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "site reply", append(out.LogAttrs(), slog.Uint64("customer", u.customer.ID), slog.Int("files", len(files)))...)
	http.Redirect(w, r, fmt.Sprintf("/tickets/%d?reactie=1", d.ID), http.StatusSeeOther)
}

// attachment serves file n of the customer's ticket as a download, byte for byte as it was
// sent: the stored type, Content-Disposition attachment, nosniff, and a sandbox policy, so
// that no file a sender chose is ever shown as a page of the site.
func (s *Server) attachment(w http.ResponseWriter, r *http.Request, u *who) {
	if _, err := s.ticketFor(r, u); err != nil {
		if errors.Is(err, helpdesk.ErrNotFound) {
			s.notFound(w, r, u)
			return
		}
		s.internal(w, r, u, err)
		return
	}
	id, _ := strconv.ParseUint(r.PathValue("id"), 10, 64)
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n <= 0 {
		s.notFound(w, r, u)
		return
	}
	var part parse.Part
	err = s.db.View(r.Context(), func(tx *store.Tx) (err error) {
		part, err = view.CustomerTicketFile(tx, id, n)
		return err
	})
	switch {
	case errors.Is(err, view.ErrNoAttachment), errors.Is(err, helpdesk.ErrNotFound):
		s.notFound(w, r, u)
		return
	case err != nil:
		s.internal(w, r, u, err)
		return
	}
	download.Serve(w, part)
}

func timeOf(t view.Time) time.Time { return time.Time(t) }

// statusText is the R3 status line in the page's language: in Dutch exactly as `customer
// status` prints it ("geldig", "geldig tot 31-12-2027", "verlopen op 31-10-2026").
func statusText(line, lang string) string {
	if lang != "en" {
		return line
	}
	for nl, en := range map[string]string{"geldig tot ": "valid until ", "verlopen op ": "expired on "} {
		if rest, ok := strings.CutPrefix(line, nl); ok {
			return en + rest
		}
	}
	if line == "geldig" {
		return "valid"
	}
	return line
}
