package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/store"
)

// checkQueue queues the escalation notices and the daily digest that are due at now, in one
// transaction each, and returns when the next is due (zero: nothing is coming).
func (g *gateway) checkQueue(ctx context.Context, now time.Time) (next time.Time) {
	var done []desk.Escalated
	err := g.db.Update(ctx, func(tx *store.Tx) (err error) {
		done, next, err = g.desk.Escalate(tx, now)
		return err
	})
	if err != nil && ctx.Err() == nil {
		g.log.Error("the due queue could not be checked for escalations; will try again", "err", err)
		return now.Add(time.Minute)
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
		return now.Add(time.Minute)
	}
	if sent {
		g.log.Info("daily digest queued")
	}
	if !nextDigest.IsZero() && (next.IsZero() || nextDigest.Before(next)) {
		next = nextDigest
	}
	g.log.Debug("due queue checked", slog.Time("at", now), slog.Time("next", next))
	return next
}

// runQueueChecks checks the due queue while ctx lasts (R6–R9): at start (so a gateway that
// was down sends what fell due meanwhile, once), after every commit that changed a ticket,
// when the next notice falls due, and at least once a minute by the gateway's clock.
func (g *gateway) runQueueChecks(ctx context.Context) {
	g.dueLoop(ctx, "the check of the due queue", g.db.SearchWake(), func(now time.Time) time.Time { return g.checkQueue(ctx, now) })
}
