package main

import (
	"errors"
	"flag"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk/customers"
	"github.com/infobits/helpdesk/desk/view"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
)

// The customer commands (R1–R5, R13, R14, R19). A customer field is set the same way by a flag
// of `customer add`/`customer set` and by a column of `customer import`: desk/customers.Fields.

// Usage strings of the commands (also in the command table).
const (
	customerFieldArgs = "[-sla SLA24|SLA8|SLA4] [-valid-until YYYY-MM-DD] [-free-until YYYY-MM-DD] [-paid-ended YYYY-MM-DD] [-contract[=false]] " +
		"[-licence L|S|N|TSPos|other] [-philanthropic[=false]] [-arrears[=false]] " +
		"[-maintainer vendor|third-party|none] [-phone NUMBER]... [-lang nl|en] [-answer email|site]"
	customerAddArgs      = "-email ADDR[,ADDR...] -name NAME [-contact NAME] " + customerFieldArgs
	customerSetArgs      = "ADDR [-email ADDR[,ADDR...]] [-add-email ADDR[,ADDR...]] [-name NAME] [-contact NAME] " + customerFieldArgs
	customerShowArgs     = "ADDR [-json] [-at YYYY-MM-DD]"
	customerStatusArgs   = "ADDR [-at YYYY-MM-DD]"
	customerListArgs     = "[-json] [-at YYYY-MM-DD]"
	customerImportArgs   = "FILE [-partial] [-dry-run]"
	customerUnbounceArgs = "ADDR"
	callerArgs           = "NUMBER [-json] [-at YYYY-MM-DD]"
)

// fieldValue is the flag.Value of a customer field: it keeps the text given, so that the
// same parser serves flags and CSV cells.
type fieldValue struct {
	vals   []string
	list   bool
	isBool bool
}

func (v *fieldValue) String() string {
	if v == nil {
		return ""
	}
	return strings.Join(v.vals, ",")
}

func (v *fieldValue) Set(s string) error {
	if !v.list {
		v.vals = []string{s}
		return nil
	}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			v.vals = append(v.vals, p)
		}
	}
	return nil
}

func (v *fieldValue) IsBoolFlag() bool { return v.isBool }

// customerFlags registers the customer fields as flags of fs.
func customerFlags(fs *flag.FlagSet, set bool) map[string]*fieldValue {
	vals := map[string]*fieldValue{}
	for _, f := range customers.Fields() {
		v := &fieldValue{list: f.List, isBool: f.IsBool}
		usage := f.Usage
		if set && f.List {
			usage += "; REPLACES the list (-" + f.Flag + ` "" clears it)`
		}
		fs.Var(v, f.Flag, usage)
		vals[f.Flag] = v
	}
	return vals
}

// applyFlags sets the fields whose flags were given, in table order.
func applyFlags(c *helpdesk.Customer, fs *flag.FlagSet, vals map[string]*fieldValue) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, f := range customers.Fields() {
		if !given[f.Flag] {
			continue
		}
		if err := f.Set(c, vals[f.Flag].vals); err != nil {
			return fmt.Errorf("%w: -%s %v", errUsage, f.Flag, err)
		}
	}
	return nil
}

// findCustomer returns the customer with the address, with an error for people.
func findCustomer(tx *store.Tx, addr string) (*helpdesk.Customer, error) {
	c, err := tx.CustomerByAddress(addr)
	if errors.Is(err, helpdesk.ErrNotFound) {
		return nil, fmt.Errorf("no customer has the address %s", addr)
	}
	return c, err
}

// oneAddress is the single positional argument of show, set and status.
func oneAddress(pos []string) (string, error) {
	if len(pos) != 1 {
		return "", fmt.Errorf("%w: want one address of the customer", errUsage)
	}
	return pos[0], nil
}

// contactFlag is the -contact flag of customer add and set: the name of the person behind an
// address, to greet them by.
func contactFlag(fs *flag.FlagSet, which string) *string {
	return fs.String("contact", "", "`name` of the person behind "+which+", to greet them by in mail (\"\" removes it)")
}

// contactName checks a -contact value.
func contactName(s string) (string, error) {
	n := policy.CleanName(s)
	if n == "" && strings.TrimSpace(s) != "" {
		return "", fmt.Errorf("%w: -contact %q: want a name of at most 64 characters", errUsage, s)
	}
	return n, nil
}

