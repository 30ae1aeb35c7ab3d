package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infobits/helpdesk/store"
)

// backupFile is the .db.gz a `backup` run printed.
var backupFileRe = regexp.MustCompile(`wrote (\S+helpdesk-\d{8}-\d{6}\.db\.gz) `)

func backupFile(t *testing.T, out string) string {
	t.Helper()
	m := backupFileRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no backup file in the output:\n%s", out)
	}
	return m[1]
}

func customerNames(t *testing.T, env []string) []string {
	t.Helper()
	var cs []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "customer", "list", "-json")), &cs); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c["name"].(string))
	}
	return names
}

func ticketSubjects(t *testing.T, env []string) []string {
	t.Helper()
	var ts []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "ticket", "list", "-json")), &ts); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tk := range ts {
		out = append(out, tk["subject"].(string))
	}
	slices.Sort(out)
	return out
}

// The round trip through the binary: a backup, changes, a restore, and the old state is back;
// the replaced database is kept and verifies. Damaged backups are refused and change nothing.
func TestBackupRestoreRoundTrip(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")
	p.deliver(t, customerMail("info@bakkerijdevries.nl", "Kassa start niet op", "q1@bakkerij", "", "De kassa blijft zwart."))
	mustRun(t, env, "serve", "-once")
	wantCustomers, wantTickets := customerNames(t, env), ticketSubjects(t, env)
	if len(wantCustomers) != 2 || len(wantTickets) != 1 {
		t.Fatalf("setup: customers %v, tickets %v", wantCustomers, wantTickets)
	}

	dir := t.TempDir()
	out := mustRun(t, env, "backup", "-dir", dir)
	gz := backupFile(t, out)
	if !strings.Contains(out, "2 customers, 1 tickets, 1 messages, 0 held, 1 outbox") || !strings.Contains(out, "keep "+filepath.Base(gz)+": newest backup") {
		t.Errorf("backup output:\n%s", out)
	}
	// Sizes read as the other commands write them (ticket show, search reindex): kB, MB.
	if !regexp.MustCompile(`\(\d+\.\d kB; \d+\.\d (kB|MB) uncompressed; sha256 [0-9a-f]{64}\)`).MatchString(out) {
		t.Errorf("backup output: the sizes are not as the other commands write them:\n%s", out)
	}
	if v := mustRun(t, env, "verify", gz); !strings.Contains(v, "ok") || !strings.Contains(v, "2 customers, 1 tickets") {
		t.Errorf("verify of the backup: %s", v)
	}
	db := filepath.Join(p.dir, "helpdesk.db")
	if v := mustRun(t, env, "verify", db); !strings.Contains(v, "2 customers, 1 tickets") {
		t.Errorf("verify of the database: %s", v)
	}

	// Changes after the backup.
	mustRun(t, env, "customer", "add", "-email", "info@fietsenwinkel.nl", "-name", "Fietsenwinkel Smit")
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Weegschaal geeft foutcode", "q2@slagerij", "", "E42"))
	mustRun(t, env, "serve", "-once")
	if n := len(ticketSubjects(t, env)); n != 2 {
		t.Fatalf("after the change: %d tickets", n)
	}

	// Damaged copies of the backup are refused, with the reason, and change nothing.
	manifest := strings.TrimSuffix(gz, ".db.gz") + ".json"
	good, _ := os.ReadFile(gz)
	goodManifest, _ := os.ReadFile(manifest)
	for _, tc := range []struct {
		name   string
		damage func(gz, manifest string)
		want   string
	}{
		{"flipped byte", func(gz, _ string) {
			b := bytes.Clone(good)
			b[len(b)/2] ^= 1
			os.WriteFile(gz, b, 0o600)
		}, "the file is corrupt"},
		{"truncated", func(gz, _ string) { os.WriteFile(gz, good[:len(good)/2], 0o600) }, "truncated"},
		{"manifest deleted", func(_, manifest string) { os.Remove(manifest) }, "has no manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			cgz, cman := filepath.Join(d, filepath.Base(gz)), filepath.Join(d, filepath.Base(manifest))
			os.WriteFile(cgz, good, 0o600)
			os.WriteFile(cman, goodManifest, 0o600)
			tc.damage(cgz, cman)
			for _, cmd := range []string{"restore", "verify"} {
				r := runBin(t, env, cmd, cgz)
				if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("%s of a damaged backup: exit %d, stderr %q; want 1 and %q", cmd, r.code, r.stderr, tc.want)
				}
			}
			if n := len(ticketSubjects(t, env)); n != 2 {
				t.Errorf("a refused restore changed the database: %d tickets", n)
			}
		})
	}

	// The restore brings the state of the backup back.
	out = mustRun(t, env, "restore", gz)
	if !strings.Contains(out, "restored the backup of") || !strings.Contains(out, "previous database is kept as") {
		t.Errorf("restore output:\n%s", out)
	}
	if got := customerNames(t, env); !slices.Equal(got, wantCustomers) {
		t.Errorf("customers after restore = %v, want %v", got, wantCustomers)
	}
	// The search index was of the database replaced: it goes, and is made anew from the
	// restored one — the ticket written after the backup is not found (its number will be
	// another ticket's), the one before it is.
	if !strings.Contains(out, "removed the search index of the previous database") {
		t.Errorf("restore output does not mention the search index:\n%s", out)
	}
	if got, _ := foundIDs(t, env, "foutcode"); len(got) != 0 {
		t.Errorf("after restore, a search finds the ticket written after the backup: %v", got)
	}
	if got, _ := foundIDs(t, env, "kassa"); !slices.Equal(got, []int{1}) {
		t.Errorf("after restore, a search for the backup's ticket = %v, want [1]", got)
	}
	if got := ticketSubjects(t, env); !slices.Equal(got, wantTickets) {
		t.Errorf("tickets after restore = %v, want %v", got, wantTickets)
	}
	prev, _ := filepath.Glob(db + ".before-restore-*")
	if len(prev) != 1 {
		t.Fatalf("previous database: %v", prev)
	}
	if v := mustRun(t, env, "verify", prev[0]); !strings.Contains(v, "3 customers, 2 tickets") {
		t.Errorf("verify of the previous database: %s", v)
	}

	// Onto a new machine: no database yet.
	fresh := p.env("HELPDESK_DB=" + filepath.Join(t.TempDir(), "new.db"))
	mustRun(t, fresh, "restore", gz)
	if got := customerNames(t, fresh); !slices.Equal(got, wantCustomers) {
		t.Errorf("customers after a restore onto a new machine = %v", got)
	}

	// A damaged database file: verify names the first problem and exits 1.
	bad := filepath.Join(t.TempDir(), "bad.db")
	b, _ := os.ReadFile(db)
	i := bytes.Index(b, []byte(`"name":"Slagerij Jansen"`))
	if i < 0 {
		t.Fatal("record not found in the file")
	}
	b[i+len(`"name":`)] = '!'
	os.WriteFile(bad, b, 0o600)
	if r := runBin(t, env, "verify", bad); r.code != 1 || !strings.Contains(r.stderr, "bucket customers, key 0000000000000002") {
		t.Errorf("verify of a damaged database: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBin(t, env, "verify"); r.code != 2 {
		t.Errorf("verify without FILE: exit %d, want 2", r.code)
	}

	// Another process holding the database (no control socket): restore refuses.
	held, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := runBin(t, env, "restore", gz)
	held.Close()
	if r.code != 1 || !strings.Contains(r.stderr, "stop the gateway first") {
		t.Errorf("restore onto a held database: exit %d, stderr %q", r.code, r.stderr)
	}
}

