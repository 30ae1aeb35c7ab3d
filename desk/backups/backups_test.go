package backups_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk/desk/backups"
	"github.com/infobits/helpdesk/store/storetest"
)

var ctx = context.Background()

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// --- retention over a year and a half ---

// dutchHolidays2025to2026 are the Dutch national holidays of the simulated period, written out
// by hand (not computed by the calendar package the rule uses).
var dutchHolidays2025to2026 = map[string]bool{
	"2025-01-01": true, "2025-04-18": true, "2025-04-20": true, "2025-04-21": true, "2025-04-26": true,
	"2025-05-05": true, "2025-05-29": true, "2025-06-08": true, "2025-06-09": true, "2025-12-25": true, "2025-12-26": true,
	"2026-01-01": true, "2026-04-03": true, "2026-04-05": true, "2026-04-06": true, "2026-04-27": true,
	"2026-05-14": true, "2026-05-24": true, "2026-05-25": true, "2026-12-25": true, "2026-12-26": true,
}

// TestRetentionYearAndAHalf makes a backup a day from 2025-06-01 to 2026-11-30 (on some days
// two, some days none, some near midnight and on the days clocks change), prunes after each
// as serve does, and checks after every prune that exactly the expected set is kept. The
// expected set is computed from every backup ever made, by brute force over dates.
func TestRetentionYearAndAHalf(t *testing.T) {
	db := storetest.New(t)
	dir := t.TempDir()
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}

	// Files that are not the gateway's, some with names close to its own: never touched.
	foreign := map[string]string{
		"notes.txt":                          "not a backup",
		"helpdesk-20250601-023000.db.gz.bak": "a copy someone made",
		"Helpdesk-20250602-023000.db.gz":     "other case",
		"helpdesk-2025-06-03.db.gz":          "other date format",
		"helpdesk-20250604-0230.db.gz":       "no seconds",
		"helpdesk-20251301-023000.db.gz":     "month 13",
		"helpdesk-20250605-023000.db":        "not compressed",
		"xhelpdesk-20250606-023000.db.gz":    "a prefix",
		"helpdesk-20250607-023000.json~":     "an editor's backup",
	}
	for n, content := range foreign {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A directory and symbolic links named like backups are not plain files: untouched too.
	os.Mkdir(filepath.Join(dir, "helpdesk-20240608-023000.db.gz"), 0o700)
	os.Symlink("notes.txt", filepath.Join(dir, "helpdesk-20240609-023000.db.gz"))
	os.Symlink("notes.txt", filepath.Join(dir, "helpdesk-20240609-023000.json"))
	untouched := []string{"helpdesk-20240608-023000.db.gz", "helpdesk-20240609-023000.db.gz", "helpdesk-20240609-023000.json"}
	for n := range foreign {
		untouched = append(untouched, n)
	}

	skip := map[string]bool{
		"2026-03-02": true, "2026-03-03": true, // March 2026: its first working day (Mon 2nd) and the 3rd have none
		"2025-12-24": true, "2025-12-27": true, "2025-12-28": true, "2025-12-29": true, // a week away
		"2025-12-30": true, "2025-12-31": true, "2026-01-01": true, "2026-01-03": true,
	}
	never := map[string]bool{ // days the specific checks below rely on
		"2025-06-02": true, "2025-11-01": true, "2025-11-03": true, "2026-01-02": true, "2026-02-02": true,
		"2026-03-04": true, "2026-08-01": true, "2026-08-03": true,
	}
	rng := rand.New(rand.NewPCG(20, 26))
	var made []time.Time
	date := func(t time.Time) string { return t.In(ams).Format(time.DateOnly) }
	base := func(t time.Time) string { return "helpdesk-" + t.In(ams).Format("20060102-150405") }

	expected := func(asOf time.Time) []string {
		today := date(asOf)
		var last7 []string
		for i := range 7 {
			last7 = append(last7, asOf.In(ams).AddDate(0, 0, -i).Format(time.DateOnly))
		}
		newestOfDay := map[string]time.Time{}
		var newest time.Time
		for _, m := range made {
			if m.After(newestOfDay[date(m)]) {
				newestOfDay[date(m)] = m
			}
			if m.After(newest) {
				newest = m
			}
		}
		// The month's first working day that has a backup, by walking the month's days.
		monthDay := map[string]string{} // "2026-03" -> "2026-03-04"
		for day := range newestOfDay {
			month := day[:7]
			if _, done := monthDay[month]; done {
				continue
			}
			monthDay[month] = ""
			first, _ := time.ParseInLocation(time.DateOnly, month+"-01", ams)
			for c := first; c.Month() == first.Month(); c = c.AddDate(0, 0, 1) {
				cs := c.Format(time.DateOnly)
				if c.Weekday() == time.Saturday || c.Weekday() == time.Sunday || dutchHolidays2025to2026[cs] {
					continue
				}
				if _, ok := newestOfDay[cs]; ok {
					monthDay[month] = cs
					break
				}
			}
		}
		var keep []string
		for _, b := range made {
			ofDay := newestOfDay[date(b)].Equal(b)
			if b.Equal(newest) || date(b) > today || (ofDay && (slices.Contains(last7, date(b)) || monthDay[date(b)[:7]] == date(b))) {
				keep = append(keep, base(b)+".db.gz")
			}
		}
		slices.Sort(keep)
		return keep
	}
	kept := func() []string {
		var out []string
		for _, n := range dirNames(t, dir) {
			if strings.HasPrefix(n, "helpdesk-2") && strings.HasSuffix(n, ".db.gz") && !slices.Contains(untouched, n) {
				if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(n, ".db.gz")+".json")); err != nil {
					t.Errorf("%s without its manifest", n)
				}
				out = append(out, n)
			} else if strings.HasSuffix(n, ".json") && !slices.Contains(untouched, n) {
				if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(n, ".json")+".db.gz")); err != nil {
					t.Errorf("manifest %s without its backup", n)
				}
			}
		}
		return out
	}

	prunes := 0
	for day := time.Date(2025, 6, 1, 12, 0, 0, 0, ams); !day.After(time.Date(2026, 11, 30, 12, 0, 0, 0, ams)); day = day.AddDate(0, 0, 1) {
		ds := day.Format(time.DateOnly)
		if skip[ds] || (!never[ds] && rng.IntN(12) == 0) {
			continue
		}
		y, m, d := day.Date()
		times := []time.Time{time.Date(y, m, d, 2, 30, 0, 0, ams)} // 03:30 on the day clocks go forward
		switch {
		case ds == "2026-01-02":
			times = append(times, time.Date(y, m, d, 14, 0, 0, 0, ams))
		case ds == "2026-02-02":
			times = []time.Time{time.Date(2026, 2, 1, 23, 30, 0, 0, time.UTC)} // 00:30 in Amsterdam: the 2nd
		case ds == "2025-09-15":
			times = []time.Time{time.Date(y, m, d, 0, 0, 0, 0, ams), time.Date(y, m, d, 23, 59, 59, 0, ams)}
		case rng.IntN(8) == 0:
			times = append(times, time.Date(y, m, d, 8+rng.IntN(14), rng.IntN(60), rng.IntN(60), 0, ams))
		}
		for _, at := range times {
			if _, err := db.Backup(ctx, dir, at, "devel"); err != nil {
				t.Fatal(err)
			}
			made = append(made, at)
			if _, err := backups.Prune(dir, at, false); err != nil {
				t.Fatal(err)
			}
			prunes++
			if got, want := kept(), expected(at); !slices.Equal(got, want) {
				t.Fatalf("after the backup of %s: kept\n%v\nwant\n%v", at.In(ams), got, want)
			}
		}
	}
	if prunes < 450 {
		t.Fatalf("only %d backups made", prunes)
	}

	final := kept()
	for _, tc := range []struct {
		file string
		kept bool
		why  string
	}{
		{"helpdesk-20250602-023000.db.gz", true, "June 2025: the 1st is a Sunday, so Monday the 2nd"},
		{"helpdesk-20251103-023000.db.gz", true, "November 2025: the 1st is a Saturday, so Monday the 3rd"},
		{"helpdesk-20251101-023000.db.gz", false, "a Saturday 1st is no working day"},
		{"helpdesk-20260202-003000.db.gz", true, "February 2026: the 1st is a Sunday; the backup at 00:30 Amsterdam is on the 2nd"},
		{"helpdesk-20260102-140000.db.gz", true, "January 2026: the 1st is a holiday, so the 2nd, its newest backup"},
		{"helpdesk-20260102-023000.db.gz", false, "not the newest of 2 January"},
		{"helpdesk-20260304-023000.db.gz", true, "March 2026: none on the 2nd and 3rd, so the 4th"},
		{"helpdesk-20260803-023000.db.gz", true, "August 2026: the 1st is a Saturday, so Monday the 3rd"},
		{"helpdesk-20260801-023000.db.gz", false, "a Saturday 1st is no working day"},
		{"helpdesk-20261130-023000.db.gz", true, "the newest backup"},
	} {
		if slices.Contains(final, tc.file) != tc.kept {
			t.Errorf("%s kept = %v, want %v: %s", tc.file, !tc.kept, tc.kept, tc.why)
		}
	}
	// One per month for the 18 months, plus the last 7 days.
	if len(final) < 18 || len(final) > 18+7 {
		t.Errorf("%d backups kept: %v", len(final), final)
	}
	for n, content := range foreign {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err != nil || string(b) != content {
			t.Errorf("foreign file %s: %q, %v", n, b, err)
		}
	}
	for _, n := range untouched {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s was touched: %v", n, err)
		}
	}
}

