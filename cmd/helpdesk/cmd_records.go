package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/desk/search"
	"github.com/infobits/helpdesk/desk/view"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// writeJSON prints v as indented JSON, terminal-safe: encoding/json escapes the C0 controls
// but writes DEL, the C1 controls (U+009B is CSI) and the bidi controls raw, so `-json` output
// of a hostile subject acted on the operator's terminal as the text output no longer did. They
// are written as \uXXXX instead (see escaped): in a JSON string that is the same character, so
// what a program reads is unchanged.
func writeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := io.WriteString(w, jsonTerminalSafe(b.String()))
	return err
}

// jsonTerminalSafe escapes, in JSON that encoding/json wrote, the characters a terminal must
// not get raw. encoding/json writes them only inside strings (its own structure is ASCII, and
// the only raw C0 it writes is the newline of its indentation, which is kept).
func jsonTerminalSafe(s string) string {
	bad := func(r rune) bool { return escaped(r, true) }
	if !strings.ContainsFunc(s, bad) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for _, r := range s {
		if bad(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func runTicketList(e *env, args []string) error {
	fs, _ := newFlags(e, "ticket list", "[-json] [-customer ADDR] [-status open|answered|closed]")
	asJSON := fs.Bool("json", false, "print JSON")
	customer := fs.String("customer", "", "only the tickets of the customer with this `address`")
	status := fs.String("status", "", "only tickets with this `status`: open, answered or closed (an imported archive is closed)")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	if *status != "" && !search.ValidStatus(*status) {
		return fmt.Errorf("%w: -status %q: want %s", errUsage, *status, strings.Join(search.Statuses(), ", "))
	}
	var ts []view.Ticket
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		ts, err = view.Tickets(tx, *customer)
		return err
	}); err != nil {
		return err
	}
	if *status != "" {
		ts = slices.DeleteFunc(ts, func(t view.Ticket) bool { return t.Status != *status })
	}
	if *asJSON {
		return writeJSON(e.stdout, ts)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPRIORITY\tSLA\tCUSTOMER\tCREATED\tDUE\tMSGS\tSUBJECT")
	for _, t := range ts {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", t.ID, t.Status, t.Priority, t.SLA, terminalSafe(t.Customer),
			shortTime(t.Created), shortTime(t.Due), t.Messages, terminalSafe(t.Subject))
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
	fmt.Fprintf(w, "Ticket %d: %s\n", d.ID, terminalSafe(d.Subject))
	fmt.Fprintf(w, "  customer %s · %s · %s · %s\n", terminalSafe(d.Customer), d.Status, d.Priority, d.SLA)
	fmt.Fprintf(w, "  created  %s · due %s", shortTime(d.Created), shortTime(d.Due))
	if fr := time.Time(d.FirstResponse); !fr.IsZero() {
		met := "met"
		if !d.FirstResponseMet {
			met = "missed"
		}
		fmt.Fprintf(w, " · first response %s (deadline %s)", shortTime(d.FirstResponse), met)
	}
	if d.Assignee != "" {
		fmt.Fprintf(w, " · assigned to %s", terminalSafe(d.Assignee))
	}
	fmt.Fprintln(w)
	for i, m := range d.Messages {
		who := "customer"
		switch m.Direction {
		case helpdesk.DirectionOut:
			who = "staff"
		case helpdesk.DirectionNote:
			who = "staff note (internal)"
		case helpdesk.DirectionReport:
			who = "delivery report (not from the customer)"
		}
		from := m.From
		if m.FromName != "" {
			from = m.FromName + " <" + m.From + ">"
		}
		fmt.Fprintf(w, "\n[%d] %s %s, %s\n    Subject: %s\n", i+1, who, terminalSafe(from), shortTime(m.Date), terminalSafe(m.Subject))
		for _, a := range m.Attachments {
			fmt.Fprintf(w, "    Attachment %d: %s (%s, %s) — helpdesk ticket attachment %d %d\n", a.Number,
				terminalSafe(a.Filename), terminalSafe(a.ContentType), humanSize(a.Size), d.ID, a.Number)
		}
		for _, line := range strings.Split(terminalText(strings.TrimRight(m.Text, "\n")), "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
	}
	if len(d.Notifications) > 0 {
		fmt.Fprintln(w, "\nNotifications:")
		for _, n := range d.Notifications {
			fmt.Fprintf(w, "  %-7s %-15s to %s: %s", n.Status, n.Kind, terminalSafe(n.To), terminalSafe(n.Subject))
			if n.Error != "" {
				fmt.Fprintf(w, " (%s)", terminalSafe(n.Error))
			}
			if n.AttachNote != "" {
				fmt.Fprintf(w, " [%s]", terminalSafe(n.AttachNote))
			}
			fmt.Fprintln(w)
		}
	}
	return nil
}

const ticketHeldArgs = "[-json] [-all] [-reason REASON] [-since YYYY-MM-DD]"

func runTicketHeld(e *env, args []string) error {
	fs, _ := newFlags(e, "ticket held", ticketHeldArgs)
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "also list the held emails staff released or dismissed")
	reason := fs.String("reason", "", "only held emails with this `reason` ("+strings.Join(helpdesk.HeldReasons(), ", ")+")")
	since := fs.String("since", "", "only held emails that arrived on or after this `day` (YYYY-MM-DD, Amsterdam time)")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	f := view.HeldFilter{All: *all, Reason: *reason}
	if f.Reason != "" && !slices.Contains(helpdesk.HeldReasons(), f.Reason) {
		return fmt.Errorf("%w: -reason %q: want one of %s", errUsage, f.Reason, strings.Join(helpdesk.HeldReasons(), ", "))
	}
	if *since != "" {
		t, err := time.ParseInLocation(time.DateOnly, *since, helpdesk.Amsterdam())
		if err != nil {
			return fmt.Errorf("%w: -since %q: want a day YYYY-MM-DD", errUsage, *since)
		}
		f.Since = t
	}
	var hs []view.Held
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		hs, err = view.HeldEmails(tx, f)
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
		detail := h.Detail
		switch {
		case h.Released:
			detail = fmt.Sprintf("released as ticket #%d%s; %s", h.Ticket, byWhom(h.ReleasedBy), detail)
		case h.Dismissed:
			detail = "dismissed" + byWhom(h.DismissedBy)
			if h.DismissNote != "" {
				detail += ": " + h.DismissNote
			}
			detail += "; " + h.Detail
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", h.ID, shortTime(h.Received), terminalSafe(dash(h.From)), h.Reason,
			terminalSafe(h.Subject), terminalSafe(detail))
	}
	return tw.Flush()
}

const ticketAttachmentArgs = "ID N [-o FILE]"

func runTicketAttachment(e *env, args []string) error {
	fs, _ := newFlags(e, "ticket attachment", ticketAttachmentArgs)
	out := fs.String("o", "", "write to this `file` (- for standard output); default: the attachment's own name in the current directory, never over an existing file")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("%w: want a ticket number and an attachment number (ticket show lists them)", errUsage)
	}
	id, err1 := strconv.ParseUint(strings.TrimPrefix(pos[0], "#"), 10, 64)
	n, err2 := strconv.Atoi(pos[1])
	if err1 != nil || err2 != nil || id == 0 || n <= 0 {
		return fmt.Errorf("%w: %q %q: want a ticket number and an attachment number", errUsage, pos[0], pos[1])
	}
	var f parse.Part
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		f, err = view.TicketFile(tx, id, n)
		return err
	}); errors.Is(err, helpdesk.ErrNotFound) {
		return fmt.Errorf("no ticket %d (helpdesk ticket list shows them)", id)
	} else if err != nil {
		return err
	}
	var w io.WriteCloser
	name := *out
	switch name {
	case "-":
		_, err = e.stdout.Write(f.Content)
		return err
	case "":
		name = safeFilename(f.Filename, fmt.Sprintf("bijlage-%d-%d", id, n))
		w, err = e.createFile(name, true)
	default:
		w, err = e.createFile(name, false)
	}
	if err != nil {
		return fmt.Errorf("attachment %d of ticket %d: %w", n, id, err)
	}
	if _, err := w.Write(f.Content); err != nil {
		w.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	fmt.Fprintf(e.stderr, "wrote %s (%s, %s)\n", terminalSafe(name), terminalSafe(f.ContentType), humanSize(int64(len(f.Content))))
	return nil
}

