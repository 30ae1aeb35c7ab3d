package customers_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk/customers"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/store/storetest"
)

var now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// set applies one field by its column name, as an import cell would.
func set(t *testing.T, c *helpdesk.Customer, column string, vals ...string) error {
	t.Helper()
	for _, f := range customers.Fields() {
		if f.Column == column {
			return f.Set(c, vals)
		}
	}
	t.Fatalf("no field with column %q", column)
	return nil
}

// The fields read what staff type in a flag or a spreadsheet cell, and refuse the rest naming
// what is allowed (R1–R5, R13, R14, R19).
func TestFields(t *testing.T) {
	c := customers.New(now)
	for _, tc := range []struct {
		column string
		vals   []string
		check  func() bool
	}{
		{"email", []string{"Info@Bakkerij.nl", "info@bakkerij.nl", " piet@bakkerij.nl "}, func() bool {
			return slices.Equal(c.Emails, []string{"info@bakkerij.nl", "piet@bakkerij.nl"})
		}},
		{"sla", []string{"sla8"}, func() bool { return c.Tier == helpdesk.SLA8 }},
		{"valid_until", []string{"31-01-2027"}, func() bool { return c.ValidUntil == helpdesk.Date{Year: 2027, Month: 1, Day: 31} }},
		{"valid_until", []string{"2027-02-28"}, func() bool { return c.ValidUntil == helpdesk.Date{Year: 2027, Month: 2, Day: 28} }},
		{"contract", []string{"ja"}, func() bool { return c.Contract }},
		{"licence", []string{"InfokasV3 S"}, func() bool { return c.Licence == helpdesk.LicenceInfokasS }},
		{"licence", []string{"TS Pos"}, func() bool { return c.Licence == helpdesk.LicenceTSPos }},
		{"maintainer", []string{"Third-Party"}, func() bool { return c.Maintainer == helpdesk.MaintainerThirdParty }},
		{"phones", []string{"06 1234 5678", "+31612345678"}, func() bool { return slices.Equal(c.Phones, []string{"+31612345678"}) }},
		{"answer", []string{""}, func() bool { return c.Answer == helpdesk.AnswerEmail }},
	} {
		if err := set(t, c, tc.column, tc.vals...); err != nil || !tc.check() {
			t.Errorf("%s %q: %v; customer %+v", tc.column, tc.vals, err, c)
		}
	}
	for _, tc := range []struct{ column, val, says string }{
		{"email", "", "is required"},
		{"email", "not an address", "is not an email address"},
		{"sla", "SLA2", "want SLA24, SLA8 or SLA4"},
		{"valid_until", "morgen", "want a date"},
		{"contract", "misschien", "want true or false"},
		{"licence", "Gold", "want L, S or N"},
		{"lang", "de", "want nl or en"},
	} {
		if err := set(t, c, tc.column, tc.val); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s %q: %v, want an error saying %q", tc.column, tc.val, err, tc.says)
		}
	}
	old := customers.Clone(c)
	c.Tier, c.Phones = helpdesk.SLA4, nil
	if got := customers.Changes(old, c); !slices.Equal(got, []string{"sla SLA8 -> SLA4", "phones +31612345678 -> -"}) {
		t.Errorf("Changes = %q", got)
	}
}

// A file's header is checked before any row: a bad header is an error naming the line.
func TestReadImportHeader(t *testing.T) {
	for _, tc := range []struct{ file, says string }{
		{"", "empty file"},
		{"email,name,colour\n", `unknown column "colour"`},
		{"email,Email\n", `column "email" appears twice`},
		{"name,sla\n", `the required column "email" is missing`},
	} {
		if _, err := customers.ReadImport(strings.NewReader(tc.file)); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ReadImport(%q) = %v, want an error saying %q", tc.file, err, tc.says)
		}
	}
	im, err := customers.ReadImport(strings.NewReader("\uFEFFE-mail,Name,Valid-Until,Klantnummer\n"))
	if err != nil || !slices.Equal(im.Columns, []string{"email", "name", "valid_until", "id"}) {
		t.Errorf("spelled columns: %v, %v", im, err)
	}
	// Excel with Dutch settings separates columns by ';': the header row decides.
	im, err = customers.ReadImport(strings.NewReader("\uFEFFemail;name;phones\r\n\"a@x.nl;b@x.nl\";A, B;06 12345678\r\n"))
	if err != nil || !slices.Equal(im.Columns, []string{"email", "name", "phones"}) || len(im.Rows) != 1 || im.Rows[0].Errs != nil {
		t.Errorf("semicolon file: %v, %v", im, err)
	}
}

