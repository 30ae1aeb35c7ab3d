package helpdesk

import (
	"strings"
	"time"
)

// The names the gateway gives its backups: helpdesk-YYYYMMDD-HHMMSS.db.gz with its manifest
// helpdesk-YYYYMMDD-HHMMSS.json, the snapshot time in Europe/Amsterdam. The store writes them
// and the retention rule (R20) reads a backup's time from its name, so the format is shared
// vocabulary, here.
const (
	BackupPrefix = "helpdesk-"
	ExtBackup    = ".db.gz"   // the compressed database
	ExtManifest  = ".json"    // the manifest, written last: without it the .db.gz is no backup
	ExtPartial   = ".partial" // appended to either while it is being written
	stampLayout  = "20060102-150405"
)

// BackupStamp formats t as YYYYMMDD-HHMMSS in Europe/Amsterdam.
func BackupStamp(t time.Time) string { return t.In(Amsterdam()).Format(stampLayout) }

// BackupBase is the name of the backup taken at t without its extension:
// helpdesk-YYYYMMDD-HHMMSS.
func BackupBase(t time.Time) string { return BackupPrefix + BackupStamp(t) }

// BackupFile is what a file of the gateway's in a backup folder is.
type BackupFile int

// The kinds of files the gateway writes into a backup folder.
const (
	FileBackup   BackupFile = iota + 1 // helpdesk-….db.gz
	FileManifest                       // helpdesk-….json
	FilePartial                        // helpdesk-….db.gz.partial or helpdesk-….json.partial: an unfinished write
)

// ParseBackupName reports whether name is exactly the name of a file the gateway writes, and returns its
// base name (helpdesk-YYYYMMDD-HHMMSS), its kind and its time (Amsterdam wall clock). A name
// that differs in anything (case, digits, a date that does not exist, an extra suffix) is not
// the gateway's and is never touched.
func ParseBackupName(name string) (base string, at time.Time, kind BackupFile, ok bool) {
	rest := name
	partial := strings.HasSuffix(rest, ExtPartial)
	rest = strings.TrimSuffix(rest, ExtPartial)
	switch {
	case strings.HasSuffix(rest, ExtBackup):
		kind, rest = FileBackup, strings.TrimSuffix(rest, ExtBackup)
	case strings.HasSuffix(rest, ExtManifest):
		kind, rest = FileManifest, strings.TrimSuffix(rest, ExtManifest)
	default:
		return "", time.Time{}, 0, false
	}
	if partial {
		kind = FilePartial
	}
	stamp, found := strings.CutPrefix(rest, BackupPrefix)
	if !found || len(stamp) != len(stampLayout) {
		return "", time.Time{}, 0, false
	}
	for i, c := range stamp {
		if (i == 8) != (c == '-') || (i != 8 && (c < '0' || c > '9')) {
			return "", time.Time{}, 0, false
		}
	}
	// Parsed in UTC first: every wall time exists there, so a date such as 20261332 fails
	// the round trip instead of being normalised.
	u, err := time.Parse(stampLayout, stamp)
	if err != nil || u.Format(stampLayout) != stamp {
		return "", time.Time{}, 0, false
	}
	at = time.Date(u.Year(), u.Month(), u.Day(), u.Hour(), u.Minute(), u.Second(), 0, Amsterdam())
	return rest, at, kind, true
}
