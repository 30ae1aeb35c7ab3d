package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/report"
	"github.com/infobits/helpdesk/store"
)

const reportArgs = "-month YYYY-MM [-json]"

// runReport prints a month of the helpdesk beside the vendor's promise (R6): per tier the
// tickets opened, first responses, the share within the deadline, the median and 90th
// percentile first-response working time, the breaches with their tickets; the SLA24 limit
// holds and the callbacks by payment.
func runReport(e *env, args []string) error {
	fs, _ := newFlags(e, "report", reportArgs)
	month := fs.String("month", "", "the `month` (YYYY-MM, Amsterdam; default this month)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	now := e.now()
	m := report.Month{Year: now.In(helpdesk.Amsterdam()).Year(), Month: now.In(helpdesk.Amsterdam()).Month()}
	if *month != "" {
		var err error
		if m, err = report.ParseMonth(*month); err != nil {
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
	if *asJSON {
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
