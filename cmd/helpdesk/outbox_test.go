package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/infobits/helpdesk/notify/smtpsink"
)

// TestOutboxFailedAndRetry: a 5xx is recorded as failed on the ticket and in `helpdesk
// outbox`; after the operator fixed the cause, `outbox retry` sends it.
func TestOutboxFailedAndRetry(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Printer", "pr@s", "", "Kapot."))
	p.sink.FailNext(smtpsink.StageRcpt, 550, smtp.EnhancedCode{5, 1, 1}, "User unknown", 1)
	mustRun(t, env, "serve", "-once")
	var list []map[string]any
	json.Unmarshal([]byte(mustRun(t, env, "outbox", "list", "-json", "-status", "failed")), &list)
	if len(list) != 1 || list[0]["ticket"] != 1.0 || !strings.Contains(list[0]["error"].(string), "550") {
		t.Fatalf("outbox list -status failed = %v", list)
	}
	var show map[string]any
	json.Unmarshal([]byte(mustRun(t, env, "ticket", "show", "1", "-json")), &show)
	if n := show["notifications"].([]any)[0].(map[string]any); n["status"] != "failed" {
		t.Errorf("ticket show notification = %v", n)
	}
	if out := mustRun(t, env, "outbox", "retry", "-failed"); !strings.Contains(out, "1 notification(s) queued again") {
		t.Errorf("outbox retry = %q", out)
	}
	mustRun(t, env, "serve", "-once")
	if _, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 1); err != nil {
		t.Fatalf("retried notification not sent: %v", err)
	}
	json.Unmarshal([]byte(mustRun(t, env, "outbox", "list", "-json")), &list)
	if len(list) != 1 || list[0]["status"] != "sent" {
		t.Errorf("outbox after retry = %v", list)
	}
	if r := runBin(t, env, "outbox", "retry", "1"); r.code != 1 || !strings.Contains(r.stderr, "sent already") {
		t.Errorf("retry of a sent notification: exit %d, %q", r.code, r.stderr)
	}
}

// TestOutboxRetryLiftsBounceSuppression: an acknowledgement bounced for good (the customer's
// mailbox did not exist yet), which suspends automatic mail to the address (bounce_suppress).
// The operator fixes the mailbox and retries the notification: the retry is delivered, and the
// customer's next question is acknowledged again — it was silently not, for a week, before.
func TestOutboxRetryLiftsBounceSuppression(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Printer", "pr@s", "", "Kapot."))
	mustRun(t, env, "serve", "-once")
	msgs, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	ackID := strings.Trim(headerOf(msgs[0].Data, "Message-Id"), "<>")
	p.deliver(t, "From: Mail Delivery System <MAILER-DAEMON@mx.slagerijjansen.nl>\r\nTo: support@infobits.example\r\n"+
		"Subject: Undelivered Mail Returned to Sender\r\nDate: Fri, 27 Nov 2026 16:05:00 +0100\r\nMessage-ID: <bounce-1@mx.slagerijjansen.nl>\r\n"+
		"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"+
		"--b\r\nContent-Type: text/plain\r\n\r\n<kassa@slagerijjansen.nl>: host said: 550 5.1.1 User unknown\r\n"+
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.slagerijjansen.nl\r\n\r\n"+
		"Final-Recipient: rfc822; kassa@slagerijjansen.nl\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"+
		"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Infobits Helpdesk <support@infobits.example>\r\nTo: kassa@slagerijjansen.nl\r\n"+
		"Subject: [Infobits #1] Ontvangen: Printer\r\nMessage-Id: <"+ackID+">\r\n\r\n--b--\r\n")
	mustRun(t, env, "serve", "-once")
	var list []map[string]any
	json.Unmarshal([]byte(mustRun(t, env, "outbox", "list", "-json", "-status", "failed")), &list)
	if len(list) != 1 || !strings.Contains(list[0]["error"].(string), "bounced") {
		t.Fatalf("outbox list -status failed = %v, want the bounced acknowledgement", list)
	}

	// The report is on the ticket's thread as what it is, not as the customer's message.
	if show := mustRun(t, env, "ticket", "show", "1"); !strings.Contains(show, "\n[2] delivery report (not from the customer) Mail Delivery System <mailer-daemon@mx.slagerijjansen.nl>") {
		t.Errorf("ticket show does not label the delivery report:\n%s", show)
	}

	// Why the customer's next question would get no acknowledgement, and what lifts it.
	if show := mustRun(t, env, "customer", "show", "kassa@slagerijjansen.nl"); !regexp.MustCompile(`(?m)^bounced +kassa@slagerijjansen\.nl: no automatic mail \(acknowledgements, notices, password links\) until \d{4}-\d\d-\d\d \d\d:\d\d, after a notification to it bounced; once the mailbox works: helpdesk outbox retry 1 \(sends it again\), or helpdesk customer unbounce kassa@slagerijjansen\.nl$`).MatchString(show) {
		t.Errorf("customer show does not say that automatic mail is suspended:\n%s", show)
	}

	out := mustRun(t, env, "outbox", "retry", "1")
	if want := "1 notification(s) queued again\nautomatic mail to kassa@slagerijjansen.nl is no longer suspended (it had bounced; bounce_suppress)\n"; out != want {
		t.Errorf("outbox retry = %q, want %q", out, want)
	}
	if show := mustRun(t, env, "customer", "show", "kassa@slagerijjansen.nl"); strings.Contains(show, "bounced") {
		t.Errorf("customer show after the retry still says bounced:\n%s", show)
	}
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Weegschaal", "wg@s", "", "Geeft niets door."))
	mustRun(t, env, "serve", "-once")
	msgs, err = p.sink.Wait(ctxTimeout(t, 10*time.Second), 3)
	if err != nil {
		t.Fatalf("after the retry the sink got %d message(s), want the retried acknowledgement and the next one: %v", len(msgs), err)
	}
	if s := headerOf(msgs[2].Data, "Subject"); !strings.Contains(s, "[Infobits #2]") {
		t.Errorf("third message %q, want the acknowledgement of ticket 2", s)
	}
	// A second retry of a notification that did not bounce says nothing about suspensions.
	if r := runBin(t, env, "outbox", "retry", "1"); r.code != 1 || strings.Contains(r.stdout, "suspended") {
		t.Errorf("retry of a sent notification: exit %d, %q", r.code, r.stdout)
	}
}