// putError explains a refused PutCustomer.
func putError(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrAddressTaken) || errors.Is(err, store.ErrPhoneTaken) {
		return fmt.Errorf("cannot %s customer: %w", what, err)
	}
	return fmt.Errorf("%s customer: %w", what, err)
}

func runCustomerAdd(e *env, args []string) error {
	fs, _ := newFlags(e, "customer add", customerAddArgs)
	vals := customerFlags(fs, false)
	contact := contactFlag(fs, "the first -email address")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	if len(vals["email"].vals) == 0 || strings.TrimSpace(strings.Join(vals["name"].vals, "")) == "" {
		return fmt.Errorf("%w: -email and -name are required", errUsage)
	}
	c := customers.New(e.now())
	if err := applyFlags(c, fs, vals); err != nil {
		return err
	}
	name, err := contactName(*contact)
	if err != nil {
		return err
	}
	c.SetContactName(c.Login(), name)
	if err := e.db.Update(e.ctx, func(tx *store.Tx) error { return putError("add", tx.PutCustomer(c)) }); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "customer %d added: %s <%s> %s\n", c.ID, terminalSafe(c.Name), terminalSafe(c.Login()), c.Tier)
	return nil
}

// runCustomerSet changes the fields whose flags are given, and prints each change.
func runCustomerSet(e *env, args []string) error {
	fs, _ := newFlags(e, "customer set", customerSetArgs)
	vals := customerFlags(fs, true)
	contact := contactFlag(fs, "ADDR")
	addEmail := &fieldValue{list: true}
	fs.Var(addEmail, "add-email", "add this `address` to the customer's, keeping the others and the login; repeat or comma-separate for more")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	addr, err := oneAddress(pos)
	if err != nil {
		return err
	}
	n := 0
	setContact := false
	fs.Visit(func(f *flag.Flag) {
		if _, ok := vals[f.Name]; ok || f.Name == "add-email" {
			n++
		}
		setContact = setContact || f.Name == "contact"
	})
	if setContact {
		n++
	}
	if n == 0 {
		return fmt.Errorf("%w: nothing to change: give one or more of the flags", errUsage)
	}
	// Parse before the transaction: a bad value is a usage error, whoever the customer is.
	if err := applyFlags(customers.New(time.Time{}), fs, vals); err != nil {
		return err
	}
	if _, err := customers.ParseEmails(addEmail.vals); err != nil {
		return fmt.Errorf("%w: -add-email %v", errUsage, err)
	}
	name, err := contactName(*contact)
	if err != nil {
		return err
	}
	var old, c *helpdesk.Customer
	err = e.db.Update(e.ctx, func(tx *store.Tx) error {
		var err error
		if old, err = findCustomer(tx, addr); err != nil {
			return err
		}
		c = customers.Clone(old)
		if err := applyFlags(c, fs, vals); err != nil {
			return err
		}
		if len(addEmail.vals) > 0 {
			es, err := customers.ParseEmails(append(slices.Clone(c.Emails), addEmail.vals...))
			if err != nil {
				return fmt.Errorf("%w: -add-email %v", errUsage, err)
			}
			c.Emails = es
		}
		customers.NotePaidEnd(old, c, helpdesk.Today(e.now()))
		if setContact {
			c.SetContactName(addr, name)
		}
		if reflect.DeepEqual(customers.Rows(old), customers.Rows(c)) {
			return nil
		}
		return putError("change", tx.PutCustomer(c))
	})
	if err != nil {
		return err
	}
	before, after := customers.Rows(old), customers.Rows(c)
	changed := false
	for i := range before {
		if before[i][1] != after[i][1] {
			if !changed {
				fmt.Fprintf(e.stdout, "customer %d (%s) changed:\n", c.ID, terminalSafe(c.Name))
				changed = true
			}
			fmt.Fprintf(e.stdout, "  %s: %s -> %s\n", before[i][0], terminalSafe(before[i][1]), terminalSafe(after[i][1]))
		}
	}
	if !changed {
		fmt.Fprintf(e.stdout, "customer %d (%s): nothing changed\n", c.ID, terminalSafe(c.Name))
	}
	return nil
}

// lapseMonths is the lapse period of R21 (sla24_lapse_after) the customer views judge by.
func (e *env) lapseMonths() (int, error) {
	cfg, err := e.config(nil)
	if err != nil {
		return 0, err
	}
	return cfg.SLA24LapseAfter, nil
}

