// Package notify delivers the outbox: it renders each queued notification from templates,
// sends it over SMTP with go-smtp (one connection reused for a burst), retries temporary
// failures with backoff, and records permanent ones on the notification. A queued notification
// is never lost: its state changes only after the SMTP server answered.
//
// Notify reads no IMAP and decides no policy: what to send and to whom was decided by the desk
// and written to the store's outbox. It never imports ingest; Probe is the SMTP look of
// `helpdesk doctor`, through the same dial as the worker. Delivery is at-least-once: a crash between the server's
// acceptance and the state commit sends that one notification again, with the same Message-ID.
package notify

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/internal/oauth"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// Config is what the worker needs. Zero durations take the documented defaults.
type Config struct {
	Addr, User, Password string
	// OAuth, when set (with User), gives the access tokens the worker logs in with (XOAUTH2
	// or OAUTHBEARER) instead of Password.
	OAuth     *oauth.Source
	TLS       string      // TLSStart (default), TLSImplicit or TLSNone
	TLSConfig *tls.Config // nil: system roots, server name from Addr
	From      *mail.Address
	// Hostname is the EHLO name; default the From address's domain.
	Hostname  string
	Templates *templates.Set
	TicketTag string // "Infobits": subjects carry "[Infobits #12]"
	SiteURL   string
	// RetryMin and RetryMax bound the wait between attempts (doubling); GiveUpAfter ends
	// retrying a temporary failure. Defaults 1 min, 1 h, 72 h.
	RetryMin, RetryMax, GiveUpAfter time.Duration
	// Timeout bounds each SMTP command. Default 30 s.
	Timeout time.Duration
	// TokenTTL is how long a recovery link works (R16, R17). Default 1 h.
	TokenTTL time.Duration
	// AttachMax bounds the customer's files a staff notice carries, together; above it they
	// are named with the command that saves them. Default 10 MiB.
	AttachMax int64
	Now       func() time.Time
	Logger    *slog.Logger
}

// Worker drains the outbox.
type Worker struct {
	cfg Config
	db  *store.DB
	log *slog.Logger

	mu     sync.Mutex // guards server
	server Health
}

// Health is what the worker has seen of the SMTP server: since when it cannot be used (the
// first of an unbroken run of drains that stopped on it: unreachable, closing, refusing the
// configuration) and the last such error. FailingSince is zero while the server works, and
// before a drain found out either way.
type Health struct {
	FailingSince time.Time
	LastError    string
	// NextTry is when Run tries the server again after such a failure (sooner when something
	// new is queued or retried); zero while it is not waiting on a failure.
	NextTry time.Time
}

// Health reports the SMTP server's state as the last drains found it; it does no I/O.
func (w *Worker) Health() Health {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.server
}

// setNextTry records when Run tries the server again (Health.NextTry).
func (w *Worker) setNextTry(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.server.NextTry = at
}

// noteServer records what a drain learnt of the server: it stopped on the server (err), or
// the server gave a verdict on a message (reached). A drain cut off by ctx, or one that had
// nothing to send, tells nothing.
func (w *Worker) noteServer(ctx context.Context, reached bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err != nil && ctx.Err() == nil:
		if w.server.FailingSince.IsZero() {
			w.server.FailingSince = w.cfg.Now()
		}
		w.server.LastError = err.Error()
	case err == nil && reached:
		w.server = Health{}
	}
}

// New checks the configuration and makes a Worker.
func New(cfg Config, db *store.DB) (*Worker, error) {
	cfg.TLS = cmp.Or(cfg.TLS, helpdesk.TLSStart)
	cfg.RetryMin = cmp.Or(cfg.RetryMin, time.Minute)
	cfg.RetryMax = cmp.Or(cfg.RetryMax, time.Hour)
	cfg.GiveUpAfter = cmp.Or(cfg.GiveUpAfter, 72*time.Hour)
	cfg.Timeout = cmp.Or(cfg.Timeout, 30*time.Second)
	cfg.TokenTTL = cmp.Or(cfg.TokenTTL, time.Hour)
	cfg.AttachMax = cmp.Or(cfg.AttachMax, 10<<20)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Addr == "":
		return nil, errors.New("notify: no SMTP address")
	case cfg.From == nil || cfg.From.Address == "":
		return nil, errors.New("notify: no From address")
	case cfg.Templates == nil:
		return nil, errors.New("notify: no templates")
	case !helpdesk.ValidTLS(cfg.TLS):
		return nil, fmt.Errorf("notify: smtp tls mode %q: want tls, starttls or none", cfg.TLS)
	case cfg.TLS == helpdesk.TLSNone && !helpdesk.IsLoopback(cfg.Addr):
		return nil, fmt.Errorf("notify: plaintext SMTP (tls=none) is allowed only to a loopback address, not %s", cfg.Addr)
	}
	if cfg.Hostname == "" {
		_, dom, _ := strings.Cut(cfg.From.Address, "@")
		cfg.Hostname = cmp.Or(dom, "localhost")
	}
	return &Worker{cfg: cfg, db: db, log: cfg.Logger}, nil
}

