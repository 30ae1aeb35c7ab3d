package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/internal/oauth"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
)

// ErrLoginRefused: the IMAP server refused the configured credentials.
var ErrLoginRefused = errors.New("IMAP login refused")

// session is one logged-in IMAP connection with the support mailbox selected.
type session struct {
	p    *Poller
	c    *imapclient.Client
	sel  *imap.SelectData
	mail chan struct{} // the server announced more messages (EXISTS)
	// count is the message count as the server told it: set by SELECT and EXISTS, lowered by
	// each EXPUNGE (ours after a MOVE, or another client's). A new EXISTS wakes the poller
	// only when it is above count (some servers repeat EXISTS after every command), so count
	// must follow messages leaving the mailbox too: with imap_move_to, the mailbox empties
	// after every batch, and the next email's EXISTS 1 must still wake the loop.
	count atomic.Uint32
	// canMove: the server has MOVE. Without it go-imap falls back to COPY, STORE \Deleted and
	// a plain EXPUNGE, which would also remove every message staff had flagged \Deleted.
	canMove bool
	// st is the checkpoint as committed (loaded at the first sync of the session); dirty: its
	// pending flags were set on the server but the store still lists them.
	st     *helpdesk.MailboxState
	dirty  bool
	stopWD func() bool // the shutdown watchdog
	// hard is done when the session must stop now: a stop grace after the poller was told to
	// stop (or when the session ends). Reading an email stops with it: the gateway does not
	// wait for a runaway parse past its stop grace.
	hard     context.Context
	stopHard context.CancelFunc

	// A FETCH answer whose UID go-imap already handed to our command (after an unsolicited
	// FETCH of flags) reaches the unilateral handler instead: bodies of wanted UIDs are kept
	// here so they are not lost.
	strayMu sync.Mutex
	wanted  map[imap.UID]bool
	strays  map[imap.UID][]byte

	gap         map[imap.UID]bool // above the checkpoint at the last gap check
	lastFullGap time.Time         // the last comparison of every UID with the store
}

// isServerNo reports whether err is the server's tagged NO/BAD for one command: the
// connection is fine, the command failed.
func isServerNo(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie)
}

// connect dials, logs in and selects the mailbox. Errors name the server, the step and what
// to check, for an operator to act on.
func (p *Poller) connect(ctx context.Context) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &session{p: p, mail: make(chan struct{}, 1)}
	s.hard, s.stopHard = context.WithCancel(context.Background())
	opts := &imapclient.Options{
		TLSConfig:   p.cfg.TLSConfig,
		Dialer:      &net.Dialer{Timeout: p.cfg.DialTimeout, KeepAlive: 30 * time.Second},
		WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			// Runs on the client's reader goroutine: never issue a command here, only signal.
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil && *d.NumMessages > s.count.Swap(*d.NumMessages) {
					select {
					case s.mail <- struct{}{}:
					default:
					}
				}
			},
			// An untagged EXPUNGE: go-imap hands it here unless an EXPUNGE command of ours is
			// pending, so the answers to our MOVE (RFC 6851 §4.3) and other clients' deletions
			// arrive here. The session never sends EXPUNGE itself (without MOVE it only flags),
			// and never enables QRESYNC, so the server sends no VANISHED instead (RFC 7162 §3.2.10).
			Expunge: func(uint32) {
				for {
					n := s.count.Load()
					if n == 0 || s.count.CompareAndSwap(n, n-1) {
						return
					}
				}
			},
			Fetch: s.stray,
		},
	}
	var err error
	if s.c, err = dial(p.cfg.Addr, p.cfg.TLS, opts); errors.Is(err, errTLSMode) {
		return nil, err
	}
	if err != nil {
		hint := ""
		var refused *imap.Error
		s.stopHard()
		if p.cfg.TLS == helpdesk.TLSStart && errors.As(err, &refused) {
			// The only command DialStartTLS sends is STARTTLS: a NO or BAD, whatever its text,
			// is the server refusing it. Never a fall-back to a login in clear: the operator chooses.
			hint = " (the server refused STARTTLS: if it speaks IMAPS, set imap_tls = tls and its port, usually 993)"
		}
		return nil, fmt.Errorf("connect to IMAP server %s %s: %w%s", p.cfg.Addr, helpdesk.TLSWords(p.cfg.TLS), err, hint)
	}
	// The library has no context, and waits for the start of a response without a deadline.
	// A watchdog closes the connection when the command in hand does not finish within the
	// timeout, and a cancelled ctx leaves the batch in hand a grace period before it does.
	done := s.guard(p.cfg.DialTimeout)
	s.stopWD = context.AfterFunc(ctx, func() {
		time.AfterFunc(p.cfg.StopGrace, func() {
			s.c.Close()
			s.stopHard()
		})
	})
	fail := func(err error) (*session, error) {
		done()
		s.stopWD()
		s.stopHard()
		s.c.Close()
		return nil, err
	}
	if err := login(ctx, s.c, &p.cfg); err != nil {
		var r *refusal
		var te *tokenError
		switch {
		case errors.As(err, &r):
			return fail(fmt.Errorf("%w: IMAP server %s refused login as %q: %s (%s)", ErrLoginRefused, p.cfg.Addr, p.cfg.User, r.ie.Text, loginFix(r)))
		case errors.As(err, &te) && errors.Is(err, oauth.ErrRefused):
			return fail(fmt.Errorf("%w: %w", ErrLoginRefused, te.err))
		case errors.As(err, &te):
			return fail(fmt.Errorf("IMAP login at %s: OAuth access token: %w", p.cfg.Addr, te.err))
		}
		return fail(fmt.Errorf("IMAP login at %s: %w", p.cfg.Addr, err))
	}
	if p.cfg.MoveTo != "" {
		if err := s.checkMoveTo(); err != nil {
			return fail(err)
		}
	}
	s.sel, err = s.c.Select(p.cfg.Mailbox, nil).Wait()
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
			return fail(fmt.Errorf("IMAP mailbox %q does not exist on %s (check the mailbox setting)", p.cfg.Mailbox, p.cfg.Addr))
		}
		return fail(fmt.Errorf("select IMAP mailbox %q on %s: %w", p.cfg.Mailbox, p.cfg.Addr, err))
	}
	done()
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	s.count.Store(s.sel.NumMessages)
	s.canMove = s.c.Caps().Has(imap.CapMove)
	if p.cfg.MoveTo != "" && !s.canMove {
		p.log.Warn("the IMAP server has no MOVE: processed mail stays in the mailbox, flagged \\Seen", "move_to", p.cfg.MoveTo)
	}
	p.log.Debug("imap connected", "addr", p.cfg.Addr, "mailbox", p.cfg.Mailbox,
		"uidvalidity", s.sel.UIDValidity, "uidnext", uint32(s.sel.UIDNext), "messages", s.sel.NumMessages,
		"idle", s.c.Caps().Has(imap.CapIdle))
	return s, nil
}

