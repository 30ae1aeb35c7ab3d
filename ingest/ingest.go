// Package ingest reads the support mailbox over IMAP and turns every email into a ticket, a
// reply, a staff answer or a held email, through mail/parse (read) and the desk (decide with
// rules/policy, write to the store). It owns the IMAP session: login, SELECT, batched UID FETCH of BODY.PEEK[], IDLE or
// polling, reconnect with backoff, and the UIDVALIDITY/UID checkpoint.
//
// Exactly once: a batch of emails, their tickets, held records, outbox rows and the new UID
// checkpoint commit in one bbolt transaction; only after that commit is the batch flagged
// \Seen (and moved) on the server. A crash before the commit replays the batch; a crash after
// it finds the checkpoint advanced and the pending flags recorded. Raw-message hashes make a
// replay under a new UIDVALIDITY a no-op. The \Seen flag is never what says an email is new:
// another client reading the mailbox cannot make the gateway skip mail.
//
// Ingest never sends mail and never imports notify: notifications go to the store's outbox
// for notify. Probe is the IMAP look of `helpdesk doctor` and `import`, through the same dial
// as the poller.
package ingest

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/internal/oauth"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
)

// Config is what the poller needs. Zero values take the documented defaults.
type Config struct {
	Addr, User, Password string
	// OAuth, when set, gives the access tokens the poller signs in with (XOAUTH2 or
	// OAUTHBEARER) instead of Password.
	OAuth     *oauth.Source
	TLS       string      // TLSImplicit (default), TLSStart or TLSNone
	TLSConfig *tls.Config // nil: system roots, server name from Addr
	Mailbox   string      // default "INBOX"
	MoveTo    string      // optional folder processed mail is moved to
	// BatchSize and BatchBytes bound one UID FETCH and one commit.
	BatchSize  int   // default 500 messages
	BatchBytes int64 // default 8 MiB
	// MaxMessageBytes: larger emails are left on the server and held (from RFC822.SIZE,
	// before their body is fetched). Default 25 MiB.
	MaxMessageBytes int64
	// PollInterval is the wait between checks when the server lacks IDLE, and the safety
	// re-check while idling (IDLE can miss a push after a server-side hiccup). Default 1 min.
	PollInterval time.Duration
	// BackoffMin and BackoffMax bound the wait before reconnecting. Defaults 1 s and 2 min.
	BackoffMin, BackoffMax time.Duration
	// DialTimeout bounds connecting, logging in and selecting. Default 20 s.
	DialTimeout time.Duration
	// CommandTimeout bounds every other IMAP command (a big FETCH gets a minute more per
	// 64 MiB): a server that stops answering has its connection dropped. Default 2 min.
	CommandTimeout time.Duration
	// StopGrace is how long a cancelled Run lets the batch in hand finish before it drops
	// the connection. Default 15 s.
	StopGrace time.Duration
	// GapInterval is how often every message of the mailbox is compared with what the store
	// took in (the gap alarm); the check above the checkpoint runs after every sync.
	// Default 10 min.
	GapInterval time.Duration
	// BacklogAge: at the first sync of a mailbox (and after it was reset), mail that arrived
	// more than this long before is ingested without automatic replies — the gateway must
	// not answer a mailbox's whole history — and as history (desk.Desk.ApplyHistory: its new
	// tickets are closed, without a deadline). Default 24 h.
	BacklogAge time.Duration
	// Since: mail that arrived (INTERNALDATE) before it is passed over — not taken in, and
	// the checkpoint moves past it, so a later run does not take it in either (import
	// -since). Zero: every email is taken in.
	Since time.Time

	// Parse bounds the work of reading one email (zero fields: parse's defaults). An
	// email beyond them is held as unparseable; the tests of the safety nets switch bounds
	// off here.
	Parse parse.Limits

	Desk   *desk.Desk
	Logger *slog.Logger
}

func (c *Config) defaults() {
	c.TLS = cmp.Or(c.TLS, helpdesk.TLSImplicit)
	c.Mailbox = cmp.Or(c.Mailbox, "INBOX")
	c.BatchSize = cmp.Or(c.BatchSize, 500)
	c.BatchBytes = cmp.Or(c.BatchBytes, 8<<20)
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, 25<<20)
	c.PollInterval = cmp.Or(c.PollInterval, time.Minute)
	c.BackoffMin = cmp.Or(c.BackoffMin, time.Second)
	c.BackoffMax = cmp.Or(c.BackoffMax, 2*time.Minute)
	c.DialTimeout = cmp.Or(c.DialTimeout, 20*time.Second)
	c.CommandTimeout = cmp.Or(c.CommandTimeout, 2*time.Minute)
	c.StopGrace = cmp.Or(c.StopGrace, 15*time.Second)
	c.BacklogAge = cmp.Or(c.BacklogAge, 24*time.Hour)
	c.GapInterval = cmp.Or(c.GapInterval, 10*time.Minute)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Poller keeps the store in step with the support mailbox.
type Poller struct {
	cfg Config
	db  *store.DB
	log *slog.Logger
	// events is told about every outcome and sync; tests and metrics listen.
	events chan<- Event
}

