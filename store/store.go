package store

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/infobits/helpdesk"
)

// schemaVersion is the format version of the whole file, kept in meta/schema.
const schemaVersion = 1

// recordVersion is the first byte of every JSON record; recordDeflated marks a record whose
// JSON is deflate-compressed (large thread messages: their text compresses several times).
const (
	recordVersion  = 1
	recordDeflated = 2
)

var (
	bMeta           = []byte("meta")
	bCustomers      = []byte("customers")
	bCustomerAddr   = []byte("customer_addr")
	bCustomerPhone  = []byte("customer_phone")
	bTickets        = []byte("tickets")
	bTicketsByCust  = []byte("tickets_by_customer")
	bMessages       = []byte("messages")
	bRaw            = []byte("raw")
	bIngested       = []byte("ingested")
	bMessageIDs     = []byte("message_ids")
	bHeld           = []byte("held")
	bOutbox         = []byte("outbox")
	bOutboxQueue    = []byte("outbox_queue")
	bTicketNotes    = []byte("ticket_notifications")
	bMailboxes      = []byte("mailboxes")
	bLimitNotices   = []byte("limit_notices")
	bIngestedIDs    = []byte("ingested_ids")
	bAutoReplies    = []byte("auto_replies")
	bTokens         = []byte("tokens")
	bTokensByCust   = []byte("tokens_by_customer")
	bNotifMsgIDs    = []byte("notification_msgids")
	bBounced        = []byte("bounced")
	bUIDs           = []byte("uids")
	bDue            = []byte("due")
	bHeldPending    = []byte("held_pending")
	bLoginChanges   = []byte("login_changes")
	bLoginPending   = []byte("login_pending")
	bParseAttempts  = []byte("parse_attempts")
	bEscalations    = []byte("escalations")
	bSearchPending  = []byte("search_pending")
	bPasswords      = []byte("passwords")
	bSessions       = []byte("sessions")
	bSessionsByCust = []byte("sessions_by_customer")
)

var allBuckets = [][]byte{bMeta, bCustomers, bCustomerAddr, bCustomerPhone, bTickets, bTicketsByCust, bMessages,
	bRaw, bIngested, bMessageIDs, bHeld, bOutbox, bOutboxQueue, bTicketNotes, bMailboxes, bLimitNotices, bIngestedIDs, bAutoReplies, bTokens, bTokensByCust, bNotifMsgIDs, bBounced, bUIDs, bDue, bHeldPending,
	bLoginChanges, bLoginPending, bParseAttempts, bEscalations, bSearchPending, bPasswords, bSessions, bSessionsByCust}

// Errors callers branch on.
var (
	// ErrLocked: another process (usually a running gateway) holds the database file.
	ErrLocked = errors.New("database is in use by another process")
	// ErrAddressTaken: the address already belongs to another customer (R1).
	ErrAddressTaken = errors.New("address belongs to another customer")
	// ErrPhoneTaken: the number is registered by another customer (R19).
	ErrPhoneTaken = errors.New("number registered by another customer")
	// ErrTokenInvalid: a recovery token that is unknown, used, expired or replaced. Callers
	// show one message for all: which one it was is no business of whoever holds it.
	ErrTokenInvalid = errors.New("invalid or expired link")
)

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock; zero means one second. bbolt's own
	// default waits forever, which would make a second gateway hang instead of failing.
	LockTimeout time.Duration
	ReadOnly    bool
	// NoSync skips fsync: for tests only, it gives up durability.
	NoSync bool
}

// DB is the open database. It is safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	path string
	// created: Open made the file (there was none at path).
	created bool

	queued  wakeList // after a commit that queued notifications
	changed wakeList // after a commit that changed a ticket or its thread

	// deflaters reuses compressors: a new one allocates over a megabyte, more than
	// compressing a small email costs.
	deflaters sync.Pool
}

// Open opens (creating if needed) the database at path and brings its schema up to date.
// It blocks at most opts.LockTimeout for the file lock and then returns ErrLocked.
func Open(path string, opts Options) (*DB, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	_, statErr := os.Stat(path)
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly, NoSync: opts.NoSync})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Grow the file 2 MiB at a time, not bbolt's 16: a small helpdesk's database stays small
	// (the mmap is remapped a little more often, which costs microseconds).
	bdb.AllocSize = 2 << 20
	d := &DB{bolt: bdb, path: path, created: errors.Is(statErr, os.ErrNotExist)}
	if opts.ReadOnly {
		return d, nil
	}
	if err := bdb.Update(migrate); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return d, nil
}

// Created reports whether Open made a new, empty database file because there was none at
// its path: a command says so, for an operator who mistyped the path would otherwise look at
// an empty helpdesk without knowing why.
func (d *DB) Created() bool { return d.created }

func migrate(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bMeta)
	if v := meta.Get([]byte("schema")); v != nil {
		if got := binary.BigEndian.Uint64(v); got > schemaVersion {
			return fmt.Errorf("database schema %d is newer than this program (%d): upgrade the binary", got, schemaVersion)
		}
	}
	return meta.Put([]byte("schema"), u64(schemaVersion))
}

// Path is the file the database lives in.
func (d *DB) Path() string { return d.path }

// Close closes the file.
func (d *DB) Close() error { return d.bolt.Close() }

// Tx is a transaction. Methods of a read-only Tx that write return an error.
type Tx struct {
	tx       *bolt.Tx
	db       *DB
	enqueued bool
	// searchMarked: a ticket or its thread changed (search_pending was written).
	searchMarked bool
}

