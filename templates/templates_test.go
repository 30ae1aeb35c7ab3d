package templates_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk/mail/authres"
	"github.com/infobits/helpdesk/templates"
)

func amsterdam(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Amsterdam") // embedded by the package (time/tzdata)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func load(t *testing.T, dir string) *templates.Set {
	t.Helper()
	s, err := templates.Load(dir)
	if err != nil {
		t.Fatalf("Load(%q) = %v", dir, err)
	}
	return s
}

// Every kind renders in every language, with the customer's data in it: the acknowledgement
// with the ticket reference to keep (R10) and the first-response deadline (R6), the answer
// (R14), and the unknown-sender notice telling how to get access (R15).
func TestRenderAll(t *testing.T) {
	s := load(t, "")
	d := templates.Sample() // due Monday 30 November 2026 12:00 UTC = 13:00 in Amsterdam
	want := map[string]struct{ subject, text, html string }{
		"nl/ack":            {"[Infobits #123] Ontvangen: Kassa start niet op", "maandag 30 november 2026 om 13:00", `<html lang="nl">`},
		"en/ack":            {"[Infobits #123] Received: Kassa start niet op", "Monday 30 November 2026 at 13:00", `<html lang="en">`},
		"nl/answer":         {"Re: [Infobits #123] Kassa start niet op", "Herstart de kassa", `<html lang="nl">`},
		"en/answer":         {"Re: [Infobits #123] Kassa start niet op", "Herstart de kassa", `<html lang="en">`},
		"nl/unknown_sender": {"Uw e-mail aan de helpdesk: adres niet bekend", "info@example.nl", `<html lang="nl">`},
		"en/unknown_sender": {"Your email to the helpdesk: address not known", "info@example.nl", `<html lang="en">`},
		// R11: the limit is named, and how SLA8 lifts it.
		"nl/over_limit": {"Uw e-mail aan de helpdesk: limiet van SLA24 bereikt", "beperkt tot 3 per kalendermaand", `<html lang="nl">`},
		"en/over_limit": {"Your email to the helpdesk: SLA24 limit reached", "With SLA8 these limits do not apply", `<html lang="en">`},
		// R14: the answer waits on the site; the link, not the answer text.
		"nl/answer_site": {"[Infobits #123] Er staat een antwoord voor u klaar", "https://helpdesk.example.nl/tickets/123", `<html lang="nl">`},
		"en/answer_site": {"[Infobits #123] An answer is waiting for you", "https://helpdesk.example.nl/tickets/123", `<html lang="en">`},
		// Staff: the reference in the subject, so a plain reply answers the customer.
		"nl/staff_new":     {"[Infobits #123] Nieuw ticket: Kassa start niet op (Bakkerij de Vries)", "Herstart de kassa", `<html lang="nl">`},
		"en/staff_new":     {"[Infobits #123] New ticket: Kassa start niet op (Bakkerij de Vries)", "Herstart de kassa", `<html lang="en">`},
		"nl/staff_reply":   {"[Infobits #123] Reactie van de klant: Kassa start niet op", "Herstart de kassa", `<html lang="nl">`},
		"en/staff_reply":   {"[Infobits #123] Customer replied: Kassa start niet op", "Herstart de kassa", `<html lang="en">`},
		"nl/staff_error":   {"Niet verwerkt: Vraag over de kassa", `unknown command "#sluit"`, `<html lang="nl">`},
		"en/staff_error":   {"Not applied: Vraag over de kassa", `unknown command "#sluit"`, `<html lang="en">`},
		"nl/staff_refused": {"Geweigerd: e-mail namens info@example.nl zonder geldige authenticatie", "niet bewezen", `<html lang="nl">`},
		"en/staff_refused": {"Refused: email as info@example.nl without valid authentication", "not proven", `<html lang="en">`},
		// R16, R17: the link with the token; the login change only after confirmation.
		"nl/password_reset": {"Nieuw wachtwoord instellen", "https://helpdesk.example.nl/wachtwoord/herstel?token=abc", `<html lang="nl">`},
		"en/password_reset": {"Set a new password", "https://helpdesk.example.nl/wachtwoord/herstel?token=abc", `<html lang="en">`},
		"nl/login_confirm":  {"Bevestig uw nieuwe inlogadres", "Beste klant,", `<html lang="nl">`},
		"en/login_confirm":  {"Confirm your new login address", "Dear customer,", `<html lang="en">`},
		"nl/login_notice":   {"Verzoek om uw inlogadres te wijzigen", "https://helpdesk.example.nl/login/bevestig?token=def", `<html lang="nl">`},
		// Staff approve or cancel a login change by email or with the CLI.
		"nl/staff_login":   {"Inlogadres wijzigen: klant 12 (Bakkerij de Vries)", "helpdesk customer approve-login 12", "#approve-login"},
		"en/staff_login":   {"Login address change: customer 12 (Bakkerij de Vries)", "helpdesk customer cancel-login 12", "#cancel-login"},
		"nl/login_changed": {"Uw inlogadres is gewijzigd", "nu nieuw@example.nl", `<html lang="nl">`},
		"en/login_changed": {"Your login address was changed", "now nieuw@example.nl", `<html lang="en">`},
		"nl/too_large":     {"Uw e-mail aan de helpdesk is te groot", "groter is dan 3 MB", `<html lang="nl">`},
		"en/too_large":     {"Your email to the helpdesk is too large", "larger than 3 MB", `<html lang="en">`},
		"en/login_notice":  {"A request to change your login address", "https://helpdesk.example.nl/login/bevestig?token=def", `<html lang="en">`},
		// R21: the lapse, how to get SLA8, and that a reply to an open ticket still arrives.
		"nl/sla24_lapsed": {"Uw e-mail aan de helpdesk: uw gratis status SLA24 is vervallen", "EUR 5,00 per maand, inbegrepen bij een InfokasV3-licentie van type L, S of N", "bestaand, openstaand ticket"},
		"en/sla24_lapsed": {"Your email to the helpdesk: your free status SLA24 has lapsed", "EUR 5.00 a month, included with an InfokasV3 licence of type L, S or N", "existing open ticket"},
		// Every held email is reported with its reason and the exact next step.
		"nl/staff_held": {"2 vastgehouden e-mails: wachten op een beslissing", "helpdesk customer add -email inkoop@nieuwe-klant.nl", `helpdesk ticket release 8`},
		"en/staff_held": {"2 held emails awaiting a decision", "helpdesk customer add -email inkoop@nieuwe-klant.nl", `helpdesk ticket release 8`},
		// Escalation: the reference in the subject (a reply answers the customer), the deadline.
		"nl/staff_warning": {"[Infobits #123] Deadline nadert (SPOED): Kassa start niet op (Bakkerij de Vries)", "De deadline is maandag 30 november 2026 om 13:00", "Toegewezen aan piet@infobits.example"},
		"en/staff_warning": {"[Infobits #123] Deadline near (URGENT): Kassa start niet op (Bakkerij de Vries)", "The deadline is Monday 30 November 2026 at 13:00", "Assigned to piet@infobits.example"},
		"nl/staff_breach":  {"[Infobits #123] Deadline verstreken (SPOED): Kassa start niet op (Bakkerij de Vries)", "is verstreken zonder eerste reactie: maandag 30 november 2026 om 13:00", "Herstart de kassa"},
		"en/staff_breach":  {"[Infobits #123] Deadline passed (URGENT): Kassa start niet op (Bakkerij de Vries)", "passed without a first response: Monday 30 November 2026 at 13:00", "Herstart de kassa"},
		// The daily digest: each line with the reference and subject; held emails.
		"nl/staff_digest": {"Dagoverzicht maandag 30 november 2026: 1 verstreken, 2 vastgehouden", "[Infobits #120] Bonprinter print niet (Slagerij Jansen, SLA8), deadline vrijdag 27 november 2026 om 16:00", "Voor piet@infobits.example (1)"},
		"en/staff_digest": {"Daily digest Monday 30 November 2026: 1 breached, 2 held", "[Infobits #123] Kassa start niet op (Bakkerij de Vries, SLA4, URGENT), due Monday 30 November 2026 at 13:00", "For piet@infobits.example (1)"},
		// helpdesk customer invite: the link to set a password on the site.
		"nl/invite": {"Uw account op de helpdesksite", "https://helpdesk.example.nl/wachtwoord/herstel?token=abc", `<html lang="nl">`},
		"en/invite": {"Your account on the helpdesk site", "https://helpdesk.example.nl/wachtwoord/herstel?token=abc", `<html lang="en">`},
	}
	for _, lang := range templates.Langs() {
		for _, kind := range templates.Kinds() {
			key := lang + "/" + kind
			r, err := s.Render(kind, lang, d)
			if err != nil {
				t.Errorf("Render(%s) = %v", key, err)
				continue
			}
			w, ok := want[key]
			if !ok {
				t.Errorf("Render(%s): no expectation in this test; add one", key)
				continue
			}
			if r.Subject != w.subject {
				t.Errorf("Render(%s).Subject = %q, want %q", key, r.Subject, w.subject)
			}
			// Every mail names the customer it is about, except the two that answer a staff
			// member's own email (refused or in error), which name that email, and the answer,
			// which is the staff member's text as written, and the held notice, which is about
			// emails that did not become tickets.
			// The login confirmation goes to an address anyone may name: it names no
			// customer, number or address, whatever the data.
			aboutCustomer := kind != "staff_error" && kind != "staff_refused" && kind != "answer" && kind != "staff_held" && kind != "login_confirm"
			if !strings.Contains(r.Text, w.text) || (aboutCustomer && !strings.Contains(r.Text, d.CustomerName)) || !strings.Contains(r.Text, d.Helpdesk) {
				t.Errorf("Render(%s).Text = %q, want it to contain %q, the customer's name and the helpdesk's", key, r.Text, w.text)
			}
			if kind == "login_confirm" {
				for _, secret := range []string{d.CustomerName, "12", d.NewEmail, d.Address} {
					if strings.Contains(r.Text, secret) || strings.Contains(r.HTML, secret) || strings.Contains(r.Subject, secret) {
						t.Errorf("Render(%s) names %q:\n%s\n%s", key, secret, r.Text, r.HTML)
					}
				}
			}
			if strings.HasPrefix(r.Text, "\n") || strings.Contains(r.Text, "{{") || strings.Contains(r.Text, "<no value>") {
				t.Errorf("Render(%s).Text = %q, want clean text", key, r.Text)
			}
			if !strings.HasPrefix(r.HTML, "<!DOCTYPE html>") || !strings.Contains(r.HTML, w.html) ||
				!strings.Contains(r.HTML, "<title>"+strings.ReplaceAll(r.Subject, "'", "&#39;")+"</title>") {
				t.Errorf("Render(%s).HTML = %q, want a %s document titled with the subject", key, r.HTML, w.html)
			}
		}
	}
}

