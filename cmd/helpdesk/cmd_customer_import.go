package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/infobits/helpdesk/desk/customers"
	"github.com/infobits/helpdesk/store"
)

// `customer import`: customers from a spreadsheet (R1–R5, R13, R14, R19). What a row may
// change, and the checks of rows against each other and the database, are
// desk/customers.Import's; this is the command: the file, the transaction, the report.

// errDryRun rolls back the import transaction of -dry-run, after every row was applied in it.
var errDryRun = errors.New("dry run")

func runCustomerImport(e *env, args []string) error {
	fs, _ := newFlags(e, "customer import", customerImportArgs)
	partial := fs.Bool("partial", false, "import the good rows of a file that has bad ones")
	dryRun := fs.Bool("dry-run", false, "check the file and print every change, but write nothing")
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "usage: helpdesk customer import %s\n", customerImportArgs)
		fs.PrintDefaults()
		fmt.Fprint(e.stdout, "\n"+customers.ImportHelp)
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want one CSV file", errUsage)
	}
	path := e.path(pos[0])
	f, err := os.Open(path)
	if err != nil {
		return e.gatewayFileError(err)
	}
	defer f.Close()
	im, err := customers.ReadImport(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}

	var sum customers.Summary
	err = e.db.Update(e.ctx, func(tx *store.Tx) error {
		var err error
		if sum, err = im.Apply(tx, *partial, e.now()); err != nil {
			return err
		}
		if *dryRun {
			return errDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return fmt.Errorf("%s: nothing imported: %w", path, err)
	}
	failed := sum.Rejected > 0 && !*partial
	if !failed {
		for _, r := range im.Rows {
			switch {
			case r.Errs != nil:
			case r.Old == nil:
				fmt.Fprintf(e.stdout, "customer %d created: %s <%s> %s\n", r.Cust.ID, terminalSafe(r.Cust.Name), terminalSafe(r.Cust.Login()), r.Cust.Tier)
			default:
				for _, c := range r.Changes {
					fmt.Fprintf(e.stdout, "customer %d: %s\n", r.Cust.ID, terminalSafe(c))
				}
			}
		}
	}
	for _, r := range im.Rows {
		if r.Errs != nil {
			fmt.Fprintf(e.stderr, "line %d: %s\n", r.Line, terminalSafe(strings.Join(r.Errs, "; ")))
		}
	}
	if failed {
		fmt.Fprintf(e.stderr, "helpdesk customer import: %s: nothing imported: %d of %d rows rejected; fix them, or import the good rows with -partial\n",
			path, sum.Rejected, len(im.Rows))
		sum.Created, sum.Updated, sum.Unchanged = 0, 0, 0
	}
	fmt.Fprintf(e.stdout, "imported: %d created, %d updated, %d unchanged, %d rejected\n", sum.Created, sum.Updated, sum.Unchanged, sum.Rejected)
	if *dryRun {
		fmt.Fprintln(e.stdout, "-dry-run: nothing was written")
	}
	if failed {
		return &exitError{code: 1}
	}
	return nil
}
