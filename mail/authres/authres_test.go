package authres

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/internal/growth"
)

// Real-world shaped header values (domains and signatures anonymized).
const (
	gmail = `mx.google.com; dkim=pass header.i=@example.com header.s=20230601 header.b=abc; ` +
		`spf=pass (google.com: domain of x@example.com designates 1.2.3.4 as permitted sender) smtp.mailfrom=x@example.com; ` +
		`dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com`
	microsoft = `spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=example.com; dkim=pass (signature was verified) ` +
		`header.d=example.com;dmarc=pass action=none header.from=example.com;compauth=pass reason=100`
	opendkim = `mx.infobits.example; dkim=pass (2048-bit key; unprotected) header.d=infobits.example ` +
		`header.i=@infobits.example header.a=rsa-sha256 header.s=mail header.b=Xy12; dkim-atps=neutral`
	opendmarcFail = `mx.infobits.example; dmarc=fail (p=reject dis=none) header.from=infobits.example`
	opendmarcPass = `mx.infobits.example; dmarc=pass (p=reject dis=none) header.from=infobits.example`
	rspamdPass    = `mx.infobits.example; dkim=pass header.d=example.com header.s=dkim header.b=Ab1cD2eF; arc=none; ` +
		`spf=pass (mx.infobits.example: domain of "bounce@example.com" designates 192.0.2.1 as permitted sender) smtp.mailfrom=bounce@example.com; ` +
		`dmarc=pass (policy=reject) header.from=example.com`
	rspamdFail = `mx.infobits.example; dkim=none; spf=fail (mx.infobits.example: domain of evil@infobits.example does not designate ` +
		`198.51.100.7 as permitted sender) smtp.mailfrom=evil@infobits.example; ` +
		`dmarc=fail reason="No valid SPF, No valid DKIM" header.from=infobits.example (policy=reject)`
	folded = "mx.infobits.example;\r\n\tdkim=pass (1024-bit key)\r\n header.d=mail.infobits.example\r\n  header.s=s1;\r\n" +
		" spf=softfail\r\n\t(transitioning)\r\n smtp.mailfrom=infobits.example"
)

