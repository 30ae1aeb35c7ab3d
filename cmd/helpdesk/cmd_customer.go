package main

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/mail"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk/view"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
)

// The customer commands (R1–R5, R13, R14, R19). A customer field is set the same way by a flag
// of `customer add`/`customer set` and by a column of `customer import`: customerFields below.

// Usage strings of the commands (also in the command table).
const (
	customerFieldArgs = "[-sla SLA24|SLA8|SLA4] [-valid-until YYYY-MM-DD] [-contract[=false]] " +
		"[-licence L|S|N|TSPos|other] [-philanthropic[=false]] [-arrears[=false]] " +
		"[-maintainer vendor|third-party|none] [-phone NUMBER]... [-lang nl|en] [-answer email|site]"
	customerAddArgs    = "-email ADDR[,ADDR...] -name NAME [-contact NAME] " + customerFieldArgs
	customerSetArgs    = "ADDR [-email ADDR[,ADDR...]] [-name NAME] [-contact NAME] " + customerFieldArgs
	customerShowArgs   = "ADDR [-json] [-at YYYY-MM-DD]"
	customerStatusArgs = "ADDR [-at YYYY-MM-DD]"
	customerImportArgs = "FILE [-partial] [-dry-run]"
	callerArgs         = "NUMBER [-json] [-at YYYY-MM-DD]"
)

// customerField is one settable field of a customer record.
type customerField struct {
	flag   string // name of the flag of customer add/set
	column string // name of the column of customer import
	list   bool   // several values: comma-separated or repeated flag, ';'-separated cell
	isBool bool
	usage  string
	// set parses the value(s) and stores them in c. An empty value sets the default. The error
	// names the bad value and what is allowed; the caller prefixes the flag or column name.
	set func(c *helpdesk.Customer, vals []string) error
}

var customerFields = []customerField{
	{flag: "email", column: "email", list: true,
		usage: "an `address` of the customer; repeat or comma-separate for more; the first is the login (R1)",
		set: func(c *helpdesk.Customer, vals []string) error {
			es, err := parseEmails(vals)
			if err == nil && len(es) == 0 {
				err = errRequired
			}
			if err != nil {
				return err
			}
			c.Emails = es
			return nil
		}},
	{flag: "name", column: "name", usage: "customer `name`",
		set: func(c *helpdesk.Customer, vals []string) error {
			n := oneLine(first(vals))
			if n == "" {
				return errRequired
			}
			c.Name = n
			return nil
		}},
	{flag: "sla", column: "sla", usage: "service `level`: SLA24 (free, the default), SLA8 (paid) or SLA4 (maintenance contract) (R2)",
		set: func(c *helpdesk.Customer, vals []string) error {
			v := first(vals)
			if v == "" {
				c.Tier = helpdesk.SLA24
				return nil
			}
			t, err := helpdesk.ParseTier(v)
			if err != nil {
				return fmt.Errorf("%q: want SLA24, SLA8 or SLA4", v)
			}
			c.Tier = t
			return nil
		}},
	{flag: "valid-until", column: "valid_until", usage: "last `day` of the paid tier, YYYY-MM-DD (or DD-MM-YYYY); empty: no end date (R3)",
		set: func(c *helpdesk.Customer, vals []string) (err error) {
			c.ValidUntil, err = parseDay(first(vals))
			return err
		}},
	{flag: "contract", column: "contract", isBool: true, usage: "the customer has a support contract (R8, R19)",
		set: func(c *helpdesk.Customer, vals []string) (err error) {
			c.Contract, err = parseBool(first(vals))
			return err
		}},
	{flag: "licence", column: "licence", usage: "licence `type`: L, S or N (InfokasV3 L/S/N), TSPos or other; empty: unknown (R2)",
		set: func(c *helpdesk.Customer, vals []string) (err error) {
			c.Licence, err = parseLicence(first(vals))
			return err
		}},
	{flag: "philanthropic", column: "philanthropic", isBool: true, usage: "a philanthropic institution with a free licence and free support (R4)",
		set: func(c *helpdesk.Customer, vals []string) (err error) {
			c.Philanthropic, err = parseBool(first(vals))
			return err
		}},
	{flag: "arrears", column: "arrears", isBool: true, usage: "payment status: in arrears; callbacks are prepaid only (R5, R13)",
		set: func(c *helpdesk.Customer, vals []string) (err error) {
			c.Arrears, err = parseBool(first(vals))
			return err
		}},
	{flag: "maintainer", column: "maintainer", usage: "who maintains the system: vendor (the default), third-party or none (R13)",
		set: func(c *helpdesk.Customer, vals []string) (err error) {
			c.Maintainer, err = parseChoice(first(vals), helpdesk.MaintainerVendor, helpdesk.MaintainerThirdParty, helpdesk.MaintainerNone)
			return err
		}},
	{flag: "phone", column: "phones", list: true, usage: "a registered phone `number` (+31…, 0031… or 0…); repeat or comma-separate for more (R19)",
		set: func(c *helpdesk.Customer, vals []string) (err error) {
			c.Phones, err = parsePhones(vals)
			return err
		}},
	{flag: "lang", column: "lang", usage: "`language` of the customer's mail: nl (the default) or en",
		set: func(c *helpdesk.Customer, vals []string) (err error) {
			c.Lang, err = parseChoice(first(vals), "nl", "en")
			return err
		}},
	{flag: "answer", column: "answer", usage: "how answers reach the customer: email (the default) or site (a notification that the answer waits on the site) (R14)",
		set: func(c *helpdesk.Customer, vals []string) (err error) {
			c.Answer, err = parseChoice(first(vals), helpdesk.AnswerEmail, helpdesk.AnswerSite)
			return err
		}},
}

