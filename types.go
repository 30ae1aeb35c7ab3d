package helpdesk

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Tier is a customer's service level (R2).
type Tier string

// The service levels of R2; the number is the first-response time in working hours (R6).
const (
	SLA24 Tier = "SLA24" // free
	SLA8  Tier = "SLA8"  // paid
	SLA4  Tier = "SLA4"  // maintenance contract
	// TierNone is no tier at all: the free status of a customer without paid support for a
	// long time has lapsed (R21). It is served, never set: ParseTier does not accept it.
	TierNone Tier = "none"
)

// ParseTier accepts a tier name in any case ("sla8", "SLA8").
func ParseTier(s string) (Tier, error) {
	switch t := Tier(strings.ToUpper(strings.TrimSpace(s))); t {
	case SLA24, SLA8, SLA4:
		return t, nil
	}
	return "", fmt.Errorf("unknown SLA tier %q (want SLA24, SLA8 or SLA4)", s)
}

// Hours is the first-response time of the tier in working hours (R6).
func (t Tier) Hours() int {
	switch t {
	case SLA8:
		return 8
	case SLA4:
		return 4
	}
	return 24
}

// Paid reports whether the tier is a paid one (R2, R3).
func (t Tier) Paid() bool { return t == SLA8 || t == SLA4 }

// Date is a calendar date without a time or zone, such as a tier's valid-until date (R3).
// The zero Date means "no date".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate parses YYYY-MM-DD; the empty string gives the zero Date.
func ParseDate(s string) (Date, error) {
	if s == "" {
		return Date{}, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// DateOf returns the calendar date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// String formats d as YYYY-MM-DD, or "" for the zero Date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// AddMonths is the same day n months later (earlier for negative n); a day the month does
// not have is its last day: 2024-02-29 plus 12 months is 2025-02-28, 2026-01-31 plus one
// month 2026-02-28.
func (d Date) AddMonths(n int) Date {
	m := int(d.Month) - 1 + n
	y := d.Year + m/12
	if m %= 12; m < 0 {
		m += 12
		y--
	}
	last := time.Date(y, time.Month(m+2), 0, 12, 0, 0, 0, time.UTC).Day()
	return Date{y, time.Month(m + 1), min(d.Day, last)}
}

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// Midnight is the start of the day d in Amsterdam.
func (d Date) Midnight() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, Amsterdam())
}

// AddDays returns the date n days after d (before it for a negative n).
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC))
}

// MarshalJSON writes "YYYY-MM-DD" or "".
func (d Date) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Date) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Customer is a customer of the vendor, identified by any of their addresses (R1).
type Customer struct {
	ID   uint64 `json:"id"`
	Name string `json:"name"`
	// Emails are lower-case addresses; Emails[0] is the login address (R1).
	Emails     []string `json:"emails"`
	Tier       Tier     `json:"sla"`
	ValidUntil Date     `json:"valid_until"` // last day of the paid tier; zero: no end date (R3)
	Contract   bool     `json:"contract"`    // support contract (R8, R19)
	// Licence is the licence type (R2): one of the Licence* values, "" when unknown.
	Licence       string `json:"licence,omitempty"`
	Philanthropic bool   `json:"philanthropic,omitempty"` // free licence with free support (R4)
	Arrears       bool   `json:"arrears,omitempty"`       // payment status (R5): restricts callbacks (R13)
	// Maintainer is who maintains the system (R13): MaintainerVendor (default),
	// MaintainerThirdParty or MaintainerNone.
	Maintainer string    `json:"maintainer,omitempty"`
	Phones     []string  `json:"phones,omitempty"` // registered numbers, normalised "+31..." (R19)
	Lang       string    `json:"lang,omitempty"`   // "nl" (default) or "en"
	Answer     string    `json:"answer,omitempty"` // AnswerEmail (default) or AnswerSite (R14)
	Created    time.Time `json:"created"`
	// FreeUntil: the operator keeps the free status (SLA24) through this day, however long
	// ago paid support ended (R21); zero: not kept.
	FreeUntil Date `json:"free_until,omitzero"`
	// PaidEnded is the last day of a paid tier the customer had before they became SLA24
	// (R21): recorded when staff change a paid tier to SLA24, or set by them. The
	// valid-until day of an expired paid tier counts as well.
	PaidEnded Date `json:"paid_ended,omitzero"`
	// Contacts are the names of the people behind the addresses, by address (one of Emails),
	// for greeting them: set by staff, or learned from the display name of the
	// first email from the address. Absent in records written before.
	Contacts map[string]string `json:"contacts,omitempty"`
}

