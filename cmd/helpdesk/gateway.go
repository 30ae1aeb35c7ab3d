package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/cmd/helpdesk/api"
	"github.com/infobits/helpdesk/cmd/helpdesk/site"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/desk/backups"
	"github.com/infobits/helpdesk/desk/search"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/internal/oauth"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/notify"
	"github.com/infobits/helpdesk/rules/digest"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// gateway is the wired product: poller → store → worker, and what the HTTP API needs of
// them (the desk, the metrics, the health of each part).
type gateway struct {
	db     *store.DB
	poller *ingest.Poller
	worker *notify.Worker
	desk   *desk.Desk
	log    *slog.Logger
	now    func() time.Time

	// events is the poller's progress; pumpEvents feeds it to the metrics and the IMAP
	// health, then forwards it to the listener of the tests and the demo, when there is one.
	events  chan ingest.Event
	forward chan<- ingest.Event
	metrics *api.Metrics
	imap    imapHealth
	// heldWake is signalled when an email was held: the held notice may be due.
	heldWake chan struct{}
	// heldEvery is the least time between two notices of held emails (held_notice_interval).
	heldEvery time.Duration
	// digest is when the daily digest goes (digest_time).
	digest digest.Schedule
	// search is the search index, kept up to date after every commit; nil when it could not
	// be opened (the gateway works on without it).
	search *search.Index
}

// gatewayOptions carries what only tests and the demo set.
type gatewayOptions struct {
	imapTLS, smtpTLS *tls.Config
	events           chan<- ingest.Event
	backoffMin       time.Duration
	// parse: the bounds of reading an email (zero: the defaults); the tests of the safety
	// nets switch bounds off (env.parseLimits).
	parse parse.Limits
}

func newGateway(cfg *Config, db *store.DB, log *slog.Logger, now func() time.Time, o gatewayOptions) (*gateway, error) {
	from, err := cfg.fromAddress()
	if err != nil {
		return nil, err
	}
	tpl, err := templates.Load(cfg.Templates)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	dk, err := newDesk(cfg, now)
	if err != nil {
		return nil, err
	}
	sched, err := cfg.digestSchedule()
	if err != nil {
		return nil, err
	}
	// One token source for IMAP and SMTP: one access token serves both.
	tokens, err := cfg.oauthSource(now)
	if err != nil {
		return nil, err
	}
	var smtpTokens *oauth.Source
	if cfg.smtpOAuth() {
		smtpTokens = tokens
	}
	events := make(chan ingest.Event, 1024)
	poller, err := ingest.New(ingest.Config{
		Addr: cfg.IMAPAddr, User: cfg.IMAPUser, Password: cfg.IMAPPassword, OAuth: tokens, TLS: cfg.IMAPTLS,
		TLSConfig: withServerName(o.imapTLS, cfg.IMAPAddr), Mailbox: cfg.IMAPMailbox, MoveTo: cfg.IMAPMoveTo,
		MaxMessageBytes: cfg.MaxMessageBytes, PollInterval: cfg.IMAPPoll, BackoffMin: o.backoffMin,
		BacklogAge: cfg.IMAPBacklog, Parse: o.parse,
		Desk: dk, Logger: log.With("component", "ingest"),
	}, db, events)
	if err != nil {
		return nil, err
	}
	worker, err := notify.New(notify.Config{
		Addr: cfg.SMTPAddr, User: cfg.SMTPUser, Password: cfg.SMTPPassword, OAuth: smtpTokens, TLS: cfg.SMTPTLS,
		TLSConfig: withServerName(o.smtpTLS, cfg.SMTPAddr), From: from, Templates: tpl,
		TicketTag: cfg.TicketTag, SiteURL: cfg.SiteURL, TokenTTL: cfg.TokenTTL, AttachMax: cfg.AttachMax,
		Now: now, Logger: log.With("component", "notify"),
	}, db)
	if err != nil {
		return nil, err
	}
	return &gateway{db: db, poller: poller, worker: worker, desk: dk, log: log, now: now,
		events: events, forward: o.events, metrics: &api.Metrics{},
		heldWake: make(chan struct{}, 1), heldEvery: cmp.Or(cfg.HeldNotice, 5*time.Minute), digest: sched}, nil
}

