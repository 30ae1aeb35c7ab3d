// Package authres decides whether an inbound email's sender domain was authenticated, from
// the Authentication-Results header fields (RFC 8601) written by the operator's trusted
// receiving server. It owns the lenient parser of that header (Parse), the trust and verdict
// rules (Check: DMARC, RFC 7489, with a DKIM alignment fallback, RFC 6376) and the simplified
// organizational-domain rule used for relaxed alignment (OrgDomain).
//
// It is pure: no I/O, no DNS, no clock, no global mutable state, and it imports nothing of the
// gateway but the root package. It verifies no signature and
// looks up no policy itself; it only reads what the trusted server wrote. Its answer is
// therefore only as good as these deployment rules, which it cannot check:
//
//   - the trusted server removes (or renames) every Authentication-Results field carrying its
//     own authserv-id that arrives with the message, as RFC 8601 section 5 requires, so that
//     the fields with that id at the top are the ones it wrote itself;
//   - mail reaches the helpdesk only through that server;
//   - the server writes the field correctly, in particular escaping ')' and '\' of
//     attacker-chosen text (such as a MAIL FROM local part) that it quotes in comments.
//
// Which fields count. A server may write one field per check — OpenDKIM and
// OpenDMARC are separate milters, each inserting its own field with the server's authserv-id
// just below the server's Received field — so the verdict is read from the contiguous run of
// trusted fields at the top: the topmost field with the trusted id and the fields with that
// id directly below it, adjacent in the header. The run ends at the first field that is not
// one of them: another header field (the Received field of an earlier hop, say) or an
// Authentication-Results field of another server. Fields above the run were added after the
// trusted server (its own later steps, the delivering server); fields below it came with the
// message, and a sender can write anything there, the trusted id included (RFC 8601 section
// 7.1). A fail in any field of the run wins over a pass in another, and a pass needs every
// DMARC result of the run to pass, so a field forged directly below the server's own can turn
// a pass into a fail but not a fail, "none" or a temperror into a pass. What it can do, if
// the server breaks the first rule above and writes no DMARC result of its own, is add a
// pass where the server said nothing: hence the first rule (see docs/tickets.md, "Staff by email").
//
// A From address is easy to forge, so Check is conservative otherwise too: a pass must name
// the very From domain being checked, and anything ambiguous is None rather than Pass.
package authres

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/infobits/helpdesk"
)

// Result is one parsed Authentication-Results header.
type Result struct {
	// AuthServID is the authserv-id: the name of the server that wrote the field, unquoted,
	// as written (compare it case-insensitively). Empty only when Parse returns an error.
	AuthServID string
	// Methods are the results in the order written. A field saying "none" (no-result) has
	// none. The authres-version and method versions ("dkim/1") are parsed and dropped.
	Methods []Method
}

// Method is one resinfo of an Authentication-Results header: "dkim=pass header.d=example.com".
type Method struct {
	Name   string            // lower case: "dkim", "spf", "dmarc", "arc", ...
	Result string            // lower case: "pass", "fail", "none", "neutral", "softfail", "temperror", "permerror", "policy", ...
	Reason string            // the reason= value, unquoted; "" when absent
	Props  map[string]string // "header.from" -> "example.com", "header.d" -> ..., "header.i" -> ..., "smtp.mailfrom" -> ... (keys lower case; values as written, unquoted)
}

// ErrNoAuthServID is the error of Parse when the value does not start with an authserv-id:
// it is empty, starts with ';', or starts with a result such as "spf=pass" (Microsoft 365
// writes its Authentication-Results that way). Such a field can never be attributed to a
// trusted server.
var ErrNoAuthServID = errors.New("authres: no authserv-id in Authentication-Results")

