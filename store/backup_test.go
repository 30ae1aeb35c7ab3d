package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/infobits/helpdesk"
)

// fill puts at least one record into every bucket, through the store's own methods.
func fill(t *testing.T, db *DB) {
	t.Helper()
	update(t, db, func(tx *Tx) error {
		c := &helpdesk.Customer{Name: "Bakkerij de Vries", Emails: []string{"info@bakkerijdevries.nl"}, Tier: helpdesk.SLA8, Phones: []string{"+31201234567"}, Created: t0}
		if err := tx.PutCustomer(c); err != nil {
			return err
		}
		tk := &helpdesk.Ticket{CustomerID: c.ID, Subject: "Kassa start niet op", Status: helpdesk.StatusOpen, Created: t0, Due: t0.Add(8 * time.Hour)}
		if err := tx.CreateTicket(tk); err != nil {
			return err
		}
		raw := []byte(strings.Repeat("From: info@bakkerijdevries.nl\r\nSubject: kassa\r\n\r\nDe kassa blijft zwart.\r\n", 20))
		h, err := tx.PutRaw(raw)
		if err != nil {
			return err
		}
		if err := tx.AddMessage(tk, &helpdesk.Message{Direction: helpdesk.DirectionIn, MessageID: "q1@bakkerij", Text: "De kassa blijft zwart.", RawSHA256: h}); err != nil {
			return err
		}
		if err := tx.MarkIngested(RawHash(raw), helpdesk.Ref{TicketID: tk.ID, Seq: 1}); err != nil {
			return err
		}
		key, _ := IdentityKey("q1@bakkerij", "info@bakkerijdevries.nl", "kassa")
		if err := tx.MarkIngestedIdentity(key, helpdesk.Ref{TicketID: tk.ID, Seq: 1}); err != nil {
			return err
		}
		if err := tx.Hold(&helpdesk.Held{From: "onbekend@example.com", Reason: helpdesk.HeldUnknownSender, Received: t0}); err != nil {
			return err
		}
		if err := tx.Enqueue(&helpdesk.Notification{Kind: helpdesk.KindAck, TicketID: tk.ID, To: "info@bakkerijdevries.nl", MessageID: "ack1@infobits", Created: t0}); err != nil {
			return err
		}
		if err := tx.PutMailbox(&helpdesk.MailboxState{Name: "INBOX", UIDValidity: 7, LastUID: 3, Updated: t0}); err != nil {
			return err
		}
		if err := tx.PutParseAttempts(&helpdesk.ParseAttempts{Mailbox: "INBOX", UIDValidity: 7, Batches: []helpdesk.UIDRange{{Start: 4, Stop: 6}}}); err != nil {
			return err
		}
		if err := tx.MarkLimitNotice(c.ID, helpdesk.DateOf(t0)); err != nil {
			return err
		}
		if err := tx.RecordAutoReply("info@bakkerijdevries.nl", "ack", t0); err != nil {
			return err
		}
		if _, err := tx.IssueToken(helpdesk.PurposePassword, c.ID, "", t0, time.Hour); err != nil {
			return err
		}
		if err := tx.PutLoginChange(&helpdesk.LoginChange{CustomerID: c.ID, NewEmail: "nieuw@example.com", Requested: t0, Until: t0.Add(72 * time.Hour)}); err != nil {
			return err
		}
		if err := tx.SetBounced("weg@example.com", t0.Add(time.Hour)); err != nil {
			return err
		}
		if err := tx.MarkEscalation(tk.ID, tk.Due, 1, t0); err != nil {
			return err
		}
		if err := tx.SetPassword(c.ID, &helpdesk.Password{Hash: "$argon2id$v=19$m=47104,t=1,p=1$c2FsdA$aGFzaA", Set: t0}); err != nil {
			return err
		}
		if _, err := tx.CreateSession(&helpdesk.Session{CustomerID: c.ID, Address: c.Login(), Created: t0, LastSeen: t0, CSRF: "x"}); err != nil {
			return err
		}
		return tx.MarkUID("INBOX", 7, 3)
	})
}

var wantFilled = Counts{Customers: 1, Tickets: 1, Messages: 1, Held: 1, Outbox: 1}

