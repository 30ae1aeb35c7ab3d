package customers

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
)

// The spreadsheet import of customers (R1–R5, R13, R14, R19).
//
// Seen in practice: a row whose first address was customer 1's second address rewrote
// customer 1 — login address, contract, phone numbers and dates gone — and a re-import
// reported "3 updated". So: a row changes only the customer it names without doubt (its
// number in the id column, else its addresses, which must all be one customer's); an empty
// cell keeps the field; nothing is removed unless a column says so; every change is reported,
// and a dry run reports the same without writing.

// ImportHelp documents the CSV columns (the help text of customer import).
const ImportHelp = `The file is CSV (UTF-8: Excel's "CSV UTF-8", a header row first), its columns separated by ','
or, as Excel writes it with Dutch settings, by ';' (the header row decides). Columns, in any order:
  id             the customer number (as customer list shows it): the row changes that customer
  email          the customer's addresses separated by ';'; for a new customer the first is the login
  name           the customer's name
  sla            SLA24 (default), SLA8 or SLA4
  valid_until    last day of the paid tier, YYYY-MM-DD or DD-MM-YYYY
  free_until     keep the free status SLA24 through this day (R21), however long ago paid support ended
  paid_ended     last day of a paid tier the customer had before SLA24 (R21); recorded by
                 itself when the sla column takes a customer off a paid tier
  contract       support contract: true/false, yes/no, ja/nee, WAAR/ONWAAR (Dutch Excel), 1/0
  licence        L, S, N (InfokasV3), TSPos or other
  philanthropic  free licence with free support (boolean)
  arrears        in arrears (boolean)
  maintainer     vendor (default), third-party or none
  phones         registered numbers separated by ';' (+31…, 0031… or 0…)
  lang           nl (default) or en
  answer         email (default) or site
  contact        the name of the person behind each address of email, separated by ';'
                 in the same order ("Piet de Vries" alone: the first address)
  login          make this address the login (it is added if the customer does not have it)
  remove_email   addresses to remove from the customer, separated by ';'
  remove_phones  numbers to remove from the customer, separated by ';'
The header needs email or id. A row changes the customer its id names or, without an id,
the customer its addresses belong to; a row whose addresses belong to two customers is
rejected. A row that names no customer adds one (email and name required).
An empty cell keeps the customer's value (a new customer gets the default); "-" sets the
default: no end date, not kept free, unknown licence, no numbers, no contact name. Addresses and numbers in a cell are added
to the customer's; only login changes the login and only remove_email and remove_phones remove.
Every change is printed ("customer 1: sla SLA24 -> SLA8"); -dry-run prints the same and
writes nothing. Every row is checked first; rejected lines are reported as "line N: reason".
Without -partial a file with a bad row imports nothing (exit 1); with -partial the good rows
are imported.
`

// clearCell in a cell sets the field's default; an empty cell keeps the field.
const clearCell = "-"

// The import's own columns; the others are the Fields' columns.
const (
	colID           = "id"
	colEmail        = "email"
	colName         = "name"
	colPhones       = "phones"
	colLogin        = "login"
	colRemoveEmail  = "remove_email"
	colRemovePhones = "remove_phones"
	colContact      = "contact"
)

// Row is one row of an import file: its line, why it is rejected (Errs; nil for a good
// row) and, once resolved, the customer it changes (Old; nil when it adds one), the record to
// store (Cust) and the changes ("sla SLA24 -> SLA8").
type Row struct {
	Line  int
	cells map[string]string // column → cell, trimmed
	Errs  []string

	// Parsed cells.
	id           uint64   // 0: no id given
	emails       []string // the email cell, normalised
	login        string   // the login cell, normalised
	removeEmails []string
	phones       []string // the phones cell ("-" or empty: none)
	removePhones []string
	contacts     []string // the contact cell: a name per address of the email cell ("" keeps, "-" removes)

	// Decided in the transaction.
	Old     *helpdesk.Customer // the customer the row changes; nil when it adds one
	Cust    *helpdesk.Customer // the record to store
	Changes []string           // "sla SLA24 -> SLA8"
}

