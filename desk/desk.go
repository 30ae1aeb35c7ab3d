package desk

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/rules/escalation"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
)

// Outcome is what one email became; ingest logs one line per email from it, after the commit.
type Outcome struct {
	UID       uint32
	MessageID string
	From      string
	Action    string // policy.Action name, or "duplicate"
	TicketID  uint64
	HeldID    uint64
	Reason    string // held reason code
	Detail    string
	Notified  int // notifications queued
	// Arrival is when the email reached the mailbox (IMAP INTERNALDATE); zero when unknown.
	// Metrics measure ingest latency from it.
	Arrival time.Time
	// Suppressed says which notifications the policy did not send, and why.
	Suppressed []policy.Suppression
	// Unbounced is the sender's address when this email ended the suspension of automatic mail
	// to it after a bounce (policy.Decision.Unbounce).
	Unbounced string
	// History: taken in as the mailbox's past (an import, old backlog): a new ticket was
	// created closed, without a deadline.
	History bool
}

// LogAttrs are the fields of the per-email log line.
func (o Outcome) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{slog.Uint64("uid", uint64(o.UID)), slog.String("message_id", o.MessageID),
		slog.String("from", o.From), slog.String("outcome", o.Action)}
	if o.TicketID != 0 {
		attrs = append(attrs, slog.Uint64("ticket", o.TicketID))
	}
	if o.HeldID != 0 {
		attrs = append(attrs, slog.Uint64("held", o.HeldID))
		if o.Action != "duplicate" { // a duplicate's reason was logged when it was held
			attrs = append(attrs, slog.String("reason", o.Reason), slog.String("detail", o.Detail))
		}
	}
	if o.Notified > 0 {
		attrs = append(attrs, slog.Int("notifications", o.Notified))
	}
	if len(o.Suppressed) > 0 {
		var not []string
		for _, s := range o.Suppressed {
			not = append(not, s.String())
		}
		attrs = append(attrs, slog.Any("not_sent", not))
	}
	if o.History {
		attrs = append(attrs, slog.Bool("history", true))
	}
	return attrs
}

// Desk turns parsed emails into store changes inside the caller's transaction. It is the
// one place where a policy decision becomes tickets, held emails and outbox rows, shared by the
// IMAP poller, the demo and tools that re-run ingest.
type Desk struct {
	Policy *policy.Policy
	// MessageIDDomain is the right-hand side of the Message-IDs of notifications.
	MessageIDDomain string
	// Lang is the language of notifications to customers without one (default "nl").
	Lang string
	// Quiet: an archive import. Queue no notifications, and take every email in as history
	// (see ApplyHistory): the archive's mail was answered long ago.
	Quiet bool
	// Now gives the time records are written; arrival times come from the email itself.
	Now func() time.Time
	// Escalation is when a ticket awaiting its first response warns the staff list (R6–R9).
	Escalation escalation.Thresholds
}

// Apply stores one email in tx: dedupe, decide, write. src says where it came from; quiet
// suppresses every notification (backlog found at the first sync, imports). It returns an
// error only for store failures; the caller then rolls back the whole batch.
func (a *Desk) Apply(tx *store.Tx, e *parse.Email, src helpdesk.Source, quiet bool) (Outcome, error) {
	return a.ApplyPacked(tx, e, nil, src, quiet)
}

// Packed is the byte-crunching of storing an email, done before its transaction (Pack): the raw
// bytes compressed, and the text of the thread message it would become, escaped and
// compressed. The (single) write transaction then only writes records and indexes.
type Packed struct {
	Raw  *store.PackedRaw
	Text *store.PackedText // nil: too short to be worth it
}

// Pack prepares e for ApplyPacked. It needs no transaction and is safe for concurrent use:
// the poller runs it on its parse workers.
func Pack(db *store.DB, e *parse.Email) (*Packed, error) {
	raw, err := db.PackRaw(e.SHA256, e.Raw)
	if err != nil {
		return nil, err
	}
	text, err := db.PackText(storedText(e))
	if err != nil {
		return nil, err
	}
	return &Packed{Raw: raw, Text: text}, nil
}

// ApplyPacked is Apply with the email packed beforehand (Pack, outside the transaction);
// packed may be nil.
func (a *Desk) ApplyPacked(tx *store.Tx, e *parse.Email, packed *Packed, src helpdesk.Source, quiet bool) (Outcome, error) {
	return a.applyPacked(tx, e, packed, src, quiet, false)
}

// ApplyHistory is ApplyPacked for an email of the mailbox's past — at a first sync, one that
// arrived longer than the backlog age before (an import takes every email in this way):
// nothing is sent about it, a new ticket it makes is closed and has no deadline (so it is
// never overdue, sorts below the work of today and does not count among a customer's open
// tickets, R11), and it reopens no ticket. A later customer email to such a ticket reopens it
// as usual.
func (a *Desk) ApplyHistory(tx *store.Tx, e *parse.Email, packed *Packed, src helpdesk.Source) (Outcome, error) {
	return a.applyPacked(tx, e, packed, src, true, true)
}

