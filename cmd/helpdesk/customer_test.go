package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The customer record (R1–R5, R13, R14, R19) and the caller lookup (R19), through the binary.

// showCustomer is `customer show ADDR -json` (and -at when given).
func showCustomer(t *testing.T, env []string, addr string, at ...string) map[string]any {
	t.Helper()
	args := []string{"customer", "show", addr, "-json"}
	if len(at) > 0 {
		args = append(args, "-at", at[0])
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, args...)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func listCustomers(t *testing.T, env []string) []map[string]any {
	t.Helper()
	var cs []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "customer", "list", "-json")), &cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestCustomerAddShowSet(t *testing.T) {
	env := newPeers(t).env()
	// Every field of the record (R1 addresses, R2 tier and licence, R3 validity, R4, R5, R13
	// maintainer, R14 answer, R19 phones), in the forms staff type them.
	out := mustRun(t, env, "customer", "add", "-email", "Info@BakkerijDeVries.nl,piet@bakkerijdevries.nl", "-email", "kassa@bakkerijdevries.nl",
		"-name", "Bakkerij de Vries", "-sla", "sla8", "-valid-until", "2027-12-31", "-contract", "-licence", "InfokasV3 L",
		"-philanthropic", "-arrears", "-maintainer", "Third-Party", "-phone", "06-1234 5678", "-phone", "+31 20 123 4567",
		"-lang", "en", "-answer", "site")
	if !strings.Contains(out, "customer 1 added: Bakkerij de Vries <info@bakkerijdevries.nl> SLA8") {
		t.Errorf("add: %q", out)
	}
	got := showCustomer(t, env, "PIET@bakkerijdevries.nl", "2027-06-01") // any address, any case (R1)
	want := map[string]any{"id": 1.0, "name": "Bakkerij de Vries",
		"emails": []any{"info@bakkerijdevries.nl", "piet@bakkerijdevries.nl", "kassa@bakkerijdevries.nl"}, // the first is the login (R1)
		"sla":    "SLA8", "valid_until": "2027-12-31", "contract": true, "licence": "infokas-l", "philanthropic": true,
		"arrears": true, "maintainer": "third-party", "phones": []any{"+31612345678", "+31201234567"}, "lang": "en", "answer": "site",
		"contacts": map[string]any{}, "on": "2027-06-01", "effective_sla": "SLA8", "status": "geldig tot 31-12-2027",
		"free_until": "", "paid_ended": "", "lapses_on": ""} // philanthropic: the free status never lapses (R4, R21)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("show -json =\n%v\nwant\n%v", got, want)
	}
	if cs := listCustomers(t, env); len(cs) != 1 || !reflect.DeepEqual(slices.Sorted(maps.Keys(cs[0])),
		[]string{"answer", "arrears", "contacts", "contract", "effective_sla", "emails", "free_until", "id", "lang", "licence", "maintainer", "name",
			"paid_ended", "philanthropic", "phones", "sla", "status", "valid_until"}) {
		t.Errorf("list -json = %v", cs)
	}
	text := mustRun(t, env, "customer", "show", "info@bakkerijdevries.nl", "-at", "2028-01-01")
	for _, w := range []string{"InfokasV3 L", "third-party", "+31612345678, +31201234567", "SLA24 on 2028-01-01", "verlopen op 31-12-2027"} {
		if !strings.Contains(text, w) {
			t.Errorf("show lacks %q:\n%s", w, text)
		}
	}

	// The defaults of a customer added with only the required flags.
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")
	s := showCustomer(t, env, "kassa@slagerijjansen.nl")
	for k, w := range map[string]any{"sla": "SLA24", "valid_until": "", "contract": false, "licence": "", "philanthropic": false,
		"arrears": false, "maintainer": "vendor", "phones": []any{}, "lang": "nl", "answer": "email", "status": "geldig"} {
		if !reflect.DeepEqual(s[k], w) {
			t.Errorf("default %s = %#v, want %#v", k, s[k], w)
		}
	}

	// set changes only the flags given and says what changed.
	before := showCustomer(t, env, "info@bakkerijdevries.nl", "2027-06-01")
	out = mustRun(t, env, "customer", "set", "kassa@bakkerijdevries.nl", "-sla", "SLA4", "-arrears=false", "-lang", "nl")
	for _, w := range []string{"sla: SLA8 -> SLA4", "arrears: yes -> no", "lang: en -> nl"} {
		if !strings.Contains(out, w) {
			t.Errorf("set output lacks %q:\n%s", w, out)
		}
	}
	if n := strings.Count(out, "->"); n != 3 {
		t.Errorf("set reported %d changes, want 3:\n%s", n, out)
	}
	after := showCustomer(t, env, "info@bakkerijdevries.nl", "2027-06-01")
	for k := range before {
		changed := map[string]any{"sla": "SLA4", "arrears": false, "lang": "nl", "effective_sla": "SLA4"}
		w, ok := changed[k]
		if !ok {
			w = before[k]
		}
		if !reflect.DeepEqual(after[k], w) {
			t.Errorf("after set: %s = %#v, want %#v", k, after[k], w)
		}
	}
	if out := mustRun(t, env, "customer", "set", "info@bakkerijdevries.nl", "-sla", "SLA4"); !strings.Contains(out, "nothing changed") {
		t.Errorf("set to the same value: %q", out)
	}

	// -email and -phone replace the lists; -phone "" and -valid-until "" clear.
	out = mustRun(t, env, "customer", "set", "piet@bakkerijdevries.nl", "-email", "piet@bakkerijdevries.nl", "-email", "info@bakkerijdevries.nl",
		"-phone", "", "-valid-until", "")
	if !strings.Contains(out, "emails: info@bakkerijdevries.nl, piet@bakkerijdevries.nl, kassa@bakkerijdevries.nl -> piet@bakkerijdevries.nl, info@bakkerijdevries.nl") ||
		!strings.Contains(out, "phones: +31612345678, +31201234567 -> -") || !strings.Contains(out, "valid_until: 2027-12-31 -> -") {
		t.Errorf("set -email -phone -valid-until:\n%s", out)
	}
	c := showCustomer(t, env, "info@bakkerijdevries.nl")
	if !reflect.DeepEqual(c["emails"], []any{"piet@bakkerijdevries.nl", "info@bakkerijdevries.nl"}) || !reflect.DeepEqual(c["phones"], []any{}) ||
		c["valid_until"] != "" || c["status"] != "geldig" {
		t.Errorf("after replacing lists: %v", c)
	}
	if r := runBin(t, env, "customer", "show", "kassa@bakkerijdevries.nl"); r.code != 1 || !strings.Contains(r.stderr, "no customer has the address kassa@bakkerijdevries.nl") {
		t.Errorf("removed address still known: exit %d, %q", r.code, r.stderr)
	}
	if r := runBin(t, env, "caller", "0612345678"); r.code != 0 || !strings.Contains(r.stdout, "unknown number +31612345678") {
		t.Errorf("removed number still known: %q", r.stdout)
	}

	// An address or number of another customer is refused (R1, R19).
	mustRun(t, env, "customer", "set", "kassa@slagerijjansen.nl", "-phone", "0201234567")
	if r := runBin(t, env, "customer", "set", "info@bakkerijdevries.nl", "-email", "info@bakkerijdevries.nl,kassa@slagerijjansen.nl"); r.code != 1 || !strings.Contains(r.stderr, "belongs to another customer") {
		t.Errorf("taken address: exit %d, %q", r.code, r.stderr)
	}
	if r := runBin(t, env, "customer", "add", "-email", "nieuw@example.nl", "-name", "Nieuw", "-phone", "+31 20 1234567"); r.code != 1 || !strings.Contains(r.stderr, "registered by another customer") {
		t.Errorf("taken number: exit %d, %q", r.code, r.stderr)
	}
	if r := runBin(t, env, "customer", "set", "nobody@example.nl", "-sla", "SLA8"); r.code != 1 || !strings.Contains(r.stderr, "no customer has the address nobody@example.nl") {
		t.Errorf("set unknown: exit %d, %q", r.code, r.stderr)
	}
	if cs := listCustomers(t, env); len(cs) != 2 {
		t.Errorf("customers = %d, want 2", len(cs))
	}
}