func (r *Row) reject(format string, a ...any) {
	r.Errs = append(r.Errs, fmt.Sprintf(format, a...))
}

// named are the addresses the row names its customer by: the email and login cells.
func (r *Row) named() []string {
	out := slices.Clone(r.emails)
	if r.login != "" && !slices.Contains(out, r.login) {
		out = append(out, r.login)
	}
	return out
}

// Import is a read import file: its columns and its rows, each checked on its own and
// against the others (an address or number on two rows rejects both).
type Import struct {
	Columns []string
	Rows    []*Row
}

// ReadImport reads a CSV file (UTF-8, a byte-order mark allowed, a header row first; see
// ImportHelp) and checks every row. A bad header is an error; a bad row is a Row with Errs.
func ReadImport(f io.Reader) (*Import, error) {
	columns, rows, err := readImport(f)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if r.Errs == nil {
			parseRow(r, columns)
		}
	}
	// Rows against each other: an address or number on two rows is rejected on both.
	crossCheck(rows, "address", (*Row).named)
	crossCheck(rows, "number", func(r *Row) []string { return r.phones })
	return &Import{Columns: columns, Rows: rows}, nil
}

// Summary counts what an import did (or, in a dry run, would do).
type Summary struct{ Created, Updated, Unchanged, Rejected int }

// Apply resolves every good row against the database as tx sees it before the import (the
// customer it changes, or none: it adds one; rows that cannot be resolved without doubt are
// rejected) and stores the rows. With rejected rows and not partial nothing is stored; with
// partial the good rows are. A row that changes nothing writes nothing. now is the creation
// time of new customers. It fails only on a store error: the caller rolls back.
func (im *Import) Apply(tx *store.Tx, partial bool, now time.Time) (Summary, error) {
	if err := resolveRows(tx, im.Rows, im.Columns, now); err != nil {
		return Summary{}, err
	}
	var sum Summary
	for _, r := range im.Rows {
		if r.Errs != nil {
			sum.Rejected++
		}
	}
	if sum.Rejected > 0 && !partial {
		return sum, nil
	}
	for _, r := range im.Rows {
		switch {
		case r.Errs != nil:
			continue
		case r.Old == nil:
			sum.Created++
		case len(r.Changes) == 0:
			sum.Unchanged++
			continue // a re-import of the same row writes nothing
		default:
			sum.Updated++
		}
		if err := tx.PutCustomer(r.Cust); err != nil {
			return sum, fmt.Errorf("line %d: %w", r.Line, err)
		}
	}
	return sum, nil
}

// parseRow checks every cell of a row on its own and keeps the parsed addresses and numbers.
func parseRow(r *Row, columns []string) {
	scratch := New(time.Time{})
	for _, col := range columns {
		cell := r.cells[col]
		if cell == "" {
			continue
		}
		var err error
		switch col {
		case colID:
			r.id, err = parseCustomerID(cell)
		case colEmail:
			if cell == clearCell {
				err = errors.New(`"-": addresses are removed with the remove_email column`)
				break
			}
			r.emails, err = ParseEmails(strings.Split(cell, ";"))
		case colLogin:
			var es []string
			if es, err = ParseEmails([]string{cell}); err == nil {
				r.login = es[0]
			}
		case colRemoveEmail:
			r.removeEmails, err = ParseEmails(strings.Split(cell, ";"))
		case colRemovePhones:
			r.removePhones, err = ParsePhones(strings.Split(cell, ";"))
		case colContact:
			for _, n := range strings.Split(cell, ";") {
				n = strings.TrimSpace(n)
				if n != "" && n != clearCell && policy.CleanName(n) == "" {
					err = fmt.Errorf("%q: want a name of at most 64 characters", n)
				}
				r.contacts = append(r.contacts, n)
			}
		default:
			if cell == clearCell {
				cell = ""
			}
			err = setColumn(scratch, col, cell)
			if col == colPhones {
				r.phones = scratch.Phones
			}
		}
		if err != nil {
			r.reject("%s %v", col, err)
		}
	}
	for _, a := range r.removeEmails {
		switch {
		case a == r.login:
			r.reject("address %s is in remove_email and in login", a)
		case slices.Contains(r.emails, a):
			r.reject("address %s is in remove_email and in email", a)
		}
	}
	for _, p := range r.removePhones {
		if slices.Contains(r.phones, p) {
			r.reject("number %s is in remove_phones and in phones", p)
		}
	}
}