// Run delivers notifications as they are queued and retries as they fall due, until ctx is
// done. A failing SMTP server never stops it: while the server cannot be reached or refuses
// the configuration (Drain's errors), Run waits RetryMin, doubling up to RetryMax, between
// attempts (or until a new notification is queued). Nor does a panic (a bug): it is logged
// and waited out the same way.
func (w *Worker) Run(ctx context.Context) error {
	wake := w.db.OutboxWake()
	var backoff time.Duration
	for {
		var err error
		if p := helpdesk.Survive(func() { _, err = w.Drain(ctx, false) }); p != nil {
			// A bug outside any one notification: reported, and tried again as after an
			// interrupted delivery.
			w.log.Error("the outbox failed with a panic (a bug); the gateway goes on", "panic", p)
			err = errors.New("a panic (a bug), see the log")
		}
		// Drain's own commits (a retry put back in the queue) signal wake too. Anything
		// queued meanwhile by someone else is seen by the NextDue read below, so nothing
		// is lost by discarding the signal here.
		select {
		case <-wake:
		default:
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := time.Minute
		if err != nil {
			backoff = min(max(2*backoff, w.cfg.RetryMin), w.cfg.RetryMax)
			wait = backoff
			w.log.Warn("outbox: delivery interrupted; will retry", "err", err, "retry_in", backoff)
			w.setNextTry(w.cfg.Now().Add(backoff))
		} else {
			backoff = 0
			w.setNextTry(time.Time{})
			_ = w.db.View(ctx, func(tx *store.Tx) error {
				if at, ok := tx.NextDue(); ok {
					wait = min(wait, max(at.Sub(w.cfg.Now()), 0))
				}
				return nil
			})
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Result counts what one Drain did.
type Result struct {
	Sent, Failed, Retrying int
}

// Drain sends every notification that is due (with all, every queued one, ignoring backoff:
// serve -once and the demo), each at most once per call, over one SMTP connection. It returns
// an error, and leaves the notifications not yet sent queued, when the SMTP server could not
// be reached, answered 421 (closing), refused to send for this configuration (a login or
// sender problem: see classify; logged at Error), or when ctx ended the drain. The
// notification in hand when the server could not be reached or closed has the attempt and the
// error recorded (`outbox list` shows them during an outage); after a configuration refusal
// its LastError tells why, with no attempt counted; the ones behind it are untouched.
//
// ctx bounds everything, the connection included: when it is done, no new transaction
// starts, connecting and logging in stop at once, and a transaction under way gets
// cancelGrace for the server's reply before it is cut off; a notification whose send was cut
// off stays queued, no attempt counted.
func (w *Worker) Drain(ctx context.Context, all bool) (res Result, err error) {
	d := &drain{res: &res}
	defer func() {
		if d.conn != nil {
			d.conn.quit()
		}
		// RCPT refusals held back for the relay check (see refused) that were not found
		// to be a relay refusal are what they said: this recipient is refused.
		if ferr := w.failRefused(ctx, d); err == nil {
			err = ferr
		}
		w.noteServer(ctx, d.reached, err)
	}()
	tried := map[uint64]bool{}
	for {
		var due []*helpdesk.Notification
		at := w.cfg.Now()
		if all {
			at = time.Time{}
		}
		// Looked at even when ctx is done, to tell a finished drain from a cut-off one.
		if err := w.db.View(context.WithoutCancel(ctx), func(tx *store.Tx) (err error) {
			due, err = tx.DueNotifications(at, 100+len(tried))
			return err
		}); err != nil {
			return res, fmt.Errorf("read outbox: %w", err)
		}
		due = slices.DeleteFunc(due, func(n *helpdesk.Notification) bool { return tried[n.ID] })
		if len(due) == 0 {
			return res, nil
		}
		for _, n := range due {
			if ctx.Err() != nil {
				return res, fmt.Errorf("outbox drain interrupted, notifications stay queued: %w", context.Cause(ctx))
			}
			tried[n.ID] = true
			if err := w.deliverSurviving(ctx, d, n); err != nil {
				return res, err
			}
		}
	}
}

// deliverSurviving is deliver, and when delivering n panics (a bug, in rendering it say), n
// fails alone — marked failed with the panic, never retried by itself (`outbox retry` sends
// it again) — and the rest of the outbox goes on. The connection may have been in the middle
// of a transaction: it is closed, the next notification gets a new one. A notification the
// panic came after (already recorded as sent or failed) keeps its record.
func (w *Worker) deliverSurviving(ctx context.Context, d *drain, n *helpdesk.Notification) error {
	var err error
	p := helpdesk.Survive(func() { err = w.deliver(ctx, d, n) })
	if p == nil {
		return err
	}
	if d.conn != nil {
		d.conn.close()
		d.conn = nil
	}
	log := w.log.With("notification", n.ID, "kind", n.Kind, "to", n.To, "ticket", n.TicketID)
	log.Error("sending a notification failed with a panic (a bug); the rest of the outbox goes on", "panic", p)
	var stored *helpdesk.Notification
	if err := w.db.View(context.WithoutCancel(ctx), func(tx *store.Tx) (err error) {
		stored, err = tx.Notification(n.ID)
		return err
	}); err != nil {
		return fmt.Errorf("read notification %d after a panic: %w", n.ID, err)
	}
	if stored.Status != helpdesk.NotifyQueued {
		return nil
	}
	return w.fail(ctx, stored, w.cfg.Now(), fmt.Errorf("the gateway failed on it (a bug, see its log): %v", p.Value), d.res, log)
}

// drain is the state of one Drain.
type drain struct {
	res  *Result
	conn *client // nil: dial before the next message
	// reached: the server gave a verdict on a message (accepted it, or refused it alone).
	reached bool
	// rcptOK: the server accepted a recipient during this drain, so a refused RCPT is about
	// that recipient, not about the account (see refused).
	rcptOK bool
	// refused holds notifications whose RCPT was refused while no recipient had been
	// accepted yet; refusedTo is the set of their recipients.
	refused   []refusal
	refusedTo map[string]bool
}

type refusal struct {
	n     *helpdesk.Notification
	cause error
	log   *slog.Logger
}

// relayRefusedAfter is the number of different recipients that must all be refused at RCPT,
// with none accepted, before a drain concludes that the server refuses to relay for this
// account rather than that these mailboxes are bad.
const relayRefusedAfter = 3

// deliver renders and sends one notification and records the outcome. It returns an error
// only when the drain must stop: the SMTP server cannot be used at all, or ctx is done. The
// notification stays queued. When the server could not be reached (or broke off the login)
// or answered 421, the failed attempt and its error are recorded on it; after a
// configuration failure (classify) its LastError tells why, no attempt counted (the server
// refused the account, not the message); a send cut off by ctx is no attempt at all.
func (w *Worker) deliver(ctx context.Context, d *drain, n *helpdesk.Notification) error {
	now := w.cfg.Now()
	log := w.log.With("notification", n.ID, "kind", n.Kind, "to", n.To, "ticket", n.TicketID)

	if n.MessageID = cleanMsgID(n.MessageID); n.MessageID == "" {
		n.MessageID = newMessageID(w.cfg.Hostname)
	}
	link, err := w.issueToken(ctx, n, now)
	if err != nil {
		return w.fail(ctx, n, now, err, d.res, log)
	}
	files := w.loadAttachments(ctx, n)
	msg, rcpt, err := w.render(n, now, link, &files)
	if err != nil {
		// A bad address or a template that does not render: retrying will not help.
		return w.fail(ctx, n, now, err, d.res, log)
	}
	if d.conn == nil {
		if d.conn, err = w.dial(ctx); err != nil {
			var serr *smtp.SMTPError
			switch {
			case ctx.Err() != nil:
				// Shutdown: not an attempt.
			case errors.As(err, &serr) && !serr.Temporary(),
				errors.Is(err, oauth.ErrRefused), errors.Is(err, oauth.ErrNoMechanism):
				// Refused at EHLO or AUTH, or the OAuth provider refused the token: the same
				// for every message.
				log.Error("SMTP server refuses this configuration; every notification stays queued",
					"server", w.cfg.Addr, "err", err)
				if herr := w.hold(ctx, n, err); herr != nil {
					return herr
				}
			default:
				// Unreachable, or the connection broke before the login was through: an
				// attempt that failed, shown on the notification.
				if aerr := w.unreached(ctx, n, now, err); aerr != nil {
					return aerr
				}
			}
			return err
		}
	}
	if max := d.conn.maxSize(); max > 0 && int64(len(msg)) > max && len(files.carried()) > 0 {
		// RFC 1870: the server said how large a message it takes. The text goes without
		// the files, and says so; never a message refused or retried for ever for its size.
		files.leaveOut(templates.FilesAboveServer, templates.FormatSize(max, n.Lang))
		if msg, rcpt, err = w.render(n, now, link, &files); err != nil {
			return w.fail(ctx, n, now, err, d.res, log)
		}
	}
	err = d.conn.send(w.cfg.From.Address, rcpt, msg)
	if tooBigForServer(err) && len(files.carried()) > 0 {
		// Refused for its size without a SIZE announced: once more without the files.
		log.Warn("the SMTP server refused the notification for its size; sending it without its attachments", "err", err)
		files.leaveOut(templates.FilesAboveServer, "")
		if msg, rcpt, err = w.render(n, now, link, &files); err != nil {
			return w.fail(ctx, n, now, err, d.res, log)
		}
		err = d.conn.send(w.cfg.From.Address, rcpt, msg)
	}
	if err == nil {
		d.reached = true
		if err := w.relayWorks(ctx, d); err != nil {
			return err
		}
		countAttempt(n, now)
		n.Status, n.Sent, n.LastError, n.NextAttempt = helpdesk.NotifySent, now, "", time.Time{}
		d.res.Sent++
		log.Info("notification sent", "attempts", n.Attempts)
		return w.save(ctx, n)
	}
	var serr *smtp.SMTPError
	if !errors.As(err, &serr) {
		// No SMTP reply: the connection broke, timed out or was cut off by ctx (or a
		// client-side check refused the command). Its state is unknown, so a later
		// notification gets a new one.
		d.conn.close()
		d.conn = nil
		if ctx.Err() != nil {
			// Shutdown, or the final flush's deadline: the server gave no verdict,
			// so this was not an attempt.
			log.Info("sending interrupted; notification stays queued", "err", err)
			return fmt.Errorf("sending notification %d interrupted, it stays queued: %w", n.ID, context.Cause(ctx))
		}
		if isTransient(err) {
			return w.retry(ctx, n, now, err, d.res, log)
		}
		return w.fail(ctx, n, now, err, d.res, log)
	}
	stage := stageOf(err)
	if stage == stageData {
		// The recipient was accepted: the server relays for us.
		if err := w.relayWorks(ctx, d); err != nil {
			return err
		}
	}
	switch classify(stage, serr) {
	case replyClosing:
		// "Service not available, closing transmission channel" (RFC 5321): the server
		// is going away, for this message and the rest.
		d.conn.close()
		d.conn = nil
		if rerr := w.retry(ctx, n, now, err, d.res, log); rerr != nil {
			return rerr
		}
		return fmt.Errorf("%w: SMTP server %s: %v", errConn, w.cfg.Addr, err)
	case replyTemporary:
		d.reached = true
		return w.retry(ctx, n, now, err, d.res, log)
	case replyConfig:
		cerr := w.refusedConfig(stage, err, serr)
		log.Error("SMTP server refuses to send for this configuration; every notification stays queued",
			"server", w.cfg.Addr, "stage", stage, "reply", replyText(serr), "fix", cerr.fix)
		if herr := w.hold(ctx, n, cerr); herr != nil {
			return herr
		}
		return cerr
	}
	// replyPermanent: about this message only.
	d.reached = true
	if stage == stageRcpt && !d.rcptOK && maybeRelayRefusal(serr) {
		return w.refused(ctx, d, n, rcpt, err, log)
	}
	return w.fail(ctx, n, now, err, d.res, log)
}

// refused holds back a notification whose recipient was refused while no recipient has been
// accepted in this drain. A server that refuses relaying (no or the wrong login) refuses
// every recipient, which at first looks like a series of bad mailboxes: once relayRefusedAfter
// different recipients were all refused, the drain stops and they all stay queued. Until then
// the verdict waits; if a recipient is accepted meanwhile (relayWorks), or the drain ends
// (failRefused), the held-back notifications fail as usual.
func (w *Worker) refused(ctx context.Context, d *drain, n *helpdesk.Notification, rcpt string, cause error, log *slog.Logger) error {
	if d.refusedTo == nil {
		d.refusedTo = map[string]bool{}
	}
	d.refused = append(d.refused, refusal{n: n, cause: cause, log: log})
	d.refusedTo[helpdesk.NormalizeAddress(rcpt)] = true
	if len(d.refusedTo) < relayRefusedAfter {
		return nil
	}
	cerr := &configError{addr: w.cfg.Addr, cause: cause,
		what: fmt.Sprintf("every recipient (%d different addresses, none accepted)", len(d.refusedTo)),
		fix:  w.relayFix()}
	w.log.Error("SMTP server refuses every recipient: it does not relay for this configuration; every notification stays queued",
		"server", w.cfg.Addr, "reply", replyText(cause), "recipients", len(d.refusedTo), "fix", cerr.fix)
	held := d.refused
	d.refused, d.refusedTo = nil, nil
	for _, r := range held {
		if err := w.hold(ctx, r.n, cerr); err != nil {
			return err
		}
	}
	return cerr
}

// relayWorks notes that the server accepted a recipient, and fails the notifications whose
// recipients it refused before: they are bad addresses after all.
func (w *Worker) relayWorks(ctx context.Context, d *drain) error {
	d.rcptOK = true
	return w.failRefused(ctx, d)
}

func (w *Worker) failRefused(ctx context.Context, d *drain) error {
	held := d.refused
	d.refused, d.refusedTo = nil, nil
	for _, r := range held {
		if err := w.fail(ctx, r.n, w.cfg.Now(), r.cause, d.res, r.log); err != nil {
			return err
		}
	}
	return nil
}

// Recovery link paths under the site URL; the token is the query parameter "token". The
// old login's links of a login change (agree, cancel) go to LoginPath too: redeem says what
// a token is for.
const (
	PasswordPath = "/wachtwoord/herstel"
	LoginPath    = "/login/bevestig"
)

// links are the recovery links of a notification.
type links struct{ link, cancel string }

// issueToken creates the recovery tokens of a notification that asks for them (R16, R17) and
// returns the links. A token is issued when the message is sent, never before: only its hash
// is stored, and the raw value exists only in the email. A retry issues a new one, which
// voids the old (a link from a message that never arrived is worth nothing anyway).
//
// A login change: the new address's confirmation link works for TokenTTL; the old
// login's notice carries a link to agree and one to cancel, which work until the change would
// take effect (Until) — at least TokenTTL.
func (w *Worker) issueToken(ctx context.Context, n *helpdesk.Notification, now time.Time) (links, error) {
	type want struct {
		purpose string
		expires time.Time
	}
	var ws []want
	change := n.Data.LoginChange
	switch {
	case change != 0 && n.Kind == helpdesk.KindLoginConfirm:
		ws = []want{{helpdesk.PurposeLogin, now.Add(w.cfg.TokenTTL)}}
	case change != 0 && n.Kind == helpdesk.KindLoginNotice:
		until := n.Data.Until
		if until.Before(now.Add(w.cfg.TokenTTL)) {
			until = now.Add(w.cfg.TokenTTL)
		}
		ws = []want{{helpdesk.PurposeLoginAllow, until}, {helpdesk.PurposeLoginCancel, until}}
	case n.Data.TokenPurpose != "" && change == 0:
		ws = []want{{n.Data.TokenPurpose, now.Add(w.tokenTTL(n))}}
	default:
		return links{}, nil
	}
	if w.cfg.SiteURL == "" {
		return links{}, errors.New("no site_url configured: a recovery link needs the website")
	}
	raws := make([]string, len(ws))
	err := w.db.Update(context.WithoutCancel(ctx), func(tx *store.Tx) (err error) {
		for i, x := range ws {
			if change != 0 {
				raws[i], err = tx.IssueChangeToken(x.purpose, change, now, x.expires)
			} else {
				raws[i], err = tx.IssueToken(x.purpose, n.Data.CustomerID, n.Data.NewEmail, now, w.tokenTTL(n))
			}
			if err != nil {
				return fmt.Errorf("issue %s token: %w", x.purpose, err)
			}
		}
		return nil
	})
	if err != nil {
		return links{}, err
	}
	url := func(purpose, raw string) string {
		path := LoginPath
		if purpose == helpdesk.PurposePassword {
			path = PasswordPath
		}
		return strings.TrimRight(w.cfg.SiteURL, "/") + path + "?token=" + raw
	}
	l := links{link: url(ws[0].purpose, raws[0])}
	if len(ws) > 1 {
		l.cancel = url(ws[1].purpose, raws[1])
	}
	return l, nil
}

// render builds the message of n and returns it with the envelope recipient.
func (w *Worker) render(n *helpdesk.Notification, now time.Time, link links, files *attachments) (msg []byte, rcpt string, err error) {
	data := w.data(n)
	data.Link, data.CancelLink = link.link, link.cancel
	var carried []parse.Part
	if files != nil {
		for _, f := range files.files {
			data.Files = append(data.Files, f.info)
			if f.info.Carried {
				carried = append(carried, f.part)
			}
		}
		data.FilesNote, data.FilesLimit = files.note, files.limit
		n.AttachNote = attachNote(files)
	}
	r, err := w.cfg.Templates.Render(n.Kind, n.Lang, data)
	if err != nil {
		return nil, "", err
	}
	n.Subject = r.Subject
	lang := n.Lang
	if !slices.Contains(templates.Langs(), lang) {
		lang = templates.Langs()[0] // what Render fell back to
	}
	return compose(w.cfg.From, n, r, lang, now, carried)
}

// attachNote is what the outbox records when files were named instead of carried.
func attachNote(a *attachments) string {
	if len(a.files) == 0 || a.note == "" {
		return ""
	}
	what := fmt.Sprintf("%d attachment(s) not enclosed", len(a.files))
	switch a.note {
	case templates.FilesAboveLimit:
		return what + ": together above attach_max_bytes (" + a.limit + ")"
	case templates.FilesAboveServer:
		if a.limit != "" {
			return what + ": the message would be above the SMTP server's size limit (" + a.limit + ")"
		}
		return what + ": the SMTP server refused the message for its size"
	}
	return what + ": they could not be read out of the stored email"
}

// countAttempt records that the server gave a verdict on n (or that n cannot be sent).
func countAttempt(n *helpdesk.Notification, now time.Time) {
	n.Attempts++
	if n.Created.IsZero() {
		n.Created = now // GiveUpAfter counts from the first attempt
	}
}

// fail records a permanent failure.
func (w *Worker) fail(ctx context.Context, n *helpdesk.Notification, now time.Time, cause error, res *Result, log *slog.Logger) error {
	countAttempt(n, now)
	n.Status, n.LastError, n.NextAttempt = helpdesk.NotifyFailed, cause.Error(), time.Time{}
	res.Failed++
	log.Error("notification failed permanently", "err", cause)
	return w.save(ctx, n)
}

// retry records a temporary failure and schedules the next attempt, or gives up.
func (w *Worker) retry(ctx context.Context, n *helpdesk.Notification, now time.Time, cause error, res *Result, log *slog.Logger) error {
	countAttempt(n, now)
	n.LastError = cause.Error()
	if now.Sub(n.Created) > w.cfg.GiveUpAfter {
		n.Status = helpdesk.NotifyFailed
		n.NextAttempt = time.Time{}
		n.LastError = fmt.Sprintf("gave up after %d attempts: %v", n.Attempts, cause)
		res.Failed++
		log.Error("notification failed: gave up retrying", "attempts", n.Attempts, "err", cause)
	} else {
		wait := w.cfg.RetryMin
		for i := 1; i < n.Attempts && wait < w.cfg.RetryMax; i++ {
			wait *= 2
		}
		n.NextAttempt = now.Add(min(wait, w.cfg.RetryMax))
		res.Retrying++
		log.Warn("notification delayed; will retry", "attempts", n.Attempts, "next", n.NextAttempt, "err", cause)
	}
	return w.save(ctx, n)
}

// unreached records an attempt on n that did not reach the server: n stays queued and due,
// with the attempt counted and the error on record (`outbox list`, `ticket show`). Its own
// next attempt is not pushed back: Run waits before it redials (its backoff), and once the
// server is back the queue goes out in order, n first. A connection failure is no verdict on
// n, so it never makes n give up (GiveUpAfter).
func (w *Worker) unreached(ctx context.Context, n *helpdesk.Notification, now time.Time, cause error) error {
	countAttempt(n, now)
	n.LastError = cause.Error()
	return w.save(ctx, n)
}

// hold keeps n queued as it was, no attempt counted, and records why it was not sent (so
// `ticket show` tells the operator): the server refused the configuration, not the message.
func (w *Worker) hold(ctx context.Context, n *helpdesk.Notification, cause error) error {
	n.LastError = cause.Error()
	return w.save(ctx, n)
}

func (w *Worker) save(ctx context.Context, n *helpdesk.Notification) error {
	err := w.db.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error { return tx.PutNotification(n) })
	if err != nil {
		return fmt.Errorf("record notification %d: %w", n.ID, err)
	}
	return nil
}

// validFor says how long a link works, in the customer's language.
// tokenTTL is how long the link of n works: token_ttl, and at least InviteTTL for an
// invitation.
func (w *Worker) tokenTTL(n *helpdesk.Notification) time.Duration { return tokenTTL(&w.cfg, n) }

func tokenTTL(cfg *Config, n *helpdesk.Notification) time.Duration {
	if n.Kind == helpdesk.KindInvite {
		return max(cfg.TokenTTL, helpdesk.InviteTTL)
	}
	return cfg.TokenTTL
}

func validFor(d time.Duration, lang string) string {
	h, m := int(d.Hours()), int(d.Minutes())
	switch {
	case h%24 == 0 && h >= 48 && lang == "en":
		return fmt.Sprintf("%d days", h/24)
	case h%24 == 0 && h >= 48:
		return fmt.Sprintf("%d dagen", h/24)
	case lang == "en" && h == 1 && m == 60:
		return "one hour"
	case lang == "en" && m%60 == 0:
		return fmt.Sprintf("%d hours", h)
	case lang == "en":
		return fmt.Sprintf("%d minutes", m)
	case h == 1 && m == 60:
		return "één uur"
	case m%60 == 0:
		return fmt.Sprintf("%d uur", h)
	}
	return fmt.Sprintf("%d minuten", m)
}

// data is what the templates see of a notification.
func (w *Worker) data(n *helpdesk.Notification) templates.Data { return dataOf(&w.cfg, n) }

// Render renders n through cfg's templates as the worker would send it (no recovery
// links, no attachments): for a command that shows a notification instead of sending it
// (helpdesk digest -print). Only cfg's Templates, From, TicketTag, SiteURL and TokenTTL count.
func Render(cfg Config, n *helpdesk.Notification) (templates.Rendered, error) {
	return cfg.Templates.Render(n.Kind, n.Lang, dataOf(&cfg, n))
}

func dataOf(cfg *Config, n *helpdesk.Notification) templates.Data {
	d := templates.Data{TicketID: n.TicketID, TicketSubject: n.Data.TicketSubject,
		CustomerName: n.Data.CustomerName, ContactName: n.Data.ContactName, DueTime: n.Data.Due, Text: n.Data.Text,
		StaffName: n.Data.StaffName, OrigSubject: n.Data.OrigSubject, Address: n.Data.Address,
		Helpdesk: cmp.Or(cfg.From.Name, cfg.From.Address), SiteURL: cfg.SiteURL,
		Tier: string(n.Data.Tier), Priority: n.Data.Priority, SurchargeZone: n.Data.SurchargeZone,
		Followup: n.Data.Followup, Payment: n.Data.Payment, Notes: n.Data.Notes,
		LimitKind: n.Data.LimitKind, LimitValue: n.Data.LimitValue, Error: n.Data.Error,
		Auth:     templates.Auth(n.Data.Auth),
		NewEmail: n.Data.NewEmail, ValidFor: validFor(tokenTTL(cfg, n), n.Lang),
		CustomerID: n.Data.CustomerID, UntilTime: n.Data.Until}
	if v := n.Data.ValidUntil; !v.IsZero() {
		d.ValidUntil = fmt.Sprintf("%02d-%02d-%04d", v.Day, v.Month, v.Year)
	}
	for _, h := range n.Data.Held {
		d.Held = append(d.Held, templates.HeldItem{ID: h.ID, From: h.From, Subject: h.Subject,
			Reason: h.Reason, Detail: h.Detail, Received: h.Received})
	}
	d.Assignee = n.Data.Assignee
	for _, sec := range n.Data.Digest {
		ts := templates.DigestSection{Kind: sec.Kind, Assignee: sec.Assignee}
		for _, t := range sec.Tickets {
			ts.Tickets = append(ts.Tickets, templates.DigestTicket{Ref: fmt.Sprintf("[%s #%d]", cfg.TicketTag, t.ID),
				ID: t.ID, Subject: t.Subject, Customer: t.Customer, Tier: string(t.Tier), Priority: t.Priority,
				DueTime: t.Due, Assignee: t.Assignee})
		}
		d.Digest = append(d.Digest, ts)
	}
	if day := n.Data.Day; !day.IsZero() {
		d.DayTime = time.Date(day.Year, day.Month, day.Day, 12, 0, 0, 0, time.UTC)
	}
	if n.TicketID != 0 {
		d.Ref = fmt.Sprintf("[%s #%d]", cfg.TicketTag, n.TicketID)
		if cfg.SiteURL != "" {
			d.TicketURL = fmt.Sprintf("%s/tickets/%d", strings.TrimRight(cfg.SiteURL, "/"), n.TicketID)
			// The site is Dutch for a visitor it does not know yet (the log-in page the link
			// leads to first): a link in a mail in another language names that language.
			if n.Lang != "" && n.Lang != templates.Langs()[0] {
				d.TicketURL += "?taal=" + url.QueryEscape(n.Lang)
			}
		}
	}
	return d
}

func isSMTPReply(err error) bool {
	var serr *smtp.SMTPError
	return errors.As(err, &serr)
}

// isTransient: network trouble, not a verdict on the message. A server that closes the
// connection shows up as a bare io.EOF from the reply reader.
func isTransient(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, errConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

var errConn = errors.New("smtp connection failed")

// smtpStage is the command of a mail transaction that an error answered.
type smtpStage string

const (
	stageMail smtpStage = "MAIL"
	stageRcpt smtpStage = "RCPT"
	stageData smtpStage = "DATA" // the DATA command, the message, or the reply after it
)

// stageError is a failure of one command of a mail transaction.
type stageError struct {
	stage smtpStage
	arg   string // the address of MAIL and RCPT
	err   error
}

func (e *stageError) Error() string {
	cmd := string(e.stage)
	switch e.stage {
	case stageMail:
		cmd = "MAIL FROM:<" + e.arg + ">"
	case stageRcpt:
		cmd = "RCPT TO:<" + e.arg + ">"
	}
	return cmd + ": " + replyText(e.err)
}

func (e *stageError) Unwrap() error { return e.err }

// stageOf returns the stage at which a send failed ("" if not known).
func stageOf(err error) smtpStage {
	var se *stageError
	if errors.As(err, &se) {
		return se.stage
	}
	return ""
}

// replyText shows an SMTP reply as the server sent it: "550 5.1.1 User unknown".
func replyText(err error) string {
	var serr *smtp.SMTPError
	if !errors.As(err, &serr) {
		return err.Error()
	}
	s := strconv.Itoa(serr.Code)
	if hasEnhanced(serr) {
		ec := serr.EnhancedCode
		s += fmt.Sprintf(" %d.%d.%d", ec[0], ec[1], ec[2])
	}
	if serr.Message != "" {
		s += " " + serr.Message
	}
	return s
}

func hasEnhanced(serr *smtp.SMTPError) bool {
	return serr.EnhancedCode != (smtp.EnhancedCode{}) && serr.EnhancedCode != smtp.NoEnhancedCode
}

// What an SMTP reply to a mail transaction means for the drain.
type replyClass int

const (
	// replyTemporary: 4xx. This notification is retried later with backoff; the drain
	// goes on.
	replyTemporary replyClass = iota
	// replyClosing: 421, the server is closing the connection. This notification is
	// retried later; the drain stops.
	replyClosing
	// replyPermanent: 5xx about this message (a bad mailbox, content refused). It
	// fails; the drain goes on.
	replyPermanent
	// replyConfig: 5xx about the account or the server, the same for every message (no
	// or a wrong login, a sender the account may not use). The drain stops and every
	// notification stays queued without an attempt counted.
	replyConfig
)

// classify sorts an SMTP reply to a mail transaction by the stage that got it:
//
//	421                                    any stage   closing
//	4xx                                    any stage   temporary
//	530, 535, 538 (auth required/failed)   any stage   config
//	5xx                                    MAIL        config: the sender or the account is refused,
//	                                                   e.g. 553 5.7.1 sender not owned by user
//	5xx with 5.7.0 or 5.7.8 (auth)         RCPT, DATA  config
//	other 5xx                              RCPT        permanent (bad mailbox: 5.1.x, 5.2.x, 5.3.x,
//	                                                   none), but see Worker.refused
//	other 5xx                              DATA        permanent (content: 5.6.x, 5.3.4 too big, 5.7.1 spam)
func classify(stage smtpStage, serr *smtp.SMTPError) replyClass {
	switch {
	case serr.Code == 421:
		return replyClosing
	case serr.Temporary():
		return replyTemporary
	case serr.Code == 530 || serr.Code == 535 || serr.Code == 538:
		return replyConfig
	case stage == stageMail:
		return replyConfig
	case serr.EnhancedCode == smtp.EnhancedCode{5, 7, 0} || serr.EnhancedCode == smtp.EnhancedCode{5, 7, 8}:
		return replyConfig
	}
	return replyPermanent
}

// maybeRelayRefusal: a permanent RCPT refusal that may be a refusal to relay rather than a
// verdict on the mailbox. 5.1.x (address), 5.2.x (mailbox) and 5.3.x (mail system) are about
// the recipient; relaying denied comes as 5.7.1 (Postfix, Sendmail), 5.7.54/5.4.1 (Exchange
// Online), or without an enhanced code.
func maybeRelayRefusal(serr *smtp.SMTPError) bool {
	if !hasEnhanced(serr) {
		return true
	}
	switch serr.EnhancedCode[1] {
	case 1, 2, 3:
		return false
	}
	return true
}

// configError is a refusal by the SMTP server that no message can get past: the
// configuration (login, sender address) must change.
type configError struct {
	addr  string
	what  string // what was refused; "" when cause (a *stageError) names it
	cause error  // the send's error, with the server's reply
	fix   string // what the operator should do
}

func (e *configError) Error() string {
	if e.what == "" {
		return fmt.Sprintf("SMTP server %s refused %v; %s; notifications stay queued", e.addr, e.cause, e.fix)
	}
	return fmt.Sprintf("SMTP server %s refused %s: %s; %s; notifications stay queued", e.addr, e.what, replyText(e.cause), e.fix)
}

func (e *configError) Unwrap() error { return e.cause }

// refusedConfig explains a replyConfig refusal; cause is the error of the send.
func (w *Worker) refusedConfig(stage smtpStage, cause error, serr *smtp.SMTPError) *configError {
	return &configError{addr: w.cfg.Addr, cause: cause, fix: w.configFix(stage, serr)}
}

// configFix tells the operator what to change after a replyConfig refusal.
func (w *Worker) configFix(stage smtpStage, serr *smtp.SMTPError) string {
	ec, user, from := serr.EnhancedCode, w.cfg.User, w.cfg.From.Address
	switch {
	case serr.Code == 538:
		return "the server accepts this login only over an encrypted connection: use TLS (smtp_tls starttls or tls)"
	case serr.Code == 535 || ec == smtp.EnhancedCode{5, 7, 8}:
		return fmt.Sprintf("the server refused the login as %q: check the SMTP user and password (smtp_user, smtp_password)", user)
	case (serr.Code == 530 || ec == smtp.EnhancedCode{5, 7, 0}) && user == "":
		return "the server requires a login: set the SMTP user and password (smtp_user, smtp_password)"
	case serr.Code == 530 || ec == smtp.EnhancedCode{5, 7, 0}:
		return fmt.Sprintf("the server requires a login although the worker logged in as %q: check that this account may send mail", user)
	case stage == stageMail && ec == smtp.EnhancedCode{5, 7, 1} && user == "":
		return fmt.Sprintf("the server does not let this client send as <%s>: log in (smtp_user, smtp_password) with an account that may use this address, or change the sender (from)", from)
	case stage == stageMail && ec == smtp.EnhancedCode{5, 7, 1}:
		return fmt.Sprintf("the account %q may not send as <%s>: set the sender (from) to an address of that account, or give the account send-as rights on the server", user, from)
	case stage == stageMail:
		return fmt.Sprintf("the server refuses the sender <%s>: check the sender address (from) and the SMTP account (smtp_user)", from)
	}
	return "check the SMTP settings (smtp_addr, smtp_user, smtp_password, from)"
}

// relayFix tells the operator what to change when the server refuses every recipient.
func (w *Worker) relayFix() string {
	if w.cfg.User == "" {
		return "the server does not relay mail without a login: set the SMTP user and password (smtp_user, smtp_password)"
	}
	return fmt.Sprintf("the server does not relay for the account %q: check the account's rights on the server, and that smtp_addr is its submission server", w.cfg.User)
}

// client is one SMTP connection, reused for every notification of a Drain.
type client struct {
	c       *smtp.Client
	conn    *phaseConn
	timeout time.Duration // for writing a message
	stop    func() bool   // unties the connection from the Drain's context
}

// dial connects, says EHLO and authenticates, all within Timeout, and ties the connection to
// ctx: when ctx is done, the command in progress ends (phaseConn.cutoff). AUTH
// is never sent over plaintext to a non-loopback address (New refuses that configuration).
func (w *Worker) dial(ctx context.Context) (*client, error) {
	connErr := func(what string, err error) error {
		if cerr := context.Cause(ctx); cerr != nil {
			err = cerr
		}
		return fmt.Errorf("%w: SMTP server %s: %s: %w", errConn, w.cfg.Addr, what, err)
	}
	cl, err := open(ctx, w.cfg)
	if err != nil {
		var se *stepError
		if errors.As(err, &se) && se.step == ProbeConnect {
			return nil, fmt.Errorf("%w: connect to SMTP server %s %s: %w", errConn, w.cfg.Addr, helpdesk.TLSWords(w.cfg.TLS), se.err)
		}
		if errors.As(err, &se) {
			return nil, connErr(se.step, se.err)
		}
		return nil, err
	}
	if w.cfg.User != "" {
		if err := authenticate(ctx, cl, w.cfg); err != nil {
			cl.abort()
			var serr *smtp.SMTPError
			var te *tokenError
			switch {
			case errors.As(err, &te) || errors.Is(err, oauth.ErrNoMechanism):
				return nil, fmt.Errorf("%w: SMTP login at %s: %w", errConn, w.cfg.Addr, err)
			case ctx.Err() == nil && errors.As(err, &serr) && !serr.Temporary() && w.cfg.OAuth != nil:
				return nil, fmt.Errorf("%w: SMTP server %s refused the OAuth token for %q: %w (a freshly obtained token was refused too: check smtp_user, and that the app may send as this mailbox: Microsoft 365 SMTP.Send or SMTP.SendAsApp and SMTP AUTH enabled for the mailbox; Google: the account's own address)",
					errConn, w.cfg.Addr, w.cfg.User, &replyError{serr})
			case ctx.Err() == nil && errors.As(err, &serr) && !serr.Temporary():
				return nil, fmt.Errorf("%w: SMTP server %s refused login as %q: %w (check the SMTP user and password)",
					errConn, w.cfg.Addr, w.cfg.User, &replyError{serr})
			}
			return nil, connErr("AUTH", err)
		}
	}
	cl.conn.setLimit(time.Time{})
	return cl, nil
}

// stepError is a failed step of opening a session: one of the Probe* steps.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// open connects to cfg.Addr and says EHLO, in cfg's TLS mode (helpdesk.TLS*) with the
// certificate checked, all within cfg.Timeout, and ties the connection to ctx: when ctx is
// done, the command in progress ends (phaseConn.cutoff). It is the one dial of the worker and
// of Probe; its errors are *stepError. The session is still in its login phase: the caller
// authenticates, then lifts the phase's deadline (conn.setLimit) or closes it (abort).
func open(ctx context.Context, cfg Config) (*client, error) {
	tlsCfg := cfg.TLSConfig
	host, _, _ := net.SplitHostPort(cfg.Addr)
	if tlsCfg == nil {
		tlsCfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	} else if tlsCfg.ServerName == "" && !tlsCfg.InsecureSkipVerify {
		// smtp.NewClient* do not know the address: the certificate is checked
		// against its host, as smtp.Dial* would.
		tlsCfg = tlsCfg.Clone()
		tlsCfg.ServerName = host
	}
	dialer := net.Dialer{Timeout: cfg.Timeout}
	raw, err := dialer.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, &stepError{ProbeConnect, err}
	}
	// The greeting, EHLO, STARTTLS, the TLS handshake and AUTH share one deadline.
	// go-smtp sets its own deadline around every command (CommandTimeout), which the
	// phaseConn caps at this one.
	conn := &phaseConn{Conn: raw}
	conn.setLimit(time.Now().Add(cfg.Timeout))
	stop := context.AfterFunc(ctx, conn.cutoff)
	cl := &client{conn: conn, timeout: 2 * cfg.Timeout, stop: stop}
	fail := func(step string, err error) (*client, error) {
		cl.abort()
		return nil, &stepError{step, err}
	}
	switch cfg.TLS {
	case helpdesk.TLSImplicit:
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(ProbeTLS, err)
		}
		cl.c = smtp.NewClient(tc)
	case helpdesk.TLSStart:
		if cl.c, err = smtp.NewClientStartTLS(conn, tlsCfg); err != nil {
			return fail(ProbeStartTLS, err)
		}
	default:
		cl.c = smtp.NewClient(conn)
	}
	cl.c.CommandTimeout = cfg.Timeout
	cl.c.SubmissionTimeout = 2 * cfg.Timeout
	// With STARTTLS, the TLS handshake runs here; a certificate problem shows up here.
	if err := cl.c.Hello(cfg.Hostname); err != nil {
		return fail(ProbeHello, err)
	}
	return cl, nil
}

// abort closes a session that failed while it was being opened.
func (cl *client) abort() {
	cl.stop()
	if cl.c != nil {
		cl.c.Close()
	} else {
		cl.conn.Conn.Close()
	}
}

// replyError shows an SMTP reply with its enhanced code (replyText) and unwraps to it.
type replyError struct{ err *smtp.SMTPError }

func (e *replyError) Error() string { return replyText(e.err) }
func (e *replyError) Unwrap() error { return e.err }

// send runs one mail transaction; an error says at which stage (stageError). After a
// refusal the transaction is reset so the connection can carry the next notification.
func (cl *client) send(from, to string, msg []byte) error {
	err := func() error {
		if err := cl.c.Mail(from, nil); err != nil {
			return &stageError{stage: stageMail, arg: from, err: err}
		}
		if err := cl.c.Rcpt(to, nil); err != nil {
			return &stageError{stage: stageRcpt, arg: to, err: err}
		}
		wc, err := cl.c.Data()
		if err != nil {
			return &stageError{stage: stageData, err: err}
		}
		// go-smtp bounds the replies, not the writing of the message.
		_ = cl.conn.SetDeadline(time.Now().Add(cl.timeout))
		if _, err := wc.Write(msg); err != nil {
			wc.Close()
			return &stageError{stage: stageData, err: err}
		}
		if err := wc.Close(); err != nil {
			return &stageError{stage: stageData, err: err}
		}
		return nil
	}()
	if err != nil && isSMTPReply(err) {
		_ = cl.c.Reset()
	}
	return err
}

// maxSize is the message size the server takes (RFC 1870 SIZE), 0 when it did not say.
func (cl *client) maxSize() int64 {
	ok, v := cl.c.Extension("SIZE")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func (cl *client) quit() {
	if err := cl.c.Quit(); err != nil {
		cl.c.Close()
	}
	cl.stop()
}

func (cl *client) close() {
	cl.c.Close()
	cl.stop()
}

// cancelGrace is how long a mail transaction already under way may still take once the
// Drain's context is done: long enough for the server's reply to a message it has received
// (else that message is sent again later), short enough not to hold up a shutdown.
const cancelGrace = time.Second

// phaseConn caps the deadlines go-smtp sets on the connection. go-smtp sets a deadline of its
// own around each command (CommandTimeout) and clears it after, which would otherwise replace
// a deadline meant for several commands: the login phase (setLimit) and the cutoff once the
// Drain's context is done (cutoff).
type phaseConn struct {
	net.Conn
	mu    sync.Mutex // cutoff runs in context.AfterFunc's goroutine
	limit time.Time  // end of the login phase; zero after it
	hard  time.Time  // set by cutoff
}

// capped returns t, but no later than limit and hard. The zero t (no deadline) is latest.
func (c *phaseConn) capped(t time.Time) time.Time {
	for _, l := range [...]time.Time{c.limit, c.hard} {
		if !l.IsZero() && (t.IsZero() || t.After(l)) {
			t = l
		}
	}
	return t
}

func (c *phaseConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetDeadline(c.capped(t))
}

func (c *phaseConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetReadDeadline(c.capped(t))
}

func (c *phaseConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetWriteDeadline(c.capped(t))
}

// setLimit sets (or, with the zero time, ends) the deadline of the login phase.
func (c *phaseConn) setLimit(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = t
	_ = c.Conn.SetDeadline(c.capped(t))
}

// cutoff ends whatever the connection is doing: at once during the login phase, after
// cancelGrace during a mail transaction. A deadline, unlike Close, also lets the reply to a
// message already sent arrive.
func (c *phaseConn) cutoff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hard = time.Now()
	if c.limit.IsZero() {
		c.hard = c.hard.Add(cancelGrace)
	}
	_ = c.Conn.SetDeadline(c.hard)
}
