package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"

	"github.com/infobits/helpdesk/ingest/mailparse"
	"github.com/infobits/helpdesk/store"
)

// session is one logged-in IMAP connection with the support mailbox selected.
type session struct {
	p      *Poller
	c      *imapclient.Client
	sel    *imap.SelectData
	mail   chan struct{} // the server announced new mail (EXISTS)
	synced bool          // UIDVALIDITY checked in this session
	// canMove: the server has MOVE. Without it go-imap falls back to COPY, STORE \Deleted and
	// a plain EXPUNGE, which would also remove every message staff had flagged \Deleted.
	canMove bool
}

// connect dials, logs in and selects the mailbox. Errors name the server, the step and what
// to check, for an operator to act on.
func (p *Poller) connect(ctx context.Context) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &session{p: p, mail: make(chan struct{}, 1)}
	opts := &imapclient.Options{
		TLSConfig:   p.cfg.TLSConfig,
		Dialer:      &net.Dialer{Timeout: p.cfg.DialTimeout},
		WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			// Runs on the client's reader goroutine: never issue a command here, only signal.
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case s.mail <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	var err error
	switch p.cfg.TLS {
	case TLSImplicit:
		s.c, err = imapclient.DialTLS(p.cfg.Addr, opts)
	case TLSStart:
		s.c, err = imapclient.DialStartTLS(p.cfg.Addr, opts)
	case TLSNone:
		s.c, err = imapclient.DialInsecure(p.cfg.Addr, opts)
	default:
		return nil, fmt.Errorf("imap tls mode %q: want tls, starttls or none", p.cfg.TLS)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to IMAP server %s (%s): %w", p.cfg.Addr, p.cfg.TLS, err)
	}
	// The library has no context: a cancelled connect closes the connection under it.
	stop := context.AfterFunc(ctx, func() { s.c.Close() })
	defer stop()

	if err := s.c.Login(p.cfg.User, p.cfg.Password).Wait(); err != nil {
		s.c.Close()
		var ie *imap.Error
		if errors.As(err, &ie) {
			return nil, fmt.Errorf("IMAP server %s refused login as %q: %s (check the IMAP user and password)", p.cfg.Addr, p.cfg.User, ie.Text)
		}
		return nil, fmt.Errorf("IMAP login at %s: %w", p.cfg.Addr, err)
	}
	if p.cfg.MoveTo != "" {
		err := s.c.Create(p.cfg.MoveTo, nil).Wait()
		var ie *imap.Error
		if err != nil && !(errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists) {
			// Some servers answer a plain NO for an existing folder; SELECT/MOVE will tell.
			p.log.Debug("create move-to folder", "folder", p.cfg.MoveTo, "err", err)
		}
	}
	s.sel, err = s.c.Select(p.cfg.Mailbox, nil).Wait()
	if err != nil {
		s.c.Close()
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
			return nil, fmt.Errorf("IMAP mailbox %q does not exist on %s (check the mailbox setting)", p.cfg.Mailbox, p.cfg.Addr)
		}
		return nil, fmt.Errorf("select IMAP mailbox %q on %s: %w", p.cfg.Mailbox, p.cfg.Addr, err)
	}
	if ctx.Err() != nil {
		s.c.Close()
		return nil, ctx.Err()
	}
	s.canMove = s.c.Caps().Has(imap.CapMove)
	if p.cfg.MoveTo != "" && !s.canMove {
		p.log.Warn("the IMAP server has no MOVE: processed mail stays in the mailbox, flagged \\Seen", "move_to", p.cfg.MoveTo)
	}
	p.log.Debug("imap connected", "addr", p.cfg.Addr, "mailbox", p.cfg.Mailbox,
		"uidvalidity", s.sel.UIDValidity, "uidnext", uint32(s.sel.UIDNext), "messages", s.sel.NumMessages,
		"idle", s.c.Caps().Has(imap.CapIdle))
	return s, nil
}

func (s *session) close() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.c.Logout().Wait()
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	s.c.Close()
}

// meta is what the listing step learns of a new message before its body is fetched.
type meta struct {
	uid     imap.UID
	size    int64
	arrival time.Time
}

