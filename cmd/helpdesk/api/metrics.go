package api

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/rules/policy"
)

// Metrics counts what ingest reports, for GET /metrics (Prometheus text exposition format
// 0.0.4, written by hand). The gauges — tickets open, notifications per state — are read from
// the store at each scrape, so they are right across restarts; the counters start at zero
// with the process, as Prometheus counters do.
//
// The zero value is ready to use; it is safe for concurrent use. Feed it every ingest.Event
// with Observe.
type Metrics struct {
	mu          sync.Mutex
	emails      map[string]uint64 // by Outcome.Action
	held        map[string]uint64 // by Outcome.Reason
	reconnects  uint64
	unaccounted uint64            // emails the gap alarm found not taken in
	suppressed  map[string]uint64 // notifications not sent, by policy.Suppression.Limit
	// latency holds the ingest latencies per bucket, not cumulative: latency[i] counts
	// observations in (bounds[i-1], bounds[i]], the last one those above every bound.
	latency    [len(latencyBounds{}) + 1]uint64
	latencySum float64
	latencyN   uint64
}

// latencyBounds are the upper bounds, in seconds, of the ingest latency histogram: from an
// IDLE push (well under a second) to a poll interval and a slow reconnect (minutes).
type latencyBounds [9]float64

func bounds() latencyBounds { return latencyBounds{0.1, 0.5, 1, 2, 5, 10, 30, 60, 300} }

// The outcomes and held reasons listed even at zero, so that a rate() over them works from
// the first scrape. Others that ingest reports are listed as they come.
//
// The outcomes are every policy action by its name — taken from the policy package, so that
// a new action is listed without a change here — and ingest's "duplicate" (a replay); the
// held reasons are the store's (store.HeldReasons), for the same reason.
func knownOutcomes() []string {
	var out []string
	for _, a := range policy.Actions() {
		out = append(out, a.String())
	}
	return append(out, "duplicate")
}

// Observe counts one ingest event at now, the moment the gateway learnt of it (just after
// the commit): an email's outcome and, when its arrival in the mailbox is known, the latency
// from arrival to commit; a failed IMAP session counts as a reconnect. Duplicates (replays)
// count as emails but not for latency: they arrived long ago. A negative latency (the IMAP
// server's clock ahead of ours) counts as zero.
func (m *Metrics) Observe(ev ingest.Event, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ev.Err != nil {
		m.reconnects++
	}
	m.unaccounted += uint64(max(ev.Gap, 0))
	o := ev.Outcome
	if o == nil {
		return
	}
	m.suppress(o.Suppressed)
	if m.emails == nil {
		m.emails, m.held = map[string]uint64{}, map[string]uint64{}
	}
	action := cmp.Or(o.Action, "unknown")
	m.emails[action]++
	// A delivery report about a notification without a ticket has the outcome bounce and is
	// held too (reason bounce): every email `ticket held` lists is counted here.
	if action == "held" || (o.HeldID != 0 && action != "duplicate") {
		m.held[cmp.Or(o.Reason, "unknown")]++
	}
	if action == "duplicate" || o.Arrival.IsZero() {
		return
	}
	s := max(now.Sub(o.Arrival), 0).Seconds()
	b := bounds()
	m.latency[sort.SearchFloat64s(b[:], s)]++ // the first bound >= s: "le" is inclusive
	m.latencySum += s
	m.latencyN++
}

// Suppressed counts notifications that were not sent (a recovery request of the API).
func (m *Metrics) Suppressed(ss []policy.Suppression) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.suppress(ss)
}

func (m *Metrics) suppress(ss []policy.Suppression) {
	if len(ss) > 0 && m.suppressed == nil {
		m.suppressed = map[string]uint64{}
	}
	for _, s := range ss {
		m.suppressed[cmp.Or(s.Limit, "unknown")]++
	}
}

