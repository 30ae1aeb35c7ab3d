package api_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/rules/policy"
)

// TestMetricsEveryOutcomeAtZero: /metrics — before any email, every outcome ingest
// can report is listed at zero, so that an operator's rate() or alert on it works from the
// first scrape: each action of the policy by its name (the delivery report about one of our
// notifications, "bounce", included), and "duplicate" for a replay. The policy's action list
// is checked too: every action has a name of its own (an unnamed one would be counted as
// "held"), and no named action lies beyond the list the metrics read.
func TestMetricsEveryOutcomeAtZero(t *testing.T) {
	actions := policy.Actions()
	names := map[string]policy.Action{}
	for _, a := range actions {
		n := a.String()
		if prev, dup := names[n]; dup {
			t.Errorf("actions %d and %d are both named %q: /metrics would count them as one", prev, a, n)
		}
		names[n] = a
	}
	if _, ok := names["bounce"]; !ok {
		t.Errorf("policy.Actions() = %v lacks the bounce action", actions)
	}
	for a := policy.Action(len(actions)); a < policy.Action(len(actions)+8); a++ {
		if n := a.String(); n != "held" {
			t.Errorf("action %d is named %q but is not in policy.Actions(): /metrics would not list it at zero", a, n)
		}
	}

	f := newFixture(t, nil)
	e := f.scrape(t)
	want := []string{"duplicate"}
	for _, a := range actions {
		want = append(want, a.String())
	}
	for _, o := range want {
		k := fmt.Sprintf(`helpdesk_ingest_emails_total{outcome=%q}`, o)
		if v, ok := e.samples[k]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0 before any email", k, v, ok)
		}
	}

	// A delivery report counts under its own outcome, not under held.
	f.metrics.Observe(ingest.Event{Outcome: &desk.Outcome{Action: policy.ActionBounce.String(), Arrival: time.Now()}}, time.Now())
	e = f.scrape(t)
	if v := e.samples[`helpdesk_ingest_emails_total{outcome="bounce"}`]; v != 1 {
		t.Errorf(`outcome="bounce" = %v after one delivery report, want 1`, v)
	}
	if v := e.samples[`helpdesk_ingest_emails_total{outcome="held"}`]; v != 0 {
		t.Errorf(`outcome="held" = %v after a delivery report, want 0`, v)
	}
	if v, ok := e.samples[`helpdesk_ingest_held_total{reason="bounce"}`]; !ok || v != 0 {
		t.Errorf(`held_total{reason="bounce"} = %v (present %v) after a report filed on its ticket, want 0`, v, ok)
	}
	// One about a notification without a ticket is kept as a held email (reason bounce): the
	// held counter counts every email `ticket held` lists.
	f.metrics.Observe(ingest.Event{Outcome: &desk.Outcome{Action: policy.ActionBounce.String(), HeldID: 7,
		Reason: helpdesk.HeldBounce, Arrival: time.Now()}}, time.Now())
	e = f.scrape(t)
	if v := e.samples[`helpdesk_ingest_held_total{reason="bounce"}`]; v != 1 {
		t.Errorf(`held_total{reason="bounce"} = %v after a report held without a ticket, want 1`, v)
	}
}