func (a *Desk) applyPacked(tx *store.Tx, e *parse.Email, packed *Packed, src helpdesk.Source, quiet, history bool) (Outcome, error) {
	out := Outcome{UID: src.UID, MessageID: e.MessageID, From: e.From}
	ref, dup, err := a.ingestedBefore(tx, e)
	if err != nil {
		return out, fmt.Errorf("dedupe: %w", err)
	}
	if dup {
		// Seen before (a replay after a crash, or the mailbox was recreated under a new
		// UIDVALIDITY): exactly once means doing nothing.
		out.Action, out.TicketID, out.HeldID = "duplicate", ref.TicketID, ref.HeldID
		return out, nil
	}
	var rawHash string
	if packed == nil {
		packed = &Packed{}
	}
	if packed.Raw != nil && packed.Raw.Sum == e.SHA256 {
		rawHash, err = tx.PutPackedRaw(packed.Raw)
	} else {
		rawHash, err = tx.PutRaw(e.Raw)
	}
	if err != nil {
		return out, err
	}
	history = history || a.Quiet
	decide := a.Policy.Decide
	if history {
		decide = a.Policy.DecideHistory
	}
	d, err := decide(e, tx)
	if err != nil {
		return out, fmt.Errorf("decide: %w", err)
	}
	if quiet {
		d.Notify = nil
	}
	return a.applyAs(tx, e, d, src, rawHash, history, packed.Text)
}

// ingestedBefore looks an email up by its raw bytes, then by its identity (Message-ID, sender,
// subject) for mail a server rewrote.
func (a *Desk) ingestedBefore(tx *store.Tx, e *parse.Email) (helpdesk.Ref, bool, error) {
	ref, ok, err := tx.Ingested(e.SHA256)
	if err != nil || ok {
		return ref, ok, err
	}
	if key, ok := store.IdentityKey(e.MessageID, e.From, e.Subject); ok {
		return tx.IngestedIdentity(key)
	}
	return helpdesk.Ref{}, false, nil
}

// ReleaseOptions are the operator's choices for Release.
type ReleaseOptions struct {
	// AsStaff: an email from a staff address held as unverified is applied as that staff
	// member's answer; the operator vouches for it.
	AsStaff bool
	// By is the operator's user, recorded on the held email and logged.
	By string
}

// Release turns a held email into the ticket or reply it would have been, with the SLA24
// limits lifted (R11: staff decide to help after all). An email that would still be held
// (an unknown sender, say) is refused with what would make it work; the held record stays
// either way, marked released, so nothing is lost and nothing is released twice.
func (a *Desk) Release(tx *store.Tx, heldID uint64, o ReleaseOptions) (Outcome, error) {
	h, err := tx.Held(heldID)
	if errors.Is(err, helpdesk.ErrNotFound) {
		return Outcome{}, fmt.Errorf("no held email %d (helpdesk ticket held -all lists them)", heldID)
	}
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{MessageID: h.MessageID, From: h.From}
	switch {
	case h.Released:
		return out, fmt.Errorf("held email %d was released already (ticket %d)", h.ID, h.ReleasedAs.TicketID)
	case h.RawSHA256 == "":
		return out, fmt.Errorf("held email %d (%s) was never fetched: it is still in the mailbox, deal with it there; %s", h.ID, h.Reason, dismissAdvice(h, true))
	}
	raw, err := tx.Raw(h.RawSHA256)
	if err != nil {
		return out, fmt.Errorf("raw message of held email %d: %w", h.ID, err)
	}
	e := parse.Parse(raw, h.Received)
	if len(e.Duplicates) > 0 {
		// The operator vouches for the email, and it is read as its sender's domain
		// signed it: the bottom-most copy of each field (RFC 6376 section 5.4.2), never a copy
		// added on top of the signed ones.
		e.ReadBottomMost()
	}
	d, err := a.Policy.DecideRelease(e, tx, o.AsStaff)
	if err != nil {
		return out, fmt.Errorf("decide: %w", err)
	}
	if d.Action == policy.ActionHold {
		return out, fmt.Errorf("held email %d cannot become a ticket message: %s (%s); %s", h.ID, d.HoldReason, d.HoldDetail, releaseHint(h, e, d))
	}
	out, err = a.applyAs(tx, e, d, h.Source, h.RawSHA256, false, nil)
	if err != nil {
		return out, err
	}
	h.Released, h.ReleasedAt, h.ReleasedBy = true, a.Now(), o.By
	h.ReleasedAs = helpdesk.Ref{TicketID: out.TicketID}
	return out, tx.PutHeld(h)
}

// releaseHint tells the operator exactly what makes a refused release work — and, for an email
// that was dismissed already, does not ask them to dismiss it.
func releaseHint(h *helpdesk.Held, e *parse.Email, d policy.Decision) string {
	switch d.HoldReason {
	case helpdesk.HeldUnknownSender:
		return fmt.Sprintf("make the address a customer's first — a new customer: helpdesk customer add -email %s -name NAME; "+
			"or an address of an existing one: helpdesk customer set EXISTING-ADDRESS -add-email %s — then run helpdesk ticket release %d again",
			e.From, e.From, h.ID)
	case helpdesk.HeldStaffUnverified:
		return fmt.Sprintf("if you are sure %s wrote it, release it as their answer with: helpdesk ticket release %d -as-staff (logged with your user name)", e.From, h.ID)
	case helpdesk.HeldStaffNoTicket:
		return fmt.Sprintf("a staff email must name a ticket: ask %s to answer the customer's email or put the ticket reference in the subject; %s", e.From, dismissAdvice(h, true))
	case helpdesk.HeldStaffCommand:
		return fmt.Sprintf("ask %s to send it again with the command corrected; %s", e.From, dismissAdvice(h, true))
	case helpdesk.HeldNoSender, helpdesk.HeldUnparseable:
		if h.Dismissed {
			return "read it in the mailbox and answer the sender yourself if nobody has; " + dismissAdvice(h, true)
		}
		return "read it in the mailbox and answer the sender yourself; " + dismissAdvice(h, true)
	case helpdesk.HeldAutomatic, helpdesk.HeldSpoofed:
		return "nothing should answer it; " + dismissAdvice(h, false)
	case helpdesk.HeldRecovery:
		return "a recovery request is answered automatically, not made a ticket; " + dismissAdvice(h, false)
	}
	return dismissAdvice(h, false)
}

