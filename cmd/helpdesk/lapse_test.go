package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/store"
)

// R21 through the binary: the tier served (customer show -json, customer list, customer
// status), the operator's keep (-free-until, the CSV column), the end of paid support recorded
// when a paid tier is set to SLA24, the setting sla24_lapse_after, the fair-use report and the
// release of a lapsed customer's email as SLA24.

// listAt is `customer list -json -at DAY`, by login address.
func listAt(t *testing.T, env []string, day string) map[string]map[string]any {
	t.Helper()
	var cs []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "customer", "list", "-json", "-at", day)), &cs); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, c := range cs {
		out[c["emails"].([]any)[0].(string)] = c
	}
	return out
}

func TestSLA24LapseCLI(t *testing.T) {
	env := newPeers(t).env()
	mustRun(t, env, "customer", "add", "-email", "oud@example.nl", "-name", "Oud", "-sla", "SLA8", "-valid-until", "2024-03-15")
	mustRun(t, env, "customer", "add", "-email", "stichting@example.nl", "-name", "Stichting", "-philanthropic", "-paid-ended", "2010-01-31")

	// The boundary by day: 24 months after the last paid day it is still SLA24, the day after
	// it is none; the R3 status line stays as it was.
	for _, tc := range []struct{ at, served, lapses string }{
		{"2026-03-15", "SLA24", "2026-03-16"},
		{"2026-03-16", "none", "2026-03-16"},
	} {
		s := showCustomer(t, env, "oud@example.nl", tc.at)
		if s["effective_sla"] != tc.served || s["lapses_on"] != tc.lapses || s["status"] != "verlopen op 15-03-2024" || s["sla"] != "SLA8" {
			t.Errorf("show -at %s: effective %v, lapses_on %v, status %v, sla %v; want %s, %s, verlopen op 15-03-2024, SLA8",
				tc.at, s["effective_sla"], s["lapses_on"], s["status"], s["sla"], tc.served, tc.lapses)
		}
		if c := listAt(t, env, tc.at)["oud@example.nl"]; c["effective_sla"] != tc.served || c["status"] != "verlopen op 15-03-2024" {
			t.Errorf("list -at %s: %v", tc.at, c)
		}
	}
	if got := mustRun(t, env, "customer", "status", "oud@example.nl", "-at", "2026-03-16"); got != "verlopen op 15-03-2024\n" {
		t.Errorf("status = %q, want the R3 line", got)
	}
	text := mustRun(t, env, "customer", "show", "oud@example.nl", "-at", "2026-03-16")
	for _, w := range []string{"none (SLA24 lapsed) on 2026-03-16", "lapsed since 2026-03-16 (R21)"} {
		if !strings.Contains(text, w) {
			t.Errorf("show lacks %q:\n%s", w, text)
		}
	}
	table := mustRun(t, env, "customer", "list", "-at", "2026-03-16")
	if !strings.Contains(table, "SERVED AS") || !strings.Contains(table, "none (SLA24 lapsed)") {
		t.Errorf("customer list:\n%s", table)
	}
	// R4: a philanthropic customer never lapses.
	if s := showCustomer(t, env, "stichting@example.nl", "2030-01-01"); s["effective_sla"] != "SLA24" || s["lapses_on"] != "" {
		t.Errorf("philanthropic: effective %v, lapses_on %v", s["effective_sla"], s["lapses_on"])
	}

	// The operator keeps the customer free through a day; the day after, it has lapsed again.
	out := mustRun(t, env, "customer", "set", "oud@example.nl", "-free-until", "2027-01-31")
	if !strings.Contains(out, "free_until: - -> 2027-01-31") {
		t.Errorf("set -free-until: %q", out)
	}
	if s := showCustomer(t, env, "oud@example.nl", "2027-01-31"); s["effective_sla"] != "SLA24" || s["free_until"] != "2027-01-31" {
		t.Errorf("kept free: %v", s)
	}
	if s := showCustomer(t, env, "oud@example.nl", "2027-02-01"); s["effective_sla"] != "none" {
		t.Errorf("the day after the keep: effective %v, want none", s["effective_sla"])
	}
	if r := runBin(t, env, "customer", "set", "oud@example.nl", "-free-until", "volgend jaar"); r.code != 2 || !strings.Contains(r.stderr, "-free-until") {
		t.Errorf("bad -free-until: exit %d, %q", r.code, r.stderr)
	}

	// sla24_lapse_after: 0 never, else the months.
	if s := showCustomer(t, append(env, "HELPDESK_SLA24_LAPSE_AFTER=0"), "oud@example.nl", "2030-01-01"); s["effective_sla"] != "SLA24" || s["lapses_on"] != "" {
		t.Errorf("sla24_lapse_after 0: %v", s)
	}
	if s := showCustomer(t, append(env, "HELPDESK_SLA24_LAPSE_AFTER=6"), "oud@example.nl", "2027-02-01"); s["lapses_on"] != "2024-09-16" || s["effective_sla"] != "none" {
		t.Errorf("sla24_lapse_after 6: %v", s)
	}

	// A paid tier set to SLA24 records the end of paid support: its valid-until day when it
	// expired, else the day of the change.
	mustRun(t, env, "customer", "add", "-email", "zonder@example.nl", "-name", "Zonder einde", "-sla", "SLA8")
	before := time.Now().In(helpdesk.Amsterdam()).Format(time.DateOnly)
	out = mustRun(t, env, "customer", "set", "zonder@example.nl", "-sla", "SLA24")
	after := time.Now().In(helpdesk.Amsterdam()).Format(time.DateOnly)
	if !strings.Contains(out, "paid_ended: - -> "+before) && !strings.Contains(out, "paid_ended: - -> "+after) {
		t.Errorf("set -sla SLA24 of an SLA8 without an end date: %q, want paid_ended today", out)
	}
	mustRun(t, env, "customer", "add", "-email", "verlopen@example.nl", "-name", "Verlopen", "-sla", "SLA4", "-valid-until", "2023-06-30")
	out = mustRun(t, env, "customer", "set", "verlopen@example.nl", "-sla", "SLA24", "-valid-until", "")
	if !strings.Contains(out, "paid_ended: - -> 2023-06-30") {
		t.Errorf("set -sla SLA24 of an expired SLA4: %q", out)
	}
	if s := showCustomer(t, env, "verlopen@example.nl", "2025-07-01"); s["effective_sla"] != "none" || s["lapses_on"] != "2025-07-01" {
		t.Errorf("expired SLA4 set to SLA24: %v", s)
	}
}