// sync ingests every message above the checkpoint, batch by batch.
func (s *session) sync(ctx context.Context) error {
	p := s.p
	var st *store.MailboxState
	if err := p.db.View(ctx, func(tx *store.Tx) (err error) {
		st, err = tx.Mailbox(p.cfg.Mailbox)
		return err
	}); err != nil {
		return fmt.Errorf("read checkpoint of %s: %w", p.cfg.Mailbox, err)
	}
	if !s.synced {
		if err := s.checkValidity(ctx, st); err != nil {
			return err
		}
		s.synced = true
	}
	if len(st.PendingMark) > 0 {
		// Committed before the last crash or disconnect, not yet flagged: finish that first.
		if err := s.mark(toUIDSet(st.PendingMark)); err != nil {
			return err
		}
		st.PendingMark = nil
		if err := p.db.Update(ctx, func(tx *store.Tx) error { return tx.PutMailbox(st) }); err != nil {
			return fmt.Errorf("clear pending flags: %w", err)
		}
	}

	metas, err := s.list(st.LastUID)
	if err != nil {
		return err
	}
	for len(metas) > 0 {
		if ctx.Err() != nil {
			return nil // stop between batches: nothing in hand
		}
		n, bytes := 0, int64(0)
		for n < len(metas) && n < p.cfg.BatchSize && (n == 0 || bytes+metas[n].size <= p.cfg.BatchBytes) {
			if metas[n].size <= p.cfg.MaxMessageBytes {
				bytes += metas[n].size
			}
			n++
		}
		if err := s.batch(st, metas[:n]); err != nil {
			return err
		}
		metas = metas[n:]
	}
	return nil
}

// checkValidity resets the checkpoint when the mailbox is not the one it was taken of: a new
// UIDVALIDITY, or (seen with Dovecot when a mailbox is recreated within the same second) a
// UIDNEXT at or below the checkpoint. Dedupe by raw hash keeps the replay from duplicating.
func (s *session) checkValidity(ctx context.Context, st *store.MailboxState) error {
	sel := s.sel
	reset := st.UIDValidity != sel.UIDValidity ||
		(st.LastUID > 0 && uint32(sel.UIDNext) != 0 && uint32(sel.UIDNext) <= st.LastUID)
	if !reset {
		return nil
	}
	if st.UIDValidity != 0 {
		s.p.log.Warn("mailbox was reset on the server; re-reading it (already stored emails are skipped)",
			"mailbox", st.Name, "old_uidvalidity", st.UIDValidity, "new_uidvalidity", sel.UIDValidity,
			"checkpoint", st.LastUID, "uidnext", uint32(sel.UIDNext))
	}
	st.UIDValidity, st.LastUID, st.PendingMark = sel.UIDValidity, 0, nil
	st.UIDNext = uint32(sel.UIDNext)
	return s.p.db.Update(ctx, func(tx *store.Tx) error { return tx.PutMailbox(st) })
}

// list returns the UIDs above last with their size and arrival, in UID order.
func (s *session) list(last uint32) ([]meta, error) {
	var set imap.UIDSet
	set.AddRange(imap.UID(last+1), 0) // last+1:*
	cmd := s.c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true})
	defer cmd.Close()
	var out []meta
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		buf, err := msg.Collect()
		if err != nil {
			return nil, fmt.Errorf("list messages above uid %d: %w", last, err)
		}
		// "n:*" always includes the highest UID, even below n: keep only what is new.
		if uint32(buf.UID) > last {
			out = append(out, meta{uid: buf.UID, size: buf.RFC822Size, arrival: buf.InternalDate})
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("list messages above uid %d: %w", last, err)
	}
	slices.SortFunc(out, func(a, b meta) int { return int(a.uid) - int(b.uid) })
	return out, nil
}

// fetched is one message of a batch, ready to commit.
type fetched struct {
	meta
	email *mailparse.Email // nil when too large or gone
	env   *imap.Envelope   // for too-large messages
	gone  bool             // expunged by someone else between listing and fetching
}

// batch fetches, parses and commits one batch, then flags it on the server.
func (s *session) batch(st *store.MailboxState, metas []meta) error {
	p := s.p
	items := make([]*fetched, len(metas))
	byUID := map[imap.UID]*fetched{}
	var small, large []imap.UID
	for i, m := range metas {
		items[i] = &fetched{meta: m}
		byUID[m.uid] = items[i]
		if m.size > p.cfg.MaxMessageBytes {
			large = append(large, m.uid)
		} else {
			small = append(small, m.uid)
		}
	}
	if err := s.fetchBodies(small, byUID); err != nil {
		return err
	}
	if err := s.fetchEnvelopes(large, byUID); err != nil {
		return err
	}
	for _, it := range items {
		if _, isSmall := slices.BinarySearch(small, it.uid); isSmall && it.email == nil {
			it.gone = true
			p.log.Warn("message vanished from the mailbox before it was fetched (expunged by another client)",
				"uid", uint32(it.uid), "mailbox", st.Name)
		}
	}
	outcomes, err := s.commit(st, items)
	if err != nil {
		return err
	}
	for i := range outcomes {
		p.log.LogAttrs(context.Background(), slog.LevelInfo, "email", outcomes[i].LogAttrs()...)
		p.emit(Event{Outcome: &outcomes[i]})
	}
	if len(st.PendingMark) > 0 {
		if err := s.mark(toUIDSet(st.PendingMark)); err != nil {
			return err
		}
	}
	return nil
}

