package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestConfiguredSubjectWords: the configurable subject markers of R12 and R13,
// through the binary's configuration. urgent_words set in the environment and callback_words
// set in the config file replace the defaults (SPOED, URGENT; terugbellen, anydesk): a subject
// with a configured word, in any case, is urgent or a callback request — on the ticket and in
// the acknowledgement the customer receives — and one with a default word no longer is. The
// environment wins over the file (the file's urgent word is not used).
func TestConfiguredSubjectWords(t *testing.T) {
	p := newPeers(t)
	file := filepath.Join(p.dir, "helpdesk.conf")
	if err := os.WriteFile(file, []byte("urgent_words = haast\ncallback_words = belmij, bellen\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := p.env("HELPDESK_CONFIG="+file, "HELPDESK_URGENT_WORDS=dringend")
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	cases := []struct {
		subject, msgID     string
		priority, followup string
	}{
		{"Dringend: kassa start niet op", "w1@b", "urgent", "email"},
		{"SPOED printer kapot", "w2@b", "normal", "email"},
		{"Haast: scanner", "w3@b", "normal", "email"},
		{"Graag BELMIJ over de lade", "w4@b", "normal", "callback"},
		{"Terugbellen over de pinautomaat", "w5@b", "normal", "email"},
		{"anydesk sessie", "w6@b", "normal", "email"},
	}
	for _, c := range cases {
		p.deliver(t, customerMail("info@bakkerijdevries.nl", c.subject, c.msgID, "", "Help."))
	}
	mustRun(t, env, "serve", "-once")

	var tickets []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &tickets); err != nil {
		t.Fatal(err)
	}
	bySubject := map[string]map[string]any{}
	for _, tk := range tickets {
		bySubject[tk["subject"].(string)] = tk
	}
	msgs, err := p.sink.Wait(ctxTimeout(t, 10*time.Second), len(cases))
	if err != nil {
		t.Fatalf("acknowledgements: %v", err)
	}
	acks := map[string]string{} // by the Message-ID of the email acknowledged
	for _, m := range msgs {
		acks[headerOf(m.Data, "In-Reply-To")] = plainText(t, m.Data)
	}
	for _, c := range cases {
		tk := bySubject[c.subject]
		if tk == nil {
			t.Errorf("no ticket for %q", c.subject)
			continue
		}
		if tk["priority"] != c.priority || tk["followup"] != c.followup {
			t.Errorf("%q: priority %v, followup %v; want %s, %s", c.subject, tk["priority"], tk["followup"], c.priority, c.followup)
		}
		ack := acks["<"+c.msgID+">"]
		if ack == "" {
			t.Errorf("%q: no acknowledgement", c.subject)
			continue
		}
		if urgent := strings.Contains(ack, "U heeft om spoed gevraagd"); urgent != (c.priority == "urgent") {
			t.Errorf("%q: acknowledgement tells of urgent help: %v, want %v:\n%s", c.subject, urgent, c.priority == "urgent", ack)
		}
		if callback := strings.Contains(ack, "Uw terugbelverzoek is genoteerd"); callback != (c.followup == "callback") {
			t.Errorf("%q: acknowledgement tells of a callback: %v, want %v:\n%s", c.subject, callback, c.followup == "callback", ack)
		}
	}
}

// requireAuthWarning is the start-up warning of serve with require_auth = false.
var requireAuthWarning = regexp.MustCompile(`^require_auth = false: staff email is applied on its From address alone`)

// textLogLine is a line of slog's text handler: time, level and msg first.
var textLogLine = regexp.MustCompile(`^time=\S+ level=(DEBUG|INFO|WARN|ERROR) msg=`)

// checkTextLog fails unless every line of log is a text-handler line, none JSON, and the email
// was logged with its outcome.
func checkTextLog(t *testing.T, log string) {
	t.Helper()
	emails := 0
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !textLogLine.MatchString(line) || json.Valid([]byte(line)) {
			t.Errorf("not a text log line: %q", line)
		}
		if strings.Contains(line, " msg=email ") {
			emails++
			if !strings.Contains(line, " outcome=new_ticket") || !strings.Contains(line, " ticket=1") {
				t.Errorf("email line without its outcome and ticket: %q", line)
			}
		}
	}
	if emails != 1 {
		t.Errorf("%d email lines, want 1:\n%s", emails, log)
	}
}

// withoutLogFormat is env with no HELPDESK_LOG_FORMAT: the default, auto.
func withoutLogFormat(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HELPDESK_LOG_FORMAT=") {
			out = append(out, kv)
		}
	}
	return out
}
