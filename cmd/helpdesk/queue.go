package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/store"
)

// checkQueue queues the escalation notices and the daily digest that are due at the
// gateway's clock, in one transaction each, and returns when the next is due (zero: nothing
// is coming) and the moment it checked at.
func (g *gateway) checkQueue(ctx context.Context) (next, now time.Time) {
	now = g.now()
	var done []desk.Escalated
	err := g.db.Update(ctx, func(tx *store.Tx) (err error) {
		done, next, err = g.desk.Escalate(tx, now)
		return err
	})
	if err != nil && ctx.Err() == nil {
		g.log.Error("the due queue could not be checked for escalations; will try again", "err", err)
		return now.Add(time.Minute), now
	}
	for _, e := range done {
		g.log.Info("escalation queued", slog.String("stage", e.Stage.String()), slog.Uint64("ticket", e.TicketID),
			slog.Time("due", e.Due))
	}
	var sent bool
	var nextDigest time.Time
	err = g.db.Update(ctx, func(tx *store.Tx) (err error) {
		sent, nextDigest, err = g.desk.SendDigest(tx, g.digest, now, false)
		return err
	})
	if err != nil && ctx.Err() == nil {
		g.log.Error("the daily digest could not be queued; will try again", "err", err)
		return now.Add(time.Minute), now
	}
	if sent {
		g.log.Info("daily digest queued")
	}
	if !nextDigest.IsZero() && (next.IsZero() || nextDigest.Before(next)) {
		next = nextDigest
	}
	g.log.Debug("due queue checked", slog.Time("at", now), slog.Time("next", next))
	return next, now
}

// runQueueChecks checks the due queue while ctx lasts (R6–R9): at start (so a gateway that
// was down sends what fell due meanwhile, once), after every commit that changed a ticket,
// when the next notice falls due, and at least once a minute by the gateway's clock. It reads
// the clock once a second and writes only when something is due.
func (g *gateway) runQueueChecks(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	changed := g.db.SearchWake()
	check := func() (next, recheck time.Time) {
		next, at := g.checkQueue(ctx)
		return next, at.Add(time.Minute) // from the moment checked, not a later reading
	}
	next, recheck := check()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			next, recheck = check()
			continue
		case <-tick.C:
		}
		if now := g.now(); (!next.IsZero() && !now.Before(next)) || !now.Before(recheck) {
			next, recheck = check()
		}
	}
}