// Bad values are usage errors (exit 2) that name the flag and what it allows.
func TestCustomerFlagErrors(t *testing.T) {
	env := newPeers(t).env()
	mustRun(t, env, "customer", "add", "-email", "a@example.nl", "-name", "A")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-sla", "GOLD"}, []string{"-sla", "SLA24, SLA8 or SLA4"}},
		{[]string{"-valid-until", "31-02-2027"}, []string{"-valid-until", "YYYY-MM-DD"}},
		{[]string{"-licence", "Platinum"}, []string{"-licence", "L, S or N (InfokasV3), TSPos or other"}},
		{[]string{"-maintainer", "neighbour"}, []string{"-maintainer", "vendor, third-party or none"}},
		{[]string{"-lang", "de"}, []string{"-lang", "nl or en"}},
		{[]string{"-answer", "fax"}, []string{"-answer", "email or site"}},
		{[]string{"-phone", "12345"}, []string{"-phone", "not a phone number", "+31…, 0031… or 0…"}},
		{[]string{"-email", "geen adres"}, []string{"-email", "not an email address"}},
		{[]string{"-contract=misschien"}, []string{"-contract"}},
		{[]string{"-name", " "}, []string{"-name is required"}},
		{nil, []string{"nothing to change"}},
	} {
		r := runBin(t, env, append([]string{"customer", "set", "a@example.nl"}, tc.args...)...)
		if r.code != 2 {
			t.Errorf("set %v: exit %d, want 2; %q", tc.args, r.code, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("set %v: stderr %q lacks %q", tc.args, r.stderr, w)
			}
		}
	}
	if r := runBin(t, env, "customer", "add", "-email", "b@example.nl", "-name", "B", "-licence", "Gold"); r.code != 2 || !strings.Contains(r.stderr, "-licence") {
		t.Errorf("add -licence Gold: exit %d, %q", r.code, r.stderr)
	}
	if r := runBin(t, env, "customer", "add", "-name", "B"); r.code != 2 || !strings.Contains(r.stderr, "-email and -name are required") {
		t.Errorf("add without -email: exit %d, %q", r.code, r.stderr)
	}
	// Every accepted spelling of a licence (R2) is stored as its constant.
	for in, want := range map[string]string{"L": "infokas-l", "s": "infokas-s", "InfokasV3 N": "infokas-n", "infokas-l": "infokas-l",
		"TSPos": "tspos", "TS Pos": "tspos", "tspos": "tspos", "Other": "other", "": ""} {
		mustRun(t, env, "customer", "set", "a@example.nl", "-licence", in)
		if got := showCustomer(t, env, "a@example.nl")["licence"]; got != want {
			t.Errorf("-licence %q stored as %v, want %q", in, got, want)
		}
	}
}

