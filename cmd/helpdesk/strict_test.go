package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDuplicateSubjectThroughBinary: a duplicate once-only field (RFC 5322 §3.6) end to end — a staff member's genuine
// email ("Lunch vrijdag?", the trusted server's DMARC pass for the staff domain) with
// "Subject: [Infobits #1]" added on top answered the butcher's ticket. Through the real binary
// and SMTP peer: the butcher gets nothing but their acknowledgement, their ticket stays open,
// the email is held as duplicate_header (ticket held -reason duplicate_header lists it), the
// staff list is told what it is and how to release it, and a release reads the signed subject,
// which names no ticket, so it is refused.
func TestDuplicateSubjectThroughBinary(t *testing.T) {
	p := newPeers(t)
	env := p.env("HELPDESK_STAFF_LIST=" + staffList)
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Weegschaal", "w1@slagerij", "", "De weegschaal telt niet."))
	mustRun(t, env, "serve", "-once")
	waitSink(t, p, 2) // the acknowledgement and the staff notice

	p.deliver(t, "Authentication-Results: "+trustedMX+"; dkim=pass header.d=infobits.example; dmarc=pass header.from=infobits.example\r\n"+
		"Subject: [Infobits #1]\r\n"+
		"From: Jan <jan@infobits.example>\r\nTo: collega@infobits.example\r\nSubject: Lunch vrijdag?\r\n"+
		"Date: Fri, 27 Nov 2026 12:00:00 +0100\r\nMessage-ID: <lunch@infobits.example>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n#close\r\nZin in lunch vrijdag? Ik trakteer.\r\n")
	mustRun(t, env, "serve", "-once")
	msgs := waitSink(t, p, 3) // + the held notice
	if got := sinkTo(msgs, "kassa@slagerijjansen.nl"); len(got) != 1 {
		t.Errorf("the butcher got %d emails, want only the acknowledgement", len(got))
	}
	var tickets []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &tickets); err != nil {
		t.Fatal(err)
	}
	if len(tickets) != 1 || tickets[0]["status"] != "open" {
		t.Fatalf("tickets = %v, want ticket 1 still open", tickets)
	}
	hs := heldList(t, env, "-reason", "duplicate_header")
	if len(hs) != 1 || !strings.Contains(hs[0]["detail"].(string), "2 Subject fields") {
		t.Fatalf("ticket held -reason duplicate_header = %v, want the lunch email", hs)
	}
	id := jsonText(int(hs[0]["id"].(float64)))
	var notice string
	for _, m := range sinkTo(msgs, staffList) {
		if strings.Contains(headerOf(m.Data, "Subject"), "vastgehouden") {
			notice, _ = receivedFiles(t, m.Data)
		}
	}
	for _, want := range []string{"[" + id + "] van jan@infobits.example", "kopregel die maar één keer mag voorkomen", "helpdesk ticket release " + id} {
		if !strings.Contains(notice, want) {
			t.Errorf("held notice lacks %q:\n%s", want, notice)
		}
	}

	r := runBin(t, env, "ticket", "release", id, "-as-staff")
	if r.code != 1 || !strings.Contains(r.stderr, "staff_no_ticket") {
		t.Errorf("release: exit %d, %q; want refused, the signed subject names no ticket", r.code, r.stderr)
	}
	mustRun(t, env, "serve", "-once")
	if got := sinkTo(p.sink.Messages(), "kassa@slagerijjansen.nl"); len(got) != 1 {
		t.Errorf("the butcher got %d emails after the release, want only the acknowledgement", len(got))
	}
}