// Licence types (R2).
const (
	LicenceInfokasL = "infokas-l"
	LicenceInfokasS = "infokas-s"
	LicenceInfokasN = "infokas-n"
	LicenceTSPos    = "tspos"
	LicenceOther    = "other"
)

// Who maintains a customer's system (R13).
const (
	MaintainerVendor     = "vendor"
	MaintainerThirdParty = "third-party"
	MaintainerNone       = "none"
)

// Answer preferences (R14).
const (
	AnswerEmail = "email" // the full answer by email
	AnswerSite  = "site"  // a notification that an answer waits on the site
)

// MaintainedBy returns the maintainer, with the default.
func (c *Customer) MaintainedBy() string {
	if c.Maintainer == "" {
		return MaintainerVendor
	}
	return c.Maintainer
}

// Language returns the customer's language, with the default.
func (c *Customer) Language() string {
	if c.Lang == "" {
		return "nl"
	}
	return c.Lang
}

// AnswerBy returns the answer preference, with the default.
func (c *Customer) AnswerBy() string {
	if c.Answer == "" {
		return AnswerEmail
	}
	return c.Answer
}

// ContactName is the name of the person behind addr, one of the customer's addresses, or ""
// when none is known.
func (c *Customer) ContactName(addr string) string {
	return c.Contacts[NormalizeAddress(addr)]
}

// SetContactName sets (name "": removes) the name of the person behind addr.
func (c *Customer) SetContactName(addr, name string) {
	addr = NormalizeAddress(addr)
	if name == "" {
		delete(c.Contacts, addr)
		return
	}
	if c.Contacts == nil {
		c.Contacts = map[string]string{}
	}
	c.Contacts[addr] = name
}

// Login is the customer's login address (R1), where account mail goes (R16).
func (c *Customer) Login() string {
	if len(c.Emails) == 0 {
		return ""
	}
	return c.Emails[0]
}

// Ticket status values.
const (
	StatusOpen     = "open"
	StatusAnswered = "answered"
	StatusClosed   = "closed"
)

// Ticket priority values (R12).
const (
	PriorityNormal = "normal"
	PriorityUrgent = "urgent"
)

// Ticket is one customer question and its thread.
type Ticket struct {
	ID         uint64    `json:"id"`
	CustomerID uint64    `json:"customer_id"`
	Address    string    `json:"address"` // where answers go: the address the ticket came from
	Subject    string    `json:"subject"`
	Status     string    `json:"status"`
	Priority   string    `json:"priority"`
	Tier       Tier      `json:"sla"`     // the effective tier when the ticket arrived (R3)
	Created    time.Time `json:"created"` // arrival of the first email (IMAP INTERNALDATE)
	Due        time.Time `json:"due"`     // first-response deadline (R6); zero when none applies
	// Calendar is the working-hours calendar the deadline counts (R8): CalendarHelpdesk or
	// CalendarContract.
	Calendar string `json:"calendar,omitempty"`
	// RateZone is the rate zone at arrival (R7): "1", "2" or "closed".
	RateZone string `json:"rate_zone,omitempty"`
	// Surcharge: an urgent ticket carries a surcharge at SurchargeZone (R12): the zone at
	// arrival, or the next zone that opens when it arrived outside both.
	Surcharge     bool      `json:"surcharge,omitempty"`
	SurchargeZone int       `json:"surcharge_zone,omitempty"`
	Followup      string    `json:"followup,omitempty"` // FollowupSite, FollowupEmail or FollowupCallback (R13, R14)
	Payment       string    `json:"payment,omitempty"`  // PaymentPrepaid or PaymentPostpaid for callbacks (R13)
	Updated       time.Time `json:"updated"`
	Messages      int       `json:"messages"` // number of thread messages
	Replies       int       `json:"replies"`  // customer emails after the first (R11)
	// Assignee is the staff member the ticket is assigned to (#assign).
	Assignee string `json:"assignee,omitempty"`
	// FirstResponse is when staff first answered; FirstResponseMet whether that was by Due.
	FirstResponse    time.Time `json:"first_response,omitzero"`
	FirstResponseMet bool      `json:"first_response_met,omitempty"`
}