// reportHeld queues the notice of held emails to the staff list when one is due at now (so
// held mail is seen) and returns when the next may be.
func (g *gateway) reportHeld(ctx context.Context, now time.Time) time.Time {
	var next time.Time
	err := g.db.Update(ctx, func(tx *store.Tx) (err error) {
		next, err = g.desk.ReportHeld(tx, g.heldEvery, now)
		return err
	})
	if err != nil && ctx.Err() == nil {
		g.log.Error("held emails could not be reported to the staff list; will try again", "err", err)
		return now.Add(time.Minute)
	}
	return next
}

// settleLogins lets every login change whose time has come at now take effect or expire
// (R17) and returns when the next may be due (zero: none pending).
func (g *gateway) settleLogins(ctx context.Context, now time.Time) time.Time {
	var next time.Time
	err := g.db.Update(ctx, func(tx *store.Tx) (err error) {
		next, err = g.desk.SettleLoginChanges(tx, now)
		return err
	})
	if err != nil && ctx.Err() == nil {
		g.log.Error("login changes could not be settled; will try again", "err", err)
		return now.Add(time.Minute)
	}
	return next
}

// dueLoop runs round while ctx lasts: at start, when wake fires (a nil wake never does), when
// the moment the last round returned has come, and a minute after the last round at the
// latest. Every moment is the gateway's clock, read once a second; the round gets the reading
// that made it due, and the next minute counts from that same reading (never from a second
// one taken after a slow round). round returns when it is next due (zero: nothing coming). A
// round that panics is reported and the loop goes on: the next round comes a minute later,
// or at the next wake.
func (g *gateway) dueLoop(ctx context.Context, what string, wake <-chan struct{}, round func(now time.Time) time.Time) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var next, recheck time.Time
	run := func(now time.Time) {
		next, recheck = time.Time{}, now.Add(time.Minute)
		if p := helpdesk.Survive(func() { next = round(now) }); p != nil {
			next = time.Time{}
			g.log.Error(what+" failed with a panic (a bug); the gateway goes on and tries again in a minute", "panic", p)
		}
	}
	run(g.now())
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
			run(g.now())
			continue
		case <-tick.C:
		}
		if now := g.now(); (!next.IsZero() && !now.Before(next)) || !now.Before(recheck) {
			run(now)
		}
	}
}

// runHeldReports reports held emails while ctx lasts: after an email is held, when a
// gathered notice falls due, and once a minute (an email held by a command or the site).
func (g *gateway) runHeldReports(ctx context.Context) {
	g.dueLoop(ctx, "the report of held emails", g.heldWake, func(now time.Time) time.Time { return g.reportHeld(ctx, now) })
}

// runLoginChanges settles login changes while ctx lasts (R17): a change asked for meanwhile
// (through the API, the site or the CLI, in this process) is found within a minute, and one
// due in 72 hours is settled within a second of its time.
func (g *gateway) runLoginChanges(ctx context.Context) {
	g.dueLoop(ctx, "the login changes", nil, func(now time.Time) time.Time { return g.settleLogins(ctx, now) })
}

