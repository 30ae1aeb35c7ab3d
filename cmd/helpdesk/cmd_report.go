package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk/view"
	"github.com/infobits/helpdesk/rules/report"
	"github.com/infobits/helpdesk/store"
)

// `helpdesk report`: reports for staff, each chosen by a flag of its own — -month (the
// default) and -fair-use (R21); a report of another kind is one more flag and one more case.

const reportArgs = "[-month YYYY-MM | -fair-use [-at YYYY-MM-DD]] [-json]"

func runReport(e *env, args []string) error {
	fs, _ := newFlags(e, "report", reportArgs)
	month := fs.String("month", "", "the `month` (YYYY-MM, Amsterdam; default this month)")
	fairUse := fs.Bool("fair-use", false, "instead of a month: a line per free (SLA24) customer, lapsed ones (R21) included: tickets, replies and held emails in the last 12 months, first and last contact, when paid support ended, when the free status lapses")
	atS := fs.String("at", "", "-fair-use: the `day` the 12 months end, YYYY-MM-DD (default: today in Europe/Amsterdam)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	switch {
	case *fairUse && *month != "":
		return fmt.Errorf("%w: -month and -fair-use are two reports: give one", errUsage)
	case *fairUse:
		at, err := moment(e, *atS)
		if err != nil {
			return err
		}
		return reportFairUse(e, at, *asJSON)
	case *atS != "":
		return fmt.Errorf("%w: -at goes with -fair-use; a month report takes -month", errUsage)
	}
	return reportMonth(e, args, *month, *asJSON)
}

// reportMonth prints a month of the helpdesk beside the vendor's promise (R6): per tier the
// tickets opened, first responses, the share within the deadline, the median and 90th
// percentile first-response working time, the breaches with their tickets; the SLA24 limit
// holds, the lapsed customers' held questions (R21) and the callbacks by payment.
func reportMonth(e *env, args []string, month string, asJSON bool) error {
	now := e.now()
	m := report.Month{Year: now.In(helpdesk.Amsterdam()).Year(), Month: now.In(helpdesk.Amsterdam()).Month()}
	if month != "" {
		var err error
		if m, err = report.ParseMonth(month); err != nil {
			return fmt.Errorf("%w: -month: %v", errUsage, err)
		}
	}
	cfg, err := e.config(args)
	if err != nil {
		return err
	}
	dk, err := newDesk(cfg, e.now)
	if err != nil {
		return err
	}
	var r report.Report
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		r, err = dk.MonthReport(tx, m, now)
		return err
	}); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.stdout, r)
	}
	w := e.stdout
	fmt.Fprintf(w, "Helpdesk report %s (made %s)\n\n", r.Month, r.Made.In(helpdesk.Amsterdam()).Format("2006-01-02 15:04"))
	fmt.Fprintln(w, "The promise: a first response within the tier's working hours (R6), counted on the")
	fmt.Fprintln(w, "customer's calendar (R8, R9); urgent tickets go first (R12).")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLA\tPROMISE\tOPENED\tURGENT\tANSWERED\tIN TIME\tSHARE\tMEDIAN\tP90\tBREACHES")
	row := func(t report.TierReport, promise string) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\n", t.Tier, promise, t.Opened, t.Urgent, t.FirstResponses,
			t.WithinDeadline, percent(t.Share, t.Opened), workHours(t.MedianHours, t.FirstResponses), workHours(t.P90Hours, t.FirstResponses), len(t.Breaches))
	}
	for _, t := range r.Tiers {
		row(t, fmt.Sprintf("%d h", t.PromiseHours))
	}
	row(r.Total, "")
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nTimes are working hours of the ticket's calendar; SHARE is answered in time of opened.")
	if len(r.Total.Breaches) > 0 {
		fmt.Fprintln(w, "\nBreaches:")
		for _, t := range r.Tiers {
			for _, b := range t.Breaches {
				when := "not answered yet"
				if !b.Answered.IsZero() {
					when = "answered " + b.Answered.In(helpdesk.Amsterdam()).Format("2006-01-02 15:04")
				}
				fmt.Fprintf(w, "  %s #%d %s (%s): due %s, %s, %.2f working hours late\n", t.Tier, b.TicketID, terminalSafe(b.Subject),
					terminalSafe(b.Customer), b.Due.In(helpdesk.Amsterdam()).Format("2006-01-02 15:04"), when, b.LateHours)
			}
		}
	}
	fmt.Fprintf(w, "\nSLA24 limit holds (R11): %d held, %d of them released by staff\n", r.Holds.Held, r.Holds.Released)
	fmt.Fprintf(w, "SLA24 lapsed (R21): %d question(s) held, %d of them released by staff\n", r.Lapsed.Held, r.Lapsed.Released)
	fmt.Fprintf(w, "Callbacks (R13): %d prepaid, %d postpaid, %d without charge\n", r.Callbck.Prepaid, r.Callbck.Postpaid, r.Callbck.None)
	return nil
}

func percent(share float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", share*100)
}

func workHours(h float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f h", h)
}

// reportFairUse prints the fair-use report (R21) as of the moment at.
func reportFairUse(e *env, at time.Time, asJSON bool) error {
	lapse, err := e.lapseMonths()
	if err != nil {
		return err
	}
	var lines []view.FairUse
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		lines, err = view.FairUseReport(tx, at, lapse)
		return err
	}); err != nil {
		return fmt.Errorf("fair-use report: %w", err)
	}
	if asJSON {
		return writeJSON(e.stdout, lines)
	}
	fmt.Fprintf(e.stdout, "fair use of the free status (R21) on %s: the last 12 months, the most active first\n", at.In(helpdesk.Amsterdam()).Format(time.DateOnly))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSERVED AS\tTICKETS\tREPLIES\tHELD\tFIRST CONTACT\tLAST CONTACT\tPAID ENDED\tLAPSES ON\tKEPT FREE UNTIL")
	for _, l := range lines {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", l.Customer, terminalSafe(l.Name), servedAs(l.EffectiveSLA),
			l.Tickets, l.Replies, l.Held, dayOf(l.FirstContact), dayOf(l.LastContact), dash(l.PaidEnded), dash(l.LapsesOn), dash(l.FreeUntil))
	}
	return tw.Flush()
}

// dayOf is the Amsterdam day of a moment, or "-".
func dayOf(t view.Time) string {
	if time.Time(t).IsZero() {
		return "-"
	}
	return time.Time(t).In(helpdesk.Amsterdam()).Format(time.DateOnly)
}
