package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
)

// One email must never stop ingest. mail/parse bounds the work of reading an email by its size
// (structure bounds, a work budget, a deadline: the email is then held as unparseable and the
// batch goes on). What is left is the process dying while it reads one — out of memory, a
// fatal runtime error, an operator's SIGKILL of a gateway that seemed stuck — and the same
// email taking it down again after every restart. The crash net below (store.ParseAttempts):
//
//   - Before the emails of a batch are read, the batch is recorded (one synced write per
//     batch); the commit of the batch removes the record.
//   - A start that finds such a record (the process died, or was killed, while the batch was
//     read or before it was committed) reads that batch's emails again one at a time, each
//     recorded as being read alone (Alone) before and cleared right after: one email per
//     commit, two extra synced writes per email, only in this recovery.
//   - An email read alone is marked in a small file beside the database (readingMarker) for
//     exactly the time its parse runs: written before the parse and removed after it, without
//     fsync — a process that dies leaves the kernel's page cache behind, so the next start
//     finds the mark; only a machine crash loses it, and then nothing is held. A start that
//     finds the mark counts a death on that email (AloneDeaths).
//   - An email whose parse the process died in twice, or whose reading ran longer than
//     suspectAfter (recorded when it does: Suspects), is not read again: it is held as
//     unparseable, its raw bytes kept, and the emails behind it are taken in.
//
// A SIGKILL that happens to land while an ordinary email is read costs a slower restart, not
// a held email: the mark covers the parse alone (microseconds), not the IMAP round trip or the
// commit around it, so a kill at a random moment seldom lands in it, and twice in a row on the
// same email practically never — while an email that kills the process does so every time, in
// its parse. A reading that runs long needs no second death: it is recorded while it runs.

// suspectAfter is how long reading an email may run before it is recorded as a suspect: a
// normal email takes milliseconds, the biggest allowed a second on a busy machine.
const suspectAfter = 5 * time.Second

// attempts is what a sync learns of the previous readings in its mailbox: emails not to read
// again (with why) and emails to read alone.
type attempts struct {
	unread map[imap.UID]string
	alone  func(uid imap.UID) bool
}

// loadAttempts reads the record of the mailbox's readings; only UIDs above the checkpoint
// of the current UIDVALIDITY count.
func (s *session) loadAttempts() (attempts, error) {
	st := s.st
	var a *helpdesk.ParseAttempts
	if err := s.p.db.View(context.Background(), func(tx *store.Tx) (err error) {
		a, err = tx.ParseAttempts(st.Name)
		return err
	}); err != nil {
		return attempts{}, fmt.Errorf("read the emails being read in %s: %w", st.Name, err)
	}
	out := attempts{unread: map[imap.UID]string{}, alone: func(imap.UID) bool { return false }}
	if a.UIDValidity != st.UIDValidity || a.Empty() {
		return out, nil
	}
	if uid, ok := s.takeMark(); ok && uid > st.LastUID && a.UIDValidity == st.UIDValidity {
		// The process died in the parse of this email, read alone.
		deaths := 1
		if a.Alone == uid {
			deaths = a.AloneDeaths + 1
		}
		a.Alone, a.AloneDeaths = uid, deaths
		if err := s.updateAttempts(func(r *helpdesk.ParseAttempts) { r.Alone, r.AloneDeaths = uid, deaths }); err != nil {
			return attempts{}, fmt.Errorf("record a stop while reading uid %d: %w", uid, err)
		}
	}
	for _, sp := range a.Suspects {
		if sp.UID > st.LastUID {
			out.unread[imap.UID(sp.UID)] = sp.Note
		}
	}
	if a.Alone > st.LastUID && a.AloneDeaths >= 2 {
		out.unread[imap.UID(a.Alone)] = "the gateway stopped while reading it three times: in a batch, then twice on its own"
	}
	batches := slices.Clone(a.Batches)
	out.alone = func(uid imap.UID) bool {
		return slices.ContainsFunc(batches, func(r helpdesk.UIDRange) bool {
			return uint32(uid) > st.LastUID && r.Start <= uint32(uid) && uint32(uid) <= r.Stop
		})
	}
	if len(out.unread) > 0 || len(batches) > 0 {
		var unread []uint32
		for uid := range out.unread {
			unread = append(unread, uint32(uid))
		}
		slices.Sort(unread)
		s.p.log.Warn("the gateway stopped while reading emails: those it stopped on are held unread, the rest of their batches read one at a time",
			"mailbox", st.Name, "not_read_again", unread, "batches", a.Batches)
	}
	return out, nil
}