// dismissAdvice ends a refused release's advice: dismiss the held email (after the step
// before: then) — or, when it was dismissed already, that nothing more is to be done with it.
func dismissAdvice(h *helpdesk.Held, then bool) string {
	if !h.Dismissed {
		if then {
			return fmt.Sprintf("then dismiss this one: helpdesk ticket held dismiss %d", h.ID)
		}
		return fmt.Sprintf("dismiss it with: helpdesk ticket held dismiss %d", h.ID)
	}
	s := "it was dismissed already"
	if !h.DismissedAt.IsZero() {
		s += " on " + h.DismissedAt.In(helpdesk.Amsterdam()).Format("2006-01-02 15:04")
	}
	if h.DismissedBy != "" {
		s += " by " + h.DismissedBy
	}
	return s + ": nothing more to do with it"
}

// Dismiss marks held emails handled: staff saw them and nothing more is to be done. They are
// kept (ticket held -all lists them) and no longer reported.
func (a *Desk) Dismiss(tx *store.Tx, ids []uint64, note, by string) error {
	for _, id := range ids {
		h, err := tx.Held(id)
		if errors.Is(err, helpdesk.ErrNotFound) {
			return fmt.Errorf("no held email %d (helpdesk ticket held -all lists them)", id)
		}
		if err != nil {
			return err
		}
		if h.Released {
			return fmt.Errorf("held email %d was released already (ticket %d): nothing to dismiss", id, h.ReleasedAs.TicketID)
		}
		h.Dismissed, h.DismissedAt, h.DismissedBy, h.DismissNote = true, a.Now(), by, note
		if err := tx.PutHeld(h); err != nil {
			return err
		}
	}
	return nil
}

// heldPerNotice bounds the held emails one staff_held notice lists; more wait for the next.
const heldPerNotice = 50

// ReportHeld queues one notice to the staff list of the held emails it has not been told of
// (held mail is seen). A burst is gathered: after a notice, the next waits until
// every has passed. now is the moment of the caller's round (its one reading of the clock).
// It returns when the next notice may go (zero: nothing is waiting). Without a staff list
// nothing is sent; the emails stay in ticket held.
func (a *Desk) ReportHeld(tx *store.Tx, every time.Duration, now time.Time) (time.Time, error) {
	to := a.Policy.StaffList()
	if to == "" || a.Quiet {
		return time.Time{}, nil
	}
	pending, err := tx.HeldPending(heldPerNotice)
	if err != nil || len(pending) == 0 {
		return time.Time{}, err
	}
	if next := tx.LastHeldNotice().Add(every); now.Before(next) {
		return next, nil
	}
	note := &helpdesk.Notification{Kind: helpdesk.KindStaffHeld, To: to, Lang: cmp.Or(a.Lang, "nl"),
		MessageID: a.newMessageID(), Created: now}
	for _, h := range pending {
		note.Data.Held = append(note.Data.Held, helpdesk.HeldItem{ID: h.ID, From: h.From, Subject: h.Subject,
			Reason: h.Reason, Detail: h.Detail, Received: h.Received})
		h.Reported = now
		if err := tx.PutHeld(h); err != nil {
			return time.Time{}, err
		}
	}
	if err := tx.Enqueue(note); err != nil {
		return time.Time{}, fmt.Errorf("queue held notice: %w", err)
	}
	if err := tx.SetLastHeldNotice(now); err != nil {
		return time.Time{}, err
	}
	if more, err := tx.HeldPending(1); err != nil || len(more) == 0 {
		return time.Time{}, err
	}
	return now.Add(every), nil
}

// Errors of AnswerFromAPI that the caller turns into answers of its own; an unknown ticket
// is helpdesk.ErrNotFound.
var (
	// ErrNotStaff: the answer's author is not a configured staff address.
	ErrNotStaff = errors.New("not a staff address")
	// ErrStaffCommand: a command in the answer cannot be applied; nothing was.
	ErrStaffCommand = errors.New("staff command not applied")
)