// pumpEvents hands the poller's events to the metrics and the IMAP health, and forwards
// them (without blocking, as the poller does) to gatewayOptions.events. It runs while the
// poller does: stop, called once the poller has returned, handles what is still buffered and
// returns when the last event is through — so the demo reads every event of a once().
func (g *gateway) pumpEvents() (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	handle := func(ev ingest.Event) {
		if p := helpdesk.Survive(func() { g.observe(ev) }); p != nil {
			g.log.Error("counting an ingest event failed with a panic (a bug); the gateway goes on", "panic", p)
		}
	}
	go func() {
		defer close(done)
		for {
			select {
			case ev := <-g.events:
				handle(ev)
			case <-quit:
				for {
					select {
					case ev := <-g.events:
						handle(ev)
					default:
						return
					}
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// observe hands one poller event to the metrics, the IMAP health, the held-mail notice and
// the forward channel.
func (g *gateway) observe(ev ingest.Event) {
	g.metrics.Observe(ev, g.now())
	g.imap.observe(ev, g.now())
	if ev.Outcome != nil && ev.Outcome.HeldID != 0 && ev.Outcome.Action != "duplicate" {
		select {
		case g.heldWake <- struct{}{}:
		default:
		}
	}
	if g.forward != nil {
		select {
		case g.forward <- ev:
		default:
		}
	}
}

// imapHealth is the poller's session state as its events tell it: a failure after the last
// completed sync means the poller is reconnecting; a batch that stays at one step (fetch,
// commit) longer than its limit makes no progress.
type imapHealth struct {
	mu      sync.Mutex
	synced  bool
	err     error
	batches map[uint32]batchAt // by first UID: the batches under way
}

// batchAt is a batch under way and when (by the gateway's clock) it started its step.
type batchAt struct {
	ingest.Batch
	since time.Time
}

func (h *imapHealth) observe(ev ingest.Event, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case ev.Synced:
		h.synced, h.err, h.batches = true, nil, nil
	case ev.Err != nil:
		// The session is gone, and with it the batches it had under way.
		h.err, h.batches = ev.Err, nil
	case ev.Batch != nil && ev.Batch.Step == ingest.BatchDone:
		delete(h.batches, ev.Batch.First)
	case ev.Batch != nil:
		if h.batches == nil {
			h.batches = map[uint32]batchAt{}
		}
		h.batches[ev.Batch.First] = batchAt{Batch: *ev.Batch, since: now}
	}
}

// status is the IMAP session's health.
func (h *imapHealth) status() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.err != nil:
		return "reconnecting: " + oneLine(h.err.Error())
	case !h.synced:
		return "connecting: the mailbox has not been read yet"
	}
	return "ok"
}

// progress is ingest's health at now: the batch that has been at one step longest, when that
// is longer than the step's limit.
func (h *imapHealth) progress(now time.Time) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var worst *batchAt
	for _, b := range h.batches {
		if over := now.Sub(b.since) - b.Limit; over > 0 && (worst == nil || over > now.Sub(worst.since)-worst.Limit) {
			worst = &b
		}
	}
	if worst == nil {
		return "ok"
	}
	what := "fetching"
	switch worst.Step {
	case ingest.BatchCommit:
		what = "committing"
	case ingest.BatchParse:
		what = "reading the emails of"
	}
	return fmt.Sprintf("stalled: no progress for %s %s a batch of %d email(s) (uids %d-%d), over the limit of %s",
		now.Sub(worst.since).Round(time.Second), what, worst.Count, worst.First, worst.Last, worst.Limit)
}

// smtpDownAfter is how long the SMTP server may be failing (unreachable, closing, refusing
// the configuration) before the SMTP side counts as degraded: a restart of the mail server
// takes less.
const smtpDownAfter = 5 * time.Minute

// smtpStuckAfter is how long the oldest queued notification may wait, with a failed attempt,
// before the SMTP side counts as degraded.
const smtpStuckAfter = 10 * time.Minute

// health reports the gateway's parts for GET /healthz: "ok" or what is wrong.
func (g *gateway) health(ctx context.Context) map[string]string {
	now := g.now()
	out := map[string]string{"imap": g.imap.status(), "ingest": g.imap.progress(now), "store": "ok", "smtp": "ok"}
	if err := g.db.View(ctx, func(tx *store.Tx) error {
		_ = tx.Counts()
		return nil
	}); err != nil {
		out["store"] = oneLine(err.Error())
	}
	if h := g.worker.Health(); !h.FailingSince.IsZero() {
		if d := now.Sub(h.FailingSince); d > smtpDownAfter {
			out["smtp"] = fmt.Sprintf("failing for %s (since %s): %s", d.Round(time.Second),
				h.FailingSince.Format(time.RFC3339), oneLine(h.LastError))
			return out
		}
	}
	var queued []*helpdesk.Notification
	if err := g.db.View(ctx, func(tx *store.Tx) (err error) {
		queued, err = tx.DueNotifications(time.Time{}, 1<<20) // every queued one: usually few
		return err
	}); err != nil {
		out["smtp"] = "unknown: the outbox cannot be read: " + oneLine(err.Error())
		return out
	}
	var oldest *helpdesk.Notification
	for _, n := range queued {
		if oldest == nil || n.Created.Before(oldest.Created) {
			oldest = n
		}
	}
	if oldest != nil && oldest.LastError != "" {
		if age := now.Sub(oldest.Created); age > smtpStuckAfter {
			out["smtp"] = fmt.Sprintf("%d notification(s) queued, the oldest for %s: %s",
				len(queued), age.Round(time.Second), oneLine(oldest.LastError))
		}
	}
	return out
}

// httpAPI is the HTTP server of serve: the website's API, /healthz and /metrics.
type httpAPI struct {
	srv  *http.Server
	addr net.Addr
	done chan struct{}
}

// listenHTTP starts the HTTP server on http_addr. A listen failure (the port in use) is a
// one-line error naming the key.
func (g *gateway) listenHTTP(cfg *Config) (*httpAPI, error) {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err
		}
		return nil, fmt.Errorf("http_addr = %s (HELPDESK_HTTP_ADDR): cannot listen: %v; choose a free address, or set it empty to turn the HTTP API off", cfg.HTTPAddr, err)
	}
	hlog := g.log.With("component", "http")
	var h http.Handler = api.New(api.Config{Token: cfg.APIToken, Now: g.now, Logger: hlog, Health: g.health, Search: g.search}, g.db, g.desk, g.metrics)
	if cfg.Site {
		web, err := site.New(site.Config{SiteURL: cfg.SiteURL, Phone: cfg.SitePhone, MaxUpload: cfg.MaxMessageBytes,
			Templates: cfg.Templates, Now: g.now, Logger: g.log.With("component", "site")}, g.db, g.desk)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("site: %w", err)
		}
		h = site.Mount(web, h)
	}
	a := &httpAPI{addr: ln.Addr(), done: make(chan struct{}), srv: &http.Server{Handler: h,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(hlog.Handler(), slog.LevelWarn)}}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			hlog.Error("http server stopped", "err", err)
		}
	}()
	hlog.Info("http listening", "addr", a.addr.String(), "api", cfg.APIToken != "", "site", cfg.Site)
	if cfg.APIToken == "" {
		hlog.Info("no api_token: the /api/ routes are off; /healthz and /metrics answer")
	}
	if !helpdesk.IsLoopback(cfg.HTTPAddr) {
		hlog.Warn("http_addr is not a loopback address: the bearer token and customer data cross the network in clear unless a TLS proxy stands in front")
	}
	return a, nil
}

