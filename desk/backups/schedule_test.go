package backups

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
)

// Next around the changes of daylight saving time in Amsterdam.
func TestNextBackupTime(t *testing.T) {
	ams := helpdesk.Amsterdam()
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name         string
		now          time.Time
		hour, minute int
		want         time.Time
	}{
		{"later today", time.Date(2026, 11, 27, 1, 0, 0, 0, ams), 2, 30, utc(2026, 11, 27, 1, 30)},
		{"already past today", time.Date(2026, 11, 27, 2, 30, 0, 0, ams), 2, 30, utc(2026, 11, 28, 1, 30)},
		{"a second before", time.Date(2026, 11, 27, 2, 29, 59, 0, ams), 2, 30, utc(2026, 11, 27, 1, 30)},
		{"summer time", time.Date(2026, 7, 1, 12, 0, 0, 0, ams), 2, 30, utc(2026, 7, 2, 0, 30)},
		// 29 March 2026: 02:00 CET becomes 03:00 CEST; 02:30 does not exist: run at 03:00.
		{"spring: in the skipped hour", time.Date(2026, 3, 28, 12, 0, 0, 0, ams), 2, 30, utc(2026, 3, 29, 1, 0)},
		{"spring: 02:00 is skipped too", time.Date(2026, 3, 28, 12, 0, 0, 0, ams), 2, 0, utc(2026, 3, 29, 1, 0)},
		{"spring: 01:59 exists", time.Date(2026, 3, 28, 12, 0, 0, 0, ams), 1, 59, utc(2026, 3, 29, 0, 59)},
		{"spring: 03:00 exists", time.Date(2026, 3, 28, 12, 0, 0, 0, ams), 3, 0, utc(2026, 3, 29, 1, 0)},
		{"spring: the day after", utc(2026, 3, 29, 1, 0), 2, 30, utc(2026, 3, 30, 0, 30)},
		// 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:30 happens twice: the first one.
		{"autumn: the first 02:30", time.Date(2026, 10, 24, 12, 0, 0, 0, ams), 2, 30, utc(2026, 10, 25, 0, 30)},
		{"autumn: not the second 02:30", utc(2026, 10, 25, 0, 30), 2, 30, utc(2026, 10, 26, 1, 30)},
		{"autumn: between the two", utc(2026, 10, 25, 1, 0), 2, 30, utc(2026, 10, 26, 1, 30)},
		{"autumn: 02:00 the first time", time.Date(2026, 10, 24, 12, 0, 0, 0, ams), 2, 0, utc(2026, 10, 25, 0, 0)},
		{"autumn: 03:00 once", time.Date(2026, 10, 24, 12, 0, 0, 0, ams), 3, 0, utc(2026, 10, 25, 2, 0)},
		{"midnight", time.Date(2026, 12, 31, 23, 0, 0, 0, ams), 0, 0, utc(2026, 12, 31, 23, 0)},
		{"a clock in another zone", time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC), 2, 30, utc(2026, 11, 27, 1, 30)},
		{"a clock in another zone, past", time.Date(2026, 11, 27, 1, 30, 0, 0, time.UTC), 2, 30, utc(2026, 11, 28, 1, 30)},
	} {
		if got := Next(tc.now, tc.hour, tc.minute); !got.Equal(tc.want) {
			t.Errorf("%s: Next(%s, %02d:%02d) = %s, want %s", tc.name, tc.now.In(ams), tc.hour, tc.minute, got.In(ams), tc.want.In(ams))
		}
	}
	for _, s := range []string{"24:00", "2:3", "02:30:00", "", "half drie"} {
		if _, _, err := ParseTime(s); err == nil {
			t.Errorf("ParseTime(%q) accepted", s)
		}
	}
}