// R3: the status line, exactly, on the day asked; the last valid day is still valid.
func TestCustomerStatus(t *testing.T) {
	env := newPeers(t).env()
	mustRun(t, env, "customer", "add", "-email", "a@example.nl", "-name", "A", "-sla", "SLA8", "-valid-until", "2027-01-31")
	mustRun(t, env, "customer", "add", "-email", "b@example.nl", "-name", "B", "-sla", "SLA8")
	for _, tc := range []struct{ addr, at, want string }{
		{"b@example.nl", "2030-01-01", "geldig"},
		{"a@example.nl", "2026-11-30", "geldig tot 31-01-2027"},
		{"a@example.nl", "2027-01-31", "geldig tot 31-01-2027"},
		{"a@example.nl", "2027-02-01", "verlopen op 31-01-2027"},
	} {
		if got := mustRun(t, env, "customer", "status", tc.addr, "-at", tc.at); got != tc.want+"\n" {
			t.Errorf("status %s -at %s = %q, want %q", tc.addr, tc.at, got, tc.want+"\n")
		}
	}
	// Without -at: today in Amsterdam.
	if got := mustRun(t, env, "customer", "status", "b@example.nl"); got != "geldig\n" {
		t.Errorf("status today = %q", got)
	}
	// An expired paid tier is served as SLA24 (R3).
	if s := showCustomer(t, env, "a@example.nl", "2027-02-01"); s["effective_sla"] != "SLA24" || s["sla"] != "SLA8" {
		t.Errorf("expired: sla %v, effective %v", s["sla"], s["effective_sla"])
	}
	if r := runBin(t, env, "customer", "status", "a@example.nl", "-at", "morgen"); r.code != 2 || !strings.Contains(r.stderr, "-at") {
		t.Errorf("bad -at: exit %d, %q", r.code, r.stderr)
	}
}

func testdataFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeCSV(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "customers.csv")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCustomerImport(t *testing.T) {
	good, bad := testdataFile(t, "customers.csv"), testdataFile(t, "customers-bad.csv")

	t.Run("good file, then again", func(t *testing.T) {
		env := newPeers(t).env()
		if out := mustRun(t, env, "customer", "import", good); !strings.HasPrefix(out, "customer 1 created: Bakkerij de Vries <info@bakkerijdevries.nl> SLA8\n") ||
			!strings.HasSuffix(out, "customer 5 created: Fietsenhuis Bosman <bestellingen@fietsenhuis.example> SLA8\nimported: 5 created, 0 updated, 0 unchanged, 0 rejected\n") {
			t.Errorf("import = %q", out)
		}
		first := listCustomers(t, env)
		if len(first) != 5 {
			t.Fatalf("customers = %d, want 5", len(first))
		}
		b := showCustomer(t, env, "piet@bakkerijdevries.nl", "2027-01-01")
		for k, w := range map[string]any{"emails": []any{"info@bakkerijdevries.nl", "piet@bakkerijdevries.nl"}, "sla": "SLA8",
			"valid_until": "2027-12-31", "contract": true, "licence": "infokas-l", "phones": []any{"+31612345678", "+31201234567"},
			"maintainer": "vendor", "lang": "nl", "answer": "email", "status": "geldig tot 31-12-2027"} {
			if !reflect.DeepEqual(b[k], w) {
				t.Errorf("imported %s = %#v, want %#v", k, b[k], w)
			}
		}
		// DD-MM-YYYY (as Dutch spreadsheets write it), 0031, 1/0 booleans; an expired tier (R3).
		h := showCustomer(t, env, "receptie@hotelzeezicht.nl", "2026-11-01")
		for k, w := range map[string]any{"name": "Hotel Zeezicht, Zandvoort", "sla": "SLA4", "valid_until": "2026-10-31", "arrears": true,
			"contract": true, "phones": []any{"+31235712345"}, "lang": "en", "effective_sla": "SLA24", "status": "verlopen op 31-10-2026"} {
			if !reflect.DeepEqual(h[k], w) {
				t.Errorf("hotel %s = %#v, want %#v", k, h[k], w)
			}
		}
		// A re-import finds the same customers: nothing doubles, nothing changes.
		if out := mustRun(t, env, "customer", "import", good); out != "imported: 0 created, 0 updated, 5 unchanged, 0 rejected\n" {
			t.Errorf("re-import = %q", out)
		}
		if again := listCustomers(t, env); !reflect.DeepEqual(again, first) {
			t.Errorf("after re-import:\n%v\nwant\n%v", again, first)
		}
		// A row found by its address changes that customer: a new address is added, an empty
		// cell and a column absent from the file keep the value.
		upd := writeCSV(t, "Name,Email,SLA,Valid-Until\nBakkerij de Vries B.V.,info@bakkerijdevries.nl;bestel@bakkerijdevries.nl,SLA4,\nKapsalon Linda,info@kapsalonlinda.nl,,\n")
		if out := mustRun(t, env, "customer", "import", upd); out != "customer 1: emails info@bakkerijdevries.nl, piet@bakkerijdevries.nl -> info@bakkerijdevries.nl, piet@bakkerijdevries.nl, bestel@bakkerijdevries.nl\n"+
			"customer 1: name Bakkerij de Vries -> Bakkerij de Vries B.V.\ncustomer 1: sla SLA8 -> SLA4\n"+
			"customer 6 created: Kapsalon Linda <info@kapsalonlinda.nl> SLA24\nimported: 1 created, 1 updated, 0 unchanged, 0 rejected\n" {
			t.Errorf("update import = %q", out)
		}
		b = showCustomer(t, env, "bestel@bakkerijdevries.nl")
		for k, w := range map[string]any{"id": 1.0, "name": "Bakkerij de Vries B.V.", "emails": []any{"info@bakkerijdevries.nl", "piet@bakkerijdevries.nl", "bestel@bakkerijdevries.nl"},
			"sla": "SLA4", "valid_until": "2027-12-31", "contract": true, "licence": "infokas-l", "phones": []any{"+31612345678", "+31201234567"}} {
			if !reflect.DeepEqual(b[k], w) {
				t.Errorf("updated %s = %#v, want %#v", k, b[k], w)
			}
		}
	})

	t.Run("bad file imports nothing", func(t *testing.T) {
		env := newPeers(t).env()
		r := runBin(t, env, "customer", "import", bad)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
		}
		if r.stdout != "imported: 0 created, 0 updated, 0 unchanged, 8 rejected\n" {
			t.Errorf("summary = %q", r.stdout)
		}
		// Every bad line with its number and reason; the good lines 2 and 8 are not named.
		for _, w := range []string{
			`line 3: sla "SLA9": want SLA24, SLA8 or SLA4; valid_until "2027-02-30": want a date YYYY-MM-DD; contract "misschien": want true or false`,
			`licence "Gold": want L, S or N (InfokasV3), TSPos or other; lang "de": want nl or en; answer "fax": want email or site`,
			"line 4: email is required",
			"line 5: name is required",
			"line 6: address boeken@fietsenhuis.example is also on line 7; number +31611112222 is also on line 7",
			"line 7: address boeken@fietsenhuis.example is also on line 6",
			`line 9: email "not an address" is not an email address`,
			"line 10: 11 fields, want 12",
			`line 11: phones "012": not a phone number`,
			"nothing imported: 8 of 10 rows rejected",
		} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
			}
		}
		if strings.Contains(r.stderr, "line 2:") || strings.Contains(r.stderr, "line 8:") {
			t.Errorf("good lines reported:\n%s", r.stderr)
		}
		if cs := listCustomers(t, env); len(cs) != 0 {
			t.Errorf("customers after a rejected file = %v", cs)
		}
	})

	t.Run("bad file with -partial", func(t *testing.T) {
		env := newPeers(t).env()
		r := runBin(t, env, "customer", "import", "-partial", bad)
		if r.code != 0 || !strings.HasSuffix(r.stdout, "imported: 2 created, 0 updated, 0 unchanged, 8 rejected\n") || strings.Count("\n"+r.stderr, "\nline ") != 8 {
			t.Fatalf("exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
		}
		cs := listCustomers(t, env)
		if len(cs) != 2 || cs[0]["name"] != "Bakkerij de Vries" || cs[1]["name"] != "Kapsalon Linda" {
			t.Errorf("customers = %v", cs)
		}
	})

	t.Run("addresses and numbers of existing customers", func(t *testing.T) {
		env := newPeers(t).env()
		mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl,piet@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-phone", "0612345678")
		f := writeCSV(t, "email,name,phones\n"+
			"kassa@slagerijjansen.nl;piet@bakkerijdevries.nl,Slagerij Jansen,\n"+ // names customer 1 through piet@
			"info@kapsalonlinda.nl,Kapsalon Linda,+31 6 12345678\n"+ // R19: one owner per number
			"info@bakkerijdevries.nl,Bakkerij de Vries,\n"+ // names customer 1 too: neither row is taken
			"info@buurtkast.nl,Stichting De Buurtkast,\n")
		r := runBin(t, env, "customer", "import", f, "-partial")
		if r.code != 0 || r.stdout != "customer 2 created: Stichting De Buurtkast <info@buurtkast.nl> SLA24\nimported: 1 created, 0 updated, 0 unchanged, 3 rejected\n" {
			t.Errorf("exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
		}
		for _, w := range []string{"line 2: customer 1 is also changed by line 4", "line 4: customer 1 is also changed by line 2",
			"line 3: number +31612345678 is registered by customer 1 (Bakkerij de Vries)"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
			}
		}
		if c := showCustomer(t, env, "info@bakkerijdevries.nl"); !reflect.DeepEqual(c["emails"], []any{"info@bakkerijdevries.nl", "piet@bakkerijdevries.nl"}) ||
			!reflect.DeepEqual(c["phones"], []any{"+31612345678"}) || c["name"] != "Bakkerij de Vries" {
			t.Errorf("customer 1 after rejected rows = %v", c)
		}
		// The same address on two rows, in any case: neither is imported.
		f = writeCSV(t, "email,name\nkassa@slagerijjansen.nl,A\nKASSA@slagerijjansen.nl,B\n")
		r = runBin(t, env, "customer", "import", f, "-partial")
		if r.stdout != "imported: 0 created, 0 updated, 0 unchanged, 2 rejected\n" || !strings.Contains(r.stderr, "line 2: address kassa@slagerijjansen.nl is also on line 3") {
			t.Errorf("exit %d, %q\n%s", r.code, r.stdout, r.stderr)
		}
	})

	// The file as Excel saves "CSV" with Dutch settings: a byte-order mark, columns separated by
	// ';', Windows line ends, a cell with several addresses in quotes, DD-MM-YYYY dates.
	t.Run("Excel's semicolon file", func(t *testing.T) {
		env := newPeers(t).env()
		f := writeCSV(t, "\uFEFFemail;name;sla;valid_until;contract;licence;phones;contact\r\n"+
			"\"info@bakkerijdevries.nl;piet@bakkerijdevries.nl\";Bakkerij de Vries;SLA8;31-12-2027;ja;InfokasV3 L;\"06-1234 5678;020 123 4567\";\";Piet de Vries\"\r\n"+
			"kassa@slagerijjansen.nl;Slagerij Jansen, Zandvoort;SLA24;;nee;TS Pos;;Kees Jansen\r\n"+
			"info@caféhetplein.nl;Café Het Plein;SLA4;31-01-2027;ja;S;;Ëlla Ünal\r\n")
		if out := mustRun(t, env, "customer", "import", f); out != "customer 1 created: Bakkerij de Vries <info@bakkerijdevries.nl> SLA8\n"+
			"customer 2 created: Slagerij Jansen, Zandvoort <kassa@slagerijjansen.nl> SLA24\ncustomer 3 created: Café Het Plein <info@caféhetplein.nl> SLA4\n"+
			"imported: 3 created, 0 updated, 0 unchanged, 0 rejected\n" {
			t.Errorf("import = %q", out)
		}
		b := showCustomer(t, env, "piet@bakkerijdevries.nl", "2027-01-01")
		for k, w := range map[string]any{"emails": []any{"info@bakkerijdevries.nl", "piet@bakkerijdevries.nl"}, "valid_until": "2027-12-31",
			"contract": true, "licence": "infokas-l", "phones": []any{"+31612345678", "+31201234567"},
			"contacts": map[string]any{"piet@bakkerijdevries.nl": "Piet de Vries"}} {
			if !reflect.DeepEqual(b[k], w) {
				t.Errorf("imported %s = %#v, want %#v", k, b[k], w)
			}
		}
		if c := showCustomer(t, env, "info@caféhetplein.nl"); c["name"] != "Café Het Plein" || !reflect.DeepEqual(c["contacts"], map[string]any{"info@caféhetplein.nl": "Ëlla Ünal"}) {
			t.Errorf("UTF-8 row: %v", c)
		}
		if out := mustRun(t, env, "customer", "import", f); out != "imported: 0 created, 0 updated, 3 unchanged, 0 rejected\n" {
			t.Errorf("re-import = %q", out)
		}
		// Dutch Excel's booleans are WAAR and ONWAAR; a phone column typed as a number loses its 0.
		r := runBin(t, env, "customer", "import", writeCSV(t, "email;name;contract;arrears;phones\r\ninfo@excel.nl;Excel BV;WAAR;ONWAAR;\r\n"))
		if r.code != 0 || r.stdout != "customer 4 created: Excel BV <info@excel.nl> SLA24\nimported: 1 created, 0 updated, 0 unchanged, 0 rejected\n" {
			t.Errorf("WAAR/ONWAAR: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		} else if c := showCustomer(t, env, "info@excel.nl"); c["contract"] != true || c["arrears"] != false {
			t.Errorf("WAAR/ONWAAR imported as contract %v, arrears %v", c["contract"], c["arrears"])
		}
		r = runBin(t, env, "customer", "import", writeCSV(t, "email;name;phones\r\ninfo@excel2.nl;Excel 2;612345678\r\n"))
		if r.code != 1 || !strings.Contains(r.stderr, `line 2: phones "612345678": not a phone number (want +31…, 0031… or 0…; a spreadsheet drops the leading 0 of a number: format the column as text)`) {
			t.Errorf("phone without its 0: exit %d, stderr %q", r.code, r.stderr)
		}
		// Excel's plain "CSV" is Windows-1252: refused, naming the line and what to save instead,
		// rather than stored as a name no mail can show.
		r = runBin(t, env, "customer", "import", writeCSV(t, "email;name\r\ninfo@cafedehoek.nl;Caf\xe9 De Hoek\r\n"))
		if r.code != 1 || !strings.Contains(r.stderr, `line 2: not UTF-8 text (Excel's plain "CSV" is Windows-1252): save the file as "CSV UTF-8"`) {
			t.Errorf("Windows-1252 file: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		// Several addresses without the quotes Excel writes: the line says what to do.
		r = runBin(t, env, "customer", "import", writeCSV(t, "email;name\r\ninfo@buurtkast.nl;bestuur@buurtkast.nl;De Buurtkast\r\n"))
		if r.code != 1 || !strings.Contains(r.stderr, `line 2: 3 fields, want 2 (the header's); a cell with several addresses or numbers separated by ';' needs double quotes`) {
			t.Errorf("unquoted list: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("header", func(t *testing.T) {
		env := newPeers(t).env()
		for text, want := range map[string]string{
			"email,name,colour\na@example.nl,A,red\n": `line 1: unknown column "colour"`,
			"name,sla\nA,SLA8\n":                      `required column "email" is missing`,
			"email,name,Email\na,b,c\n":               `column "email" appears twice`,
			"":                                        "empty file",
		} {
			r := runBin(t, env, "customer", "import", writeCSV(t, text), "-partial")
			if r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("%q: exit %d, stderr %q, want %q", text, r.code, r.stderr, want)
			}
		}
		if cs := listCustomers(t, env); len(cs) != 0 {
			t.Errorf("customers = %v", cs)
		}
		// A byte-order mark (Excel) and a header only.
		if out := mustRun(t, env, "customer", "import", writeCSV(t, "\uFEFFemail,name\r\n")); out != "imported: 0 created, 0 updated, 0 unchanged, 0 rejected\n" {
			t.Errorf("header only: %q", out)
		}
		if r := runBin(t, env, "customer", "import"); r.code != 2 {
			t.Errorf("no file: exit %d", r.code)
		}
		if r := runBin(t, env, "customer", "import", filepath.Join(t.TempDir(), "missing.csv")); r.code != 1 || !strings.Contains(r.stderr, "missing.csv") {
			t.Errorf("missing file: exit %d, %q", r.code, r.stderr)
		}
		if out := mustRun(t, env, "customer", "import", "-h"); !strings.Contains(out, "valid_until") || !strings.Contains(out, "philanthropic") {
			t.Errorf("import -h does not document the columns:\n%s", out)
		}
	})
}

// A customer import never destroys data. A row changes only the customer it names
// without doubt; an empty cell keeps the field; the login changes and addresses and numbers go
// only through their own columns; every change is printed, -dry-run prints the same and writes
// nothing, and the same file twice makes no change the second time.
func TestCustomerImportKeepsData(t *testing.T) {
	env := newPeers(t).env()
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl,piet@bakkerijdevries.nl", "-name", "Bakkerij de Vries",
		"-valid-until", "2027-12-31", "-contract", "-licence", "L", "-phone", "0612345678", "-phone", "020-1234567")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen")
	before := showCustomer(t, env, "info@bakkerijdevries.nl", "2027-01-01")

	// The reported case: the row's first address is customer 1's second one, its cells empty
	// but for the tier. Before: login, contract, licence, numbers and date were gone.
	f := writeCSV(t, "email,name,sla,valid_until,contract,licence,phones\n"+
		"piet@bakkerijdevries.nl,,SLA8,,,,\n"+
		"kassa@slagerijjansen.nl,Slagerij Jansen,,,,,\n")
	want := "customer 1: sla SLA24 -> SLA8\nimported: 0 created, 1 updated, 1 unchanged, 0 rejected\n"
	if out := mustRun(t, env, "customer", "import", "-dry-run", f); out != want+"-dry-run: nothing was written\n" {
		t.Errorf("import -dry-run =\n%s\nwant\n%s", out, want)
	}
	if got := showCustomer(t, env, "info@bakkerijdevries.nl", "2027-01-01"); !reflect.DeepEqual(got, before) {
		t.Errorf("-dry-run wrote:\n%v\nwant\n%v", got, before)
	}
	if out := mustRun(t, env, "customer", "import", f); out != want {
		t.Errorf("import =\n%s\nwant\n%s", out, want)
	}
	after := showCustomer(t, env, "info@bakkerijdevries.nl", "2027-01-01")
	for k := range before {
		w := before[k]
		switch k {
		case "sla", "effective_sla":
			w = "SLA8"
		case "status": // the paid tier's end date now counts (R3)
			w = "geldig tot 31-12-2027"
		}
		if !reflect.DeepEqual(after[k], w) {
			t.Errorf("after import: %s = %#v, want %#v", k, after[k], w)
		}
	}
	if out := mustRun(t, env, "customer", "import", f); out != "imported: 0 created, 0 updated, 2 unchanged, 0 rejected\n" {
		t.Errorf("the same file again = %q, want no change", out)
	}

	// A row whose addresses are two customers' is rejected, naming both; nothing is written.
	r := runBin(t, env, "customer", "import", writeCSV(t, "email,name,sla\npiet@bakkerijdevries.nl;kassa@slagerijjansen.nl,Bakkerij de Vries,SLA4\n"))
	if w := "line 2: the addresses belong to 2 customers: piet@bakkerijdevries.nl is customer 1 (Bakkerij de Vries), " +
		"kassa@slagerijjansen.nl is customer 2 (Slagerij Jansen)"; r.code != 1 || !strings.Contains(r.stderr, w) ||
		r.stdout != "imported: 0 created, 0 updated, 0 unchanged, 1 rejected\n" {
		t.Errorf("ambiguous row: exit %d, stdout %q, stderr %q; want it to contain %q", r.code, r.stdout, r.stderr, w)
	}
	if a, b := showCustomer(t, env, "piet@bakkerijdevries.nl"), showCustomer(t, env, "kassa@slagerijjansen.nl"); a["sla"] != "SLA8" || b["sla"] != "SLA24" ||
		len(a["emails"].([]any)) != 2 || len(b["emails"].([]any)) != 1 {
		t.Errorf("after the rejected row: %v, %v", a, b)
	}

	// Explicit columns: id names the customer, login changes the login, remove_email and
	// remove_phones remove, "-" clears; a new address and number are added.
	f = writeCSV(t, "id,email,login,remove_email,valid_until,phones,remove_phones\n"+
		"1,bestel@bakkerijdevries.nl,piet@bakkerijdevries.nl,info@bakkerijdevries.nl,-,0301234567,020-1234567\n")
	want = "customer 1: emails info@bakkerijdevries.nl, piet@bakkerijdevries.nl -> piet@bakkerijdevries.nl, bestel@bakkerijdevries.nl\n" +
		"customer 1: valid_until 2027-12-31 -> -\n" +
		"customer 1: phones +31612345678, +31201234567 -> +31612345678, +31301234567\n" +
		"imported: 0 created, 1 updated, 0 unchanged, 0 rejected\n"
	if out := mustRun(t, env, "customer", "import", f); out != want {
		t.Errorf("explicit columns =\n%s\nwant\n%s", out, want)
	}
	if out := mustRun(t, env, "customer", "import", f); out != "imported: 0 created, 0 updated, 1 unchanged, 0 rejected\n" {
		t.Errorf("explicit columns again = %q, want no change", out)
	}
	if c := showCustomer(t, env, "bestel@bakkerijdevries.nl"); c["id"] != 1.0 || c["contract"] != true || c["licence"] != "infokas-l" {
		t.Errorf("customer 1 = %v", c)
	}

	// Refused: removing the login without naming a new one, an id that names no one, an
	// address of another customer than the id's, a new customer without a name.
	r = runBin(t, env, "customer", "import", "-partial", writeCSV(t, "id,email,name,remove_email\n"+
		"1,,,piet@bakkerijdevries.nl\n"+
		"9,nieuw@example.nl,Nieuw,\n"+
		"2,bestel@bakkerijdevries.nl,,\n"+
		",info@ijssalon.example,,\n"))
	for _, w := range []string{
		"line 2: remove_email piet@bakkerijdevries.nl is the login address: name another address in the login column to remove it",
		"line 3: id 9: no such customer (leave the cell empty to add one)",
		"line 4: address bestel@bakkerijdevries.nl belongs to customer 1 (Bakkerij de Vries), not to customer 2",
		"line 5: name is required",
	} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if r.code != 0 || r.stdout != "imported: 0 created, 0 updated, 0 unchanged, 4 rejected\n" {
		t.Errorf("refused rows: exit %d, stdout %q", r.code, r.stdout)
	}
	if cs := listCustomers(t, env); len(cs) != 2 {
		t.Errorf("customers = %d, want 2", len(cs))
	}
}

// An address can carry the name of the person behind it, to greet them by: set
// with customer add/set -contact and the CSV column contact, shown by customer show.
func TestCustomerContacts(t *testing.T) {
	env := newPeers(t).env()
	contacts := func(addr string) map[string]any {
		t.Helper()
		c, _ := showCustomer(t, env, addr)["contacts"].(map[string]any)
		return c
	}
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl,piet@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-contact", " Marieke  de Vries ")
	if c := contacts("piet@bakkerijdevries.nl"); !reflect.DeepEqual(c, map[string]any{"info@bakkerijdevries.nl": "Marieke de Vries"}) {
		t.Errorf("add -contact: contacts = %v, want the login's", c)
	}
	if out := mustRun(t, env, "customer", "set", "PIET@bakkerijdevries.nl", "-contact", "Piet de Vries"); !strings.Contains(out,
		"contacts: Marieke de Vries <info@bakkerijdevries.nl> -> Marieke de Vries <info@bakkerijdevries.nl>, Piet de Vries <piet@bakkerijdevries.nl>") {
		t.Errorf("set -contact = %q", out)
	}
	if text := mustRun(t, env, "customer", "show", "info@bakkerijdevries.nl"); !strings.Contains(text, "Marieke de Vries <info@bakkerijdevries.nl>, Piet de Vries <piet@bakkerijdevries.nl>") {
		t.Errorf("show lacks the contacts:\n%s", text)
	}
	mustRun(t, env, "customer", "set", "info@bakkerijdevries.nl", "-contact", "")
	if c := contacts("info@bakkerijdevries.nl"); !reflect.DeepEqual(c, map[string]any{"piet@bakkerijdevries.nl": "Piet de Vries"}) {
		t.Errorf(`set -contact "": contacts = %v`, c)
	}
	// A removed address takes its contact name with it.
	mustRun(t, env, "customer", "set", "info@bakkerijdevries.nl", "-email", "info@bakkerijdevries.nl")
	if c := contacts("info@bakkerijdevries.nl"); len(c) != 0 {
		t.Errorf("contacts after removing the address = %v", c)
	}
	if r := runBin(t, env, "customer", "set", "info@bakkerijdevries.nl", "-contact", strings.Repeat("x", 65)); r.code != 2 || !strings.Contains(r.stderr, "-contact") {
		t.Errorf("too long a name: exit %d, %q", r.code, r.stderr)
	}

	// CSV: the n-th name is the n-th address's; an empty entry keeps, "-" removes.
	f := writeCSV(t, "email,contact\ninfo@bakkerijdevries.nl;bestel@bakkerijdevries.nl,Marieke de Vries;Jan Bos\n")
	if out := mustRun(t, env, "customer", "import", f); out != "customer 1: emails info@bakkerijdevries.nl -> info@bakkerijdevries.nl, bestel@bakkerijdevries.nl\n"+
		"customer 1: contacts - -> Marieke de Vries <info@bakkerijdevries.nl>, Jan Bos <bestel@bakkerijdevries.nl>\n"+
		"imported: 0 created, 1 updated, 0 unchanged, 0 rejected\n" {
		t.Errorf("import contact = %q", out)
	}
	if out := mustRun(t, env, "customer", "import", writeCSV(t, "email,contact\nbestel@bakkerijdevries.nl,-\n")); out != "customer 1: contacts Marieke de Vries <info@bakkerijdevries.nl>, Jan Bos <bestel@bakkerijdevries.nl> -> Marieke de Vries <info@bakkerijdevries.nl>\n"+
		"imported: 0 created, 1 updated, 0 unchanged, 0 rejected\n" {
		t.Errorf(`import contact "-" = %q`, out)
	}
	r := runBin(t, env, "customer", "import", writeCSV(t, "email,name,contact\nkassa@slagerijjansen.nl,Slagerij Jansen,Henk;Els\n"))
	if r.code != 1 || !strings.Contains(r.stderr, "line 2: contact has 2 names for 1 addresses") {
		t.Errorf("two names for one address: exit %d, %q", r.code, r.stderr)
	}
}

// R19: a call from a registered number is put through with a telephone support contract and a
// valid paid tier; every other caller hears why not.
func TestCaller(t *testing.T) {
	env := newPeers(t).env()
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8",
		"-valid-until", "2027-01-31", "-contract", "-phone", "+31 6 1234 5678")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen", "-sla", "SLA8", "-phone", "020-1234567")
	mustRun(t, env, "customer", "add", "-email", "info@kapsalonlinda.nl", "-name", "Kapsalon Linda", "-contract", "-phone", "0031 30 1234567")

	// Every way a number is written finds the customer.
	for _, n := range [][]string{{"+31612345678"}, {"0031612345678"}, {"0612345678"}, {"06-1234 5678"}, {"+31 (0)6 12 34 56 78"}, {"06", "1234", "5678"}} {
		out := mustRun(t, env, append(append([]string{"caller"}, n...), "-at", "2026-12-01")...)
		if out != "+31612345678: customer 1, Bakkerij de Vries <info@bakkerijdevries.nl>\nput through: yes (telephone support contract, SLA8 geldig tot 31-01-2027)\n" {
			t.Errorf("caller %q =\n%s", n, out)
		}
	}
	for _, tc := range []struct {
		number, at, reason string
		through            bool
	}{
		{"0612345678", "2027-01-31", "telephone support contract, SLA8 geldig tot 31-01-2027", true},
		{"0612345678", "2027-02-01", "the paid helpdesk tier verlopen op 31-01-2027", false}, // expired (R3)
		{"0201234567", "2026-12-01", "no telephone support contract", false},
		{"0301234567", "2026-12-01", "SLA24 has no telephone support", false},
	} {
		var a map[string]any
		if err := json.Unmarshal([]byte(mustRun(t, env, "caller", tc.number, "-json", "-at", tc.at)), &a); err != nil {
			t.Fatal(err)
		}
		if a["known"] != true || a["put_through"] != tc.through || a["reason"] != tc.reason || a["customer"] == nil {
			t.Errorf("caller %s -at %s = %v, want put_through %v (%s)", tc.number, tc.at, a, tc.through, tc.reason)
		}
		out := mustRun(t, env, "caller", tc.number, "-at", tc.at)
		if want := "put through: " + yesNo(tc.through) + " (" + tc.reason + ")\n"; !strings.HasSuffix(out, want) {
			t.Errorf("caller %s -at %s =\n%s\nwant the line %q", tc.number, tc.at, out, want)
		}
	}
	// An unknown number is an answer, not an error.
	r := runBin(t, env, "caller", "06 9999 0000")
	if r.code != 0 || r.stdout != "unknown number +31699990000: not put through\n" {
		t.Errorf("unknown: exit %d, %q", r.code, r.stdout)
	}
	var a map[string]any
	json.Unmarshal([]byte(mustRun(t, env, "caller", "0699990000", "-json")), &a)
	if a["known"] != false || a["customer"] != nil || a["put_through"] != false || a["number"] != "+31699990000" {
		t.Errorf("unknown -json = %v", a)
	}
	for _, bad := range [][]string{{"12ab"}, {"612345678"}, {"06"}, nil} {
		if r := runBin(t, env, append([]string{"caller"}, bad...)...); r.code != 2 {
			t.Errorf("caller %q: exit %d, want 2; %q", bad, r.code, r.stderr)
		}
	}
}

// The customer commands run inside a running gateway over the control socket, with the same
// code; the gateway reads an import file itself, so a relative path is refused.
func TestCustomerCommandsWhileServing(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	cmd := exec.Command(binPath, "serve")
	cmd.Env = append(env, raceEnv)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	sock := filepath.Join(p.dir, "helpdesk.db.sock")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control socket; stderr:\n%s", stderr.String())
		}
	}

	if out := mustRun(t, env, "customer", "import", testdataFile(t, "customers.csv")); !strings.HasSuffix(out, "imported: 5 created, 0 updated, 0 unchanged, 0 rejected\n") {
		t.Errorf("import over the socket = %q", out)
	}
	r := runBin(t, env, "customer", "import", "-partial", testdataFile(t, "customers-bad.csv"))
	if r.code != 0 || !strings.Contains(r.stderr, "line 3: sla") || !strings.Contains(r.stdout, "rejected") {
		t.Errorf("bad import over the socket: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// A relative path is the operator's, not the gateway's working directory.
	if out := mustRun(t, env, "customer", "import", filepath.Join("..", "..", "testdata", "customers.csv")); out != "imported: 0 created, 0 updated, 5 unchanged, 0 rejected\n" {
		t.Errorf("relative path over the socket = %q", out)
	}
	// -dry-run inside the gateway: the change is printed and nothing is written.
	dry := writeCSV(t, "email,sla\nkassa@slagerijjansen.nl,SLA4\n")
	if out := mustRun(t, env, "customer", "import", "-dry-run", dry); out != "customer 2: sla SLA24 -> SLA4\nimported: 0 created, 1 updated, 0 unchanged, 0 rejected\n-dry-run: nothing was written\n" {
		t.Errorf("-dry-run over the socket = %q", out)
	}
	if s := showCustomer(t, env, "kassa@slagerijjansen.nl"); s["sla"] != "SLA24" {
		t.Errorf("-dry-run over the socket wrote: sla %v", s["sla"])
	}
	mustRun(t, env, "customer", "add", "-email", "info@ijssalon.example", "-name", "IJssalon", "-sla", "SLA8", "-contract", "-phone", "0101234567")
	if out := mustRun(t, env, "customer", "set", "info@ijssalon.example", "-valid-until", "2026-01-31"); !strings.Contains(out, "valid_until: - -> 2026-01-31") {
		t.Errorf("set over the socket = %q", out)
	}
	if out := mustRun(t, env, "customer", "status", "info@ijssalon.example", "-at", "2026-02-01"); out != "verlopen op 31-01-2026\n" {
		t.Errorf("status over the socket = %q", out)
	}
	if s := showCustomer(t, env, "info@ijssalon.example"); s["phones"].([]any)[0] != "+31101234567" {
		t.Errorf("show over the socket = %v", s)
	}
	if out := mustRun(t, env, "caller", "010-1234567", "-at", "2026-01-01"); !strings.Contains(out, "put through: yes") {
		t.Errorf("caller over the socket = %q", out)
	}
	if r := runBin(t, env, "customer", "set", "info@ijssalon.example", "-lang", "fr"); r.code != 2 || !strings.Contains(r.stderr, "-lang") {
		t.Errorf("usage error over the socket: exit %d, %q", r.code, r.stderr)
	}
	if cs := listCustomers(t, env); len(cs) != 7 { // 5 + Kapsalon Linda (-partial) + IJssalon
		t.Errorf("customers = %d, want 7", len(cs))
	}
}