// updateAttempts changes the record of the mailbox's readings in a transaction of its own.
// It runs beside a commit (which replaces s.st): the mailbox and its UIDVALIDITY are the
// session's, which the checkpoint has too (checkValidity).
func (s *session) updateAttempts(change func(a *helpdesk.ParseAttempts)) error {
	name, validity := s.p.cfg.Mailbox, s.sel.UIDValidity
	return s.p.db.Update(context.Background(), func(tx *store.Tx) error {
		a, err := tx.ParseAttempts(name)
		if err != nil {
			return err
		}
		if a.UIDValidity != validity {
			*a = helpdesk.ParseAttempts{Mailbox: name, UIDValidity: validity}
		}
		change(a)
		return tx.PutParseAttempts(a)
	})
}

// beginReading records that the emails of a batch are about to be read (alone: one email,
// read on its own after a stop). It is on disk before the first of them is parsed.
func (s *session) beginReading(items []*fetched, alone bool) error {
	first, last := uint32(items[0].uid), uint32(items[len(items)-1].uid)
	if alone {
		// Its batch is on record already; deaths in its parse are counted by the mark.
		s.p.log.Debug("reading emails", "first", first, "last", last, "alone", alone)
		return nil
	}
	err := s.updateAttempts(func(a *helpdesk.ParseAttempts) {
		a.Batches = append(a.Batches, helpdesk.UIDRange{Start: first, Stop: last})
	})
	if err != nil {
		return fmt.Errorf("record the reading of uids %d-%d: %w", first, last, err)
	}
	s.p.log.Debug("reading emails", "first", first, "last", last, "alone", alone)
	return nil
}

// endReading removes the record of a batch whose reading ended without a commit (the
// session failed): in this process, nothing is left being read.
func (s *session) endReading(items []*fetched, alone bool) {
	first, last := uint32(items[0].uid), uint32(items[len(items)-1].uid)
	err := s.updateAttempts(func(a *helpdesk.ParseAttempts) {
		if alone && a.Alone == first {
			a.Alone, a.AloneDeaths = 0, 0
		}
		a.Batches = slices.DeleteFunc(a.Batches, func(r helpdesk.UIDRange) bool { return r.Start == first && r.Stop == last })
	})
	if err != nil {
		s.p.log.Warn("could not clear the record of emails being read; they are read one at a time at the next sync",
			"uids", fmt.Sprintf("%d-%d", first, last), "err", err)
	}
}

// clearReadings removes, in the commit's transaction, what the record holds up to the new
// checkpoint: those emails are committed.
func clearReadings(tx *store.Tx, st *helpdesk.MailboxState, upTo uint32) error {
	a, err := tx.ParseAttempts(st.Name)
	if err != nil || a.Empty() {
		return err
	}
	if a.UIDValidity != st.UIDValidity {
		return tx.PutParseAttempts(&helpdesk.ParseAttempts{Mailbox: st.Name})
	}
	a.Batches = slices.DeleteFunc(a.Batches, func(r helpdesk.UIDRange) bool { return r.Stop <= upTo })
	if a.Alone <= upTo {
		a.Alone, a.AloneDeaths = 0, 0
	}
	a.Suspects = slices.DeleteFunc(a.Suspects, func(sp helpdesk.ParseSuspect) bool { return sp.UID <= upTo })
	return tx.PutParseAttempts(a)
}