// checkMoveTo makes sure the move-to folder exists and can be used before any mail is
// committed: a folder that cannot be used would otherwise leave every batch unmoved.
func (s *session) checkMoveTo() error {
	p := s.p
	err := s.c.Create(p.cfg.MoveTo, nil).Wait()
	var ie *imap.Error
	if err == nil || (errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists) {
		return nil
	}
	if !isServerNo(err) {
		return fmt.Errorf("create move-to folder %q on %s: %w", p.cfg.MoveTo, p.cfg.Addr, err)
	}
	// Some servers answer a plain NO for a folder that exists: ask it.
	if _, serr := s.c.Status(p.cfg.MoveTo, &imap.StatusOptions{NumMessages: true}).Wait(); serr != nil {
		return fmt.Errorf("move-to folder %q cannot be used on %s: %v (check imap_move_to; servers with a namespace prefix want e.g. INBOX.%s)",
			p.cfg.MoveTo, p.cfg.Addr, err, p.cfg.MoveTo)
	}
	return nil
}

// stray keeps the body of a wanted UID that arrived outside our command's answer. It runs on
// its own goroutine (go-imap starts one per unilateral FETCH) and must read the whole message.
func (s *session) stray(msg *imapclient.FetchMessageData) {
	var uid imap.UID
	var raw []byte
	for item := msg.Next(); item != nil; item = msg.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			uid = it.UID
		case imapclient.FetchItemDataBodySection:
			s.strayMu.Lock()
			want := s.wanted[uid] && it.Literal.Size() <= s.p.cfg.MaxMessageBytes+1<<20
			s.strayMu.Unlock()
			if want {
				b := make([]byte, it.Literal.Size())
				if _, err := io.ReadFull(it.Literal, b); err == nil {
					raw = b
				}
			} else {
				_, _ = io.Copy(io.Discard, it.Literal)
			}
		}
	}
	if len(raw) > 0 {
		s.strayMu.Lock()
		if s.wanted[uid] {
			s.strays[uid] = raw
		}
		s.strayMu.Unlock()
	}
}

// want sets the UIDs whose stray bodies are kept; takeStray returns one.
func (s *session) want(uids []imap.UID) {
	s.strayMu.Lock()
	defer s.strayMu.Unlock()
	s.wanted, s.strays = map[imap.UID]bool{}, map[imap.UID][]byte{}
	for _, u := range uids {
		s.wanted[u] = true
	}
}

