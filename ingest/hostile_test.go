package ingest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/internal/growth"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/rules/policy"
)

// hostileCase is one crafted email and what it must become: a ticket whose thread message is
// readable (valid UTF-8 containing the marker), or a held email with the reason.
type hostileCase struct {
	name string
	raw  []byte
	// held is the expected held reason; "" means the email must become a ticket.
	held string
	// marker must be in the thread message's text (inSubject: in the ticket's subject).
	marker    string
	inSubject bool
	// want are more strings the text (or subject) must contain, e.g. decoded characters.
	want []string
	// check looks at the ticket's thread message further.
	check func(t *testing.T, tk *helpdesk.Ticket, m *helpdesk.Message)
	// notOnMem: go-imap's in-memory server cannot hand this email out as it was appended.
	notOnMem bool
}

const hostileFrom = "info@bakkerijdevries.nl"

// hostileMail builds an email from the registered customer with the given extra header lines
// (each with its line end) and body, byte for byte: no charset conversion, no repair.
func hostileMail(subject, headers, body string) []byte {
	return []byte("From: Bakkerij de Vries <" + hostileFrom + ">\r\nTo: support@infobits.example\r\n" +
		"Subject: " + subject + "\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\n" +
		fmt.Sprintf("Message-ID: <hostile-%x@bakkerij>\r\n", rand.Uint64()) + headers + "\r\n" + body)
}

func plainMail(subject, ctype, cte, body string) []byte {
	h := "MIME-Version: 1.0\r\nContent-Type: " + ctype + "\r\n"
	if cte != "" {
		h += "Content-Transfer-Encoding: " + cte + "\r\n"
	}
	return hostileMail(subject, h, body)
}

// wrap76 breaks base64 into 76-character lines.
func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s + "\r\n")
	return b.String()
}