// AnswerFromAPI stores a staff answer given on the vendor's website (R14) as if
// staff had emailed it: the same commands (#close, #note, ...), the same thread message, the
// same first-response time and the same notification to the customer, threaded under their
// last email. It builds the Decision policy builds for an authenticated staff email and goes
// through apply, so the two paths cannot drift. The sender's authentication is the caller's
// (the API's bearer token), not an Authentication-Results header.
//
// from must be a staff address (ErrNotStaff); the ticket must exist (helpdesk.ErrNotFound);
// every command must apply (ErrStaffCommand, with the line), or nothing is written.
func (a *Desk) AnswerFromAPI(tx *store.Tx, ticketID uint64, from, text string, at time.Time) (Outcome, error) {
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %q", ErrNotStaff, from)
	}
	who := helpdesk.NormalizeAddress(addr.Address)
	staff := a.Policy.Staff()
	if !slices.Contains(staff, who) {
		return Outcome{}, fmt.Errorf("%w: %s", ErrNotStaff, who)
	}
	t, err := tx.Ticket(ticketID)
	if err != nil {
		return Outcome{}, fmt.Errorf("ticket %d: %w", ticketID, err)
	}
	act, err := policy.ParseStaffText(text, staff)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %v", ErrStaffCommand, err)
	}
	d := policy.Decision{Action: policy.ActionStaffAnswer, Ticket: t, Staff: &act, Auth: "the website's API token"}
	if act.Text != "" && !act.Note {
		// R14, as policy decides it for a staff email: with "answer via the site" the customer
		// is told an answer waits there, without the text.
		c, err := tx.CustomerByAddress(t.Address)
		if err != nil && !errors.Is(err, helpdesk.ErrNotFound) {
			return Outcome{}, err
		}
		kind := helpdesk.KindAnswer
		if t.Followup == helpdesk.FollowupSite || (c != nil && c.AnswerBy() == helpdesk.AnswerSite && t.Followup != helpdesk.FollowupEmail) {
			kind = helpdesk.KindAnswerSite
		}
		d.Notify = append(d.Notify, policy.Notice{Kind: kind, To: t.Address})
	}
	// The answer has no raw bytes; its dedupe key is its own generated Message-ID, which no
	// email's SHA-256 can collide with.
	e := &parse.Email{Arrival: at, Date: at, From: who, FromName: addr.Name, FromCount: 1,
		MessageID: a.newMessageID(), Subject: "Re: " + t.Subject, Text: text}
	e.SHA256 = sha256.Sum256([]byte("api-answer\x00" + e.MessageID))
	return a.apply(tx, e, d, helpdesk.Source{}, "")
}

// OperatorCommand applies one staff command given by an operator outside email — `helpdesk
// ticket close|reopen|assign` — as a staff email holding only that command would: the line
// ("#close", "#assign ADDR") is checked by policy.ParseStaffCommand, the check of a staff
// email's command lines, and applied through apply and applyStaff, so the two paths cannot
// drift. As with a commands-only staff email nothing is sent, and the thread keeps an internal
// note: the command, who gave it (operator: the person at the command line) and how (via:
// "helpdesk ticket close"), and what changed — what a staff member reading the thread later
// needs to know who closed it. A command that would change nothing (closing a closed ticket)
// writes nothing and returns an empty change.
//
// The ticket must exist (helpdesk.ErrNotFound); a command policy refuses (#assign to someone who
// is not staff) is ErrStaffCommand, and nothing is written.
func (a *Desk) OperatorCommand(tx *store.Tx, ticketID uint64, line, operator, via string, at time.Time) (change string, err error) {
	t, err := tx.Ticket(ticketID)
	if err != nil {
		return "", fmt.Errorf("ticket %d: %w", ticketID, err)
	}
	c, err := policy.ParseStaffCommand(line, a.Policy.Staff())
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrStaffCommand, err)
	}
	act := &policy.StaffAction{Commands: []policy.Command{c}, Note: true}
	after := *t
	applyStaff(&after, act, &helpdesk.Message{}, at)
	var changes []string
	for _, f := range []struct{ what, before, after string }{
		{"status", t.Status, after.Status}, {"priority", t.Priority, after.Priority}, {"assigned to", t.Assignee, after.Assignee},
	} {
		if f.before != f.after {
			changes = append(changes, fmt.Sprintf("%s %s → %s", f.what, cmp.Or(f.before, "nobody"), cmp.Or(f.after, "nobody")))
		}
	}
	if len(changes) == 0 {
		return "", nil
	}
	change = strings.Join(changes, ", ")
	operator = cmp.Or(operator, "an unknown operator")
	cmdText := strings.TrimSpace("#" + c.Name + " " + c.Arg)
	act.Text = fmt.Sprintf("%s\n%s, by %s (%s)", cmdText, change, operator, via)
	d := policy.Decision{Action: policy.ActionStaffAnswer, Ticket: t, Staff: act, Auth: "operator " + operator + " (" + via + ")"}
	// No raw bytes: the dedupe key is the note's own generated Message-ID, as for an answer
	// given on the website.
	e := &parse.Email{Arrival: at, Date: at, From: operator, FromCount: 1, MessageID: a.newMessageID(),
		Subject: cmdText, Text: act.Text}
	e.SHA256 = sha256.Sum256([]byte("operator-command\x00" + e.MessageID))
	if _, err := a.apply(tx, e, d, helpdesk.Source{}, ""); err != nil {
		return "", err
	}
	return change, nil
}

// apply writes what the decision says about the email: the ticket, thread message or held
// record, the dedupe entry and the notifications.
func (a *Desk) apply(tx *store.Tx, e *parse.Email, d policy.Decision, src helpdesk.Source, rawHash string) (Outcome, error) {
	return a.applyAs(tx, e, d, src, rawHash, false, nil)
}

