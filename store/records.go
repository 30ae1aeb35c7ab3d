package store

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/infobits/helpdesk"
)

// --- customers ---

// PutCustomer creates (ID 0) or replaces a customer, keeping the address index in step. An
// address that belongs to another customer gives ErrAddressTaken.
func (tx *Tx) PutCustomer(c *helpdesk.Customer) error {
	emails := make([]string, 0, len(c.Emails))
	for _, e := range c.Emails {
		if e = helpdesk.NormalizeAddress(e); e != "" && !slices.Contains(emails, e) {
			emails = append(emails, e) // one entry per address, the login first (R1)
		}
	}
	if len(emails) == 0 {
		return errors.New("customer has no email address")
	}
	c.Emails = emails
	var phones []string
	for _, p := range c.Phones {
		if p != "" && !slices.Contains(phones, p) {
			phones = append(phones, p)
		}
	}
	c.Phones = phones
	// A contact name belongs to an address of the customer: one that was removed takes its
	// name with it.
	var contacts map[string]string
	for a, n := range c.Contacts {
		if a = helpdesk.NormalizeAddress(a); n != "" && slices.Contains(c.Emails, a) {
			if contacts == nil {
				contacts = map[string]string{}
			}
			contacts[a] = n
		}
	}
	c.Contacts = contacts
	addrs := tx.tx.Bucket(bCustomerAddr)
	for _, e := range c.Emails {
		if v := addrs.Get([]byte(e)); v != nil && binary.BigEndian.Uint64(v) != c.ID {
			return fmt.Errorf("%s: %w (customer %d)", e, ErrAddressTaken, binary.BigEndian.Uint64(v))
		}
	}
	phoneIdx := tx.tx.Bucket(bCustomerPhone)
	for _, p := range c.Phones {
		if v := phoneIdx.Get([]byte(p)); v != nil && binary.BigEndian.Uint64(v) != c.ID {
			return fmt.Errorf("phone %s: %w (customer %d)", p, ErrPhoneTaken, binary.BigEndian.Uint64(v))
		}
	}
	if c.ID == 0 {
		id, err := tx.nextID(bCustomers)
		if err != nil {
			return err
		}
		c.ID = id
	} else {
		var old helpdesk.Customer
		switch err := tx.get(bCustomers, u64(c.ID), &old); {
		case err == nil:
			for _, e := range old.Emails {
				if !slices.Contains(c.Emails, e) {
					if err := addrs.Delete([]byte(e)); err != nil {
						return err
					}
				}
			}
			for _, p := range old.Phones {
				if !slices.Contains(c.Phones, p) {
					if err := phoneIdx.Delete([]byte(p)); err != nil {
						return err
					}
				}
			}
		case errors.Is(err, helpdesk.ErrNotFound):
			// A record created under a chosen id: keep NextSequence past it, or a later
			// new customer would get this id and overwrite it.
			b := tx.tx.Bucket(bCustomers)
			if c.ID > b.Sequence() {
				if err := b.SetSequence(c.ID); err != nil {
					return err
				}
			}
		default:
			return err
		}
	}
	for _, e := range c.Emails {
		if err := addrs.Put([]byte(e), u64(c.ID)); err != nil {
			return fmt.Errorf("index address %s: %w", e, err)
		}
	}
	for _, p := range c.Phones {
		if err := phoneIdx.Put([]byte(p), u64(c.ID)); err != nil {
			return fmt.Errorf("index phone %s: %w", p, err)
		}
	}
	return tx.put(bCustomers, u64(c.ID), c)
}

// CustomerByPhone returns the customer who registered the (normalised) number, or
// ErrNotFound (R19).
func (tx *Tx) CustomerByPhone(phone string) (*helpdesk.Customer, error) {
	v := tx.tx.Bucket(bCustomerPhone).Get([]byte(phone))
	if v == nil {
		return nil, helpdesk.ErrNotFound
	}
	return tx.Customer(binary.BigEndian.Uint64(v))
}