// atFlag is the -at flag of show, status and caller: the date to judge validity on (R3).
func atFlag(fs *flag.FlagSet) *string {
	return fs.String("at", "", "judge on this `day`, YYYY-MM-DD (default: today in Europe/Amsterdam)")
}

// moment is the day of -at (noon in Amsterdam), or now.
func moment(e *env, at string) (time.Time, error) {
	if at == "" {
		return e.now(), nil
	}
	d, err := customers.ParseDay(at)
	if err != nil || d.IsZero() {
		return time.Time{}, fmt.Errorf("%w: -at %q: want a date YYYY-MM-DD", errUsage, at)
	}
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, helpdesk.Amsterdam()), nil
}

func runCustomerShow(e *env, args []string) error {
	fs, _ := newFlags(e, "customer show", customerShowArgs)
	asJSON := fs.Bool("json", false, "print JSON")
	atS := atFlag(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	addr, err := oneAddress(pos)
	if err != nil {
		return err
	}
	at, err := moment(e, *atS)
	if err != nil {
		return err
	}
	var c *helpdesk.Customer
	var pending *helpdesk.LoginChange
	var bounced []string
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		if c, err = findCustomer(tx, addr); err != nil {
			return err
		}
		pending, err = tx.PendingLoginChange(c.ID)
		if errors.Is(err, helpdesk.ErrNotFound) {
			pending, err = nil, nil
		}
		if err != nil {
			return err
		}
		bounced, err = bouncedLines(tx, c.Emails, e.now())
		return err
	}); err != nil {
		return err
	}
	lapse, err := e.lapseMonths()
	if err != nil {
		return err
	}
	d := view.CustomerDetailOf(c, pending, at, lapse)
	if *asJSON {
		return writeJSON(e.stdout, d)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "customer\t%d\n", c.ID)
	for _, r := range customers.Rows(c) {
		if r[0] == "emails" {
			r[1] += " (the first is the login)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", r[0], terminalSafe(r[1]))
	}
	fmt.Fprintf(tw, "served as\t%s on %s\n", servedAs(d.EffectiveSLA), d.On)
	fmt.Fprintf(tw, "status\t%s\n", d.Status)
	if fs := d.FreeStatus(); fs != "" {
		fmt.Fprintf(tw, "free status\t%s\n", fs)
	}
	if pending != nil {
		fmt.Fprintf(tw, "login change\t%d to %s: %s\n", pending.ID, terminalSafe(pending.NewEmail), terminalSafe(loginState(pending)))
	}
	for _, l := range bounced {
		fmt.Fprintf(tw, "bounced\t%s\n", l)
	}
	return tw.Flush()
}

// bouncedLines says, for each address whose automatic mail is suspended after a hard bounce
// (bounce_suppress), until when, and which failed notification `outbox retry` can send again
// to lift it — an acknowledgement that never came is otherwise explained only in the log.
func bouncedLines(tx *store.Tx, emails []string, now time.Time) ([]string, error) {
	var out []string
	var outbox []*helpdesk.Notification
	for _, a := range emails {
		until, err := tx.BouncedUntil(a)
		if err != nil {
			return nil, err
		}
		if !until.After(now) {
			continue
		}
		if outbox == nil {
			if outbox, err = tx.Outbox(); err != nil {
				return nil, err
			}
		}
		line := fmt.Sprintf("%s: no automatic mail (acknowledgements, notices, password links) until %s", terminalSafe(a), until.In(helpdesk.Amsterdam()).Format("2006-01-02 15:04"))
		var retry uint64
		for _, n := range outbox {
			if n.Status == helpdesk.NotifyFailed && helpdesk.NormalizeAddress(n.To) == a && strings.HasPrefix(n.LastError, "bounced:") && n.ID > retry {
				retry = n.ID
			}
		}
		if retry != 0 {
			line += fmt.Sprintf(", after a notification to it bounced; once the mailbox works: helpdesk outbox retry %d (sends it again), or helpdesk customer unbounce %s", retry, terminalSafe(a))
		} else {
			line += fmt.Sprintf(", after a notification to it bounced; once the mailbox works: helpdesk customer unbounce %s (an email from it ends it too)", terminalSafe(a))
		}
		out = append(out, line)
	}
	return out, nil
}