func props(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Result
		wantErr error
	}{
		{"gmail", gmail, Result{"mx.google.com", []Method{
			{"dkim", "pass", "", props("header.i", "@example.com", "header.s", "20230601", "header.b", "abc")},
			{"spf", "pass", "", props("smtp.mailfrom", "x@example.com")},
			{"dmarc", "pass", "", props("header.from", "example.com")},
		}}, nil},
		{"microsoft 365 writes no authserv-id", microsoft, Result{"", []Method{
			{"spf", "pass", "", props("smtp.mailfrom", "example.com")},
			{"dkim", "pass", "", props("header.d", "example.com")},
			{"dmarc", "pass", "", props("action", "none", "header.from", "example.com")},
			{"compauth", "pass", "100", props()},
		}}, ErrNoAuthServID},
		{"opendkim, ';' in a comment", opendkim, Result{"mx.infobits.example", []Method{
			{"dkim", "pass", "", props("header.d", "infobits.example", "header.i", "@infobits.example",
				"header.a", "rsa-sha256", "header.s", "mail", "header.b", "Xy12")},
			{"dkim-atps", "neutral", "", props()},
		}}, nil},
		{"opendmarc", opendmarcFail, Result{"mx.infobits.example", []Method{
			{"dmarc", "fail", "", props("header.from", "infobits.example")},
		}}, nil},
		{"rspamd pass", rspamdPass, Result{"mx.infobits.example", []Method{
			{"dkim", "pass", "", props("header.d", "example.com", "header.s", "dkim", "header.b", "Ab1cD2eF")},
			{"arc", "none", "", props()},
			{"spf", "pass", "", props("smtp.mailfrom", "bounce@example.com")},
			{"dmarc", "pass", "", props("header.from", "example.com")},
		}}, nil},
		{"rspamd fail, quoted reason with ',' and a trailing comment", rspamdFail, Result{"mx.infobits.example", []Method{
			{"dkim", "none", "", props()},
			{"spf", "fail", "", props("smtp.mailfrom", "evil@infobits.example")},
			{"dmarc", "fail", "No valid SPF, No valid DKIM", props("header.from", "infobits.example")},
		}}, nil},
		{"folded with CRLF", folded, Result{"mx.infobits.example", []Method{
			{"dkim", "pass", "", props("header.d", "mail.infobits.example", "header.s", "s1")},
			{"spf", "softfail", "", props("smtp.mailfrom", "infobits.example")},
		}}, nil},
		{"unfolded by the mail parser", strings.Join(strings.Fields(folded), " "), Result{"mx.infobits.example", []Method{
			{"dkim", "pass", "", props("header.d", "mail.infobits.example", "header.s", "s1")},
			{"spf", "softfail", "", props("smtp.mailfrom", "infobits.example")},
		}}, nil},
		{"quoted id, version, values, local part", `"mx.infobits.example" 1; dmarc=pass reason="quoted \"x\" \\ y" ` +
			`header.from="infobits.example"; spf=pass smtp.mailfrom="john \"jd\" doe"@infobits.example`,
			Result{"mx.infobits.example", []Method{
				{"dmarc", "pass", `quoted "x" \ y`, props("header.from", "infobits.example")},
				{"spf", "pass", "", props("smtp.mailfrom", `john "jd" doe@infobits.example`)},
			}}, nil},
		{"quoted value folded", "mx.example.com; auth=pass reason=\"long\r\n reason\" smtp.auth=me", Result{"mx.example.com", []Method{
			{"auth", "pass", "long reason", props("smtp.auth", "me")},
		}}, nil},
		{"comments everywhere", `(c0) mx.example.com (c1) 1 (c2) ; (c3) dmarc (c4) = (c5) pass (p=reject dis=none) header.from (c6) = (c7) infobits.example (c8)`,
			Result{"mx.example.com", []Method{{"dmarc", "pass", "", props("header.from", "infobits.example")}}}, nil},
		{"nested comment with escapes", `mx.example.com; dmarc=pass (a (b \) c) d\() header.from=infobits.example`,
			Result{"mx.example.com", []Method{{"dmarc", "pass", "", props("header.from", "infobits.example")}}}, nil},
		{"case-insensitive names, values as written", `MX.Example.COM; DMARC=PASS Header.From=Example.COM; DKIM=Pass REASON=Ok HEADER.D=Example.COM`,
			Result{"MX.Example.COM", []Method{
				{"dmarc", "pass", "", props("header.from", "Example.COM")},
				{"dkim", "pass", "Ok", props("header.d", "Example.COM")},
			}}, nil},
		{"method versions", `mx.example.com; dkim/1 = pass header.d=example.com; spf / 2 =fail smtp.mailfrom=example.com`,
			Result{"mx.example.com", []Method{
				{"dkim", "pass", "", props("header.d", "example.com")},
				{"spf", "fail", "", props("smtp.mailfrom", "example.com")},
			}}, nil},
		{"base64 with '=' and '/' in a value, ';' without space", `mx.example.com; dkim=pass header.b=ab/+cd== header.d=example.com;spf=none`,
			Result{"mx.example.com", []Method{
				{"dkim", "pass", "", props("header.b", "ab/+cd==", "header.d", "example.com")},
				{"spf", "none", "", props()},
			}}, nil},
		{"no-result", "mx.example.com; none", Result{"mx.example.com", nil}, nil},
		{"no-result with version and trailing ';'", "mx.example.com 1; NONE ;", Result{"mx.example.com", nil}, nil},
		{"no-result without ';'", "mx.example.com none", Result{"mx.example.com", nil}, nil},
		{"authserv-id only", "  mx.example.com  ", Result{"mx.example.com", nil}, nil},
		{"missing ';' before the first resinfo", "mx.example.com dmarc=pass header.from=example.com",
			Result{"mx.example.com", []Method{{"dmarc", "pass", "", props("header.from", "example.com")}}}, nil},
		{"digits that are no version", "mx.example.com 1x; spf=pass",
			Result{"mx.example.com", []Method{{"spf", "pass", "", props()}}}, nil},
		{"repeated property keeps the first", "mx.example.com; dmarc=pass header.from=a.example header.from=b.example",
			Result{"mx.example.com", []Method{{"dmarc", "pass", "", props("header.from", "a.example")}}}, nil},

		// Hostile and broken input.
		{"empty", "", Result{}, ErrNoAuthServID},
		{"white space and comment only", " \r\n\t(just a comment) ", Result{}, ErrNoAuthServID},
		{"leading ';'", "; dmarc=pass header.from=example.com",
			Result{"", []Method{{"dmarc", "pass", "", props("header.from", "example.com")}}}, ErrNoAuthServID},
		{"missing '=' skips that resinfo", "mx.example.com; dmarc pass header.from=example.com; spf=pass",
			Result{"mx.example.com", []Method{{"spf", "pass", "", props()}}}, nil},
		{"missing method name", "mx.example.com; =pass header.from=example.com; spf=pass",
			Result{"mx.example.com", []Method{{"spf", "pass", "", props()}}}, nil},
		{"unclosed comment hides the rest", "mx.example.com; dmarc=pass (p=reject header.from=example.com; spf=pass",
			Result{"mx.example.com", []Method{{"dmarc", "pass", "", props()}}}, nil},
		{"stray ')' ignored", "mx.example.com; dmarc=pass ) header.from=example.com)",
			Result{"mx.example.com", []Method{{"dmarc", "pass", "", props("header.from", "example.com")}}}, nil},
		{"unclosed quoted string", `mx.example.com; dmarc=pass header.from="example.com; spf=pass`,
			Result{"mx.example.com", []Method{{"dmarc", "pass", "", props("header.from", "example.com; spf=pass")}}}, nil},
		{"stray words and quoted strings among properties", `mx.example.com; dkim=pass junk "q;" / header.d=example.com =x`,
			Result{"mx.example.com", []Method{{"dkim", "pass", "", props("header.d", "example.com")}}}, nil},
		{"property without value", "mx.example.com; dmarc=pass header.from=;spf",
			Result{"mx.example.com", []Method{{"dmarc", "pass", "", props("header.from", "")}}}, nil},
		{"result missing", "mx.example.com; dkim= ; spf=pass",
			Result{"mx.example.com", []Method{{"dkim", "", "", props()}, {"spf", "pass", "", props()}}}, nil},
		{"trailing backslashes", `mx.example.com; dkim=pass (x\`,
			Result{"mx.example.com", []Method{{"dkim", "pass", "", props()}}}, nil},
		{"trailing backslash in quotes", `mx.example.com; dkim=pass reason="x\`,
			Result{"mx.example.com", []Method{{"dkim", "pass", "x", props()}}}, nil},
		{"NUL bytes", "mx.example.com;\x00dkim=pass\x00 header.d=a\x00",
			Result{"mx.example.com", []Method{{"\x00dkim", "pass\x00", "", props("header.d", "a\x00")}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
		})
	}
}