// errRequired: a required field (email, name) is empty; shown after the flag or column name.
var errRequired = errors.New("is required")

// newCustomer is a customer with every field at its default.
func newCustomer(now time.Time) *helpdesk.Customer {
	return &helpdesk.Customer{Tier: helpdesk.SLA24, Maintainer: helpdesk.MaintainerVendor, Lang: "nl",
		Answer: helpdesk.AnswerEmail, Created: now}
}

func first(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	return strings.TrimSpace(vals[0])
}

func parseEmails(vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		a, err := mail.ParseAddress(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not an email address", v)
		}
		if n := helpdesk.NormalizeAddress(a.Address); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func parsePhones(vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		if strings.TrimSpace(v) == "" {
			continue
		}
		n, err := policy.NormalizePhone(v)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// parseDay reads a calendar date as YYYY-MM-DD or, as Dutch spreadsheets write it, DD-MM-YYYY;
// empty is the zero Date.
func parseDay(s string) (helpdesk.Date, error) {
	s = strings.TrimSpace(s)
	if d, err := helpdesk.ParseDate(s); err == nil {
		return d, nil
	}
	if t, err := time.Parse("02-01-2006", s); err == nil {
		return helpdesk.DateOf(t), nil
	}
	return helpdesk.Date{}, fmt.Errorf("%q: want a date YYYY-MM-DD", s)
}

// parseBool reads yes/no in the forms spreadsheets and people write; empty is false.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "false", "f", "no", "n", "nee", "0":
		return false, nil
	case "true", "t", "yes", "y", "ja", "j", "1":
		return true, nil
	}
	return false, fmt.Errorf("%q: want true or false (yes/no, ja/nee, 1/0)", s)
}

// parseChoice accepts one of the allowed values in any case; empty is the first (the default).
func parseChoice(s string, allowed ...string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "" {
		return allowed[0], nil
	}
	if slices.Contains(allowed, v) {
		return v, nil
	}
	return "", fmt.Errorf("%q: want %s", s, orList(allowed))
}

