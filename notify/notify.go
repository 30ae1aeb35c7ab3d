// Package notify delivers the outbox: it renders each queued notification from templates,
// sends it over SMTP with go-smtp (one connection reused for a burst), retries temporary
// failures with backoff, and records permanent ones on the notification. A queued notification
// is never lost: its state changes only after the SMTP server answered.
//
// Notify reads no IMAP and decides no policy: what to send and to whom was decided by ingest
// and written to the store's outbox. Delivery is at-least-once: a crash between the server's
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
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// TLS modes for the SMTP connection.
const (
	TLSImplicit = "tls"      // SMTPS, port 465
	TLSStart    = "starttls" // submission, port 587
	TLSNone     = "none"     // plaintext: loopback only
)

// Config is what the worker needs. Zero durations take the documented defaults.
type Config struct {
	Addr, User, Password string
	TLS                  string      // TLSStart (default), TLSImplicit or TLSNone
	TLSConfig            *tls.Config // nil: system roots, server name from Addr
	From                 *mail.Address
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
	Now     func() time.Time
	Logger  *slog.Logger
}

// Worker drains the outbox.
type Worker struct {
	cfg Config
	db  *store.DB
	log *slog.Logger
}

// New checks the configuration and makes a Worker.
func New(cfg Config, db *store.DB) (*Worker, error) {
	cfg.TLS = cmp.Or(cfg.TLS, TLSStart)
	cfg.RetryMin = cmp.Or(cfg.RetryMin, time.Minute)
	cfg.RetryMax = cmp.Or(cfg.RetryMax, time.Hour)
	cfg.GiveUpAfter = cmp.Or(cfg.GiveUpAfter, 72*time.Hour)
	cfg.Timeout = cmp.Or(cfg.Timeout, 30*time.Second)
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
	case cfg.TLS != TLSImplicit && cfg.TLS != TLSStart && cfg.TLS != TLSNone:
		return nil, fmt.Errorf("notify: smtp tls mode %q: want tls, starttls or none", cfg.TLS)
	case cfg.TLS == TLSNone && !isLoopback(cfg.Addr):
		return nil, fmt.Errorf("notify: plaintext SMTP (tls=none) is allowed only to a loopback address, not %s", cfg.Addr)
	}
	if cfg.Hostname == "" {
		_, dom, _ := strings.Cut(cfg.From.Address, "@")
		cfg.Hostname = cmp.Or(dom, "localhost")
	}
	return &Worker{cfg: cfg, db: db, log: cfg.Logger}, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// Run delivers notifications as they are queued and retries as they fall due, until ctx is