// Incomplete backups: older than the newest complete one they are deleted (crash traces);
// newer ones are left, as a backup may be in progress. Dry runs delete nothing.
func TestPruneIncompleteAndDryRun(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{
		"helpdesk-20261102-023000.db.gz", "helpdesk-20261102-023000.json", // November's first working day
		"helpdesk-20261120-023000.db.gz", "helpdesk-20261120-023000.json", // older backup
		"helpdesk-20261121-023000.db.gz", // crash before the manifest
		"helpdesk-20261122-023000.json",  // its .db.gz deleted by hand
		"helpdesk-20261123-023000.db.gz.partial",
		"helpdesk-20261127-023000.db.gz", "helpdesk-20261127-023000.json",
		"helpdesk-20261127-030000.db.gz", // being written now
		"helpdesk-20261127-030000.json.partial",
	} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	asOf := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	plan, err := backups.Prune(dir, asOf, true)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, d := range plan {
		lines = append(lines, d.String())
	}
	want := []string{
		"keep helpdesk-20261102-023000.db.gz: first working day of November 2026",
		"delete helpdesk-20261120-023000.db.gz: older backup of 2026-11-20",
		"delete helpdesk-20261121-023000.db.gz: incomplete backup: no manifest helpdesk-20261121-023000.json, older than the newest backup",
		"delete helpdesk-20261122-023000.json: manifest without its backup helpdesk-20261122-023000.db.gz, older than the newest backup",
		"delete helpdesk-20261123-023000.db.gz.partial: unfinished write, older than the newest backup",
		"keep helpdesk-20261127-023000.db.gz: newest backup; newest of Friday 2026-11-27",
		"leave helpdesk-20261127-030000.db.gz: incomplete backup: no manifest helpdesk-20261127-030000.json; a backup may be in progress",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if n := len(dirNames(t, dir)); n != 11 {
		t.Errorf("a dry run deleted files: %d left", n)
	}
	if _, err := backups.Prune(dir, asOf, false); err != nil {
		t.Fatal(err)
	}
	wantLeft := []string{"helpdesk-20261102-023000.db.gz", "helpdesk-20261102-023000.json", "helpdesk-20261127-023000.db.gz", "helpdesk-20261127-023000.json", "helpdesk-20261127-030000.db.gz", "helpdesk-20261127-030000.json.partial"}
	if got := dirNames(t, dir); !slices.Equal(got, wantLeft) {
		t.Errorf("left %v, want %v", got, wantLeft)
	}
	at, ok, err := backups.Latest(dir)
	if err != nil || !ok || at.Format("2006-01-02 15:04") != "2026-11-27 02:30" {
		t.Errorf("Latest = %v, %v, %v", at, ok, err)
	}
	if _, ok, _ := backups.Latest(t.TempDir()); ok {
		t.Error("Latest of an empty folder found one")
	}
}