// read parses the raw bytes of one email of the batch: within the configured limits, stopped
// by the session's hard stop, recorded as a suspect when it runs long. An email not to be read
// again is not parsed.
func (s *session) read(it *fetched, raw []byte) *parse.Email {
	if it.unread != "" {
		return parse.Unread(raw, it.arrival, errors.New(it.unread+"; it is not read again automatically"))
	}
	uid := uint32(it.uid)
	if it.alone {
		s.markReading(uid)
		defer s.unmarkReading()
		s.p.log.Debug("parsing an email alone", "uid", uid)
	}
	marked := make(chan struct{})
	t := time.AfterFunc(suspectAfter, func() {
		defer close(marked)
		note := fmt.Sprintf("reading it took longer than %s and the gateway stopped before it was done", suspectAfter)
		if err := s.updateAttempts(func(a *helpdesk.ParseAttempts) {
			a.Suspects = append(a.Suspects, helpdesk.ParseSuspect{UID: uid, Note: note, At: time.Now()})
		}); err != nil {
			s.p.log.Warn("could not record an email whose reading runs long", "uid", uid, "err", err)
			return
		}
		s.p.log.Warn("reading an email runs long; recorded, so that it is not read again should the gateway stop now",
			"uid", uid, "size", len(raw), "after", suspectAfter)
	})
	e := parse.ParseContext(s.hard, raw, it.arrival, s.p.cfg.Parse)
	if !t.Stop() {
		<-marked
		if s.hard.Err() == nil && !errors.Is(e.Err, parse.ErrWorkBudget) {
			// It was slow, not stuck: done now, it needs no record.
			if err := s.updateAttempts(func(a *helpdesk.ParseAttempts) {
				a.Suspects = slices.DeleteFunc(a.Suspects, func(sp helpdesk.ParseSuspect) bool { return sp.UID == uid })
			}); err != nil {
				s.p.log.Warn("could not clear the record of a slow email", "uid", uid, "err", err)
			}
		}
	}
	if errors.Is(e.Err, parse.ErrWorkBudget) {
		s.p.log.Error("an email took the MIME parser too much work; holding it as unparseable", "uid", uid, "size", len(raw), "err", e.Err)
	}
	return e
}

// errStopped: the gateway stopped while emails of the batch were being read, past its stop
// grace; the batch is not committed.
var errStopped = errors.New("the gateway stopped while reading emails")

// parseLimit is how long the reading of a batch may go on after its FETCH: the deadline of its
// largest email, and the command timeout for the rest (health reports a batch stalled past it).
func (s *session) parseLimit(items []*fetched) time.Duration {
	var largest int64
	for _, it := range items {
		largest = max(largest, it.size)
	}
	d := s.p.cfg.Parse.Deadline
	if d == 0 {
		d = parse.ParseDeadline(int(largest))
	}
	return s.p.cfg.CommandTimeout + max(d, 0)
}

// ReadingMarker is the file that marks the email being parsed alone in a mailbox, after a
// stop in the middle of a batch: the database's path, ".reading." and a digest of the mailbox
// name (an import reads another mailbox in the same process). It exists only while such a
// parse runs, or after the process died in one.
func ReadingMarker(dbPath, mailbox string) string {
	sum := sha256.Sum256([]byte(mailbox))
	return dbPath + ".reading." + hex.EncodeToString(sum[:6])
}

func (s *session) readingMarker() string { return ReadingMarker(s.p.db.Path(), s.p.cfg.Mailbox) }

// readingMark is what the marker file holds.
type readingMark struct {
	UIDValidity uint32 `json:"uidvalidity"`
	UID         uint32 `json:"uid"`
}

// markReading records, without fsync, that the email uid is being parsed alone.
func (s *session) markReading(uid uint32) {
	b, _ := json.Marshal(readingMark{UIDValidity: s.sel.UIDValidity, UID: uid})
	if err := os.WriteFile(s.readingMarker(), b, 0o600); err != nil {
		s.p.log.Warn("could not mark the email being read; a stop in its parse will not be counted", "uid", uid, "err", err)
	}
}

// unmarkReading removes the mark: the parse returned.
func (s *session) unmarkReading() {
	if err := os.Remove(s.readingMarker()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.p.log.Warn("could not remove the mark of the email being read", "err", err)
	}
}

// takeMark reads and removes the mark a previous process left: the UID of the email it died
// parsing, for the mailbox's current UIDVALIDITY.
func (s *session) takeMark() (uint32, bool) {
	b, err := os.ReadFile(s.readingMarker())
	if err != nil {
		return 0, false
	}
	s.unmarkReading()
	var m readingMark
	if json.Unmarshal(b, &m) != nil || m.UID == 0 || m.UIDValidity != s.sel.UIDValidity {
		return 0, false // cut off while being written, or of an earlier mailbox
	}
	return m.UID, true
}
