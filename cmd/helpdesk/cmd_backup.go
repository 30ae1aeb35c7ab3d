package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk/backups"
	"github.com/infobits/helpdesk/rules/retention"
	"github.com/infobits/helpdesk/store"
)

// Backups, restore and verify (SPEC R20). The files and the retention rule live in store and
// rules/retention; this file holds the commands and serve's daily schedule.

const (
	backupArgs      = "[-dir DIR]"
	backupPruneArgs = "[-dir DIR] [-at DATE] [-dry-run]"
	restoreArgs     = "FILE"
	verifyArgs      = "FILE"
)

// backupVersion is the program version written into manifests: the main module's version
// from the build info, "devel" for a build from a source tree.
func backupVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// backupDir is -dir, or backup_dir from the configuration.
func backupDir(e *env, args []string, flagDir string) (string, error) {
	if flagDir != "" {
		return e.path(flagDir), nil
	}
	cfg, err := e.config(args)
	if err != nil {
		return "", err
	}
	if cfg.BackupDir == "" {
		return "", fmt.Errorf("%w: give -dir DIR, or set backup_dir (HELPDESK_BACKUP_DIR)", errUsage)
	}
	return cfg.BackupDir, nil
}

// runBackup writes a backup and prunes the folder. While a gateway runs it runs inside it
// (db: true), so the snapshot is taken through the gateway's open database.
func runBackup(e *env, args []string) error {
	fs, _ := newFlags(e, "backup", backupArgs)
	dirFlag := fs.String("dir", "", "backup `folder` (default backup_dir); it must exist")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	dir, err := backupDir(e, args, *dirFlag)
	if err != nil {
		return err
	}
	now := e.now()
	m, err := e.db.Backup(e.ctx, dir, now, backupVersion())
	if err != nil {
		return err
	}
	printBackupManifest(e.stdout, dir, m)
	plan, err := backups.Prune(dir, now, false)
	printPrunePlan(e.stdout, plan)
	if err != nil {
		return fmt.Errorf("the backup was written, but pruning failed: %w", err)
	}
	return nil
}

func printBackupManifest(w io.Writer, dir string, m *store.Manifest) {
	fmt.Fprintf(w, "wrote %s (%s; %s uncompressed; sha256 %s)\n", filepath.Join(dir, m.File), backupSize(m.Size), backupSize(m.DBSize), m.SHA256)
	fmt.Fprintf(w, "wrote %s (snapshot %s, schema %d, %s)\n",
		filepath.Join(dir, strings.TrimSuffix(m.File, helpdesk.ExtBackup)+helpdesk.ExtManifest), m.Time, m.Schema, m.Counts.Counts())
}

func printPrunePlan(w io.Writer, plan []retention.Decision) {
	for _, d := range plan {
		fmt.Fprintln(w, d.String())
	}
}

func backupSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// runBackupPrune applies the retention rule to a backup folder. It does not touch the
// database, so it runs in the calling process.
func runBackupPrune(e *env, args []string) error {
	fs, _ := newFlags(e, "backup prune", backupPruneArgs)
	dirFlag := fs.String("dir", "", "backup `folder` (default backup_dir)")
	at := fs.String("at", "", "apply the rule as of this `DATE` (YYYY-MM-DD, default today in Amsterdam)")
	dry := fs.Bool("dry-run", false, "print what would be kept and deleted, delete nothing")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	dir, err := backupDir(e, args, *dirFlag)
	if err != nil {
		return err
	}
	asOf := e.now()
	if *at != "" {
		d, err := time.ParseInLocation(time.DateOnly, *at, helpdesk.Amsterdam())
		if err != nil {
			return fmt.Errorf("%w: -at %q: want a date YYYY-MM-DD", errUsage, *at)
		}
		asOf = d.Add(12 * time.Hour)
	}
	plan, err := backups.Prune(dir, asOf, *dry)
	if *dry {
		for _, d := range plan {
			if d.Action == retention.Delete {
				d.Action = "would delete"
			}
			fmt.Fprintln(e.stdout, d.String())
		}
	} else {
		printPrunePlan(e.stdout, plan)
	}
	if err == nil && len(plan) == 0 {
		fmt.Fprintf(e.stdout, "no backups in %s\n", dir)
	}
	return err
}

// runRestore replaces the database with a backup. It must hold the database itself, so it is
// not a db command: it refuses while a gateway runs.
func runRestore(e *env, args []string) error {
	fs, _ := newFlags(e, "restore", restoreArgs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: give one backup FILE (helpdesk-YYYYMMDD-HHMMSS.db.gz)", errUsage)
	}
	cfg, err := e.config(args)
	if err != nil {
		return err
	}
	if err := cfg.require("db"); err != nil {
		return err
	}
	sock := socketPath(cfg.DB)
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("a gateway is running on %s (it answers on %s): stop the gateway first", cfg.DB, sock)
	}
	res, err := store.Restore(pos[0], cfg.DB, e.now(), time.Second)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%s is held by another process (a gateway starting or stopping?): stop the gateway first", cfg.DB)
	}
	if err != nil {
		return err
	}
	m := res.Manifest
	fmt.Fprintf(e.stdout, "checked %s against its manifest (sha256 %s) and verified the copy: %s\n", pos[0], m.SHA256, res.Counts)
	fmt.Fprintf(e.stdout, "restored the backup of %s (written by %s) to %s\n", m.Time, m.Version, cfg.DB)
	if res.Previous != "" {
		fmt.Fprintf(e.stdout, "the previous database is kept as %s\n", res.Previous)
	}
	return nil
}