// Update runs fn in one read-write transaction, committed when fn returns nil. Commit is
// durable (fsync) when it returns. Waiters of OutboxWake are signalled after a commit that
// queued notifications.
func (d *DB) Update(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var queued, changed bool
	err := d.bolt.Update(func(btx *bolt.Tx) error {
		tx := &Tx{tx: btx, db: d}
		if err := fn(tx); err != nil {
			return err
		}
		queued, changed = tx.enqueued, tx.searchMarked
		return nil
	})
	if err == nil && queued {
		d.queued.wake()
	}
	if err == nil && changed {
		d.changed.wake()
	}
	return err
}

// View runs fn in a read-only transaction.
func (d *DB) View(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.bolt.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx, db: d}) })
}

// OutboxWake returns a channel that receives a value after the next commit that queues a
// notification. The channel is buffered: a wake-up is never lost between two reads.
func (d *DB) OutboxWake() <-chan struct{} { return d.queued.add() }

// wakeList is the channels woken after a kind of commit.
type wakeList struct {
	mu    sync.Mutex
	chans []chan struct{}
}

// add returns a new channel of the list, buffered by one: a wake-up is never lost between
// two reads.
func (l *wakeList) add() <-chan struct{} {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	l.chans = append(l.chans, ch)
	l.mu.Unlock()
	return ch
}

// wake wakes every channel of the list without blocking.
func (l *wakeList) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ch := range l.chans {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Check verifies the file's internal consistency (bbolt's page checks); for tests and verify.
func (d *DB) Check() error {
	return d.bolt.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// Size is the database file size in bytes.
func (d *DB) Size() (int64, error) {
	fi, err := os.Stat(d.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func key2(a, b uint64) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 16), a)
	return binary.BigEndian.AppendUint64(k, b)
}

func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(recordVersion)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<" stays one byte: mail is full of it
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decode(b []byte, v any) error {
	if len(b) == 0 {
		return errors.New("empty record")
	}
	switch b[0] {
	case recordVersion:
		return json.Unmarshal(b[1:], v)
	case recordDeflated:
		return json.NewDecoder(flate.NewReader(bytes.NewReader(b[1:]))).Decode(v)
	}
	return fmt.Errorf("record format %d unknown (this program reads %d and %d)", b[0], recordVersion, recordDeflated)
}

// appendOnly are the buckets whose keys mostly grow: their pages are filled to 90 % instead of
// bbolt's 50 %, which keeps the file small.
func appendOnly(bucket []byte) bool {
	switch string(bucket) {
	case string(bTickets), string(bMessages), string(bHeld), string(bOutbox), string(bUIDs):
		return true
	}
	return false
}

func (tx *Tx) put(bucket, key []byte, v any) error {
	b, err := encode(v)
	if err != nil {
		return fmt.Errorf("encode %s record: %w", bucket, err)
	}
	if string(bucket) == string(bMessages) && len(b) > 512 {
		if b, err = tx.deflate(b); err != nil {
			return fmt.Errorf("compress %s record: %w", bucket, err)
		}
	}
	bk := tx.tx.Bucket(bucket)
	if appendOnly(bucket) {
		bk.FillPercent = 0.9
	}
	return bk.Put(key, b)
}

// deflate turns a version-1 record into a deflated one when that is smaller.
func (tx *Tx) deflate(rec []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(rec) / 2)
	buf.WriteByte(recordDeflated)
	if err := tx.db.deflateInto(&buf, rec[1:]); err != nil {
		return nil, fmt.Errorf("compress record: %w", err)
	}
	if buf.Len() >= len(rec) {
		return rec, nil
	}
	return buf.Bytes(), nil
}

// deflateInto appends src, deflated at BestSpeed, to buf, with a compressor from the pool.
func (d *DB) deflateInto(buf *bytes.Buffer, src []byte) error { return d.deflatePiece(buf, src, true) }

// deflatePiece appends src, deflated at BestSpeed, to buf: a whole stream when final, else a
// piece of one that ends on a byte boundary (a sync flush), which another piece may follow.
func (d *DB) deflatePiece(buf *bytes.Buffer, src []byte, final bool) error {
	zw, _ := d.deflaters.Get().(*flate.Writer)
	if zw == nil {
		var err error
		if zw, err = flate.NewWriter(buf, flate.BestSpeed); err != nil {
			return fmt.Errorf("new deflate writer: %w", err)
		}
	} else {
		zw.Reset(buf)
	}
	defer func() {
		zw.Reset(io.Discard) // the pooled writer must not keep this call's buffer alive
		d.deflaters.Put(zw)
	}()
	if _, err := zw.Write(src); err != nil {
		return err
	}
	if !final {
		return zw.Flush()
	}
	return zw.Close()
}

func (tx *Tx) get(bucket, key []byte, v any) error {
	b := tx.tx.Bucket(bucket).Get(key)
	if b == nil {
		return helpdesk.ErrNotFound
	}
	if err := decode(b, v); err != nil {
		return fmt.Errorf("decode %s record %x: %w", bucket, key, err)
	}
	return nil
}

func (tx *Tx) nextID(bucket []byte) (uint64, error) {
	id, err := tx.tx.Bucket(bucket).NextSequence()
	if err != nil {
		return 0, fmt.Errorf("next id in %s: %w", bucket, err)
	}
	return id, nil
}

// BucketStats reports, per bucket, the bytes allocated and in use (for tuning and benchmarks).
func (d *DB) BucketStats() (map[string][2]int, error) {
	out := map[string][2]int{}
	err := d.bolt.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			st := tx.Bucket(name).Stats()
			out[string(name)] = [2]int{st.LeafAlloc + st.BranchAlloc, st.LeafInuse + st.BranchInuse}
		}
		return nil
	})
	return out, err
}
