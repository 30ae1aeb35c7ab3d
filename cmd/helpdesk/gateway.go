package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/notify"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// gateway is the wired product: poller → store → worker.
type gateway struct {
	db     *store.DB
	poller *ingest.Poller
	worker *notify.Worker
	log    *slog.Logger
}

// gatewayOptions carries what only tests and the demo set.
type gatewayOptions struct {
	imapTLS, smtpTLS *tls.Config
	events           chan<- ingest.Event
	backoffMin       time.Duration
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
	applier, err := newApplier(cfg, now)
	if err != nil {
		return nil, err
	}
	poller, err := ingest.New(ingest.Config{
		Addr: cfg.IMAPAddr, User: cfg.IMAPUser, Password: cfg.IMAPPassword, TLS: cfg.IMAPTLS,
		TLSConfig: withServerName(o.imapTLS, cfg.IMAPAddr), Mailbox: cfg.IMAPMailbox, MoveTo: cfg.IMAPMoveTo,
		MaxMessageBytes: cfg.MaxMessageBytes, PollInterval: cfg.IMAPPoll, BackoffMin: o.backoffMin,
		BacklogAge: cfg.IMAPBacklog,
		Applier:    applier, Logger: log.With("component", "ingest"),
	}, db, o.events)
	if err != nil {
		return nil, err
	}
	worker, err := notify.New(notify.Config{
		Addr: cfg.SMTPAddr, User: cfg.SMTPUser, Password: cfg.SMTPPassword, TLS: cfg.SMTPTLS,
		TLSConfig: withServerName(o.smtpTLS, cfg.SMTPAddr), From: from, Templates: tpl,
		TicketTag: cfg.TicketTag, SiteURL: cfg.SiteURL, TokenTTL: cfg.TokenTTL, Now: now, Logger: log.With("component", "notify"),
	}, db)
	if err != nil {
		return nil, err
	}
	return &gateway{db: db, poller: poller, worker: worker, log: log}, nil
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
	ingestErr := g.poller.Once(ctx)
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
	<-ctx.Done()
	g.log.Info("stopping: finishing the email in hand")
	wg.Wait()
	flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if res, err := g.worker.Drain(flush, false); err != nil {
		g.log.Warn("outbox not flushed; notifications stay queued for the next start", "err", err)
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
	if !cfg.RequireAuth && len(cfg.Staff) > 0 {
		log.Warn("require_auth = false: staff email is applied on its From address alone, which anyone can forge; use only behind a server that rejects forged staff mail")
	}
	gw, err := newGateway(cfg, db, log, e.now, gatewayOptions{})
	if err != nil {
		return err
	}
	// The operator's commands work while this process holds the database, -once included.
	ctl, err := listenCtl(socketPath(cfg.DB), db, cfg, log, e.now)
	if err != nil {
		return err
	}
	ctx, stopCtl := context.WithCancel(e.ctx)
	defer stopCtl()
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
	log.Info("gateway running", "imap", cfg.IMAPAddr, "mailbox", cfg.IMAPMailbox, "smtp", cfg.SMTPAddr,
		"db", cfg.DB, "control", socketPath(cfg.DB))
	err = gw.run(e.ctx)
	<-ctlDone
	return err
}