// runVerify checks a backup or a database file and prints its counts.
func runVerify(e *env, args []string) error {
	fs, _ := newFlags(e, "verify", verifyArgs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: give one FILE: a backup (.db.gz) or a database", errUsage)
	}
	path := pos[0]
	if strings.HasSuffix(path, ".gz") {
		m, counts, err := store.VerifyBackup(path, "")
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: ok: the checksum matches its manifest; the database (%s, schema %d, snapshot %s, written by %s) passes bbolt's check and every record decodes: %s\n",
			path, backupSize(m.DBSize), m.Schema, m.Time, m.Version, counts)
		return nil
	}
	counts, err := store.Verify(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok: passes bbolt's check and every record decodes: %s\n", path, counts)
	return nil
}

// --- serve's daily backup ---

// parseBackupTime reads HH:MM (24-hour).
func parseBackupTime(s string) (hour, minute int, err error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, 0, fmt.Errorf("backup_time = %q: want HH:MM, e.g. 02:30", s)
	}
	return t.Hour(), t.Minute(), nil
}

// nextBackupTime is the first moment after now at which the Amsterdam clock shows hour:minute.
// On the day clocks go forward, a time in the skipped hour (02:00–02:59) runs at 03:00, the end
// of the gap; on the day they go back, a time in the repeated hour runs at its first
// occurrence, once. So there is exactly one run each calendar day.
func nextBackupTime(now time.Time, hour, minute int) time.Time {
	loc := helpdesk.Amsterdam()
	y, m, d := now.In(loc).Date()
	for i := 0; ; i++ {
		if t := backupWallTime(y, m, d+i, hour, minute, loc); t.After(now) {
			return t
		}
	}
}

// backupWallTime is the moment the clock in loc shows y-m-d hour:minute: the end of the gap when
// that wall time is skipped, the first of the two when it occurs twice.
func backupWallTime(y int, m time.Month, d, hour, minute int, loc *time.Location) time.Time {
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

// backupSchedule is serve's daily backup: at backup_time (Amsterdam) into backup_dir, pruned
// after each backup. A backup time missed while the gateway was down is not made up, except
// that a backup is taken at start when none was made in the last 24 hours. Failures are
// logged; they never stop the gateway.
type backupSchedule struct {
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

// backupMaxSleep bounds one wait, so that a clock changed under the gateway (or a suspended
// machine) delays the backup by at most this.
const backupMaxSleep = 15 * time.Minute

// newBackupSchedule checks backup_time and returns nil when no backup_dir is configured.
func newBackupSchedule(cfg *Config, db *store.DB, log *slog.Logger, now func() time.Time) (*backupSchedule, error) {
	hour, minute, err := parseBackupTime(cfg.BackupTime)
	if err != nil {
		return nil, err
	}
	if cfg.BackupDir == "" {
		return nil, nil
	}
	s := &backupSchedule{dir: cfg.BackupDir, hour: hour, minute: minute, log: log.With("component", "backup"), now: now}
	s.sleep = func(ctx context.Context, d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	s.latest = func() (time.Time, bool, error) { return backups.Latest(s.dir) }
	s.take = func(ctx context.Context, why string) { s.backup(ctx, db, why) }
	return s, nil
}

// start runs the schedule in a goroutine until ctx is done; stop waits for it (and for a
// backup in progress, which ctx aborts). A nil schedule does nothing.
func (s *backupSchedule) start(ctx context.Context) (stop func()) {
	if s == nil {
		return func() {}
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.run(ctx) })
	return wg.Wait
}

func (s *backupSchedule) run(ctx context.Context) {
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
	for ctx.Err() == nil {
		next := nextBackupTime(s.now(), s.hour, s.minute)
		s.log.Debug("next backup", "at", next.Format(time.RFC3339))
		for {
			d := next.Sub(s.now())
			if d <= 0 {
				break
			}
			if !s.sleep(ctx, min(d, backupMaxSleep)) {
				return
			}
		}
		s.take(ctx, fmt.Sprintf("daily at %02d:%02d", s.hour, s.minute))
	}
}

// backup takes one backup through the gateway's database, prunes, and logs the outcome.
func (s *backupSchedule) backup(ctx context.Context, db *store.DB, why string) {
	start := time.Now()
	now := s.now()
	m, err := db.Backup(ctx, s.dir, now, backupVersion())
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
	plan, err := backups.Prune(s.dir, now, false)
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
