package main

import (
	"bytes"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestServeWarnsWithoutRequireAuth: staff by email — with HELPDESK_REQUIRE_AUTH=false
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

// TestServeLogFormats: logs are text on a terminal, JSON otherwise — log_format text
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

// TestServeLogsOneJSONLinePerEmail: with log_format json every line of serve's log is JSON,
// and each email has one line with its outcome and ticket.
func TestServeLogsOneJSONLinePerEmail(t *testing.T) {
	p := newPeers(t)
	env := p.env("HELPDESK_LOG_FORMAT=json")
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Kassa 1", "k1@b", "", "Eén."))
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Kassa 2", "k2@b", "", "Twee."))
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Re: Kassa 1", "k3@b", "In-Reply-To: <k1@b>\r\n", "Drie."))
	p.deliver(t, customerMail("onbekend@example.com", "Vraag", "u@e", "", "Vier."))
	r := runBin(t, env, "serve", "-once")
	if r.code != 0 {
		t.Fatalf("serve -once: exit %d\n%s", r.code, r.stderr)
	}
	emails := emailLines(jsonLines(t, r.stderr))
	if len(emails) != 4 {
		t.Fatalf("%d email lines, want 4:\n%s", len(emails), r.stderr)
	}
	want := []struct {
		outcome string
		ticket  float64
	}{{"new_ticket", 1}, {"new_ticket", 2}, {"reply", 1}, {"held", 0}}
	for i, l := range emails {
		if l["outcome"] != want[i].outcome || l["level"] != "INFO" || l["time"] == nil {
			t.Errorf("line %d = %v, want outcome %s", i, l, want[i].outcome)
		}
		if want[i].ticket != 0 && l["ticket"] != want[i].ticket {
			t.Errorf("line %d ticket = %v, want %v", i, l["ticket"], want[i].ticket)
		}
		if want[i].ticket == 0 && (l["reason"] != "unknown_sender" || l["held"] == nil) {
			t.Errorf("held line %d = %v", i, l)
		}
	}
}

// TestLogDurationsReadable: a duration in a log line reads "30s" in JSON as in text, in a
// group too — not 30000000000.
func TestLogDurationsReadable(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{"json", `"retry_in":"30s","backoff":{"min":"1.5s","max":"2m0s"}`},
		{"text", `retry_in=30s backoff.min=1.5s backoff.max=2m0s`},
	} {
		var buf bytes.Buffer
		log, err := newLogger(&buf, tc.format, "info")
		if err != nil {
			t.Fatal(err)
		}
		log.With("component", "notify").Warn("outbox: delivery interrupted; will retry", "retry_in", 30*time.Second,
			slog.Group("backoff", slog.Duration("min", 1500*time.Millisecond), "max", 2*time.Minute))
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("%s log line:\n%s\nwant %s", tc.format, buf.String(), tc.want)
		}
	}
}