// Calendars a deadline can count (R8).
const (
	CalendarHelpdesk = "helpdesk" // helpdesk opening hours
	CalendarContract = "contract" // rate zone 1, Saturday morning included
)

// Follow-up kinds (R13, R14).
const (
	FollowupEmail    = "email"    // the answer is emailed
	FollowupSite     = "site"     // answer on the site, the customer is notified
	FollowupCallback = "callback" // staff call back (phone or AnyDesk) until solved
)

// Callback payment (R13).
const (
	PaymentPrepaid  = "prepaid"
	PaymentPostpaid = "postpaid"
)

// Message directions.
const (
	DirectionIn     = "in"     // from the customer
	DirectionOut    = "out"    // an answer from staff
	DirectionNote   = "note"   // an internal note of staff (#note): never sent to the customer
	DirectionReport = "report" // a delivery report about a notification of the ticket
)

// Attachment describes one attachment of a message; its bytes stay in the raw message.
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

// Source says where an ingested email came from on the IMAP server.
type Source struct {
	Mailbox     string `json:"mailbox,omitempty"`
	UIDValidity uint32 `json:"uidvalidity,omitempty"`
	UID         uint32 `json:"uid,omitempty"`
}

// Message is one email of a ticket's thread.
type Message struct {
	TicketID   uint64       `json:"ticket_id"`
	Seq        uint32       `json:"seq"`
	Direction  string       `json:"direction"`
	From       string       `json:"from"`
	FromName   string       `json:"from_name,omitempty"`
	Date       time.Time    `json:"date"` // arrival in the mailbox for "in", time stored for "out"
	HeaderDate time.Time    `json:"header_date,omitzero"`
	MessageID  string       `json:"message_id"`
	InReplyTo  []string     `json:"in_reply_to,omitempty"`
	References []string     `json:"references,omitempty"`
	Subject    string       `json:"subject"`
	Text       string       `json:"text"`
	HTML       string       `json:"html,omitempty"` // not filled: the raw message keeps it
	Attachment []Attachment `json:"attachments"`
	RawSHA256  string       `json:"raw_sha256,omitempty"` // key of the raw bytes in the raw bucket
	Size       int64        `json:"size,omitempty"`
	Source     Source       `json:"source,omitzero"`
	Warnings   []string     `json:"warnings,omitempty"` // what the parser had to repair
}

// Held reasons: why an email did not become a ticket message. Kept, never dropped.
const (
	HeldUnknownSender   = "unknown_sender" // R15
	HeldNoSender        = "no_sender"      // no usable From address
	HeldStaffNoTicket   = "staff_no_ticket"
	HeldUnparseable     = "unparseable"
	HeldTooLarge        = "too_large"
	HeldAutomatic       = "automatic"
	HeldOverLimit       = "over_limit"       // R11: over an SLA24 limit
	HeldUnfetchable     = "unfetchable"      // the server would not hand out the body; left in the mailbox
	HeldVanished        = "vanished"         // expunged by someone else before it could be read
	HeldStaffUnverified = "staff_unverified" // a staff From without a passing Authentication-Results
	HeldStaffCommand    = "staff_command"    // a staff email with a command that could not be applied
	HeldSpoofed         = "spoofed"          // claims a customer's address, fails DMARC
	HeldRecovery        = "recovery"         // a password or login recovery request (R16, R17)
	HeldBounce          = "bounce"           // a delivery report about a notification without a ticket
	HeldInternal        = "internal_error"
	// HeldDuplicateHeader: a field RFC 5322 allows once (From, Subject, ...) occurs more than
	// once; readers disagree on which copy counts. A release reads the bottom-most.
	HeldDuplicateHeader = "duplicate_header"
	// HeldSLA24Lapsed: a new question of a customer whose free status lapsed (R21); a release
	// opens it as SLA24, the operator's fair-use decision.
	HeldSLA24Lapsed = "sla24_lapsed"
)

// HeldReasons lists every Held* reason code.
func HeldReasons() []string {
	return []string{HeldUnknownSender, HeldNoSender, HeldStaffNoTicket, HeldUnparseable, HeldTooLarge,
		HeldAutomatic, HeldOverLimit, HeldUnfetchable, HeldVanished, HeldStaffUnverified, HeldStaffCommand,
		HeldSpoofed, HeldRecovery, HeldBounce, HeldInternal, HeldDuplicateHeader, HeldSLA24Lapsed}
}

