// Package retention is the backup retention rule of SPEC R20, as the vendor's page states it:
// "of every last weekday and of every first working day of the month a backup is kept; you then
// always have a backup of the last 7 weekdays and of every first working day of the month".
//
// It also owns the names the gateway gives its backups, because the rule reads a backup's time
// from its name: helpdesk-YYYYMMDD-HHMMSS.db.gz with its manifest helpdesk-YYYYMMDD-HHMMSS.json,
// the snapshot time in Europe/Amsterdam.
//
// It is pure: file names in, decisions out. The caller lists the folder and deletes.
package retention

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/infobits/helpdesk/ingest/calendar"
)

// File name parts.
const (
	Prefix      = "helpdesk-"
	ExtBackup   = ".db.gz"   // the compressed database
	ExtManifest = ".json"    // the manifest, written last: without it the .db.gz is no backup
	ExtPartial  = ".partial" // appended to either while it is being written
	stampLayout = "20060102-150405"
)

// Stamp formats t as YYYYMMDD-HHMMSS in Europe/Amsterdam.
func Stamp(t time.Time) string { return t.In(calendar.Amsterdam()).Format(stampLayout) }

// Base is the name of the backup taken at t without its extension: helpdesk-YYYYMMDD-HHMMSS.
func Base(t time.Time) string { return Prefix + Stamp(t) }

// Kind is what a file of the gateway's is.
type Kind int

// The kinds of files the gateway writes into a backup folder.
const (
	Backup   Kind = iota + 1 // helpdesk-….db.gz
	Manifest                 // helpdesk-….json
	Partial                  // helpdesk-….db.gz.partial or helpdesk-….json.partial: an unfinished write
)

// Parse reports whether name is exactly the name of a file the gateway writes, and returns its
// base name (helpdesk-YYYYMMDD-HHMMSS), its kind and its time (Amsterdam wall clock). A name
// that differs in anything (case, digits, a date that does not exist, an extra suffix) is not
// the gateway's and is never touched.
func Parse(name string) (base string, at time.Time, kind Kind, ok bool) {
	rest := name
	partial := strings.HasSuffix(rest, ExtPartial)
	rest = strings.TrimSuffix(rest, ExtPartial)
	switch {
	case strings.HasSuffix(rest, ExtBackup):
		kind, rest = Backup, strings.TrimSuffix(rest, ExtBackup)
	case strings.HasSuffix(rest, ExtManifest):
		kind, rest = Manifest, strings.TrimSuffix(rest, ExtManifest)
	default:
		return "", time.Time{}, 0, false
	}
	if partial {
		kind = Partial
	}
	stamp, found := strings.CutPrefix(rest, Prefix)
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
	at = time.Date(u.Year(), u.Month(), u.Day(), u.Hour(), u.Minute(), u.Second(), 0, calendar.Amsterdam())
	return rest, at, kind, true
}

// dayOf is the calendar day in a base name (the name's own digits: Amsterdam).
func dayOf(base string) calendar.Date {
	_, at, _, _ := Parse(base + ExtBackup)
	return calendar.Date{Year: at.Year(), Month: at.Month(), Day: at.Day()}
}

// civil turns a date into a time at noon UTC, for day arithmetic without daylight saving.
func civil(d calendar.Date) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC)
}

// before reports whether a is an earlier day than b.
func before(a, b calendar.Date) bool { return civil(a).Before(civil(b)) }

func dateOf(t time.Time) calendar.Date {
	return calendar.Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}
}

// Today is the date of t in Amsterdam: the DATE retention is applied as of.
func Today(t time.Time) calendar.Date { return dateOf(t.In(calendar.Amsterdam())) }

// WorkingDay reports whether d is Monday–Friday and not a Dutch public holiday.
func WorkingDay(d calendar.Date) bool {
	wd := civil(d).Weekday()
	return wd != time.Saturday && wd != time.Sunday && calendar.Holiday(d.Year, d.Month, d.Day) == ""
}

// FirstWorkingDay is the first working day of the month: Monday–Friday, Dutch public holidays
// skipped (1 January is always a holiday, so January's is the 2nd or later).
func FirstWorkingDay(year int, month time.Month) calendar.Date {
	d := calendar.Date{Year: year, Month: month, Day: 1}
	for !WorkingDay(d) {
		d = dateOf(civil(d).AddDate(0, 0, 1))
	}
	return d
}

// Action is what becomes of a file group.
type Action string

// Actions.
const (
	Keep   Action = "keep"
	Delete Action = "delete"
	// Leave: an incomplete backup newer than the newest complete one, which may still be
	// being written. Left alone.
	Leave Action = "leave"
)

// Decision is what becomes of one backup: its .db.gz and .json (and unfinished .partial
// files), which always go together.
type Decision struct {
	Base   string   // helpdesk-YYYYMMDD-HHMMSS
	Name   string   // the file named in messages: the .db.gz when there is one
	Files  []string // every file of the group present in the folder, to delete together
	Action Action
	Reason string
}

