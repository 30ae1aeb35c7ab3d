package main

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/rules/digest"
	"github.com/infobits/helpdesk/rules/escalation"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// parseMoment reads a moment for -at: local Amsterdam time ("2026-11-27T16:00",
// "2026-11-27 16:00", seconds optional, or a date alone for midnight) or RFC 3339 with an
// offset. Empty means now.
func parseMoment(s string, now func() time.Time) (time.Time, error) {
	if s == "" {
		return now().In(helpdesk.Amsterdam()), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.In(helpdesk.Amsterdam()), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, helpdesk.Amsterdam()); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want YYYY-MM-DDTHH:MM (Amsterdam time) or RFC 3339 with an offset", s)
}

func runDeadline(e *env, args []string) error {
	fs, _ := newFlags(e, "deadline", "-sla SLA24|SLA8|SLA4 [-contract] [-at TIME]")
	sla := fs.String("sla", "SLA24", "the customer's `tier` (R6: 24, 8 or 4 working hours)")
	contract := fs.Bool("contract", false, "the customer has a support contract (R8: Saturday morning counts with a paid tier)")
	at := fs.String("at", "", "arrival `time`: 2026-11-27T16:00 in Amsterdam, or RFC 3339 with an offset (default now)")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	tier, err := helpdesk.ParseTier(*sla)
	if err != nil {
		return fmt.Errorf("%w: -sla: %v", errUsage, err)
	}
	arrival, err := parseMoment(*at, e.now)
	if err != nil {
		return fmt.Errorf("%w: -at %v", errUsage, err)
	}
	cfg, err := e.config(args)
	if err != nil {
		return err
	}
	cals, err := cfg.calendars()
	if err != nil {
		return err
	}
	c := &helpdesk.Customer{Tier: tier, Contract: *contract}
	cal, hours := cals.Helpdesk, cfg.HoursHelpdesk
	name := policy.CalendarFor(c, arrival)
	if name == helpdesk.CalendarContract {
		cal, hours = cals.Zone1, cfg.HoursZone1
	}
	due := cal.Deadline(arrival, tier.Hours())
	fmt.Fprintln(e.stdout, due.Format(time.RFC3339))
	fmt.Fprintf(e.stdout, "calendar: %s (%s)\n", name, hours)
	fmt.Fprintf(e.stdout, "%d working hours after %s: %s\n", tier.Hours(),
		templates.FormatDate(arrival, "nl"), templates.FormatDate(due, "nl"))
	return nil
}

func runRateZone(e *env, args []string) error {
	fs, _ := newFlags(e, "ratezone", "[-at TIME]")
	at := fs.String("at", "", "the `time`: 2026-11-27T16:00 in Amsterdam, or RFC 3339 with an offset (default now)")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	t, err := parseMoment(*at, e.now)
	if err != nil {
		return fmt.Errorf("%w: -at %v", errUsage, err)
	}
	cfg, err := e.config(args)
	if err != nil {
		return err
	}
	cals, err := cfg.calendars()
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, cals.ZoneName(t))
	return nil
}

// newDesk is the ingest dk the gateway and `ticket release` share.
func newDesk(cfg *Config, now func() time.Time) (*desk.Desk, error) {
	from, err := cfg.fromAddress()
	if err != nil {
		return nil, err
	}
	cals, err := cfg.calendars()
	if err != nil {
		return nil, err
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	var staffList string
	if a, err := mail.ParseAddress(cfg.StaffList); err == nil {
		staffList = helpdesk.NormalizeAddress(a.Address)
	}
	pol := policy.New(policy.Rules{Staff: cfg.staffAddresses(), TicketTag: cfg.TicketTag,
		Own: []string{helpdesk.NormalizeAddress(from.Address)}, Calendars: cals,
		UrgentWords: cfg.UrgentWords, CallbackWords: cfg.CallbackWords,
		Limits: policy.Limits{TicketsPerMonth: cfg.SLA24TicketsPerMonth, OpenTickets: cfg.SLA24OpenTickets,
			RepliesPerTicket: cfg.SLA24RepliesPerTicket},
		SLA24LapseMonths: cfg.SLA24LapseAfter,
		AuthServID:       cfg.AuthServID, RequireStaffAuth: cfg.RequireAuth, StaffList: staffList,
		AutoRepliesPerHour: cfg.AutoReplyPerHour, RecoveryPerHour: cfg.RecoveryPerHour, BounceSuppress: cfg.BounceSuppress,
		RecoveryPerCustomer: cfg.RecoveryCustomer, UnsolicitedPerHour: cfg.Unsolicited, StaffNoticesPerHour: cfg.StaffNotices,
		LoginCooling: cfg.LoginCooling})
	th, err := escalation.Parse(cfg.EscalationWarn)
	if err != nil {
		return nil, fmt.Errorf("escalation_warn: %w", err)
	}
	return &desk.Desk{Policy: pol, MessageIDDomain: domain, Now: now, Escalation: th}, nil
}

// digestSchedule is when serve sends the daily digest (digest_time on the working days of the
// helpdesk calendar).
func (cfg *Config) digestSchedule() (digest.Schedule, error) {
	clock, off, err := digest.ParseClock(cfg.DigestTime)
	if err != nil {
		return digest.Schedule{}, fmt.Errorf("digest_time: %w", err)
	}
	cals, err := cfg.calendars()
	if err != nil {
		return digest.Schedule{}, err
	}
	return digest.Schedule{Clock: clock, Off: off, Cal: cals.Helpdesk}, nil
}

// commandDesk is the ingest dk of a command that changes tickets or held emails as
// ingest would (ticket release, ticket held dismiss, ticket close|reopen|assign): the
// configuration must name from, the sender of what it queues.
func (e *env) commandDesk(args []string) (*desk.Desk, error) {
	cfg, err := e.config(args)
	if err != nil {
		return nil, err
	}
	if err := cfg.require("from"); err != nil {
		return nil, err
	}
	return newDesk(cfg, e.now)
}

func runTicketRelease(e *env, args []string) error {
	fs, _ := newFlags(e, "ticket release", "ID [-as-staff]")
	asStaff := fs.Bool("as-staff", false, "release a staff email held as unverified as that staff member's answer (you vouch that they wrote it; logged with your user name)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want the number of one held email (see ticket held)", errUsage)
	}
	id, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil || id == 0 {
		return fmt.Errorf("%w: %q is not a held email's number", errUsage, pos[0])
	}
	dk, err := e.commandDesk(args)
	if err != nil {
		return err
	}
	by := e.operator()
	var out desk.Outcome
	if err := e.db.Update(e.ctx, func(tx *store.Tx) (err error) {
		out, err = dk.Release(tx, id, desk.ReleaseOptions{AsStaff: *asStaff, By: by})
		return err
	}); err != nil {
		return err
	}
	log, err := e.logger()
	if err != nil {
		return err
	}
	log.Info("held email released", "held", id, "by", by, "as_staff", *asStaff, "outcome", out.Action, "ticket", out.TicketID, "from", out.From)
	switch out.Action {
	case "new_ticket":
		fmt.Fprintf(e.stdout, "held email %d released: opened ticket #%d", id, out.TicketID)
	case "staff_answer":
		fmt.Fprintf(e.stdout, "held email %d released as the staff answer of %s on ticket #%d", id, terminalSafe(out.From), out.TicketID)
	default:
		fmt.Fprintf(e.stdout, "held email %d released: added to ticket #%d", id, out.TicketID)
	}
	if out.Notified > 0 {
		fmt.Fprintf(e.stdout, " (%d notification(s) queued)", out.Notified)
	}
	fmt.Fprintln(e.stdout)
	return nil
}
