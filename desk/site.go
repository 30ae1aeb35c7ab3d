package desk

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
)

// The customer's site: passwords, and what a ticket or a reply given on a form does. A form
// is written as an email from the customer — a MIME message with the text and the uploaded
// files, stored in the raw bucket like every email — and goes through the same apply as
// mail, so a site ticket has the same thread message, attachment numbering (`helpdesk ticket
// attachment`), notifications and dedupe entries as an emailed one.

// Password rules. A password is hashed with argon2id (RFC 9106) with a salt of its own; the
// parameters are OWASP's (46 MiB, one pass, one lane) and are kept in the PHC string, so a
// later version may raise them and still read the old hashes.
const (
	MinPasswordLength = 10
	MaxPasswordLength = 256
	argonTime         = 1
	argonMemory       = 46 * 1024 // KiB
	argonThreads      = 1
	argonKeyLen       = 32
	argonSaltLen      = 16
)

// Errors of CheckPassword, for the site to explain.
var (
	ErrPasswordShort   = errors.New("the password is too short")
	ErrPasswordLong    = errors.New("the password is too long")
	ErrPasswordAddress = errors.New("the password is one of the customer's own addresses or names")
	ErrPasswordSimple  = errors.New("the password is too simple: too few different characters, or a run of keys")
)

// minPasswordRunes is the least number of different characters (case and white space aside)
// of a password: ten spaces, "aaaaaaaaaa" or "1212121212" are long enough and guessed at once.
const minPasswordRunes = 5

// keyRuns are runs of keys that make a password of their own length without any thought
// ("1234567890", "qwertyuiop"); a password that is part of one is too simple.
var keyRuns = []string{"01234567890", "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm", "azertyuiopqsdfghjklmwxcvbn"}

// CheckPassword applies the password rules for customer c: at least MinPasswordLength
// characters, at most MaxPasswordLength bytes, not (a part of) the customer's own addresses
// or name, which anyone who has had an email from them knows, and not too simple (NIST SP
// 800-63B: repetitive or sequential characters): at least minPasswordRunes different
// characters, and not a run of keys such as 1234567890.
func CheckPassword(c *helpdesk.Customer, pw string) error {
	switch {
	case utf8.RuneCountInString(pw) < MinPasswordLength:
		return ErrPasswordShort
	case len(pw) > MaxPasswordLength:
		return ErrPasswordLong
	}
	low := strings.ToLower(strings.TrimSpace(pw))
	different := map[rune]bool{}
	for _, r := range low {
		if !unicode.IsSpace(r) {
			different[r] = true
		}
	}
	if len(different) < minPasswordRunes || slices.ContainsFunc(keyRuns, func(run string) bool { return strings.Contains(run, low) }) {
		return ErrPasswordSimple
	}
	guess := []string{strings.ToLower(c.Name)}
	for _, a := range c.Emails {
		local, domain, _ := strings.Cut(a, "@")
		guess = append(guess, a, local, domain, strings.TrimSuffix(domain, path.Ext(domain)))
	}
	for _, g := range guess {
		if g == "" {
			continue
		}
		squash := func(s string) string {
			return strings.Map(func(r rune) rune {
				if unicode.IsLetter(r) || unicode.IsDigit(r) {
					return r
				}
				return -1
			}, s)
		}
		if low == g || (len(squash(g)) >= 4 && squash(low) == squash(g)) || (len(g) >= 6 && strings.Contains(low, g) && len(low)-len(g) < 4) {
			return ErrPasswordAddress
		}
	}
	return nil
}

