package main

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/infobits/helpdesk/notify/smtpsink"
)

// Texts a customer is glad to get, as they arrive at the SMTP server. The binary
// registers the customers, `serve -once` takes the mail in and sends.

// htmlText is the decoded text/html part of a raw message, with its tags removed and its
// entities decoded: what a reader of the HTML sees.
func htmlText(t *testing.T, raw []byte) string {
	t.Helper()
	h := partOf(t, raw, "text/html")
	h = regexp.MustCompile(`(?s)<head>.*</head>`).ReplaceAllString(h, "")
	return html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(h, "\n"))
}

// partOf returns the decoded part of a raw message with the content type.
func partOf(t *testing.T, raw []byte, ctype string) string {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := part.Header.(*gomail.InlineHeader); ok {
			if ct, _, _ := h.ContentType(); ct == ctype {
				b, err := io.ReadAll(part.Body)
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
		}
	}
}

// byRecipient is the messages at the sink by their first envelope recipient.
func byRecipient(msgs []smtpsink.Message) map[string][]smtpsink.Message {
	out := map[string][]smtpsink.Message{}
	for _, m := range msgs {
		out[m.To[0]] = append(out[m.To[0]], m)
	}
	return out
}

// Greet the person when known: a contact name set with customer add (and not overwritten by
// the display name of their email), given in the CSV column contact, or learned from the
// display name of the first email from the address; the company name otherwise. An answer
// carries the staff member's greeting and sign-off only, once each.
func TestGreetings(t *testing.T) {
	p := newPeers(t)
	env := p.env()
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl,piet@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-contact", "Piet de Vries")
	out := mustRun(t, env, "customer", "import", writeCSV(t, "email,name,contact\nkassa@slagerijjansen.nl,Slagerij Jansen,Henk Jansen\n"))
	if !strings.HasPrefix(out, "customer 2 created: Slagerij Jansen") {
		t.Errorf("import = %q", out)
	}
	mustRun(t, env, "customer", "add", "-email", "info@kapsalonlinda.nl", "-name", "Kapsalon Linda")
	mustRun(t, env, "customer", "add", "-email", "receptie@hotelzeezicht.nl", "-name", "Hotel Zeezicht", "-lang", "en")

	p.deliver(t, customerMail("Bakkerij <info@bakkerijdevries.nl>", "Kassa start niet op", "g1@bakkerij", "", "De kassa blijft zwart."))
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Weegschaal", "g2@slagerij", "", "De weegschaal telt niet."))
	p.deliver(t, customerMail("=?UTF-8?Q?Linda_B=C3=A4cker?= <info@kapsalonlinda.nl>", "Bonprinter", "g3@kapsalon", "", "Geen bon."))
	p.deliver(t, customerMail("Receptie <receptie@hotelzeezicht.nl>", "Printer", "g4@hotel", "", "No receipts."))
	mustRun(t, env, "serve", "-once")
	msgs, err := p.sink.Wait(ctxTimeout(t, 30*time.Second), 4)
	if err != nil {
		t.Fatalf("acknowledgements: %v (%d)", err, len(msgs))
	}
	to := byRecipient(msgs)
	for addr, want := range map[string]string{
		"info@bakkerijdevries.nl":   "Beste Piet de Vries,", // set by customer add -contact
		"kassa@slagerijjansen.nl":   "Beste Henk Jansen,",   // the CSV column contact
		"info@kapsalonlinda.nl":     "Beste Linda Bäcker,",  // learned from the first email's display name
		"receptie@hotelzeezicht.nl": "Dear Hotel Zeezicht,", // "Receptie" is the address's own name: the company
	} {
		if len(to[addr]) != 1 {
			t.Errorf("%s got %d messages, want the acknowledgement", addr, len(to[addr]))
			continue
		}
		raw := to[addr][0].Data
		if text := plainText(t, raw); !strings.HasPrefix(text, want+"\r\n") && !strings.HasPrefix(text, want+"\n") {
			t.Errorf("acknowledgement to %s opens with %.50q, want %q", addr, text, want)
		}
		if h := htmlText(t, raw); strings.Count(h, want) != 1 {
			t.Errorf("acknowledgement to %s: HTML has %q %d times, want once:\n%s", addr, want, strings.Count(h, want), h)
		}
	}
	// The learned name is the address's contact name now; an operator-set one was kept.
	if c := showCustomer(t, env, "info@kapsalonlinda.nl"); !jsonEqual(c["contacts"], map[string]any{"info@kapsalonlinda.nl": "Linda Bäcker"}) {
		t.Errorf("learned contact = %v", c["contacts"])
	}
	if c := showCustomer(t, env, "piet@bakkerijdevries.nl"); !jsonEqual(c["contacts"], map[string]any{"info@bakkerijdevries.nl": "Piet de Vries"}) {
		t.Errorf("operator-set contact = %v", c["contacts"])
	}
	if text := mustRun(t, env, "customer", "show", "info@bakkerijdevries.nl"); !strings.Contains(text, "Piet de Vries <info@bakkerijdevries.nl>") {
		t.Errorf("customer show lacks the contact:\n%s", text)
	}

	// The staff member's answer, greeted and signed by them: the customer gets exactly that
	// greeting and sign-off, with the ticket reference and the footer.
	answer := "Beste Piet,\r\n\r\nHerstart de kassa en probeer het opnieuw.\r\n\r\nMet vriendelijke groet,\r\nJan"
	p.deliver(t, customerMail("Jan <jan@infobits.example>", "Re: [Infobits #1] Kassa start niet op", "a1@infobits", staffAuth, answer))
	mustRun(t, env, "serve", "-once")
	msgs, err = p.sink.Wait(ctxTimeout(t, 30*time.Second), 5)
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	to = byRecipient(msgs)
	if len(to["info@bakkerijdevries.nl"]) != 2 {
		t.Fatalf("info@bakkerijdevries.nl got %d messages, want the acknowledgement and the answer", len(to["info@bakkerijdevries.nl"]))
	}
	raw := to["info@bakkerijdevries.nl"][1].Data
	if s := headerOf(raw, "Subject"); s != "Re: [Infobits #1] Kassa start niet op" {
		t.Errorf("answer subject = %q", s)
	}
	for what, body := range map[string]string{"text": plainText(t, raw), "HTML": htmlText(t, raw)} {
		if n, m := strings.Count(body, "Beste "), strings.Count(body, "Met vriendelijke groet"); n != 1 || m != 1 ||
			!strings.Contains(body, "Beste Piet,") || !strings.Contains(body, "[Infobits #1]") || !strings.Contains(body, "Infobits Helpdesk") {
			t.Errorf("answer %s: %d greetings, %d sign-offs, want the staff member's one each, the reference and the footer:\n%s", what, n, m, body)
		}
	}
	if text := strings.ReplaceAll(plainText(t, raw), "\r\n", "\n"); !strings.HasPrefix(text, "Beste Piet,\n\nHerstart de kassa") {
		t.Errorf("answer text opens with %.60q, want the staff member's text as written", text)
	}
}