// parseCustomerID reads a customer number as customer list shows it ("12", also "#12").
func parseCustomerID(s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%q: want a customer number", s)
	}
	return id, nil
}

// resolveRows finds the customer each good row changes, against the database as it is before
// the import, and computes the record to store and its changes. Two rows for one customer are
// both rejected: which one is right is not ours to guess.
func resolveRows(tx *store.Tx, rows []*Row, columns []string, now time.Time) error {
	by := map[uint64][]*Row{}
	for _, r := range rows {
		if r.Errs != nil {
			continue
		}
		old, err := rowCustomer(tx, r)
		if err != nil {
			return err
		}
		if r.Errs != nil {
			continue
		}
		for _, p := range r.phones {
			o, err := tx.CustomerByPhone(p)
			switch {
			case err == nil && (old == nil || o.ID != old.ID):
				r.reject("number %s is registered by customer %d (%s)", p, o.ID, o.Name)
			case err != nil && !errors.Is(err, helpdesk.ErrNotFound):
				return err
			}
		}
		if old == nil {
			r.Cust = New(now)
		} else {
			r.Old, r.Cust = old, Clone(old)
			by[old.ID] = append(by[old.ID], r)
		}
		applyRow(r, columns)
		if r.Old != nil {
			NotePaidEnd(r.Old, r.Cust, helpdesk.Today(now))
			r.Changes = Changes(r.Old, r.Cust)
		}
	}
	for id, rs := range by {
		if len(rs) > 1 {
			for _, r := range rs {
				r.reject("customer %d is also changed by line %s", id, otherLines(r, rs))
			}
		}
	}
	return nil
}