// Parse parses the value (field body, without the "Authentication-Results:" name) of one
// Authentication-Results header, RFC 8601 section 2.2:
//
//	authserv-id [ CFWS authres-version ] ( no-result / 1*resinfo )
//	resinfo = ";" method [ "/" version ] "=" result [ "reason=" value ] *( ptype "." property "=" value )
//
// It is lenient, for the variety written by real servers: comments (nested, anywhere, also
// unbalanced: an unclosed '(' comments out the rest and a stray ')' is ignored), folding
// white space (CR LF kept or already unfolded), quoted strings (also as a quoted local part,
// `"john doe"@example.com`), a missing version, a missing ';' before the first resinfo, a
// trailing ';', unknown methods and results, and values containing '=' (base64 in header.b)
// or '@'. Properties without a ptype (Microsoft's "action=none") are kept in Props under
// their own name; when a property is repeated the first value is kept. A resinfo without
// '=' after its method name is skipped up to the next ';'. Parse never panics and runs in
// time linear in len(value).
//
// The only error is ErrNoAuthServID; the Result then still holds the methods that could be
// parsed, with an empty AuthServID.
func Parse(value string) (Result, error) {
	p := &parser{s: value}
	var r Result
	p.skipCFWS()
	start := p.i
	var id string
	if p.peek() == '"' {
		id = strings.TrimSpace(p.quoted())
	} else {
		id = p.token(stopKey)
	}
	p.skipCFWS()
	if id == "" || p.peek() == '=' {
		// No authserv-id: the value starts with ';' or with a resinfo ("spf=pass ...").
		p.i = start
		r.Methods = p.results()
		return r, ErrNoAuthServID
	}
	r.AuthServID = id
	if c := p.peek(); c >= '0' && c <= '9' { // authres-version
		pos := p.i
		if v := p.token(stopKey); !allDigits(v) {
			p.i = pos // not a version: a resinfo missing its ';'
		}
	}
	r.Methods = p.results()
	return r, nil
}

// Verdict is what Check concludes about the From domain.
type Verdict int

const (
	// None: no usable statement by the trusted server (no field from it, "none", neutral,
	// temperror, a result for another domain, an ambiguous field, ...).
	None Verdict = iota
	// Pass: the trusted server authenticated the From domain (DMARC pass, or without a DMARC
	// result an aligned DKIM pass).
	Pass
	// Fail: the trusted server found the From domain failing DMARC.
	Fail
)