// TestSLA24LapseImport: the CSV columns free_until and paid_ended, and the end of paid support
// recorded when the sla column takes a customer off a paid tier.
func TestSLA24LapseImport(t *testing.T) {
	env := newPeers(t).env()
	mustRun(t, env, "customer", "add", "-email", "betaald@example.nl", "-name", "Betaald", "-sla", "SLA8", "-valid-until", "2025-06-30")
	csv := writeCSV(t, "email,name,sla,free_until,paid_ended\n"+
		"nieuw@example.nl,Nieuw,SLA24,,2023-01-31\n"+
		"vrij@example.nl,Vrij,SLA24,31-12-2027,2020-01-31\n"+
		"betaald@example.nl,,SLA24,,\n")
	out := mustRun(t, env, "customer", "import", csv)
	if !strings.Contains(out, "paid_ended - -> 2025-06-30") {
		t.Errorf("import output lacks the recorded end of paid support:\n%s", out)
	}
	for _, tc := range []struct{ addr, served, lapses, free, paid string }{
		{"nieuw@example.nl", "none", "2025-02-01", "", "2023-01-31"},
		{"vrij@example.nl", "SLA24", "2022-02-01", "2027-12-31", "2020-01-31"},
		{"betaald@example.nl", "SLA24", "2027-07-01", "", "2025-06-30"},
	} {
		s := showCustomer(t, env, tc.addr, "2026-12-01")
		if s["effective_sla"] != tc.served || s["lapses_on"] != tc.lapses || s["free_until"] != tc.free || s["paid_ended"] != tc.paid {
			t.Errorf("%s after import: effective %v, lapses_on %v, free_until %v, paid_ended %v; want %s %s %q %s", tc.addr,
				s["effective_sla"], s["lapses_on"], s["free_until"], s["paid_ended"], tc.served, tc.lapses, tc.free, tc.paid)
		}
	}
	// "-" clears the keep.
	mustRun(t, env, "customer", "import", writeCSV(t, "email,free_until\nvrij@example.nl,-\n"))
	if s := showCustomer(t, env, "vrij@example.nl", "2026-12-01"); s["effective_sla"] != "none" || s["free_until"] != "" {
		t.Errorf("after clearing free_until: %v", s)
	}
	bad := runBin(t, env, "customer", "import", writeCSV(t, "email,name,free_until\nx@example.nl,X,morgen\n"))
	if bad.code != 1 || !strings.Contains(bad.stdout+bad.stderr, "free_until") {
		t.Errorf("bad free_until: exit %d, %s%s", bad.code, bad.stdout, bad.stderr)
	}
}