// done. A failing SMTP server never stops it: while the server cannot be reached, Run waits
// RetryMin, doubling up to RetryMax, between attempts (or until a new notification is queued).
func (w *Worker) Run(ctx context.Context) error {
	wake := w.db.OutboxWake()
	var backoff time.Duration
	for {
		_, err := w.Drain(ctx, false)
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
		} else {
			backoff = 0
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
// an error when the SMTP server could not be reached, refused the login or answered 421
// (closing); the notifications not yet sent stay queued as they were.
func (w *Worker) Drain(ctx context.Context, all bool) (Result, error) {
	var res Result
	var conn *client
	defer func() {
		if conn != nil {
			conn.quit()
		}
	}()
	tried := map[uint64]bool{}
	for ctx.Err() == nil {
		var due []*store.Notification
		at := w.cfg.Now()
		if all {
			at = time.Time{}
		}
		if err := w.db.View(ctx, func(tx *store.Tx) (err error) {
			due, err = tx.DueNotifications(at, 100+len(tried))
			return err
		}); err != nil {
			return res, fmt.Errorf("read outbox: %w", err)
		}
		progress := false
		for _, n := range due {
			if tried[n.ID] || ctx.Err() != nil {
				continue
			}
			tried[n.ID] = true
			progress = true
			var err error
			conn, err = w.deliver(ctx, conn, n, &res)
			if err != nil {
				return res, err
			}
		}
		if !progress {
			break
		}
	}
	return res, nil
}

// deliver renders and sends one notification and records the outcome. It returns the
// connection to reuse (nil after a connection failure) and an error only when the SMTP
// server cannot be used at all; the notification is then left as it was (the server never
// answered about it), except after a 421, which is recorded as an attempt.
func (w *Worker) deliver(ctx context.Context, conn *client, n *store.Notification, res *Result) (*client, error) {
	now := w.cfg.Now()
	if n.Created.IsZero() {
		n.Created = now // GiveUpAfter counts from the first attempt
	}
	n.Attempts++
	log := w.log.With("notification", n.ID, "kind", n.Kind, "to", n.To, "ticket", n.TicketID)

	if n.MessageID = cleanMsgID(n.MessageID); n.MessageID == "" {
		n.MessageID = newMessageID(w.cfg.Hostname)
	}
	msg, rcpt, err := w.render(n, now)
	if err != nil {
		// A bad address or a template that does not render: retrying will not help.
		return conn, w.fail(ctx, n, err, res, log)
	}
	if conn == nil {
		if conn, err = w.dial(); err != nil {
			return nil, err
		}
	}
	err = conn.send(w.cfg.From.Address, rcpt, msg)
	var serr *smtp.SMTPError
	switch {
	case err == nil:
		n.Status, n.Sent, n.LastError, n.NextAttempt = store.NotifySent, now, "", time.Time{}
		res.Sent++
		log.Info("notification sent", "attempts", n.Attempts)
		return conn, w.save(ctx, n)
	case errors.As(err, &serr) && serr.Code == 421:
		// "Service not available, closing transmission channel" (RFC 5321): the server
		// is going away, for this message and the rest.
		conn.close()
		if serr := w.retry(ctx, n, now, err, res, log); serr != nil {
			return nil, serr
		}
		return nil, fmt.Errorf("%w: SMTP server %s: %v", errConn, w.cfg.Addr, err)
	case errors.As(err, &serr) && serr.Temporary():
		return conn, w.retry(ctx, n, now, err, res, log)
	case errors.As(err, &serr):
		return conn, w.fail(ctx, n, err, res, log)
	default:
		// No SMTP reply: the connection broke (or a client-side check refused the
		// command). Its state is unknown, so a later notification gets a new one.
		conn.close()
		if isTransient(err) {
			return nil, w.retry(ctx, n, now, err, res, log)
		}
		return nil, w.fail(ctx, n, err, res, log)
	}
}

// render builds the message of n and returns it with the envelope recipient.
func (w *Worker) render(n *store.Notification, now time.Time) (msg []byte, rcpt string, err error) {
	r, err := w.cfg.Templates.Render(n.Kind, n.Lang, w.data(n))
	if err != nil {
		return nil, "", err
	}
	n.Subject = r.Subject
	lang := n.Lang
	if !slices.Contains(templates.Langs(), lang) {
		lang = templates.Langs()[0] // what Render fell back to
	}
	return compose(w.cfg.From, n, r, lang, now)
}

// fail records a permanent failure.
func (w *Worker) fail(ctx context.Context, n *store.Notification, cause error, res *Result, log *slog.Logger) error {
	n.Status, n.LastError, n.NextAttempt = store.NotifyFailed, cause.Error(), time.Time{}
	res.Failed++
	log.Error("notification failed permanently", "err", cause)
	return w.save(ctx, n)
}

// retry records a temporary failure and schedules the next attempt, or gives up.
func (w *Worker) retry(ctx context.Context, n *store.Notification, now time.Time, cause error, res *Result, log *slog.Logger) error {
	n.LastError = cause.Error()
	if now.Sub(n.Created) > w.cfg.GiveUpAfter {
		n.Status = store.NotifyFailed
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

func (w *Worker) save(ctx context.Context, n *store.Notification) error {
	err := w.db.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error { return tx.PutNotification(n) })
	if err != nil {
		return fmt.Errorf("record notification %d: %w", n.ID, err)
	}
	return nil
}

// data is what the templates see of a notification.
func (w *Worker) data(n *store.Notification) templates.Data {
	d := templates.Data{TicketID: n.TicketID, TicketSubject: n.Data.TicketSubject,
		CustomerName: n.Data.CustomerName, DueTime: n.Data.Due, Text: n.Data.Text,
		StaffName: n.Data.StaffName, OrigSubject: n.Data.OrigSubject, Address: n.Data.Address,
		Helpdesk: cmp.Or(w.cfg.From.Name, w.cfg.From.Address), SiteURL: w.cfg.SiteURL,
		Tier: string(n.Data.Tier), Priority: n.Data.Priority, SurchargeZone: n.Data.SurchargeZone,
		Followup: n.Data.Followup, Payment: n.Data.Payment, Notes: n.Data.Notes,
		LimitKind: n.Data.LimitKind, LimitValue: n.Data.LimitValue}
	if v := n.Data.ValidUntil; !v.IsZero() {
		d.ValidUntil = fmt.Sprintf("%02d-%02d-%04d", v.Day, v.Month, v.Year)
	}
	if n.TicketID != 0 {
		d.Ref = fmt.Sprintf("[%s #%d]", w.cfg.TicketTag, n.TicketID)
		if w.cfg.SiteURL != "" {
			d.TicketURL = fmt.Sprintf("%s/tickets/%d", strings.TrimRight(w.cfg.SiteURL, "/"), n.TicketID)
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

// client is one SMTP connection, reused for every notification of a Drain.
type client struct {
	c *smtp.Client
}

// dial connects, says EHLO and authenticates. AUTH is never sent over plaintext to a
// non-loopback address (New refuses that configuration).
func (w *Worker) dial() (*client, error) {
	tlsCfg := w.cfg.TLSConfig
	if tlsCfg == nil {
		host, _, _ := net.SplitHostPort(w.cfg.Addr)
		tlsCfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	var c *smtp.Client
	var err error
	switch w.cfg.TLS {
	case TLSImplicit:
		c, err = smtp.DialTLS(w.cfg.Addr, tlsCfg)
	case TLSStart:
		c, err = smtp.DialStartTLS(w.cfg.Addr, tlsCfg)
	default:
		c, err = smtp.Dial(w.cfg.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: connect to SMTP server %s (%s): %v", errConn, w.cfg.Addr, w.cfg.TLS, err)
	}
	c.CommandTimeout = w.cfg.Timeout
	c.SubmissionTimeout = 2 * w.cfg.Timeout
	if err := c.Hello(w.cfg.Hostname); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: SMTP server %s: EHLO: %v", errConn, w.cfg.Addr, err)
	}
	// The TLS handshake happens lazily; a certificate problem shows up here.
	if err := c.Noop(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: SMTP server %s: %v", errConn, w.cfg.Addr, err)
	}
	if w.cfg.User != "" {
		if err := c.Auth(sasl.NewPlainClient("", w.cfg.User, w.cfg.Password)); err != nil {
			c.Close()
			var serr *smtp.SMTPError
			if errors.As(err, &serr) && !serr.Temporary() {
				return nil, fmt.Errorf("%w: SMTP server %s refused login as %q: %v (check the SMTP user and password)", errConn, w.cfg.Addr, w.cfg.User, err)
			}
			return nil, fmt.Errorf("%w: SMTP AUTH at %s: %v", errConn, w.cfg.Addr, err)
		}
	}
	return &client{c: c}, nil
}

// send runs one mail transaction. After a refusal the transaction is reset so the
// connection can carry the next notification.
func (cl *client) send(from, to string, msg []byte) error {
	err := func() error {
		if err := cl.c.Mail(from, nil); err != nil {
			return err
		}
		if err := cl.c.Rcpt(to, nil); err != nil {
			return err
		}
		wc, err := cl.c.Data()
		if err != nil {
			return err
		}
		if _, err := wc.Write(msg); err != nil {
			wc.Close()
			return err
		}
		return wc.Close()
	}()
	if err != nil && isSMTPReply(err) {
		_ = cl.c.Reset()
	}
	return err
}

func (cl *client) quit() {
	if err := cl.c.Quit(); err != nil {
		cl.c.Close()
	}
}

func (cl *client) close() { cl.c.Close() }
