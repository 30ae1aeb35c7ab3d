package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk/backups"
	"github.com/infobits/helpdesk/desk/search"
	"github.com/infobits/helpdesk/rules/retention"
	"github.com/infobits/helpdesk/store"
)

// Backups, restore and verify (R20). The snapshot, restore and verify are the store's, the
// retention rule is rules/retention's, pruning and serve's daily schedule are desk/backups';
// this file holds the commands.

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
	fmt.Fprintf(w, "wrote %s (%s; %s uncompressed; sha256 %s)\n", filepath.Join(dir, m.File), humanSize(m.Size), humanSize(m.DBSize), m.SHA256)
	fmt.Fprintf(w, "wrote %s (snapshot %s, schema %d, %s)\n",
		filepath.Join(dir, strings.TrimSuffix(m.File, helpdesk.ExtBackup)+helpdesk.ExtManifest), m.Time, m.Schema, m.Counts.Counts())
}

func printPrunePlan(w io.Writer, plan []retention.Decision) {
	for _, d := range plan {
		fmt.Fprintln(w, d.String())
	}
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
	// The search index is derived from the database it was built with: it is rebuilt from the
	// restored one at the next start.
	if idx := search.Path(cfg.DB); fileExists(idx) {
		if err := os.RemoveAll(idx); err != nil {
			return fmt.Errorf("remove the search index of the previous database (%s): %w; remove it by hand, it is rebuilt at the next start", idx, err)
		}
		fmt.Fprintf(e.stdout, "removed the search index of the previous database; it is rebuilt from the restored one at the next start\n")
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
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
			path, humanSize(m.DBSize), m.Schema, m.Time, m.Version, counts)
		return nil
	}
	counts, err := store.Verify(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok: passes bbolt's check and every record decodes: %s\n", path, counts)
	return nil
}
