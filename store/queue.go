package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/infobits/helpdesk"
)

// --- escalations: the warnings and breach notices sent (R6–R9, R12) ---

// escalationKey is ticket(8) due(8) stage(1): one record per ticket, deadline and stage, so
// a notice goes at most once per ticket and deadline, and a new deadline escalates anew.
func escalationKey(ticketID uint64, due time.Time, stage byte) []byte {
	return append(key2(ticketID, uint64(due.UnixNano())), stage)
}

// EscalationSent reports whether the escalation stage (1 warning, 2 breach) of a ticket's
// deadline was queued, and when.
func (tx *Tx) EscalationSent(ticketID uint64, due time.Time, stage byte) (time.Time, bool) {
	v := tx.tx.Bucket(bEscalations).Get(escalationKey(ticketID, due, stage))
	if len(v) != 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), true
}

// MarkEscalation records that the stage's notice of a ticket's deadline was queued at at; the
// caller does it in the transaction that queues the notice.
func (tx *Tx) MarkEscalation(ticketID uint64, due time.Time, stage byte, at time.Time) error {
	return tx.tx.Bucket(bEscalations).Put(escalationKey(ticketID, due, stage), u64(uint64(at.UnixNano())))
}

// DueUntil returns the tickets waiting for their first response whose deadline is at or
// before until, the earliest first.
func (tx *Tx) DueUntil(until time.Time) ([]*helpdesk.Ticket, error) {
	var out []*helpdesk.Ticket
	c := tx.tx.Bucket(bDue).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if binary.BigEndian.Uint64(k[:8]) > uint64(until.UnixNano()) {
			break
		}
		t, err := tx.Ticket(binary.BigEndian.Uint64(k[8:]))
		if err != nil {
			return nil, fmt.Errorf("due queue: %w", err)
		}
		out = append(out, t)
	}
	return out, nil
}

// --- the daily digest ---

var keyDigest = []byte("digest_day")

// LastDigest is the day (Amsterdam) of the last daily digest queued; zero when none was.
func (tx *Tx) LastDigest() helpdesk.Date {
	d, _ := helpdesk.ParseDate(string(tx.tx.Bucket(bMeta).Get(keyDigest)))
	return d
}

// SetLastDigest records the day a daily digest was queued (or found empty), so that a
// restart on the same day sends no second one.
func (tx *Tx) SetLastDigest(day helpdesk.Date) error {
	return tx.tx.Bucket(bMeta).Put(keyDigest, []byte(day.String()))
}

// --- search_pending: tickets whose search document is out of date ---

// markSearch notes, in the transaction that changes a ticket or its thread, that its search
// document must be written again. The value is a sequence number: the indexer removes the
// mark only when it is still the one it indexed (a change made meanwhile keeps its own).
func (tx *Tx) markSearch(ticketID uint64) error {
	b := tx.tx.Bucket(bSearchPending)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("search mark: %w", err)
	}
	tx.searchMarked = true
	return b.Put(u64(ticketID), u64(seq))
}

// SearchMark is a ticket whose search document is out of date, with the mark's sequence.
type SearchMark struct {
	TicketID uint64
	Seq      uint64
}

// SearchPending returns up to n tickets whose search document is out of date, by ticket id.
func (tx *Tx) SearchPending(n int) []SearchMark {
	var out []SearchMark
	c := tx.tx.Bucket(bSearchPending).Cursor()
	for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
		if len(k) == 8 && len(v) == 8 {
			out = append(out, SearchMark{binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(v)})
		}
	}
	return out
}

// SearchPendingCount is how many tickets wait for their search document.
func (tx *Tx) SearchPendingCount() int { return tx.tx.Bucket(bSearchPending).Stats().KeyN }

// ClearSearch removes the marks that are unchanged since they were read: their tickets are
// indexed as they are now.
func (tx *Tx) ClearSearch(marks []SearchMark) error {
	b := tx.tx.Bucket(bSearchPending)
	for _, m := range marks {
		k := u64(m.TicketID)
		if v := b.Get(k); len(v) == 8 && binary.BigEndian.Uint64(v) == m.Seq {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// MarkAllSearch marks every ticket for indexing: what a rebuild of the search index does
// first, so that a rebuild cut short is finished at the next start.
func (tx *Tx) MarkAllSearch() (int, error) {
	n := 0
	err := tx.tx.Bucket(bTickets).ForEach(func(k, _ []byte) error {
		n++
		return tx.markSearch(binary.BigEndian.Uint64(k))
	})
	return n, err
}

// SearchWake returns a channel that receives a value after the next commit that changed a
// ticket or its thread (the search index, the escalation check). Buffered, as OutboxWake.
func (d *DB) SearchWake() <-chan struct{} { return d.changed.add() }

// checkEscalation and checkSearchPending are verify's decoders of the two buckets.
func checkEscalation(tx *bolt.Tx, k, v []byte) error {
	if len(k) != 17 || len(v) != 8 {
		return fmt.Errorf("key of %d bytes and value of %d, want ticket(8) due(8) stage(1) -> time(8)", len(k), len(v))
	}
	return exists(tx, bTickets, k[:8])
}

func checkSearchPending(tx *bolt.Tx, k, v []byte) error {
	if len(k) != 8 || len(v) != 8 {
		return fmt.Errorf("key of %d bytes and value of %d, want ticket(8) -> sequence(8)", len(k), len(v))
	}
	return exists(tx, bTickets, k)
}