func (d Decision) String() string { return fmt.Sprintf("%s %s: %s", d.Action, d.Name, d.Reason) }

type group struct {
	base              string
	gz, json, partial bool
	files             []string
}

func (g *group) complete() bool { return g.gz && g.json }

// Plan applies the retention rule, as of the date asOf (its Amsterdam date, "DATE"), to the
// names of the plain files of a backup folder. Names that are not exactly the gateway's are
// ignored: they get no decision and must never be touched. A backup is complete when both its
// .db.gz and its .json are present. Among complete backups it keeps:
//
//   - the newest backup of each of the 7 days DATE-6 … DATE (one for each day of the week);
//   - for every month, the newest backup made on its first working day (Monday–Friday, Dutch
//     public holidays skipped); when none was made that day (the gateway was down, the backup
//     failed), the newest backup of the month's first later working day that has one, so that
//     every month keeps a backup from its start;
//   - always the newest backup of all;
//   - backups dated after DATE (pruning as of a past date deletes nothing that came later).
//
// Every other complete backup is deleted. Incomplete groups (a .db.gz without its manifest, a
// manifest without its .db.gz, unfinished .partial files) older than the newest complete backup
// are deleted too: they are the traces of a crash. Newer ones are left, as a backup may be in
// progress. Decisions come in name order, oldest first.
func Plan(names []string, asOf time.Time) []Decision {
	groups := map[string]*group{}
	for _, n := range names {
		base, _, kind, ok := Parse(n)
		if !ok {
			continue
		}
		g := groups[base]
		if g == nil {
			g = &group{base: base}
			groups[base] = g
		}
		switch kind {
		case Backup:
			g.gz = true
		case Manifest:
			g.json = true
		case Partial:
			g.partial = true
		}
		g.files = append(g.files, n)
	}
	bases := make([]string, 0, len(groups))
	for b := range groups {
		bases = append(bases, b)
	}
	slices.Sort(bases) // names sort as their times do

	today := Today(asOf)
	windowStart := dateOf(civil(today).AddDate(0, 0, -6))
	inWindow := func(d calendar.Date) bool { return !before(d, windowStart) && !before(today, d) }

	// The newest complete backup of each day, the newest of all, and each month's first
	// working day that has one.
	newestOfDay := map[calendar.Date]string{}
	monthDay := map[[2]int]calendar.Date{}
	newest := ""
	for _, b := range bases {
		g := groups[b]
		if !g.complete() {
			continue
		}
		d := dayOf(b)
		newestOfDay[d] = b // ascending: the last one wins
		newest = b
		month := [2]int{d.Year, int(d.Month)}
		if _, seen := monthDay[month]; !seen && WorkingDay(d) {
			monthDay[month] = d
		}
	}

	var out []Decision
	for _, b := range bases {
		g := groups[b]
		dec := Decision{Base: b, Name: g.files[0], Files: slices.Clone(g.files)}
		for _, f := range g.files {
			if strings.HasSuffix(f, ExtBackup) {
				dec.Name = f
			}
		}
		d := dayOf(b)
		if !g.complete() {
			what := "incomplete backup: no manifest " + b + ExtManifest
			switch {
			case g.json && !g.gz:
				what = "manifest without its backup " + b + ExtBackup
			case !g.gz && !g.json:
				what = "unfinished write"
			}
			if newest != "" && b < newest {
				dec.Action, dec.Reason = Delete, what+", older than the newest backup"
			} else {
				dec.Action, dec.Reason = Leave, what+"; a backup may be in progress"
			}
			out = append(out, dec)
			continue
		}
		var reasons []string
		if b == newest {
			reasons = append(reasons, "newest backup")
		}
		if before(today, d) {
			reasons = append(reasons, fmt.Sprintf("made after %s, the date pruned as of", today))
		}
		isNewestOfDay := newestOfDay[d] == b
		if isNewestOfDay && inWindow(d) {
			reasons = append(reasons, fmt.Sprintf("newest of %s %s", civil(d).Weekday(), d))
		}
		md, hasMonth := monthDay[[2]int{d.Year, int(d.Month)}]
		if isNewestOfDay && hasMonth && md == d {
			first := FirstWorkingDay(d.Year, d.Month)
			if first == d {
				reasons = append(reasons, fmt.Sprintf("first working day of %s %d", d.Month, d.Year))
			} else {
				reasons = append(reasons, fmt.Sprintf("first working day of %s %d with a backup (none was made on %s, the first working day)", d.Month, d.Year, first))
			}
		}
		switch {
		case len(reasons) > 0:
			dec.Action, dec.Reason = Keep, strings.Join(reasons, "; ")
		case !isNewestOfDay && (inWindow(d) || (hasMonth && md == d)):
			dec.Action, dec.Reason = Delete, fmt.Sprintf("older backup of %s (a newer one of that day is kept)", d)
		default:
			dec.Action, dec.Reason = Delete, fmt.Sprintf("older backup of %s", d)
		}
		out = append(out, dec)
	}
	return out
}