func (s *session) takeStray(uid imap.UID) []byte {
	s.strayMu.Lock()
	defer s.strayMu.Unlock()
	raw := s.strays[uid]
	delete(s.strays, uid)
	return raw
}

// guard closes the connection when the caller's command has not finished within d; the
// returned func disarms it. Every command of the session runs under one.
func (s *session) guard(d time.Duration) func() {
	t := time.AfterFunc(d, func() {
		s.p.log.Warn("the IMAP server did not answer in time; dropping the connection", "addr", s.p.cfg.Addr, "timeout", d)
		s.c.Close()
	})
	return func() { t.Stop() }
}

func (s *session) close() {
	defer s.stopWD()
	defer s.stopHard()
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
	// From the record of earlier readings (parsenet.go): unread says why the email is not
	// read again (it is held); alone, that it is read in a batch of its own.
	unread string
	alone  bool
}

// sync ingests every message above the checkpoint, batch by batch.
func (s *session) sync(ctx context.Context) error {
	p := s.p
	if s.st == nil {
		if err := p.db.View(ctx, func(tx *store.Tx) (err error) {
			s.st, err = tx.Mailbox(p.cfg.Mailbox)
			return err
		}); err != nil {
			return fmt.Errorf("read checkpoint of %s: %w", p.cfg.Mailbox, err)
		}
		if err := s.checkValidity(ctx); err != nil {
			return err
		}
	}
	if err := s.markPending(); err != nil {
		return err
	}
	metas, skipped, err := s.list(s.st.LastUID)
	if err != nil {
		return err
	}
	if len(metas) > 0 || len(skipped) > 0 {
		p.emit(Event{Listed: len(metas), Skipped: len(skipped)})
	}
	if err := s.markSkipped(ctx, skipped); err != nil {
		return err
	}
	before, err := s.loadAttempts()
	if err != nil {
		return err
	}
	for i := range metas {
		metas[i].unread = before.unread[metas[i].uid]
		metas[i].alone = metas[i].unread == "" && before.alone(metas[i].uid)
	}
	var batches [][]meta
	for len(metas) > 0 {
		// An email read alone, or not read again, is a batch of its own.
		apart := func(m meta) bool { return m.alone || m.unread != "" }
		n, bytes := 0, int64(0)
		for n < len(metas) && n < p.cfg.BatchSize &&
			(n == 0 || (bytes+metas[n].size <= p.cfg.BatchBytes && !apart(metas[0]) && !apart(metas[n]))) {
			if metas[n].size <= p.cfg.MaxMessageBytes {
				bytes += metas[n].size
			}
			n++
		}
		batches = append(batches, metas[:n])
		metas = metas[n:]
	}
	done, err := s.pipeline(ctx, batches)
	if err != nil {
		return err
	}
	if err := s.markPending(); err != nil {
		return err
	}
	if done {
		if err := s.passSkipped(ctx, skipped); err != nil {
			return err
		}
	}
	if err := s.checkGap(); err != nil {
		return err
	}
	if s.dirty {
		// The flags of the last batch are set: the next start need not set them again.
		if err := p.db.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error { return tx.PutMailbox(s.st) }); err != nil {
			return fmt.Errorf("record flags of %s: %w", p.cfg.Mailbox, err)
		}
		s.dirty = false
	}
	return nil
}