// Verify knows every bucket of the layout, and fill reaches every one, so each decoder is
// exercised here. A new bucket needs a decoder in bucketChecks and a record in fill.
func TestVerifyKnowsEveryBucket(t *testing.T) {
	db := openClosable(t)
	fill(t, db)
	for _, b := range allBuckets {
		if _, ok := bucketChecks[string(b)]; !ok {
			t.Errorf("bucket %s has no decoder in bucketChecks", b)
		}
	}
	for name := range bucketChecks {
		if !slices.ContainsFunc(allBuckets, func(b []byte) bool { return string(b) == name }) {
			t.Errorf("bucketChecks has %s, which is not a bucket", name)
		}
	}
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if tx.Bucket(b).Stats().KeyN == 0 {
				t.Errorf("fill put nothing into bucket %s: its decoder is not exercised", b)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	counts, err := Verify(db.Path())
	if err != nil || counts != wantFilled {
		t.Errorf("Verify = %v, %v, want %v", counts, err, wantFilled)
	}
}

func TestBackupWritesManifestAndRestores(t *testing.T) {
	db := openClosable(t)
	fill(t, db)
	dir := t.TempDir()
	at := time.Date(2026, 11, 27, 1, 30, 0, 0, time.UTC) // 02:30 in Amsterdam
	m, err := db.Backup(ctx, dir, at, "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	names := dirNames(t, dir)
	if want := []string{"helpdesk-20261127-023000.db.gz", "helpdesk-20261127-023000.json"}; !slices.Equal(names, want) {
		t.Fatalf("backup folder holds %v, want %v (no partial files)", names, want)
	}
	js, _ := os.ReadFile(filepath.Join(dir, "helpdesk-20261127-023000.json"))
	var raw map[string]any
	if err := json.Unmarshal(js, &raw); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, m.File))
	for k, want := range map[string]any{"time": "2026-11-27T02:30:00+01:00", "version": "v1.2.3", "schema": 1.0,
		"file": "helpdesk-20261127-023000.db.gz", "size": float64(fi.Size()),
		"counts": map[string]any{"customers": 1.0, "tickets": 1.0, "messages": 1.0, "held": 1.0, "outbox": 1.0}} {
		if fmt.Sprint(raw[k]) != fmt.Sprint(want) {
			t.Errorf("manifest %s = %v, want %v", k, raw[k], want)
		}
	}
	if s, _ := raw["sha256"].(string); len(s) != 64 {
		t.Errorf("manifest sha256 = %v", raw["sha256"])
	}
	if n, _ := raw["db_size"].(float64); n < 4096 {
		t.Errorf("manifest db_size = %v", raw["db_size"])
	}
	if fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("backup mode %v: readable by others", fi.Mode().Perm())
	}

	got, counts, err := VerifyBackup(filepath.Join(dir, m.File), t.TempDir())
	if err != nil || counts != wantFilled || got.SHA256 != m.SHA256 {
		t.Fatalf("VerifyBackup = %+v, %v, %v", got, counts, err)
	}

	// Restore onto a fresh path (a new machine) and onto an existing, different database.
	fresh := filepath.Join(t.TempDir(), "new.db")
	res, err := Restore(filepath.Join(dir, m.File), fresh, at, 100*time.Millisecond)
	if err != nil || res.Previous != "" || res.Counts != wantFilled {
		t.Fatalf("Restore to a new path = %+v, %v", res, err)
	}
	other := filepath.Join(t.TempDir(), "other.db")
	odb, err := Open(other, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	update(t, odb, func(tx *Tx) error {
		return tx.PutCustomer(&helpdesk.Customer{Name: "Slagerij Jansen", Emails: []string{"kassa@slagerijjansen.nl"}})
	})
	odb.Close()
	later := at.Add(36 * time.Hour)
	res, err = Restore(filepath.Join(dir, m.File), other, later, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if want := other + ".before-restore-20261128-143000"; res.Previous != want {
		t.Errorf("previous database kept as %q, want %q", res.Previous, want)
	}
	for path, want := range map[string]string{other: "Bakkerij de Vries", res.Previous: "Slagerij Jansen"} {
		rdb, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		rdb.View(ctx, func(tx *Tx) error {
			cs, err := tx.Customers()
			if err != nil || len(cs) != 1 || cs[0].Name != want {
				t.Errorf("%s holds %v, %v, want %s", path, cs, err, want)
			}
			return nil
		})
		rdb.Close()
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(other), "*.restore-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// The snapshot is one read transaction: writers go on during the backup and the copy is
// consistent, with the counts its manifest states.
func TestBackupWhileWriting(t *testing.T) {
	db := newDB(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := db.Update(ctx, func(tx *Tx) error {
				c := &helpdesk.Customer{Name: "klant", Emails: []string{fmt.Sprintf("k%d@example.nl", i)}}
				if err := tx.PutCustomer(c); err != nil {
					return err
				}
				return tx.CreateTicket(&helpdesk.Ticket{CustomerID: c.ID, Subject: strings.Repeat("x", 500)})
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	dir := t.TempDir()
	for i := range 5 {
		time.Sleep(20 * time.Millisecond)
		m, err := db.Backup(ctx, dir, t0.Add(time.Duration(i)*time.Second), "devel")
		if err != nil {
			t.Fatal(err)
		}
		_, counts, err := VerifyBackup(filepath.Join(dir, m.File), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if counts.Customers != counts.Tickets || counts != m.Counts.Counts() {
			t.Errorf("backup %d holds %v, manifest %v: not one transaction's view", i, counts, m.Counts)
		}
	}
	close(stop)
	wg.Wait()
}

func TestBackupRefusals(t *testing.T) {
	db := newDB(t)
	if _, err := db.Backup(ctx, filepath.Join(t.TempDir(), "missing"), t0, "devel"); err == nil {
		t.Error("Backup into a missing folder succeeded; want an error (an unmounted synced folder must not be created)")
	}
	dir := t.TempDir()
	if _, err := db.Backup(ctx, dir, t0, "devel"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Backup(ctx, dir, t0, "devel"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second backup in the same second = %v, want 'already exists'", err)
	}
	// A cancelled backup leaves nothing behind.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.Backup(cctx, dir, t0.Add(time.Second), "devel"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled backup = %v", err)
	}
	if names := dirNames(t, dir); len(names) != 2 {
		t.Errorf("after a cancelled backup the folder holds %v", names)
	}
}

// A backup whose file does not match its manifest, or without manifest, is refused.
func TestCheckBackupRefusesDamage(t *testing.T) {
	db := newDB(t)
	fill(t, db)
	dir := t.TempDir()
	m, err := db.Backup(ctx, dir, t0, "devel")
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, m.File))
	manifest, _ := os.ReadFile(filepath.Join(dir, strings.TrimSuffix(m.File, ".db.gz")+".json"))
	cases := []struct {
		name      string
		gz, json  []byte
		noJSON    bool
		wantError string
	}{
		{"flipped byte", flip(good, len(good)/2), manifest, false, "does not match its manifest"},
		{"flipped gzip trailer", flip(good, len(good)-2), manifest, false, "does not match its manifest"},
		{"truncated", good[:len(good)-100], manifest, false, "truncated"},
		{"empty", nil, manifest, false, "truncated"},
		{"no manifest", good, nil, true, "no manifest"},
		{"damaged manifest", good, manifest[:20], false, "manifest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			gz := filepath.Join(d, m.File)
			os.WriteFile(gz, tc.gz, 0o600)
			if !tc.noJSON {
				os.WriteFile(strings.TrimSuffix(gz, ".db.gz")+".json", tc.json, 0o600)
			}
			if _, err := CheckBackup(gz); err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Errorf("CheckBackup = %v, want an error containing %q", err, tc.wantError)
			}
			if _, _, err := VerifyBackup(gz, d); err == nil {
				t.Error("VerifyBackup accepted it")
			}
			target := filepath.Join(d, "helpdesk.db")
			os.WriteFile(target, []byte("the old database"), 0o600)
			if _, err := Restore(gz, target, t0, 100*time.Millisecond); err == nil {
				t.Error("Restore accepted it")
			}
			if b, _ := os.ReadFile(target); string(b) != "the old database" {
				t.Error("a refused restore changed the database")
			}
			if left, _ := filepath.Glob(filepath.Join(d, "*.restore-*")); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
	// A manifest that matches a file with the right checksum but wrong content (written by
	// hand) is still caught by the decompressed size and by Verify.
	d := t.TempDir()
	gz := filepath.Join(d, m.File)
	os.WriteFile(gz, good, 0o600)
	var mm Manifest
	json.Unmarshal(manifest, &mm)
	mm.Counts.Tickets = 99
	js, _ := json.Marshal(mm)
	os.WriteFile(strings.TrimSuffix(gz, ".db.gz")+".json", js, 0o600)
	if _, _, err := VerifyBackup(gz, d); err == nil || !strings.Contains(err.Error(), "its manifest says") {
		t.Errorf("VerifyBackup with wrong manifest counts = %v", err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

// Restore refuses while another process holds the database, and leaves it unchanged.
func TestRestoreRefusesLockedDatabase(t *testing.T) {
	db := newDB(t)
	fill(t, db)
	dir := t.TempDir()
	m, err := db.Backup(ctx, dir, t0, "devel")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(db.Path())
	// The lock timeout is honoured: without it Restore would wait for the lock forever (a
	// hang guard of minutes tells that apart, whatever the machine's speed).
	done := make(chan error, 1)
	go func() {
		_, err := Restore(filepath.Join(dir, m.File), db.Path(), t0, 200*time.Millisecond)
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Restore onto an open database still waits for the lock after 2 minutes")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Restore onto an open database = %v, want ErrLocked", err)
	}
	if after, _ := os.ReadFile(db.Path()); !bytes.Equal(before, after) {
		t.Error("a refused restore changed the database")
	}
}

// Verify finds damage the file's structure does not show: a record that does not decode, an
// index entry pointing nowhere, a truncated file, a file that is no helpdesk database.
func TestVerifyFindsProblems(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"record that does not decode", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			i := bytes.Index(b, []byte(`"name":"Bakkerij de Vries"`))
			if i < 0 {
				t.Fatal("customer record not found in the file")
			}
			b[i+len(`"name":`)] = '!'
			os.WriteFile(path, b, 0o600)
		}, `bucket customers, key 0000000000000001`},
		{"unknown record format", func(t *testing.T, path string) {
			raw(t, path, bHeld, u64(1), append([]byte{3}, "{}"...))
		}, "record format 3 unknown"},
		{"index pointing nowhere", func(t *testing.T, path string) {
			raw(t, path, bCustomerAddr, []byte("ghost@example.com"), u64(42))
		}, "customer_addr"},
		{"raw message not matching its hash", func(t *testing.T, path string) {
			raw(t, path, bRaw, bytes.Repeat([]byte{1}, 32), []byte{rawPlain, 'x'})
		}, "does not hash to its key"},
		{"record with another id", func(t *testing.T, path string) {
			raw(t, path, bTickets, u64(5), append([]byte{1}, `{"id":6}`...))
		}, "record says id 6"},
		{"unknown bucket", func(t *testing.T, path string) {
			bdb, _ := bolt.Open(path, 0o600, nil)
			bdb.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("zzz")); return err })
			bdb.Close()
		}, `unknown bucket "zzz"`},
		{"truncated file", func(t *testing.T, path string) {
			bdb, _ := bolt.Open(path, 0o600, nil)
			var size int64
			bdb.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
			bdb.Close()
			os.Truncate(path, size-4096)
		}, "truncated"},
		{"not a database", func(t *testing.T, path string) {
			os.WriteFile(path, bytes.Repeat([]byte("kassa"), 5000), 0o600)
		}, "not a readable bbolt database"},
		{"bbolt file of something else", func(t *testing.T, path string) {
			os.Remove(path)
			bdb, _ := bolt.Open(path, 0o600, nil)
			bdb.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
			bdb.Close()
		}, "not a helpdesk database"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "helpdesk.db")
			db, err := Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			fill(t, db)
			db.Close()
			if _, err := Verify(path); err != nil {
				t.Fatalf("Verify before the damage: %v", err)
			}
			tc.damage(t, path)
			if _, err := Verify(path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// openClosable opens a fresh database that the test may close itself (to verify the file).
func openClosable(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "helpdesk.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// raw writes a key/value straight into a bucket of a closed database file.
func raw(t *testing.T, path string, bucket, key, value []byte) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, value) }); err != nil {
		t.Fatal(err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