// hostileSizes are Authentication-Results values of about n bytes built to hurt a parser:
// huge, deeply nested, unbalanced.
func hostileSizes(n int) map[string]string {
	return map[string]string{
		"long value":    "mx.example.com; dmarc=pass header.from=" + strings.Repeat("a", n),
		"long id":       strings.Repeat("m", n) + "; spf=pass",
		"many ';'":      "mx.example.com" + strings.Repeat(";", n),
		"many resinfos": "mx.example.com" + strings.Repeat("; spf=pass", n/10),
		"many props":    "mx.example.com; dkim=pass" + strings.Repeat(" header.d=x", n/11),
		"deep comments": "mx.example.com; dkim=pass " + strings.Repeat("(", n) + strings.Repeat(")", n),
		"unclosed '('":  "mx.example.com; dkim=pass " + strings.Repeat("(", n),
		"many ')'":      "mx.example.com; dkim=pass " + strings.Repeat(")", n),
		"many '\"'":     "mx.example.com; dkim=pass " + strings.Repeat(`"`, n),
		"many '='":      "mx.example.com; dkim=pass " + strings.Repeat("=", n),
		"missing '='":   "mx.example.com" + strings.Repeat("; dkim pass", n/11),
		"many slashes":  "mx.example.com; dkim" + strings.Repeat("/", n),
		"many escapes":  `mx.example.com; dkim=pass reason="` + strings.Repeat(`\"`, n/2),
		"many none":     "mx.example.com" + strings.Repeat("; none", n/6),
		"many words":    "mx.example.com; dkim=pass" + strings.Repeat(" x", n/2),
		"binary garbage": string(func() []byte {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i * 7)
			}
			return b
		}()),
	}
}

