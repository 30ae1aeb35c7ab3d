package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// First steps — doctor names the authserv-id the server writes.

// staffMailWith is a staff member's email whose header starts with the given fields, as the
// receiving server left it.
func staffMailWith(i int, fields string) string {
	return fmt.Sprintf("%sFrom: jan@infobits.example\r\nTo: support@infobits.example\r\nSubject: Re: [Infobits #%d] Vraag\r\n"+
		"Date: Fri, 27 Nov 2026 16:00:00 +0100\r\nMessage-ID: <s%d@infobits.example>\r\nContent-Type: text/plain\r\n\r\nAntwoord.\r\n", fields, i, i)
}

// TestNewDatabaseIsAnnounced: a command that creates the database says so on stderr with the
// absolute path, once; `serve` logs it; a command on an existing database says nothing.
func TestNewDatabaseIsAnnounced(t *testing.T) {
	p := newPeers(t)
	dbPath := filepath.Join(p.dir, "helpdesk.db")
	r := runBin(t, p.env(), "ticket", "list")
	want := "helpdesk: created a new, empty database " + dbPath + " (if you meant an existing one, check db in the config file or HELPDESK_DB)\n"
	if r.code != 0 || r.stderr != want {
		t.Errorf("ticket list on a new path: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	if r := runBin(t, p.env(), "ticket", "list"); r.code != 0 || r.stderr != "" {
		t.Errorf("ticket list on the existing database: exit %d, stderr %q, want nothing", r.code, r.stderr)
	}
	// A relative path is named absolute, as the operator must find the file.
	cwd := t.TempDir()
	cmd := exec.Command(binPath, "customer", "list")
	cmd.Dir, cmd.Env = cwd, append(p.env("HELPDESK_DB=sub.db"), raceEnv)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "created a new, empty database "+filepath.Join(cwd, "sub.db")+" ") {
		t.Errorf("customer list with a relative db: %v\n%s", err, out)
	}
	// serve logs it.
	r = runBin(t, p.env("HELPDESK_DB="+filepath.Join(p.dir, "serve.db")), "serve", "-once")
	var found bool
	for _, l := range jsonLines(t, r.stderr) {
		if l["msg"] == "created a new, empty database (if you meant an existing one, check db in the config file or HELPDESK_DB)" && l["path"] == filepath.Join(p.dir, "serve.db") {
			found = true
		}
	}
	if r.code != 0 || !found {
		t.Errorf("serve -once on a new path: exit %d, no log line of the new database:\n%s", r.code, r.stderr)
	}
}

// TestOneConfigPath: the README, the docs and the deploy files name one configuration file,
// the one the unit file runs serve with.
func TestOneConfigPath(t *testing.T) {
	unit, err := os.ReadFile("../../deploy/helpdesk.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=\S+ serve -config (\S+)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("the unit file runs serve without -config")
	}
	want := string(m[1])
	use := regexp.MustCompile(`(?:-config[ =]|HELPDESK_CONFIG=)(/[^\s'"` + "`" + `)]+)`)
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	for _, f := range append([]string{"../../README.md", "../../deploy/helpdesk.service", "../../deploy/helpdesk.conf.example"}, docs...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, u := range use.FindAllSubmatch(b, -1) {
			n++
			if string(u[1]) != want {
				t.Errorf("%s names the config file %s, the unit file %s", f, u[1], want)
			}
		}
		if n == 0 && (f == "../../README.md" || f == "../../deploy/helpdesk.conf.example" || f == "../../docs/operations.md") {
			t.Errorf("%s names no config file", f)
		}
	}
}