// shutdown stops accepting, lets requests in progress finish for up to 5 s, then cuts them.
func (a *httpAPI) shutdown(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		log.Warn("http requests cut off at shutdown", "err", err)
		_ = a.srv.Close()
	}
	<-a.done
}

// withServerName fills in a TLS config's server name (certificate check) from host:port.
func withServerName(c *tls.Config, addr string) *tls.Config {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if c == nil {
		return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	c = c.Clone()
	if c.ServerName == "" {
		c.ServerName = host
	}
	return c
}

// once ingests what waits in the mailbox and sends every queued notification. The outbox is
// sent even when the mailbox cannot be read: answers already stored must not wait for IMAP.
func (g *gateway) once(ctx context.Context) error {
	stopEvents := g.pumpEvents()
	ingestErr := g.poller.Once(ctx)
	stopEvents()
	g.reportHeld(ctx, g.now())
	g.settleLogins(ctx, g.now())
	g.checkQueue(ctx, g.now())
	if g.search != nil {
		if _, err := g.search.CatchUp(ctx); err != nil {
			g.log.Error("the search index could not be updated (the tickets are safe in the database)", "err", err)
		}
	}
	res, err := g.worker.Drain(ctx, true)
	g.log.Info("outbox drained", "sent", res.Sent, "failed", res.Failed, "retrying", res.Retrying)
	if err != nil {
		err = fmt.Errorf("notifications stay queued: %w", err)
	}
	if ingestErr != nil && err != nil {
		return fmt.Errorf("%w; and %w", ingestErr, err)
	}
	return cmp.Or(ingestErr, err)
}

// run runs until ctx is done, then lets the email in hand finish and flushes the outbox. A
// poller that gives up (the server refused the login at start) stops the gateway with its
// error.
func (g *gateway) run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var wg sync.WaitGroup
	var ingestErr error
	stopEvents := g.pumpEvents()
	wg.Go(func() {
		if ingestErr = g.poller.Run(ctx); ingestErr != nil {
			g.log.Error("ingest stopped", "err", ingestErr)
			cancel()
		}
	})
	wg.Go(func() {
		if err := g.worker.Run(ctx); err != nil {
			g.log.Error("notify stopped", "err", err)
		}
	})
	wg.Go(func() { g.runHeldReports(ctx) })
	wg.Go(func() { g.runLoginChanges(ctx) })
	wg.Go(func() { g.runQueueChecks(ctx) })
	if g.search != nil {
		wg.Go(func() { g.search.Run(ctx) })
	}
	<-ctx.Done()
	g.log.Info("stopping: finishing the email in hand")
	wg.Wait()
	stopEvents()
	flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if res, err := g.worker.Drain(flush, false); err != nil {
		queued := -1
		_ = g.db.View(context.WithoutCancel(ctx), func(tx *store.Tx) error {
			queued = tx.QueuedNotifications()
			return nil
		})
		switch queued {
		case -1:
			g.log.Warn("outbox not flushed; the notifications still queued go out at the next start", "err", err)
		case 0:
			g.log.Warn("outbox flush interrupted; no notification stays queued", "sent", res.Sent, "err", err)
		default:
			g.log.Warn(fmt.Sprintf("outbox not flushed: %d notification(s) stay queued and go out at the next start", queued),
				"queued", queued, "sent", res.Sent, "err", err)
		}
	} else if res.Sent > 0 {
		g.log.Info("outbox flushed", "sent", res.Sent)
	}
	g.log.Info("stopped")
	return ingestErr
}

