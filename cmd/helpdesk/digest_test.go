package main

import (
	"strings"
	"testing"
)

// digestsTo are the daily digests the SMTP peer received for rcpt.
func digestsTo(t *testing.T, p *peers, rcpt string) []string {
	var out []string
	for _, m := range sinkTo(p.sink.Messages(), rcpt) {
		if s := headerOf(m.Data, "Subject"); strings.HasPrefix(s, "Dagoverzicht") {
			out = append(out, s+"\n"+plainText(t, m.Data))
		}
	}
	return out
}

// TestDailyDigest: for a prepared store (tickets through IMAP at chosen arrival times, one
// assigned, one held email), `helpdesk digest -print` shows each section with the ticket
// references and subjects; serve sends it to staff_list at digest_time on a working day —
// not on Saturday, not before the time, once a day also across a restart — and with nothing
// open and nothing held sends none.
func TestDailyDigest(t *testing.T) {
	p := newPeers(t)
	env := p.env("HELPDESK_STAFF_LIST="+staffList, "HELPDESK_LOG_LEVEL=debug", "HELPDESK_IMAP_BACKLOG_AGE=87600h", "HELPDESK_DIGEST_TIME=08:30",
		"HELPDESK_STAFF=jan@infobits.example,piet@infobits.example", "HELPDESK_ESCALATION_WARN=off")
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen", "-sla", "SLA8", "-contract")
	mustRun(t, env, "customer", "add", "-email", "info@cafedehoek.nl", "-name", "Cafe de Hoek") // SLA24
	for _, m := range []struct{ raw, at string }{
		// due Thursday 26 November 10:00: breached on Monday
		{customerMail("info@bakkerijdevries.nl", "Bonprinter print niet", "d1@bakkerij", "", "Geen bonnen."), "2026-11-25 10:00:00"},
		// urgent, contract: due Monday 30 November 13:00
		{customerMail("kassa@slagerijjansen.nl", "SPOED weegschaal", "d2@slagerij", "", "De weegschaal."), "2026-11-27 16:00:00"},
		// SLA24 from Thursday 16:00: due Tuesday 1 December 16:00, the next working day
		{customerMail("info@cafedehoek.nl", "Kassa's tellen verkeerd", "d3@hoek", "", "De kassa's."), "2026-11-26 16:00:00"},
		{customerMail("inkoop@nieuwe-klant.nl", "Offerte", "d4@nieuw", "", "Wat kost het?"), "2026-11-27 11:00:00"},
	} {
		if _, err := p.mem.Append("INBOX", []byte(m.raw), amsAt(m.at)); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, env, "serve", "-once")
	mustRun(t, env, "ticket", "assign", "1", "piet@infobits.example")

	out := mustRun(t, env, "digest", "-print", "-at", "2026-11-30T08:30")
	for _, want := range []string{
		"Subject: Dagoverzicht maandag 30 november 2026: 1 verstreken, 1 vastgehouden",
		"Deadline verstreken (1):\n  [Infobits #1] Bonprinter print niet (Bakkerij de Vries, SLA8), deadline donderdag 26 november 2026 om 10:00",
		"Deadline vandaag (1):\n  [Infobits #2] SPOED weegschaal (Slagerij Jansen, SLA8, SPOED), deadline maandag 30 november 2026 om 13:00",
		"Deadline volgende werkdag (1):\n  [Infobits #3] Kassa's tellen verkeerd (Cafe de Hoek, SLA24), deadline dinsdag 1 december 2026 om 16:00",
		"Spoed (1):\n  [Infobits #2]",
		"Niet toegewezen (2):\n  [Infobits #2] SPOED weegschaal (Slagerij Jansen, SLA8, SPOED), deadline maandag 30 november 2026 om 13:00\n  [Infobits #3]",
		"Voor piet@infobits.example (1):\n  [Infobits #1] Bonprinter print niet",
		"[1] van inkoop@nieuwe-klant.nl: Offerte (unknown_sender)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("digest -print lacks %q:\n%s", want, out)
		}
	}

	// serve sends it at 08:30 on a working day, once.
	clk := &stepClock{t: amsAt("2026-11-28 08:00:00")} // Saturday
	log := &syncBuffer{}
	exited, stop := serveWithClock(t, env, log, clk.Now)
	for _, at := range []string{"2026-11-28 08:30:00", "2026-11-28 12:00:00", "2026-11-30 08:29:59"} {
		waitChecked(t, clk, amsAt(at), log, exited)
	}
	if got := digestsTo(t, p, staffList); len(got) != 0 {
		t.Fatalf("a digest before Monday 08:30: %q", got)
	}
	n := len(p.sink.Messages())
	waitChecked(t, clk, amsAt("2026-11-30 08:30:00"), log, exited)
	waitSink(t, p, n+1) // the worker sends what the check queued
	got := digestsTo(t, p, staffList)
	if len(got) != 1 || !strings.Contains(got[0], "[Infobits #2] SPOED weegschaal") || !strings.Contains(got[0], "Voor piet@infobits.example") {
		t.Fatalf("digests at Monday 08:30 = %q, want one", got)
	}
	stop()
	clk.Set(amsAt("2026-11-30 09:00:00"))
	log2 := &syncBuffer{}
	exited2, stop2 := serveWithClock(t, env, log2, clk.Now)
	waitChecked(t, clk, amsAt("2026-11-30 16:00:00"), log2, exited2)
	stop2()
	if got := digestsTo(t, p, staffList); len(got) != 1 {
		t.Errorf("after a restart the same day: %d digests, want still 1", len(got))
	}

	// Nothing open and nothing held: no digest.
	for _, id := range []string{"1", "2", "3"} {
		mustRun(t, env, "ticket", "close", id)
	}
	mustRun(t, env, "ticket", "held", "dismiss", "1")
	if out := mustRun(t, env, "digest", "-at", "2026-12-01T08:30"); !strings.Contains(out, "nothing due and nothing held: no digest") {
		t.Errorf("digest with nothing open and nothing held: %q", out)
	}
}