// Customer returns the customer with the id, or ErrNotFound.
func (tx *Tx) Customer(id uint64) (*helpdesk.Customer, error) {
	var c helpdesk.Customer
	if err := tx.get(bCustomers, u64(id), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// CustomerByAddress returns the customer one of whose addresses is addr (any case), or
// ErrNotFound (R1).
func (tx *Tx) CustomerByAddress(addr string) (*helpdesk.Customer, error) {
	v := tx.tx.Bucket(bCustomerAddr).Get([]byte(helpdesk.NormalizeAddress(addr)))
	if v == nil {
		return nil, helpdesk.ErrNotFound
	}
	return tx.Customer(binary.BigEndian.Uint64(v))
}

// Customers returns every customer in id order.
func (tx *Tx) Customers() ([]*helpdesk.Customer, error) {
	var out []*helpdesk.Customer
	err := tx.tx.Bucket(bCustomers).ForEach(func(k, v []byte) error {
		var c helpdesk.Customer
		if err := decode(v, &c); err != nil {
			return fmt.Errorf("decode customer %x: %w", k, err)
		}
		out = append(out, &c)
		return nil
	})
	return out, err
}

// --- tickets ---

// CreateTicket stores a new ticket and gives it the next ticket number.
func (tx *Tx) CreateTicket(t *helpdesk.Ticket) error {
	if t.ID != 0 {
		return fmt.Errorf("create ticket: already has id %d", t.ID)
	}
	id, err := tx.nextID(bTickets)
	if err != nil {
		return err
	}
	t.ID = id
	if err := tx.tx.Bucket(bTicketsByCust).Put(key2(t.CustomerID, t.ID), nil); err != nil {
		return err
	}
	if k := dueKey(t); k != nil {
		if err := tx.tx.Bucket(bDue).Put(k, []byte{1}); err != nil {
			return err
		}
	}
	if err := tx.put(bTickets, u64(t.ID), t); err != nil {
		return err
	}
	return tx.markSearch(t.ID)
}

// PutTicket replaces an existing ticket, keeping the SLA-due queue in step. Its customer never
// changes.
func (tx *Tx) PutTicket(t *helpdesk.Ticket) error {
	var old helpdesk.Ticket
	switch err := tx.get(bTickets, u64(t.ID), &old); {
	case errors.Is(err, helpdesk.ErrNotFound):
		return fmt.Errorf("ticket %d: %w", t.ID, helpdesk.ErrNotFound)
	case err != nil:
		return err
	}
	due := tx.tx.Bucket(bDue)
	if k := dueKey(&old); k != nil {
		if err := due.Delete(k); err != nil {
			return err
		}
	}
	if k := dueKey(t); k != nil {
		if err := due.Put(k, []byte{1}); err != nil {
			return err
		}
	}
	if err := tx.put(bTickets, u64(t.ID), t); err != nil {
		return err
	}
	return tx.markSearch(t.ID)
}

// dueKey is a ticket's key in the SLA-due queue: tickets that wait for their first response
// (not closed, not answered yet), by deadline. Nil for the others.
func dueKey(t *helpdesk.Ticket) []byte {
	if t.Due.IsZero() || !t.FirstResponse.IsZero() || t.Status == helpdesk.StatusClosed {
		return nil
	}
	return key2(uint64(t.Due.UnixNano()), t.ID)
}

// DueQueue returns up to n tickets that wait for their first response, the earliest deadline
// first (R6): what staff should answer next. Its cost depends on n, not on the number of
// tickets.
func (tx *Tx) DueQueue(n int) ([]*helpdesk.Ticket, error) {
	var out []*helpdesk.Ticket
	c := tx.tx.Bucket(bDue).Cursor()
	for k, _ := c.First(); k != nil && len(out) < n; k, _ = c.Next() {
		t, err := tx.Ticket(binary.BigEndian.Uint64(k[8:]))
		if err != nil {
			return nil, fmt.Errorf("due queue: %w", err)
		}
		out = append(out, t)
	}
	return out, nil
}

// Ticket returns ticket id, or ErrNotFound.
func (tx *Tx) Ticket(id uint64) (*helpdesk.Ticket, error) {
	var t helpdesk.Ticket
	if err := tx.get(bTickets, u64(id), &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Tickets returns every ticket in number order.
func (tx *Tx) Tickets() ([]*helpdesk.Ticket, error) {
	var out []*helpdesk.Ticket
	err := tx.tx.Bucket(bTickets).ForEach(func(k, v []byte) error {
		var t helpdesk.Ticket
		if err := decode(v, &t); err != nil {
			return fmt.Errorf("decode ticket %x: %w", k, err)
		}
		out = append(out, &t)
		return nil
	})
	return out, err
}

// CustomerTickets returns the customer's tickets in number order, through the index: the cost
// depends on the customer's tickets, not on all tickets.
func (tx *Tx) CustomerTickets(customerID uint64) ([]*helpdesk.Ticket, error) {
	prefix := u64(customerID)
	var out []*helpdesk.Ticket
	c := tx.tx.Bucket(bTicketsByCust).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		t, err := tx.Ticket(binary.BigEndian.Uint64(k[8:]))
		if err != nil {
			return nil, fmt.Errorf("ticket index of customer %d: %w", customerID, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// --- thread messages ---

// AddMessage appends m to ticket m.TicketID's thread, numbers it, indexes its Message-ID for
// threading and updates the ticket's count. The caller updates other ticket fields.
func (tx *Tx) AddMessage(t *helpdesk.Ticket, m *helpdesk.Message) error {
	return tx.addMessage(t, m, nil)
}

func (tx *Tx) addMessage(t *helpdesk.Ticket, m *helpdesk.Message, pt *PackedText) error {
	m.TicketID = t.ID
	t.Messages++
	m.Seq = uint32(t.Messages)
	if m.MessageID != "" {
		if err := tx.IndexMessageID(m.MessageID, t.ID); err != nil {
			return err
		}
	}
	if err := tx.putMessage(msgKey(t.ID, m.Seq), m, pt); err != nil {
		return err
	}
	return tx.PutTicket(t)
}

// CustomerReplies counts the customer's emails (direction "in") on a ticket's thread after the
// first: every one stored, automatic ones included — what the SLA24 reply limit counts (R11).
// Ticket.Replies of earlier versions did not count out-of-office replies; this count reads the
// thread, so tickets they wrote are counted right too.
func (tx *Tx) CustomerReplies(ticketID uint64) (int, error) {
	prefix := u64(ticketID)
	n := 0
	c := tx.tx.Bucket(bMessages).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var m helpdesk.Message
		if err := decode(v, &m); err != nil {
			return 0, fmt.Errorf("decode message %x: %w", k, err)
		}
		if m.Direction == helpdesk.DirectionIn {
			n++
		}
	}
	return max(n-1, 0), nil
}

func msgKey(ticket uint64, seq uint32) []byte {
	return binary.BigEndian.AppendUint32(u64(ticket), seq)
}

// Messages returns ticket id's thread in order.
func (tx *Tx) Messages(ticketID uint64) ([]*helpdesk.Message, error) {
	prefix := u64(ticketID)
	var out []*helpdesk.Message
	c := tx.tx.Bucket(bMessages).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var m helpdesk.Message
		if err := decode(v, &m); err != nil {
			return nil, fmt.Errorf("decode message %x: %w", k, err)
		}
		out = append(out, &m)
	}
	return out, nil
}

// IndexMessageID records that the Message-ID belongs to the ticket's thread, so that a reply
// naming it in In-Reply-To or References, in any case, finds the ticket (R10). The first
// ticket to claim an id keeps it.
func (tx *Tx) IndexMessageID(msgID string, ticketID uint64) error {
	if msgID = helpdesk.CanonicalMessageID(msgID); msgID == "" {
		return nil
	}
	b := tx.tx.Bucket(bMessageIDs)
	if b.Get([]byte(msgID)) != nil {
		return nil
	}
	if len(msgID) > 1000 {
		return nil // bbolt keys are bounded; such an id is garbage anyway
	}
	return b.Put([]byte(msgID), u64(ticketID))
}

// TicketByMessageID returns the ticket whose thread or notifications carry the Message-ID
// (compared in its canonical form), or ErrNotFound.
func (tx *Tx) TicketByMessageID(msgID string) (uint64, error) {
	msgID = helpdesk.CanonicalMessageID(msgID)
	if msgID == "" || len(msgID) > 1000 {
		return 0, helpdesk.ErrNotFound
	}
	v := tx.tx.Bucket(bMessageIDs).Get([]byte(msgID))
	if v == nil {
		return 0, helpdesk.ErrNotFound
	}
	return binary.BigEndian.Uint64(v), nil
}

// --- raw messages and dedupe ---

const (
	rawPlain   = 0
	rawDeflate = 1
)

// RawHash is the key raw bytes are stored and deduplicated under.
func RawHash(raw []byte) [32]byte { return sha256.Sum256(raw) }

// PackedRaw is an email's raw bytes made ready for the store: hashed and compressed. Packing
// is the costly part of storing mail, and it needs no transaction, so the poller packs on its
// parse workers, in parallel, and the (serial) write transaction only puts the result.
type PackedRaw struct {
	Sum   [32]byte // RawHash of the bytes
	Size  int      // length of the raw bytes
	value []byte   // what the raw bucket holds: a format byte, then the bytes
}

// PackRaw compresses raw, whose RawHash is sum, for PutPackedRaw. It is safe for concurrent use.
func (d *DB) PackRaw(sum [32]byte, raw []byte) (*PackedRaw, error) {
	var buf bytes.Buffer
	buf.Grow(len(raw)/2 + 64)
	buf.WriteByte(rawDeflate)
	if err := d.deflateInto(&buf, raw); err != nil {
		return nil, fmt.Errorf("compress raw message: %w", err)
	}
	v := buf.Bytes()
	switch {
	case len(v) >= len(raw)+1: // incompressible: store as is
		v = append(make([]byte, 0, len(raw)+1), rawPlain)
		v = append(v, raw...)
	case cap(v) > len(v)+len(v)/4:
		// The buffer was sized for a ratio of 1:2; text mail packs to 1:4 or better. The batch
		// holds every packed value until its commit, so keep only what is used.
		v = bytes.Clone(v)
	}
	return &PackedRaw{Sum: sum, Size: len(raw), value: v}, nil
}

// PutRaw stores the raw bytes of an email under their SHA-256 (content addressed: a second copy
// costs nothing) and returns the hex hash.
func (tx *Tx) PutRaw(raw []byte) (string, error) {
	sum := RawHash(raw)
	if tx.tx.Bucket(bRaw).Get(sum[:]) != nil {
		return hex.EncodeToString(sum[:]), nil
	}
	p, err := tx.db.PackRaw(sum, raw)
	if err != nil {
		return "", err
	}
	return tx.PutPackedRaw(p)
}

// PutPackedRaw stores what PackRaw made, unless the same bytes are stored already, and returns
// the hex hash.
func (tx *Tx) PutPackedRaw(p *PackedRaw) (string, error) {
	b := tx.tx.Bucket(bRaw)
	if b.Get(p.Sum[:]) == nil {
		if err := b.Put(p.Sum[:], p.value); err != nil {
			return "", fmt.Errorf("store raw message: %w", err)
		}
	}
	return hex.EncodeToString(p.Sum[:]), nil
}

// Raw returns the raw bytes stored under the hex hash.
func (tx *Tx) Raw(hexHash string) ([]byte, error) {
	return tx.RawHead(hexHash, -1)
}

// RawHead returns at most the first n raw bytes stored under the hex hash (n < 0: all of
// them), inflating no more than that: enough to read a header without a 25 MB attachment.
func (tx *Tx) RawHead(hexHash string, n int64) ([]byte, error) {
	sum, err := hex.DecodeString(hexHash)
	if err != nil {
		return nil, fmt.Errorf("raw hash %q: %w", hexHash, err)
	}
	v := tx.tx.Bucket(bRaw).Get(sum)
	if v == nil {
		return nil, helpdesk.ErrNotFound
	}
	switch v[0] {
	case rawPlain:
		if v = v[1:]; n >= 0 && int64(len(v)) > n {
			v = v[:n]
		}
		return bytes.Clone(v), nil
	case rawDeflate:
		var r io.Reader = flate.NewReader(bytes.NewReader(v[1:]))
		if n >= 0 {
			r = io.LimitReader(r, n)
		}
		return io.ReadAll(r)
	}
	return nil, fmt.Errorf("raw %s: unknown codec %d", hexHash, v[0])
}

// Ingested returns what an email with these raw bytes became, if it was ingested before.
// With the UID checkpoint it makes ingest exactly-once, also across UIDVALIDITY resets.
func (tx *Tx) Ingested(sum [32]byte) (helpdesk.Ref, bool, error) {
	v := tx.tx.Bucket(bIngested).Get(sum[:])
	if v == nil {
		return helpdesk.Ref{}, false, nil
	}
	var r helpdesk.Ref
	if err := decode(v, &r); err != nil {
		return helpdesk.Ref{}, false, fmt.Errorf("decode ingested %x: %w", sum, err)
	}
	return r, true, nil
}

// MarkIngested records what the email with these raw bytes became.
func (tx *Tx) MarkIngested(sum [32]byte, r helpdesk.Ref) error {
	return tx.put(bIngested, sum[:], r)
}

// IdentityKey is the second dedupe key of an email: its Message-ID, sender and subject. A
// server that rewrites stored mail (a migration, a recreated mailbox) changes the bytes but not
// these. Emails without a Message-ID have none. The id counts in its canonical form (the key of
// databases written before ids kept their case).
func IdentityKey(msgID, from, subject string) ([32]byte, bool) {
	if msgID = helpdesk.CanonicalMessageID(msgID); msgID == "" {
		return [32]byte{}, false
	}
	return sha256.Sum256([]byte(msgID + "\x00" + from + "\x00" + subject)), true
}

// IngestedIdentity returns what an email with this identity became, if one was ingested.
func (tx *Tx) IngestedIdentity(key [32]byte) (helpdesk.Ref, bool, error) {
	v := tx.tx.Bucket(bIngestedIDs).Get(key[:])
	if v == nil {
		return helpdesk.Ref{}, false, nil
	}
	var r helpdesk.Ref
	if err := decode(v, &r); err != nil {
		return helpdesk.Ref{}, false, fmt.Errorf("decode ingested identity %x: %w", key, err)
	}
	return r, true, nil
}

// MarkIngestedIdentity records what the email with this identity became.
func (tx *Tx) MarkIngestedIdentity(key [32]byte, r helpdesk.Ref) error {
	return tx.put(bIngestedIDs, key[:], r)
}

// --- held emails ---

// Hold keeps an email that did not become a ticket message, with its reason. Unless it needs
// no report (NoReport), it waits in held_pending for the next notice to the staff list.
func (tx *Tx) Hold(h *helpdesk.Held) error {
	id, err := tx.nextID(bHeld)
	if err != nil {
		return err
	}
	h.ID = id
	if err := tx.indexHeldPending(h); err != nil {
		return err
	}
	return tx.put(bHeld, u64(id), h)
}

// indexHeldPending keeps h's entry in held_pending in step with its state: there while it
// waits for a notice to staff, gone once reported, handled or not to be reported.
func (tx *Tx) indexHeldPending(h *helpdesk.Held) error {
	b := tx.tx.Bucket(bHeldPending)
	if h.NoReport || !h.Reported.IsZero() || h.Handled() {
		return b.Delete(u64(h.ID))
	}
	return b.Put(u64(h.ID), []byte{1})
}

// HeldPending returns up to n held emails the staff list has not been told of, oldest first.
func (tx *Tx) HeldPending(n int) ([]*helpdesk.Held, error) {
	var out []*helpdesk.Held
	c := tx.tx.Bucket(bHeldPending).Cursor()
	for k, _ := c.First(); k != nil && len(out) < n; k, _ = c.Next() {
		h, err := tx.Held(binary.BigEndian.Uint64(k))
		if err != nil {
			return nil, fmt.Errorf("held_pending: %w", err)
		}
		out = append(out, h)
	}
	return out, nil
}

var keyHeldNotice = []byte("held_notice")

// LastHeldNotice is when the last notice of held emails was queued for the staff list.
func (tx *Tx) LastHeldNotice() time.Time {
	v := tx.tx.Bucket(bMeta).Get(keyHeldNotice)
	if len(v) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v)))
}

// SetLastHeldNotice records when a notice of held emails was queued.
func (tx *Tx) SetLastHeldNotice(at time.Time) error {
	return tx.tx.Bucket(bMeta).Put(keyHeldNotice, u64(uint64(at.UnixNano())))
}

// HeldEmails returns every held email in arrival order of holding.
func (tx *Tx) HeldEmails() ([]*helpdesk.Held, error) {
	var out []*helpdesk.Held
	err := tx.tx.Bucket(bHeld).ForEach(func(k, v []byte) error {
		var h helpdesk.Held
		if err := decode(v, &h); err != nil {
			return fmt.Errorf("decode held %x: %w", k, err)
		}
		out = append(out, &h)
		return nil
	})
	return out, err
}

// --- outbox ---

// Enqueue adds a notification to the outbox, due at n.NextAttempt (zero: now). Its
// Message-ID is indexed to its ticket, so that a customer's reply to it threads (R10).
func (tx *Tx) Enqueue(n *helpdesk.Notification) error {
	id, err := tx.nextID(bOutbox)
	if err != nil {
		return err
	}
	n.ID = id
	if n.Status == "" {
		n.Status = helpdesk.NotifyQueued
	}
	if n.TicketID != 0 {
		if err := tx.tx.Bucket(bTicketNotes).Put(key2(n.TicketID, id), nil); err != nil {
			return err
		}
		if err := tx.IndexMessageID(n.MessageID, n.TicketID); err != nil {
			return err
		}
	}
	if n.Status == helpdesk.NotifyQueued {
		if err := tx.tx.Bucket(bOutboxQueue).Put(queueKey(n), nil); err != nil {
			return err
		}
	}
	if k := helpdesk.CanonicalMessageID(n.MessageID); k != "" && len(k) < 1000 {
		if err := tx.tx.Bucket(bNotifMsgIDs).Put([]byte(k), u64(id)); err != nil {
			return err
		}
	}
	tx.enqueued = true
	return tx.put(bOutbox, u64(id), n)
}

// NotificationByMessageID returns the notification that was sent with the Message-ID, or
// ErrNotFound: what a delivery report is about. The id is compared in its canonical form.
func (tx *Tx) NotificationByMessageID(msgID string) (*helpdesk.Notification, error) {
	msgID = helpdesk.CanonicalMessageID(msgID)
	if msgID == "" || len(msgID) >= 1000 {
		return nil, helpdesk.ErrNotFound
	}
	v := tx.tx.Bucket(bNotifMsgIDs).Get([]byte(msgID))
	if v == nil {
		return nil, helpdesk.ErrNotFound
	}
	return tx.Notification(binary.BigEndian.Uint64(v))
}

// SetBounced records that automatic mail to the address bounced for good: none is sent to it
// until the moment given.
func (tx *Tx) SetBounced(addr string, until time.Time) error {
	return tx.tx.Bucket(bBounced).Put([]byte(helpdesk.NormalizeAddress(addr)), u64(uint64(until.UnixNano())))
}

// ClearBounced ends the suspension of automatic mail to the address (the operator retried a
// notification to it, having fixed the mailbox).
func (tx *Tx) ClearBounced(addr string) error {
	return tx.tx.Bucket(bBounced).Delete([]byte(helpdesk.NormalizeAddress(addr)))
}

// BouncedUntil returns until when automatic mail to the address is suspended (zero: it is not).
func (tx *Tx) BouncedUntil(addr string) (time.Time, error) {
	v := tx.tx.Bucket(bBounced).Get([]byte(helpdesk.NormalizeAddress(addr)))
	if len(v) != 8 {
		return time.Time{}, nil
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), nil
}

func queueKey(n *helpdesk.Notification) []byte {
	var at uint64
	if !n.NextAttempt.IsZero() {
		at = uint64(n.NextAttempt.UnixNano())
	}
	return key2(at, n.ID)
}

// Notification returns the outbox entry id.
func (tx *Tx) Notification(id uint64) (*helpdesk.Notification, error) {
	var n helpdesk.Notification
	if err := tx.get(bOutbox, u64(id), &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// PutNotification updates an outbox entry, moving it in the queue index.
func (tx *Tx) PutNotification(n *helpdesk.Notification) error {
	old, err := tx.Notification(n.ID)
	if err != nil {
		return fmt.Errorf("notification %d: %w", n.ID, err)
	}
	q := tx.tx.Bucket(bOutboxQueue)
	if old.Status == helpdesk.NotifyQueued {
		if err := q.Delete(queueKey(old)); err != nil {
			return err
		}
	}
	if n.Status == helpdesk.NotifyQueued {
		if err := q.Put(queueKey(n), nil); err != nil {
			return err
		}
		tx.enqueued = true
	}
	return tx.put(bOutbox, u64(n.ID), n)
}

// DueNotifications returns up to limit queued notifications whose next attempt is at or
// before now, earliest first. A zero now returns every queued one.
func (tx *Tx) DueNotifications(now time.Time, limit int) ([]*helpdesk.Notification, error) {
	var out []*helpdesk.Notification
	c := tx.tx.Bucket(bOutboxQueue).Cursor()
	for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
		at := binary.BigEndian.Uint64(k[:8])
		if !now.IsZero() && at > uint64(now.UnixNano()) {
			break
		}
		n, err := tx.Notification(binary.BigEndian.Uint64(k[8:]))
		if err != nil {
			return nil, fmt.Errorf("outbox queue: %w", err)
		}
		out = append(out, n)
	}
	return out, nil
}

// NextDue returns the time of the earliest queued notification, or false when none is queued.
func (tx *Tx) NextDue() (time.Time, bool) {
	k, _ := tx.tx.Bucket(bOutboxQueue).Cursor().First()
	if k == nil {
		return time.Time{}, false
	}
	at := binary.BigEndian.Uint64(k[:8])
	if at == 0 {
		return time.Time{}, true
	}
	return time.Unix(0, int64(at)), true
}

// QueuedNotifications counts the notifications waiting to be sent.
func (tx *Tx) QueuedNotifications() int {
	return tx.tx.Bucket(bOutboxQueue).Stats().KeyN
}

// Outbox returns every notification in id order.
func (tx *Tx) Outbox() ([]*helpdesk.Notification, error) {
	var out []*helpdesk.Notification
	err := tx.tx.Bucket(bOutbox).ForEach(func(k, v []byte) error {
		var n helpdesk.Notification
		if err := decode(v, &n); err != nil {
			return fmt.Errorf("decode notification %x: %w", k, err)
		}
		out = append(out, &n)
		return nil
	})
	return out, err
}

// TicketNotifications returns the notifications sent (or to be sent) about a ticket.
func (tx *Tx) TicketNotifications(ticketID uint64) ([]*helpdesk.Notification, error) {
	prefix := u64(ticketID)
	var out []*helpdesk.Notification
	c := tx.tx.Bucket(bTicketNotes).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n, err := tx.Notification(binary.BigEndian.Uint64(k[8:]))
		if err != nil {
			return nil, fmt.Errorf("notifications of ticket %d: %w", ticketID, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// --- mailbox sync state ---

// Mailbox returns the checkpoint of the named mailbox; a mailbox never seen has a zero state.
func (tx *Tx) Mailbox(name string) (*helpdesk.MailboxState, error) {
	var s helpdesk.MailboxState
	err := tx.get(bMailboxes, []byte(name), &s)
	if errors.Is(err, helpdesk.ErrNotFound) {
		return &helpdesk.MailboxState{Name: name}, nil
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// PutMailbox stores the checkpoint of a mailbox.
func (tx *Tx) PutMailbox(s *helpdesk.MailboxState) error {
	return tx.put(bMailboxes, []byte(s.Name), s)
}

// ParseAttempts returns what the gateway was reading in the named mailbox (ParseAttempts);
// an empty record when nothing.
func (tx *Tx) ParseAttempts(mailbox string) (*helpdesk.ParseAttempts, error) {
	var a helpdesk.ParseAttempts
	err := tx.get(bParseAttempts, []byte(mailbox), &a)
	if errors.Is(err, helpdesk.ErrNotFound) {
		return &helpdesk.ParseAttempts{Mailbox: mailbox}, nil
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// PutParseAttempts stores a; an empty one is removed.
func (tx *Tx) PutParseAttempts(a *helpdesk.ParseAttempts) error {
	if a.Empty() {
		return tx.tx.Bucket(bParseAttempts).Delete([]byte(a.Mailbox))
	}
	return tx.put(bParseAttempts, []byte(a.Mailbox), a)
}

// Counts are the sizes of the main buckets, for status lines and backups' manifests.
type Counts struct {
	Customers, Tickets, Messages, Held, Outbox int
}

// Counts returns the number of records per kind.
func (tx *Tx) Counts() Counts {
	n := func(b []byte) int { return tx.tx.Bucket(b).Stats().KeyN }
	return Counts{
		Customers: n(bCustomers), Tickets: n(bTickets), Messages: n(bMessages),
		Held: n(bHeld), Outbox: n(bOutbox),
	}
}

// --- SLA24 limit notices ---

// LimitNoticeSent reports whether the customer was sent a limit notice on the day (R11).
func (tx *Tx) LimitNoticeSent(customerID uint64, day helpdesk.Date) (bool, error) {
	return tx.tx.Bucket(bLimitNotices).Get(append(u64(customerID), day.String()...)) != nil, nil
}

// MarkLimitNotice records that the customer was sent a limit notice on the day.
func (tx *Tx) MarkLimitNotice(customerID uint64, day helpdesk.Date) error {
	// A non-empty value: bbolt's Get may return nil for an empty one.
	return tx.tx.Bucket(bLimitNotices).Put(append(u64(customerID), day.String()...), []byte{1})
}

// Held returns held email id, or ErrNotFound.
func (tx *Tx) Held(id uint64) (*helpdesk.Held, error) {
	var h helpdesk.Held
	if err := tx.get(bHeld, u64(id), &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// PutHeld updates a held email (released, dismissed, reported).
func (tx *Tx) PutHeld(h *helpdesk.Held) error {
	if tx.tx.Bucket(bHeld).Get(u64(h.ID)) == nil {
		return fmt.Errorf("held email %d: %w", h.ID, helpdesk.ErrNotFound)
	}
	if err := tx.indexHeldPending(h); err != nil {
		return err
	}
	return tx.put(bHeld, u64(h.ID), h)
}

// --- automatic replies per address (RFC 3834 §2: limit them) ---

func autoReplyKey(addr string, at time.Time) []byte {
	k := append([]byte(helpdesk.NormalizeAddress(addr)), 0)
	return binary.BigEndian.AppendUint64(k, uint64(at.UnixNano()))
}

// AutoRepliesSince counts the automatic replies of a kind ("" for every kind) recorded for an
// address since a moment.
func (tx *Tx) AutoRepliesSince(addr, kind string, since time.Time) (int, error) {
	prefix := append([]byte(helpdesk.NormalizeAddress(addr)), 0)
	n := 0
	c := tx.tx.Bucket(bAutoReplies).Cursor()
	for k, v := c.Seek(autoReplyKey(addr, since)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if kind == "" || string(v) == kind {
			n++
		}
	}
	return n, nil
}

// RecordAutoReply records an automatic reply to an address at a moment. Entries older than
// a day are removed as new ones come, so the bucket stays small.
func (tx *Tx) RecordAutoReply(addr, kind string, at time.Time) error {
	b := tx.tx.Bucket(bAutoReplies)
	prefix := append([]byte(helpdesk.NormalizeAddress(addr)), 0)
	old := autoReplyKey(addr, at.Add(-48*time.Hour))
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, old) < 0; k, _ = c.Next() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	key := autoReplyKey(addr, at)
	for b.Get(key) != nil { // two replies in the same nanosecond
		key = binary.BigEndian.AppendUint64(key[:len(key)-8], binary.BigEndian.Uint64(key[len(key)-8:])+1)
	}
	return b.Put(key, []byte(kind))
}

// --- UIDs taken in, for the gap alarm ---

func uidKey(mailbox string, validity, uid uint32) []byte {
	k := append([]byte(mailbox), 0)
	k = binary.BigEndian.AppendUint32(k, validity)
	return binary.BigEndian.AppendUint32(k, uid)
}

// MarkUID records that the message with this UID was taken in (as a ticket message, held, a
// duplicate or vanished): accounted for.
func (tx *Tx) MarkUID(mailbox string, validity, uid uint32) error {
	return tx.tx.Bucket(bUIDs).Put(uidKey(mailbox, validity, uid), []byte{1})
}

// HasUID reports whether the message with this UID was taken in.
func (tx *Tx) HasUID(mailbox string, validity, uid uint32) bool {
	return tx.tx.Bucket(bUIDs).Get(uidKey(mailbox, validity, uid)) != nil
}