// checkGap is the alarm for mail silently skipped — what helpdesk users most often report.
// After each sync, a message above the checkpoint may have just arrived; one still above it at
// the next sync was not taken in. Every GapInterval (and at the first sync of a session) it
// also compares every message at or below the checkpoint with the UIDs the store took in: one
// that is in the mailbox but not in the store was skipped. Both are logged and counted
// (Event.Gap); they are reported, not fixed — the cause is a bug to find.
func (s *session) checkGap() error {
	defer s.guard(s.p.cfg.CommandTimeout)()
	st := s.st
	data, err := s.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait() // ALL
	if err != nil {
		return fmt.Errorf("gap check: %w", err)
	}
	full := s.lastFullGap.IsZero() || time.Since(s.lastFullGap) >= s.p.cfg.GapInterval
	above := map[imap.UID]bool{}
	var missed, skipped []uint32
	var below []imap.UID
	for _, uid := range data.AllUIDs() {
		if uint32(uid) > st.LastUID {
			above[uid] = true
			if s.gap[uid] {
				missed = append(missed, uint32(uid))
			}
		} else if full {
			below = append(below, uid)
		}
	}
	s.gap = above
	if full {
		s.lastFullGap = time.Now()
		if err := s.p.db.View(context.Background(), func(tx *store.Tx) error {
			for _, uid := range below {
				if !tx.HasUID(st.Name, st.UIDValidity, uint32(uid)) {
					skipped = append(skipped, uint32(uid))
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("gap check: %w", err)
		}
	}
	if n := len(missed) + len(skipped); n > 0 {
		s.p.log.Error("emails in the mailbox that the gateway has not taken in",
			"mailbox", st.Name, "checkpoint", st.LastUID, "above_checkpoint", missed, "skipped_below_checkpoint", skipped)
		s.p.emit(Event{Gap: n})
	}
	return nil
}

// checkValidity resets the checkpoint when the mailbox is not the one it was taken of: a new
// UIDVALIDITY, or (seen with Dovecot when a mailbox is recreated within the same second) a
// UIDNEXT at or below the checkpoint. Dedupe by raw hash and identity keeps the replay from
// duplicating. On the first sync, and after a reset, mail that arrived before then is
// ingested quietly: the gateway must not answer a mailbox's whole history.
func (s *session) checkValidity(ctx context.Context) error {
	st, sel := s.st, s.sel
	first := st.UIDValidity == 0
	reset := !first && (st.UIDValidity != sel.UIDValidity ||
		(st.LastUID > 0 && uint32(sel.UIDNext) != 0 && uint32(sel.UIDNext) <= st.LastUID))
	if !first && !reset {
		return nil
	}
	now := s.p.cfg.Desk.Now()
	quiet := now.Add(-s.p.cfg.BacklogAge)
	if reset {
		s.p.log.Warn("mailbox was reset on the server; re-reading it (already stored emails are skipped)",
			"mailbox", st.Name, "old_uidvalidity", st.UIDValidity, "new_uidvalidity", sel.UIDValidity,
			"checkpoint", st.LastUID, "uidnext", uint32(sel.UIDNext))
		if !st.Updated.IsZero() && st.Updated.Before(now) {
			quiet = st.Updated // mail older than the last sync was in the old mailbox
		}
	}
	st.UIDValidity, st.LastUID, st.PendingMark = sel.UIDValidity, 0, nil
	st.UIDNext = uint32(sel.UIDNext)
	st.QuietBefore, st.Updated = quiet, now
	return s.p.db.Update(ctx, func(tx *store.Tx) error { return tx.PutMailbox(st) })
}

// markSkipped records the emails passed over (Config.Since) as accounted for, so the gap
// alarm does not report them. It runs before the batches: the checkpoint moves past them only
// once every email listed with them is committed (passSkipped).
func (s *session) markSkipped(ctx context.Context, uids []imap.UID) error {
	if len(uids) == 0 {
		return nil
	}
	st := s.st
	err := s.p.db.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		for _, uid := range uids {
			if err := tx.MarkUID(st.Name, st.UIDValidity, uint32(uid)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d emails of %s passed over: %w", len(uids), st.Name, err)
	}
	s.p.log.Info("emails passed over: they arrived before the start date", "mailbox", st.Name,
		"count", len(uids), "since", s.p.cfg.Since.Format(time.RFC3339))
	return nil
}

// passSkipped moves the checkpoint past the emails passed over, once every email listed with
// them is committed: no later run takes them in. A UID above the listing's highest is mail
// that arrived since, so nothing unlisted is passed.
func (s *session) passSkipped(ctx context.Context, uids []imap.UID) error {
	top := s.st.LastUID
	for _, uid := range uids {
		top = max(top, uint32(uid))
	}
	if top == s.st.LastUID {
		return nil
	}
	next := *s.st
	next.LastUID, next.Updated = top, s.p.cfg.Desk.Now()
	if err := s.p.db.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error { return tx.PutMailbox(&next) }); err != nil {
		return fmt.Errorf("move the checkpoint of %s past the emails passed over: %w", s.st.Name, err)
	}
	*s.st = next
	return nil
}

// list returns the UIDs above last with their size and arrival, in UID order, and apart the
// UIDs of emails that arrived before Config.Since (passed over).
func (s *session) list(last uint32) ([]meta, []imap.UID, error) {
	defer s.guard(s.p.cfg.CommandTimeout)()
	var set imap.UIDSet
	set.AddRange(imap.UID(last+1), 0) // last+1:*
	cmd := s.c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true})
	defer cmd.Close()
	var out []meta
	var skipped []imap.UID
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		buf, err := msg.Collect()
		if err != nil {
			return nil, nil, fmt.Errorf("list messages above uid %d: %w", last, err)
		}
		// "n:*" always includes the highest UID, even below n: keep only what is new.
		if uint32(buf.UID) <= last {
			continue
		}
		if since := s.p.cfg.Since; !since.IsZero() && !buf.InternalDate.IsZero() && buf.InternalDate.Before(since) {
			skipped = append(skipped, buf.UID)
			continue
		}
		out = append(out, meta{uid: buf.UID, size: buf.RFC822Size, arrival: buf.InternalDate})
	}
	if err := cmd.Close(); err != nil {
		return nil, nil, fmt.Errorf("list messages above uid %d: %w", last, err)
	}
	slices.SortFunc(out, func(a, b meta) int { return int(a.uid) - int(b.uid) })
	return out, skipped, nil
}