// applyAs is apply; with history (or an import: Quiet) the email is the mailbox's past and
// leaves every ticket it touches as staff left it: a new ticket is closed, a closed one stays
// closed (see ApplyHistory).
func (a *Desk) applyAs(tx *store.Tx, e *parse.Email, d policy.Decision, src helpdesk.Source, rawHash string, history bool, text *store.PackedText) (Outcome, error) {
	history = history || a.Quiet
	out := Outcome{UID: src.UID, MessageID: e.MessageID, From: e.From, Arrival: e.Arrival}
	var err error
	out.Action = d.Action.String()
	now := a.Now()
	var ref helpdesk.Ref
	var ticket *helpdesk.Ticket
	var stored *helpdesk.Message // the thread message the email became

	switch d.Action {
	case policy.ActionHold:
		h := &helpdesk.Held{MessageID: e.MessageID, From: e.From, FromName: e.FromName, Subject: e.Subject, Reason: d.HoldReason,
			Detail: d.HoldDetail, Received: e.Arrival, RawSHA256: rawHash, Size: int64(len(e.Raw)), Source: src,
			NoReport: history || toldStaff(d)}
		if d.Customer != nil {
			h.CustomerID = d.Customer.ID
		}
		if d.Login != nil && !history {
			// A staff email's command on a login change (R17): applied, and the email kept
			// as handled.
			done, err := a.loginCommand(tx, d.Login, e.From, now)
			if err != nil {
				return out, err
			}
			h.Detail, h.Dismissed, h.DismissedAt, h.DismissedBy, h.DismissNote, h.NoReport = done, true, now, e.From, done, true
		}
		if err := tx.Hold(h); err != nil {
			return out, err
		}
		ref.HeldID, out.HeldID, out.Reason, out.Detail = h.ID, h.ID, h.Reason, h.Detail

	case policy.ActionNewTicket:
		ticket, err = a.newTicket(tx, e, d, now, history)
		if err != nil {
			return out, err
		}
		out.History = history
		fallthrough
	case policy.ActionReply:
		if err := learnContact(tx, d.Customer, e, d.Automatic); err != nil {
			return out, err
		}
		if ticket == nil {
			ticket = d.Ticket
			if d.Reopen && !history {
				ticket.Status = helpdesk.StatusOpen
			}
			ticket.Replies++ // R11 counts every one, an out-of-office reply too
		}
		ticket.Updated = now
		m := message(e, helpdesk.DirectionIn, rawHash, src)
		if err := tx.AddMessagePacked(ticket, m, text); err != nil {
			return out, err
		}
		ref.TicketID, ref.Seq, stored = ticket.ID, m.Seq, m
		if d.Unbounce != "" {
			if err := tx.ClearBounced(d.Unbounce); err != nil {
				return out, fmt.Errorf("end the bounce suspension of %s: %w", d.Unbounce, err)
			}
			out.Unbounced = d.Unbounce
		}

	case policy.ActionBounce:
		o, what, err := a.applyBounce(tx, e, d.Bounce, src, rawHash, now, text)
		if err != nil {
			return out, err
		}
		ref = o
		out.Detail = what
		if ref.HeldID != 0 {
			out.HeldID, out.Reason = ref.HeldID, helpdesk.HeldBounce
		}

	case policy.ActionStaffAnswer:
		ticket = d.Ticket
		m := message(e, helpdesk.DirectionOut, rawHash, src)
		closed := ticket.Status == helpdesk.StatusClosed
		applyStaff(ticket, d.Staff, m, e.Arrival)
		if history && closed {
			ticket.Status = helpdesk.StatusClosed // an old answer does not make an archived ticket work again
		}
		ticket.Updated = now
		if err := tx.AddMessagePacked(ticket, m, text); err != nil { // used when the text is the email's
			return out, err
		}
		ref.TicketID, ref.Seq, stored = ticket.ID, m.Seq, m
	}
	out.TicketID = ref.TicketID
	out.Suppressed = d.Suppressed
	if err := tx.MarkIngested(e.SHA256, ref); err != nil {
		return out, err
	}
	if key, ok := store.IdentityKey(e.MessageID, e.From, e.Subject); ok {
		if err := tx.MarkIngestedIdentity(key, ref); err != nil {
			return out, err
		}
	}
	if a.Quiet {
		return out, nil
	}
	for _, n := range d.Notify {
		note, err := a.notification(tx, n, e, d, ticket, stored, ref, now)
		if err != nil {
			return out, err
		}
		if err := tx.Enqueue(note); err != nil {
			return out, fmt.Errorf("queue %s notification: %w", n.Kind, err)
		}
		if n.Kind == helpdesk.KindOverLimit && d.Customer != nil {
			if err := tx.MarkLimitNotice(d.Customer.ID, helpdesk.Today(e.Arrival)); err != nil {
				return out, err
			}
		}
		if n.Automatic || policy.StaffNotice(n.Kind) {
			var customer uint64
			if d.Customer != nil {
				customer = d.Customer.ID
			}
			if err := recordSent(tx, n.To, n.Kind, customer, e.Arrival); err != nil {
				return out, err
			}
		}
		if scope := policy.StaffNoticeScope(n.To, e.MessageID); policy.StaffNotice(n.Kind) && scope != "" {
			if err := tx.RecordAutoReply(scope, n.Kind, e.Arrival); err != nil {
				return out, err
			}
		}
		out.Notified++
	}
	return out, nil
}