// HashPassword hashes a password with argon2id and a fresh salt, as a PHC string. It takes
// tens of milliseconds and 46 MiB on purpose: call it outside a store transaction.
func HashPassword(pw string) string {
	salt := make([]byte, argonSaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go 1.24+)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// dummyHash is checked against when an address has no password, so that a login for an
// unknown address takes as long as one for a known address (R18).
var dummyHash = "$argon2id$v=19$m=47104,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$Aq0m1Xb6mGr3GDcBc9n6Qwq1o2Mn3Un7uJ6q7JS2kZo"

// VerifyPassword reports whether pw matches the PHC string; an empty or unreadable hash
// matches nothing (after the same work as a real check). Call it outside a transaction.
func VerifyPassword(phc, pw string) bool {
	ok := phc != ""
	if !ok {
		phc = dummyHash
	}
	var v, m, t int
	var p uint8
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m <= 0 || m > 1<<20 || t <= 0 || t > 10 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, uint32(t), uint32(m), p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1 && ok
}

// SetPassword stores a customer's new password hash (made by HashPassword), ends every
// session of the customer — whoever was logged in with the old password is logged out — and
// voids the password links sent before (R16): a link in a mailbox someone else read must
// not undo the new password.
func (a *Desk) SetPassword(tx *store.Tx, customerID uint64, hash string, at time.Time) error {
	if err := tx.SetPassword(customerID, &helpdesk.Password{Hash: hash, Set: at}); err != nil {
		return err
	}
	if _, err := tx.EndSessions(customerID); err != nil {
		return err
	}
	if _, err := tx.VoidTokens(customerID, helpdesk.PurposePassword); err != nil {
		return fmt.Errorf("void the password links of customer %d: %w", customerID, err)
	}
	return nil
}

// ResetPassword uses a password link (R16) and sets the password it allows, in tx: the
// token is used up only together with the new password. Every bad link is
// store.ErrTokenInvalid, a link of another kind too.
func (a *Desk) ResetPassword(tx *store.Tx, token, hash string, at time.Time) (*helpdesk.Customer, error) {
	t, err := tx.PeekToken(token, at)
	if err != nil {
		return nil, err
	}
	if t.Purpose != helpdesk.PurposePassword {
		return nil, fmt.Errorf("%w: a %s link, not a password link", store.ErrTokenInvalid, t.Purpose)
	}
	res, err := a.Redeem(tx, token, at)
	if err != nil {
		return nil, err
	}
	if err := a.SetPassword(tx, res.Customer, hash, at); err != nil {
		return nil, err
	}
	return tx.Customer(res.Customer)
}

// Upload is one file a customer sent with a form.
type Upload struct {
	Name, Type string
	Content    []byte
}

// WebPost is a ticket or a reply written on the site.
type WebPost struct {
	Customer *helpdesk.Customer
	From     string // the address the customer logged in with (one of theirs)
	Subject  string // a new ticket's subject
	Text     string
	Files    []Upload
	At       time.Time
	// Choices are a new ticket's urgent and contact choices (R12–R14); AnyDesk is the
	// customer's AnyDesk address for a callback, added to the text for staff.
	Choices policy.WebChoices
	AnyDesk string
}

// WebTicket creates the ticket a customer asked for on the site, through the rules of an
// email (policy.DecideWebTicket): a refusal stores nothing and is returned for the form to
// explain; otherwise the submission is stored as an email from the customer and applied.
func (a *Desk) WebTicket(tx *store.Tx, p WebPost) (Outcome, *policy.Refusal, error) {
	e, err := a.webEmail(p, "")
	if err != nil {
		return Outcome{}, nil, err
	}
	d, refusal, err := a.Policy.DecideWebTicket(p.Customer, p.Choices, e, tx)
	if err != nil || refusal != nil {
		return Outcome{}, refusal, err
	}
	out, err := a.applyWeb(tx, e, d)
	return out, nil, err
}

// WebReply adds the customer's reply given on the site to their ticket, through the rules of
// an emailed reply (policy.DecideWebReply). A ticket of another customer is
// helpdesk.ErrNotFound.
func (a *Desk) WebReply(tx *store.Tx, ticketID uint64, p WebPost) (Outcome, *policy.Refusal, error) {
	t, err := tx.Ticket(ticketID)
	if err != nil {
		return Outcome{}, nil, fmt.Errorf("ticket %d: %w", ticketID, err)
	}
	if t.CustomerID != p.Customer.ID {
		return Outcome{}, nil, fmt.Errorf("ticket %d: %w", ticketID, helpdesk.ErrNotFound)
	}
	p.Subject = "Re: " + a.Policy.Ref(t.ID) + " " + t.Subject
	e, err := a.webEmail(p, a.lastMessageID(tx, t.ID))
	if err != nil {
		return Outcome{}, nil, err
	}
	d, refusal, err := a.Policy.DecideWebReply(p.Customer, t, e, tx)
	if err != nil || refusal != nil {
		return Outcome{}, refusal, err
	}
	out, err := a.applyWeb(tx, e, d)
	return out, nil, err
}

// lastMessageID is the Message-ID a reply on the site answers: the thread's last message.
func (a *Desk) lastMessageID(tx *store.Tx, ticketID uint64) string {
	msgs, err := tx.Messages(ticketID)
	if err != nil {
		return ""
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		if d := msgs[i].Direction; msgs[i].MessageID != "" && (d == helpdesk.DirectionIn || d == helpdesk.DirectionOut) {
			return msgs[i].MessageID
		}
	}
	return ""
}

func (a *Desk) applyWeb(tx *store.Tx, e *parse.Email, d policy.Decision) (Outcome, error) {
	rawHash, err := tx.PutRaw(e.Raw)
	if err != nil {
		return Outcome{}, err
	}
	return a.apply(tx, e, d, helpdesk.Source{Mailbox: SiteSource}, rawHash)
}

// SiteSource is the Source.Mailbox of a thread message written on the site.
const SiteSource = "site"

// webEmail writes a form as the email the customer could have sent, and reads it back as
// ingest reads mail.
func (a *Desk) webEmail(p WebPost, inReplyTo string) (*parse.Email, error) {
	text := strings.ReplaceAll(strings.TrimSpace(p.Text), "\r\n", "\n")
	if p.AnyDesk != "" {
		text += "\n\nAnyDesk: " + p.AnyDesk
	}
	raw, err := composeEmail(p.From, p.Customer.ContactName(p.From), oneLineText(p.Subject), text, a.newMessageID(), inReplyTo, p.At, p.Files)
	if err != nil {
		return nil, err
	}
	e := parse.Parse(raw, p.At)
	if e.Err != nil {
		return nil, fmt.Errorf("read back the form as an email: %w", e.Err)
	}
	return e, nil
}

// oneLineText makes a form field a header's worth: controls become spaces, runs of white
// space one.
func oneLineText(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
}

// composeEmail writes a MIME message (RFC 5322, 2045–2047, 2231): the text as quoted-printable
// UTF-8, each file base64 with its name and type.
func composeEmail(from, name, subject, text, msgID, inReplyTo string, at time.Time, files []Upload) ([]byte, error) {
	var b bytes.Buffer
	addr := "<" + from + ">"
	if name != "" {
		addr = mime.QEncoding.Encode("utf-8", oneLineText(name)) + " " + addr
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: helpdesk\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n",
		addr, mime.QEncoding.Encode("utf-8", subject), at.Format(time.RFC1123Z), msgID)
	if inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", inReplyTo, inReplyTo)
	}
	b.WriteString("X-Helpdesk-Source: site\r\nMIME-Version: 1.0\r\n")
	writeText := func(w *bytes.Buffer) {
		qp := quotedprintable.NewWriter(w)
		_, _ = qp.Write([]byte(strings.ReplaceAll(text, "\n", "\r\n")))
		_ = qp.Close()
		w.WriteString("\r\n")
	}
	const textType = "text/plain; charset=utf-8"
	if len(files) == 0 {
		b.WriteString("Content-Type: " + textType + "\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		writeText(&b)
		return b.Bytes(), nil
	}
	mw := multipart.NewWriter(&b)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", mw.Boundary())
	pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {textType}, "Content-Transfer-Encoding": {"quoted-printable"}})
	if err != nil {
		return nil, err
	}
	var tb bytes.Buffer
	writeText(&tb)
	if _, err := pw.Write(tb.Bytes()); err != nil {
		return nil, err
	}
	for _, f := range files {
		ctype := "application/octet-stream"
		if mt, _, err := mime.ParseMediaType(f.Type); err == nil && strings.Count(mt, "/") == 1 {
			ctype = mt
		}
		name := UploadName(f.Name)
		h := textproto.MIMEHeader{
			"Content-Type":              {mime.FormatMediaType(ctype, map[string]string{"name": name})},
			"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": name})},
			"Content-Transfer-Encoding": {"base64"},
		}
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "application/octet-stream")
		}
		fw, err := mw.CreatePart(h)
		if err != nil {
			return nil, err
		}
		enc := base64.StdEncoding.EncodeToString(f.Content)
		for len(enc) > 76 {
			_, _ = fmt.Fprintf(fw, "%s\r\n", enc[:76])
			enc = enc[76:]
		}
		_, _ = fmt.Fprintf(fw, "%s\r\n", enc)
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// UploadName is the name a file keeps: the last path element the browser sent, without
// control characters, at most 100 characters; "bestand" when nothing is left.
func UploadName(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError || unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 100 {
		s = string(r[len(r)-100:])
	}
	if s == "" || s == "." || s == ".." {
		return "bestand"
	}
	return s
}

// Invite queues an invitation to the site to the login address of the customer who has addr:
// a link to set a password (helpdesk customer invite). An operator sends it on purpose, so
// the limits of what anyone can ask for do not apply; it is counted where they look. An
// unknown address is helpdesk.ErrNotFound.
func (a *Desk) Invite(tx *store.Tx, addr string, at time.Time) (*helpdesk.Customer, error) {
	c, err := tx.CustomerByAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("customer with the address %s: %w", addr, err)
	}
	n := a.recoveryNotice(helpdesk.KindInvite, c.Login(), c, at)
	n.Automatic = false
	n.Data.TokenPurpose, n.Data.CustomerID = helpdesk.PurposePassword, c.ID
	if err := tx.Enqueue(n); err != nil {
		return nil, fmt.Errorf("queue invitation: %w", err)
	}
	return c, recordSent(tx, n.To, n.Kind, c.ID, at)
}