// nestedMultipart is depth multipart/mixed parts inside each other with a text part at the
// bottom, each closed, or (closed false) none: enmime's work doubles with every unclosed level.
func nestedMultipart(depth int, closed bool) []byte {
	var b strings.Builder
	b.WriteString("From: " + hostileFrom + "\r\nTo: support@infobits.example\r\nSubject: Diep genest nestmarker\r\n" +
		fmt.Sprintf("Message-ID: <nest-%d-%v@bakkerij>\r\n", depth, closed) + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n")
	for i := 1; i < depth; i++ {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n", i-1, i)
	}
	fmt.Fprintf(&b, "--b%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nnestmarker op de bodem\r\n", depth-1)
	for i := depth - 1; i >= 0 && closed; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return []byte(b.String())
}

// hostileCases are built once: both servers get the same bytes.
var hostileCases = sync.OnceValue(buildHostileCases)

func buildHostileCases() []hostileCase {
	big := make([]byte, 5<<20)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	_, _ = rng.Read(big)
	good := base64.StdEncoding.EncodeToString([]byte("Goedemorgen, de kassa b64marker start niet meer op sinds vanochtend."))

	// Subject with CR/LF: an encoded word hiding a line break and a Bcc header.
	crlfB64 := "=?utf-8?b?" + base64.StdEncoding.EncodeToString([]byte("Hallo\r\nBcc: x@y")) + "?="

	return []hostileCase{
		{name: "broken base64", marker: "b64marker",
			raw: plainMail("Kapotte base64", "text/plain; charset=utf-8", "base64",
				wrap76(good)+"!!!*** dit is geen base64 ***===\r\nQUJD\r\nA\r\n")},
		{name: "broken quoted-printable", marker: "qpmarker",
			raw: plainMail("Kapotte QP", "text/plain; charset=utf-8", "quoted-printable",
				"De kassa qpmarker geeft =ZZ en =E fouten =\r\nen een halve =3\r\nen een kale = aan het eind=")},
		{name: "windows-1252", marker: "cp1252marker", want: []string{"€", "é"},
			raw: plainMail("Prijs", "text/plain; charset=windows-1252", "8bit",
				"De prijs is \x80 10 voor het caf\xe9 cp1252marker.\r\n")},
		{name: "iso-8859-1", marker: "latinmarker", want: []string{"café", "ü"},
			raw: plainMail("Latijn", "text/plain; charset=iso-8859-1", "8bit",
				"Het caf\xe9 latinmarker heeft een M\xfcller-kassa.\r\n")},
		{name: "utf-7", marker: "utf7marker", want: []string{"café"},
			raw: plainMail("UTF-7", "text/plain; charset=utf-7", "7bit", "Het caf+AOk- utf7marker.\r\n")},
		{name: "lying charset", marker: "liemarker",
			raw: plainMail("Liegt", "text/plain; charset=utf-8", "8bit", "Het caf\xe9 liemarker zegt utf-8 maar is latin-1 \xff\xfe.\r\n")},
		{name: "no charset, 8-bit", marker: "nocharsetmarker",
			raw: plainMail("Geen charset", "text/plain", "8bit", "Het caf\xe9 nocharsetmarker \x93quote\x94.\r\n")},
		{name: "no MIME headers, 8-bit", marker: "nomimemarker",
			raw: hostileMail("Geen MIME", "", "Het caf\xe9 nomimemarker \xc3\xa9 gemengd.\r\n")},
		{name: "8-bit UTF-8 subject (RFC 6532)", marker: "Café € subjmarker", inSubject: true,
			raw: plainMail("Café € subjmarker ünïcødé", "text/plain; charset=utf-8", "8bit", "Tekst.\r\n"),
			check: func(t *testing.T, tk *helpdesk.Ticket, m *helpdesk.Message) {
				if tk.Subject != "Café € subjmarker ünïcødé" {
					t.Errorf("subject = %q", tk.Subject)
				}
			}},
		{name: "missing From", held: helpdesk.HeldNoSender,
			raw: []byte("To: support@infobits.example\r\nSubject: Zonder afzender\r\nMessage-ID: <nofrom@x>\r\n\r\nWie?\r\n")},
		{name: "empty From", held: helpdesk.HeldNoSender,
			raw: []byte("From: \r\nTo: support@infobits.example\r\nSubject: Lege afzender\r\nMessage-ID: <emptyfrom@x>\r\n\r\nWie?\r\n")},
		{name: "two From addresses", held: helpdesk.HeldNoSender,
			raw: []byte("From: " + hostileFrom + ", kassa@slagerijjansen.nl\r\nTo: support@infobits.example\r\nSubject: Twee afzenders\r\n" +
				"Message-ID: <twofrom@x>\r\n\r\nWie van de twee?\r\n")},
		{name: "two From headers", held: helpdesk.HeldDuplicateHeader, // readers disagree on which counts
			raw: []byte("From: " + hostileFrom + "\r\nFrom: kassa@slagerijjansen.nl\r\nTo: support@infobits.example\r\nSubject: Twee From-regels\r\n" +
				"Message-ID: <twofromlines@x>\r\n\r\nWie van de twee?\r\n")},
		{name: "nested multiparts depth 30", held: helpdesk.HeldUnparseable, raw: nestedMultipart(30, true)},
		{name: "nested multiparts depth 200, unclosed", held: helpdesk.HeldUnparseable, raw: nestedMultipart(200, false)},
		{name: "zero-byte attachment", marker: "zeromarker",
			raw: hostileMail("Lege bijlage", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"z\"\r\n",
				"--z\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nZie de lege bijlage zeromarker.\r\n"+
					"--z\r\nContent-Type: application/octet-stream; name=\"leeg.bin\"\r\nContent-Disposition: attachment; filename=\"leeg.bin\"\r\n"+
					"Content-Transfer-Encoding: base64\r\n\r\n\r\n--z--\r\n"),
			check: func(t *testing.T, tk *helpdesk.Ticket, m *helpdesk.Message) {
				if len(m.Attachment) != 1 || m.Attachment[0].Filename != "leeg.bin" || m.Attachment[0].Size != 0 {
					t.Errorf("attachments = %+v, want leeg.bin of 0 bytes", m.Attachment)
				}
			}},
		{name: "5 MB attachment", marker: "bigmarker",
			raw: hostileMail("Grote bijlage", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"g\"\r\n",
				"--g\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHet logbestand bigmarker zit erbij.\r\n"+
					"--g\r\nContent-Type: application/octet-stream; name=\"kassa.log\"\r\nContent-Disposition: attachment; filename=\"kassa.log\"\r\n"+
					"Content-Transfer-Encoding: base64\r\n\r\n"+wrap76(base64.StdEncoding.EncodeToString(big))+"--g--\r\n"),
			check: func(t *testing.T, tk *helpdesk.Ticket, m *helpdesk.Message) {
				if len(m.Attachment) != 1 || m.Attachment[0].Size != 5<<20 || m.Attachment[0].Filename != "kassa.log" {
					t.Errorf("attachments = %+v, want kassa.log of %d bytes", m.Attachment, 5<<20)
				}
			}},
		{name: "CR/LF in subject: folded", marker: "Hallo", inSubject: true,
			raw: plainMail("Hallo\r\n \r\n\tBcc: x@y\r\n\t\r\n Cc: z@y", "text/plain; charset=utf-8", "", "crlfmarker1\r\n")},
		// A header line that starts with a bare CR: go-message's textproto rejects the header,
		// and go-imap's in-memory server then serves an empty BODY[] (see TestCorpusThroughIngest).
		{name: "CR/LF in subject: line starting with CR", marker: "Hallo", inSubject: true, notOnMem: true,
			raw: plainMail("Hallo\r\n\r\tBcc: x@y\r\n Cc: z@y", "text/plain; charset=utf-8", "", "crlfmarker6\r\n")},
		{name: "CR/LF in subject: folded encoded words", marker: "Hallo", inSubject: true,
			raw: plainMail("=?utf-8?q?Hallo=0D?=\r\n =?utf-8?q?=0ABcc:_x@y?=\r\n\t=?utf-8?b?DQpDYzogekB5?=", "text/plain; charset=utf-8", "", "crlfmarker5\r\n")},
		{name: "CR/LF in subject: encoded word", marker: "Hallo", inSubject: true,
			raw: plainMail(crlfB64, "text/plain; charset=utf-8", "", "crlfmarker2\r\n")},
		{name: "CR/LF in subject: quoted-printable word", marker: "Hallo", inSubject: true,
			raw: plainMail("=?utf-8?q?Hallo=0D=0ABcc:_x@y=0D=0A=0D=0Abody?=", "text/plain; charset=utf-8", "", "crlfmarker3\r\n")},
		{name: "CR/LF in subject: bare CR", marker: "Hallo", inSubject: true,
			raw: plainMail("Hallo\rBcc: x@y", "text/plain; charset=utf-8", "", "crlfmarker4\r\n")},
		// ':' and '@' encoded: in a display name an encoded word may not hold them (RFC 2047
		// section 5), and the strict From parse reads the unencoded form as a group.
		{name: "CR/LF in display name", marker: "namemarker",
			raw: []byte("From: =?utf-8?q?Piet=0D=0ABcc=3A_x=40y?= <" + hostileFrom + ">\r\nTo: support@infobits.example\r\n" +
				"Subject: Naam met regeleinde\r\nMessage-ID: <name-crlf@bakkerij>\r\n\r\nnamemarker\r\n"),
			check: func(t *testing.T, tk *helpdesk.Ticket, m *helpdesk.Message) {
				if strings.ContainsAny(m.FromName, "\r\n") || !strings.HasPrefix(m.FromName, "Piet") {
					t.Errorf("from name %q has a line break, or is not the decoded name", m.FromName)
				}
			}},
		{name: "CR/LF in display name, ':' unencoded", held: helpdesk.HeldNoSender,
			raw: []byte("From: =?utf-8?q?Piet=0D=0ABcc:_x@y?= <" + hostileFrom + ">\r\nTo: support@infobits.example\r\n" +
				"Subject: Naam met regeleinde\r\nMessage-ID: <name-crlf2@bakkerij>\r\n\r\nnamemarker2\r\n")},
		{name: "2 MB header line", marker: "longmarker",
			raw: plainMail("Lange kopregel", "text/plain; charset=utf-8\r\nX-Long: "+strings.Repeat("abcdefgh", 2<<20/8), "", "longmarker\r\n")},
		{name: "only headers", marker: "Alleen kopregels headermarker", inSubject: true,
			raw: []byte("From: " + hostileFrom + "\r\nTo: support@infobits.example\r\nSubject: Alleen kopregels headermarker\r\nMessage-ID: <onlyheaders@bakkerij>\r\n")},
		{name: "null byte in body", marker: "nulmarker", want: []string{"voor", "na"},
			raw: plainMail("Nul", "text/plain; charset=utf-8", "8bit", "voor\x00na nulmarker\x00\x00\r\n"),
			check: func(t *testing.T, tk *helpdesk.Ticket, m *helpdesk.Message) {
				if strings.ContainsRune(m.Text, 0) {
					t.Errorf("text %q keeps a NUL", m.Text)
				}
			}},
		{name: "too large", held: helpdesk.HeldTooLarge,
			raw: plainMail("Te groot", "text/plain; charset=utf-8", "", strings.Repeat(strings.Repeat("x", 998)+"\r\n", hostileMaxBytes/1000+100))},
	}
}

// hostileMaxBytes is the size limit of the hostile-input gateway: above the 5 MB attachment
// (base64 makes it 6.9 MB), below the "too large" case.
const hostileMaxBytes = 8 << 20

// TestHostileInputKept: broken, lying, huge and malicious emails through the real ingest path
// are each either a ticket with readable text or held with a reason — never a crash, never
// lost — and the gateway keeps going. The acknowledgements it queues render to mail with no
// injected header.
//
// It runs against the in-memory server and Dovecot (skipped when absent) at once. It sets no
// time limit beyond hang guards of minutes (a busy machine must not fail it): that no part of
// an email can be made huge enough to stall the gateway is TestParseLinear's (mail/parse),
// by counts — the cost at 16 times the size — not by the clock; deep nesting is checked
// here the same way.
func TestHostileInputKept(t *testing.T) {
	// Deep nesting is refused, and refused without enmime's re-reading per level: the cost
	// of refusing grows with the input, not with its square.
	for _, closed := range []bool{true, false} {
		if e := parse.Parse(nestedMultipart(200, closed), arrival); e.Err == nil {
			t.Errorf("200 nested multiparts (closed %v): no error; want it refused", closed)
		}
		growth.Linear(t, 200, func(n int) []byte { return nestedMultipart(n, closed) },
			func(raw []byte) { parse.Parse(raw, arrival) })
	}
	for _, kind := range []string{"mem", "dovecot"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			testHostile(t, kind)
		})
	}
}

