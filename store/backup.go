package store

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/infobits/helpdesk"
)

// Backups (R20). A backup is two plain files in a folder (a synced Dropbox or OneDrive
// folder works: nothing but plain files is written):
//
//	helpdesk-YYYYMMDD-HHMMSS.db.gz   the database as one read transaction saw it (tx.WriteTo), gzip
//	helpdesk-YYYYMMDD-HHMMSS.json    the manifest: time, versions, counts, the .db.gz's size and SHA-256
//
// Each is written under a ".partial" name, fsynced, renamed and the folder fsynced; the
// manifest is written last. A crash therefore leaves at worst a .partial file or a .db.gz
// without manifest, and neither counts as a backup: restore refuses it and prune removes it
// once a newer backup exists.

// Manifest describes one backup. Field names are a contract: fields may be added, never renamed.
type Manifest struct {
	Time    string         `json:"time"`    // snapshot time, RFC 3339 in Amsterdam
	Version string         `json:"version"` // the program that wrote it
	Schema  int            `json:"schema"`  // meta/schema of the database
	Counts  ManifestCounts `json:"counts"`
	File    string         `json:"file"`    // the .db.gz beside it
	Size    int64          `json:"size"`    // bytes of the .db.gz
	SHA256  string         `json:"sha256"`  // of the .db.gz, hex
	DBSize  int64          `json:"db_size"` // bytes of the database, uncompressed
}

// ManifestCounts are the record counts of a backup.
type ManifestCounts struct {
	Customers int `json:"customers"`
	Tickets   int `json:"tickets"`
	Messages  int `json:"messages"`
	Held      int `json:"held"`
	Outbox    int `json:"outbox"`
}

func manifestCounts(c Counts) ManifestCounts {
	return ManifestCounts{Customers: c.Customers, Tickets: c.Tickets, Messages: c.Messages, Held: c.Held, Outbox: c.Outbox}
}

// Counts returns the counts as Counts.
func (m ManifestCounts) Counts() Counts {
	return Counts{Customers: m.Customers, Tickets: m.Tickets, Messages: m.Messages, Held: m.Held, Outbox: m.Outbox}
}

func (c Counts) String() string {
	return fmt.Sprintf("%d customers, %d tickets, %d messages, %d held, %d outbox", c.Customers, c.Tickets, c.Messages, c.Held, c.Outbox)
}

// backupFileMode: readable by the gateway's user and its group (a sync client in the
// folder's group can read it), never by others: the backup holds customer data.
const backupFileMode = 0o640

// Backup writes a backup of the database into dir (which must exist) named after at, and
// returns its manifest. The snapshot is one read transaction's WriteTo: consistent, and
// writers are not blocked while it runs. ctx aborts a backup in progress (its partial file is
// removed).
func (d *DB) Backup(ctx context.Context, dir string, at time.Time, version string) (*Manifest, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("backup folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("backup folder %s is not a directory", dir)
	}
	base := helpdesk.BackupBase(at)
	gzName, jsonName := base+helpdesk.ExtBackup, base+helpdesk.ExtManifest
	for _, n := range []string{gzName, jsonName} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			return nil, fmt.Errorf("%s already exists in %s (one backup a second)", n, dir)
		}
	}
	m := &Manifest{Time: at.In(helpdesk.Amsterdam()).Format(time.RFC3339), Version: version, File: gzName}
	// A database opened with NoSync (tests only) writes its backups without fsync too.
	noSync := d.bolt.NoSync
	err = writeAtomic(dir, gzName, noSync, func(w io.Writer) error {
		h := sha256.New()
		cw := &countWriter{}
		bw := bufio.NewWriterSize(io.MultiWriter(w, h, cw), 64<<10)
		zw := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(zw)
		zw.Reset(bw)
		zw.Name, zw.ModTime = base+".db", at
		if err := d.bolt.View(func(btx *bolt.Tx) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			m.Schema = schemaOf(btx)
			m.Counts = manifestCounts((&Tx{tx: btx}).Counts())
			n, err := btx.WriteTo(ctxWriter{ctx, zw})
			m.DBSize = n
			return err
		}); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		m.Size, m.SHA256 = cw.n, hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(dir, jsonName, noSync, func(w io.Writer) error {
		_, err := w.Write(append(js, '\n'))
		return err
	}); err != nil {
		return nil, fmt.Errorf("manifest (%s is no backup without it): %w", gzName, err)
	}
	return m, nil
}