// fetchBodies streams BODY.PEEK[] of the UIDs (one UID FETCH) and parses each message.
func (s *session) fetchBodies(uids []imap.UID, byUID map[imap.UID]*fetched) error {
	if len(uids) == 0 {
		return nil // an empty set would make the library close the connection
	}
	section := &imap.FetchItemBodySection{Peek: true}
	cmd := s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{section}})
	defer cmd.Close()
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		var uid imap.UID
		var raw []byte
		var arrival time.Time
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataInternalDate:
				arrival = it.Time
			case imapclient.FetchItemDataBodySection:
				size := it.Literal.Size()
				if size < 0 || size > s.p.cfg.MaxMessageBytes+1<<20 {
					return fmt.Errorf("fetch: server sent a %d-byte literal, above the size limit", size)
				}
				raw = make([]byte, size)
				if _, err := io.ReadFull(it.Literal, raw); err != nil {
					return fmt.Errorf("fetch body: %w", err)
				}
			}
		}
		f := byUID[uid]
		if f == nil || raw == nil {
			continue // unasked-for data (a flag change pushed by the server)
		}
		if !arrival.IsZero() {
			f.arrival = arrival
		}
		f.email = mailparse.Parse(raw, f.arrival)
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("fetch %d messages: %w", len(uids), err)
	}
	return nil
}

// fetchEnvelopes reads only the envelope of messages too large to fetch.
func (s *session) fetchEnvelopes(uids []imap.UID, byUID map[imap.UID]*fetched) error {
	if len(uids) == 0 {
		return nil
	}
	bufs, err := s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil {
		return fmt.Errorf("fetch envelopes: %w", err)
	}
	for _, b := range bufs {
		if f := byUID[b.UID]; f != nil {
			f.env = b.Envelope
		}
	}
	return nil
}

// errPoison marks an email whose handling panicked; the batch is retried without it.
type errPoison struct {
	uid    imap.UID
	reason string
}

func (e *errPoison) Error() string { return fmt.Sprintf("uid %d: %s", e.uid, e.reason) }

// commit writes the batch and the new checkpoint in one transaction. An email whose handling
// panics is held with the reason instead, and the batch is committed without it: one
// poisonous email never blocks the ones behind it.
func (s *session) commit(st *store.MailboxState, items []*fetched) ([]Outcome, error) {
	p := s.p
	poisoned := map[imap.UID]string{}
	for attempt := 0; attempt <= len(items); attempt++ {
		var outcomes []Outcome
		next := *st
		err := p.db.Update(context.Background(), func(tx *store.Tx) error {
			outcomes = outcomes[:0]
			var pending imap.UIDSet
			for _, it := range items {
				src := store.Source{Mailbox: st.Name, UIDValidity: st.UIDValidity, UID: uint32(it.uid)}
				var o Outcome
				var err error
				switch {
				case it.gone:
					continue
				case it.email == nil:
					o, err = s.holdTooLarge(tx, it, src)
				case poisoned[it.uid] != "":
					o, err = s.holdPoisoned(tx, it, src, poisoned[it.uid])
					pending.AddNum(it.uid)
				default:
					o, err = s.applySafely(tx, it, src)
					pending.AddNum(it.uid)
				}
				if err != nil {
					return err
				}
				outcomes = append(outcomes, o)
			}
			next.LastUID = uint32(items[len(items)-1].uid)
			next.PendingMark = fromUIDSet(pending)
			next.Updated = p.cfg.Applier.Now()
			return tx.PutMailbox(&next)
		})
		var pe *errPoison
		if errors.As(err, &pe) {
			p.log.Error("email made the gateway fail; holding it for staff", "uid", uint32(pe.uid), "reason", pe.reason)
			poisoned[pe.uid] = pe.reason
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("commit uids %d-%d: %w", items[0].uid, items[len(items)-1].uid, err)
		}
		*st = next
		return outcomes, nil
	}
	return nil, errors.New("commit: every email of the batch failed")
}

