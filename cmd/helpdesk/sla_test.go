package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/infobits/helpdesk"
)

// TestDeadlineCommand: `helpdesk deadline` prints the deadline in RFC 3339 with the Amsterdam
// offset on its first line, then the calendar (R6–R9): the page's worked example, whatever the
// machine's time zone, and the configured closed days.
func TestDeadlineCommand(t *testing.T) {
	p := newPeers(t)
	cases := []struct {
		args      []string
		env       []string
		first     string
		calendar  string
		machineTZ string
	}{
		{[]string{"-sla", "SLA8", "-contract", "-at", "2026-11-27T16:00"}, nil, "2026-11-30T13:00:00+01:00", "calendar: contract", ""},
		{[]string{"-sla", "SLA8", "-at", "2026-11-27T16:00"}, nil, "2026-11-30T16:00:00+01:00", "calendar: helpdesk", ""},
		{[]string{"-at", "2026-11-27T15:00:00Z", "-sla", "SLA8", "-contract"}, nil, "2026-11-30T13:00:00+01:00", "calendar: contract", "America/New_York"},
		{[]string{"-sla", "SLA24", "-contract", "-at", "2026-11-27 16:00"}, nil, "2026-12-02T16:00:00+01:00", "calendar: helpdesk", "Asia/Tokyo"},
		{[]string{"-sla", "SLA4", "-at", "2026-03-27T16:00"}, nil, "2026-03-30T12:00:00+02:00", "calendar: helpdesk", ""},
		{[]string{"-sla", "SLA8", "-at", "2026-11-27T16:00"}, []string{"HELPDESK_CLOSED_DAYS=2026-11-30"}, "2026-12-01T16:00:00+01:00", "calendar: helpdesk", ""},
	}
	for _, c := range cases {
		env := p.env(c.env...)
		if c.machineTZ != "" {
			env = append(env, "TZ="+c.machineTZ)
		}
		out := mustRun(t, env, append([]string{"deadline"}, c.args...)...)
		lines := strings.Split(out, "\n")
		if lines[0] != c.first || !strings.HasPrefix(lines[1], c.calendar) {
			t.Errorf("deadline %v (TZ=%s) = %q, want %s / %s", c.args, c.machineTZ, out, c.first, c.calendar)
		}
	}
	if r := runBin(t, p.env(), "deadline", "-sla", "SLA8", "-at", "vrijdag"); r.code != 2 {
		t.Errorf("bad -at: exit %d, want 2", r.code)
	}
}

func TestRateZoneCommand(t *testing.T) {
	p := newPeers(t)
	for at, want := range map[string]string{
		"2026-11-30T09:00": "1", "2026-11-30T16:59": "1", "2026-11-30T17:00": "2", "2026-11-30T21:00": "closed",
		"2026-11-28T11:00": "1", "2026-11-28T12:00": "2", "2026-11-29T10:00": "2", "2026-11-29T09:00": "closed",
		"2026-12-25T11:00": "2", // Christmas: Sunday hours (R9)
		"2026-12-25T09:30": "closed",
	} {
		if got := strings.TrimSpace(mustRun(t, p.env(), "ratezone", "-at", at)); got != want {
			t.Errorf("ratezone -at %s = %q, want %q", at, got, want)
		}
	}
}