func TestRenderFallbacks(t *testing.T) {
	s := load(t, "")
	d := templates.Sample()
	fr, err := s.Render("ack", "fr", d)
	if err != nil {
		t.Fatalf("Render(ack, fr) = %v", err)
	}
	nl, _ := s.Render("ack", "nl", d)
	if fr != nl {
		t.Errorf("Render(ack, fr) = %q, want the Dutch text (the default language)", fr.Subject)
	}
	if _, err := s.Render("no_such_kind", "nl", d); err == nil || !strings.Contains(err.Error(), "no_such_kind") {
		t.Errorf("Render(no_such_kind) = %v, want an error naming the kind", err)
	}
	// No deadline known: the sentence about it is left out, not rendered empty.
	d.DueTime = time.Time{}
	d.Notes = nil // the expired note carries a date too
	for _, lang := range templates.Langs() {
		r, err := s.Render("ack", lang, d)
		if err != nil || strings.Contains(r.Text, "2026") || strings.Contains(r.Text, "uiterlijk") || strings.Contains(r.Text, "first response by") {
			t.Errorf("Render(ack, %s) without a due time = %q, %v, want no deadline sentence", lang, r.Text, err)
		}
	}
	// No customer name (an unknown sender): a general greeting.
	d.CustomerName = ""
	for lang, greeting := range map[string]string{"nl": "Beste klant,", "en": "Dear customer,"} {
		r, err := s.Render("unknown_sender", lang, d)
		if err != nil || !strings.HasPrefix(r.Text, greeting) {
			t.Errorf("Render(unknown_sender, %s) without a name = %.40q, %v, want it to start with %q", lang, r.Text, err, greeting)
		}
	}
	// A notice to staff greets the team, not the customer it is about (their name is in it).
	d.CustomerName = "Bakkerij de Vries"
	for _, kind := range templates.Kinds() {
		if !strings.HasPrefix(kind, "staff_") {
			continue
		}
		for lang, greeting := range map[string]string{"nl": "Hallo,", "en": "Hello,"} {
			r, err := s.Render(kind, lang, d)
			if err != nil || !strings.HasPrefix(r.Text, greeting) || strings.Contains(r.HTML, "Beste Bakkerij") || strings.Contains(r.HTML, "Dear Bakkerij") {
				t.Errorf("Render(%s, %s) = %.40q, %v, want it to greet staff with %q", kind, lang, r.Text, err, greeting)
			}
		}
	}
}