// runCustomerUnbounce ends the suspension of automatic mail to an address after a notification
// to it bounced for good (bounce_suppress): the operator knows the mailbox works again (the
// customer phoned, the typo was fixed) and there is no failed notification left to retry.
// Password and login links go to it again too.
func runCustomerUnbounce(e *env, args []string) error {
	fs, _ := newFlags(e, "customer unbounce", customerUnbounceArgs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	addr, err := oneAddress(pos)
	if err != nil {
		return err
	}
	a := helpdesk.NormalizeAddress(addr)
	var until time.Time
	var known bool
	if err := e.db.Update(e.ctx, func(tx *store.Tx) (err error) {
		if _, err := tx.CustomerByAddress(a); err == nil {
			known = true
		} else if !errors.Is(err, helpdesk.ErrNotFound) {
			return err
		}
		if until, err = tx.BouncedUntil(a); err != nil {
			return err
		}
		if !until.After(e.now()) {
			return nil
		}
		return tx.ClearBounced(a)
	}); err != nil {
		return err
	}
	if !until.After(e.now()) {
		if !known {
			return fmt.Errorf("no customer has the address %s, and automatic mail to it is not suspended", terminalSafe(addr))
		}
		fmt.Fprintf(e.stdout, "automatic mail to %s is not suspended: nothing to do\n", terminalSafe(a))
		return nil
	}
	if e.log != nil {
		e.log.Info("automatic mail no longer suspended", "address", a, "reason", "the operator ended it (customer unbounce)", "user", e.operator())
	}
	fmt.Fprintf(e.stdout, "automatic mail to %s is no longer suspended (it had bounced; it was suspended until %s)\n",
		terminalSafe(a), until.In(helpdesk.Amsterdam()).Format("2006-01-02 15:04"))
	return nil
}

// runCustomerStatus prints the Dutch status line of R3 and nothing else.
func runCustomerStatus(e *env, args []string) error {
	fs, _ := newFlags(e, "customer status", customerStatusArgs)
	atS := atFlag(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	addr, err := oneAddress(pos)
	if err != nil {
		return err
	}
	at, err := moment(e, *atS)
	if err != nil {
		return err
	}
	var c *helpdesk.Customer
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		c, err = findCustomer(tx, addr)
		return err
	}); err != nil {
		return err
	}
	lapse, err := e.lapseMonths()
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, view.StatusOf(c, at, lapse).Status)
	return nil
}

func runCustomerList(e *env, args []string) error {
	fs, _ := newFlags(e, "customer list", customerListArgs)
	asJSON := fs.Bool("json", false, "print JSON")
	atS := atFlag(fs)
	if err := noPositional(fs, args); err != nil {
		return err
	}
	at, err := moment(e, *atS)
	if err != nil {
		return err
	}
	lapse, err := e.lapseMonths()
	if err != nil {
		return err
	}
	var cs []view.CustomerRow
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		cs, err = view.Customers(tx, at, lapse)
		return err
	}); err != nil {
		return fmt.Errorf("list customers: %w", err)
	}
	if *asJSON {
		return writeJSON(e.stdout, cs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSLA\tVALID UNTIL\tSTATUS\tSERVED AS\tCONTRACT\tEMAILS")
	for _, c := range cs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, terminalSafe(c.Name), c.SLA, dash(c.ValidUntil),
			c.Status, servedAs(c.EffectiveSLA), yesNo(c.Contract), terminalSafe(strings.Join(c.Emails, ", ")))
	}
	return tw.Flush()
}

// servedAs is the tier served as the tables show it: "none (lapsed)" for a lapsed free status
// (R21).
func servedAs(tier string) string {
	if tier == string(helpdesk.TierNone) {
		return "none (SLA24 lapsed)"
	}
	return tier
}

// --- caller lookup (R19) ---

func runCaller(e *env, args []string) error {
	fs, _ := newFlags(e, "caller", callerArgs)
	asJSON := fs.Bool("json", false, "print JSON")
	atS := atFlag(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: want the caller's phone number", errUsage)
	}
	number, err := policy.NormalizePhone(strings.Join(pos, " ")) // "06 1234 5678" unquoted too
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	at, err := moment(e, *atS)
	if err != nil {
		return err
	}
	var a view.Caller
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		a, err = view.CallerOf(tx, number, at)
		return err
	}); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, a)
	}
	if !a.Known {
		fmt.Fprintf(e.stdout, "unknown number %s: not put through\n", a.Number)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s: customer %d, %s <%s>\n", a.Number, a.Customer.ID, terminalSafe(a.Customer.Name), terminalSafe(a.Customer.Emails[0]))
	fmt.Fprintf(e.stdout, "put through: %s (%s)\n", yesNo(a.PutThrough), a.Reason)
	return nil
}
