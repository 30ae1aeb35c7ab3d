package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // Europe/Amsterdam on machines without zoneinfo

	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/store/view"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runTicketList(e *env, args []string) error {
	fs, _ := newFlags(e, "ticket list", "[-json] [-customer ADDR]")
	asJSON := fs.Bool("json", false, "print JSON")
	customer := fs.String("customer", "", "only the tickets of the customer with this `address`")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	var ts []view.Ticket
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		ts, err = view.Tickets(tx, *customer)
		return err
	}); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, ts)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPRIORITY\tSLA\tCUSTOMER\tCREATED\tDUE\tMSGS\tSUBJECT")
	for _, t := range ts {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", t.ID, t.Status, t.Priority, t.SLA, t.Customer,
			shortTime(t.Created), shortTime(t.Due), t.Messages, t.Subject)
	}
	return tw.Flush()
}

func runTicketShow(e *env, args []string) error {
	fs, _ := newFlags(e, "ticket show", "[-json] ID")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want one ticket number", errUsage)
	}
	id, err := strconv.ParseUint(strings.TrimPrefix(pos[0], "#"), 10, 64)
	if err != nil || id == 0 {
		return fmt.Errorf("%w: %q is not a ticket number", errUsage, pos[0])
	}
	var d *view.TicketDetail
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		d, err = view.TicketDetailOf(tx, id)
		return err
	}); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, d)
	}
	w := e.stdout
	fmt.Fprintf(w, "Ticket %d: %s\n", d.ID, d.Subject)
	fmt.Fprintf(w, "  customer %s · %s · %s · %s\n", d.Customer, d.Status, d.Priority, d.SLA)
	fmt.Fprintf(w, "  created  %s · due %s", shortTime(d.Created), shortTime(d.Due))
	if fr := time.Time(d.FirstResponse); !fr.IsZero() {
		met := "met"
		if !d.FirstResponseMet {
			met = "missed"
		}
		fmt.Fprintf(w, " · first response %s (deadline %s)", shortTime(d.FirstResponse), met)
	}
	if d.Assignee != "" {
		fmt.Fprintf(w, " · assigned to %s", d.Assignee)
	}
	fmt.Fprintln(w)
	for i, m := range d.Messages {
		who := "customer"
		switch m.Direction {
		case store.DirectionOut:
			who = "staff"
		case store.DirectionNote:
			who = "staff note (internal)"
		}
		fmt.Fprintf(w, "\n[%d] %s %s, %s\n    Subject: %s\n", i+1, who, m.From, shortTime(m.Date), m.Subject)
		for _, a := range m.Attachments {
			fmt.Fprintf(w, "    Attachment: %s (%s, %d bytes)\n", a.Filename, a.ContentType, a.Size)
		}
		for _, line := range strings.Split(strings.TrimRight(m.Text, "\n"), "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
	}
	if len(d.Notifications) > 0 {
		fmt.Fprintln(w, "\nNotifications:")
		for _, n := range d.Notifications {
			fmt.Fprintf(w, "  %-7s %-15s to %s: %s", n.Status, n.Kind, n.To, n.Subject)
			if n.Error != "" {
				fmt.Fprintf(w, " (%s)", n.Error)
			}
			fmt.Fprintln(w)
		}
	}
	return nil
}

func runTicketHeld(e *env, args []string) error {
	fs, _ := newFlags(e, "ticket held", "[-json] [-all]")
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "also list the held emails staff released since")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	var hs []view.Held
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		hs, err = view.HeldEmails(tx, *all)
		return err
	}); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, hs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tFROM\tREASON\tSUBJECT\tDETAIL")
	for _, h := range hs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", h.ID, shortTime(h.Received), dash(h.From), h.Reason, h.Subject, h.Detail)
	}
	return tw.Flush()
}

func noPositional(fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	return nil
}

// amsterdam is the zone times are shown in (the helpdesk's), whatever the machine's zone.
func amsterdam() *time.Location {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		return time.UTC
	}
	return loc
}

func shortTime(t view.Time) string {
	if time.Time(t).IsZero() {
		return "-"
	}
	return time.Time(t).In(amsterdam()).Format("2006-01-02 15:04")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func runTicketClose(e *env, args []string) error {
	return runTicketCommand(e, "ticket close", "ID", args, func(pos []string) (string, error) { return "#close", nil })
}

func runTicketReopen(e *env, args []string) error {
	return runTicketCommand(e, "ticket reopen", "ID", args, func(pos []string) (string, error) { return "#reopen", nil })
}

func runTicketAssign(e *env, args []string) error {
	return runTicketCommand(e, "ticket assign", "ID ADDR", args, func(pos []string) (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("%w: want a ticket number and one staff address", errUsage)
		}
		return "#assign " + pos[0], nil
	})
}

// runTicketCommand is `ticket close|reopen|assign`: the staff email command of the same name,
// applied by ingest through the path of a staff email (Applier.OperatorCommand), with a note
// on the thread naming the operator. line builds the command from the arguments after the ID.
func runTicketCommand(e *env, name, usage string, args []string, line func(rest []string) (string, error)) error {
	fs, _ := newFlags(e, name, usage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: want a ticket number", errUsage)
	}
	id, err := strconv.ParseUint(strings.TrimPrefix(pos[0], "#"), 10, 64)
	if err != nil || id == 0 {
		return fmt.Errorf("%w: %q is not a ticket number", errUsage, pos[0])
	}
	if usage == "ID" && len(pos) > 1 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[1])
	}
	cmdLine, err := line(pos[1:])
	if err != nil {
		return err
	}
	cfg, err := e.config(args)
	if err != nil {
		return err
	}
	if err := cfg.require("from"); err != nil {
		return err
	}
	applier, err := newApplier(cfg, e.now)
	if err != nil {
		return err
	}
	var change string
	var t *store.Ticket
	err = e.db.Update(e.ctx, func(tx *store.Tx) (err error) {
		change, err = applier.OperatorCommand(tx, id, cmdLine, e.operator(), "helpdesk "+name, e.now())
		if err != nil {
			return err
		}
		t, err = tx.Ticket(id)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("no ticket %d (helpdesk ticket list shows them)", id)
	case errors.Is(err, ingest.ErrStaffCommand):
		staff := strings.Join(applier.Policy.Staff(), ", ")
		if staff == "" {
			staff = "none configured"
		}
		return fmt.Errorf("%v; the staff addresses (staff) are: %s", strings.TrimPrefix(err.Error(), ingest.ErrStaffCommand.Error()+": "), staff)
	case err != nil:
		return err
	}
	if change == "" {
		state := "is " + t.Status
		if t.Assignee != "" && strings.HasPrefix(cmdLine, "#assign") {
			state = "is assigned to " + t.Assignee
		}
		fmt.Fprintf(e.stdout, "ticket #%d %s already: nothing changed\n", id, state)
		return nil
	}
	fmt.Fprintf(e.stdout, "ticket #%d: %s (noted on the thread, by %s)\n", id, change, e.operator())
	if e.log != nil {
		e.log.Info("ticket changed by an operator", "ticket", id, "command", cmdLine, "change", change, "user", e.operator())
	}
	return nil
}