// Greet the person when known, the company otherwise; an answer is the staff
// member's text as written, with its own greeting and sign-off: the layout adds neither, only
// the ticket reference and a footer.
func TestGreeting(t *testing.T) {
	s := load(t, "")
	d := templates.Sample()
	for _, tc := range []struct{ lang, contact, want, signOff string }{
		{"nl", "Piet de Vries", "Beste Piet de Vries,", "Met vriendelijke groet,"},
		{"nl", "", "Beste Bakkerij de Vries,", "Met vriendelijke groet,"},
		{"en", "Piet de Vries", "Dear Piet de Vries,", "Kind regards,"},
		{"en", "", "Dear Bakkerij de Vries,", "Kind regards,"},
	} {
		d.ContactName = tc.contact
		for _, kind := range []string{"ack", "answer_site", "over_limit"} {
			r, err := s.Render(kind, tc.lang, d)
			if err != nil || !strings.HasPrefix(r.Text, tc.want+"\n") || !strings.Contains(r.HTML, "<p>"+tc.want+"</p>") ||
				strings.Count(r.Text, tc.signOff) != 1 {
				t.Errorf("Render(%s, %s) with contact %q = %.60q, %v; want it to open with %q and sign off once", kind, tc.lang, tc.contact, r.Text, err, tc.want)
			}
		}
		// The answer: the staff member's greeting and sign-off, once each.
		d.Text = "Beste Alice,\n\nHerstart de kassa.\n\nMet vriendelijke groet,\nJan"
		r, err := s.Render("answer", tc.lang, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{r.Text, r.HTML} {
			if strings.Count(body, "Beste ") != 1 || strings.Count(body, "Dear ") != 0 || strings.Count(body, "Met vriendelijke groet") != 1 ||
				strings.Count(body, "Kind regards") != 0 || !strings.Contains(body, "[Infobits #123]") || !strings.Contains(body, "Infobits Helpdesk") {
				t.Errorf("Render(answer, %s) = %q, want the staff text's one greeting and sign-off, the reference and the footer", tc.lang, body)
			}
		}
		if !strings.HasPrefix(r.Text, "Beste Alice,\n") {
			t.Errorf("Render(answer, %s).Text = %.40q, want the staff member's text first", tc.lang, r.Text)
		}
	}
}

// The refusal notice to staff says why in its own language, for every reason
// mail/authres gives; the English sentence of an older queued notice (Error) is the fallback.
func TestStaffRefusedReasons(t *testing.T) {
	s := load(t, "")
	d := templates.Sample()
	d.Error = "FALLBACK"
	codes := map[string][2]string{ // code: the Dutch and English sentence
		authres.ReasonNotConfigured:   {"Er is geen vertrouwde authenticatieserver ingesteld", "No trusted authentication server is configured"},
		authres.ReasonNoFromDomain:    {"geen domein om te toetsen aan de Authentication-Results van mx.example", "no domain to check against the Authentication-Results of mx.example"},
		authres.ReasonNoResults:       {"De e-mail heeft geen Authentication-Results van mx.example", "The email has no Authentication-Results from mx.example"},
		authres.ReasonDMARCFailNoFrom: {"mx.example meldt dmarc=fail, zonder header.from", "mx.example reports dmarc=fail, without header.from"},
		authres.ReasonDMARCFail:       {"mx.example meldt dmarc=fail voor infobits.example", "mx.example reports dmarc=fail for infobits.example"},
		authres.ReasonDMARCNoFrom:     {"mx.example meldt dmarc=temperror, zonder header.from", "mx.example reports dmarc=temperror, without header.from"},
		authres.ReasonDMARCOtherFrom:  {"meldt dmarc=temperror voor evil.example, niet voor infobits.example", "reports dmarc=temperror for evil.example, not for infobits.example"},
		authres.ReasonDMARCNotPass:    {"mx.example meldt dmarc=temperror voor infobits.example", "mx.example reports dmarc=temperror for infobits.example"},
		authres.ReasonDMARCPass:       {"mx.example meldt dmarc=pass voor infobits.example", "mx.example reports dmarc=pass for infobits.example"},
		authres.ReasonDKIMAligned:     {"meldt dkim=pass voor evil.example (hoort bij infobits.example)", "reports dkim=pass for evil.example (aligned with infobits.example)"},
		authres.ReasonDKIMUnaligned:   {"meldt dkim=pass voor evil.example, maar dat domein hoort niet bij infobits.example", "reports dkim=pass for evil.example, which is not aligned"},
		authres.ReasonNoMethods:       {"mx.example meldt geen enkel authenticatieresultaat voor infobits.example", "reports no authentication results at all for infobits.example"},
		authres.ReasonNoAligned:       {"meldt geen DMARC-resultaat en geen dkim=pass van het domein infobits.example", "reports no DMARC result and no dkim=pass aligned with infobits.example"},
	}
	english := []string{" the ", " for ", " by ", " not ", " no ", " and ", " without ", " from ", " with ", " was ", " which ", " reports ", " is configured"}
	for code, want := range codes {
		d.Auth = templates.Auth{Code: code, Result: "temperror", Domain: "infobits.example", Other: "evil.example", Server: "mx.example"}
		for i, lang := range []string{"nl", "en"} {
			r, err := s.Render("staff_refused", lang, d)
			if err != nil {
				t.Fatal(err)
			}
			for what, body := range map[string]string{"text": r.Text, "html": r.HTML} {
				if !strings.Contains(strings.Join(strings.Fields(body), " "), want[i]) || strings.Contains(body, "FALLBACK") {
					t.Errorf("Render(staff_refused, %s) %s for %s lacks %q:\n%s", lang, what, code, want[i], body)
				}
				if lang != "nl" {
					continue
				}
				for _, w := range english {
					if strings.Contains(" "+strings.ToLower(strings.Join(strings.Fields(body), " "))+" ", w) {
						t.Errorf("Render(staff_refused, nl) %s for %s has the English %q:\n%s", what, code, w, body)
					}
				}
			}
		}
		// Every code has its sentence: mail/authres words the same reason in English.
		if got := (authres.Reason{Code: code}).String(); got == code {
			t.Errorf("authres.Reason{%s}.String() = %q, want a sentence", code, got)
		}
	}
	d.Auth = templates.Auth{} // a notice queued before the reason had parts
	if r, _ := s.Render("staff_refused", "nl", d); !strings.Contains(r.Text, "FALLBACK") {
		t.Errorf("Render(staff_refused) without a code = %q, want the Error sentence", r.Text)
	}
}

// TestStaffHeldLapsed: a held email of a customer whose free status lapsed (R21) is reported
// with the operator's choices: release it as SLA24, keep the customer free, or dismiss it.
func TestStaffHeldLapsed(t *testing.T) {
	s := load(t, "")
	d := templates.Sample()
	d.Held = []templates.HeldItem{{ID: 9, From: "kassa@slagerij.nl", Subject: "Printer", Reason: "sla24_lapsed",
		Detail: "customer 2: the free status (SLA24) lapsed on 2026-03-16", Received: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}}
	for _, lang := range templates.Langs() {
		r, err := s.Render("staff_held", lang, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"helpdesk ticket release 9", "SLA24", "helpdesk customer set kassa@slagerij.nl -free-until", "helpdesk ticket held dismiss 9"} {
			if !strings.Contains(r.Text, want) || !strings.Contains(r.HTML, want) {
				t.Errorf("Render(staff_held, %s) lacks %q:\n%s", lang, want, r.Text)
			}
		}
		if strings.Contains(r.Text, "could not be processed") || strings.Contains(r.Text, "kon niet worden verwerkt") {
			t.Errorf("Render(staff_held, %s) treats sla24_lapsed as an unknown reason:\n%s", lang, r.Text)
		}
	}
}

func TestFormatDate(t *testing.T) {
	ams := amsterdam(t)
	cases := []struct {
		at         time.Time
		lang, want string
	}{
		{time.Date(2026, 11, 30, 13, 0, 0, 0, ams), "nl", "maandag 30 november 2026 om 13:00"},
		{time.Date(2026, 11, 30, 13, 0, 0, 0, ams), "en", "Monday 30 November 2026 at 13:00"},
		{time.Date(2026, 7, 5, 9, 5, 0, 0, ams), "nl", "zondag 5 juli 2026 om 09:05"},
		{time.Date(2026, 7, 5, 9, 5, 0, 0, ams), "en", "Sunday 5 July 2026 at 09:05"},
		{time.Date(2027, 3, 6, 23, 59, 0, 0, ams), "nl", "zaterdag 6 maart 2027 om 23:59"},
		{time.Date(2027, 1, 1, 0, 0, 0, 0, ams), "", "vrijdag 1 januari 2027 om 00:00"}, // default Dutch
		{time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).In(ams), "nl", "maandag 30 november 2026 om 13:00"},
		{time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC).In(ams), "nl", "woensdag 1 juli 2026 om 14:00"}, // summer time
	}
	for _, tc := range cases {
		if got := templates.FormatDate(tc.at, tc.lang); got != tc.want {
			t.Errorf("FormatDate(%v, %q) = %q, want %q", tc.at, tc.lang, got, tc.want)
		}
	}
}

