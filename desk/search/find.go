package search

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk/view"
	"github.com/infobits/helpdesk/store"
)

// catchUpWait is how long a search waits for an update under way before it searches what
// is indexed so far: an update after a commit takes milliseconds, a rebuild minutes.
const catchUpWait = 3 * time.Second

// Found is a ticket a search found, as the ticket list shows it, with its score and the line
// that matched (`ticket search`, GET /api/tickets).
type Found struct {
	view.Ticket
	Score float64 `json:"score,omitempty"`
	Line  string  `json:"line,omitempty"`
}

// Find takes in what changed since the last update (so a search sees every commit before it),
// runs q and reads the tickets found from the store: best first, or — without words — in the
// order of the ticket list (the work first). It returns them with the number of matches.
// While a long update is under way (a rebuild, the first filling after an import) it does not
// wait for it: it searches what is indexed so far.
func (x *Index) Find(ctx context.Context, q Query) ([]Found, int, error) {
	wait := time.NewTimer(catchUpWait)
	defer wait.Stop()
	select {
	case x.catchUp <- struct{}{}:
		err := func() error {
			defer x.unlock() // also when the update panics (the caller may survive it)
			_, err := x.catchUpLocked(ctx)
			return err
		}()
		if err != nil {
			return nil, 0, err
		}
	case <-wait.C:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	hits, total, err := x.Search(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	var out []Found
	err = x.db.View(ctx, func(tx *store.Tx) error {
		cache := map[uint64]string{}
		var ts []*helpdesk.Ticket
		score := map[uint64]float64{}
		for _, h := range hits {
			t, err := tx.Ticket(h.TicketID)
			if errors.Is(err, helpdesk.ErrNotFound) {
				continue // gone since: the next update drops it
			}
			if err != nil {
				return err
			}
			ts = append(ts, t)
			score[t.ID] = h.Score
		}
		if q.Text == "" {
			view.SortWork(ts)
		}
		for _, t := range ts {
			vt, err := view.ListTicket(tx, t, cache)
			if err != nil {
				return err
			}
			f := Found{Ticket: vt}
			if q.Text != "" {
				f.Score = score[t.ID]
				msgs, err := tx.Messages(t.ID)
				if err != nil {
					return fmt.Errorf("messages of ticket %d: %w", t.ID, err)
				}
				f.Line = x.MatchingLine(q.Text, t, msgs)
			}
			out = append(out, f)
		}
		return nil
	})
	return out, total, err
}
