package retention

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
)

func TestParse(t *testing.T) {
	ams := helpdesk.Amsterdam()
	for _, tc := range []struct {
		name string
		base string
		kind helpdesk.BackupFile
		at   time.Time
	}{
		{"helpdesk-20261127-023000.db.gz", "helpdesk-20261127-023000", helpdesk.FileBackup, time.Date(2026, 11, 27, 2, 30, 0, 0, ams)},
		{"helpdesk-20261127-023000.json", "helpdesk-20261127-023000", helpdesk.FileManifest, time.Date(2026, 11, 27, 2, 30, 0, 0, ams)},
		{"helpdesk-20261127-023000.db.gz.partial", "helpdesk-20261127-023000", helpdesk.FilePartial, time.Date(2026, 11, 27, 2, 30, 0, 0, ams)},
		{"helpdesk-20261127-023000.json.partial", "helpdesk-20261127-023000", helpdesk.FilePartial, time.Date(2026, 11, 27, 2, 30, 0, 0, ams)},
		{"helpdesk-20240229-235959.db.gz", "helpdesk-20240229-235959", helpdesk.FileBackup, time.Date(2024, 2, 29, 23, 59, 59, 0, ams)},
	} {
		base, at, kind, ok := helpdesk.ParseBackupName(tc.name)
		if !ok || base != tc.base || kind != tc.kind || !at.Equal(tc.at) {
			t.Errorf("Parse(%q) = %q, %v, %v, %v; want %q, %v, %v", tc.name, base, at, kind, ok, tc.base, tc.at, tc.kind)
		}
	}
	for _, name := range []string{
		"", "helpdesk-.db.gz", "Helpdesk-20261127-023000.db.gz", "helpdesk-20261127-023000.DB.GZ",
		"helpdesk-20261127-0230.db.gz", "helpdesk-2026112-0230000.db.gz", "helpdesk-20261127_023000.db.gz",
		"helpdesk-20261327-023000.db.gz", "helpdesk-20250229-023000.db.gz", "helpdesk-20261127-243000.db.gz",
		"helpdesk-20261127-023000.db", "helpdesk-20261127-023000.db.gz.bak", "xhelpdesk-20261127-023000.db.gz",
		"helpdesk-20261127-023000.json~", "helpdesk-+0261127-023000.db.gz", "helpdesk-20261127-023000.partial",
		"helpdesk-２0261127-023000.db.gz",
	} {
		if _, _, _, ok := helpdesk.ParseBackupName(name); ok {
			t.Errorf("Parse(%q) accepted a name the gateway does not write", name)
		}
	}
	// Base names the time in Amsterdam, whatever the zone of the time given.
	if got := helpdesk.BackupBase(time.Date(2026, 2, 1, 23, 30, 0, 0, time.UTC)); got != "helpdesk-20260202-003000" {
		t.Errorf("Base = %q", got)
	}
	if got := helpdesk.BackupBase(time.Date(2026, 7, 1, 0, 30, 0, 0, time.UTC)); got != "helpdesk-20260701-023000" {
		t.Errorf("Base in summer time = %q", got)
	}
}

func TestFirstWorkingDay(t *testing.T) {
	for _, tc := range []struct {
		y    int
		m    time.Month
		want int
		why  string
	}{
		{2026, time.January, 2, "1 January is a holiday; the 2nd a Friday"},
		{2027, time.January, 4, "1 January 2027 is a holiday on a Friday: Monday the 4th"},
		{2022, time.January, 3, "1 January 2022 is a Saturday"},
		{2025, time.November, 3, "the 1st is a Saturday"},
		{2026, time.February, 2, "the 1st is a Sunday"},
		{2026, time.August, 3, "the 1st is a Saturday"},
		{2026, time.November, 2, "the 1st is a Sunday"},
		{2026, time.April, 1, "a Wednesday"},
		{2027, time.May, 3, "1 May 2027 is a Saturday"},
		{2028, time.May, 1, "a Monday, no holiday"},
		{2024, time.April, 2, "1 April 2024 is Easter Monday"},
	} {
		got := FirstWorkingDay(tc.y, tc.m)
		if got != (helpdesk.Date{Year: tc.y, Month: tc.m, Day: tc.want}) {
			t.Errorf("FirstWorkingDay(%d, %s) = %s, want day %d: %s", tc.y, tc.m, got, tc.want, tc.why)
		}
	}
}