// writeOverride writes files (name -> content) into a fresh override directory.
func writeOverride(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// An operator's override replaces one file; everything else stays embedded.
func TestOverride(t *testing.T) {
	dir := writeOverride(t, map[string]string{
		"nl/ack.txt.tmpl": `{{define "subject"}}Bevestiging {{.Ref}}: {{.TicketSubject}}{{end}}{{define "body"}}Dank voor uw vraag.{{end}}`,
	})
	s := load(t, dir)
	d := templates.Sample()
	nl, err := s.Render("ack", "nl", d)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Bevestiging [Infobits #123]: Kassa start niet op"; nl.Subject != want {
		t.Errorf("Render(ack, nl).Subject with override = %q, want %q", nl.Subject, want)
	}
	if !strings.Contains(nl.Text, "Dank voor uw vraag.") || !strings.Contains(nl.Text, "Met vriendelijke groet") {
		t.Errorf("Render(ack, nl).Text with override = %q, want the new body in the embedded layout", nl.Text)
	}
	en, _ := s.Render("ack", "en", d)
	if want := "[Infobits #123] Received: Kassa start niet op"; en.Subject != want {
		t.Errorf("Render(ack, en).Subject with an nl override = %q, want the embedded %q", en.Subject, want)
	}
	if ans, _ := s.Render("answer", "nl", d); ans.Subject != "Re: [Infobits #123] Kassa start niet op" {
		t.Errorf("Render(answer, nl).Subject with an ack override = %q, want the embedded one", ans.Subject)
	}
}

// A broken override is found at start-up, and the message names the file.
func TestOverrideBroken(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  string // in the error
	}{
		{"syntax error", map[string]string{"nl/ack.txt.tmpl": `{{define "subject"}}{{.Ref{{end}}`}, "nl/ack.txt.tmpl"},
		{"html syntax error", map[string]string{"en/answer.html.tmpl": `{{define "body"}}{{if .Text}}<p>{{.Text}}</p>{{end}`}, "en/answer.html.tmpl"},
		{"unknown field", map[string]string{"nl/unknown_sender.txt.tmpl": `{{define "subject"}}{{.NoSuchField}}{{end}}{{define "body"}}x{{end}}`}, "nl/unknown_sender"},
		{"no subject defined", map[string]string{"en/ack.txt.tmpl": `{{define "body"}}x{{end}}`}, "en/ack"},
		{"broken layout", map[string]string{"nl/layout.txt.tmpl": `{{define "layout"}}{{template "missing" .}}{{end}}`}, "nl/"},
	}
	for _, tc := range cases {
		dir := writeOverride(t, tc.files)
		s, err := templates.Load(dir)
		if err == nil {
			t.Errorf("%s: Load(override) = %v, nil, want an error", tc.name, s)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Load(override) = %v, want the error to name %q", tc.name, err, tc.want)
		}
	}
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := templates.Load(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing dir) = %v, want an error naming it", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if _, err := templates.Load(file); err == nil {
		t.Errorf("Load(a file) = nil error, want one: an override must be a directory")
	}
}