// storeGauges are the values read from the store at a scrape.
type storeGauges struct {
	ticketsOpen   int
	notifications map[string]int // by state
}

// write renders every metric in the text exposition format.
func (m *Metrics) write(w io.Writer, g storeGauges) error {
	m.mu.Lock()
	emails, held := maps.Clone(m.emails), maps.Clone(m.held)
	reconnects, latency, sum, n := m.reconnects, m.latency, m.latencySum, m.latencyN
	unaccounted := m.unaccounted
	suppressed := maps.Clone(m.suppressed)
	m.mu.Unlock()

	var b strings.Builder
	family := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)
	}
	labelled := func(name, label string, known []string, values map[string]uint64) {
		for _, k := range withSeen(known, values) {
			fmt.Fprintf(&b, "%s{%s=\"%s\"} %d\n", name, label, escapeLabel(k), values[k])
		}
	}

	family("helpdesk_ingest_emails_total", "counter", "Emails ingested, by what they became.")
	labelled("helpdesk_ingest_emails_total", "outcome", knownOutcomes(), emails)

	family("helpdesk_ingest_held_total", "counter", "Emails held for staff instead of becoming a ticket message, by reason.")
	labelled("helpdesk_ingest_held_total", "reason", helpdesk.HeldReasons(), held)

	family("helpdesk_tickets_open", "gauge", "Tickets not closed (open or answered).")
	fmt.Fprintf(&b, "helpdesk_tickets_open %d\n", g.ticketsOpen)

	family("helpdesk_notifications", "gauge", "Notifications in the outbox, by state.")
	for _, st := range []string{helpdesk.NotifyQueued, helpdesk.NotifySent, helpdesk.NotifyFailed} {
		fmt.Fprintf(&b, "helpdesk_notifications{status=\"%s\"} %d\n", st, g.notifications[st])
	}

	family("helpdesk_imap_reconnects_total", "counter", "IMAP sessions that failed; the poller reconnects after each.")
	fmt.Fprintf(&b, "helpdesk_imap_reconnects_total %d\n", reconnects)
	family("helpdesk_ingest_unaccounted_total", "counter", "Emails found in the mailbox but not taken in by the gateway (the gap alarm): a bug to report.")
	fmt.Fprintf(&b, "helpdesk_ingest_unaccounted_total %d\n", unaccounted)

	family("helpdesk_mail_suppressed_total", "counter", "Notifications not sent because of a limit (per address, per customer, in total, a login change pending, staff notices), a bounce or the email's own request.")
	labelled("helpdesk_mail_suppressed_total", "limit", policy.SuppressionLimits(), suppressed)

	family("helpdesk_ingest_latency_seconds", "histogram", "Time from an email's arrival in the mailbox (IMAP INTERNALDATE) to its commit.")
	var cum uint64
	for i, le := range bounds() {
		cum += latency[i]
		fmt.Fprintf(&b, "helpdesk_ingest_latency_seconds_bucket{le=\"%s\"} %d\n", formatFloat(le), cum)
	}
	fmt.Fprintf(&b, "helpdesk_ingest_latency_seconds_bucket{le=\"+Inf\"} %d\n", n)
	fmt.Fprintf(&b, "helpdesk_ingest_latency_seconds_sum %s\n", formatFloat(sum))
	fmt.Fprintf(&b, "helpdesk_ingest_latency_seconds_count %d\n", n)

	_, err := io.WriteString(w, b.String())
	return err
}

// withSeen is the known label values followed by the others seen, sorted.
func withSeen(known []string, seen map[string]uint64) []string {
	extra := slices.Sorted(maps.Keys(seen))
	extra = slices.DeleteFunc(extra, func(k string) bool { return slices.Contains(known, k) })
	return append(slices.Clone(known), extra...)
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// escapeLabel escapes a label value as the text format wants: backslash, double quote and
// line feed.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// escapeHelp escapes HELP text: backslash and line feed.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}
