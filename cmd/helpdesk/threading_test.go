package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/notify/smtpsink"
)

// Message-IDs as Gmail and Outlook write them: mixed case, and in Gmail's case with '=', '+'
// and '_' in the local part.
const (
	gmailID   = "CAF=x5KqAbZ3Yw_TeQmLp2d+Vt0rXyNw=hJk5R1oGf8sU@mail.gmail.com"
	outlookID = "AM0PR07MB1234ABCD5678EF@AM0PR07MB1234.eurprd07.prod.outlook.com"
)

// waitOutcome waits for the gateway to take in the email with the Message-ID.
func (lg *liveGateway) waitOutcome(tb testing.TB, msgID string) *desk.Outcome {
	tb.Helper()
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	for {
		select {
		case ev := <-lg.events:
			if ev.Outcome != nil && strings.EqualFold(ev.Outcome.MessageID, msgID) {
				return ev.Outcome
			}
		case <-timer.C:
			tb.Fatalf("the gateway did not take in <%s> within 60 s", msgID)
			return nil
		}
	}
}

// waitSent waits for a message the SMTP sink accepted that is the notification kind wants
// (auto: an automatic reply, the acknowledgement; else the answer) quoting the id.
func waitSent(t *testing.T, sink *smtpsink.Server, id string, auto bool) smtpsink.Message {
	t.Helper()
	ctx := ctxTimeout(t, 60*time.Second)
	for {
		msgs := sink.Messages()
		for _, m := range msgs {
			if (rawField(m.Data, "Auto-Submitted") == "auto-replied") == auto &&
				strings.Contains(strings.ToLower(rawField(m.Data, "In-Reply-To")), strings.ToLower(id)) {
				return m
			}
		}
		if _, err := sink.Wait(ctx, len(msgs)+1); err != nil {
			t.Fatalf("no notification (automatic %v) quoting <%s> reached the SMTP server: %v", auto, id, err)
		}
	}
}