// String returns "none", "pass" or "fail".
func (v Verdict) String() string {
	switch v {
	case None:
		return "none"
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Check looks at the Authentication-Results header values of an email, adjacent fields in the
// order they appear (topmost first: the last hop adds its header at the top), and uses ONLY
// the run of trusted fields at the top: the topmost one whose authserv-id equals trustedID
// (ASCII case-insensitive) and those with that id that follow it directly (see the package
// documentation; CheckRuns takes the fields grouped by adjacency, as Email.Runs gives them).
// Headers from anyone else are ignored, and so is every field after the first one of another
// server (or without an authserv-id, see ErrNoAuthServID) that follows the run.
//
// Of the run's results, taken together, it returns:
//   - Fail when it has a dmarc=fail whose header.from is fromDomain, or a dmarc=fail without
//     header.from;
//   - otherwise Pass when it has dmarc results and every one of them is dmarc=pass with
//     header.from equal to fromDomain (ASCII case-insensitive; a trailing dot and a local
//     part "user@" are ignored on both sides). A dmarc result for another domain gives Fail:
//     the server judged a different From than the one being checked (several From fields, or
//     one that parsers read differently), so nothing proves this one;
//   - when it has no dmarc result at all, Pass when it has a dkim=pass whose header.d (or,
//     without header.d, the domain of header.i) is aligned in relaxed mode with fromDomain:
//     the same OrgDomain. A dmarc=none, temperror or permerror does not fall back to DKIM;
//   - None otherwise (no trusted header, "none", neutral, temperror, no header.from, ...).
//
// reason is a short sentence for staff, such as "dmarc=pass for infobits.example by
// mx.infobits.example" or "no Authentication-Results from mx.infobits.example"; the values
// quoted from the header are cut short and stripped of control characters.
func Check(values []string, trustedID, fromDomain string) (v Verdict, reason string) {
	v, r := Explain(values, trustedID, fromDomain)
	return v, r.String()
}

// Reason is why Explain gave its verdict, in parts, so that a notice can say it in its own
// language (seen in practice: a Dutch notice to staff carried an English sentence). Code says which
// sentence; the other fields fill it in, already cut short and stripped of control characters.
type Reason struct {
	Code   string // one of the Reason* codes
	Result string // the dmarc result named (ReasonDMARCNoFrom, ReasonDMARCOtherFrom, ReasonDMARCNotPass)
	Domain string // the From domain checked
	Other  string // the domain the server judged instead (ReasonDMARCOtherFrom), the DKIM signer (ReasonDKIM*)
	Server string // the authserv-id of the header used, or the trusted id when none was found
}

// The codes of a Reason.
const (
	ReasonNotConfigured   = "not_configured"     // no trusted authentication server configured
	ReasonNoFromDomain    = "no_from_domain"     // the From has no domain to check
	ReasonNoResults       = "no_results"         // no Authentication-Results from the trusted server
	ReasonDMARCFailNoFrom = "dmarc_fail_no_from" // dmarc=fail without header.from
	ReasonDMARCFail       = "dmarc_fail"         // dmarc=fail for the From domain
	ReasonDMARCNoFrom     = "dmarc_no_from"      // a dmarc result without header.from
	ReasonDMARCOtherFrom  = "dmarc_other_from"   // a dmarc result for another domain than the From's
	ReasonDMARCNotPass    = "dmarc_not_pass"     // dmarc=none, temperror, ... for the From domain
	ReasonDMARCPass       = "dmarc_pass"
	ReasonDKIMAligned     = "dkim_aligned"   // no dmarc result, an aligned dkim=pass
	ReasonDKIMUnaligned   = "dkim_unaligned" // no dmarc result, a dkim=pass of another domain
	ReasonNoMethods       = "no_methods"     // the trusted header has no results at all
	ReasonNoAligned       = "no_aligned"     // no dmarc result and no aligned dkim=pass
)

// String is the reason as a short English sentence for staff and logs, such as "dmarc=pass
// for infobits.example by mx.infobits.example".
func (r Reason) String() string {
	by := " by " + r.Server
	switch r.Code {
	case ReasonNotConfigured:
		return "no trusted authentication server configured"
	case ReasonNoFromDomain:
		return "no From domain to check against the Authentication-Results of " + r.Server
	case ReasonNoResults:
		return "no Authentication-Results from " + r.Server
	case ReasonDMARCFailNoFrom:
		return "dmarc=fail (no header.from)" + by
	case ReasonDMARCFail:
		return "dmarc=fail for " + r.Domain + by
	case ReasonDMARCNoFrom:
		return "dmarc=" + r.Result + " without header.from" + by
	case ReasonDMARCOtherFrom:
		return "dmarc=" + r.Result + " is for " + r.Other + ", not " + r.Domain + " (the server read another From)" + by
	case ReasonDMARCNotPass:
		return "dmarc=" + r.Result + " for " + r.Domain + by
	case ReasonDMARCPass:
		return "dmarc=pass for " + r.Domain + by
	case ReasonDKIMAligned:
		return "dkim=pass for " + r.Other + " (aligned with " + r.Domain + ")" + by + ", no dmarc result"
	case ReasonDKIMUnaligned:
		return "dkim=pass for " + r.Other + " is not aligned with " + r.Domain + by + ", no dmarc result"
	case ReasonNoMethods:
		return "no authentication results for " + r.Domain + by
	case ReasonNoAligned:
		return "no dmarc result and no aligned dkim=pass for " + r.Domain + by
	}
	return r.Code
}

// Explain is Check with the reason in parts (see Reason).
func Explain(values []string, trustedID, fromDomain string) (Verdict, Reason) {
	return ExplainRuns([][]string{values}, trustedID, fromDomain)
}

// CheckRuns is Check over an email's Authentication-Results values grouped into runs of
// adjacent fields, topmost first (parse's Email.Runs): the trusted run is the part of the
// first run holding a trusted field from that field down to the first field that is not one.
func CheckRuns(runs [][]string, trustedID, fromDomain string) (v Verdict, reason string) {
	v, r := ExplainRuns(runs, trustedID, fromDomain)
	return v, r.String()
}

// ExplainRuns is CheckRuns with the reason in parts (see Reason).
func ExplainRuns(runs [][]string, trustedID, fromDomain string) (Verdict, Reason) {
	// "Authentication-Results from anyone but the trusted server are ignored": the
	// configured id must match a field's id exactly as Parse reads it, so it is trimmed only of
	// the white space Parse skips (SP, HTAB, CR, LF). strings.TrimSpace, used before, also cut
	// \v, \f, U+0085 and U+00A0, which Parse keeps in a token: configured as "mx\v", the id
	// skipped the field "mx\v" and trusted a field "mx" further down (found by FuzzParse:
	// testdata/fuzz/FuzzParse/44476c4ab76628c9). An id with a control character names no
	// server: none is trusted.
	trustedID = strings.Trim(trustedID, " \t\r\n")
	if trustedID == "" || strings.ContainsFunc(trustedID, unicode.IsControl) {
		return None, Reason{Code: ReasonNotConfigured}
	}
	domain := normDomain(fromDomain)
	trusted := func(value string) (Result, bool) {
		r, err := Parse(value)
		return r, err == nil && asciiEqualFold(r.AuthServID, trustedID)
	}
	for _, run := range runs {
		for i, value := range run {
			r, ok := trusted(value)
			if !ok {
				continue
			}
			if domain == "" {
				return None, Reason{Code: ReasonNoFromDomain, Server: clean(r.AuthServID)}
			}
			// OpenDKIM and OpenDMARC write a field each; the DMARC verdict was in the
			// second one and went unread. The run's results count together.
			all := Result{AuthServID: r.AuthServID, Methods: slices.Clone(r.Methods)}
			for _, below := range run[i+1:] {
				rb, ok := trusted(below)
				if !ok {
					break
				}
				all.Methods = append(all.Methods, rb.Methods...)
			}
			return verdict(all, domain)
		}
	}
	return None, Reason{Code: ReasonNoResults, Server: clean(trustedID)}
}

// Topmost describes the topmost of an email's Authentication-Results values (in the order
// they appear): the field its last receiving server wrote, whose authserv-id is the one to
// configure as the trusted one. id is that authserv-id (cleaned of control characters, cut
// short; "" when the field has none, as Exchange Online writes them: ErrNoAuthServID), dmarc
// whether the field carries a DMARC result; found is false when there is no field at all.
// `helpdesk doctor` uses it to tell the operator which id their server writes.
func Topmost(values []string) (id string, dmarc, found bool) {
	if len(values) == 0 {
		return "", false, false
	}
	r, _ := Parse(values[0])
	for _, m := range r.Methods {
		if m.Name == "dmarc" {
			dmarc = true
		}
	}
	if r.AuthServID != "" {
		id = clean(r.AuthServID)
	}
	return id, dmarc, true
}

// SameID reports whether the configured trusted id names the authserv-id id, as Check
// compares them (ASCII case-insensitive, the configured one trimmed of SP, HTAB, CR, LF).
func SameID(trustedID, id string) bool {
	trustedID = strings.Trim(trustedID, " \t\r\n")
	return trustedID != "" && !strings.ContainsFunc(trustedID, unicode.IsControl) && asciiEqualFold(trustedID, id)
}

// verdict applies the rules of Check to the results r of the trusted run; domain is
// normalized.
func verdict(r Result, domain string) (Verdict, Reason) {
	why := func(code string) Reason {
		return Reason{Code: code, Domain: clean(domain), Server: clean(r.AuthServID)}
	}
	var dmarc []Method
	for _, m := range r.Methods {
		if m.Name == "dmarc" {
			dmarc = append(dmarc, m)
		}
	}
	if len(dmarc) > 0 {
		for _, m := range dmarc {
			if m.Result != "fail" {
				continue
			}
			switch hf := normDomain(m.Props["header.from"]); {
			case hf == "":
				return Fail, why(ReasonDMARCFailNoFrom)
			case hf == domain:
				return Fail, why(ReasonDMARCFail)
			}
		}
		for _, m := range dmarc {
			switch hf := normDomain(m.Props["header.from"]); {
			case hf == "":
				w := why(ReasonDMARCNoFrom)
				w.Result = clean(m.Result)
				return None, w
			case hf != domain:
				// The server judged another From than the one the gateway read: several From
				// fields, or one that parsers read differently ("<a@cust.nl@evil.example>",
				// an address in a comment). An attacker's way to borrow a customer's name
				// with a pass for their own domain: not a proof for this From.
				w := why(ReasonDMARCOtherFrom)
				w.Result, w.Other = clean(m.Result), clean(hf)
				return Fail, w
			case m.Result != "pass":
				w := why(ReasonDMARCNotPass)
				w.Result = clean(m.Result)
				return None, w
			}
		}
		return Pass, why(ReasonDMARCPass)
	}

	var unaligned string
	for _, m := range r.Methods {
		if m.Name != "dkim" || m.Result != "pass" {
			continue
		}
		d := normDomain(m.Props["header.d"])
		if d == "" {
			d = normDomain(m.Props["header.i"])
		}
		if d != "" && OrgDomain(d) == OrgDomain(domain) {
			w := why(ReasonDKIMAligned)
			w.Other = clean(d)
			return Pass, w
		}
		if unaligned == "" {
			unaligned = d
		}
	}
	switch {
	case unaligned != "":
		w := why(ReasonDKIMUnaligned)
		w.Other = clean(unaligned)
		return None, w
	case len(r.Methods) == 0:
		return None, why(ReasonNoMethods)
	}
	return None, why(ReasonNoAligned)
}

// OrgDomain returns the organizational domain (RFC 7489 section 3.2) of domain, lower case
// and without a trailing dot, as used for relaxed alignment.
//
// Simplification: without the Public Suffix List it is the last two labels, or the last three
// when the last label is a two-letter country code and the second-to-last one a common
// second-level registry label (ac, co, com, edu, go, gob, gov, ltd, mil, ne, net, nhs, nom, or,
// org, plc, sch): mail.example.com -> example.com, www.example.co.uk -> example.co.uk. Where
// the list is wrong in the other direction — multi-tenant suffixes such as github.io, or
// country registries with other second-level labels — two different organizations get the
// same OrgDomain (a.github.io and b.github.io both give github.io) and are wrongly aligned.
// Check uses OrgDomain only for its DKIM fallback; a DMARC result is matched exactly.
func OrgDomain(domain string) string {
	d := helpdesk.ASCIILower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	labels := strings.Split(d, ".")
	n := len(labels)
	if n <= 2 {
		return d
	}
	keep := 2
	if tld := labels[n-1]; len(tld) == 2 && isAlpha(tld[0]) && isAlpha(tld[1]) && secondLevel[labels[n-2]] {
		keep = 3
	}
	return strings.Join(labels[n-keep:], ".")
}

// secondLevel are the registry labels below a two-letter country TLD that OrgDomain knows.
var secondLevel = map[string]bool{
	"ac": true, "co": true, "com": true, "edu": true, "go": true, "gob": true, "gov": true,
	"ltd": true, "mil": true, "ne": true, "net": true, "nhs": true, "nom": true, "or": true,
	"org": true, "plc": true, "sch": true,
}

// parser is a cursor over one header value.
type parser struct {
	s string
	i int
}

// Stop sets for token: which bytes end a word.
const (
	stopKey    = " \t\r\n();=\""  // a keyword, property name, result or authserv-id
	stopMethod = " \t\r\n();=\"/" // a method name, before its optional "/version"
	stopValue  = " \t\r\n();\""   // a value: '=' and '@' are part of it
)

func (p *parser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// skipCFWS skips white space (CR and LF included), comments and stray ')'.
func (p *parser) skipCFWS() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n', ')':
			p.i++
		case '(':
			p.skipComment()
		default:
			return
		}
	}
}