// rowCustomer is the customer a row names: by its id, or else by its addresses, all of which
// must belong to that one customer; nil when the row names none (it adds a customer). A row
// that names a customer ambiguously is rejected, naming every customer it points at.
func rowCustomer(tx *store.Tx, r *Row) (*helpdesk.Customer, error) {
	var target *helpdesk.Customer
	if r.id != 0 {
		c, err := tx.Customer(r.id)
		if errors.Is(err, helpdesk.ErrNotFound) {
			r.reject("id %d: no such customer (leave the cell empty to add one)", r.id)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		target = c
	}
	var owners []*helpdesk.Customer
	var owned []string // an address of each owner, in the same order
	for _, a := range r.named() {
		o, err := tx.CustomerByAddress(a)
		if errors.Is(err, helpdesk.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if target != nil {
			if o.ID != target.ID {
				r.reject("address %s belongs to customer %d (%s), not to customer %d", a, o.ID, o.Name, target.ID)
			}
			continue
		}
		if !slices.ContainsFunc(owners, func(c *helpdesk.Customer) bool { return c.ID == o.ID }) {
			owners, owned = append(owners, o), append(owned, a)
		}
	}
	if len(owners) > 1 {
		var names []string
		for i, o := range owners {
			names = append(names, fmt.Sprintf("%s is customer %d (%s)", owned[i], o.ID, o.Name))
		}
		r.reject("the addresses belong to %d customers: %s; a row changes one customer (put its number in an id column)",
			len(owners), strings.Join(names, ", "))
		return nil, nil
	}
	if target == nil && len(owners) == 1 {
		target = owners[0]
	}
	return target, nil
}

// applyRow sets the row's cells on r.Cust: an empty cell keeps the field, "-" sets its
// default; addresses and numbers are added; login and the remove columns are the only way to
// change the login or remove anything.
func applyRow(r *Row, columns []string) {
	c, isNew := r.Cust, r.Old == nil
	for _, col := range columns {
		cell := r.cells[col]
		switch col {
		case colID, colEmail, colLogin, colRemoveEmail, colRemovePhones, colContact:
			continue
		case colPhones:
			switch cell {
			case "":
			case clearCell:
				c.Phones = nil
			default:
				for _, p := range r.phones {
					if !slices.Contains(c.Phones, p) {
						c.Phones = append(c.Phones, p)
					}
				}
			}
			continue
		}
		if cell == "" {
			continue // keeps the value, or the default of a new customer
		}
		if cell == clearCell {
			cell = ""
		}
		_ = setColumn(c, col, cell) // checked by parseRow, but for name "-"
	}
	if c.Name == "" {
		r.reject("name is required")
	}

	if r.login != "" && r.login != c.Login() {
		c.Emails = append([]string{r.login}, slices.DeleteFunc(c.Emails, func(a string) bool { return a == r.login })...)
	}
	for _, a := range r.emails {
		if !slices.Contains(c.Emails, a) {
			c.Emails = append(c.Emails, a)
		}
	}
	for _, a := range r.removeEmails {
		if isNew {
			break
		}
		if a == c.Login() {
			r.reject("remove_email %s is the login address: name another address in the login column to remove it", a)
			continue
		}
		c.Emails = slices.DeleteFunc(c.Emails, func(e string) bool { return e == a })
	}
	for _, p := range r.removePhones {
		c.Phones = slices.DeleteFunc(c.Phones, func(q string) bool { return q == p })
	}
	if len(c.Emails) == 0 {
		r.reject("email is required")
		return
	}
	// The n-th contact name is the n-th address's of the email cell; a row without addresses
	// names the login's.
	addrs := r.emails
	if len(addrs) == 0 {
		addrs = []string{c.Login()}
	}
	if len(r.contacts) > len(addrs) {
		r.reject("contact has %d names for %d addresses: give them in the order of the email cell, separated by ';'", len(r.contacts), len(addrs))
		return
	}
	for i, n := range r.contacts {
		switch n {
		case "":
		case clearCell:
			c.SetContactName(addrs[i], "")
		default:
			c.SetContactName(addrs[i], policy.CleanName(n))
		}
	}
}

// setColumn sets a customer field from a CSV cell; list cells are ';'-separated.
func setColumn(c *helpdesk.Customer, column, cell string) error {
	for _, f := range Fields() {
		if f.Column != column {
			continue
		}
		vals := []string{cell}
		if f.List {
			vals = strings.Split(cell, ";")
		}
		return f.Set(c, vals)
	}
	return fmt.Errorf("unknown column %q", column)
}

// crossCheck rejects every row that shares a value (an address, a number) with another row.
func crossCheck(rows []*Row, what string, values func(*Row) []string) {
	by := map[string][]*Row{}
	var order []string
	for _, r := range rows {
		if r.cells == nil {
			continue
		}
		for _, v := range values(r) {
			if by[v] == nil {
				order = append(order, v)
			}
			by[v] = append(by[v], r)
		}
	}
	for _, v := range order {
		if rs := by[v]; len(rs) > 1 {
			for _, r := range rs {
				r.reject("%s %s is also on line %s", what, v, otherLines(r, rs))
			}
		}
	}
}

func otherLines(r *Row, rs []*Row) string {
	var ls []string
	for _, o := range rs {
		if o != r {
			ls = append(ls, strconv.Itoa(o.Line))
		}
	}
	return strings.Join(ls, ", ")
}

// importColumn is the canonical name of a header cell ("Valid-Until" → "valid_until").
func importColumn(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = strings.NewReplacer("-", "_", " ", "_").Replace(h)
	switch h {
	case "emails", "e_mail", "address", "addresses":
		return colEmail
	case "phone":
		return colPhones
	case "license":
		return "licence"
	case "customer", "customer_id", "klantnummer":
		return colID
	case "remove_emails", "remove_address", "remove_addresses":
		return colRemoveEmail
	case "remove_phone":
		return colRemovePhones
	case "contacts", "contact_name", "contactpersoon":
		return colContact
	}
	return h
}

// importOnlyColumns are the columns of customer import that are not customer fields.
var importOnlyColumns = []string{colID, colContact, colLogin, colRemoveEmail, colRemovePhones}

// importSeparator is the column separator of the file: ';' when the header row separates its
// columns by ';' and has no ',' — what Excel writes as "CSV" where the decimal separator is a
// comma (Dutch settings) — else ','. Column names hold neither, so the header decides; lists
// within a cell stay ';'-separated, in quotes as Excel writes a cell that holds the separator.
func importSeparator(br *bufio.Reader) rune {
	head, _ := br.Peek(br.Size())
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	semicolons, commas, quoted := 0, 0, false
	for _, c := range head {
		switch {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == ';':
			semicolons++
		case c == ',':
			commas++
		}
	}
	if semicolons > 0 && commas == 0 {
		return ';'
	}
	return ','
}

// readImport reads the header and the rows. A bad header is an error; a bad row is a row
// with errors.
func readImport(f io.Reader) (columns []string, rows []*Row, err error) {
	br := bufio.NewReader(f)
	if b, _ := br.Peek(3); string(b) == "\uFEFF" {
		br.Discard(3) // the byte-order mark spreadsheets write
	}
	cr := csv.NewReader(br)
	cr.Comma = importSeparator(br)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil, errors.New("line 1: empty file; want a header row")
	}
	if err != nil {
		return nil, nil, err
	}
	var known []string
	for _, f := range Fields() {
		known = append(known, f.Column)
	}
	known = append(known, importOnlyColumns...)
	for _, h := range header {
		col := importColumn(h)
		switch {
		case !slices.Contains(known, col):
			return nil, nil, fmt.Errorf("line 1: unknown column %q (the columns are %s)", h, strings.Join(known, ", "))
		case slices.Contains(columns, col):
			return nil, nil, fmt.Errorf("line 1: column %q appears twice", col)
		}
		columns = append(columns, col)
	}
	if !slices.Contains(columns, colEmail) && !slices.Contains(columns, colID) {
		return nil, nil, fmt.Errorf(`line 1: the required column "email" is missing (or "id", to name customers by number)`)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return columns, rows, nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			rows = append(rows, &Row{Line: pe.StartLine, Errs: []string{pe.Err.Error()}})
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		line, _ := cr.FieldPos(0)
		r := &Row{Line: line, cells: map[string]string{}}
		if len(rec) != len(columns) {
			hint := ""
			if cr.Comma == ';' && len(rec) > len(columns) {
				hint = `; a cell with several addresses or numbers separated by ';' needs double quotes ("a@x.nl;b@x.nl")`
			}
			r.reject("%d fields, want %d (the header's)%s", len(rec), len(columns), hint)
		} else if !utf8.ValidString(strings.Join(rec, "")) {
			// Excel's plain "CSV" is Windows-1252: "Café" would be stored as "Caf\xe9".
			r.reject(`not UTF-8 text (Excel's plain "CSV" is Windows-1252): save the file as "CSV UTF-8"`)
		} else {
			for i, col := range columns {
				r.cells[col] = strings.TrimSpace(rec[i])
			}
		}
		rows = append(rows, r)
	}
}