// fetched is one message of a batch, ready to commit.
type fetched struct {
	meta
	email *parse.Email // nil when not fetched
	// packed is the email's raw bytes and text compressed for the store, on the parse worker
	// (nil: packed in the transaction).
	packed *desk.Packed
	env    *imap.Envelope // for messages whose body is not fetched
	// abandoned: its reading was cut off by the gateway's stop (the batch is not committed).
	abandoned bool
	// Exactly one reason when email is nil:
	tooLarge    bool   // above MaxMessageBytes: left in the mailbox
	unfetchable string // the server would not hand out the body (its answer)
	vanished    bool   // expunged by someone else between listing and fetching
}

// pipeline commits the batches in order, fetching and parsing the next batch while the
// current one commits (the store needs no IMAP, the fetch no store): the IMAP round trips,
// the parse and the fsync overlap. It stops between batches when ctx is done and reports
// whether every batch was committed. The flags are set once, after the last commit.
func (s *session) pipeline(ctx context.Context, batches [][]meta) (bool, error) {
	if len(batches) == 0 {
		return true, nil
	}
	type prepared struct {
		items []*fetched
		err   error
	}
	cur, err := s.prepare(batches[0])
	if err != nil {
		return false, err
	}
	for i := range batches {
		var next chan prepared
		if i+1 < len(batches) && ctx.Err() == nil {
			next = make(chan prepared, 1)
			go func(metas []meta) {
				items, err := s.prepare(metas)
				next <- prepared{items, err}
			}(batches[i+1])
		}
		err := s.finish(cur)
		if next == nil {
			return err == nil && i+1 == len(batches), err
		}
		n := <-next
		if err != nil {
			return false, err
		}
		if n.err != nil {
			return false, n.err
		}
		cur = n.items
	}
	return true, nil
}

// prepare fetches and parses one batch. No UID passes the checkpoint unaccounted for: a
// message whose body did not come is fetched again on its own, and if it still does not come
// it is held — as unfetchable (still in the mailbox) or as vanished (expunged by someone else)
// — never skipped in silence.
func (s *session) prepare(metas []meta) (_ []*fetched, err error) {
	p := s.p
	items := make([]*fetched, len(metas))
	byUID := map[imap.UID]*fetched{}
	var small, large []imap.UID
	var bytes int64
	for i, m := range metas {
		items[i] = &fetched{meta: m}
		byUID[m.uid] = items[i]
		if m.size > p.cfg.MaxMessageBytes {
			items[i].tooLarge = true
			large = append(large, m.uid)
		} else {
			small = append(small, m.uid)
			bytes += m.size
		}
	}
	// The crash net (parsenet.go): the batch is on record as being read before its first
	// email is parsed. A batch that is not committed takes its record away, unless its email
	// read alone was cut off by the stop (it is then not read again).
	alone := len(metas) == 1 && metas[0].alone
	if len(small) > 0 {
		if err := s.beginReading(items, alone); err != nil {
			return nil, err
		}
		defer func() {
			if (err != nil || alone) && !(alone && items[0].abandoned) {
				s.endReading(items, alone)
			}
		}()
	}
	parsing := func() { s.batchStep(items, BatchParse, s.parseLimit(items)) }
	s.batchStep(items, BatchFetch, s.fetchTimeout(bytes))
	s.want(small)
	defer s.want(nil)
	if err := s.fetchBodies(small, byUID, bytes, parsing); err != nil && !isServerNo(err) {
		return nil, err
	}
	var noBody []imap.UID
	for _, uid := range small {
		it := byUID[uid]
		if it.email == nil {
			if raw := s.takeStray(uid); raw != nil {
				it.email = s.read(it, raw)
			}
		}
		if it.email != nil {
			continue
		}
		// One at a time: a server refuses a whole FETCH for one unreadable message, and an
		// unsolicited FETCH (a flag change) may have stood in for the body in the answer.
		// Each is a command of its own, and progress.
		s.batchStep(items, BatchFetch, s.fetchTimeout(it.size))
		err := s.fetchBodies([]imap.UID{uid}, byUID, it.size, parsing)
		if err != nil && !isServerNo(err) {
			return nil, err
		}
		if it.email == nil {
			if raw := s.takeStray(uid); raw != nil {
				it.email = s.read(it, raw)
				continue
			}
			noBody = append(noBody, uid)
			it.unfetchable = "no body in the server's answer"
			if err != nil {
				it.unfetchable = err.Error()
			}
		}
	}
	if len(noBody) > 0 {
		s.batchStep(items, BatchFetch, p.cfg.CommandTimeout)
		exists, err := s.existing(noBody)
		if err != nil {
			return nil, err
		}
		for _, uid := range noBody {
			it := byUID[uid]
			if !exists[uid] {
				it.vanished, it.unfetchable = true, ""
				continue
			}
			large = append(large, uid)
			p.log.Error("the IMAP server would not hand out a message; holding it, left in the mailbox",
				"uid", uint32(uid), "mailbox", p.cfg.Mailbox, "answer", it.unfetchable)
		}
	}
	if len(large) > 0 {
		s.batchStep(items, BatchFetch, p.cfg.CommandTimeout)
	}
	if err := s.fetchEnvelopes(large, byUID); err != nil && !isServerNo(err) {
		return nil, err
	}
	if s.hard.Err() != nil {
		return nil, errStopped
	}
	return items, nil
}