// TestFairUseReport: `report -fair-use` has a line per free customer — lapsed ones included,
// paid ones not — with their tickets, replies and held emails of the last 12 months, first and
// last contact and when paid support ended; a lapsed customer's email is held, answered with
// the lapse notice, and `ticket release` opens it as SLA24.
func TestFairUseReport(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	ams := helpdesk.Amsterdam()
	today := time.Now().In(ams)
	months := func(n int) string { return today.AddDate(0, n, 0).Format(time.DateOnly) }
	mustRun(t, env, "customer", "add", "-email", "actief@example.nl", "-name", "Actief", "-paid-ended", months(-6))
	mustRun(t, env, "customer", "add", "-email", "vervallen@example.nl", "-name", "Vervallen", "-paid-ended", months(-30))
	mustRun(t, env, "customer", "add", "-email", "betaalt@example.nl", "-name", "Betaalt", "-sla", "SLA8")
	mustRun(t, env, "customer", "add", "-email", "stil@example.nl", "-name", "Stil")

	p.deliver(t, customerMail("actief@example.nl", "Eerste vraag", "a1@actief", "", "Vraag een."))
	p.deliver(t, customerMail("actief@example.nl", "Tweede vraag", "a2@actief", "", "Vraag twee."))
	p.deliver(t, customerMail("vervallen@example.nl", "Mag ik nog iets vragen?", "v1@vervallen", "", "Graag."))
	p.deliver(t, customerMail("betaalt@example.nl", "Betaalde vraag", "b1@betaalt", "", "Vraag."))
	mustRun(t, env, "serve", "-once")
	p.deliver(t, customerMail("actief@example.nl", "Re: [Infobits #1] Eerste vraag", "a3@actief", "", "Nog iets."))
	mustRun(t, env, "serve", "-once")

	var held []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "held", "-json", "-reason", "sla24_lapsed")), &held); err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[0]["from"] != "vervallen@example.nl" || !strings.Contains(held[0]["detail"].(string), "24 months after paid support ended on "+months(-30)) {
		t.Fatalf("held sla24_lapsed = %v", held)
	}
	msgs, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 4) // 3 acknowledgements and the lapse notice
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	notice := 0
	for _, m := range msgs {
		if m.To[0] == "vervallen@example.nl" {
			notice++
			if subj := headerOf(m.Data, "Subject"); subj != "Uw e-mail aan de helpdesk: uw gratis status SLA24 is vervallen" {
				t.Errorf("lapse notice subject = %q", subj)
			}
		}
	}
	if notice != 1 {
		t.Errorf("lapse notices sent = %d, want 1", notice)
	}

	var lines []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "report", "-fair-use", "-json")), &lines); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 {
		t.Fatalf("report lines = %d, want 3 (the paying customer left out): %v", len(lines), lines)
	}
	for i, want := range []struct {
		login, served, paid     string
		tickets, replies, heldN float64
		contact                 bool
	}{
		{"actief@example.nl", "SLA24", months(-6), 2, 1, 0, true},
		{"vervallen@example.nl", "none", months(-30), 0, 0, 1, true},
		{"stil@example.nl", "SLA24", "", 0, 0, 0, false},
	} {
		l := lines[i]
		if l["login"] != want.login || l["effective_sla"] != want.served || l["paid_ended"] != want.paid ||
			l["tickets_12m"] != want.tickets || l["replies_12m"] != want.replies || l["held_12m"] != want.heldN ||
			(l["last_contact"] != "") != want.contact || (l["first_contact"] != "") != want.contact {
			t.Errorf("report line %d = %v, want %+v", i, l, want)
		}
	}
	text := mustRun(t, env, "report", "-fair-use")
	for _, w := range []string{"TICKETS", "PAID ENDED", "none (SLA24 lapsed)", months(-30)} {
		if !strings.Contains(text, w) {
			t.Errorf("report lacks %q:\n%s", w, text)
		}
	}
	if r := runBin(t, env, "report", "-fair-use", "-month", "2026-11"); r.code != 2 || !strings.Contains(r.stderr, "-fair-use") {
		t.Errorf("report -fair-use -month: exit %d, %q; want a usage error: two reports", r.code, r.stderr)
	}

	// The operator's fair-use decision: release opens the ticket as SLA24.
	id := int(held[0]["id"].(float64))
	out := mustRun(t, env, "ticket", "release", strconv.Itoa(id))
	if !strings.Contains(out, "opened ticket #4") {
		t.Fatalf("release: %q", out)
	}
	var tk map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "show", "4", "-json")), &tk); err != nil {
		t.Fatal(err)
	}
	if tk["sla"] != "SLA24" || tk["customer"] != "vervallen@example.nl" || tk["due"] == "" {
		t.Errorf("released ticket: sla %v, customer %v, due %v", tk["sla"], tk["customer"], tk["due"])
	}
}

