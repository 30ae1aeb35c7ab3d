// Package customers holds the rules of a customer record as staff set it (R1–R5, R13, R14,
// R19): the settable fields and how each is parsed from a flag or a spreadsheet cell, the
// fields as shown and compared, and the spreadsheet import with its checks (import.go). It is
// the logic behind `customer add`, `customer set` and `customer import`; the commands only
// parse flags and print. It writes customers only through the caller's store transaction.
package customers

import (
	"errors"
	"fmt"
	"maps"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/policy"
)

// Field is one settable field of a customer record: a flag of `customer add` and `customer
// set`, and a column of `customer import`, set by the same parser.
type Field struct {
	Flag   string // name of the flag of customer add/set
	Column string // name of the column of customer import
	List   bool   // several values: comma-separated or repeated flag, ';'-separated cell
	IsBool bool
	Usage  string
	// Set parses the value(s) and stores them in c. An empty value sets the default. The error
	// names the bad value and what is allowed; the caller prefixes the flag or column name.
	Set func(c *helpdesk.Customer, vals []string) error
}

// Fields are the settable fields, in the order they are shown and applied.
func Fields() []Field {
	return []Field{
		{Flag: "email", Column: "email", List: true,
			Usage: "an `address` of the customer; repeat or comma-separate for more; the first is the login (R1)",
			Set: func(c *helpdesk.Customer, vals []string) error {
				es, err := ParseEmails(vals)
				if err == nil && len(es) == 0 {
					err = ErrRequired
				}
				if err != nil {
					return err
				}
				c.Emails = es
				return nil
			}},
		{Flag: "name", Column: "name", Usage: "customer `name`",
			Set: func(c *helpdesk.Customer, vals []string) error {
				n := strings.Join(strings.Fields(first(vals)), " ")
				if n == "" {
					return ErrRequired
				}
				c.Name = n
				return nil
			}},
		{Flag: "sla", Column: "sla", Usage: "service `level`: SLA24 (free, the default), SLA8 (paid) or SLA4 (maintenance contract) (R2)",
			Set: func(c *helpdesk.Customer, vals []string) error {
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
		{Flag: "valid-until", Column: "valid_until", Usage: "last `day` of the paid tier, YYYY-MM-DD (or DD-MM-YYYY); empty: no end date (R3)",
			Set: func(c *helpdesk.Customer, vals []string) (err error) {
				c.ValidUntil, err = ParseDay(first(vals))
				return err
			}},
		{Flag: "free-until", Column: "free_until", Usage: "keep the free status SLA24 through this `day`, YYYY-MM-DD, however long ago paid support ended (R21); empty: not kept",
			Set: func(c *helpdesk.Customer, vals []string) (err error) {
				c.FreeUntil, err = ParseDay(first(vals))
				return err
			}},
		{Flag: "paid-ended", Column: "paid_ended", Usage: "last `day` of a paid tier the customer had before SLA24, YYYY-MM-DD (R21); recorded by itself when -sla takes a customer off a paid tier",
			Set: func(c *helpdesk.Customer, vals []string) (err error) {
				c.PaidEnded, err = ParseDay(first(vals))
				return err
			}},
		{Flag: "contract", Column: "contract", IsBool: true, Usage: "the customer has a support contract (R8, R19)",
			Set: func(c *helpdesk.Customer, vals []string) (err error) {
				c.Contract, err = parseBool(first(vals))
				return err
			}},
		{Flag: "licence", Column: "licence", Usage: "licence `type`: L, S or N (InfokasV3 L/S/N), TSPos or other; empty: unknown (R2)",
			Set: func(c *helpdesk.Customer, vals []string) (err error) {
				c.Licence, err = parseLicence(first(vals))
				return err
			}},
		{Flag: "philanthropic", Column: "philanthropic", IsBool: true, Usage: "a philanthropic institution with a free licence and free support (R4)",
			Set: func(c *helpdesk.Customer, vals []string) (err error) {
				c.Philanthropic, err = parseBool(first(vals))
				return err
			}},
		{Flag: "arrears", Column: "arrears", IsBool: true, Usage: "payment status: in arrears; callbacks are prepaid only (R5, R13)",
			Set: func(c *helpdesk.Customer, vals []string) (err error) {
				c.Arrears, err = parseBool(first(vals))
				return err
			}},
		{Flag: "maintainer", Column: "maintainer", Usage: "who maintains the system: vendor (the default), third-party or none (R13)",
			Set: func(c *helpdesk.Customer, vals []string) (err error) {
				c.Maintainer, err = parseChoice(first(vals), helpdesk.MaintainerVendor, helpdesk.MaintainerThirdParty, helpdesk.MaintainerNone)
				return err
			}},
		{Flag: "phone", Column: "phones", List: true, Usage: "a registered phone `number` (+31…, 0031… or 0…); repeat or comma-separate for more (R19)",
			Set: func(c *helpdesk.Customer, vals []string) (err error) {
				c.Phones, err = ParsePhones(vals)
				return err
			}},
		{Flag: "lang", Column: "lang", Usage: "`language` of the customer's mail: nl (the default) or en",
			Set: func(c *helpdesk.Customer, vals []string) (err error) {
				c.Lang, err = parseChoice(first(vals), "nl", "en")
				return err
			}},
		{Flag: "answer", Column: "answer", Usage: "how answers reach the customer: email (the default) or site (a notification that the answer waits on the site) (R14)",
			Set: func(c *helpdesk.Customer, vals []string) (err error) {
				c.Answer, err = parseChoice(first(vals), helpdesk.AnswerEmail, helpdesk.AnswerSite)
				return err
			}},
	}
}

// ErrRequired: a required field (email, name) is empty; shown after the flag or column name.
var ErrRequired = errors.New("is required")

// New is a customer with every field at its default.
func New(now time.Time) *helpdesk.Customer {
	return &helpdesk.Customer{Tier: helpdesk.SLA24, Maintainer: helpdesk.MaintainerVendor, Lang: "nl",
		Answer: helpdesk.AnswerEmail, Created: now}
}

func first(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	return strings.TrimSpace(vals[0])
}

// ParseEmails reads addresses, normalised (R1: compared without case), without duplicates;
// empty values are skipped.
func ParseEmails(vals []string) ([]string, error) {
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

// ParsePhones reads phone numbers as policy.NormalizePhone normalises them (R19), without
// duplicates; empty values are skipped.
func ParsePhones(vals []string) ([]string, error) {
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

// ParseDay reads a calendar date as YYYY-MM-DD or, as Dutch spreadsheets write it, DD-MM-YYYY;
// empty is the zero Date.
func ParseDay(s string) (helpdesk.Date, error) {
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
	case "", "false", "f", "no", "n", "nee", "0", "onwaar": // ONWAAR, WAAR: Dutch Excel's FALSE, TRUE
		return false, nil
	case "true", "t", "yes", "y", "ja", "j", "1", "waar":
		return true, nil
	}
	return false, fmt.Errorf("%q: want true or false (yes/no, ja/nee, waar/onwaar, 1/0)", s)
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

// LicenceName is how a licence type is shown to people.
func LicenceName(l string) string {
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

// Rows are a customer's fields as label and text, in the order shown and diffed.
func Rows(c *helpdesk.Customer) [][2]string {
	return [][2]string{
		{"emails", strings.Join(c.Emails, ", ")},
		{"name", c.Name},
		{"sla", string(c.Tier)},
		{"valid_until", dash(c.ValidUntil.String())},
		{"free_until", dash(c.FreeUntil.String())},
		{"paid_ended", dash(c.PaidEnded.String())},
		{"contract", yesNo(c.Contract)},
		{"licence", LicenceName(c.Licence)},
		{"philanthropic", yesNo(c.Philanthropic)},
		{"arrears", yesNo(c.Arrears)},
		{"maintainer", c.MaintainedBy()},
		{"phones", dash(strings.Join(c.Phones, ", "))},
		{"lang", c.Language()},
		{"answer", c.AnswerBy()},
		{"contacts", dash(ContactList(c))},
	}
}

// NotePaidEnd records the end of paid support when a change takes a customer off a paid tier
// (SLA8 or SLA4 to SLA24), for the lapse of R21: the valid-until day of a tier that expired
// before today, else today — unless the same change set paid_ended itself. Without it a
// customer with a paid tier without an end date, set to SLA24, would count from the day their
// record was created.
func NotePaidEnd(old, c *helpdesk.Customer, today helpdesk.Date) {
	if !old.Tier.Paid() || c.Tier.Paid() || c.PaidEnded != old.PaidEnded {
		return
	}
	end := old.ValidUntil
	if end.IsZero() || today.Before(end) {
		end = today
	}
	if c.PaidEnded.Before(end) {
		c.PaidEnded = end
	}
}

// ContactList is the customer's contact names as "Piet de Vries <piet@…>", in address order.
func ContactList(c *helpdesk.Customer) string {
	var out []string
	for _, a := range c.Emails {
		if n := c.ContactName(a); n != "" {
			out = append(out, n+" <"+a+">")
		}
	}
	return strings.Join(out, ", ")
}

// Clone is a deep copy of c.
func Clone(c *helpdesk.Customer) *helpdesk.Customer {
	n := *c
	n.Emails = slices.Clone(c.Emails)
	n.Phones = slices.Clone(c.Phones)
	n.Contacts = maps.Clone(c.Contacts)
	return &n
}

// Changes are the fields that differ between two records, as "field old -> new".
func Changes(old, c *helpdesk.Customer) []string {
	before, after := Rows(old), Rows(c)
	var out []string
	for i := range before {
		if before[i][1] != after[i][1] {
			out = append(out, fmt.Sprintf("%s %s -> %s", before[i][0], before[i][1], after[i][1]))
		}
	}
	return out
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