// finish commits a prepared batch and reports each email's outcome.
func (s *session) finish(items []*fetched) error {
	s.batchStep(items, BatchCommit, s.p.cfg.CommandTimeout)
	outcomes, err := s.commit(items)
	if err != nil {
		return err
	}
	s.batchStep(items, BatchDone, 0)
	for i := range outcomes {
		s.p.log.LogAttrs(context.Background(), slog.LevelInfo, "email", outcomes[i].LogAttrs()...)
		if a := outcomes[i].Unbounced; a != "" {
			s.p.log.Info("automatic mail no longer suspended", "address", a,
				"reason", "the customer wrote from the address again after mail to it bounced", "ticket", outcomes[i].TicketID)
		}
		s.p.emit(Event{Outcome: &outcomes[i]})
	}
	return nil
}

// batchStep reports that the batch of items starts a step (Event.Batch).
func (s *session) batchStep(items []*fetched, step string, limit time.Duration) {
	if len(items) == 0 {
		return
	}
	s.p.emit(Event{Batch: &Batch{First: uint32(items[0].uid), Last: uint32(items[len(items)-1].uid),
		Count: len(items), Step: step, Limit: limit}})
}

// fetchTimeout is how long a FETCH of bodies totalling bytes may take: a slow link must not
// be mistaken for a dead server, so a minute per 64 MiB on top of the command timeout.
func (s *session) fetchTimeout(bytes int64) time.Duration {
	return s.p.cfg.CommandTimeout + time.Duration(bytes>>26)*time.Minute
}

// existing returns which of the UIDs are still in the mailbox.
func (s *session) existing(uids []imap.UID) (map[imap.UID]bool, error) {
	defer s.guard(s.p.cfg.CommandTimeout)()
	data, err := s.c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(uids...)}}, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("search uids %v: %w", uids, err)
	}
	out := map[imap.UID]bool{}
	for _, uid := range data.AllUIDs() {
		out[uid] = true
	}
	return out, nil
}

// fetchBodies streams BODY.PEEK[] of the UIDs (one UID FETCH) and parses each message as
// it arrives, on as many workers as there are CPUs, while the next one is read. parsing is
// called when the FETCH is done and the parses of the last bodies are still under way.
func (s *session) fetchBodies(uids []imap.UID, byUID map[imap.UID]*fetched, bytes int64, parsing func()) (err error) {
	if len(uids) == 0 {
		return nil // an empty set would make the library close the connection
	}
	fetchDone := s.guard(s.fetchTimeout(bytes))
	defer fetchDone()
	type job struct {
		f   *fetched
		raw []byte
	}
	jobs := make(chan job, 64)
	var wg sync.WaitGroup
	var unparsed atomic.Int64 // queued or being parsed
	for range max(1, min(runtime.GOMAXPROCS(0), len(uids))) {
		wg.Go(func() {
			for j := range jobs {
				j.f.email = s.read(j.f, j.raw)
				unparsed.Add(-1)
				if s.hard.Err() != nil && errors.Is(j.f.email.Err, context.Canceled) {
					j.f.abandoned = true
					continue
				}
				// Packing failing is not the email's fault: the transaction packs again
				// and reports the error there.
				j.f.packed, _ = desk.Pack(s.p.db, j.f.email)
			}
		})
	}
	defer func() {
		close(jobs)
		if err == nil && unparsed.Load() > 0 {
			fetchDone() // the FETCH is done; the parses have their own limits
			parsing()
		}
		wg.Wait()
		if err == nil && s.hard.Err() != nil {
			err = errStopped
		}
	}()
	section := &imap.FetchItemBodySection{Peek: true}
	cmd := s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{section}})
	defer cmd.Close()
	queued := map[*fetched]bool{}
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
		if f == nil || raw == nil || queued[f] {
			continue // unasked-for data (a flag change pushed by the server)
		}
		if len(raw) == 0 && f.size > 0 {
			// Seen with go-imap's reference server for mail its parser rejects: an empty
			// body for a message that has one. Not the email: it is fetched again alone,
			// then held as unfetchable — never taken for an (empty) email.
			continue
		}
		if !arrival.IsZero() {
			f.arrival = arrival
		}
		queued[f] = true
		unparsed.Add(1)
		jobs <- job{f, raw}
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("fetch %d messages: %w", len(uids), err)
	}
	return nil
}