// Held is an email that did not become a ticket message, with its reason.
type Held struct {
	ID        uint64    `json:"id"`
	MessageID string    `json:"message_id"`
	From      string    `json:"from"`
	FromName  string    `json:"from_name,omitempty"` // the sender's display name
	Subject   string    `json:"subject"`
	Reason    string    `json:"reason"` // one of the Held* codes
	Detail    string    `json:"detail"` // a sentence for staff
	Received  time.Time `json:"received"`
	RawSHA256 string    `json:"raw_sha256,omitempty"` // empty when the email was left on the server
	Size      int64     `json:"size"`
	Source    Source    `json:"source,omitzero"`
	// CustomerID is the sender's customer, when the sender is one.
	CustomerID uint64 `json:"customer_id,omitempty"`
	// Released: staff turned it into a ticket message after all (R11); Ref says which.
	Released   bool      `json:"released,omitempty"`
	ReleasedAs Ref       `json:"released_as,omitzero"`
	ReleasedAt time.Time `json:"released_at,omitzero"`
	ReleasedBy string    `json:"released_by,omitempty"` // the operator's user
	// Dismissed: staff saw it and decided nothing more is to be done (kept, not deleted).
	Dismissed   bool      `json:"dismissed,omitempty"`
	DismissedAt time.Time `json:"dismissed_at,omitzero"`
	DismissedBy string    `json:"dismissed_by,omitempty"`
	DismissNote string    `json:"dismiss_note,omitempty"`
	// Reported is when the staff list was told of it (a held notice), zero while it waits
	// for the next one; NoReport: it needs no notice of its own (staff were told otherwise, or
	// nothing is left to do).
	Reported time.Time `json:"reported,omitzero"`
	NoReport bool      `json:"no_report,omitempty"`
}

// Handled reports whether staff dealt with a held email: released or dismissed.
func (h *Held) Handled() bool { return h.Released || h.Dismissed }

// Notification kinds; each is a template under templates/.
const (
	KindAck           = "ack"            // new ticket acknowledged
	KindAnswer        = "answer"         // a staff answer forwarded to the customer
	KindUnknownSender = "unknown_sender" // R15: how to get access
	KindOverLimit     = "over_limit"     // R11: an SLA24 limit was reached
	KindAnswerSite    = "answer_site"    // R14: an answer waits on the site (no answer text)
	KindStaffNew      = "staff_new"      // to the staff list: a new ticket
	KindStaffReply    = "staff_reply"    // to the staff list: a customer replied
	KindStaffError    = "staff_error"    // to a staff member: their email could not be applied
	KindStaffRefused  = "staff_refused"  // to the staff list: a staff email failed authentication
	KindPasswordReset = "password_reset" // R16: a reset link to the login address
	KindLoginConfirm  = "login_confirm"  // R17: confirm the new login address
	KindLoginNotice   = "login_notice"   // R17: tell the old login address
	KindTooLarge      = "too_large"      // the sender's email was above the size limit
	KindStaffHeld     = "staff_held"     // to the staff list: emails held since the last such notice
	KindStaffLogin    = "staff_login"    // R17: to the staff list: a login change was asked for
	KindLoginChanged  = "login_changed"  // R17: to the old and the new login: the change took effect
	KindStaffWarning  = "staff_warning"  // to the staff list: a first-response deadline is near (R6–R9)
	KindStaffBreach   = "staff_breach"   // to the staff list and the assignee: a deadline passed unanswered
	KindStaffDigest   = "staff_digest"   // to the staff list: the daily digest of the queue
	KindInvite        = "invite"         // an operator's invitation to the site: a link to set a password
	KindSLA24Lapsed   = "sla24_lapsed"   // R21: the free status lapsed; how to get SLA8
)

// InviteTTL is how long the link of an invitation to the site works: a new customer may
// read it days later. Recovery links work token_ttl.
const InviteTTL = 7 * 24 * time.Hour

// Notification states.
const (
	NotifyQueued = "queued"
	NotifySent   = "sent"
	NotifyFailed = "failed"
)