// startBackupGateway runs `serve` and waits for its control socket.
func startBackupGateway(t *testing.T, env []string) (log *syncBuffer, stop func()) {
	t.Helper()
	cmd := exec.Command(binPath, "serve")
	cmd.Env = append(env, raceEnv)
	log = &syncBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("serve after SIGTERM: %v\n%s", err, log.String())
			}
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			t.Errorf("serve did not stop after SIGTERM")
		}
	}
	t.Cleanup(stop)
	var db string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HELPDESK_DB="); ok {
			db = v
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(socketPath(db)); err == nil {
			return log, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control socket; log:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serve makes a backup at start when none was made in the last 24 hours; `backup` while
// serve runs is taken by the gateway through its open database; restore refuses.
func TestBackupWhileServing(t *testing.T) {
	p := newPeers(t)
	daily := t.TempDir()
	env := p.env("HELPDESK_BACKUP_DIR="+daily, "HELPDESK_BACKUP_TIME=02:30")
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries")
	log, stop := startBackupGateway(t, env)

	waitOutput(t, log, regexp.MustCompile(`"msg":"backups pruned"`), nil)
	if !strings.Contains(log.String(), "at start: no backup in the folder yet") {
		t.Errorf("start backup not logged with its reason:\n%s", log.String())
	}
	gzs, _ := filepath.Glob(filepath.Join(daily, "helpdesk-*.db.gz"))
	if len(gzs) != 1 {
		t.Fatalf("daily folder: %v", gzs)
	}
	if v := mustRun(t, env, "verify", gzs[0]); !strings.Contains(v, "1 customers") {
		t.Errorf("verify of the start backup: %s", v)
	}

	// While serving: the command runs in the gateway (the database is locked for others).
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")
	manual := t.TempDir()
	out := mustRun(t, env, "backup", "-dir", manual)
	gz := backupFile(t, out)
	if !strings.Contains(out, "2 customers") {
		t.Errorf("backup while serving:\n%s", out)
	}
	if !regexp.MustCompile(`"msg":"control command","command":"backup"`).MatchString(log.String()) {
		t.Errorf("the backup did not run in the gateway:\n%s", log.String())
	}
	if v := mustRun(t, env, "verify", gz); !strings.Contains(v, "2 customers") {
		t.Errorf("verify of the backup taken while serving: %s", v)
	}
	r := runBin(t, env, "restore", gz)
	if r.code != 1 || !strings.Contains(r.stderr, "stop the gateway first") {
		t.Errorf("restore while serving: exit %d, stderr %q", r.code, r.stderr)
	}
	stop()
	if got := customerNames(t, env); len(got) != 2 {
		t.Errorf("customers after the refused restore: %v", got)
	}
	// A restart within 24 hours makes no second start backup.
	log, stop = startBackupGateway(t, env)
	waitOutput(t, log, regexp.MustCompile(`"msg":"no backup at start: one was made in the last 24 hours"`), nil)
	stop()
	if strings.Contains(log.String(), "backup written") {
		t.Errorf("a restart within 24 hours made a backup:\n%s", log.String())
	}
}

// A failing backup is logged and the gateway goes on; a bad backup_time stops serve at start.
func TestBackupFailureDoesNotStopServe(t *testing.T) {
	p := newPeers(t)
	env := p.env("HELPDESK_BACKUP_DIR=" + filepath.Join(p.dir, "not-mounted"))
	log, stop := startBackupGateway(t, env)
	waitOutput(t, log, regexp.MustCompile(`"msg":"backup failed`), nil)
	if names := customerNames(t, env); len(names) != 0 {
		t.Errorf("customers: %v", names)
	}
	stop()
	if _, err := os.Stat(filepath.Join(p.dir, "not-mounted")); err == nil {
		t.Error("the missing backup folder was created")
	}
	r := runBin(t, p.env("HELPDESK_BACKUP_DIR="+t.TempDir(), "HELPDESK_BACKUP_TIME=25:00"), "serve")
	if r.code != 1 || !strings.Contains(r.stderr, "backup_time") {
		t.Errorf("serve with backup_time 25:00: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestBackupPruneCommand(t *testing.T) {
	env := newPeers(t).env()
	dir := t.TempDir()
	files := []string{"notes.txt", "helpdesk-20261120-020000.db.gz.bak"}
	for _, b := range []string{"20261102-023000", "20261120-020000", "20261126-023000", "20261126-160000", "20261127-020000"} {
		files = append(files, "helpdesk-"+b+".db.gz", "helpdesk-"+b+".json")
	}
	for _, f := range files {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600)
	}
	out := mustRun(t, env, "backup", "prune", "-dir", dir, "-at", "2026-11-27", "-dry-run")
	for _, want := range []string{
		"keep helpdesk-20261102-023000.db.gz: first working day of November 2026\n",
		"would delete helpdesk-20261120-020000.db.gz: older backup of 2026-11-20\n",
		"would delete helpdesk-20261126-023000.db.gz: older backup of 2026-11-26 (a newer one of that day is kept)\n",
		"keep helpdesk-20261126-160000.db.gz: newest of Thursday 2026-11-26\n",
		"keep helpdesk-20261127-020000.db.gz: newest backup; newest of Friday 2026-11-27\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != len(files) {
		t.Errorf("the dry run deleted files")
	}
	out = mustRun(t, env, "backup", "prune", "-dir", dir, "-at", "2026-11-27")
	if !strings.Contains(out, "delete helpdesk-20261120-020000.db.gz: older backup of 2026-11-20") {
		t.Errorf("prune output:\n%s", out)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{"helpdesk-20261102-023000.db.gz", "helpdesk-20261102-023000.json", "helpdesk-20261120-020000.db.gz.bak",
		"helpdesk-20261126-160000.db.gz", "helpdesk-20261126-160000.json", "helpdesk-20261127-020000.db.gz", "helpdesk-20261127-020000.json", "notes.txt"}
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
	if r := runBin(t, env, "backup", "prune", "-dir", dir, "-at", "27-11-2026"); r.code != 2 {
		t.Errorf("-at 27-11-2026: exit %d, want 2", r.code)
	}
	if r := runBin(t, env, "backup", "prune"); r.code != 2 || !strings.Contains(r.stderr, "backup_dir") {
		t.Errorf("prune without -dir or backup_dir: exit %d, stderr %q", r.code, r.stderr)
	}
}