// learnContact records the display name of a customer's email as the contact name of its
// address when none is known (greet the person), in the caller's transaction, so the
// acknowledgement of the first email already greets them. A name staff set is never
// overwritten; an automatic reply's name (an autoresponder's) is not learned.
func learnContact(tx *store.Tx, c *helpdesk.Customer, e *parse.Email, automatic bool) error {
	if c == nil || automatic || c.ContactName(e.From) != "" || !slices.Contains(c.Emails, helpdesk.NormalizeAddress(e.From)) {
		return nil
	}
	name := policy.LearnedContactName(e.FromName, e.From)
	if name == "" {
		return nil
	}
	c.SetContactName(e.From, name)
	if err := tx.PutCustomer(c); err != nil {
		return fmt.Errorf("record contact name of %s: %w", e.From, err)
	}
	return nil
}

// newTicket creates the ticket of a new question with what the SLA policy planned for it; a
// ticket of the mailbox's past (history) is closed and has no deadline.
func (a *Desk) newTicket(tx *store.Tx, e *parse.Email, d policy.Decision, now time.Time, history bool) (*helpdesk.Ticket, error) {
	subject := e.Subject
	if subject == "" {
		subject = "(geen onderwerp)"
	}
	pl := d.Plan
	t := &helpdesk.Ticket{CustomerID: d.Customer.ID, Address: e.From, Subject: subject,
		Status: helpdesk.StatusOpen, Priority: pl.Priority, Tier: pl.Tier, Created: e.Arrival, Due: pl.Due,
		Calendar: pl.Calendar, RateZone: pl.RateZone, Surcharge: pl.Surcharge, SurchargeZone: pl.SurchargeZone,
		Followup: pl.Followup, Payment: pl.Payment, Updated: now}
	if t.Priority == "" {
		t.Priority = helpdesk.PriorityNormal
	}
	if t.Tier == "" {
		t.Tier = helpdesk.SLA24
	}
	if history {
		t.Status, t.Due = helpdesk.StatusClosed, time.Time{}
	}
	if err := tx.CreateTicket(t); err != nil {
		return nil, err
	}
	return t, nil
}

// applyBounce files a delivery report with the notification it is about: on that
// notification's ticket as a report (or held, for notifications without a ticket), and a
// permanent failure marks the notification failed and suspends automatic mail to the address.
// It returns where the report went and a line saying what it reports.
func (a *Desk) applyBounce(tx *store.Tx, e *parse.Email, b *policy.Bounce, src helpdesk.Source, rawHash string, now time.Time, text *store.PackedText) (helpdesk.Ref, string, error) {
	n, r := b.Notification, b.Report
	what := fmt.Sprintf("delivery report about notification %d (%s to %s): %s %s %s", n.ID, n.Kind, n.To, r.Action, r.Status, r.Diagnostic)
	var ref helpdesk.Ref
	if n.TicketID != 0 {
		t, err := tx.Ticket(n.TicketID)
		if err != nil {
			return ref, what, fmt.Errorf("ticket of notification %d: %w", n.ID, err)
		}
		m := message(e, helpdesk.DirectionReport, rawHash, src)
		t.Updated = now
		if err := tx.AddMessagePacked(t, m, text); err != nil {
			return ref, what, err
		}
		ref.TicketID, ref.Seq = t.ID, m.Seq
	} else {
		h := &helpdesk.Held{MessageID: e.MessageID, From: e.From, FromName: e.FromName, Subject: e.Subject, Reason: helpdesk.HeldBounce,
			Detail: what, Received: e.Arrival, RawSHA256: rawHash, Size: int64(len(e.Raw)), Source: src}
		if err := tx.Hold(h); err != nil {
			return ref, what, err
		}
		ref.HeldID = h.ID
	}
	if b.Permanent {
		n.Status, n.LastError, n.NextAttempt = helpdesk.NotifyFailed, "bounced: "+strings.TrimSpace(r.Status+" "+r.Diagnostic), time.Time{}
		if err := tx.PutNotification(n); err != nil {
			return ref, what, err
		}
		if err := tx.SetBounced(n.To, b.SuppressUntil); err != nil {
			return ref, what, err
		}
	}
	return ref, what, nil
}

// applyStaff applies a staff email to its ticket: the answer (status answered, the first
// response and whether it met the deadline), or an internal note, then the commands, which
// win over the answer's status (#close with an answer closes).
func applyStaff(t *helpdesk.Ticket, a *policy.StaffAction, m *helpdesk.Message, at time.Time) {
	if a == nil {
		a = &policy.StaffAction{Text: m.Text}
	}
	m.Text = a.Text
	switch {
	case a.Note:
		m.Direction = helpdesk.DirectionNote
	case a.Text != "":
		t.Status = helpdesk.StatusAnswered
		if t.FirstResponse.IsZero() {
			t.FirstResponse = at
			t.FirstResponseMet = t.Due.IsZero() || !at.After(t.Due)
		}
	default: // commands only: kept on the thread as a note of what staff did
		m.Direction = helpdesk.DirectionNote
	}
	for _, c := range a.Commands {
		switch c.Name {
		case policy.CmdClose:
			t.Status = helpdesk.StatusClosed
		case policy.CmdReopen:
			t.Status = helpdesk.StatusOpen
		case policy.CmdUrgent:
			t.Priority = helpdesk.PriorityUrgent
		case policy.CmdNormal:
			t.Priority = helpdesk.PriorityNormal
		case policy.CmdAssign:
			t.Assignee = c.Arg
		}
	}
	if len(a.Commands) > 0 && m.Direction == helpdesk.DirectionNote && m.Text == "" {
		var names []string
		for _, c := range a.Commands {
			names = append(names, strings.TrimSpace("#"+c.Name+" "+c.Arg))
		}
		m.Text = strings.Join(names, " ")
	}
}

