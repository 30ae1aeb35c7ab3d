package api_test

import (
	"bufio"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/cmd/helpdesk/api"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/ingest"
)

// exposition is a parsed /metrics answer: sample "name{labels}" → value, and the TYPE of each
// family.
type exposition struct {
	samples map[string]float64
	types   map[string]string
	order   []string
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$`)

// parseExposition reads the text format strictly: every line a HELP, a TYPE or a sample of a
// family declared before it, no sample twice.
func parseExposition(t *testing.T, text string) exposition {
	t.Helper()
	e := exposition{samples: map[string]float64{}, types: map[string]string{}}
	help := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			help[name] = true
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, _ := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			if !help[name] {
				t.Errorf("TYPE of %s without HELP", name)
			}
			if _, dup := e.types[name]; dup {
				t.Errorf("family %s declared twice", name)
			}
			e.types[name] = typ
		default:
			m := sampleLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("not a sample line: %q", line)
				continue
			}
			family := m[1]
			if e.types[family] == "" {
				family = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(family, "_bucket"), "_sum"), "_count")
				if e.types[family] != "histogram" {
					t.Errorf("sample %q of no declared family", line)
				}
			}
			v, err := strconv.ParseFloat(m[3], 64)
			if err != nil {
				t.Errorf("sample %q: value: %v", line, err)
			}
			key := m[1] + m[2]
			if _, dup := e.samples[key]; dup {
				t.Errorf("sample %s twice", key)
			}
			e.samples[key] = v
			e.order = append(e.order, key)
		}
	}
	return e
}

func (f *fixture) scrape(t *testing.T) exposition {
	t.Helper()
	r := f.call("GET", "/metrics", "", "Authorization: ")
	if r.status != http.StatusOK {
		t.Fatalf("/metrics: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	return parseExposition(t, string(r.body))
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, ev := range []ingest.Event{
		{Synced: true},
		{Outcome: &desk.Outcome{Action: "new_ticket", Arrival: now.Add(-300 * time.Millisecond)}},
		{Outcome: &desk.Outcome{Action: "new_ticket", Arrival: now.Add(-100 * time.Millisecond)}}, // on the 0.1 bound: le is inclusive
		{Outcome: &desk.Outcome{Action: "reply", Arrival: now.Add(-3 * time.Second)}},
		{Outcome: &desk.Outcome{Action: "held", Reason: helpdesk.HeldUnknownSender, Arrival: now.Add(-100 * time.Second)}},
		{Outcome: &desk.Outcome{Action: "held", Reason: helpdesk.HeldTooLarge}},               // arrival unknown
		{Outcome: &desk.Outcome{Action: "staff_answer", Arrival: now.Add(-10 * time.Minute)}}, // above every bound
		{Outcome: &desk.Outcome{Action: "duplicate", Arrival: now.Add(-48 * time.Hour)}},      // a replay: no latency
		{Outcome: &desk.Outcome{Action: "reply", Arrival: now.Add(time.Second)}},              // server clock ahead: 0
		{Err: errors.New("imap: connection reset")},
		{Err: errors.New("imap: dial: connection refused")},
		{Idling: true},
	} {
		f.metrics.Observe(ev, now)
	}
	// The fixture's store: two open tickets (one about to be closed) and two queued acks.
	expect(t, "close #2", f.call("POST", "/api/tickets/2/answers", `{"from": "jan@infobits.example", "text": "#close"}`), http.StatusCreated)
	e := f.scrape(t)

	for name, typ := range map[string]string{
		"helpdesk_ingest_emails_total": "counter", "helpdesk_ingest_held_total": "counter",
		"helpdesk_tickets_open": "gauge", "helpdesk_notifications": "gauge",
		"helpdesk_imap_reconnects_total": "counter", "helpdesk_ingest_latency_seconds": "histogram",
	} {
		if e.types[name] != typ {
			t.Errorf("TYPE of %s = %q, want %s", name, e.types[name], typ)
		}
	}
	want := map[string]float64{
		`helpdesk_ingest_emails_total{outcome="new_ticket"}`:   2,
		`helpdesk_ingest_emails_total{outcome="reply"}`:        2,
		`helpdesk_ingest_emails_total{outcome="staff_answer"}`: 1,
		`helpdesk_ingest_emails_total{outcome="held"}`:         2,
		`helpdesk_ingest_emails_total{outcome="duplicate"}`:    1,
		`helpdesk_ingest_held_total{reason="unknown_sender"}`:  1,
		`helpdesk_ingest_held_total{reason="too_large"}`:       1,
		`helpdesk_ingest_held_total{reason="over_limit"}`:      0, // known reasons are listed at zero
		`helpdesk_tickets_open`:                                1,
		`helpdesk_notifications{status="queued"}`:              2,
		`helpdesk_notifications{status="sent"}`:                0,
		`helpdesk_notifications{status="failed"}`:              0,
		`helpdesk_imap_reconnects_total`:                       2,
		`helpdesk_ingest_latency_seconds_bucket{le="0.1"}`:     2, // the clock-skewed one and the one on the bound
		`helpdesk_ingest_latency_seconds_bucket{le="0.5"}`:     3,
		`helpdesk_ingest_latency_seconds_bucket{le="1"}`:       3,
		`helpdesk_ingest_latency_seconds_bucket{le="2"}`:       3,
		`helpdesk_ingest_latency_seconds_bucket{le="5"}`:       4,
		`helpdesk_ingest_latency_seconds_bucket{le="10"}`:      4,
		`helpdesk_ingest_latency_seconds_bucket{le="30"}`:      4,
		`helpdesk_ingest_latency_seconds_bucket{le="60"}`:      4,
		`helpdesk_ingest_latency_seconds_bucket{le="300"}`:     5,
		`helpdesk_ingest_latency_seconds_bucket{le="+Inf"}`:    6,
		`helpdesk_ingest_latency_seconds_count`:                6,
	}
	for k, v := range want {
		got, ok := e.samples[k]
		if !ok {
			t.Errorf("no sample %s", k)
		} else if got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if sum, want := e.samples["helpdesk_ingest_latency_seconds_sum"], 0.3+0.1+3+100+600.0; sum < want-1e-9 || sum > want+1e-9 {
		t.Errorf("latency sum = %v, want %v", sum, want)
	}
	// Buckets in order of their bounds, cumulative, the last equal to the count.
	var prevLE, prev float64 = -1, 0
	for _, k := range e.order {
		le, ok := strings.CutPrefix(k, `helpdesk_ingest_latency_seconds_bucket{le="`)
		if !ok {
			continue
		}
		bound, err := strconv.ParseFloat(strings.TrimSuffix(le, `"}`), 64)
		if err != nil {
			t.Fatalf("bucket %s: %v", k, err)
		}
		if bound <= prevLE || e.samples[k] < prev {
			t.Errorf("bucket %s = %v after le=%v with %v: not ordered and cumulative", k, e.samples[k], prevLE, prev)
		}
		prevLE, prev = bound, e.samples[k]
	}
	if prev != e.samples["helpdesk_ingest_latency_seconds_count"] {
		t.Errorf("+Inf bucket %v != count %v", prev, e.samples["helpdesk_ingest_latency_seconds_count"])
	}
}

