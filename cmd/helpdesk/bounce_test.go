package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// bounceReport is the delivery report (RFC 3464) of a mail server that has no mailbox
// kassa@slagerijjansen.nl, about the notification with the Message-ID msgID.
func bounceReport(n int, msgID string) string {
	return "From: Mail Delivery System <MAILER-DAEMON@mx.slagerijjansen.nl>\r\nTo: support@infobits.example\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\nDate: Fri, 27 Nov 2026 16:05:00 +0100\r\nMessage-ID: <bounce-" + strings.Repeat("x", n) + "@mx.slagerijjansen.nl>\r\n" +
		"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\n<kassa@slagerijjansen.nl>: host said: 550 5.1.1 User unknown\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.slagerijjansen.nl\r\n\r\n" +
		"Final-Recipient: rfc822; kassa@slagerijjansen.nl\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n" +
		"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Infobits Helpdesk <support@infobits.example>\r\nTo: kassa@slagerijjansen.nl\r\n" +
		"Subject: [Infobits #1] Ontvangen: Printer\r\nMessage-Id: <" + msgID + ">\r\n\r\n--b--\r\n"
}

var bouncedLine = regexp.MustCompile(`(?m)^bounced +kassa@slagerijjansen\.nl: no automatic mail .*$`)

// TestCustomerMailLiftsBounceSuppression: the acknowledgement bounced for good, so automatic
// mail to the address is suspended (bounce_suppress, a week). An out-of-office reply from the
// address does not end that; the customer's next question, written by a person, does — they
// evidently read the mailbox again: it is acknowledged, the log says so, and customer show no
// longer says bounced. Before, the question went unacknowledged for the rest of the week.
func TestCustomerMailLiftsBounceSuppression(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Printer", "pr@s", "", "Kapot."))
	mustRun(t, env, "serve", "-once")
	msgs, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	p.deliver(t, bounceReport(1, strings.Trim(headerOf(msgs[0].Data, "Message-Id"), "<>")))
	mustRun(t, env, "serve", "-once")
	if show := mustRun(t, env, "customer", "show", "kassa@slagerijjansen.nl"); !bouncedLine.MatchString(show) {
		t.Fatalf("customer show does not say bounced:\n%s", show)
	}

	// Machine mail from the address (an out-of-office reply to the ticket) proves nothing.
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Re: [Infobits #1] Ontvangen: Printer", "ooo@s", "Auto-Submitted: auto-replied\r\n", "Ik ben afwezig."))
	r := runBin(t, env, "serve", "-once")
	if strings.Contains(r.stderr, "no longer suspended") {
		t.Errorf("an automatic reply ended the suspension:\n%s", r.stderr)
	}
	if show := mustRun(t, env, "customer", "show", "kassa@slagerijjansen.nl"); !bouncedLine.MatchString(show) {
		t.Errorf("after an automatic reply customer show no longer says bounced:\n%s", show)
	}

	// The customer's own new question: acknowledged, and the suspension is over.
	p.deliver(t, customerMail("Kassa Jansen <kassa@slagerijjansen.nl>", "Weegschaal", "wg@s", "", "Geeft niets door."))
	r = runBin(t, env, "serve", "-once")
	if r.code != 0 {
		t.Fatalf("serve -once: exit %d\n%s", r.code, r.stderr)
	}
	if !regexp.MustCompile(`"msg":"automatic mail no longer suspended".*"address":"kassa@slagerijjansen\.nl","reason":"the customer wrote from the address again[^"]*"`).MatchString(r.stderr) {
		t.Errorf("the log does not say the suspension ended:\n%s", r.stderr)
	}
	msgs, err = p.sink.Wait(ctxTimeout(t, 10*time.Second), 2)
	if err != nil {
		t.Fatalf("the new question was not acknowledged: %v", err)
	}
	if s := headerOf(msgs[1].Data, "Subject"); !strings.Contains(s, "[Infobits #2]") {
		t.Errorf("second message %q, want the acknowledgement of ticket 2", s)
	}
	if show := mustRun(t, env, "customer", "show", "kassa@slagerijjansen.nl"); strings.Contains(show, "bounced") {
		t.Errorf("customer show still says bounced:\n%s", show)
	}
}

// TestCustomerUnbounceWhileServing: the customer phoned, their mailbox works again; the operator
// ends the suspension with `customer unbounce ADDR` — without sending the old acknowledgement
// again, and also when none is left to retry (retried already, a restored backup) — run
// against a gateway that is serving (the control socket). A password link asked for by email stays withheld while the address is suspended
// and is sent once the operator lifted it; customer show names the command.
func TestCustomerUnbounceWhileServing(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")
	stderr, _ := startServe(t, p, env)
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Printer", "pr@s", "", "Kapot."))
	msgs, err := p.sink.Wait(ctxTimeout(t, 60*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	p.deliver(t, bounceReport(1, strings.Trim(headerOf(msgs[0].Data, "Message-Id"), "<>")))
	want := regexp.MustCompile(`(?m)^bounced +kassa@slagerijjansen\.nl: no automatic mail \(acknowledgements, notices, password links\) until \d{4}-\d\d-\d\d \d\d:\d\d, after a notification to it bounced; once the mailbox works: helpdesk outbox retry 1 \(sends it again\), or helpdesk customer unbounce kassa@slagerijjansen\.nl$`)
	waitFor(t, "customer show says bounced", func() (bool, string) {
		show := mustRun(t, env, "customer", "show", "kassa@slagerijjansen.nl")
		return want.MatchString(show), show
	})

	// A password link asked for by email is withheld while the address is suspended.
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Wachtwoord vergeten", "pw1@s", "", "Graag een link."))
	waitFor(t, "the first password request is held", func() (bool, string) {
		return strings.Contains(stderr.String(), `"message_id":"pw1@s"`), stderr.String()
	})
	if !regexp.MustCompile(`"message_id":"pw1@s".*"not_sent":\["[^"]*bounced`).MatchString(stderr.String()) {
		t.Errorf("the withheld password link is not explained as bounced:\n%s", stderr.String())
	}

	out := mustRun(t, env, "customer", "unbounce", "kassa@slagerijjansen.nl")
	if !regexp.MustCompile(`^automatic mail to kassa@slagerijjansen\.nl is no longer suspended \(it had bounced; it was suspended until \d{4}-\d\d-\d\d \d\d:\d\d\)\n$`).MatchString(out) {
		t.Errorf("customer unbounce = %q", out)
	}
	if !regexp.MustCompile(`"msg":"automatic mail no longer suspended","address":"kassa@slagerijjansen\.nl","reason":"the operator ended it \(customer unbounce\)"`).MatchString(stderr.String()) {
		t.Errorf("the gateway's log does not say the operator ended the suspension:\n%s", stderr.String())
	}
	if show := mustRun(t, env, "customer", "show", "kassa@slagerijjansen.nl"); strings.Contains(show, "bounced") {
		t.Errorf("customer show after unbounce still says bounced:\n%s", show)
	}
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Wachtwoord vergeten", "pw2@s", "", "Nog een keer graag."))
	msgs, err = p.sink.Wait(ctxTimeout(t, 60*time.Second), 2)
	if err != nil {
		t.Fatalf("no password link after customer unbounce: %v\n%s", err, stderr.String())
	}
	if to := headerOf(msgs[1].Data, "To"); !strings.Contains(to, "kassa@slagerijjansen.nl") {
		t.Errorf("second message to %q, want the password link to kassa@", to)
	}

	if out := mustRun(t, env, "customer", "unbounce", "KASSA@slagerijjansen.nl"); out != "automatic mail to kassa@slagerijjansen.nl is not suspended: nothing to do\n" {
		t.Errorf("second customer unbounce = %q", out)
	}
	if r := runBin(t, env, "customer", "unbounce", "niemand@example.nl"); r.code != 1 || !strings.Contains(r.stderr, "no customer has the address niemand@example.nl") {
		t.Errorf("customer unbounce of an unknown address: exit %d, %q", r.code, r.stderr)
	}
}

// waitFor polls check until it holds, for at most a minute (a busy machine is slow).
func waitFor(t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var ok bool
		if ok, last = check(); ok {
			return
		}
	}
	t.Fatalf("%s: not within a minute; last:\n%s", what, last)
}