// Event reports progress to an optional listener (tests, the demo, metrics).
type Event struct {
	Outcome *desk.Outcome // one email committed
	Synced  bool          // the mailbox was brought up to date
	Idling  bool          // the server accepted IDLE: new mail is pushed from now on
	Gap     int           // emails still above the checkpoint after two syncs: not taken in
	Err     error         // a session failed (the poller reconnects)
	// Listed and Skipped: a sync's listing found this many emails to take in, and this many
	// that arrived before Config.Since (passed over). Sent before the emails' outcomes, when
	// either is not zero.
	Listed, Skipped int
	// Batch: a batch of emails started a step (fetching, committing) or is done. A batch
	// that stays at one step longer than its Limit makes no progress (health reports it).
	Batch *Batch
}

// Batch steps.
const (
	BatchFetch  = "fetch"  // reading the bodies from the server and parsing them
	BatchParse  = "parse"  // the bodies are read; parsing the last of them
	BatchCommit = "commit" // applying the emails and writing them to the store
	BatchDone   = "done"   // committed; the outcomes follow
)

// Batch is one batch of emails at one step of its way in (Event.Batch). First identifies the
// batch within a session: batches are fetched and committed in UID order, two at most at a
// time (the next is fetched while one commits).
type Batch struct {
	First, Last uint32 // the lowest and the highest UID
	Count       int    // emails in the batch
	Step        string // BatchFetch, BatchCommit or BatchDone
	// Limit is how long the step may take before it counts as stalled: the command timeout
	// (for a fetch, with the minute per 64 MiB the fetch itself is given; for a parse, with
	// the time its largest email may take to read).
	Limit time.Duration
}

// New makes a Poller. Events, when not nil, receives progress without blocking the poller
// (a full channel drops events).
func New(cfg Config, db *store.DB, events chan<- Event) (*Poller, error) {
	cfg.defaults()
	if cfg.Addr == "" {
		return nil, errors.New("ingest: no IMAP address")
	}
	if cfg.Desk == nil {
		return nil, errors.New("ingest: no desk")
	}
	if cfg.PollInterval < 0 || cfg.CommandTimeout < 0 || cfg.DialTimeout < 0 {
		return nil, errors.New("ingest: negative interval or timeout")
	}
	if cfg.TLS == helpdesk.TLSNone && !helpdesk.IsLoopback(cfg.Addr) {
		return nil, fmt.Errorf("ingest: plaintext IMAP (tls=none) is allowed only to a loopback address, not %s", cfg.Addr)
	}
	return &Poller{cfg: cfg, db: db, log: cfg.Logger, events: events}, nil
}

func (p *Poller) emit(ev Event) {
	if p.events == nil {
		return
	}
	select {
	case p.events <- ev:
	default:
	}
}

// Once connects, ingests everything waiting in the mailbox and logs out. It returns the first
// error: the caller (serve -once, cron) reports it and exits non-zero.
func (p *Poller) Once(ctx context.Context) error {
	s, err := p.connect(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.sync(ctx); err != nil {
		return err
	}
	p.emit(Event{Synced: true})
	return nil
}

// Run keeps the mailbox ingested until ctx is done: it syncs, waits for new mail with IDLE
// (or polls), and reconnects with exponential backoff after any failure, a panic in the
// session included (logged). It returns nil when ctx is cancelled; the batch in hand is
// committed and flagged before it returns. A login the server refuses before any session
// succeeded is a configuration error: Run returns it.
func (p *Poller) Run(ctx context.Context) error {
	backoff := p.cfg.BackoffMin
	connected := false
	for ctx.Err() == nil {
		start := time.Now()
		var err error
		if pn := helpdesk.Survive(func() { err = p.session(ctx, &connected) }); pn != nil {
			// A bug in the session (outside an email's commit, which holds the email
			// instead): reported, and the session starts over like after a lost connection.
			p.log.Error("the IMAP session failed with a panic (a bug); reconnecting", "panic", pn)
			err = fmt.Errorf("the IMAP session failed with a panic (a bug, see the log): %v", pn.Value)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			continue
		}
		if !connected && errors.Is(err, ErrLoginRefused) {
			return err
		}
		p.emit(Event{Err: err})
		if time.Since(start) > 2*p.cfg.BackoffMax {
			backoff = p.cfg.BackoffMin // the session was healthy for a while: start over
		}
		wait := backoff/2 + rand.N(backoff/2+1) // jitter: many gateways must not reconnect in step
		p.log.Warn("imap session ended; reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond))
		if !helpdesk.Sleep(ctx, wait) {
			return nil
		}
		backoff = min(2*backoff, p.cfg.BackoffMax)
	}
	return nil
}

// session runs one connection: sync, then wait for mail and sync again, until an error.
func (p *Poller) session(ctx context.Context, connected *bool) error {
	s, err := p.connect(ctx)
	if err != nil {
		return err
	}
	*connected = true
	defer s.close()
	for {
		if err := s.sync(ctx); err != nil {
			return err
		}
		p.emit(Event{Synced: true})
		if err := s.wait(ctx); err != nil || ctx.Err() != nil {
			return err
		}
	}
}