func names(bases ...string) []string {
	var out []string
	for _, b := range bases {
		out = append(out, b+helpdesk.ExtBackup, b+helpdesk.ExtManifest)
	}
	return out
}

// The reasons the operator reads, in the words of R20.
func TestPlanReasons(t *testing.T) {
	asOf := time.Date(2026, 11, 27, 12, 0, 0, 0, helpdesk.Amsterdam())
	plan := Plan(append(names(
		"helpdesk-20261102-023000", // November's first working day (the 1st is a Sunday)
		"helpdesk-20261120-023000",
		"helpdesk-20261121-023000", // the day before the 7 days
		"helpdesk-20261122-023000", // DATE-5 … DATE
		"helpdesk-20261126-023000",
		"helpdesk-20261126-150000",
		"helpdesk-20261127-020000",
		"helpdesk-20261201-023000", // after DATE
	), "notes.txt", "helpdesk-20261127-020000.json~"), asOf)
	var got []string
	for _, d := range plan {
		got = append(got, d.String())
	}
	want := []string{
		"keep helpdesk-20261102-023000.db.gz: first working day of November 2026",
		"delete helpdesk-20261120-023000.db.gz: older backup of 2026-11-20",
		"keep helpdesk-20261121-023000.db.gz: newest of Saturday 2026-11-21",
		"keep helpdesk-20261122-023000.db.gz: newest of Sunday 2026-11-22",
		"delete helpdesk-20261126-023000.db.gz: older backup of 2026-11-26 (a newer one of that day is kept)",
		"keep helpdesk-20261126-150000.db.gz: newest of Thursday 2026-11-26",
		"keep helpdesk-20261127-020000.db.gz: newest of Friday 2026-11-27",
		"keep helpdesk-20261201-023000.db.gz: newest backup; made after 2026-11-27, the date pruned as of; first working day of December 2026",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Both files of a backup go together.
	for _, d := range plan {
		if len(d.Files) != 2 {
			t.Errorf("%s: files %v, want the .db.gz and the .json", d.Base, d.Files)
		}
	}
	// With the 21st out of the window (as of the 28th) only the first working day and the
	// newest of each of the last 7 days stay.
	plan = Plan(names("helpdesk-20261102-023000", "helpdesk-20261121-023000", "helpdesk-20261128-023000"),
		time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	if plan[1].Action != Delete || plan[0].Action != Keep || plan[2].Reason != "newest backup; newest of Saturday 2026-11-28" {
		t.Errorf("plan as of the 28th: %v", plan)
	}
}

// When a month's first working day has no backup, the newest backup of its first later
// working day with one is kept instead; weekend days and holidays never count.
func TestPlanMonthWithoutFirstWorkingDayBackup(t *testing.T) {
	plan := Plan(names(
		"helpdesk-20260301-023000", // Sunday
		"helpdesk-20260303-023000", // Tuesday; Monday the 2nd has none
		"helpdesk-20260303-220000",
		"helpdesk-20260304-023000",
		"helpdesk-20260406-023000", // Easter Monday: a holiday, no working day
		"helpdesk-20260407-023000", // April's 1st–3rd have none: the 7th
	), time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	keep := map[string]string{}
	for _, d := range plan {
		if d.Action == Keep {
			keep[d.Base] = d.Reason
		}
	}
	want := map[string]string{
		"helpdesk-20260303-220000": "first working day of March 2026 with a backup (none was made on 2026-03-02, the first working day)",
		"helpdesk-20260407-023000": "newest backup; first working day of April 2026 with a backup (none was made on 2026-04-01, the first working day)",
	}
	if len(keep) != len(want) {
		t.Errorf("kept %v, want %v", keep, want)
	}
	for b, r := range want {
		if keep[b] != r {
			t.Errorf("%s: %q, want %q", b, keep[b], r)
		}
	}
}