// storedText is the text kept on a thread message: what the parser read of it, at most
// parse.MaxText (a person reads the start of a 17 MB text dump, and the raw message keeps every
// byte anyway), with a note when there was more.
func storedText(e *parse.Email) string {
	s, cut := e.Text, e.TextCut
	if len(s) > parse.MaxText {
		n := parse.MaxText
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s, cut = s[:n], true
	}
	if cut {
		s += "\n\n[… the text goes on; the whole email is kept as it arrived]"
	}
	return s
}

func message(e *parse.Email, dir, rawHash string, src helpdesk.Source) *helpdesk.Message {
	m := &helpdesk.Message{Direction: dir, From: e.From, FromName: e.FromName, Date: e.Arrival,
		HeaderDate: e.Date, MessageID: e.MessageID, InReplyTo: e.InReplyTo, References: e.References,
		Subject: e.Subject, Text: storedText(e), RawSHA256: rawHash, Size: int64(len(e.Raw)),
		Source: src, Warnings: e.Warnings}
	for _, at := range e.Attach {
		m.Attachment = append(m.Attachment, helpdesk.Attachment{Filename: at.Filename,
			ContentType: at.ContentType, Size: at.Size, SHA256: at.SHA256})
	}
	return m
}

// notification builds the outbox row for one notice, threaded so that it sits in the
// customer's conversation: In-Reply-To the email it answers, References the chain.
func (a *Desk) notification(tx *store.Tx, n policy.Notice, e *parse.Email, d policy.Decision,
	t *helpdesk.Ticket, m *helpdesk.Message, ref helpdesk.Ref, now time.Time) (*helpdesk.Notification, error) {
	lang := a.Lang
	if lang == "" {
		lang = "nl"
	}
	note := &helpdesk.Notification{Kind: n.Kind, To: n.To, Lang: lang, Automatic: n.Automatic,
		MessageID: a.newMessageID(), HeldID: ref.HeldID, Created: now,
		Data: helpdesk.NotifyData{OrigSubject: e.Subject, OrigDate: e.Arrival, Address: e.From}}
	if d.Customer != nil {
		note.Data.CustomerName = d.Customer.Name
		note.Data.ContactName = d.Customer.ContactName(n.To)
		note.Lang = d.Customer.Language()
	}
	if t != nil {
		note.TicketID = t.ID
		note.Data.TicketSubject = t.Subject
		note.Data.Due = t.Due
		note.Data.Tier, note.Data.Priority, note.Data.SurchargeZone = t.Tier, t.Priority, t.SurchargeZone
		note.Data.Followup, note.Data.Payment = t.Followup, t.Payment
	}
	if n.Kind == helpdesk.KindAck || n.Kind == helpdesk.KindStaffNew {
		// Staff see the same notes: whether a callback is a right (R13) is theirs to know.
		note.Data.Notes = d.Plan.Notes
		note.Data.ValidUntil = d.Plan.ValidUntil
	}
	if d.Limit != nil {
		note.Data.LimitKind, note.Data.LimitValue = d.Limit.Kind, d.Limit.Limit
	}
	note.InReplyTo = e.MessageID
	note.References = threadRefs(e.References, e.MessageID)

	switch n.Kind {
	case helpdesk.KindStaffNew, helpdesk.KindStaffReply:
		note.Data.Text = e.Text
		note.Data.StaffName = e.FromName
	case helpdesk.KindStaffError:
		note.Data.Error = d.StaffError
		if note.Data.Error == "" {
			note.Data.Error = d.HoldDetail
		}
	case helpdesk.KindStaffRefused:
		note.Data.Error = d.HoldDetail
		ar := d.AuthReason
		note.Data.Auth = helpdesk.AuthReason{Code: ar.Code, Result: ar.Result, Domain: ar.Domain, Other: ar.Other, Server: ar.Server}
	case helpdesk.KindSLA24Lapsed:
		note.Data.LimitValue = a.Policy.SLA24LapseMonths() // R21: the months without paid support
	case helpdesk.KindPasswordReset:
		note.Data.TokenPurpose = helpdesk.PurposePassword
		if d.Customer != nil {
			note.Data.CustomerID = d.Customer.ID
		}
	}
	if (n.Kind == helpdesk.KindAnswer || n.Kind == helpdesk.KindAnswerSite) && t != nil {
		// The answer continues the customer's thread, not the staff member's email.
		c, err := tx.Customer(t.CustomerID)
		if err != nil && !errors.Is(err, helpdesk.ErrNotFound) {
			return nil, err
		}
		if c != nil {
			note.Data.CustomerName = c.Name
			note.Data.ContactName = c.ContactName(n.To)
			note.Lang = c.Language()
		}
		msgs, err := tx.Messages(t.ID)
		if err != nil {
			return nil, err
		}
		var chain []*helpdesk.Message
		for _, m := range msgs {
			if m.Direction == helpdesk.DirectionIn && m.MessageID != "" {
				chain = append(chain, m)
			}
		}
		chain = threadRefs(chain, nil)
		note.InReplyTo, note.References = "", nil
		for _, m := range chain {
			id := sentMessageID(tx, m)
			note.References = append(note.References, id)
			note.InReplyTo = id
		}
		if n.Kind == helpdesk.KindAnswer && d.Staff != nil {
			note.Data.Text = d.Staff.Text
		}
		note.Data.StaffName = e.FromName
	}
	switch n.Kind {
	case helpdesk.KindAnswer, helpdesk.KindAnswerSite, helpdesk.KindStaffNew, helpdesk.KindStaffReply:
		// The files of the email travel with it — a staff answer's to the customer
		// (or named, when the answer waits on the site), a customer's to staff.
		if m != nil && t != nil {
			files, err := ticketFiles(tx, t.ID, m)
			if err != nil {
				return nil, err
			}
			note.Data.Attachments = files
		}
	}
	return note, nil
}