// NotifyData is what a notification's template may show. Customer-supplied strings are
// escaped by the templates, never trusted.
type NotifyData struct {
	CustomerName string `json:"customer_name,omitempty"`
	// ContactName is the person behind the address the notification goes to, when known: the
	// greeting names them rather than the company.
	ContactName   string    `json:"contact_name,omitempty"`
	TicketSubject string    `json:"ticket_subject,omitempty"`
	Due           time.Time `json:"due,omitzero"`
	Text          string    `json:"text,omitempty"` // the answer text (KindAnswer)
	StaffName     string    `json:"staff_name,omitempty"`
	OrigSubject   string    `json:"orig_subject,omitempty"` // subject of the email answered
	OrigDate      time.Time `json:"orig_date,omitzero"`
	Address       string    `json:"address,omitempty"` // the address the email came from
	// The SLA policy's decisions the customer is told about (acknowledgement).
	Tier          Tier     `json:"tier,omitempty"`
	Priority      string   `json:"priority,omitempty"`
	SurchargeZone int      `json:"surcharge_zone,omitempty"`
	Followup      string   `json:"followup,omitempty"`
	Payment       string   `json:"payment,omitempty"`
	Notes         []string `json:"notes,omitempty"` // policy.Note* codes
	ValidUntil    Date     `json:"valid_until,omitzero"`
	// Limit is the SLA24 limit reached (over_limit notices): its kind and value.
	LimitKind  string `json:"limit_kind,omitempty"`
	LimitValue int    `json:"limit_value,omitempty"`
	// Error is what went wrong with a staff email (staff_error, staff_refused).
	Error string `json:"error,omitempty"`
	// Auth is why a staff email was refused (staff_refused), in parts the template words in
	// the notice's language; Error keeps the English sentence, for notices queued before.
	Auth AuthReason `json:"auth,omitzero"`
	// Token asks notify to issue a recovery token of this purpose for CustomerID (and
	// NewEmail) when it sends: the raw token is never stored, only its hash.
	TokenPurpose string `json:"token_purpose,omitempty"`
	CustomerID   uint64 `json:"customer_id,omitempty"`
	NewEmail     string `json:"new_email,omitempty"`
	// LoginChange is the login change (R17) a login_confirm, login_notice or staff_login is
	// about: notify issues its tokens; Until is when it takes effect unless cancelled.
	LoginChange uint64    `json:"login_change,omitempty"`
	Until       time.Time `json:"until,omitzero"`
	// Attachments are the files of the email the notification is about: a staff answer's
	// files for the customer, a customer's files for staff. Notify carries them or lists them.
	Attachments []NotifyAttachment `json:"attachments,omitempty"`
	// Held lists the held emails a staff_held notice reports, or a digest's held emails.
	Held []HeldItem `json:"held,omitempty"`
	// Assignee is the ticket's assignee (escalation notices).
	Assignee string `json:"assignee,omitempty"`
	// Digest is the daily digest's sections (staff_digest); Day the day it is of.
	Digest []DigestSection `json:"digest,omitempty"`
	Day    Date            `json:"day,omitzero"`
}

// The sections of the daily digest, in the order it shows them.
const (
	DigestBreached    = "breached"     // awaiting a first response, the deadline passed
	DigestDueToday    = "due_today"    // awaiting a first response, due today
	DigestDueTomorrow = "due_tomorrow" // awaiting a first response, due on the next working day
	DigestUrgent      = "urgent"       // open and urgent (R12)
	DigestUnassigned  = "unassigned"   // open, no one assigned
	DigestAssignee    = "assignee"     // open, assigned to Assignee
)

// DigestSection is one section of the daily digest.
type DigestSection struct {
	Kind     string         `json:"kind"`
	Assignee string         `json:"assignee,omitempty"` // DigestAssignee: whose tickets
	Tickets  []DigestTicket `json:"tickets"`
}

// DigestTicket is one ticket line of the digest.
type DigestTicket struct {
	ID       uint64    `json:"id"`
	Subject  string    `json:"subject"`
	Customer string    `json:"customer,omitempty"`
	Tier     Tier      `json:"sla,omitempty"`
	Priority string    `json:"priority,omitempty"`
	Status   string    `json:"status,omitempty"`
	Due      time.Time `json:"due,omitzero"` // zero when answered or without a deadline
	Assignee string    `json:"assignee,omitempty"`
}

