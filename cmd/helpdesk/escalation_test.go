package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/notify/smtpsink"
)

// amsAt is a moment in Amsterdam, "2006-01-02 15:04:05".
func amsAt(s string) time.Time {
	t, err := time.ParseInLocation(time.DateTime, s, helpdesk.Amsterdam())
	if err != nil {
		panic(err)
	}
	return t
}

// escalationsTo are the warnings and breach notices the SMTP peer received for rcpt, by
// subject.
func escalationsTo(msgs []smtpsink.Message, rcpt string) []string {
	var out []string
	for _, m := range sinkTo(msgs, rcpt) {
		if s := headerOf(m.Data, "Subject"); strings.Contains(s, "Deadline") {
			out = append(out, s)
		}
	}
	return out
}

// waitChecked moves the gateway's clock to at and waits until serve has checked the due
// queue at that moment (its debug log says so): what it would send by then is queued.
func waitChecked(t *testing.T, clk *stepClock, at time.Time, out *syncBuffer, exited <-chan error) {
	t.Helper()
	clk.Set(at)
	waitOutput(t, out, regexp.MustCompile(`"msg":"due queue checked","at":"`+regexp.QuoteMeta(at.Format(time.RFC3339Nano))+`"`), exited)
}

// TestEscalation: through serve with a real IMAP and SMTP peer and the gateway's clock moved
// by the test, a ticket awaiting its first response warns staff_list once at the working
// instant one hour (SLA4: 30 minutes) before its deadline on its own calendar — nothing at
// the weekend for the opening-hours calendar —, sends one breach notice to staff_list and
// the assignee when the deadline has passed, never for a ticket answered in time, and after a
// restart sends only what was not sent yet: the breach that fell due while it was down, once.
func TestEscalation(t *testing.T) {
	p := newPeers(t)
	env := p.env("HELPDESK_STAFF_LIST="+staffList, "HELPDESK_LOG_LEVEL=debug", "HELPDESK_DIGEST_TIME=off",
		"HELPDESK_STAFF=jan@infobits.example,piet@infobits.example")
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen", "-sla", "SLA8", "-contract")
	mustRun(t, env, "customer", "add", "-email", "info@cafedehoek.nl", "-name", "Cafe de Hoek", "-sla", "SLA4", "-contract")

	// Friday 27 November 2026, 16:00: three questions arrive.
	friday := amsAt("2026-11-27 16:00:00")
	for _, m := range []string{
		customerMail("info@bakkerijdevries.nl", "Bonprinter print niet", "e1@bakkerij", "", "De bonprinter geeft geen bonnen."),
		customerMail("kassa@slagerijjansen.nl", "SPOED weegschaal", "e2@slagerij", "", "De weegschaal telt niet mee."),
		customerMail("info@cafedehoek.nl", "Pinautomaat", "e3@hoek", "", "De pin doet het niet."),
	} {
		if _, err := p.mem.Append("INBOX", []byte(m), friday); err != nil {
			t.Fatal(err)
		}
	}
	clk := &stepClock{t: friday.Add(30 * time.Second)}
	out := &syncBuffer{}
	exited, stop := serveWithClock(t, env, out, clk.Now)
	waitSink(t, p, 6) // three acknowledgements, three staff notices

	// Ticket 1 (SLA8, opening hours) is due Monday 16:00, ticket 2 (SLA8 with a contract,
	// urgent) Monday 13:00, ticket 3 (SLA4, contract) Saturday 12:00 — but it is answered now.
	show := func(id string) map[string]any {
		var v map[string]any
		if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "show", "-json", id)), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for id, want := range map[string]string{"1": "2026-11-30T16:00:00+01:00", "2": "2026-11-30T13:00:00+01:00", "3": "2026-11-28T12:00:00+01:00"} {
		if got := show(id)["due"]; got != want {
			t.Fatalf("ticket %s due %v, want %s", id, got, want)
		}
	}
	if _, err := p.mem.Append("INBOX", []byte(staffAuth+staffMailWith(3, "")), friday.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	waitSink(t, p, 7) // the answer to Cafe de Hoek
	mustRun(t, env, "ticket", "assign", "1", "piet@infobits.example")

	// The weekend: Saturday counts for the contract calendar only, and nothing is near yet.
	for _, at := range []string{"2026-11-27 17:00:00", "2026-11-28 10:30:00", "2026-11-28 11:30:00", "2026-11-29 12:00:00", "2026-11-30 11:59:59"} {
		waitChecked(t, clk, amsAt(at), out, exited)
	}
	if got := escalationsTo(p.sink.Messages(), staffList); len(got) != 0 {
		t.Fatalf("escalations before Monday 12:00: %q", got)
	}

	// Monday 12:00: one working hour before ticket 2's deadline — its warning, once.
	waitChecked(t, clk, amsAt("2026-11-30 12:00:00"), out, exited)
	waitChecked(t, clk, amsAt("2026-11-30 12:30:00"), out, exited)
	msgs := waitSink(t, p, 8)
	want := []string{"[Infobits #2] Deadline nadert (SPOED): SPOED weegschaal (Slagerij Jansen)"}
	if got := escalationsTo(msgs, staffList); !equalStrings(got, want) {
		t.Fatalf("escalations at Monday 12:30 = %q, want %q", got, want)
	}
	warning := sinkTo(msgs, staffList)[len(sinkTo(msgs, staffList))-1]
	if text := plainText(t, warning.Data); !strings.Contains(text, "maandag 30 november 2026 om 13:00") || !strings.Contains(text, "De weegschaal telt niet mee.") {
		t.Errorf("the warning lacks the deadline or the question:\n%s", text)
	}
	if !strings.Contains(headerOf(warning.Data, "In-Reply-To"), "e2@slagerij") {
		t.Errorf("the warning is not threaded under the customer's email: In-Reply-To %q", headerOf(warning.Data, "In-Reply-To"))
	}

	// At the deadline itself an answer is still in time; a second later it has passed.
	waitChecked(t, clk, amsAt("2026-11-30 13:00:00"), out, exited)
	if got := escalationsTo(p.sink.Messages(), staffList); len(got) != 1 {
		t.Fatalf("escalations at the deadline = %q, want the warning only", got)
	}
	waitChecked(t, clk, amsAt("2026-11-30 13:00:01"), out, exited)
	msgs = waitSink(t, p, 9)
	want = append(want, "[Infobits #2] Deadline verstreken (SPOED): SPOED weegschaal (Slagerij Jansen)")
	if got := escalationsTo(msgs, staffList); !equalStrings(got, want) {
		t.Fatalf("escalations after Monday 13:00 = %q, want %q", got, want)
	}

	// A staff member answers by replying to the breach notice: the customer gets the answer.
	breach := sinkTo(msgs, staffList)[len(sinkTo(msgs, staffList))-1]
	reply := staffAuth + "From: jan@infobits.example\r\nTo: support@infobits.example\r\nSubject: Re: " + headerOf(breach.Data, "Subject") +
		"\r\nIn-Reply-To: " + headerOf(breach.Data, "Message-ID") + "\r\nMessage-ID: <late@infobits.example>\r\nContent-Type: text/plain\r\n\r\nDe weegschaal is bijgewerkt.\r\n"
	if _, err := p.mem.Append("INBOX", []byte(reply), amsAt("2026-11-30 13:10:00")); err != nil {
		t.Fatal(err)
	}
	msgs = waitSink(t, p, 10)
	if got := sinkTo(msgs, "kassa@slagerijjansen.nl"); !strings.Contains(plainText(t, got[len(got)-1].Data), "De weegschaal is bijgewerkt.") {
		t.Errorf("the reply to the breach notice did not reach the customer")
	}

	// `ticket show` lists the notices as notifications of the ticket.
	var kinds []string
	for _, n := range show("2")["notifications"].([]any) {
		kinds = append(kinds, n.(map[string]any)["kind"].(string))
	}
	if !strings.Contains(strings.Join(kinds, ","), "staff_warning,staff_breach") {
		t.Errorf("ticket show 2: notifications %v, want the warning and the breach", kinds)
	}

	// Down from 13:30 until 16:30: ticket 1's warning (15:00) and deadline (16:00) pass
	// meanwhile. At start the gateway sends its breach — once, to staff_list and the
	// assignee, without the stale warning — and nothing again for ticket 2.
	waitChecked(t, clk, amsAt("2026-11-30 13:30:00"), out, exited)
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, out.String())
	}
	clk.Set(amsAt("2026-11-30 16:30:00"))
	out2 := &syncBuffer{}
	exited2, stop2 := serveWithClock(t, env, out2, clk.Now)
	msgs = waitSink(t, p, 12)
	want = append(want, "[Infobits #1] Deadline verstreken: Bonprinter print niet (Bakkerij de Vries)")
	if got := escalationsTo(msgs, staffList); !equalStrings(got, want) {
		t.Errorf("escalations after the restart = %q, want %q", got, want)
	}
	if got := escalationsTo(msgs, "piet@infobits.example"); !equalStrings(got, want[2:]) {
		t.Errorf("the assignee received %q, want the breach of ticket 1", got)
	}
	waitChecked(t, clk, amsAt("2026-11-30 17:00:00"), out2, exited2)
	stop2()

	// And a third start sends nothing more.
	clk.Set(amsAt("2026-12-01 09:00:00"))
	out3 := &syncBuffer{}
	exited3, stop3 := serveWithClock(t, env, out3, clk.Now)
	waitChecked(t, clk, amsAt("2026-12-01 09:05:00"), out3, exited3)
	stop3()
	if got := p.sink.Messages(); len(got) != 12 {
		t.Errorf("after a third start %d messages, want still 12 (no notice twice)", len(got))
	}
	if got := escalationsTo(p.sink.Messages(), "info@cafedehoek.nl"); len(got) != 0 || strings.Contains(strings.Join(escalationsTo(p.sink.Messages(), staffList), ""), "#3]") {
		t.Errorf("the ticket answered in time escalated")
	}
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}