func testHostile(t *testing.T, kind string) {
	start := time.Now()
	rules := testRules(t, policy.Limits{})
	rules.AutoRepliesPerHour = 1000 // every acknowledgement, to check each for injected headers
	f := newFixture(t, kind, func(c *ingest.Config) {
		c.MaxMessageBytes = hostileMaxBytes
		c.Desk.Policy = policy.New(rules)
	})
	cases := hostileCases()
	byUID := map[uint32]*hostileCase{}
	for i := range cases {
		if cases[i].notOnMem && f.srv.mem != nil {
			continue
		}
		byUID[uint32(f.deliver(cases[i].raw))] = &cases[i]
	}
	t.Logf("built and delivered %d emails in %v", len(byUID), time.Since(start).Round(time.Millisecond))

	onceWithin(t, f)
	t.Logf("ingested in %v", time.Since(start).Round(time.Millisecond))

	seen := map[uint32]bool{}
	for _, ev := range drain(f.events) {
		o := ev.Outcome
		if o == nil {
			continue
		}
		c := byUID[o.UID]
		if c == nil {
			t.Errorf("outcome for unknown uid %d: %+v", o.UID, o)
			continue
		}
		seen[o.UID] = true
		t.Run(c.name, func(t *testing.T) { checkHostile(t, f, c, o) })
	}
	for uid, c := range byUID {
		if !seen[uid] {
			t.Errorf("%s (uid %d): no outcome: the email was not accounted for", c.name, uid)
		}
	}
	if _, unseen := f.srv.status(t, "INBOX"); unseen != 1 {
		t.Errorf("unseen = %d, want only the too-large email left unread", unseen)
	}

	// The gateway keeps going: the next ordinary email is a ticket.
	f.deliver(buildMail(mailOpts{from: hostileFrom, subject: "Gewone vraag na alles", msgID: "after-hostile@b", body: "Gewoon."}))
	onceWithin(t, f)
	var last *desk.Outcome
	for _, ev := range drain(f.events) {
		if ev.Outcome != nil {
			last = ev.Outcome
		}
	}
	if last == nil || last.Action != "new_ticket" || last.MessageID != "after-hostile@b" {
		t.Errorf("the email after the hostile ones: %+v, want a new ticket", last)
	}

	// What the gateway sends about them carries no header a customer wrote.
	sink, w := newNotifier(t, f.db, "support@infobits.example", "Infobits")
	res, err := w.Drain(context.Background(), true)
	if err != nil {
		t.Fatalf("drain the outbox: %v (%+v)", err, res)
	}
	msgs := sink.Messages()
	if len(msgs) == 0 {
		t.Fatal("no notification was sent")
	}
	for _, m := range msgs {
		checkNoInjectedHeaders(t, m.Data)
	}
	t.Logf("%d notifications rendered and sent; %s done in %v", len(msgs), kind, time.Since(start).Round(time.Millisecond))
}

