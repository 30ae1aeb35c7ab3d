package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

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

// TestTicketAttachmentWhileServing: with the gateway running, `ticket attachment` runs in it
// over the control socket and the file is written on the client's side, byte for byte.
func TestTicketAttachmentWhileServing(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	photo := randomBytes(20_000, 7)
	p.deliver(t, mailWithFiles("info@bakkerijdevries.nl", "Scherm", "s1@bakkerij", "", "Foto.",
		testFile{name: "../../etc/scherm.jpg", ctype: "image/jpeg", content: photo}))
	_, stop := startServe(t, p, env)
	defer stop()
	waitSink(t, p, 1)
	dir := t.TempDir()
	r := runBinIn(t, dir, env, "ticket", "attachment", "1", "1")
	if r.code != 0 {
		t.Fatalf("ticket attachment while serving: exit %d: %s", r.code, r.stderr)
	}
	// The sender's path is not followed: the file lands in the current directory.
	got, err := os.ReadFile(filepath.Join(dir, "_.._etc_scherm.jpg"))
	if err != nil || !bytes.Equal(got, photo) {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("written file: %v (%d bytes); directory holds %v", err, len(got), entries)
	}
	// Never over an existing file without -o.
	if r := runBinIn(t, dir, env, "ticket", "attachment", "1", "1"); r.code != 1 || !strings.Contains(r.stderr, "_.._etc_scherm.jpg exists already and is not written over: give another name with -o FILE") {
		t.Errorf("second write: exit %d, %q; want a refusal", r.code, r.stderr)
	}
	if out := mustRun(t, env, "ticket", "attachment", "1", "1", "-o", "-"); out != string(photo) {
		t.Errorf("-o - over the control socket: %d bytes, want %d", len(out), len(photo))
	}
}

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

// TestTicketListStatus: after an archive import `ticket list` is thousands of closed tickets
// under the work; -status shows only the tickets in one state, as ticket search's does.
func TestTicketListStatus(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen", "-sla", "SLA8")
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Weegschaal", "ls1@s", "", "Kapot."))
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Bonprinter", "ls2@s", "", "Ook kapot."))
	mustRun(t, env, "serve", "-once")
	mustRun(t, env, "ticket", "close", "1")
	ids := func(args ...string) []any {
		var ts []map[string]any
		if err := json.Unmarshal([]byte(mustRun(t, env, append([]string{"ticket", "list", "-json"}, args...)...)), &ts); err != nil {
			t.Fatal(err)
		}
		var out []any
		for _, x := range ts {
			out = append(out, x["id"])
		}
		return out
	}
	if got := ids("-status", "closed"); !reflect.DeepEqual(got, []any{1.0}) {
		t.Errorf("ticket list -status closed = %v, want [1]", got)
	}
	if got := ids("-status", "open"); !reflect.DeepEqual(got, []any{2.0}) {
		t.Errorf("ticket list -status open = %v, want [2]", got)
	}
	if got := ids(); !reflect.DeepEqual(got, []any{2.0, 1.0}) {
		t.Errorf("ticket list = %v, want [2 1]", got)
	}
	if out := mustRun(t, env, "ticket", "list", "-status", "open"); strings.Contains(out, "Weegschaal") || !strings.Contains(out, "Bonprinter") {
		t.Errorf("ticket list -status open:\n%s", out)
	}
	if r := runBin(t, env, "ticket", "list", "-status", "nieuw"); r.code != 2 || !strings.Contains(r.stderr, `-status "nieuw": want open, answered, closed`) {
		t.Errorf("ticket list -status nieuw: exit %d, %q", r.code, r.stderr)
	}
}