// jsonEqual compares a decoded JSON value with a want.
func jsonEqual(got any, want any) bool {
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return string(a) == string(b)
}

// englishWords are words of an English sentence that Dutch does not use; protocol tokens
// (dmarc=fail, header.from, Authentication-Results, DKIM/DMARC) are left out before looking.
var englishWords = map[string]bool{"the": true, "for": true, "by": true, "not": true, "no": true, "and": true, "without": true,
	"from": true, "with": true, "was": true, "has": true, "which": true, "reports": true, "configured": true,
	"results": true, "email": true, "address": true, "trusted": true, "another": true, "result": true, "aligned": true,
	"domain": true, "sender": true, "applied": true, "kept": true, "refused": true, "proven": true}

// englishIn returns the English words of a text.
func englishIn(text string) []string {
	var out []string
	for _, w := range strings.Fields(text) {
		if strings.ContainsAny(w, "=._-/@<>#[]") {
			continue // a protocol token, an address, a command or a reference
		}
		w = strings.ToLower(strings.Trim(w, `.,;:"'()!?`))
		if englishWords[w] {
			out = append(out, w)
		}
	}
	return out
}

// The refusal notice to staff (staff_refused) is wholly in its language: the reason an email
// was refused is no longer policy's English sentence in a Dutch notice.
func TestStaffRefusedOneLanguage(t *testing.T) {
	// Staff notices are Dutch; the English text is templates' TestStaffRefusedReasons.
	for _, tc := range []struct{ lang, reason string }{
		{"nl", "mx.infobits.example meldt dmarc=fail voor infobits.example."},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			p := newPeers(t)
			env := p.env("HELPDESK_STAFF_LIST=support-team@infobits.example")
			mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries")
			forged := "Authentication-Results: " + trustedMX + "; dkim=fail header.d=infobits.example; dmarc=fail (p=reject) header.from=infobits.example\r\n"
			p.deliver(t, customerMail("Jan <jan@infobits.example>", "Re: [Infobits #1] Kassa start niet op", "f1@forger", forged, "Betaal eerst."))
			mustRun(t, env, "serve", "-once")
			msgs, err := p.sink.Wait(ctxTimeout(t, 30*time.Second), 1)
			if err != nil {
				t.Fatalf("no notice: %v", err)
			}
			var notice []byte
			for _, m := range msgs {
				if m.To[0] == "support-team@infobits.example" {
					notice = m.Data
				}
			}
			if notice == nil {
				t.Fatalf("no notice to the staff list among %d messages", len(msgs))
			}
			text, h := plainText(t, notice), htmlText(t, notice)
			for what, body := range map[string]string{"text": text, "HTML": h} {
				if !strings.Contains(strings.Join(strings.Fields(body), " "), tc.reason) {
					t.Errorf("%s notice %s lacks the reason %q:\n%s", tc.lang, what, tc.reason, body)
				}
				if en := englishIn(body + " " + headerOf(notice, "Subject")); tc.lang == "nl" && len(en) > 0 {
					t.Errorf("Dutch notice %s has English words %q:\n%s", what, en, body)
				}
			}
		})
	}
}
