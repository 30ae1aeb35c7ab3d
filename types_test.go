package helpdesk_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/infobits/helpdesk"
)

func TestParseTierAndDate(t *testing.T) {
	tiers := []struct {
		in    string
		want  helpdesk.Tier
		hours int
		bad   bool
	}{
		{"SLA24", helpdesk.SLA24, 24, false}, {"sla8", helpdesk.SLA8, 8, false}, {" Sla4 ", helpdesk.SLA4, 4, false}, {"SLA2", "", 0, true}, {"", "", 0, true},
	}
	for _, tc := range tiers {
		got, err := helpdesk.ParseTier(tc.in)
		if (err != nil) != tc.bad || got != tc.want || (!tc.bad && got.Hours() != tc.hours) {
			t.Errorf("ParseTier(%q) = %q (%dh), %v, want %q (%dh), error %v", tc.in, got, got.Hours(), err, tc.want, tc.hours, tc.bad)
		}
	}
	dates := []struct {
		in   string
		want helpdesk.Date
		bad  bool
	}{
		{"2026-11-30", helpdesk.Date{Year: 2026, Month: 11, Day: 30}, false}, {"", helpdesk.Date{}, false}, {"30-11-2026", helpdesk.Date{}, true}, {"2026-02-30", helpdesk.Date{}, true},
	}
	for _, tc := range dates {
		got, err := helpdesk.ParseDate(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseDate(%q) = %v, %v, want %v, error %v", tc.in, got, err, tc.want, tc.bad)
		}
		if !tc.bad && got.String() != tc.in {
			t.Errorf("ParseDate(%q).String() = %q, want the input back", tc.in, got.String())
		}
	}
}

// TestSurvive: a round that panics comes back as a *Panic with the value and the stack where
// it happened, and the next round runs as usual.
func TestSurvive(t *testing.T) {
	rounds := 0
	p := helpdesk.Survive(func() {
		rounds++
		var m map[string]int
		m["boom"]++ // a nil map: the kind of bug a round must survive
	})
	if p == nil || !strings.Contains(p.Error(), "assignment to entry in nil map") || !strings.Contains(p.Stack, "TestSurvive") {
		t.Fatalf("Survive of a panicking round = %#v", p)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Error("round failed", "panic", p)
	if !strings.Contains(logged.String(), `"panic":{"value":"assignment to entry in nil map","stack":"goroutine `) {
		t.Errorf("the panic logs as %s", logged.String())
	}
	if p := helpdesk.Survive(func() { rounds++ }); p != nil || rounds != 2 {
		t.Errorf("a round without a panic: %v, %d rounds", p, rounds)
	}
}