// TestParseHostileSizes checks that huge and deeply nested values neither panic nor cost
// more than linear time: a 1 MiB value parses, and each kind costs (CPU time and bytes
// allocated, not wall time) about 16 times more at 16 times the size — a quadratic parser
// would cost 256 times more. No time limit: a busy machine must not fail it.
func TestParseHostileSizes(t *testing.T) {
	for name, in := range hostileSizes(1 << 20) {
		t.Run(name, func(t *testing.T) {
			r, err := Parse(in)
			Check([]string{in, in}, "mx.example.com", "example.com")
			if err == nil && r.AuthServID == "" {
				t.Error("no error, but no authserv-id")
			}
			growth.Linear(t, 8<<10, func(n int) string { return hostileSizes(n)[name] }, func(in string) {
				_, _ = Parse(in)
				Check([]string{in, in}, "mx.example.com", "example.com")
			})
		})
	}
}

func TestCheck(t *testing.T) {
	const (
		trusted = "mx.infobits.example"
		staff   = "infobits.example"
	)
	forgedPass := "mx.infobits.example; dmarc=pass header.from=infobits.example"
	tests := []struct {
		name    string
		values  []string
		trusted string
		from    string
		want    Verdict
		reason  string // a substring of the reason
	}{
		{"opendmarc pass", []string{opendmarcPass}, trusted, staff, Pass, "dmarc=pass for infobits.example by mx.infobits.example"},
		{"opendmarc fail", []string{opendmarcFail}, trusted, staff, Fail, "dmarc=fail for infobits.example by mx.infobits.example"},
		{"no header at all", nil, trusted, staff, None, "no Authentication-Results from mx.infobits.example"},
		{"no trusted id configured", []string{forgedPass}, "", staff, None, "no trusted authentication server configured"},
		{"no From domain", []string{opendmarcPass}, trusted, "", None, "no From domain"},

		// The values are adjacent fields: the run of trusted fields at the top counts, a fail
		// in any of them wins, and a pass needs every dmarc result of the run to pass (more in
		// TestCheckRuns).
		{"forged pass below the real fail", []string{opendmarcFail, forgedPass}, trusted, staff, Fail, "dmarc=fail"},
		{"forged pass below a real temperror", []string{"mx.infobits.example; dmarc=temperror header.from=infobits.example", forgedPass},
			trusted, staff, None, "dmarc=temperror for infobits.example"},
		{"forged pass below a real dmarc=none", []string{"mx.infobits.example; dmarc=none header.from=infobits.example", forgedPass},
			trusted, staff, None, "dmarc=none for infobits.example"},
		{"later internal hops above are ignored", []string{"internal.infobits.example; dmarc=fail header.from=infobits.example", microsoft, opendmarcPass},
			trusted, staff, Pass, "dmarc=pass"},
		{"other server's pass does not count", []string{"mx.attacker.example; dmarc=pass header.from=infobits.example"}, trusted, staff,
			None, "no Authentication-Results from mx.infobits.example"},
		{"other server's pass above the real fail", []string{"mx.attacker.example; dmarc=pass header.from=infobits.example", opendmarcFail},
			trusted, staff, Fail, "dmarc=fail"},
		{"look-alike id", []string{"mx.infobits.example.attacker.example; dmarc=pass header.from=infobits.example"}, trusted, staff, None, "no Authentication-Results"},
		{"Kelvin sign is no k", []string{"mx.infobits.exampl\u212a; dmarc=pass header.from=infobits.example"}, "mx.infobits.examplk", staff, None, "no Authentication-Results"},
		{"id case-insensitive", []string{"MX.InfoBits.Example; dmarc=pass header.from=infobits.example"}, "mx.infobits.EXAMPLE", staff, Pass, "dmarc=pass"},
		{"quoted id", []string{`"mx.infobits.example"; dmarc=pass header.from=infobits.example`}, trusted, staff, Pass, "dmarc=pass"},
		{"microsoft without id is never trusted", []string{microsoft}, "", "example.com", None, "no trusted"},

		// The pass must be for the From domain being checked.
		// A result for another domain: the server read another From than the gateway did (an
		// ambiguous From an attacker can use to borrow a customer's name): no proof, a fail.
		{"pass for another domain", []string{"mx.infobits.example; dmarc=pass header.from=attacker.example"}, trusted, staff,
			Fail, "dmarc=pass is for attacker.example, not infobits.example (the server read another From) by mx.infobits.example"},
		{"pass for a subdomain is no pass", []string{"mx.infobits.example; dmarc=pass header.from=mail.infobits.example"}, trusted, staff, Fail, "is for"},
		{"pass without header.from", []string{"mx.infobits.example; dmarc=pass"}, trusted, staff, None, "without header.from"},
		{"pass and a second conflicting dmarc pass", []string{"mx.infobits.example; dmarc=pass header.from=infobits.example; dmarc=pass header.from=attacker.example"},
			trusted, staff, Fail, "is for attacker.example"},
		{"injected pass before the real fail", []string{"mx.infobits.example; dmarc=pass header.from=infobits.example; dmarc=fail header.from=infobits.example"},
			trusted, staff, Fail, "dmarc=fail"},
		{"fail for another domain", []string{"mx.infobits.example; dmarc=fail header.from=attacker.example"}, trusted, staff,
			Fail, "dmarc=fail is for attacker.example"},
		{"fail without header.from", []string{"mx.infobits.example; dmarc=fail (p=reject)"}, trusted, staff, Fail, "dmarc=fail (no header.from)"},
		{"comments in dmarc", []string{"mx.infobits.example; dmarc=pass (p=reject dis=none) header.from=infobits.example"}, trusted, staff, Pass, "dmarc=pass"},
		{"case-insensitive method, result, property, domain", []string{"mx.infobits.example; DMARC=Pass HEADER.FROM=InfoBits.Example."}, trusted, "INFOBITS.example", Pass, "dmarc=pass for infobits.example"},
		{"From given as address", []string{opendmarcPass}, trusted, "jan@infobits.example", Pass, "dmarc=pass"},
		{"dmarc none", []string{"mx.infobits.example; dkim=pass header.d=infobits.example; dmarc=none header.from=infobits.example"},
			trusted, staff, None, "dmarc=none for infobits.example"},
		{"dmarc neutral", []string{"mx.infobits.example; dmarc=neutral header.from=infobits.example"}, trusted, staff, None, "dmarc=neutral"},
		{"dmarc permerror", []string{"mx.infobits.example; dmarc=permerror header.from=infobits.example"}, trusted, staff, None, "dmarc=permerror"},
		{"no-result", []string{"mx.infobits.example; none"}, trusted, staff, None, "no authentication results for infobits.example by mx.infobits.example"},
		{"dmarc without '=' is no dmarc", []string{"mx.infobits.example; dmarc pass header.from=infobits.example"}, trusted, staff, None, "no authentication results"},
		{"unclosed comment hides header.from", []string{"mx.infobits.example; dmarc=pass (p=reject header.from=infobits.example"}, trusted, staff, None, "without header.from"},

		// Internationalized domains: the A-label and the U-label are the same domain, either way
		// round; a look-alike that only becomes the domain through Unicode mapping is not.
		{"IDN: A-label header.from, Unicode From", []string{"mx.infobits.example; dmarc=pass header.from=xn--bckerij-5wa.nl"}, trusted, "jan@bäckerij.nl", Pass, "dmarc=pass for xn--bckerij-5wa.nl"},
		{"IDN: Unicode header.from, A-label From", []string{"mx.infobits.example; dmarc=pass header.from=bäckerij.nl"}, trusted, "XN--BCKERIJ-5WA.NL", Pass, "dmarc=pass"},
		{"IDN: dkim aligned across forms", []string{"mx.infobits.example; dkim=pass header.d=mail.bäckerij.nl"}, trusted, "xn--bckerij-5wa.nl", Pass, "aligned"},
		{"IDN: ASCII capitals in a U-label From", []string{"mx.infobits.example; dmarc=pass header.from=xn--bckerij-5wa.nl"}, trusted, "jan@Bäckerij.NL", Pass, "dmarc=pass"},
		{"IDN: Kelvin sign is not mapped to k", []string{"mx.infobits.example; dmarc=pass header.from=kassa.nl"}, trusted, "\u212aassa.nl", Fail, "is for kassa.nl"},
		{"IDN: upper-case U-label is not mapped", []string{"mx.infobits.example; dmarc=pass header.from=xn--bckerij-5wa.nl"}, trusted, "BÄCKERIJ.nl", Fail, "is for xn--bckerij-5wa.nl"},

		// DKIM fallback, only without a dmarc result.
		{"opendkim aligned", []string{opendkim}, trusted, staff, Pass, "dkim=pass for infobits.example (aligned with infobits.example) by mx.infobits.example, no dmarc result"},
		{"dkim subdomain aligns relaxed", []string{"mx.infobits.example; dkim=pass header.d=mail.infobits.example"}, trusted, staff, Pass, "aligned"},
		{"dkim From subdomain aligns relaxed", []string{"mx.infobits.example; dkim=pass header.d=infobits.example"}, trusted, "support.infobits.example", Pass, "aligned"},
		{"dkim suffix trick does not align", []string{"mx.infobits.example; dkim=pass header.d=infobits.example.evil.com"}, trusted, staff,
			None, "dkim=pass for infobits.example.evil.com is not aligned with infobits.example"},
		{"dkim prefix trick does not align", []string{"mx.infobits.example; dkim=pass header.d=evilinfobits.example"}, trusted, staff, None, "not aligned"},
		{"dkim fail", []string{"mx.infobits.example; dkim=fail header.d=infobits.example"}, trusted, staff, None, "no dmarc result and no aligned dkim=pass"},
		{"dkim header.i without header.d (gmail style)", []string{"mx.infobits.example; dkim=pass header.i=@mail.infobits.example header.s=x"}, trusted, staff, Pass, "aligned"},
		{"dkim second signature aligned", []string{"mx.infobits.example; dkim=pass header.d=esp.example; dkim=pass header.d=infobits.example"}, trusted, staff, Pass, "aligned"},
		{"dkim co.uk", []string{"mx.infobits.example; dkim=pass header.d=mail.shop.co.uk"}, trusted, "shop.co.uk", Pass, "aligned"},
		{"dkim other co.uk", []string{"mx.infobits.example; dkim=pass header.d=evil.co.uk"}, trusted, "shop.co.uk", None, "not aligned"},
		{"dkim without domain", []string{"mx.infobits.example; dkim=pass header.s=x"}, trusted, staff, None, "no dmarc result and no aligned dkim=pass"},

		// Real servers' fields.
		{"gmail for its From domain", []string{gmail}, "mx.google.com", "example.com", Pass, "dmarc=pass for example.com by mx.google.com"},
		{"gmail, other From domain", []string{gmail}, "mx.google.com", "infobits.example", Fail, "is for example.com"},
		{"rspamd pass", []string{rspamdPass}, trusted, "example.com", Pass, "dmarc=pass"},
		{"rspamd fail", []string{rspamdFail}, trusted, staff, Fail, "dmarc=fail for infobits.example"},
		{"folded dkim", []string{folded}, trusted, staff, Pass, "dkim=pass for mail.infobits.example"},

		// Staff-facing reasons are cleaned.
		{"control characters in reason", []string{"mx.infobits.example; dmarc=pass header.from=\"evil\r\n\x1b[31m.example\""}, trusted, staff, Fail, "is for evil?[31m.example"},
		{"long value in reason", []string{"mx.infobits.example; dmarc=pass header.from=" + strings.Repeat("a", 500)}, trusted, staff, Fail, strings.Repeat("a", 80) + "…, not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := Check(tt.values, tt.trusted, tt.from)
			if got != tt.want || !strings.Contains(reason, tt.reason) {
				t.Errorf("Check = %v, %q; want %v, %q", got, reason, tt.want, tt.reason)
			}
		})
	}
}

