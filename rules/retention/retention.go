// Package retention is the backup retention rule of R20, as the vendor's page states it:
// "of every last weekday and of every first working day of the month a backup is kept; you then
// always have a backup of the last 7 weekdays and of every first working day of the month".
//
// The rule reads a backup's time from its name (helpdesk.ParseBackupName: the names are shared
// with the store, which writes them).
//
// It is pure: file names in, decisions out; it never touches a file (desk/backups lists the
// folder and deletes) and never links the store.
package retention

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/calendar"
)

// dayOf is the calendar day in a base name (the name's own digits: Amsterdam).
func dayOf(base string) helpdesk.Date {
	_, at, _, _ := helpdesk.ParseBackupName(base + helpdesk.ExtBackup)
	return helpdesk.DateOf(at)
}

// civil turns a date into a time at noon UTC, for day arithmetic without daylight saving.
func civil(d helpdesk.Date) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC)
}

// WorkingDay reports whether d is Monday–Friday and not a Dutch public holiday.
func WorkingDay(d helpdesk.Date) bool {
	wd := civil(d).Weekday()
	return wd != time.Saturday && wd != time.Sunday && calendar.Holiday(d.Year, d.Month, d.Day) == ""
}

// FirstWorkingDay is the first working day of the month: Monday–Friday, Dutch public holidays
// skipped (1 January is always a holiday, so January's is the 2nd or later).
func FirstWorkingDay(year int, month time.Month) helpdesk.Date {
	d := helpdesk.Date{Year: year, Month: month, Day: 1}
	for !WorkingDay(d) {
		d = helpdesk.DateOf(civil(d).AddDate(0, 0, 1))
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
		base, _, kind, ok := helpdesk.ParseBackupName(n)
		if !ok {
			continue
		}
		g := groups[base]
		if g == nil {
			g = &group{base: base}
			groups[base] = g
		}
		switch kind {
		case helpdesk.FileBackup:
			g.gz = true
		case helpdesk.FileManifest:
			g.json = true
		case helpdesk.FilePartial:
			g.partial = true
		}
		g.files = append(g.files, n)
	}
	bases := make([]string, 0, len(groups))
	for b := range groups {
		bases = append(bases, b)
	}
	slices.Sort(bases) // names sort as their times do

	today := helpdesk.Today(asOf)
	windowStart := helpdesk.DateOf(civil(today).AddDate(0, 0, -6))
	inWindow := func(d helpdesk.Date) bool { return !d.Before(windowStart) && !today.Before(d) }

	// The newest complete backup of each day, the newest of all, and each month's first
	// working day that has one.
	newestOfDay := map[helpdesk.Date]string{}
	monthDay := map[[2]int]helpdesk.Date{}
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
			if strings.HasSuffix(f, helpdesk.ExtBackup) {
				dec.Name = f
			}
		}
		d := dayOf(b)
		if !g.complete() {
			what := "incomplete backup: no manifest " + b + helpdesk.ExtManifest
			switch {
			case g.json && !g.gz:
				what = "manifest without its backup " + b + helpdesk.ExtBackup
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
		if today.Before(d) {
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
