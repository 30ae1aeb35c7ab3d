package main

import (
	"encoding/json"
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
