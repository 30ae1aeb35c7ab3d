package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk/view"
	"github.com/infobits/helpdesk/store"
)

func runOutboxList(e *env, args []string) error {
	fs, _ := newFlags(e, "outbox list", "[-json] [-status queued|sent|failed]")
	asJSON := fs.Bool("json", false, "print JSON")
	status := fs.String("status", "", "only notifications in this `state`: queued, sent or failed")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	switch *status {
	case "", helpdesk.NotifyQueued, helpdesk.NotifySent, helpdesk.NotifyFailed:
	default:
		return fmt.Errorf("%w: -status %q: want queued, sent or failed", errUsage, *status)
	}
	var out []view.Notification
	var next []time.Time
	if err := e.db.View(e.ctx, func(tx *store.Tx) error {
		ns, err := tx.Outbox()
		for _, n := range ns {
			if *status == "" || n.Status == *status {
				out = append(out, view.NotificationOf(n))
				next = append(next, n.NextAttempt)
			}
		}
		return err
	}); err != nil {
		return err
	}
	// While the server cannot be reached, the head of the queue waits for the notifier's next
	// try (its backoff): the running gateway knows when; with no gateway running, it is tried
	// when one starts.
	var redial time.Time
	if e.smtpNextTry != nil {
		redial = e.smtpNextTry()
	}
	redialing := make([]bool, len(out))
	for i, n := range out {
		if n.Status == helpdesk.NotifyQueued && n.Attempts > 0 && next[i].IsZero() && !redial.IsZero() {
			out[i].NextAttempt, next[i], redialing[i] = view.Time(redial), redial, true
		}
	}
	if *asJSON {
		if out == nil {
			out = []view.Notification{}
		}
		return writeJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tKIND\tTICKET\tTO\tATTEMPTS\tSENT / NEXT TRY\tERROR")
	for i, n := range out {
		when := shortTime(n.Sent)
		switch {
		case redialing[i]:
			// The server could not be reached: first in line, tried again at the notifier's
			// next try (sooner when something new is queued).
			when = "retrying, next " + shortTime(view.Time(next[i]))
		case n.Status == helpdesk.NotifyQueued && !next[i].IsZero():
			when = "next " + shortTime(view.Time(next[i]))
		case n.Status == helpdesk.NotifyQueued && n.Attempts > 0 && e.remote:
			when = "retrying" // the notifier is trying it now
		case n.Status == helpdesk.NotifyQueued && n.Attempts > 0:
			when = "retrying at the next start" // no gateway runs
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", n.ID, n.Status, n.Kind, dash(ticketNo(n.Ticket)), terminalSafe(n.To), n.Attempts, when, terminalSafe(oneLine(n.Error)))
	}
	return tw.Flush()
}

func ticketNo(id uint64) string {
	if id == 0 {
		return ""
	}
	return "#" + strconv.FormatUint(id, 10)
}

// runOutboxRetry puts failed notifications back in the queue, to be sent at once: after the
// operator fixed what made them fail (a typo in an address, a relay that refused, a mailbox
// that did not exist). Retrying a notification to an address that bounced for good also ends
// the suspension of automatic mail to it (bounce_suppress): the retry says the address works
// again, and the customer's next acknowledgement should reach it too.
func runOutboxRetry(e *env, args []string) error {
	fs, _ := newFlags(e, "outbox retry", "ID... | -failed")
	allFailed := fs.Bool("failed", false, "retry every failed notification")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if (len(pos) == 0) == !*allFailed {
		return fmt.Errorf("%w: give notification numbers or -failed", errUsage)
	}
	var ids []uint64
	for _, p := range pos {
		id, err := strconv.ParseUint(p, 10, 64)
		if err != nil || id == 0 {
			return fmt.Errorf("%w: %q is not a notification number", errUsage, p)
		}
		ids = append(ids, id)
	}
	n := 0
	var lifted []string
	err = e.db.Update(e.ctx, func(tx *store.Tx) error {
		if *allFailed {
			ns, err := tx.Outbox()
			if err != nil {
				return err
			}
			for _, x := range ns {
				if x.Status == helpdesk.NotifyFailed {
					ids = append(ids, x.ID)
				}
			}
		}
		for _, id := range ids {
			x, err := tx.Notification(id)
			if errors.Is(err, helpdesk.ErrNotFound) {
				return fmt.Errorf("no notification %d", id)
			}
			if err != nil {
				return err
			}
			if x.Status == helpdesk.NotifySent {
				return fmt.Errorf("notification %d was sent already (%s)", id, shortTime(view.Time(x.Sent)))
			}
			x.Status, x.NextAttempt = helpdesk.NotifyQueued, time.Time{}
			if err := tx.PutNotification(x); err != nil {
				return err
			}
			n++
			until, err := tx.BouncedUntil(x.To)
			if err != nil {
				return err
			}
			if until.After(e.now()) && !slices.Contains(lifted, x.To) {
				if err := tx.ClearBounced(x.To); err != nil {
					return err
				}
				lifted = append(lifted, x.To)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d notification(s) queued again\n", n)
	for _, a := range lifted {
		fmt.Fprintf(e.stdout, "automatic mail to %s is no longer suspended (it had bounced; bounce_suppress)\n", terminalSafe(a))
	}
	return nil
}