func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// parseLicence reads a licence type (R2) as staff write it: "L", "InfokasV3 L", "infokas-l",
// "TS Pos", "tspos", "other"; empty is unknown.
func parseLicence(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	k := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '_' || r == '.' {
			return -1
		}
		return r
	}, strings.ToLower(s))
	if rest, ok := strings.CutPrefix(k, "infokasv3"); ok {
		k = "infokas" + rest
	}
	switch k {
	case "l", "infokasl":
		return helpdesk.LicenceInfokasL, nil
	case "s", "infokass":
		return helpdesk.LicenceInfokasS, nil
	case "n", "infokasn":
		return helpdesk.LicenceInfokasN, nil
	case "tspos":
		return helpdesk.LicenceTSPos, nil
	case "other", "overig", "anders":
		return helpdesk.LicenceOther, nil
	}
	return "", fmt.Errorf("%q: want L, S or N (InfokasV3), TSPos or other", s)
}

// licenceName is how a licence type is shown to people.
func licenceName(l string) string {
	switch l {
	case helpdesk.LicenceInfokasL:
		return "InfokasV3 L"
	case helpdesk.LicenceInfokasS:
		return "InfokasV3 S"
	case helpdesk.LicenceInfokasN:
		return "InfokasV3 N"
	case helpdesk.LicenceTSPos:
		return "TS Pos"
	case "":
		return "-"
	}
	return l
}

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
	for _, f := range customerFields {
		v := &fieldValue{list: f.list, isBool: f.isBool}
		usage := f.usage
		if set && f.list {
			usage += "; REPLACES the list (-" + f.flag + ` "" clears it)`
		}
		fs.Var(v, f.flag, usage)
		vals[f.flag] = v
	}
	return vals
}

