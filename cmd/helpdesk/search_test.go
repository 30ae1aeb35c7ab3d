package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// foundIDs runs `helpdesk ticket search -json ARGS...` with the binary and returns the ticket
// numbers in the order given, and the matching lines.
func foundIDs(t *testing.T, env []string, args ...string) ([]int, []string) {
	t.Helper()
	var fs []struct {
		ID   int    `json:"id"`
		Line string `json:"line"`
	}
	out := mustRun(t, env, append([]string{"ticket", "search", "-json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("ticket search -json %v: %v\n%s", args, err, out)
	}
	var ids []int
	var lines []string
	for _, f := range fs {
		ids = append(ids, f.ID)
		lines = append(lines, f.Line)
	}
	return ids, lines
}

// TestTicketSearch: tickets taken in through IMAP are found by the words of their subjects,
// threads (customer and staff) and attachment names in Dutch and English word forms —
// "kassa" finds "kassa's", "printers" finds "printer" —, best first, with the matching line
// and the filters; the index is rebuilt by `search reindex` after it was lost, and kept up to
// date by a running serve (the same list on GET /api/tickets).
func TestTicketSearch(t *testing.T) {
	p := newPeers(t)
	env := p.env("HELPDESK_API_TOKEN=" + testAPIToken)
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen", "-sla", "SLA8")
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Kassa's starten niet", "s1@bakkerij", "", "Goedemorgen,\n\nGeen van onze twee kassa's start nog op.\nGroet, Bakkerij"))
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Bonprinter", "s2@slagerij", "", "De printer geeft geen bonnen meer."))
	p.deliver(t, mailWithFiles("info@bakkerijdevries.nl", "Factuur", "s3@bakkerij", "", "Zie bijlage.",
		testFile{name: "printers-overzicht.pdf", ctype: "application/pdf", content: []byte("%PDF-1.4 test")}))
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "The receipt printers stopped", "s4@slagerij", "", "Both receipt printers print nothing since the update."))
	mustRun(t, env, "serve", "-once")
	mustRun(t, env, "ticket", "close", "3")

	for _, c := range []struct {
		args []string
		want []int
	}{
		{[]string{"kassa"}, []int{1}},
		{[]string{"kassa's"}, []int{1}},
		{[]string{"KASSA"}, []int{1}},
		{[]string{"printer"}, []int{2, 4, 3}}, // subject and text, text, an attachment name
		{[]string{"printers"}, []int{2, 4, 3}},
		{[]string{"receipt", "printer"}, []int{4}},
		{[]string{"printer", "-status", "closed"}, []int{3}},
		{[]string{"printer", "-customer", "kassa@slagerijjansen.nl"}, []int{2, 4}},
		{[]string{"printer", "-since", "2099-01-01"}, nil},
		{[]string{"pinautomaat"}, nil},
	} {
		got, _ := foundIDs(t, env, c.args...)
		if len(c.want) > 1 && c.want[0] == 2 { // the ranking of the three printer tickets
			if !slices.Equal(sorted(got), sorted(c.want)) {
				t.Errorf("ticket search %v = %v, want %v in some order", c.args, got, c.want)
			}
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("ticket search %v = %v, want %v", c.args, got, c.want)
		}
	}
	_, lines := foundIDs(t, env, "kassa")
	if len(lines) != 1 || lines[0] != "Kassa's starten niet" {
		t.Errorf("the matching line of ticket 1: %q", lines)
	}
	// Several words: the line with the most of them, not merely the first with one (the
	// subject has "kassa's" only; the text has both).
	_, lines = foundIDs(t, env, "kassa", "twee")
	if len(lines) != 1 || lines[0] != "Geen van onze twee kassa's start nog op." {
		t.Errorf("the matching line of ticket 1 for two words: %q", lines)
	}
	_, lines = foundIDs(t, env, "bonnen")
	if len(lines) != 1 || lines[0] != "De printer geeft geen bonnen meer." {
		t.Errorf("the matching line of ticket 2: %q", lines)
	}
	if out := mustRun(t, env, "ticket", "search", "kassa"); !strings.Contains(out, "Kassa's starten niet") {
		t.Errorf("ticket search (text) = %q", out)
	}
	if r := runBin(t, env, "ticket", "search", "kassa", "-status", "nieuw"); r.code != 2 {
		t.Errorf("ticket search -status nieuw: exit %d, want 2 (usage)", r.code)
	}

	// The index is lost: the tickets are not, and search reindex brings it back.
	idx := filepath.Join(p.dir, "helpdesk.db.search")
	if err := os.RemoveAll(idx); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, env, "search", "reindex")
	if !regexp.MustCompile(`^indexed 4 tickets into .*helpdesk\.db\.search \(.*; the database is .*\)\n$`).MatchString(out) {
		t.Errorf("search reindex said %q", out)
	}
	if got, _ := foundIDs(t, env, "kassa's"); !slices.Equal(got, []int{1}) {
		t.Errorf("after reindex: %v", got)
	}

	// A running gateway keeps it up to date, and the API lists the same.
	out2 := &syncBuffer{}
	exited, _ := serveInProcess(t, env, out2)
	m := waitOutput(t, out2, regexp.MustCompile(`"msg":"http listening"[^\n]*"addr":"([^"]+)"`), exited)
	base := "http://" + m[1]
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Pinautomaat weigert", "s5@bakkerij", "", "De pinautomaten weigeren alle kaarten."))
	waitSink(t, p, 5) // the acknowledgements of tickets 1 to 5: ticket 5 is stored
	if got, _ := foundIDs(t, env, "pinautomaat"); !slices.Equal(got, []int{5}) {
		t.Errorf("while serving, the new ticket: %v", got)
	}
	code, body := httpCall(t, "GET", base+"/api/tickets?q="+url.QueryEscape("kassa's"), "", true)
	var list struct {
		Tickets []struct {
			ID   int    `json:"id"`
			Line string `json:"line"`
		} `json:"tickets"`
		Total int `json:"total"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 || list.Total != 1 || list.Tickets[0].ID != 1 {
		t.Errorf("GET /api/tickets?q=kassa's: %d %s", code, body)
	}
	code, body = httpCall(t, "GET", base+"/api/tickets?status=open&customer=kassa@slagerijjansen.nl&due_before=2099-01-01", "", true)
	list.Tickets = nil
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 || len(list.Tickets) != 2 {
		t.Errorf("GET /api/tickets filtered: %d %s", code, body)
	}
	if code, _ := httpCall(t, "GET", base+"/api/tickets?q=kassa", "", false); code != 401 {
		t.Errorf("GET /api/tickets without the token: %d, want 401", code)
	}
	if code, _ := httpCall(t, "GET", base+"/api/tickets?due_before=gisteren", "", true); code != 400 {
		t.Errorf("GET /api/tickets?due_before=gisteren: %d, want 400", code)
	}
}

func sorted(v []int) []int {
	v = slices.Clone(v)
	slices.Sort(v)
	return v
}

// TestServeLogsIndexRebuildAfterRestore: after a restore (which removes the search index of
// the database it replaced) serve rebuilds the index from the restored database, and says so:
// when it starts, with the number of tickets, and when it is done, with the count and how
// long it took. Before, the rebuild was silent — an operator could not tell why the first
// searches waited.
func TestServeLogsIndexRebuildAfterRestore(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen", "-sla", "SLA8", "-contract")
	for i, s := range []string{"Kassa start niet", "Printer piept", "Weegschaal geeft foutcode"} {
		p.deliver(t, customerMail("kassa@slagerijjansen.nl", s, "rb-"+string(rune('a'+i))+"@s", "", "Graag hulp."))
	}
	mustRun(t, env, "serve", "-once")
	gz := backupFile(t, mustRun(t, env, "backup", "-dir", t.TempDir()))
	if out := mustRun(t, env, "restore", gz); !strings.Contains(out, "removed the search index") {
		t.Fatalf("restore output does not mention the search index:\n%s", out)
	}
	r := runBin(t, env, "serve", "-once")
	if r.code != 0 {
		t.Fatalf("serve -once after the restore: exit %d\n%s", r.code, r.stderr)
	}
	start := regexp.MustCompile(`"level":"INFO","msg":"search index missing: rebuilding it from the database","component":"search","path":"[^"]+\.search","tickets":3\}`)
	done := regexp.MustCompile(`"level":"INFO","msg":"search index rebuilt","component":"search","tickets":3,"duration":"[0-9.]+(ms|s|µs)"\}`)
	if !start.MatchString(r.stderr) || !done.MatchString(r.stderr) {
		t.Errorf("serve does not log the start and the end of the index rebuild:\n%s", r.stderr)
	} else if start.FindStringIndex(r.stderr)[0] > done.FindStringIndex(r.stderr)[0] {
		t.Errorf("the rebuild is logged as done before it started:\n%s", r.stderr)
	}
	if ids, _ := foundIDs(t, env, "printer"); !slices.Equal(ids, []int{2}) {
		t.Errorf("after the rebuild, ticket search printer = %v, want [2]", ids)
	}
	// The next start has an index: nothing to rebuild, nothing said.
	if r := runBin(t, env, "serve", "-once"); strings.Contains(r.stderr, "rebuil") {
		t.Errorf("serve with an index logs a rebuild:\n%s", r.stderr)
	}
}
