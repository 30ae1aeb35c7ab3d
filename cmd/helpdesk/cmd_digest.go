package main

import (
	"fmt"

	"github.com/infobits/helpdesk/notify"
	"github.com/infobits/helpdesk/rules/digest"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

const digestArgs = "[-at TIME] [-print]"

// runDigest renders the daily digest now (or as of -at): queued to staff_list, or printed
// with -print, for cron and for trying the template. Queued, it counts as the day's digest:
// serve sends no second one that day.
func runDigest(e *env, args []string) error {
	fs, _ := newFlags(e, "digest", digestArgs)
	at := fs.String("at", "", "render it as of `time`: 2026-11-30T08:30 in Amsterdam, or RFC 3339 (default now)")
	printOnly := fs.Bool("print", false, "print the digest (subject and text) instead of queueing it to staff_list")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	now, err := parseMoment(*at, e.now)
	if err != nil {
		return fmt.Errorf("%w: -at %v", errUsage, err)
	}
	dk, err := e.commandDesk(args)
	if err != nil {
		return err
	}
	cfg, _ := e.config(args)
	if !*printOnly {
		if err := cfg.require("staff_list"); err != nil {
			return err
		}
		var queued bool
		if err := e.db.Update(e.ctx, func(tx *store.Tx) (err error) {
			queued, _, err = dk.SendDigest(tx, digest.Schedule{Off: true}, now, true)
			return err
		}); err != nil {
			return err
		}
		if !queued {
			fmt.Fprintln(e.stdout, "nothing due and nothing held: no digest")
			return nil
		}
		fmt.Fprintf(e.stdout, "queued the daily digest to %s\n", dk.Policy.StaffList())
		return nil
	}
	var d digest.Digest
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		d, err = dk.DigestOf(tx, now)
		return err
	}); err != nil {
		return err
	}
	if d.Empty() {
		fmt.Fprintln(e.stdout, "nothing due and nothing held: no digest")
		return nil
	}
	tpl, err := templates.Load(cfg.Templates)
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	from, err := cfg.fromAddress()
	if err != nil {
		return err
	}
	r, err := notify.Render(notify.Config{Templates: tpl, From: from, TicketTag: cfg.TicketTag, SiteURL: cfg.SiteURL}, dk.DigestNotice(d, now))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Subject: %s\n\n%s", r.Subject, r.Text)
	return nil
}
