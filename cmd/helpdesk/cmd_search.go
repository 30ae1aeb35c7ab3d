package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk/search"
	"github.com/infobits/helpdesk/store"
)

const ticketSearchArgs = "WORDS... [-json] [-status open|answered|closed] [-customer ADDR] [-since DATE] [-limit N]"

// searchIndex is the running gateway's index, or — without a gateway — the index beside the
// command's database, opened for the command (and closed by the returned func).
func (e *env) searchIndex() (*search.Index, func(), error) {
	if e.search != nil {
		return e.search, func() {}, nil
	}
	if e.remote {
		return nil, nil, errors.New("the gateway has no search index (see its log); helpdesk search reindex rebuilds it")
	}
	log, err := e.logger()
	if err != nil {
		return nil, nil, err
	}
	x, err := search.Open(search.Path(e.db.Path()), e.db, log)
	if err != nil {
		return nil, nil, err
	}
	return x, func() { x.Close() }, nil
}

// runTicketSearch finds tickets by words, Dutch and English forms alike, best first, each with
// the line that matched.
func runTicketSearch(e *env, args []string) error {
	fs, _ := newFlags(e, "ticket search", ticketSearchArgs)
	asJSON := fs.Bool("json", false, "print JSON")
	status := fs.String("status", "", "only tickets with this `status`: open, answered or closed")
	customer := fs.String("customer", "", "only the tickets of the customer with this `address`")
	since := fs.String("since", "", "only tickets that arrived on or after this `date` (YYYY-MM-DD, Amsterdam)")
	limit := fs.Int("limit", 20, "list at most `N` tickets")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	q := search.Query{Text: strings.Join(pos, " "), Status: *status, Limit: *limit}
	if strings.TrimSpace(q.Text) == "" {
		return fmt.Errorf("%w: want the words to search for", errUsage)
	}
	if q.Status != "" && !search.ValidStatus(q.Status) {
		return fmt.Errorf("%w: -status %q: want %s", errUsage, q.Status, strings.Join(search.Statuses(), ", "))
	}
	if *limit < 1 {
		return fmt.Errorf("%w: -limit must be at least 1", errUsage)
	}
	if *since != "" {
		d, err := helpdesk.ParseDate(*since)
		if err != nil {
			return fmt.Errorf("%w: -since: %v", errUsage, err)
		}
		q.Since = d.Midnight()
	}
	if *customer != "" {
		if err := e.db.View(e.ctx, func(tx *store.Tx) error {
			c, err := tx.CustomerByAddress(*customer)
			if errors.Is(err, helpdesk.ErrNotFound) {
				return fmt.Errorf("no customer has the address %s", *customer)
			}
			if err == nil {
				q.CustomerID = c.ID
			}
			return err
		}); err != nil {
			return err
		}
	}
	x, done, err := e.searchIndex()
	if err != nil {
		return err
	}
	defer done()
	found, total, err := x.Find(e.ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, append([]search.Found{}, found...))
	}
	if len(found) == 0 {
		fmt.Fprintln(e.stdout, "no ticket matches")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSLA\tCUSTOMER\tCREATED\tSUBJECT")
	for _, f := range found {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", f.ID, f.Status, f.SLA, terminalSafe(f.Customer), shortTime(f.Created), terminalSafe(f.Subject))
		if f.Line != "" {
			fmt.Fprintf(tw, "\t\t\t\t\t  %s\n", terminalSafe(f.Line))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if total > len(found) {
		fmt.Fprintf(e.stdout, "%d of %d matching tickets shown (-limit)\n", len(found), total)
	}
	return nil
}

// runSearchReindex rebuilds the search index from the database.
func runSearchReindex(e *env, args []string) error {
	fs, _ := newFlags(e, "search reindex", "")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	x, done, err := e.searchIndex()
	if err != nil {
		return err
	}
	defer done()
	n, err := x.Rebuild(e.ctx)
	if err != nil {
		return err
	}
	size, _ := x.Size()
	dbSize, _ := e.db.Size()
	fmt.Fprintf(e.stdout, "indexed %d tickets into %s (%s; the database is %s)\n", n, search.Path(e.db.Path()),
		humanSize(size), humanSize(dbSize))
	return nil
}