// TestMetricsZero: before any event every family is there, at zero.
func TestMetricsZero(t *testing.T) {
	f := newFixture(t, nil)
	e := f.scrape(t)
	for _, k := range []string{`helpdesk_ingest_emails_total{outcome="new_ticket"}`, `helpdesk_ingest_held_total{reason="unknown_sender"}`,
		`helpdesk_imap_reconnects_total`, `helpdesk_ingest_latency_seconds_bucket{le="+Inf"}`, `helpdesk_ingest_latency_seconds_sum`} {
		if v, ok := e.samples[k]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", k, v, ok)
		}
	}
	if e.samples["helpdesk_tickets_open"] != 2 {
		t.Errorf("tickets open = %v, want 2", e.samples["helpdesk_tickets_open"])
	}
}

// TestMetricsLabelEscaping: a label value with a quote, a backslash or a line feed cannot
// break the format.
func TestMetricsLabelEscaping(t *testing.T) {
	f := newFixture(t, nil)
	f.metrics.Observe(ingest.Event{Outcome: &desk.Outcome{Action: "held", Reason: "odd \"reason\" \\ with\nnewline"}}, time.Now())
	r := f.call("GET", "/metrics", "")
	const want = `helpdesk_ingest_held_total{reason="odd \"reason\" \\ with\nnewline"} 1` + "\n"
	if !strings.Contains(string(r.body), want) {
		t.Errorf("escaped label missing; body:\n%s", r.body)
	}
	parseExposition(t, string(r.body))
}

// TestMetricsZeroValue: a Metrics needs no constructor, and New takes nil.
func TestMetricsZeroValue(t *testing.T) {
	var m api.Metrics
	m.Observe(ingest.Event{Outcome: &desk.Outcome{Action: "reply"}}, time.Now())
	m.Observe(ingest.Event{}, time.Now())
	_ = api.New(api.Config{}, nil, nil, nil)
}