// rawField is a header field's value as the bytes on the wire, unfolded (a fold is a CRLF
// before white space, which is not part of the value) and trimmed; "" when it is missing.
func rawField(raw []byte, name string) string {
	head := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		head = raw[:i+2]
	}
	for _, line := range strings.Split(strings.ReplaceAll(strings.ReplaceAll(string(head), "\r\n ", " "), "\r\n\t", "\t"), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// threadParents reads a UID THREAD answer (RFC 5256) as child -> parent; a message whose
// parent is missing from the mailbox, or a root, has parent 0.
func threadParents(threads []imapclient.ThreadData) map[uint32]uint32 {
	parents := map[uint32]uint32{}
	var walk func(d imapclient.ThreadData, parent uint32)
	walk = func(d imapclient.ThreadData, parent uint32) {
		for _, uid := range d.Chain {
			parents[uid] = parent
			parent = uid
		}
		for _, sub := range d.SubThreads {
			walk(sub, parent)
		}
	}
	for _, d := range threads {
		walk(d, 0)
	}
	return parents
}

// TestNotificationsThreadUnderCustomerEmail: the acknowledgement and the
// staff answer to a Gmail or Outlook customer quote the customer's Message-ID byte for byte,
// and Dovecot's RFC 5256 threading, the judge mail clients follow, hangs both under the
// customer's email. A customer's reply quoting the acknowledgement's id in another case still
// joins the ticket.
func TestNotificationsThreadUnderCustomerEmail(t *testing.T) {
	lg := startLiveGateway(t, "dovecot", 0, func(c *Config) {
		c.Staff = []string{"jan@infobits.example"}
		c.AuthServID = trustedMX
	})
	judge, err := lg.dovecot.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer judge.Close()
	if !judge.Caps().Has("THREAD=REFERENCES") {
		t.Fatal("Dovecot does not offer THREAD=REFERENCES")
	}

	for _, tc := range []struct{ client, id string }{{"gmail", gmailID}, {"outlook", outlookID}} {
		subject := "Kassa start niet op (" + tc.client + ")"
		question := customerMail("Piet de Vries <info@bakkerijdevries.nl>", subject, tc.id, "", "De kassa blijft zwart.")
		if err := lg.appendMail([]byte(question)); err != nil {
			t.Fatal(err)
		}
		o := lg.waitOutcome(t, tc.id)
		if o.Action != "new_ticket" || o.TicketID == 0 {
			t.Fatalf("%s: customer email became %+v, want a new ticket", tc.client, o)
		}
		ticket := o.TicketID
		ack := waitSent(t, lg.sink, tc.id, true)

		answer := customerMail("Jan Bakker <jan@infobits.example>", fmt.Sprintf("Re: [Infobits #%d] %s", ticket, subject),
			"antwoord-"+tc.client+"@infobits.example", staffAuth+"In-Reply-To: <"+tc.id+">\r\n", "Zet de kassa uit en weer aan.")
		if err := lg.appendMail([]byte(answer)); err != nil {
			t.Fatal(err)
		}
		if o := lg.waitOutcome(t, "antwoord-"+tc.client+"@infobits.example"); o.Action != "staff_answer" || o.TicketID != ticket {
			t.Fatalf("%s: staff email became %+v, want the answer on ticket %d", tc.client, o, ticket)
		}
		ans := waitSent(t, lg.sink, tc.id, false)

		for _, n := range []struct {
			what string
			m    smtpsink.Message
		}{{"acknowledgement", ack}, {"answer", ans}} {
			if len(n.m.To) != 1 || n.m.To[0] != "info@bakkerijdevries.nl" {
				t.Fatalf("%s: %s went to %v, want the customer", tc.client, n.what, n.m.To)
			}
			if got := rawField(n.m.Data, "In-Reply-To"); got != "<"+tc.id+">" {
				t.Errorf("%s: %s In-Reply-To = %q, want <%s> byte for byte", tc.client, n.what, got, tc.id)
			}
			if got := rawField(n.m.Data, "References"); !strings.Contains(got, "<"+tc.id+">") {
				t.Errorf("%s: %s References = %q, want it to hold <%s> byte for byte", tc.client, n.what, got, tc.id)
			}
		}

		// The judge: the customer's email and both notifications in one fresh mailbox.
		box := "Judge-" + tc.client
		if err := judge.Create(box, nil).Wait(); err != nil {
			t.Fatal(err)
		}
		var uids [3]uint32
		for i, raw := range [][]byte{[]byte(question), ack.Data, ans.Data} {
			uid, err := lg.dovecot.AppendRaw(box, raw, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			uids[i] = uint32(uid)
		}
		if _, err := judge.Select(box, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			t.Fatal(err)
		}
		threads, err := judge.UIDThread(&imapclient.ThreadOptions{Algorithm: imap.ThreadReferences,
			SearchCriteria: &imap.SearchCriteria{}}).Wait()
		if err != nil {
			t.Fatalf("UID THREAD REFERENCES UTF-8 ALL: %v", err)
		}
		parents := threadParents(threads)
		if parents[uids[1]] != uids[0] || parents[uids[2]] != uids[0] {
			t.Errorf("%s: Dovecot threads %+v (customer %d, acknowledgement %d, answer %d): want both notifications children of the customer's email",
				tc.client, threads, uids[0], uids[1], uids[2])
		}

		// A reply to the acknowledgement whose client changed the case of the ids it quotes.
		ackID := strings.Trim(rawField(ack.Data, "Message-Id"), "<>")
		replyID := "reply-" + tc.client + "@bakkerijdevries.nl"
		reply := customerMail("info@bakkerijdevries.nl", "Re: iets anders", replyID,
			"In-Reply-To: <"+strings.ToUpper(ackID)+">\r\nReferences: <"+strings.ToLower(tc.id)+"> <"+strings.ToUpper(ackID)+">\r\n", "Hij piept ook.")
		if err := lg.appendMail([]byte(reply)); err != nil {
			t.Fatal(err)
		}
		if o := lg.waitOutcome(t, replyID); o.Action != "reply" || o.TicketID != ticket {
			t.Errorf("%s: reply quoting <%s> became %+v, want a reply on ticket %d", tc.client, strings.ToUpper(ackID), o, ticket)
		}
	}
}