// fetchEnvelopes reads only the envelope of messages whose body is not fetched.
func (s *session) fetchEnvelopes(uids []imap.UID, byUID map[imap.UID]*fetched) error {
	if len(uids) == 0 {
		return nil
	}
	defer s.guard(s.p.cfg.CommandTimeout)()
	bufs, err := s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil {
		return fmt.Errorf("fetch envelopes: %w", err)
	}
	for _, b := range bufs {
		if f := byUID[b.UID]; f != nil && b.Envelope != nil {
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
func (s *session) commit(items []*fetched) ([]desk.Outcome, error) {
	p := s.p
	st := s.st
	poisoned := map[imap.UID]string{}
	for attempt := 0; attempt <= len(items); attempt++ {
		var outcomes []desk.Outcome
		next := *st
		err := p.db.Update(context.Background(), func(tx *store.Tx) error {
			outcomes = outcomes[:0]
			pending := toUIDSet(st.PendingMark) // flags still owed from earlier batches
			for _, it := range items {
				src := helpdesk.Source{Mailbox: st.Name, UIDValidity: st.UIDValidity, UID: uint32(it.uid)}
				// Backlog: no automatic replies to mail that was waiting before the first sync
				// (or a reset); the part of it older than the backlog age is history.
				quiet := it.arrival.Before(st.QuietBefore)
				history := quiet && it.arrival.Before(p.cfg.Desk.Now().Add(-p.cfg.BacklogAge))
				var o desk.Outcome
				var err error
				switch {
				case it.vanished:
					o, err = s.holdUnread(tx, it, src, helpdesk.HeldVanished,
						"expunged from the mailbox by someone else before the gateway could read it")
				case it.unfetchable != "":
					o, err = s.holdUnread(tx, it, src, helpdesk.HeldUnfetchable,
						"the IMAP server would not hand out the message ("+it.unfetchable+"); left unread in the mailbox")
				case it.tooLarge:
					o, err = s.holdUnread(tx, it, src, helpdesk.HeldTooLarge,
						fmt.Sprintf("%d bytes, above the limit of %d; left unread in the mailbox", it.size, p.cfg.MaxMessageBytes))
				case poisoned[it.uid] != "":
					o, err = s.holdPoisoned(tx, it, src, poisoned[it.uid])
					pending.AddNum(it.uid)
				default:
					o, err = s.applySafely(tx, it, src, quiet, history)
					pending.AddNum(it.uid)
				}
				if err != nil {
					return fmt.Errorf("uid %d: %w", it.uid, err)
				}
				if err := tx.MarkUID(st.Name, st.UIDValidity, uint32(it.uid)); err != nil {
					return err
				}
				outcomes = append(outcomes, o)
			}
			next.LastUID = uint32(items[len(items)-1].uid)
			next.PendingMark = fromUIDSet(pending)
			next.Updated = p.cfg.Desk.Now()
			if err := clearReadings(tx, &next, next.LastUID); err != nil {
				return fmt.Errorf("clear the record of emails being read: %w", err)
			}
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

func (s *session) applySafely(tx *store.Tx, it *fetched, src helpdesk.Source, quiet, history bool) (o desk.Outcome, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &errPoison{uid: it.uid, reason: fmt.Sprintf("panic: %v", r)}
		}
	}()
	if history {
		return s.p.cfg.Desk.ApplyHistory(tx, it.email, it.packed, src)
	}
	return s.p.cfg.Desk.ApplyPacked(tx, it.email, it.packed, src, quiet)
}

func (s *session) holdPoisoned(tx *store.Tx, it *fetched, src helpdesk.Source, reason string) (desk.Outcome, error) {
	e := it.email
	hash, err := tx.PutRaw(e.Raw)
	if err != nil {
		return desk.Outcome{}, err
	}
	h := &helpdesk.Held{MessageID: e.MessageID, From: e.From, FromName: e.FromName, Subject: e.Subject, Reason: helpdesk.HeldInternal,
		Detail:   "the gateway failed on this email (" + reason + "); report it to the developers",
		Received: e.Arrival, RawSHA256: hash, Size: int64(len(e.Raw)), Source: src}
	if err := tx.Hold(h); err != nil {
		return desk.Outcome{}, err
	}
	if err := tx.MarkIngested(e.SHA256, helpdesk.Ref{HeldID: h.ID}); err != nil {
		return desk.Outcome{}, err
	}
	return desk.Outcome{UID: src.UID, MessageID: e.MessageID, From: e.From, Action: "held", HeldID: h.ID,
		Reason: h.Reason, Detail: h.Detail}, nil
}

// holdUnread records an email whose body the gateway did not read (too large, refused by the
// server, vanished), from its envelope when there is one. It stays on the server, unflagged.
// The same email found again after a mailbox reset is not held twice.
func (s *session) holdUnread(tx *store.Tx, it *fetched, src helpdesk.Source, reason, detail string) (desk.Outcome, error) {
	h := &helpdesk.Held{Reason: reason, Detail: detail, Received: it.arrival, Size: it.size, Source: src}
	if env := it.env; env != nil {
		h.MessageID = parse.BareMessageID(env.MessageID) // as written: it may be quoted back
		h.Subject = parse.CleanLine(env.Subject)
		if len(env.From) > 0 {
			h.From = helpdesk.NormalizeAddress(env.From[0].Addr())
			h.FromName = parse.CleanLine(env.From[0].Name)
		}
	}
	key, hasKey := store.IdentityKey(h.MessageID, h.From, h.Subject)
	if hasKey {
		if ref, dup, err := tx.IngestedIdentity(key); err != nil {
			return desk.Outcome{}, err
		} else if dup {
			return desk.Outcome{UID: src.UID, MessageID: h.MessageID, From: h.From, Action: "duplicate", HeldID: ref.HeldID}, nil
		}
	}
	if err := tx.Hold(h); err != nil {
		return desk.Outcome{}, err
	}
	if hasKey && reason != helpdesk.HeldUnfetchable { // an unfetchable one may be readable later
		if err := tx.MarkIngestedIdentity(key, helpdesk.Ref{HeldID: h.ID}); err != nil {
			return desk.Outcome{}, err
		}
	}
	out := desk.Outcome{UID: src.UID, MessageID: h.MessageID, From: h.From, Action: "held", HeldID: h.ID,
		Reason: h.Reason, Detail: h.Detail, Arrival: it.arrival}
	if reason == helpdesk.HeldTooLarge && !it.arrival.Before(s.st.QuietBefore) {
		n, suppressed, err := s.p.cfg.Desk.TooLargeNotice(tx, h, it.size, s.p.cfg.MaxMessageBytes)
		if err != nil {
			return out, err
		}
		out.Notified, out.Suppressed = n, suppressed
	}
	return out, nil
}

// markPending flags the committed messages \Seen and, when configured, moves them. A server
// that refuses (NO) does not stop ingestion: the flags stay owed and are tried again at the
// next sync. A broken connection ends the session.
func (s *session) markPending() error {
	if len(s.st.PendingMark) == 0 {
		return nil
	}
	err := s.mark(toUIDSet(s.st.PendingMark))
	switch {
	case err == nil:
		s.st.PendingMark = nil
		s.dirty = true
		return nil
	case isServerNo(err):
		s.p.log.Warn("the IMAP server refused to flag processed mail; will try again (the emails are stored)",
			"mailbox", s.st.Name, "err", err)
		return nil
	}
	return err
}

func (s *session) mark(set imap.UIDSet) error {
	defer s.guard(s.p.cfg.CommandTimeout)()
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
	defer s.guard(s.p.cfg.CommandTimeout)()
	if err := idle.Close(); err != nil {
		return fmt.Errorf("stop IDLE: %w", err)
	}
	if err := idle.Wait(); err != nil {
		return fmt.Errorf("IDLE: %w", err)
	}
	return nil
}

func toUIDSet(rs []helpdesk.UIDRange) imap.UIDSet {
	var set imap.UIDSet
	for _, r := range rs {
		set.AddRange(imap.UID(r.Start), imap.UID(r.Stop))
	}
	return set
}

func fromUIDSet(set imap.UIDSet) []helpdesk.UIDRange {
	var out []helpdesk.UIDRange
	for _, r := range set {
		out = append(out, helpdesk.UIDRange{Start: uint32(r.Start), Stop: uint32(r.Stop)})
	}
	return out
}
