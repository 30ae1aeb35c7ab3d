package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// outboxByStatus counts the notifications in each state, read from the file (no gateway runs).
func outboxByStatus(t *testing.T, env []string) map[string]int {
	t.Helper()
	var list []struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, env, "outbox", "list", "-json")), &list); err != nil {
		t.Fatalf("outbox list -json: %v", err)
	}
	out := map[string]int{}
	for _, n := range list {
		out[n.Status]++
	}
	return out
}

// TestStopFlushesOutbox: SIGTERM stops `serve` with exit 0 after it has sent what can be sent.
// Five questions arrive while the SMTP server is down, so their acknowledgements (R3) wait in
// the outbox, the worker backing off; the server comes back and SIGTERM follows at once: the
// stop itself delivers them. Without that flush they would wait for the next start.
func TestStopFlushesOutbox(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen", "-sla", "SLA8", "-contract")
	if err := p.sink.Stop(); err != nil {
		t.Fatal(err)
	}
	stderr, stop := startServe(t, p, env)
	for i := range 5 {
		p.deliver(t, customerMail("kassa@slagerijjansen.nl", fmt.Sprintf("Vraag %d", i), fmt.Sprintf("stop-%d@s", i), "", "Hallo"))
	}
	// Wait until all five are tickets: the gateway answers over its control socket.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var tickets []json.RawMessage
		json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &tickets)
		if len(tickets) == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tickets after 60 s, want 5\n%s", len(tickets), stderr)
		}
	}
	if n := len(p.sink.Messages()); n != 0 {
		t.Fatalf("%d messages reached a stopped SMTP server", n)
	}
	if err := p.sink.Restart(); err != nil {
		t.Fatal(err)
	}
	stop()
	if t.Failed() {
		t.FailNow()
	}
	if n := len(p.sink.Messages()); n != 5 {
		t.Errorf("after the stop the SMTP server has %d acknowledgements, want 5 (flushed by the stop)\n%s", n, stderr)
	}
	if got := outboxByStatus(t, env); got["queued"] != 0 || got["sent"] != 5 {
		t.Errorf("outbox after the stop = %v, want 5 sent, none queued", got)
	}
	for _, want := range []string{"finishing the email in hand", "outbox flushed", "stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log of the stop lacks %q:\n%s", want, stderr)
		}
	}
}