// TestAcknowledgementTellsThePolicy: through the binary, the acknowledgement a customer
// receives names the deadline in Dutch (R6) and says why an urgent request on SLA24 is
// handled as normal (R12).
func TestAcknowledgementTellsThePolicy(t *testing.T) {
	p := newPeers(t)
	// The mail is dated last Friday: not a backlog to store quietly, for this test.
	env := p.env("HELPDESK_IMAP_BACKLOG_AGE=8760h")
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8", "-contract")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")
	friday := time.Date(2026, 11, 27, 16, 0, 0, 0, helpdesk.Amsterdam())
	for _, m := range []string{
		customerMail("info@bakkerijdevries.nl", "Kassa start niet op", "d1@b", "", "Zwart scherm."),
		customerMail("kassa@slagerijjansen.nl", "SPOED weegschaal", "d2@s", "", "Help."),
	} {
		if _, err := p.mem.Append("INBOX", []byte(m), friday); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, env, "serve", "-once")
	msgs, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 2)
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{}
	for _, m := range msgs {
		texts[m.To[0]] = plainText(t, m.Data)
	}
	if got := texts["info@bakkerijdevries.nl"]; !strings.Contains(got, "maandag 30 november 2026 om 13:00") {
		t.Errorf("SLA8 acknowledgement lacks the Dutch deadline:\n%s", got)
	}
	if got := texts["kassa@slagerijjansen.nl"]; !strings.Contains(got, "spoed en SLA24 gaan niet samen") ||
		!strings.Contains(got, "woensdag 2 december 2026 om 16:00") {
		t.Errorf("SLA24 acknowledgement:\n%s", got)
	}
	var tickets []map[string]any
	json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &tickets)
	if len(tickets) != 2 || tickets[0]["calendar"] != "contract" || tickets[0]["due"] != "2026-11-30T13:00:00+01:00" ||
		tickets[0]["rate_zone"] != "1" || tickets[1]["priority"] != "normal" || tickets[1]["followup"] != "email" {
		t.Errorf("ticket list = %v", tickets)
	}
}

// plainText returns the decoded text/plain part of a raw message.
func plainText(t *testing.T, raw []byte) string {
	t.Helper()
	r, err := gomail.CreateReader(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := part.Header.(*gomail.InlineHeader); ok {
			if ct, _, _ := h.ContentType(); ct == "text/plain" {
				b, _ := io.ReadAll(part.Body)
				return string(b)
			}
		}
	}
	return ""
}

// TestReleaseCommand: an email over an SLA24 limit is held (R11); `ticket release` makes it
// the ticket it would have been, and `ticket held` then lists it only with -all.
func TestReleaseCommand(t *testing.T) {
	p := newPeers(t)
	env := p.env("HELPDESK_SLA24_TICKETS_PER_MONTH=1")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Eerste vraag", "e1@s", "", "Een."))
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Tweede vraag", "e2@s", "", "Twee."))
	mustRun(t, env, "serve", "-once")
	var held []map[string]any
	json.Unmarshal([]byte(mustRun(t, env, "ticket", "held", "-json")), &held)
	if len(held) != 1 || held[0]["reason"] != "over_limit" || !strings.Contains(held[0]["detail"].(string), "1 tickets per calendar month") {
		t.Fatalf("held = %v", held)
	}
	msgs, _ := p.sink.Wait(ctxTimeout(t, 10*time.Second), 2)
	var limitText string
	for _, m := range msgs {
		if strings.Contains(headerOf(m.Data, "Subject"), "limiet van SLA24") {
			limitText = plainText(t, m.Data)
		}
	}
	if !strings.Contains(limitText, "beperkt tot 1 per kalendermaand") || !strings.Contains(limitText, "Met SLA8 gelden deze limieten niet") {
		t.Errorf("limit notice:\n%s", limitText)
	}
	if out := mustRun(t, env, "ticket", "release", "1"); !strings.Contains(out, "opened ticket #2") {
		t.Errorf("ticket release: %q", out)
	}
	if r := runBin(t, env, "ticket", "release", "1"); r.code != 1 || !strings.Contains(r.stderr, "released already") {
		t.Errorf("second release: exit %d, %q", r.code, r.stderr)
	}
	json.Unmarshal([]byte(mustRun(t, env, "ticket", "held", "-json")), &held)
	if len(held) != 0 {
		t.Errorf("held after release = %v", held)
	}
	json.Unmarshal([]byte(mustRun(t, env, "ticket", "held", "-json", "-all")), &held)
	if len(held) != 1 || held[0]["released"] != true || held[0]["ticket"] != 2.0 {
		t.Errorf("held -all = %v", held)
	}
	mustRun(t, env, "serve", "-once") // sends the released ticket's acknowledgement
	if _, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 3); err != nil {
		t.Errorf("no acknowledgement for the released ticket: %v", err)
	}
}