// NotifyAttachment is a file a notification carries or names. Its bytes stay in the raw email
// it came with: notify reads them from there when it sends.
type NotifyAttachment struct {
	// Number is its place among the ticket's files: helpdesk ticket attachment TICKET NUMBER.
	Number      int    `json:"number"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Raw         string `json:"raw"`   // key of the raw email in the raw bucket
	Index       int    `json:"index"` // its place among that email's attachments
}

// HeldItem is one held email in a staff_held notice.
type HeldItem struct {
	ID       uint64    `json:"id"`
	From     string    `json:"from"`
	Subject  string    `json:"subject"`
	Reason   string    `json:"reason"`
	Detail   string    `json:"detail"`
	Received time.Time `json:"received"`
}

// AuthReason is why the authentication of an email was not accepted (mail/authres.Reason):
// Code names the sentence, the other fields fill it in.
type AuthReason struct {
	Code   string `json:"code"`
	Result string `json:"result,omitempty"`
	Domain string `json:"domain,omitempty"`
	Other  string `json:"other,omitempty"`
	Server string `json:"server,omitempty"`
}

// Notification is one outgoing message in the outbox.
type Notification struct {
	ID          uint64     `json:"id"`
	Kind        string     `json:"kind"`
	TicketID    uint64     `json:"ticket_id,omitempty"`
	HeldID      uint64     `json:"held_id,omitempty"`
	To          string     `json:"to"`
	Lang        string     `json:"lang"`
	Automatic   bool       `json:"automatic"`  // Auto-Submitted: auto-replied (RFC 3834)
	MessageID   string     `json:"message_id"` // fixed at enqueue, so a retry is the same message
	InReplyTo   string     `json:"in_reply_to,omitempty"`
	References  []string   `json:"references,omitempty"`
	Data        NotifyData `json:"data"`
	Subject     string     `json:"subject,omitempty"` // as rendered at the last attempt
	Status      string     `json:"status"`
	Attempts    int        `json:"attempts"`
	NextAttempt time.Time  `json:"next_attempt,omitzero"`
	LastError   string     `json:"last_error,omitempty"`
	// AttachNote says what became of the attachments when they were not all carried (too
	// large for the staff limit or the server's SIZE); set when the notification is sent.
	AttachNote string    `json:"attach_note,omitempty"`
	Created    time.Time `json:"created"`
	Sent       time.Time `json:"sent,omitzero"`
}

// MailboxState is the ingest checkpoint of one IMAP mailbox.
type MailboxState struct {
	Name        string `json:"name"`
	UIDValidity uint32 `json:"uidvalidity"`
	LastUID     uint32 `json:"last_uid"` // every UID up to here is committed
	UIDNext     uint32 `json:"uidnext"`  // as the server last reported it
	// PendingMark holds UIDs committed but not yet flagged \Seen (or moved) on the server;
	// a crash between commit and flag is finished at the next start.
	PendingMark []UIDRange `json:"pending_mark,omitempty"`
	// QuietBefore: mail that arrived before this moment is ingested without automatic
	// replies — the backlog found at the first sync, or when the mailbox was reset.
	QuietBefore time.Time `json:"quiet_before,omitzero"`
	Updated     time.Time `json:"updated"`
}

// ParseAttempts is what the gateway was reading in a mailbox, so that an email whose reading
// brought the gateway down is not read again at the next start (ingest's crash net; see the
// package doc). Only UIDs above the mailbox's checkpoint count; the commit that moves the
// checkpoint past them removes them.
type ParseAttempts struct {
	Mailbox     string `json:"mailbox"`
	UIDValidity uint32 `json:"uidvalidity"`
	// Batches are batches of emails being read: written, and synced to disk, before the
	// reading starts. After a stop, their emails are read again one at a time.
	Batches []UIDRange `json:"batches,omitempty"`
	// Alone is the email being read on its own, one of a batch that was being read when the
	// gateway stopped; 0 for none. AloneDeaths counts the earlier readings of it alone that
	// the gateway did not survive: at two it is not read again.
	Alone       uint32 `json:"alone,omitempty"`
	AloneDeaths int    `json:"alone_deaths,omitempty"`
	// Suspects are emails whose reading ran long: they are not read again.
	Suspects []ParseSuspect `json:"suspects,omitempty"`
}

// ParseSuspect is an email whose reading ran long.
type ParseSuspect struct {
	UID  uint32    `json:"uid"`
	Note string    `json:"note"` // what happened, for the held email's detail
	At   time.Time `json:"at"`
}

// Empty reports whether a holds nothing.
func (a *ParseAttempts) Empty() bool {
	return len(a.Batches) == 0 && a.Alone == 0 && len(a.Suspects) == 0
}

// UIDRange is an inclusive range of IMAP UIDs.
type UIDRange struct {
	Start uint32 `json:"start"`
	Stop  uint32 `json:"stop"`
}

// Ref says what an ingested email became: a thread message or a held email.
type Ref struct {
	TicketID uint64 `json:"ticket_id,omitempty"`
	Seq      uint32 `json:"seq,omitempty"`
	HeldID   uint64 `json:"held_id,omitempty"`
}

// Token purposes (R16, R17).
const (
	PurposePassword    = "password"     // reset the password
	PurposeLogin       = "login"        // the new address confirms a login change (NewEmail)
	PurposeLoginAllow  = "login_allow"  // the old login agrees to a login change
	PurposeLoginCancel = "login_cancel" // the old login stops a login change
)

// Token is a recovery token, stored under the SHA-256 of its value: the value itself is only
// ever in the link that was emailed.
type Token struct {
	Purpose    string    `json:"purpose"`
	CustomerID uint64    `json:"customer_id"`
	NewEmail   string    `json:"new_email,omitempty"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
	Used       time.Time `json:"used,omitzero"`
	Voided     bool      `json:"voided,omitempty"` // a newer token for the same purpose was issued
	// LoginChange is the login change a login, login_allow or login_cancel token belongs to.
	LoginChange uint64 `json:"login_change,omitempty"`
}