// What customers write is escaped in HTML (html/template) and can never add a header line.
func TestCustomerStrings(t *testing.T) {
	s := load(t, "")
	d := templates.Sample()
	d.CustomerName = `<script>alert("naam")</script>`
	d.ContactName = `<script>alert("contact")</script>`
	d.TicketSubject = "Kassa\"><img src=x onerror=alert(1)>\r\nBcc: evil@example.com\n\tkapot\x00"
	d.OrigSubject = d.TicketSubject
	d.Text = "<b>vet</b> & \"quote\""
	d.Address = `a@example.com"><a href="https://evil.example">klik</a>`
	d.SiteURL = "javascript:alert(1)"
	for _, lang := range templates.Langs() {
		for _, kind := range templates.Kinds() {
			key := lang + "/" + kind
			r, err := s.Render(kind, lang, d)
			if err != nil {
				t.Errorf("Render(%s) = %v", key, err)
				continue
			}
			for _, bad := range []string{"<script", "<img", "<b>", `href="https://evil`, `href="javascript:`} {
				if strings.Contains(r.HTML, bad) {
					t.Errorf("Render(%s).HTML contains %q unescaped:\n%s", key, bad, r.HTML)
				}
			}
			if strings.ContainsAny(r.Subject, "\r\n\t\x00") {
				t.Errorf("Render(%s).Subject = %q, want one line without control characters", key, r.Subject)
			}
			if strings.Contains(r.HTML, "<title>") && strings.Contains(r.HTML[strings.Index(r.HTML, "<title>"):strings.Index(r.HTML, "</title>")], "\n") {
				t.Errorf("Render(%s).HTML title spans lines", key)
			}
		}
	}
	r, _ := s.Render("ack", "nl", d)
	if want := `[Infobits #123] Ontvangen: Kassa"><img src=x onerror=alert(1)> Bcc: evil@example.com kapot`; r.Subject != want {
		t.Errorf("Render(ack, nl).Subject = %q, want %q", r.Subject, want)
	}
	if !strings.Contains(r.HTML, "&lt;script&gt;") {
		t.Errorf("Render(ack, nl).HTML does not show the escaped name: %s", r.HTML)
	}
	a, _ := s.Render("answer", "en", d)
	if !strings.Contains(a.HTML, "&lt;b&gt;vet&lt;/b&gt; &amp; &#34;quote&#34;") || !strings.Contains(a.Text, "<b>vet</b> & \"quote\"") {
		t.Errorf("Render(answer, en): want the answer escaped in HTML and verbatim in text; html %q text %q", a.HTML, a.Text)
	}
}

// TestOverLimitWraps: the SLA24 limit notice reads as a mail client shows plain text — no line
// of its own longer than 80 characters for any of the three limits (a trial's mutt showed one
// line of 145), in both languages.
func TestOverLimitWraps(t *testing.T) {
	s := load(t, "")
	for _, kind := range []string{"tickets_per_month", "open_tickets", "replies_per_ticket"} {
		for _, lang := range []string{"nl", "en"} {
			d := templates.Sample()
			d.LimitKind, d.LimitValue = kind, 5
			r, err := s.Render("over_limit", lang, d)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(r.Text, "\n") {
				if len([]rune(line)) > 80 && !strings.Contains(line, "://") && !strings.Contains(line, d.OrigSubject) {
					t.Errorf("%s %s: a line of %d characters: %q", lang, kind, len([]rune(line)), line)
				}
			}
		}
	}
}