// onceWithin is f.once with a hang guard: hostile input must not stall the poller. The guard
// is minutes, far above what the emails need on a busy machine; it tells a hang from a failure.
func onceWithin(t *testing.T, f *fixture) {
	t.Helper()
	const d = 5 * time.Minute
	done := make(chan error, 1)
	go func() { done <- f.poller.Once(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Once: %v", err)
		}
	case <-time.After(d):
		t.Fatalf("Once did not return within %v: it hangs", d)
	}
}

func checkHostile(t *testing.T, f *fixture, c *hostileCase, o *desk.Outcome) {
	if c.held != "" {
		if o.Action != "held" || o.Reason != c.held {
			t.Fatalf("outcome = %s %s (%s), want held %s", o.Action, o.Reason, o.Detail, c.held)
		}
		for _, h := range f.held() {
			if h.ID == o.HeldID {
				if h.Detail == "" || strings.ContainsAny(h.Subject, "\r\n") || !utf8.ValidString(h.Subject) {
					t.Errorf("held record = %+v", h)
				}
				if c.held != helpdesk.HeldTooLarge && h.RawSHA256 == "" {
					t.Errorf("held record keeps no raw message: %+v", h)
				}
				return
			}
		}
		t.Fatalf("held record %d not found", o.HeldID)
	}
	if o.Action != "new_ticket" || o.TicketID == 0 {
		t.Fatalf("outcome = %s %s (%s), want a new ticket", o.Action, o.Reason, o.Detail)
	}
	var tk *helpdesk.Ticket
	for _, x := range f.tickets() {
		if x.ID == o.TicketID {
			tk = x
		}
	}
	if tk == nil {
		t.Fatalf("ticket %d not found", o.TicketID)
	}
	var m *helpdesk.Message
	for _, x := range f.messages(tk.ID) {
		if x.Source.UID == o.UID {
			m = x
		}
	}
	if m == nil {
		t.Fatalf("ticket %d has no thread message of uid %d", tk.ID, o.UID)
	}
	for what, s := range map[string]string{"text": m.Text, "subject": m.Subject, "ticket subject": tk.Subject, "from name": m.FromName} {
		if !utf8.ValidString(s) {
			t.Errorf("%s is not valid UTF-8: %q", what, s)
		}
	}
	if strings.ContainsAny(tk.Subject, "\r\n") || strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("subject has a line break: ticket %q, message %q", tk.Subject, m.Subject)
	}
	where := m.Text
	if c.inSubject {
		where = tk.Subject
	}
	for _, w := range append([]string{c.marker}, c.want...) {
		if !strings.Contains(where, w) {
			t.Errorf("%q not found in %q", w, clip(where, 300))
		}
	}
	if c.check != nil {
		c.check(t, tk, m)
	}
	t.Logf("ticket %d: subject %q, text %q, warnings %q", tk.ID, clip(tk.Subject, 80), clip(m.Text, 80), m.Warnings)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// checkNoInjectedHeaders fails when a sent message's header has a field a customer could have
// put there: only the fields notify writes are allowed, each To/From once.
func checkNoInjectedHeaders(t *testing.T, raw []byte) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Errorf("sent message does not parse: %v\n%s", err, clip(string(raw), 500))
		return
	}
	allowed := map[string]bool{"Date": true, "From": true, "To": true, "Subject": true, "Message-Id": true,
		"In-Reply-To": true, "References": true, "Auto-Submitted": true, "X-Auto-Response-Suppress": true,
		"Content-Language": true, "Mime-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true}
	for k, v := range m.Header {
		if !allowed[k] {
			t.Errorf("sent message has header %s: %q (subject %q)", k, v, m.Header.Get("Subject"))
		}
		if len(v) != 1 {
			t.Errorf("sent message has %d %s headers: %q", len(v), k, v)
		}
	}
}