// TestStopMidBurst: SIGTERM while a burst of mail is arriving and being taken in. The gateway
// exits 0 without starting on mail that arrives after the signal; what it committed is
// acknowledged before it exits (nothing left queued), what it had not reached stays in the
// mailbox; the next run takes in exactly the rest — every email one ticket (R1), one
// acknowledgement each (R3), none twice.
func TestStopMidBurst(t *testing.T) {
	const emails = 150
	p := newPeers(t)
	env := p.env("HELPDESK_AUTOREPLY_PER_HOUR=1000")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen", "-sla", "SLA8", "-contract")
	stderr, stop := startServe(t, p, env)
	// The burst: one email every 3 ms; SIGTERM when half of it has arrived and some of that
	// has been acknowledged. The deliverer pauses (gate) from just before the signal until
	// the gateway has logged that it is stopping, then goes on: what had arrived at the signal
	// is known exactly, and the rest arrives after the gateway saw the signal, however slowly
	// a busy machine lets it handle it.
	var delivered atomic.Int32
	var gate sync.Mutex
	deliveries := make(chan error, 1)
	go func() {
		for i := range emails {
			raw := customerMail("kassa@slagerijjansen.nl", fmt.Sprintf("Vraag %03d", i), fmt.Sprintf("burst-%d@s", i), "", "Hallo")
			gate.Lock()
			_, err := p.mem.Append("INBOX", []byte(raw), time.Time{})
			if err == nil {
				delivered.Add(1)
			}
			gate.Unlock()
			if err != nil {
				deliveries <- err
				return
			}
			time.Sleep(3 * time.Millisecond)
		}
		deliveries <- nil
	}()
	if _, err := p.sink.Wait(ctxTimeout(t, 60*time.Second), 1); err != nil {
		t.Fatalf("no acknowledgement: %v\n%s", err, stderr)
	}
	for delivered.Load() < emails/2 {
		select {
		case err := <-deliveries:
			t.Fatalf("deliver: %v", err) // ended early: an error (nil only after all 150)
		case <-time.After(time.Millisecond):
		}
	}
	gate.Lock()
	atSignal := int(delivered.Load())
	start := time.Now()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		stop()
	}()
	waitOutput(t, stderr, regexp.MustCompile(`"msg":"stopping: finishing the email in hand"`), nil)
	gate.Unlock()
	<-stopped
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
	if err := <-deliveries; err != nil {
		t.Fatalf("deliver: %v", err)
	}

	var tickets []struct {
		Subject string `json:"subject"`
	}
	json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &tickets)
	acks := len(p.sink.Messages())
	st := outboxByStatus(t, env)
	t.Logf("at the stop: %d of %d emails taken in, %d acknowledgements sent, outbox %v", len(tickets), emails, acks, st)
	if len(tickets) > atSignal {
		t.Errorf("at the stop: %d emails taken in, but only %d had arrived when SIGTERM was sent: the gateway started on mail after the signal",
			len(tickets), atSignal)
	}
	if st["queued"] != 0 || acks != len(tickets) {
		t.Errorf("at the stop: %d tickets but %d acknowledgements sent and %d queued; want every committed email acknowledged before the exit",
			len(tickets), acks, st["queued"])
	}

	mustRun(t, env, "serve", "-once")
	tickets = nil
	json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &tickets)
	seen := map[string]int{}
	for _, tk := range tickets {
		seen[tk.Subject]++
	}
	for i := range emails {
		if s := fmt.Sprintf("Vraag %03d", i); seen[s] != 1 {
			t.Errorf("%q is in %d tickets after the restart, want 1", s, seen[s])
		}
	}
	bySubject := map[string]int{}
	for _, m := range p.sink.Messages() {
		bySubject[headerOf(m.Data, "Subject")]++
	}
	if got := len(p.sink.Messages()); got != emails {
		t.Errorf("%d acknowledgements in all, want %d (one per email)", got, emails)
	}
	for s, n := range bySubject {
		if n > 1 {
			t.Errorf("acknowledgement %q sent %d times", s, n)
		}
	}
}

// TestStopWithSMTPDownSaysWhatStaysQueued: SIGTERM while the SMTP server is down. The stop
// cannot flush the outbox; its warning says how many notifications stay queued and that they
// go out at the next start (outbox list says the same) — and the next start sends exactly those.
func TestStopWithSMTPDownSaysWhatStaysQueued(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen", "-sla", "SLA8", "-contract")
	if err := p.sink.Stop(); err != nil {
		t.Fatal(err)
	}
	stderr, stop := startServe(t, p, env)
	for i := range 3 {
		p.deliver(t, customerMail("kassa@slagerijjansen.nl", fmt.Sprintf("Vraag %d", i), fmt.Sprintf("down-%d@s", i), "", "Hallo"))
	}
	waitFor(t, "three tickets", func() (bool, string) {
		var tickets []json.RawMessage
		json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &tickets)
		return len(tickets) == 3, stderr.String()
	})
	stop()
	if !regexp.MustCompile(`"level":"WARN","msg":"outbox not flushed: 3 notification\(s\) stay queued and go out at the next start","queued":3,"sent":0,"err":"[^"]*connection refused`).MatchString(stderr.String()) {
		t.Errorf("the stop does not say that three notifications stay queued:\n%s", stderr)
	}
	if got := outboxByStatus(t, env); got["queued"] != 3 {
		t.Errorf("outbox after the stop = %v, want 3 queued", got)
	}
	// With no gateway running, the one that was tried says when it goes: at the next start.
	if text := mustRun(t, env, "outbox", "list"); !regexp.MustCompile(`(?m)^1 +queued +ack +#1 +kassa@slagerijjansen\.nl +[1-9][0-9]* +retrying at the next start +smtp connection failed: connect to SMTP server \S+ without TLS: .*connection refused$`).MatchString(text) {
		t.Errorf("outbox list with no gateway running:\n%s", text)
	}
	if err := p.sink.Restart(); err != nil {
		t.Fatal(err)
	}
	mustRun(t, env, "serve", "-once")
	if got := outboxByStatus(t, env); got["sent"] != 3 || got["queued"] != 0 {
		t.Errorf("outbox after the next start = %v, want 3 sent", got)
	}
}