func (s *session) applySafely(tx *store.Tx, it *fetched, src store.Source) (o Outcome, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &errPoison{uid: it.uid, reason: fmt.Sprintf("panic: %v", r)}
		}
	}()
	return s.p.cfg.Applier.Apply(tx, it.email, src)
}

func (s *session) holdPoisoned(tx *store.Tx, it *fetched, src store.Source, reason string) (Outcome, error) {
	e := it.email
	hash, err := tx.PutRaw(e.Raw)
	if err != nil {
		return Outcome{}, err
	}
	h := &store.Held{MessageID: e.MessageID, From: e.From, Subject: e.Subject, Reason: store.HeldInternal,
		Detail:   "the gateway failed on this email (" + reason + "); report it to the developers",
		Received: e.Arrival, RawSHA256: hash, Size: int64(len(e.Raw)), Source: src}
	if err := tx.Hold(h); err != nil {
		return Outcome{}, err
	}
	if err := tx.MarkIngested(e.SHA256, store.Ref{HeldID: h.ID}); err != nil {
		return Outcome{}, err
	}
	return Outcome{UID: src.UID, MessageID: e.MessageID, From: e.From, Action: "held", HeldID: h.ID,
		Reason: h.Reason, Detail: h.Detail}, nil
}

// holdTooLarge records an email above the size limit; it stays on the server, unflagged.
func (s *session) holdTooLarge(tx *store.Tx, it *fetched, src store.Source) (Outcome, error) {
	h := &store.Held{Reason: store.HeldTooLarge, Received: it.arrival, Size: it.size, Source: src,
		Detail: fmt.Sprintf("%d bytes, above the limit of %d; left unread in the mailbox", it.size, s.p.cfg.MaxMessageBytes)}
	if env := it.env; env != nil {
		h.MessageID = mailparse.CanonicalMessageID(env.MessageID)
		h.Subject = mailparse.CleanLine(env.Subject)
		if len(env.From) > 0 {
			h.From = store.NormalizeAddress(env.From[0].Addr())
		}
	}
	if err := tx.Hold(h); err != nil {
		return Outcome{}, err
	}
	return Outcome{UID: src.UID, MessageID: h.MessageID, From: h.From, Action: "held", HeldID: h.ID,
		Reason: h.Reason, Detail: h.Detail}, nil
}

// mark flags committed messages \Seen and, when configured, moves them.
func (s *session) mark(set imap.UIDSet) error {
	if len(set) == 0 {
		return nil
	}
	err := s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
	if err != nil {
		return fmt.Errorf("flag uids %s \\Seen: %w", set, err)
	}
	if s.p.cfg.MoveTo != "" && s.canMove {
		if _, err := s.c.Move(set, s.p.cfg.MoveTo).Wait(); err != nil {
			return fmt.Errorf("move uids %s to %q: %w", set, s.p.cfg.MoveTo, err)
		}
	}
	return nil
}

// wait returns when the server announces new mail, after the poll interval, or when ctx is
// done. With IDLE the push arrives in milliseconds; without it this is a plain poll.
func (s *session) wait(ctx context.Context) error {
	timer := time.NewTimer(s.p.cfg.PollInterval)
	defer timer.Stop()
	if !s.c.Caps().Has(imap.CapIdle) {
		select {
		case <-ctx.Done():
		case <-timer.C:
		case <-s.c.Closed():
			return errors.New("imap connection closed by the server")
		}
		return nil
	}
	idle, err := s.c.Idle()
	if err != nil {
		return fmt.Errorf("start IDLE: %w", err)
	}
	s.p.emit(Event{Idling: true})
	select {
	case <-ctx.Done():
	case <-timer.C:
	case <-s.mail:
	case <-s.c.Closed():
	}
	if err := idle.Close(); err != nil {
		return fmt.Errorf("stop IDLE: %w", err)
	}
	if err := idle.Wait(); err != nil {
		return fmt.Errorf("IDLE: %w", err)
	}
	return nil
}

func toUIDSet(rs []store.UIDRange) imap.UIDSet {
	var set imap.UIDSet
	for _, r := range rs {
		set.AddRange(imap.UID(r.Start), imap.UID(r.Stop))
	}
	return set
}

func fromUIDSet(set imap.UIDSet) []store.UIDRange {
	var out []store.UIDRange
	for _, r := range set {
		out = append(out, store.UIDRange{Start: uint32(r.Start), Stop: uint32(r.Stop)})
	}
	return out
}
