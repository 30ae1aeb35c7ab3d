package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

// Issue 11 part 6: an imported archive is history, not work; staff commands from the CLI.

func ticketList(t *testing.T, env []string) []map[string]any {
	t.Helper()
	var ts []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &ts); err != nil {
		t.Fatal(err)
	}
	return ts
}

func ticketShow(t *testing.T, env []string, id int) map[string]any {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "show", "-json", fmt.Sprint(id))), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestImportedArchiveIsHistory: an archive imported from Dovecot becomes closed tickets
// without a deadline, below today's work in `ticket list`; they do not count against the SLA24
// limits of the present (sla24_open_tickets = 2 by default; the archive has 4), so the same
// customer's new email becomes a ticket and is acknowledged; the customer's reply to an
// archived ticket opens it again.
func TestImportedArchiveIsHistory(t *testing.T) {
	d := imaptest.NewDovecot(t)
	c, err := d.Dial()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Archief", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p := &peers{imapAddr: d.Addr, imapUser: d.User, imapPass: d.Password, dovecot: d,
		sink: smtptest.New(t, smtpsink.Options{}), dir: t.TempDir()}
	env := p.env()
	const jansen = "kassa@slagerijjansen.nl"
	mustRun(t, env, "customer", "add", "-email", jansen, "-name", "Slagerij Jansen") // SLA24
	long := time.Now().Add(-70 * 24 * time.Hour)
	for i := range 4 {
		raw := customerMail(jansen, fmt.Sprintf("Vraag %d", i), fmt.Sprintf("q%d@archief", i), "", "Een vraag.")
		if _, err := d.AppendRaw("Archief", []byte(raw), long.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.AppendRaw("Archief", []byte(customerMail(jansen, "Re: Vraag 0", "r0@archief", "In-Reply-To: <q0@archief>\r\n", "Nog iets.")), long.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}

	r := runBin(t, env, "import", "-mailbox", "Archief")
	if r.code != 0 || summaryCount(t, r.stdout, "new tickets") != 4 || summaryCount(t, r.stdout, "replies") != 1 || summaryCount(t, r.stdout, "held") != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, tk := range ticketList(t, env) {
		if tk["status"] != "closed" || tk["due"] != "" {
			t.Errorf("imported ticket %v: status %v, due %q; want closed, no deadline", tk["id"], tk["status"], tk["due"])
		}
	}

	// Today's email from the same SLA24 customer is today's work.
	p.deliver(t, customerMail(jansen, "Kassa print niet", "new@jansen", "", "Help."))
	mustRun(t, env, "serve", "-once")
	if out := strings.TrimSpace(mustRun(t, env, "ticket", "held", "-json")); out != "[]" {
		t.Errorf("held after today's email = %s: the archive counted against today's limits", out)
	}
	ts := ticketList(t, env)
	if len(ts) != 5 || ts[0]["subject"] != "Kassa print niet" || ts[0]["status"] != "open" || ts[0]["due"] == "" {
		t.Fatalf("ticket list = %v, want today's ticket first, open with a deadline", ts)
	}
	if msgs := p.sink.Messages(); len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Kassa print niet") {
		t.Errorf("the SMTP server received %d messages, want the one acknowledgement", len(msgs))
	}

	// The customer answers on an archived ticket (#2, "Vraag 1"): open again, listed as work.
	p.deliver(t, customerMail(jansen, "Re: Vraag 1", "again@jansen", "In-Reply-To: <q1@archief>\r\n", "Het is er weer."))
	mustRun(t, env, "serve", "-once")
	if tk := ticketShow(t, env, 2); tk["status"] != "open" || len(tk["messages"].([]any)) != 2 {
		t.Errorf("archived ticket after the customer's reply: status %v, %d messages; want open, 2", tk["status"], len(tk["messages"].([]any)))
	}
	ts = ticketList(t, env)
	if ts[1]["id"] != float64(2) || ts[2]["status"] != "closed" {
		t.Errorf("ticket list = %v, want the reopened archived ticket among the work, before the closed ones", ts)
	}
}