func schemaOf(btx *bolt.Tx) int {
	if b := btx.Bucket(bMeta); b != nil {
		if v := b.Get([]byte("schema")); len(v) == 8 {
			return int(binary.BigEndian.Uint64(v))
		}
	}
	return 0
}

// gzipWriters reuses compressors: each holds about a megabyte.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// writeAtomic writes dir/name through dir/name.partial: created exclusively, fsynced,
// renamed, and the folder fsynced (noSync: no fsync, for tests). On failure the partial file
// is removed.
func writeAtomic(dir, name string, noSync bool, write func(io.Writer) error) (err error) {
	partial := filepath.Join(dir, name+helpdesk.ExtPartial)
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_EXCL, backupFileMode)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(partial)
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if !noSync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", partial, err)
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(partial, filepath.Join(dir, name)); err != nil {
		return err
	}
	if noSync {
		return nil
	}
	return SyncDir(dir)
}

// SyncDir makes a rename in dir durable. File systems that cannot fsync a directory (some
// FUSE and network file systems) answer EINVAL or ENOTSUP: nothing more can be done there.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("fsync folder %s: %w", dir, err)
	}
	return nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// ctxWriter fails writes once ctx is done: a backup in progress stops at shutdown.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// ManifestPath is the manifest beside a .db.gz backup.
func ManifestPath(gzPath string) (string, error) {
	stem, ok := strings.CutSuffix(gzPath, helpdesk.ExtBackup)
	if !ok {
		return "", fmt.Errorf("%s: not a backup: want a %s file with its %s manifest beside it", gzPath, helpdesk.ExtBackup, helpdesk.ExtManifest)
	}
	return stem + helpdesk.ExtManifest, nil
}

