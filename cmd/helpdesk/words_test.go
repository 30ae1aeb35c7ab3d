package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestConfiguredSubjectWords: issue 3, the configurable subject markers of R12 and R13,
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

// TestServeWarnsWithoutRequireAuth: issue 4, staff by email — with HELPDESK_REQUIRE_AUTH=false
// (and staff configured) serve logs a warning at start-up, before the first email, that staff
// email is applied on a forgeable From address; with the default (require_auth = true and an
// authserv_id) it does not. Staff email is how tickets are answered (R14), so the operator must
// see that anyone could answer as staff.
func TestServeWarnsWithoutRequireAuth(t *testing.T) {
	p := newPeers(t)
	mustRun(t, p.env(), "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Kassa start niet op", "ra1@b", "", "Help."))

	warnings := func(t *testing.T, env []string) (warn []map[string]any, order []string) {
		t.Helper()
		r := runBin(t, env, "serve", "-once")
		if r.code != 0 {
			t.Fatalf("serve -once: exit %d\n%s", r.code, r.stderr)
		}
		for _, l := range jsonLines(t, r.stderr) {
			msg, _ := l["msg"].(string)
			order = append(order, msg)
			if requireAuthWarning.MatchString(msg) {
				warn = append(warn, l)
			}
		}
		return warn, order
	}

	// No trusted server: the operator turns the check off, as the configuration error says.
	warn, order := warnings(t, p.env("HELPDESK_REQUIRE_AUTH=false", "HELPDESK_AUTHSERV_ID="))
	if len(warn) != 1 || warn[0]["level"] != "WARN" {
		t.Fatalf("require_auth = false: warnings %v, want one at level WARN; log: %q", warn, order)
	}
	first := -1
	for i, msg := range order {
		if requireAuthWarning.MatchString(msg) {
			first = i
		}
		if msg == "email" && first < 0 {
			t.Errorf("the email was logged before the require_auth warning: %q", order)
			break
		}
	}
	if !slices.Contains(order, "email") {
		t.Errorf("no email line: the run did not ingest: %q", order)
	}

	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Printer", "ra2@b", "", "Help."))
	if warn, order := warnings(t, p.env()); len(warn) != 0 {
		t.Errorf("default require_auth: warnings %v, want none; log: %q", warn, order)
	}
}

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

// TestServeLogFormats: issue 6, logs "text on a terminal, JSON otherwise" — log_format text
// writes slog's text lines (key=value, no JSON) even into a pipe; auto, also as the default,
// writes JSON into a pipe (a service manager's journal, a file) and text on a terminal.
func TestServeLogFormats(t *testing.T) {
	// Each run has its own mailbox and database, with one new ticket to log.
	fresh := func(t *testing.T, extra ...string) []string {
		p := newPeers(t)
		env := p.env(extra...)
		mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
		p.deliver(t, customerMail("info@bakkerijdevries.nl", "Kassa start niet op", "log@b", "", "Help."))
		return env
	}

	t.Run("text into a pipe", func(t *testing.T) {
		r := runBin(t, fresh(t, "HELPDESK_LOG_FORMAT=text"), "serve", "-once")
		if r.code != 0 {
			t.Fatalf("serve -once: exit %d\n%s", r.code, r.stderr)
		}
		checkTextLog(t, r.stderr)
	})

	for _, tc := range []struct {
		name string
		env  func(t *testing.T) []string
	}{
		{"auto into a pipe", func(t *testing.T) []string { return fresh(t, "HELPDESK_LOG_FORMAT=auto") }},
		{"default into a pipe", func(t *testing.T) []string { return withoutLogFormat(fresh(t)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runBin(t, tc.env(t), "serve", "-once")
			if r.code != 0 {
				t.Fatalf("serve -once: exit %d\n%s", r.code, r.stderr)
			}
			lines := jsonLines(t, r.stderr) // fails on a line that is not JSON
			emails := emailLines(lines)
			if len(lines) == 0 || len(emails) != 1 || emails[0]["outcome"] != "new_ticket" || emails[0]["level"] != "INFO" {
				t.Errorf("JSON log: %d lines, email lines %v; want one new_ticket:\n%s", len(lines), emails, r.stderr)
			}
		})
	}

	t.Run("default on a terminal", func(t *testing.T) {
		env := withoutLogFormat(fresh(t))
		ptmx, tty := openPTY(t)
		defer ptmx.Close()
		cmd := exec.Command(binPath, "serve", "-once")
		cmd.Env = append(env, raceEnv)
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, tty
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tty.Close()
		out := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(ptmx) // ends with EIO once the program has closed the terminal
			out <- b
		}()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("serve -once on a terminal: %v", err)
		}
		select {
		case b := <-out:
			checkTextLog(t, string(b))
		case <-time.After(time.Minute):
			t.Fatal("no end of the terminal output")
		}
	})
}