// applyFlags sets the fields whose flags were given, in table order.
func applyFlags(c *helpdesk.Customer, fs *flag.FlagSet, vals map[string]*fieldValue) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, f := range customerFields {
		if !given[f.flag] {
			continue
		}
		if err := f.set(c, vals[f.flag].vals); err != nil {
			return fmt.Errorf("%w: -%s %v", errUsage, f.flag, err)
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

// customerRows are a customer's fields as label and text, in the order shown and diffed.
func customerRows(c *helpdesk.Customer) [][2]string {
	return [][2]string{
		{"emails", strings.Join(c.Emails, ", ")},
		{"name", c.Name},
		{"sla", string(c.Tier)},
		{"valid_until", dash(c.ValidUntil.String())},
		{"contract", yesNo(c.Contract)},
		{"licence", licenceName(c.Licence)},
		{"philanthropic", yesNo(c.Philanthropic)},
		{"arrears", yesNo(c.Arrears)},
		{"maintainer", c.MaintainedBy()},
		{"phones", dash(strings.Join(c.Phones, ", "))},
		{"lang", c.Language()},
		{"answer", c.AnswerBy()},
		{"contacts", dash(contactList(c))},
	}
}

// contactList is the customer's contact names as "Piet de Vries <piet@…>", in address order.
func contactList(c *helpdesk.Customer) string {
	var out []string
	for _, a := range c.Emails {
		if n := c.ContactName(a); n != "" {
			out = append(out, n+" <"+a+">")
		}
	}
	return strings.Join(out, ", ")
}

// contactFlag is the -contact flag of customer add and set: the name of the person behind an
// address, to greet them by (issue 11).
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

func cloneCustomer(c *helpdesk.Customer) *helpdesk.Customer {
	n := *c
	n.Emails = slices.Clone(c.Emails)
	n.Phones = slices.Clone(c.Phones)
	n.Contacts = maps.Clone(c.Contacts)
	return &n
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
	if len(vals["email"].vals) == 0 || strings.TrimSpace(first(vals["name"].vals)) == "" {
		return fmt.Errorf("%w: -email and -name are required", errUsage)
	}
	c := newCustomer(e.now())
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
		if _, ok := vals[f.Name]; ok {
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
	if err := applyFlags(newCustomer(time.Time{}), fs, vals); err != nil {
		return err
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
		c = cloneCustomer(old)
		if err := applyFlags(c, fs, vals); err != nil {
			return err
		}
		if setContact {
			c.SetContactName(addr, name)
		}
		if reflect.DeepEqual(customerRows(old), customerRows(c)) {
			return nil
		}
		return putError("change", tx.PutCustomer(c))
	})
	if err != nil {
		return err
	}
	before, after := customerRows(old), customerRows(c)
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

// atFlag is the -at flag of show, status and caller: the date to judge validity on (R3).
func atFlag(fs *flag.FlagSet) *string {
	return fs.String("at", "", "judge on this `day`, YYYY-MM-DD (default: today in Europe/Amsterdam)")
}

// moment is the day of -at (noon in Amsterdam), or now.
func moment(e *env, at string) (time.Time, error) {
	if at == "" {
		return e.now(), nil
	}
	d, err := parseDay(at)
	if err != nil || d.IsZero() {
		return time.Time{}, fmt.Errorf("%w: -at %q: want a date YYYY-MM-DD", errUsage, at)
	}
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, amsterdam()), nil
}

// customerDetail is `customer show -json`: the record, and how it is served on the day.
type customerDetail struct {
	view.Customer
	On           string `json:"on"`            // the day judged, YYYY-MM-DD
	EffectiveSLA string `json:"effective_sla"` // the tier served on that day (R3)
	Status       string `json:"status"`        // the Dutch status line of R3
	// PendingLogin is the login change not settled yet (R17), if any.
	PendingLogin *view.LoginChange `json:"pending_login,omitempty"`
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
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		if c, err = findCustomer(tx, addr); err != nil {
			return err
		}
		pending, err = tx.PendingLoginChange(c.ID)
		if errors.Is(err, helpdesk.ErrNotFound) {
			pending, err = nil, nil
		}
		return err
	}); err != nil {
		return err
	}
	on := policy.Today(at)
	d := customerDetail{Customer: view.CustomerOf(c), On: on.String(),
		EffectiveSLA: string(policy.EffectiveTier(c, at)), Status: policy.StatusLine(c, on)}
	if pending != nil {
		v := view.LoginChangeOf(pending)
		d.PendingLogin = &v
	}
	if *asJSON {
		return writeJSON(e.stdout, d)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "customer\t%d\n", c.ID)
	for _, r := range customerRows(c) {
		if r[0] == "emails" {
			r[1] += " (the first is the login)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", r[0], terminalSafe(r[1]))
	}
	fmt.Fprintf(tw, "served as\t%s on %s\n", d.EffectiveSLA, d.On)
	fmt.Fprintf(tw, "status\t%s\n", d.Status)
	if pending != nil {
		fmt.Fprintf(tw, "login change\t%d to %s: %s\n", pending.ID, terminalSafe(pending.NewEmail), terminalSafe(loginState(pending)))
	}
	return tw.Flush()
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
	fmt.Fprintln(e.stdout, policy.StatusLine(c, policy.Today(at)))
	return nil
}

func runCustomerList(e *env, args []string) error {
	fs, _ := newFlags(e, "customer list", "[-json]")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	var cs []view.Customer
	var recs []*helpdesk.Customer
	if err := e.db.View(e.ctx, func(tx *store.Tx) (err error) {
		if cs, err = view.Customers(tx); err != nil {
			return err
		}
		recs, err = tx.Customers()
		return err
	}); err != nil {
		return fmt.Errorf("list customers: %w", err)
	}
	if *asJSON {
		return writeJSON(e.stdout, cs)
	}
	today := policy.Today(e.now())
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSLA\tVALID UNTIL\tSTATUS\tCONTRACT\tEMAILS")
	for i, c := range cs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, terminalSafe(c.Name), c.SLA, dash(c.ValidUntil),
			policy.StatusLine(recs[i], today), yesNo(c.Contract), terminalSafe(strings.Join(c.Emails, ", ")))
	}
	return tw.Flush()
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
