package backups

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/retention"
	"github.com/infobits/helpdesk/store"
)

// ParseTime reads backup_time, HH:MM (24-hour).
func ParseTime(s string) (hour, minute int, err error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, 0, fmt.Errorf("backup_time = %q: want HH:MM, e.g. 02:30", s)
	}
	return t.Hour(), t.Minute(), nil
}

// Next is the first moment after now at which the Amsterdam clock shows hour:minute.
// On the day clocks go forward, a time in the skipped hour (02:00–02:59) runs at 03:00, the end
// of the gap; on the day they go back, a time in the repeated hour runs at its first
// occurrence, once. So there is exactly one run each calendar day.
func Next(now time.Time, hour, minute int) time.Time {
	loc := helpdesk.Amsterdam()
	y, m, d := now.In(loc).Date()
	for i := 0; ; i++ {
		if t := wallTime(y, m, d+i, hour, minute, loc); t.After(now) {
			return t
		}
	}
}

// wallTime is the moment the clock in loc shows y-m-d hour:minute: the end of the gap when
// that wall time is skipped, the first of the two when it occurs twice.
func wallTime(y int, m time.Month, d, hour, minute int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, hour, minute, 0, 0, loc)
	want := time.Date(y, m, d, hour, minute, 0, 0, time.UTC) // the wall time, as a comparable value
	wall := func(t time.Time) time.Time {
		l := t.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
	}
	start, end := t.ZoneBounds()
	if !wall(t).Equal(want) {
		// In a gap: t is past it (its zone started inside the gap) or before it.
		if wall(t).After(want) {
			return start
		}
		return end
	}
	// A repeated hour: the same wall time in the zone before this one, when there is one
	// with a larger offset, is the earlier occurrence.
	if !start.IsZero() {
		_, prevOff := start.Add(-time.Nanosecond).Zone()
		_, curOff := t.Zone()
		if prevOff > curOff {
			earlier := t.Add(-time.Duration(prevOff-curOff) * time.Second)
			if earlier.Before(start) && wall(earlier).Equal(want) {
				return earlier
			}
		}
	}
	return t
}

// Schedule is serve's daily backup (R20): at the configured time (Amsterdam) into the backup
// folder, pruned after each backup. A backup time missed while the gateway was down is not made up, except
// that a backup is taken at start when none was made in the last 24 hours. Failures are
// logged; they never stop the gateway.
type Schedule struct {
	dir          string
	hour, minute int
	log          *slog.Logger
	now          func() time.Time
	// sleep waits d or until ctx is done (false); take makes a backup and prunes; latest
	// returns the newest backup's time. Tests replace them to run days in microseconds.
	sleep  func(ctx context.Context, d time.Duration) bool
	take   func(ctx context.Context, why string)
	latest func() (time.Time, bool, error)
}

// maxSleep bounds one wait, so that a clock changed under the gateway (or a suspended
// machine) delays the backup by at most this.
const maxSleep = 15 * time.Minute

// NewSchedule checks the time of day (backup_time, HH:MM) and returns the schedule of
// backups of db into dir, or nil when dir is "" (no backup folder configured). version is the
// program version written into manifests; log gets a line per backup and prune.
func NewSchedule(dir, at string, db *store.DB, version string, log *slog.Logger, now func() time.Time) (*Schedule, error) {
	hour, minute, err := ParseTime(at)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, nil
	}
	s := &Schedule{dir: dir, hour: hour, minute: minute, log: log.With("component", "backup"), now: now}
	s.sleep = helpdesk.Sleep
	s.latest = func() (time.Time, bool, error) { return Latest(s.dir) }
	s.take = func(ctx context.Context, why string) { s.backup(ctx, db, version, why) }
	return s, nil
}

// Start runs the schedule in a goroutine until ctx is done; stop waits for it (and for a
// backup in progress, which ctx aborts). A nil schedule does nothing.
func (s *Schedule) Start(ctx context.Context) (stop func()) {
	if s == nil {
		return func() {}
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.run(ctx) })
	return wg.Wait
}

func (s *Schedule) run(ctx context.Context) {
	s.survive(func() { s.atStart(ctx) })
	for ctx.Err() == nil {
		next := Next(s.now(), s.hour, s.minute)
		s.log.Debug("next backup", "at", next.Format(time.RFC3339))
		for {
			d := next.Sub(s.now())
			if d <= 0 {
				break
			}
			if !s.sleep(ctx, min(d, maxSleep)) {
				return
			}
		}
		s.survive(func() { s.take(ctx, fmt.Sprintf("daily at %02d:%02d", s.hour, s.minute)) })
	}
}

// atStart takes a backup at start when none was made in the last 24 hours.
func (s *Schedule) atStart(ctx context.Context) {
	last, ok, err := s.latest()
	switch {
	case err != nil:
		s.log.Error("backup folder unreadable", "dir", s.dir, "err", err)
		s.take(ctx, "at start: the backup folder could not be read")
	case !ok:
		s.take(ctx, "at start: no backup in the folder yet")
	case s.now().Sub(last) >= 24*time.Hour:
		s.take(ctx, "at start: no backup in the last 24 hours")
	default:
		s.log.Info("no backup at start: one was made in the last 24 hours", "dir", s.dir, "latest", last.Format(time.RFC3339))
	}
}

// survive runs f, a backup and its prune, and reports a panic in it (a bug) as a failed
// backup: the schedule goes on, the next attempt is at the next backup time.
func (s *Schedule) survive(f func()) {
	if p := helpdesk.Survive(f); p != nil {
		s.log.Error("backup failed with a panic (a bug); the gateway goes on, the next attempt is at the next backup time", "dir", s.dir, "panic", p)
	}
}

// backup takes one backup through the gateway's database, prunes, and logs the outcome.
func (s *Schedule) backup(ctx context.Context, db *store.DB, version, why string) {
	start := time.Now()
	now := s.now()
	m, err := db.Backup(ctx, s.dir, now, version)
	if err != nil {
		if ctx.Err() != nil {
			s.log.Warn("backup aborted: the gateway is stopping", "dir", s.dir)
			return
		}
		s.log.Error("backup failed; the gateway goes on, the next attempt is at the next backup time", "dir", s.dir, "why", why, "err", err)
		return
	}
	s.log.Info("backup written", "file", filepath.Join(s.dir, m.File), "why", why, "size", m.Size, "db_size", m.DBSize,
		"sha256", m.SHA256, "customers", m.Counts.Customers, "tickets", m.Counts.Tickets, "messages", m.Counts.Messages,
		"duration", time.Since(start).Round(time.Millisecond).String())
	plan, err := Prune(s.dir, now, false)
	var deleted, kept []string
	for _, d := range plan {
		switch d.Action {
		case retention.Delete:
			deleted = append(deleted, d.Name)
		case retention.Keep:
			kept = append(kept, d.Name)
		}
	}
	if err != nil {
		s.log.Error("backup prune failed", "dir", s.dir, "deleted", deleted, "err", err)
		return
	}
	s.log.Info("backups pruned", "dir", s.dir, "kept", len(kept), "deleted", deleted)
}