// TestSiteLapsed: on the customer's site a lapsed customer (R21) reads on the Helpdesk page
// that no tier is served and why, and a new ticket is refused on the form with how to get
// SLA8; nothing is stored.
func TestSiteLapsed(t *testing.T) {
	p := newPeers(t)
	db, err := store.Open(filepath.Join(p.dir, "helpdesk.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		return tx.PutCustomer(&helpdesk.Customer{Name: "Oud Betaald", Emails: []string{"oud@example.nl"}, Tier: helpdesk.SLA8,
			ValidUntil: helpdesk.Date{Year: 2024, Month: 6, Day: 30}}) // lapsed on 2026-07-01; the clock is 2026-11-30
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	base, env, _ := siteGateway(t, p, siteClock())
	mustRun(t, env, "customer", "invite", "oud@example.nl")
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, "oud@example.nl", 1), sitePW)

	page := v.get("/helpdesk")
	for _, w := range []string{"verlopen op 30-06-2024", "geen: uw gratis status SLA24 is vervallen", "EUR 5,00 per maand"} {
		if !strings.Contains(page.text(), w) {
			t.Errorf("Helpdesk page lacks %q:\n%s", w, page.text())
		}
	}
	// The form says so before anything is typed.
	if r := v.get("/tickets/nieuw"); !strings.Contains(r.text(), "uw gratis status SLA24 vervallen: een nieuwe vraag wordt geen ticket") {
		t.Errorf("the new-ticket form of a lapsed customer does not say a new question is no ticket:\n%s", r.text())
	}
	r := v.postFiles("/tickets", map[string]string{"csrf": v.csrf("/tickets/nieuw"), "subject": "Kassa hangt", "text": "Hij doet niets.", "contact": "email"})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), "Uw gratis status SLA24 is vervallen") || !strings.Contains(r.text(), "Er is niets opgeslagen") {
		t.Errorf("new ticket of a lapsed customer: %d\n%s", r.status, r.text())
	}
	if o := mustRun(t, env, "ticket", "list"); strings.Contains(o, "Kassa hangt") {
		t.Errorf("the refused form made a ticket:\n%s", o)
	}
}