// TestTicketCommands: `ticket close`, `reopen` and `assign` change a ticket as the staff email
// commands do, with and without a running gateway (then through the control socket); each
// leaves an internal note on the thread naming the operator (the user who ran sudo) and the
// command; nothing is sent to the customer; an unknown ticket and a non-staff assignee are
// one-line errors that change nothing.
func TestTicketCommands(t *testing.T) {
	p := newPeers(t)
	env := p.env("HELPDESK_STAFF=jan@infobits.example,marieke@infobits.example")
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Kassa start niet", "q1@b", "", "Help."))
	mustRun(t, env, "serve", "-once")
	notes := func(tk map[string]any) []map[string]any {
		var out []map[string]any
		for _, m := range tk["messages"].([]any) {
			if m := m.(map[string]any); m["direction"] == "note" {
				out = append(out, m)
			}
		}
		return out
	}

	// Without a gateway: the command opens the database itself.
	cli := append(env, "SUDO_USER=anneke")
	if out := mustRun(t, cli, "ticket", "close", "1"); !strings.Contains(out, "ticket #1: status open → closed") || !strings.Contains(out, "by anneke") {
		t.Errorf("ticket close: %q", out)
	}
	tk := ticketShow(t, env, 1)
	ns := notes(tk)
	if tk["status"] != "closed" || len(ns) != 1 {
		t.Fatalf("after ticket close: status %v, notes %v", tk["status"], ns)
	}
	if txt := ns[0]["text"].(string); !strings.HasPrefix(txt, "#close\n") || !strings.Contains(txt, "status open → closed, by anneke (helpdesk ticket close)") || ns[0]["from"] != "anneke" {
		t.Errorf("note on the thread = %v", ns[0])
	}
	if out := mustRun(t, cli, "ticket", "close", "#1"); !strings.Contains(out, "ticket #1 is closed already: nothing changed") {
		t.Errorf("closing a closed ticket: %q", out)
	}
	if n := len(notes(ticketShow(t, env, 1))); n != 1 {
		t.Errorf("%d notes after a close that changed nothing, want 1", n)
	}
	r := runBin(t, cli, "ticket", "assign", "1", "piet@bakkerijdevries.nl")
	if r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "#assign piet@bakkerijdevries.nl: not a staff address") ||
		!strings.Contains(r.stderr, "jan@infobits.example, marieke@infobits.example") {
		t.Errorf("assign to a customer: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBin(t, cli, "ticket", "reopen", "99"); r.code != 1 || !strings.Contains(r.stderr, "no ticket 99") {
		t.Errorf("reopen of an unknown ticket: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBin(t, cli, "ticket", "close"); r.code != 2 || !strings.Contains(r.stderr, "usage: helpdesk ticket close ID") {
		t.Errorf("close without a number: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBin(t, cli, "ticket", "assign", "1"); r.code != 2 {
		t.Errorf("assign without an address: exit %d, stderr %q", r.code, r.stderr)
	}

	// With a gateway: run by it, over the control socket, with the client's operator.
	gwLog, stop := startServe(t, p, env)
	cli = append(env, "SUDO_USER=bram")
	if out := mustRun(t, cli, "ticket", "reopen", "1"); !strings.Contains(out, "status closed → open") {
		t.Errorf("ticket reopen over the socket: %q", out)
	}
	if out := mustRun(t, cli, "ticket", "assign", "1", "Marieke@Infobits.example"); !strings.Contains(out, "assigned to nobody → marieke@infobits.example") {
		t.Errorf("ticket assign over the socket: %q", out)
	}
	if r := runBin(t, cli, "ticket", "close", "7"); r.code != 1 || !strings.Contains(r.stderr, "no ticket 7") {
		t.Errorf("close of an unknown ticket over the socket: exit %d, stderr %q", r.code, r.stderr)
	}
	tk = ticketShow(t, env, 1)
	ns = notes(tk)
	if tk["status"] != "open" || tk["assignee"] != "marieke@infobits.example" || len(ns) != 3 {
		t.Fatalf("after reopen and assign: status %v, assignee %v, %d notes", tk["status"], tk["assignee"], len(ns))
	}
	for i, want := range []string{"#reopen\nstatus closed → open, by bram (helpdesk ticket reopen)",
		"#assign marieke@infobits.example\nassigned to nobody → marieke@infobits.example, by bram (helpdesk ticket assign)"} {
		if ns[i+1]["text"] != want {
			t.Errorf("note %d = %q, want %q", i+2, ns[i+1]["text"], want)
		}
	}
	if !regexp.MustCompile(`"msg":"control command","command":"ticket reopen","user":"bram"`).MatchString(gwLog.String()) {
		t.Errorf("the gateway's log does not name the operator:\n%s", gwLog.String())
	}
	stop()
	// Nothing was sent about the commands: the acknowledgement is the one notification.
	var outbox []map[string]any
	json.Unmarshal([]byte(mustRun(t, env, "outbox", "list", "-json")), &outbox)
	if len(outbox) != 1 || outbox[0]["kind"] != "ack" {
		t.Errorf("outbox = %v, want only the acknowledgement", outbox)
	}
}