// TestCheckRuns: "Servers that write one Authentication-Results field per check
// (OpenDKIM and OpenDMARC both use the server's authserv-id) put the DMARC verdict in the
// second field; only the topmost trusted field was read ... Read the contiguous run of trusted
// fields at the top of the header; a fail for the From domain in any of them wins over a
// pass." Runs are groups of adjacent fields (parse's Email.Runs): a field separated from
// the trusted run by another field (an earlier hop's Received) or by another server's field
// came with the message and never counts.
func TestCheckRuns(t *testing.T) {
	const (
		trusted  = "mx.infobits.example"
		staff    = "infobits.example"
		customer = "bakkerijdevries.nl"
	)
	dkimNone := "mx.infobits.example; dkim=none (message not signed) header.d=bakkerijdevries.nl"
	dkimCustomer := "mx.infobits.example; dkim=pass (2048-bit key) header.d=bakkerijdevries.nl header.s=mail"
	dmarcFailCustomer := "mx.infobits.example; dmarc=fail (p=reject dis=none) header.from=bakkerijdevries.nl"
	dmarcPassCustomer := "mx.infobits.example; dmarc=pass (p=reject dis=none) header.from=bakkerijdevries.nl"
	spfOther := "mx.infobits.example; spf=pass smtp.mailfrom=evil.example"
	forgedPass := "mx.infobits.example; dkim=pass header.d=bakkerijdevries.nl; dmarc=pass header.from=bakkerijdevries.nl"
	foreign := "mx.evil.example; dmarc=fail header.from=bakkerijdevries.nl"
	tests := []struct {
		name   string
		runs   [][]string
		from   string
		want   Verdict
		reason string
	}{
		// The attack seen in practice: the verdict in the second field.
		{"dmarc fail in the second field", [][]string{{dkimNone, dmarcFailCustomer}}, customer, Fail, "dmarc=fail for bakkerijdevries.nl"},
		{"dmarc fail in the third field", [][]string{{spfOther, dkimNone, dmarcFailCustomer}}, customer, Fail, "dmarc=fail"},
		{"dmarc fail above an aligned dkim pass", [][]string{{dmarcFailCustomer, dkimCustomer}}, customer, Fail, "dmarc=fail"},
		{"fail below the pass wins", [][]string{{dmarcPassCustomer, dmarcFailCustomer}}, customer, Fail, "dmarc=fail"},
		// The legitimate forms.
		{"dmarc pass in the second field", [][]string{{dkimCustomer, dmarcPassCustomer}}, customer, Pass, "dmarc=pass for bakkerijdevries.nl"},
		{"dmarc pass in the second field, no dkim", [][]string{{dkimNone, dmarcPassCustomer}}, customer, Pass, "dmarc=pass"},
		{"aligned dkim in the second field, no dmarc", [][]string{{spfOther, dkimCustomer}}, customer, Pass, "aligned"},
		{"the run starts at the first trusted field", [][]string{{foreign, dkimNone, dmarcPassCustomer}}, customer, Pass, "dmarc=pass"},
		{"trusted run in a later group", [][]string{{"internal.infobits.example; dmarc=fail header.from=bakkerijdevries.nl"}, {dkimNone, dmarcPassCustomer}}, customer, Pass, "dmarc=pass"},
		// What lies below the run does not count.
		{"a forged pass in another group", [][]string{{dkimNone, dmarcFailCustomer}, {forgedPass}}, customer, Fail, "dmarc=fail"},
		{"a forged pass below a real none, in another group", [][]string{{"mx.infobits.example; none"}, {forgedPass}}, customer, None, "no authentication results"},
		{"a forged pass below a real field without dmarc, in another group", [][]string{{spfOther}, {forgedPass}}, customer, None, "no dmarc result"},
		{"another server's field ends the run", [][]string{{dmarcPassCustomer, foreign, dmarcFailCustomer}}, customer, Pass, "dmarc=pass"},
		{"a field without authserv-id ends the run", [][]string{{dmarcPassCustomer, microsoft, dmarcFailCustomer}}, customer, Pass, "dmarc=pass"},
		{"only another server's fields", [][]string{{foreign}, {foreign}}, customer, None, "no Authentication-Results from mx.infobits.example"},
		{"nothing", nil, staff, None, "no Authentication-Results"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := CheckRuns(tt.runs, trusted, tt.from)
			if got != tt.want || !strings.Contains(reason, tt.reason) {
				t.Errorf("CheckRuns = %v, %q; want %v, %q", got, reason, tt.want, tt.reason)
			}
		})
	}
}