// The schedule with an injected clock: weeks across both daylight-saving changes run in
// microseconds; one backup each calendar day at the configured time, and one at start only
// when none was made in the last 24 hours.
func TestBackupScheduleFakeClock(t *testing.T) {
	ams := helpdesk.Amsterdam()
	run := func(start, end time.Time, last time.Duration) (took []time.Time, whys []string) {
		now := start
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := &Schedule{dir: "/backups", hour: 2, minute: 30, log: slog.New(slog.DiscardHandler), now: func() time.Time { return now }}
		s.sleep = func(ctx context.Context, d time.Duration) bool {
			if d <= 0 || d > maxSleep {
				t.Fatalf("sleep(%v)", d)
			}
			now = now.Add(d)
			return ctx.Err() == nil
		}
		s.latest = func() (time.Time, bool, error) {
			if last < 0 {
				return time.Time{}, false, nil
			}
			return start.Add(-last), true, nil
		}
		s.take = func(ctx context.Context, why string) {
			took, whys = append(took, now), append(whys, why)
			if !now.Before(end) {
				cancel()
			}
		}
		s.run(ctx)
		return took, whys
	}

	// Spring: from 20 March to 5 April 2026; a backup 3 hours before the start.
	took, whys := run(time.Date(2026, 3, 20, 10, 0, 0, 0, ams), time.Date(2026, 4, 5, 0, 0, 0, 0, ams), 3*time.Hour)
	var want []time.Time
	for d := 21; d <= 36; d++ { // to 5 April: the first backup at or after the end
		day := time.Date(2026, 3, d, 12, 0, 0, 0, ams)
		if day.Format(time.DateOnly) == "2026-03-29" {
			want = append(want, time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)) // 03:00 CEST
		} else {
			want = append(want, time.Date(day.Year(), day.Month(), day.Day(), 2, 30, 0, 0, ams))
		}
	}
	if !slices.EqualFunc(took, want, time.Time.Equal) {
		t.Errorf("spring backups:\n%v\nwant\n%v", took, want)
	}
	if len(whys) > 0 && whys[0] != "daily at 02:30" {
		t.Errorf("first backup: %q", whys[0])
	}

	// Autumn: from 20 October to 1 November 2026; no backup for two days before the start.
	took, whys = run(time.Date(2026, 10, 20, 10, 0, 0, 0, ams), time.Date(2026, 11, 1, 0, 0, 0, 0, ams), 48*time.Hour)
	want = []time.Time{time.Date(2026, 10, 20, 10, 0, 0, 0, ams)} // at start
	for d := 21; d <= 32; d++ {                                   // to 1 November
		if d == 25 {
			want = append(want, time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)) // the first 02:30 (CEST)
			continue
		}
		want = append(want, time.Date(2026, 10, d, 2, 30, 0, 0, ams))
	}
	if !slices.EqualFunc(took, want, time.Time.Equal) {
		t.Errorf("autumn backups:\n%v\nwant\n%v", took, want)
	}
	if len(whys) > 0 && whys[0] != "at start: no backup in the last 24 hours" {
		t.Errorf("start backup: %q", whys[0])
	}
	days := map[string]int{}
	for _, b := range took {
		days[b.In(ams).Format(time.DateOnly)]++
	}
	if days["2026-10-25"] != 1 {
		t.Errorf("%d backups on the day 02:30 happens twice", days["2026-10-25"])
	}

	// An empty folder: a backup at start, then the daily one.
	took, whys = run(time.Date(2026, 6, 1, 1, 0, 0, 0, ams), time.Date(2026, 6, 1, 2, 0, 0, 0, ams), -1)
	if len(took) != 2 || whys[0] != "at start: no backup in the folder yet" || !took[1].Equal(time.Date(2026, 6, 1, 2, 30, 0, 0, ams)) {
		t.Errorf("empty folder: %v %q", took, whys)
	}
	// Exactly 24 hours since the last one: it counts as missed.
	took, _ = run(time.Date(2026, 6, 1, 12, 0, 0, 0, ams), time.Date(2026, 6, 1, 13, 0, 0, 0, ams), 24*time.Hour)
	if len(took) == 0 || !took[0].Equal(time.Date(2026, 6, 1, 12, 0, 0, 0, ams)) {
		t.Errorf("24 hours after the last backup: %v", took)
	}
}

// TestBackupScheduleSurvivesPanic: a backup that panics (a bug in the backup or the prune) is
// reported as a failed backup, and the schedule goes on: the next day's backup is taken.
func TestBackupScheduleSurvivesPanic(t *testing.T) {
	ams := helpdesk.Amsterdam()
	now := time.Date(2026, 11, 27, 1, 0, 0, 0, ams)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs strings.Builder
	s := &Schedule{dir: "/backups", hour: 2, minute: 30, log: slog.New(slog.NewJSONHandler(&logs, nil)), now: func() time.Time { return now }}
	s.sleep = func(ctx context.Context, d time.Duration) bool {
		now = now.Add(d)
		return ctx.Err() == nil
	}
	s.latest = func() (time.Time, bool, error) { return time.Time{}, false, nil }
	var took []time.Time
	s.take = func(ctx context.Context, why string) {
		took = append(took, now)
		if len(took) == 3 {
			cancel()
		}
		if len(took) <= 2 {
			panic("a bug in backup number " + fmt.Sprint(len(took)))
		}
	}
	s.run(ctx)
	want := []time.Time{time.Date(2026, 11, 27, 1, 0, 0, 0, ams), time.Date(2026, 11, 27, 2, 30, 0, 0, ams), time.Date(2026, 11, 28, 2, 30, 0, 0, ams)}
	if !slices.EqualFunc(took, want, time.Time.Equal) {
		t.Errorf("backups after panics: %v, want %v", took, want)
	}
	for _, n := range []string{"1", "2"} {
		if !strings.Contains(logs.String(), `"msg":"backup failed with a panic (a bug); the gateway goes on, the next attempt is at the next backup time","dir":"/backups","panic":{"value":"a bug in backup number `+n+`"`) {
			t.Errorf("panic %s not reported:\n%s", n, logs.String())
		}
	}
}
