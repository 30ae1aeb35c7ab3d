// Package backups keeps the backup folder: the daily backup schedule of serve, pruning by the
// retention rule (R20, package rules/retention) and finding the newest backup. The store takes
// and verifies the snapshots; this package decides when, and which are kept.
package backups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/retention"
	"github.com/infobits/helpdesk/store"
)

// Prune applies the retention rule (package retention) to the backup folder dir as of
// the date of asOf and, unless dryRun, deletes what it does not keep: a backup's .json goes
// with its .db.gz. Only plain files named exactly as the gateway names them are looked at;
// everything else in the folder is never touched. It returns every decision, oldest first.
func Prune(dir string, asOf time.Time, dryRun bool) ([]retention.Decision, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("backup folder: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	plan := retention.Plan(names, asOf)
	if dryRun {
		return plan, nil
	}
	var errs []error
	removed := false
	for _, d := range plan {
		if d.Action != retention.Delete {
			continue
		}
		// The .db.gz first: a manifest without its .db.gz is recognisably no backup.
		files := d.Files
		for i, f := range files {
			if strings.HasSuffix(f, helpdesk.ExtBackup) {
				files = append([]string{f}, append(files[:i:i], files[i+1:]...)...)
				break
			}
		}
		for _, f := range files {
			if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			} else {
				removed = true
			}
		}
	}
	if removed {
		if err := store.SyncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return plan, errors.Join(errs...)
}

// Latest returns the time of the newest complete backup in dir (from its name), and
// false when there is none.
func Latest(dir string) (time.Time, bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("backup folder: %w", err)
	}
	have := map[string]int{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if base, _, kind, ok := helpdesk.ParseBackupName(e.Name()); ok && (kind == helpdesk.FileBackup || kind == helpdesk.FileManifest) {
			have[base]++
		}
	}
	var latest time.Time
	found := false
	for base, n := range have {
		if n != 2 {
			continue
		}
		_, at, _, _ := helpdesk.ParseBackupName(base + helpdesk.ExtBackup)
		if !found || at.After(latest) {
			latest, found = at, true
		}
	}
	return latest, found, nil
}