// skipComment skips a comment starting at '(', nested comments and quoted-pairs included.
// An unclosed comment runs to the end of the value.
func (p *parser) skipComment() {
	depth := 0
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '\\':
			if p.i < len(p.s) {
				p.i++
			}
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return
			}
		}
	}
}

// token reads bytes up to one of stop (or the end).
func (p *parser) token(stop string) string {
	start := p.i
	for p.i < len(p.s) && strings.IndexByte(stop, p.s[p.i]) < 0 {
		p.i++
	}
	return p.s[start:p.i]
}

// quoted reads a quoted-string starting at '"' and returns its content: quoted-pairs
// resolved, CR and LF (folding) dropped. An unclosed quoted-string runs to the end.
func (p *parser) quoted() string {
	p.i++ // '"'
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String()
		case '\\':
			if p.i < len(p.s) {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		case '\r', '\n':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// value reads a property or reason value: tokens and quoted-strings written together
// (`"john doe"@example.com`), up to white space, a comment or ';'.
func (p *parser) value() string {
	var b strings.Builder
	for p.i < len(p.s) {
		if p.s[p.i] == '"' {
			b.WriteString(p.quoted())
			continue
		}
		t := p.token(stopValue)
		if t == "" {
			break
		}
		b.WriteString(t)
	}
	return b.String()
}

// skipToSemicolon skips a malformed resinfo up to the next ';' outside comments and
// quoted-strings.
func (p *parser) skipToSemicolon() {
	for {
		p.skipCFWS()
		switch p.peek() {
		case 0:
			if p.i >= len(p.s) {
				return
			}
			p.i++
		case ';':
			return
		case '"':
			p.quoted()
		default:
			p.i++
		}
	}
}

// results reads the resinfos (or the no-result "none") up to the end of the value.
func (p *parser) results() []Method {
	var ms []Method
	for {
		p.skipCFWS()
		switch p.peek() {
		case ';':
			p.i++
			continue
		case 0:
			if p.i >= len(p.s) {
				return ms
			}
		}
		pos := p.i
		if w := p.token(stopMethod); asciiEqualFold(w, "none") {
			p.skipCFWS()
			if p.i >= len(p.s) || p.peek() == ';' {
				continue // no-result
			}
		}
		p.i = pos
		if m, ok := p.resinfo(); ok {
			ms = append(ms, m)
		}
	}
}

// resinfo reads one "method[/version] = result [reason=...] *propspec"; p is at the method
// name, not at the end nor at ';'. On a malformed resinfo it skips to the next ';' and
// returns false.
func (p *parser) resinfo() (Method, bool) {
	name := p.token(stopMethod)
	p.skipCFWS()
	if p.peek() == '/' { // method-version
		p.i++
		p.skipCFWS()
		p.token(stopKey)
		p.skipCFWS()
	}
	if name == "" || p.peek() != '=' {
		p.skipToSemicolon()
		return Method{}, false
	}
	p.i++ // '='
	p.skipCFWS()
	m := Method{Name: helpdesk.ASCIILower(name), Result: helpdesk.ASCIILower(p.token(stopKey)), Props: map[string]string{}}
	for {
		p.skipCFWS()
		switch p.peek() {
		case ';':
			return m, true
		case 0:
			if p.i >= len(p.s) {
				return m, true
			}
		case '"': // a stray quoted-string
			p.quoted()
			continue
		}
		key := helpdesk.ASCIILower(p.token(stopKey))
		p.skipCFWS()
		if p.peek() != '=' {
			if key == "" { // a stray byte that is no key ("/", NUL, ...)
				p.i++
			}
			continue // a stray word
		}
		p.i++ // '='
		p.skipCFWS()
		val := p.value()
		switch {
		case key == "":
			// "=value" without a name: dropped
		case key == "reason":
			if m.Reason == "" {
				m.Reason = val
			}
		default:
			if _, dup := m.Props[key]; !dup {
				m.Props[key] = val
			}
		}
	}
}

// normDomain reduces a header.from, header.d, header.i or From domain to a comparable
// domain: the part after the last '@', without white space and trailing dot, lower case, an
// internationalized name in its A-label form. Servers write header.from either way
// (OpenDMARC "xn--bckerij-5wa.nl", others "bäckerij.nl"), and the From the gateway reads may
// be either too: without this a staff member or customer at an IDN domain would be held for a
// "pass for another domain". The conversion uses the IDNA registration profile, which maps
// nothing: a name that is not already a valid U-label once its ASCII letters are lowered (one
// written with U+212A KELVIN SIGN for "k", or with a non-ASCII capital) stays as written and
// so equals no real domain.
func normDomain(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	// ASCII letters are lowered first (DNS is case-insensitive in ASCII: "Bäckerij.nl" is
	// "bäckerij.nl"); only then is a non-ASCII name converted, so the profile refuses just
	// what needs Unicode mapping.
	s = helpdesk.ASCIILower(strings.TrimSuffix(s, "."))
	if !isASCII(s) {
		if a, err := idna.Registration.ToASCII(s); err == nil {
			s = helpdesk.ASCIILower(a)
		}
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// asciiEqualFold reports whether a and b are equal under ASCII case folding only.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// clean makes header text safe for a staff-facing sentence: at most 80 characters, control
// and invalid characters replaced by '?'.
func clean(s string) string {
	const max = 80
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