// safeFilename makes an attachment's name (the sender's choice) a plain file name in the
// current directory: no directories, no leading dot, no control characters.
func safeFilename(name, fallback string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, name)
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	if name == "" {
		return fallback
	}
	return name
}

// humanSize shows a byte count the way people read it: 512 bytes, 12.3 kB, 4.5 MB — as the
// notifications name a file's size (in English: the CLI speaks English).
func humanSize(n int64) string { return templates.FormatSize(n, "en") }

func byWhom(user string) string {
	if user == "" {
		return ""
	}
	return " by " + user
}

func runTicketHeldDismiss(e *env, args []string) error {
	fs, _ := newFlags(e, "ticket held dismiss", "ID... [-note TEXT]")
	note := fs.String("note", "", "why: kept with the held email (ticket held -all shows it)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: want the numbers of held emails (see ticket held)", errUsage)
	}
	var ids []uint64
	for _, p := range pos {
		id, err := strconv.ParseUint(p, 10, 64)
		if err != nil || id == 0 {
			return fmt.Errorf("%w: %q is not a held email's number", errUsage, p)
		}
		ids = append(ids, id)
	}
	dk, err := e.commandDesk(args)
	if err != nil {
		return err
	}
	by := e.operator()
	if err := e.db.Update(e.ctx, func(tx *store.Tx) error {
		return dk.Dismiss(tx, ids, parse.CleanLine(*note), by)
	}); err != nil {
		return err
	}
	log, err := e.logger()
	if err != nil {
		return err
	}
	log.Info("held emails dismissed", "held", ids, "by", by, "note", *note)
	fmt.Fprintf(e.stdout, "dismissed %d held email(s); they are kept: helpdesk ticket held -all lists them\n", len(ids))
	return nil
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

func shortTime(t view.Time) string {
	if time.Time(t).IsZero() {
		return "-"
	}
	return time.Time(t).In(helpdesk.Amsterdam()).Format("2006-01-02 15:04")
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
// applied by the desk through the path of a staff email (desk.Desk.OperatorCommand), with a note
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
	dk, err := e.commandDesk(args)
	if err != nil {
		return err
	}
	var change string
	var t *helpdesk.Ticket
	err = e.db.Update(e.ctx, func(tx *store.Tx) (err error) {
		change, err = dk.OperatorCommand(tx, id, cmdLine, e.operator(), "helpdesk "+name, e.now())
		if err != nil {
			return err
		}
		t, err = tx.Ticket(id)
		return err
	})
	switch {
	case errors.Is(err, helpdesk.ErrNotFound):
		return fmt.Errorf("no ticket %d (helpdesk ticket list shows them)", id)
	case errors.Is(err, desk.ErrStaffCommand):
		staff := strings.Join(dk.Policy.Staff(), ", ")
		if staff == "" {
			staff = "none configured"
		}
		return fmt.Errorf("%v; the staff addresses (staff) are: %s", strings.TrimPrefix(err.Error(), desk.ErrStaffCommand.Error()+": "), staff)
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