// ticketFiles describes the attachments of thread message m for a notification, numbered as
// `helpdesk ticket attachment` numbers them: in thread order across the whole ticket.
func ticketFiles(tx *store.Tx, ticketID uint64, m *helpdesk.Message) ([]helpdesk.NotifyAttachment, error) {
	if len(m.Attachment) == 0 || m.RawSHA256 == "" {
		return nil, nil
	}
	msgs, err := tx.Messages(ticketID)
	if err != nil {
		return nil, fmt.Errorf("messages of ticket %d: %w", ticketID, err)
	}
	before := 0
	for _, o := range msgs {
		if o.Seq < m.Seq {
			before += len(o.Attachment)
		}
	}
	out := make([]helpdesk.NotifyAttachment, 0, len(m.Attachment))
	for i, at := range m.Attachment {
		out = append(out, helpdesk.NotifyAttachment{Number: before + i + 1, Filename: at.Filename,
			ContentType: at.ContentType, Size: at.Size, SHA256: at.SHA256, Raw: m.RawSHA256, Index: i})
	}
	return out, nil
}

// toldStaff reports whether a held email's decision already tells staff of it (a refused
// staff email to the staff list, an error back to the staff member), or leaves nothing to do
// (a recovery request answered with a link): such an email needs no held notice of its own.
func toldStaff(d policy.Decision) bool {
	for _, n := range d.Notify {
		switch n.Kind {
		case helpdesk.KindStaffRefused, helpdesk.KindStaffError, helpdesk.KindPasswordReset:
			return true
		}
	}
	return false
}

// threadRefs is a References chain: the first id and the last ones, at most 10 (RFC 5322
// §3.6.4 lets long chains be trimmed from the middle).
func threadRefs[T comparable](refs []T, last T) []T {
	out := append([]T(nil), refs...)
	var zero T
	if last != zero {
		out = append(out, last)
	}
	if len(out) > 10 {
		out = append(out[:1], out[len(out)-9:]...)
	}
	return out
}

// sentMessageID is the Message-ID of a thread message exactly as its sender wrote it: mail
// clients thread by the exact bytes. Records written before ids kept their case hold a
// lower-cased id; for those (an id without capitals) the raw email's header has the original.
// Reading it costs a look at the header only, done for the few ids an answer quotes.
func sentMessageID(tx *store.Tx, m *helpdesk.Message) string {
	if m.RawSHA256 == "" || strings.ToLower(m.MessageID) != m.MessageID {
		return m.MessageID
	}
	head, err := tx.RawHead(m.RawSHA256, 64<<10)
	if err != nil {
		return m.MessageID // the stored id still threads in clients that ignore case
	}
	if id := parse.HeaderMessageID(head); helpdesk.CanonicalMessageID(id) == m.MessageID {
		return id
	}
	return m.MessageID
}

func (a *Desk) newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	dom := a.MessageIDDomain
	if dom == "" {
		dom = "helpdesk.invalid"
	}
	return hex.EncodeToString(b[:]) + "@" + dom
}

// TooLargeNotice tells the sender of an email above the size limit, once a day at most, that
// it was not read; returns the notifications queued and those the limits suppressed. Like
// every unsolicited notification it counts where policy.LimitUnsolicited looks (recordSent):
// its address and the hourly total.
func (a *Desk) TooLargeNotice(tx *store.Tx, h *helpdesk.Held, size, limit int64) (int, []policy.Suppression, error) {
	if a.Quiet {
		return 0, nil, nil
	}
	notices, suppressed, err := a.Policy.TooLargeNotice(h.From, h.Received, tx)
	if err != nil {
		return 0, nil, err
	}
	for _, n := range notices {
		note := &helpdesk.Notification{Kind: n.Kind, To: n.To, Lang: cmp.Or(a.Lang, "nl"), Automatic: true,
			MessageID: a.newMessageID(), HeldID: h.ID, Created: a.Now(), InReplyTo: h.MessageID,
			Data: helpdesk.NotifyData{OrigSubject: h.Subject, OrigDate: h.Received, Address: h.From,
				LimitValue: int(min(limit>>20, 1<<30))}}
		if c, err := tx.CustomerByAddress(h.From); err == nil {
			note.Lang, note.Data.CustomerName, note.Data.ContactName = c.Language(), c.Name, c.ContactName(h.From)
		}
		if err := tx.Enqueue(note); err != nil {
			return 0, nil, err
		}
		if err := recordSent(tx, n.To, n.Kind, 0, h.Received); err != nil {
			return 0, nil, err
		}
	}
	return len(notices), suppressed, nil
}