func TestOrgDomain(t *testing.T) {
	tests := map[string]string{
		"":                           "",
		"localhost":                  "localhost",
		"example.com":                "example.com",
		"Mail.Example.COM.":          "example.com",
		"a.b.c.example.com":          "example.com",
		"infobits.example.evil.com":  "evil.com",
		"mail.infobits.example":      "infobits.example",
		"example.co.uk":              "example.co.uk",
		"www.example.co.uk":          "example.co.uk",
		"co.uk":                      "co.uk",
		"shop.example.com.au":        "example.com.au",
		"x.example.ac.jp":            "example.ac.jp",
		"mail.example.co":            "example.co", // .co is a TLD, not a registry label
		"mail.example.co.com":        "co.com",     // "com" is no country code
		"a.b.example.org.nl":         "example.org.nl",
		"mail.example.nl":            "example.nl",
		"a.github.io":                "github.io", // the documented simplification
		"mail.example.c0.uk":         "c0.uk",     // "c0" is no registry label
		"xn--bcher-kva.example.com.": "example.com",
	}
	for in, want := range tests {
		if got := OrgDomain(in); got != want {
			t.Errorf("OrgDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{None: "none", Pass: "pass", Fail: "fail", 7: "Verdict(7)"} {
		if got := v.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(v), got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{gmail, microsoft, opendkim, opendmarcFail, opendmarcPass, rspamdPass, rspamdFail, folded,
		"mx.example.com; none", `"mx" 1; dkim/1=pass reason="a\"b" header.d="x"@y`, "mx; dmarc=pass (p=reject header.from=x",
		"mx; dmarc pass; ) ( \\", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err == nil && r.AuthServID == "" {
			t.Fatal("no error, but no authserv-id")
		}
		if err != nil && r.AuthServID != "" {
			t.Fatalf("error %v, but authserv-id %q", err, r.AuthServID)
		}
		for _, m := range r.Methods {
			if m.Name == "" || m.Name != helpdesk.ASCIILower(m.Name) || m.Result != helpdesk.ASCIILower(m.Result) || m.Props == nil {
				t.Fatalf("bad method %#v", m)
			}
			for k := range m.Props {
				if k == "" || k != helpdesk.ASCIILower(k) || k == "reason" {
					t.Fatalf("bad property key %q", k)
				}
			}
		}
		// Parsing is deterministic and Check never panics; a forged field below the trusted
		// run (in a later group of adjacent fields) never changes the verdict, and a fail for
		// the From domain added to the run always wins.
		if r2, _ := Parse(s); !reflect.DeepEqual(r, r2) {
			t.Fatal("Parse is not deterministic")
		}
		if err == nil {
			id := r.AuthServID
			v1, _ := Check([]string{s}, id, "infobits.example")
			v2, _ := CheckRuns([][]string{{s}, {"mx; dmarc=pass header.from=infobits.example", opendmarcPass}}, id, "infobits.example")
			if v1 != v2 {
				t.Fatalf("a header below changed the verdict: %v, then %v", v1, v2)
			}
			fail := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(id) + `"; dmarc=fail header.from=infobits.example`
			v3, why := Check([]string{s, fail}, id, "infobits.example")
			rf, _ := Parse(fail) // quoting may not give the id back (white space is trimmed)
			if v3 == Pass && rf.AuthServID == id || (SameID(id, id) && rf.AuthServID == id && v3 != Fail) {
				t.Fatalf("a trusted fail in the run did not win: %v (%s)", v3, why)
			}
		}
	})
}

// TestTopmost: what doctor reports of a mailbox's emails — the authserv-id of the topmost
// field and whether it has a DMARC result — for the forms the provider table of docs/operations.md names.
func TestTopmost(t *testing.T) {
	cases := []struct {
		name      string
		values    []string
		id        string
		dmarc, ok bool
	}{
		{"gmail", []string{"mx.google.com;\r\n       dkim=pass header.i=@infobits.example;\r\n       spf=pass smtp.mailfrom=infobits.example;\r\n       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=infobits.example"}, "mx.google.com", true, true},
		{"exchange online: no authserv-id", []string{"spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=infobits.example; dkim=pass (signature was verified) header.d=infobits.example;dmarc=pass action=none header.from=infobits.example;compauth=pass reason=100"}, "", true, true},
		{"opendkim above opendmarc: topmost only", []string{"mail.infobits.example; dkim=pass (2048-bit key) header.d=infobits.example", "mail.infobits.example; dmarc=pass (p=reject dis=none) header.from=infobits.example"}, "mail.infobits.example", false, true},
		{"control characters cleaned", []string{"mx\x01evil; dmarc=pass header.from=x.example"}, "mx?evil", true, true},
		{"none", nil, "", false, false},
	}
	for _, tc := range cases {
		id, dmarc, ok := Topmost(tc.values)
		if id != tc.id || dmarc != tc.dmarc || ok != tc.ok {
			t.Errorf("%s: Topmost = %q, %v, %v; want %q, %v, %v", tc.name, id, dmarc, ok, tc.id, tc.dmarc, tc.ok)
		}
	}
	for _, tc := range []struct {
		conf, id string
		want     bool
	}{{"mx.google.com", "MX.Google.com", true}, {" mx.google.com\t", "mx.google.com", true}, {"mx.google.com", "google.com", false}, {"", "", false}, {"mx\v", "mx\v", false}} {
		if got := SameID(tc.conf, tc.id); got != tc.want {
			t.Errorf("SameID(%q, %q) = %v, want %v", tc.conf, tc.id, got, tc.want)
		}
	}
}