func apply(t *testing.T, db *store.DB, file string, partial bool) (*customers.Import, customers.Summary) {
	t.Helper()
	im, err := customers.ReadImport(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var sum customers.Summary
	if err := db.Update(context.Background(), func(tx *store.Tx) (err error) {
		sum, err = im.Apply(tx, partial, now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return im, sum
}

func rowErrors(im *customers.Import) map[int]string {
	out := map[int]string{}
	for _, r := range im.Rows {
		if r.Errs != nil {
			out[r.Line] = strings.Join(r.Errs, "; ")
		}
	}
	return out
}

// An import changes only the customer a row names without doubt, keeps what an empty cell
// does not say, and rejects rows that contradict each other or the database — all of them,
// before anything is written, unless partial.
func TestImportApply(t *testing.T) {
	db := storetest.New(t)
	_, sum := apply(t, db, "email,name,sla,phones\n"+
		"info@bakkerij.nl;piet@bakkerij.nl,Bakkerij,SLA8,0612345678\n"+
		"kassa@slagerij.nl,Slagerij,,\n", false)
	if sum != (customers.Summary{Created: 2}) {
		t.Fatalf("first import: %+v", sum)
	}

	// The same file again changes nothing; a row with only some cells keeps the rest.
	if _, sum := apply(t, db, "email,name,sla,phones\ninfo@bakkerij.nl;piet@bakkerij.nl,Bakkerij,SLA8,0612345678\n", false); sum != (customers.Summary{Unchanged: 1}) {
		t.Errorf("re-import: %+v", sum)
	}
	im, sum := apply(t, db, "email,contract\npiet@bakkerij.nl,yes\n", false)
	if sum != (customers.Summary{Updated: 1}) || !slices.Equal(im.Rows[0].Changes, []string{"contract no -> yes"}) {
		t.Errorf("partial row: %+v %q", sum, im.Rows[0].Changes)
	}

	// Rows that cannot be applied without doubt: nothing is written.
	im, sum = apply(t, db, "email,name,phones\n"+
		"piet@bakkerij.nl;kassa@slagerij.nl,Samen,\n"+ // two customers' addresses
		"nieuw@example.nl,Nieuw,+31612345678\n"+ // customer 1's number
		"dubbel@example.nl,Een,\n"+
		"dubbel@example.nl,Twee,\n"+ // the same address on two rows
		"goed@example.nl,Goed,\n", false)
	errs := rowErrors(im)
	for line, want := range map[int]string{
		2: "the addresses belong to 2 customers: piet@bakkerij.nl is customer 1 (Bakkerij), kassa@slagerij.nl is customer 2 (Slagerij)",
		3: "number +31612345678 is registered by customer 1 (Bakkerij)",
		4: "address dubbel@example.nl is also on line 5",
		5: "address dubbel@example.nl is also on line 4",
	} {
		if !strings.Contains(errs[line], want) {
			t.Errorf("line %d: %q, want %q", line, errs[line], want)
		}
	}
	if len(errs) != 4 || sum != (customers.Summary{Rejected: 4}) {
		t.Errorf("rejected %v, summary %+v; want lines 2–5 rejected and nothing written", errs, sum)
	}
	var n int
	db.View(context.Background(), func(tx *store.Tx) error {
		cs, err := tx.Customers()
		n = len(cs)
		return err
	})
	if n != 2 {
		t.Errorf("%d customers after a rejected import, want 2", n)
	}
	// With partial, the good row goes in.
	if _, sum := apply(t, db, "email,name\ndubbel@example.nl,Een\ndubbel@example.nl,Twee\ngoed@example.nl,Goed\n", true); sum != (customers.Summary{Created: 1, Rejected: 2}) {
		t.Errorf("partial: %+v", sum)
	}
}