// LoginChange is a request to make another address a customer's login (R17). It takes effect
// only when the new address has confirmed and the old login agreed, or staff approved, or
// Until passed without a cancellation (ingest and policy decide; the store keeps the record).
// A customer has at most one that is not settled (Pending).
type LoginChange struct {
	ID         uint64    `json:"id"`
	CustomerID uint64    `json:"customer_id"`
	NewEmail   string    `json:"new_email"`
	OldLogin   string    `json:"old_login"` // the login when it was asked for
	Requested  time.Time `json:"requested"`
	// Until is the end of the cooling-off period: the change takes effect then (once the
	// new address confirmed) unless the old login or staff cancelled it.
	Until time.Time `json:"until"`
	// ConfirmBy is when the new address's link expires (set when it is sent).
	ConfirmBy    time.Time `json:"confirm_by,omitzero"`
	NewConfirmed time.Time `json:"new_confirmed,omitzero"`
	OldConfirmed time.Time `json:"old_confirmed,omitzero"`
	Approved     time.Time `json:"approved,omitzero"`
	ApprovedBy   string    `json:"approved_by,omitempty"`
	// Settled is when it was applied, cancelled or expired; Outcome says which
	// (LoginApplied, ...), By who did it and Detail why.
	Settled time.Time `json:"settled,omitzero"`
	Outcome string    `json:"outcome,omitempty"`
	By      string    `json:"by,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// Outcomes of a login change.
const (
	LoginApplied   = "applied"   // the new address is the login
	LoginCancelled = "cancelled" // by the old login or staff
	LoginExpired   = "expired"   // the new address did not confirm in time
	LoginFailed    = "failed"    // the new address belonged to another customer by then
)

// Pending reports whether the change is not settled yet.
func (c *LoginChange) Pending() bool { return c.Settled.IsZero() }

// Password is a customer's password for the site, as a PHC string
// ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"): never the password itself. It is kept apart
// from the Customer record, so that no listing, export or backup of customers shows it.
type Password struct {
	Hash string    `json:"hash"`
	Set  time.Time `json:"set"`
}

// Session is a customer's login on the site, stored under the SHA-256 of its random id: the
// id itself is only ever in the customer's cookie. It ends at logout, at a password change
// (every session of the customer), after an idle time and after an absolute lifetime.
type Session struct {
	CustomerID uint64    `json:"customer_id"`
	Address    string    `json:"address"` // the login address used
	Created    time.Time `json:"created"`
	LastSeen   time.Time `json:"last_seen"`
	// CSRF is the form token of the session's pages: every POST of a logged-in customer
	// carries it, besides the browser's own cross-origin checks.
	CSRF string `json:"csrf"`
}