func runServe(e *env, args []string) error {
	fs, _ := newFlags(e, "serve", "[-config FILE] [-once]")
	once := fs.Bool("once", false, "process everything waiting in the mailbox, send every queued notification, then exit")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	cfg, err := e.config(args)
	if err != nil {
		return err
	}
	if err := cfg.validateServe(); err != nil {
		return err
	}
	log, err := newLogger(e.stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	db, err := store.Open(cfg.DB, store.Options{LockTimeout: 2 * time.Second})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("another gateway holds the database %s (its control socket is %s); stop it first", cfg.DB, socketPath(cfg.DB))
	}
	if err != nil {
		return err
	}
	defer db.Close()
	if db.Created() {
		log.Warn("created a new, empty database (if you meant an existing one, check db in the config file or HELPDESK_DB)", "path", absPath(cfg.DB))
	}
	if cfg.SiteURL == "" {
		log.Warn("site_url is empty: password-reset and login links, and answer-on-the-site notices, cannot be sent (they fail with that reason)")
	}
	if w := cfg.siteURLPath(); w != "" {
		log.Warn(w)
	}
	if !cfg.RequireAuth && len(cfg.Staff) > 0 {
		log.Warn("require_auth = false: staff email is applied on its From address alone, which anyone can forge; use only behind a server that rejects forged staff mail")
	}
	gw, err := newGateway(cfg, db, log, e.now, gatewayOptions{parse: e.parseLimits})
	if err != nil {
		return err
	}
	// The search index is derived data: without it the gateway works on, and says so.
	if idx, err := search.Open(search.Path(cfg.DB), db, log.With("component", "search")); err != nil {
		log.Error("the search index cannot be opened: ticket search and GET /api/tickets are off until it can (helpdesk search reindex)", "err", err)
	} else {
		defer idx.Close()
		gw.search = idx
	}
	// The daily backup (R20), when backup_dir is set; not for -once (cron runs `backup`).
	daily, err := backups.NewSchedule(cfg.BackupDir, cfg.BackupTime, db, backupVersion(), log, e.now)
	if err != nil {
		return err
	}
	// The website's API, /healthz and /metrics, while the gateway runs (not for -once, a
	// batch run from cron).
	var web *httpAPI
	if cfg.HTTPAddr != "" && !*once {
		if web, err = gw.listenHTTP(cfg); err != nil {
			return err
		}
	}
	// The operator's commands work while this process holds the database, -once included.
	ctl, err := listenCtl(socketPath(cfg.DB), db, cfg, log, e.now)
	if err != nil {
		if web != nil {
			web.shutdown(log)
		}
		return err
	}
	ctx, stopCtl := context.WithCancel(e.ctx)
	defer stopCtl()
	ctl.search = gw.search
	if gw.worker != nil {
		ctl.smtpNextTry = func() time.Time { return gw.worker.Health().NextTry }
	}
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		ctl.serve(ctx)
	}()
	if *once {
		err := gw.once(e.ctx)
		stopCtl()
		<-ctlDone
		return err
	}
	signIn := "password"
	if cfg.OAuthProvider != "" {
		signIn = "oauth " + cfg.OAuthProvider + " " + cfg.OAuthFlow
	}
	log.Info("gateway running", "imap", cfg.IMAPAddr, "mailbox", cfg.IMAPMailbox, "smtp", cfg.SMTPAddr, "sign_in", signIn,
		"db", cfg.DB, "control", socketPath(cfg.DB), "http", cfg.HTTPAddr)
	// The HTTP server stops taking requests as soon as the gateway is told to stop (or stops
	// by itself), while the gateway finishes the email in hand and flushes the outbox.
	runCtx, stopRun := context.WithCancel(e.ctx)
	defer stopRun()
	webDone := make(chan struct{})
	go func() {
		defer close(webDone)
		if web != nil {
			<-runCtx.Done()
			web.shutdown(log)
		}
	}()
	stopBackups := daily.Start(runCtx)
	err = gw.run(runCtx)
	stopRun()
	<-webDone
	stopBackups()
	stopCtl() // also when the poller gave up by itself
	<-ctlDone
	return err
}