// CheckBackup reads the manifest beside gzPath and checks the file against it: size and
// SHA-256. It refuses a file without manifest, a truncated or otherwise changed file.
func CheckBackup(gzPath string) (*Manifest, error) {
	mpath, err := ManifestPath(gzPath)
	if err != nil {
		return nil, err
	}
	js, err := os.ReadFile(mpath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no manifest %s beside it: not a complete backup (a crash while it was written, or the manifest was not copied along)", gzPath, filepath.Base(mpath))
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("manifest %s is damaged: %v", mpath, err)
	}
	if m.SHA256 == "" || m.Size <= 0 {
		return nil, fmt.Errorf("manifest %s lacks the size or checksum of the backup", mpath)
	}
	f, err := os.Open(gzPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", gzPath, err)
	}
	if n != m.Size {
		return nil, fmt.Errorf("%s has %d bytes, its manifest says %d: the file is truncated or was changed", gzPath, n, m.Size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != m.SHA256 {
		return nil, fmt.Errorf("%s: SHA-256 %s does not match its manifest's %s: the file is corrupt", gzPath, sum[:16]+"…", m.SHA256[:min(16, len(m.SHA256))]+"…")
	}
	return &m, nil
}

// extract decompresses a checked backup into w and checks the size the manifest gives.
func extract(gzPath string, m *Manifest, w io.Writer) error {
	f, err := os.Open(gzPath)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("%s: not gzip data: %w", gzPath, err)
	}
	zr.Multistream(false)
	n, err := io.Copy(w, zr)
	if err != nil {
		return fmt.Errorf("%s: decompress: %w", gzPath, err)
	}
	if m.DBSize > 0 && n != m.DBSize {
		return fmt.Errorf("%s decompresses to %d bytes, its manifest says %d", gzPath, n, m.DBSize)
	}
	return nil
}

// VerifyBackup checks a .db.gz against its manifest, decompresses it into a temporary file in
// tmpDir ("" for the system's) and verifies that as Verify does. The counts must match the
// manifest's.
func VerifyBackup(gzPath, tmpDir string) (*Manifest, Counts, error) {
	m, err := CheckBackup(gzPath)
	if err != nil {
		return nil, Counts{}, err
	}
	tmp, err := os.CreateTemp(tmpDir, "helpdesk-verify-*.db")
	if err != nil {
		return m, Counts{}, err
	}
	defer os.Remove(tmp.Name())
	err = extract(gzPath, m, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return m, Counts{}, err
	}
	counts, err := Verify(tmp.Name())
	if err != nil {
		return m, counts, fmt.Errorf("%s: %w", gzPath, err)
	}
	if counts != m.Counts.Counts() {
		return m, counts, fmt.Errorf("%s holds %s; its manifest says %s", gzPath, counts, m.Counts.Counts())
	}
	return m, counts, nil
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Manifest *Manifest
	Counts   Counts
	// Previous is where the database that was replaced now is; "" when there was none.
	Previous string
}

// Restore replaces the database at dbPath with the backup gzPath. It checks the backup
// against its manifest first, takes the database's lock (ErrLocked when a process holds it
// for longer than lockTimeout), writes the decompressed copy to a temporary file beside
// dbPath, verifies it, keeps the old database as dbPath.before-restore-YYYYMMDD-HHMMSS (at,
// Amsterdam) and renames the copy over dbPath. The database is never half replaced: until the
// rename it is the old one, after it the verified new one.
func Restore(gzPath, dbPath string, at time.Time, lockTimeout time.Duration) (*RestoreResult, error) {
	m, err := CheckBackup(gzPath)
	if err != nil {
		return nil, err
	}
	_, statErr := os.Stat(dbPath)
	exists := statErr == nil
	if exists {
		unlock, err := lockExclusive(dbPath, lockTimeout)
		if err != nil {
			return nil, err
		}
		defer unlock()
	} else if !errors.Is(statErr, os.ErrNotExist) {
		return nil, statErr
	}
	dir := filepath.Dir(dbPath)
	tmp, err := os.CreateTemp(dir, filepath.Base(dbPath)+".restore-*")
	if err != nil {
		return nil, err
	}
	tmpName := tmp.Name()
	done := false
	defer func() {
		if !done {
			os.Remove(tmpName)
		}
	}()
	err = extract(gzPath, m, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	counts, err := Verify(tmpName)
	if err != nil {
		return nil, fmt.Errorf("the restored copy does not verify, the database is unchanged: %w", err)
	}
	if counts != m.Counts.Counts() {
		return nil, fmt.Errorf("the restored copy holds %s, its manifest says %s; the database is unchanged", counts, m.Counts.Counts())
	}
	res := &RestoreResult{Manifest: m, Counts: counts}
	if exists {
		res.Previous = dbPath + ".before-restore-" + helpdesk.BackupStamp(at)
		if _, err := os.Lstat(res.Previous); err == nil {
			return nil, fmt.Errorf("%s already exists; the database is unchanged", res.Previous)
		}
		// A hard link keeps dbPath in place until the rename replaces it at once; where
		// links are not possible the old file is moved aside first.
		if err := os.Link(dbPath, res.Previous); err != nil {
			if err := os.Rename(dbPath, res.Previous); err != nil {
				return nil, fmt.Errorf("keep the old database as %s: %w; the database is unchanged", res.Previous, err)
			}
		}
	}
	if err := os.Rename(tmpName, dbPath); err != nil {
		return nil, fmt.Errorf("put the restored copy in place: %w (the old database is %s)", err, res.Previous)
	}
	done = true
	return res, SyncDir(dir)
}

// lockExclusive takes the lock bbolt takes on a database file (flock, exclusive), waiting at
// most timeout: a gateway holding the database makes it fail with ErrLocked. The file's
// content is not read, so a damaged database can be locked (and replaced) too.
func lockExclusive(path string, timeout time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// --- verify ---

// recordCheck checks one key/value of a bucket; tx is there to follow references.
type recordCheck func(tx *bolt.Tx, k, v []byte) error

// bucketChecks decodes every record of every bucket with its type: the layout of doc.go.
// Index entries must point at a record that exists (a record and its index entries change in
// the same transaction). A bucket added to allBuckets needs an entry here (a test checks).
var bucketChecks = map[string]recordCheck{
	string(bMeta): func(_ *bolt.Tx, k, v []byte) error {
		if string(k) == "schema" && len(v) != 8 {
			return fmt.Errorf("schema value of %d bytes, want 8", len(v))
		}
		return nil
	},
	string(bCustomers):     jsonRecord(8, func(k []byte, c *helpdesk.Customer) error { return sameID(k, c.ID) }),
	string(bCustomerAddr):  indexTo(0, func(k, v []byte) ([]byte, []byte) { return bCustomers, v }),
	string(bCustomerPhone): indexTo(0, func(k, v []byte) ([]byte, []byte) { return bCustomers, v }),
	string(bTickets):       jsonRecord(8, func(k []byte, t *helpdesk.Ticket) error { return sameID(k, t.ID) }),
	string(bTicketsByCust): indexTo(16, func(k, v []byte) ([]byte, []byte) { return bTickets, k[8:] }),
	string(bDue):           indexTo(16, func(k, v []byte) ([]byte, []byte) { return bTickets, k[8:] }),
	string(bMessages): func(tx *bolt.Tx, k, v []byte) error {
		if len(k) != 12 {
			return fmt.Errorf("key of %d bytes, want 12", len(k))
		}
		var m helpdesk.Message
		if err := decode(v, &m); err != nil {
			return err
		}
		if m.TicketID != binary.BigEndian.Uint64(k) || m.Seq != binary.BigEndian.Uint32(k[8:]) {
			return fmt.Errorf("record says ticket %d message %d", m.TicketID, m.Seq)
		}
		return exists(tx, bTickets, k[:8])
	},
	string(bRaw): func(_ *bolt.Tx, k, v []byte) error {
		if len(k) != 32 || len(v) == 0 {
			return fmt.Errorf("key of %d bytes and value of %d: want a SHA-256 and a codec byte", len(k), len(v))
		}
		var raw []byte
		switch v[0] {
		case rawPlain:
			raw = v[1:]
		case rawDeflate:
			var err error
			if raw, err = io.ReadAll(flate.NewReader(bytes.NewReader(v[1:]))); err != nil {
				return fmt.Errorf("inflate: %w", err)
			}
		default:
			return fmt.Errorf("unknown codec %d", v[0])
		}
		if sum := sha256.Sum256(raw); !bytes.Equal(sum[:], k) {
			return errors.New("the raw message does not hash to its key")
		}
		return nil
	},
	string(bIngested):    jsonRecord[helpdesk.Ref](32, nil),
	string(bIngestedIDs): jsonRecord[helpdesk.Ref](32, nil),
	string(bMessageIDs):  indexTo(0, func(k, v []byte) ([]byte, []byte) { return bTickets, v }),
	string(bHeld):        jsonRecord(8, func(k []byte, h *helpdesk.Held) error { return sameID(k, h.ID) }),
	string(bOutbox):      jsonRecord(8, func(k []byte, n *helpdesk.Notification) error { return sameID(k, n.ID) }),
	string(bOutboxQueue): indexTo(16, func(k, v []byte) ([]byte, []byte) { return bOutbox, k[8:] }),
	string(bTicketNotes): func(tx *bolt.Tx, k, v []byte) error {
		if len(k) != 16 {
			return fmt.Errorf("key of %d bytes, want 16", len(k))
		}
		if err := exists(tx, bTickets, k[:8]); err != nil {
			return err
		}
		return exists(tx, bOutbox, k[8:])
	},
	string(bMailboxes): jsonRecord(0, func(k []byte, s *helpdesk.MailboxState) error {
		if s.Name != string(k) {
			return fmt.Errorf("record names mailbox %q", s.Name)
		}
		return nil
	}),
	string(bParseAttempts): jsonRecord(0, func(k []byte, a *helpdesk.ParseAttempts) error {
		if a.Mailbox != string(k) {
			return fmt.Errorf("record names mailbox %q", a.Mailbox)
		}
		return nil
	}),
	string(bLimitNotices): func(_ *bolt.Tx, k, v []byte) error {
		if len(k) != 18 {
			return fmt.Errorf("key of %d bytes, want customer(8) and YYYY-MM-DD", len(k))
		}
		_, err := helpdesk.ParseDate(string(k[8:]))
		return err
	},
	string(bAutoReplies): separatorKey(8),
	string(bTokens):      jsonRecord[helpdesk.Token](32, nil),
	string(bTokensByCust): func(tx *bolt.Tx, k, v []byte) error {
		if len(k) < 8+1+32 || k[len(k)-33] != 0 {
			return fmt.Errorf("key of %d bytes, want customer(8) purpose 0x00 sha256(32)", len(k))
		}
		return exists(tx, bTokens, k[len(k)-32:])
	},
	string(bNotifMsgIDs): indexTo(0, func(k, v []byte) ([]byte, []byte) { return bOutbox, v }),
	string(bBounced): func(_ *bolt.Tx, k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("value of %d bytes, want a time(8)", len(v))
		}
		return nil
	},
	string(bUIDs):         separatorKey(8),
	string(bLoginChanges): jsonRecord(8, func(k []byte, c *helpdesk.LoginChange) error { return sameID(k, c.ID) }),
	string(bLoginPending): func(tx *bolt.Tx, k, v []byte) error {
		if len(k) != 8 || len(v) != 8 {
			return fmt.Errorf("key of %d bytes and value of %d, want customer(8) -> login change(8)", len(k), len(v))
		}
		if err := exists(tx, bCustomers, k); err != nil {
			return err
		}
		return exists(tx, bLoginChanges, v)
	},
	string(bEscalations):   checkEscalation,
	string(bSearchPending): checkSearchPending,
	string(bHeldPending): func(tx *bolt.Tx, k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("key of %d bytes, want 8", len(k))
		}
		return exists(tx, bHeld, k)
	},
	string(bPasswords): func(tx *bolt.Tx, k, v []byte) error {
		if err := jsonRecord[helpdesk.Password](8, nil)(tx, k, v); err != nil {
			return err
		}
		return exists(tx, bCustomers, k)
	},
	string(bSessions): jsonRecord[helpdesk.Session](32, nil),
	string(bSessionsByCust): func(tx *bolt.Tx, k, v []byte) error {
		if len(k) != 8+32 {
			return fmt.Errorf("key of %d bytes, want customer(8) sha256(32)", len(k))
		}
		return exists(tx, bSessions, k[8:])
	},
}

func jsonRecord[T any](keyLen int, check func(k []byte, r *T) error) recordCheck {
	return func(_ *bolt.Tx, k, v []byte) error {
		if keyLen > 0 && len(k) != keyLen {
			return fmt.Errorf("key of %d bytes, want %d", len(k), keyLen)
		}
		var r T
		if err := decode(v, &r); err != nil {
			return err
		}
		if check != nil {
			return check(k, &r)
		}
		return nil
	}
}

func sameID(k []byte, id uint64) error {
	if binary.BigEndian.Uint64(k) != id {
		return fmt.Errorf("record says id %d", id)
	}
	return nil
}

// indexTo checks an index entry (a key of keyLen bytes, 0: any) whose target record is
// named by target.
func indexTo(keyLen int, target func(k, v []byte) (bucket, key []byte)) recordCheck {
	return func(tx *bolt.Tx, k, v []byte) error {
		if keyLen > 0 && len(k) != keyLen {
			return fmt.Errorf("key of %d bytes, want %d", len(k), keyLen)
		}
		bucket, key := target(k, v)
		if len(key) != 8 {
			return fmt.Errorf("reference of %d bytes, want an id(8)", len(key))
		}
		return exists(tx, bucket, key)
	}
}

// separatorKey checks keys of the form name 0x00 suffix(n).
func separatorKey(n int) recordCheck {
	return func(_ *bolt.Tx, k, v []byte) error {
		if len(k) < n+1 || k[len(k)-n-1] != 0 {
			return fmt.Errorf("key of %d bytes, want a name, 0x00 and %d bytes", len(k), n)
		}
		return nil
	}
}

func exists(tx *bolt.Tx, bucket, key []byte) error {
	b := tx.Bucket(bucket)
	if b == nil || b.Get(key) == nil {
		return fmt.Errorf("points at %s %x, which does not exist", bucket, key)
	}
	return nil
}

// Verify checks a database file without changing it: it opens it read-only, checks that the
// file is as long as its header says, decodes every record of every bucket the store knows
// with its type (and that index entries point at records), and runs bbolt's consistency check
// (tx.Check). It returns the record counts, or the first problem found.
func Verify(path string) (counts Counts, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return counts, err
	}
	if !fi.Mode().IsRegular() {
		return counts, fmt.Errorf("%s is not a plain file", path)
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return counts, fmt.Errorf("%s: %w (a running gateway?); verify a backup of it instead", path, ErrLocked)
	}
	if err != nil {
		return counts, fmt.Errorf("%s is not a readable bbolt database: %w", path, err)
	}
	defer bdb.Close()
	err = bdb.View(func(tx *bolt.Tx) error {
		// Pages beyond the end of the file would be read through the memory map and fault.
		if size := tx.Size(); size > fi.Size() {
			return fmt.Errorf("truncated: the file has %d bytes, its header says %d", fi.Size(), size)
		}
		var err error
		if counts, err = verifyRecords(tx); err != nil {
			return err
		}
		var first error
		for err := range tx.Check() { // drained to the end: the check runs in its own goroutine
			if first == nil {
				first = fmt.Errorf("bbolt consistency check: %w", err)
			}
		}
		return first
	})
	return counts, err
}

// verifyRecords walks every bucket. A damaged page can make bbolt read outside the map; such
// a fault becomes an error here instead of ending the process.
func verifyRecords(tx *bolt.Tx) (counts Counts, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged database: %v", r)
		}
	}()
	meta := tx.Bucket(bMeta)
	if meta == nil || meta.Get([]byte("schema")) == nil {
		return counts, errors.New("not a helpdesk database: no meta/schema")
	}
	if s := schemaOf(tx); s > schemaVersion || s < 1 {
		return counts, fmt.Errorf("database schema %d; this program reads up to %d", s, schemaVersion)
	}
	err = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		check, ok := bucketChecks[string(name)]
		if !ok {
			return fmt.Errorf("unknown bucket %q", name)
		}
		n := 0
		err := b.ForEach(func(k, v []byte) error {
			if v == nil && b.Bucket(k) != nil {
				return fmt.Errorf("bucket %s: unexpected nested bucket %x", name, k)
			}
			if err := check(tx, k, v); err != nil {
				return fmt.Errorf("bucket %s, key %s: %w", name, showKey(k), err)
			}
			n++
			return nil
		})
		switch string(name) {
		case string(bCustomers):
			counts.Customers = n
		case string(bTickets):
			counts.Tickets = n
		case string(bMessages):
			counts.Messages = n
		case string(bHeld):
			counts.Held = n
		case string(bOutbox):
			counts.Outbox = n
		}
		return err
	})
	return counts, err
}

// showKey prints a key as text when it is printable, else as hex.
func showKey(k []byte) string {
	for _, c := range k {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%x", k)
		}
	}
	return fmt.Sprintf("%q", k)
}
