package parse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/internal/growth"
)

// arrival is a fixed IMAP INTERNALDATE; tests never read the clock.
var arrival = time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)

// crlf turns a readable LF message into wire form (CRLF), leaving CRLF alone.
func crlf(s string) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll([]byte(s), []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

var pdfBytes = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n\x00\x01\x02\xff binary tail\n%%EOF\n")

func pdfSum() string {
	s := sha256.Sum256(pdfBytes)
	return hex.EncodeToString(s[:])
}

// checkValid fails the test when a field the gateway stores or shows is not valid UTF-8, or
// a one-line field holds a line break (Email's promise: strings are valid UTF-8).
func checkValid(t *testing.T, name string, e *Email) {
	t.Helper()
	fields := map[string]string{"Subject": e.Subject, "Text": e.Text, "HTML": e.HTML, "From": e.From,
		"FromName": e.FromName, "ReturnPath": e.ReturnPath, "MessageID": e.MessageID}
	for i, id := range e.InReplyTo {
		fields["InReplyTo"+string(rune('0'+i%10))] = id
	}
	for i, id := range e.References {
		fields["References"+string(rune('0'+i%10))] = id
	}
	for i, a := range e.To {
		fields["To"+string(rune('0'+i%10))] = a
	}
	for _, a := range e.Attach {
		fields["Attach.Filename"] = a.Filename
		fields["Attach.ContentType"] = a.ContentType
	}
	for i, w := range e.Warnings {
		fields["Warning"+string(rune('0'+i%10))] = w
	}
	for f, v := range fields {
		if !utf8.ValidString(v) {
			t.Errorf("Parse(%s).%s = %q, not valid UTF-8", name, f, v)
		}
	}
	for _, f := range []string{"Subject", "FromName", "From", "MessageID", "Attach.Filename"} {
		if strings.ContainsAny(fields[f], "\r\n") {
			t.Errorf("Parse(%s).%s = %q, want one line", name, f, fields[f])
		}
	}
}

// TestParse: what the gateway needs from an email. The sender is decoded and lower-cased, as
// customers are identified by it (R1); Message-ID, In-Reply-To and References are read
// leniently, as replies are threaded by them (R10); nothing is lost (R11, R15).
func TestParse(t *testing.T) {
	type want struct {
		from, fromName      string
		fromCount           int
		subject             string
		messageID           string
		inReplyTo, refs     []string
		text                string // substring of Text
		html                string // substring of HTML
		returnPath          string
		hasReturnPath       bool
		attach              []Attachment
		warnings            bool // at least one warning
		err                 bool
		date                time.Time
		to                  []string
		textExact, noChecks bool
	}
	cases := []struct {
		name string
		raw  string
		want want
	}{
		{
			name: "plain, display name, mixed-case address",
			raw: `From: "Piet de Vries" <Piet@BakkerijDeVries.NL>
To: Support <Support@Infobits.nl>, info@infobits.nl
Subject: Kassa start niet op
Date: Fri, 27 Nov 2026 10:00:00 +0100
Message-ID: <ABC.123@Mail.BakkerijDeVries.nl>
Content-Type: text/plain; charset=utf-8

De kassa start niet op.
`,
			want: want{from: "piet@bakkerijdevries.nl", fromName: "Piet de Vries", fromCount: 1, subject: "Kassa start niet op",
				messageID: "ABC.123@Mail.BakkerijDeVries.nl", text: "De kassa start niet op.",
				date: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), to: []string{"support@infobits.nl", "info@infobits.nl"}},
		},
		{
			name: "RFC 2047 utf-8 B subject and name",
			raw: `From: =?utf-8?B?QsOka2tlcmVpIErDvHJnZW4=?= <juergen@example.de>
Subject: =?utf-8?B?S2Fzc2Egw6lu?= =?utf-8?B?IHByaW50ZXIg4oKs?=
Content-Type: text/plain; charset=utf-8

x
`,
			want: want{from: "juergen@example.de", fromName: "Bäkkerei Jürgen", fromCount: 1, subject: "Kassa én printer €", text: "x"},
		},
		{
			name: "RFC 2047 iso-8859-1 Q subject",
			raw: `From: a@example.com
Subject: =?iso-8859-1?Q?caf=E9_au_lait?=

x
`,
			want: want{from: "a@example.com", fromCount: 1, subject: "café au lait", text: "x"},
		},
		{
			name: "RFC 2047 windows-1252 subject (other charsets through go-message/charset)",
			raw: `From: a@example.com
Subject: =?windows-1252?Q?=80_5,-_per_maand?=

x
`,
			want: want{from: "a@example.com", fromCount: 1, subject: "€ 5,- per maand", text: "x"},
		},
		{
			name: "two From addresses in one header",
			raw: `From: a@example.com, b@example.com
Subject: wie?

x
`,
			want: want{from: "a@example.com", fromCount: 2, subject: "wie?", text: "x"},
		},
		{
			name: "two From headers",
			raw: `From: a@example.com
From: B <b@example.com>
Subject: wie?

x
`,
			want: want{from: "a@example.com", fromCount: 2, subject: "wie?", text: "x"},
		},
		{
			name: "missing From",
			raw: `To: support@infobits.nl
Subject: anoniem

x
`,
			want: want{fromCount: 0, subject: "anoniem", text: "x", to: []string{"support@infobits.nl"}},
		},
		{
			// No address is guessed out of a From that does not parse.
			name: "unparseable From with an address in it",
			raw: `From: Vries, Piet (kassa) piet@example.com
Subject: x

x
`,
			want: want{from: "", fromCount: 1, subject: "x", text: "x"},
		},
		{
			name: "threading headers, lenient",
			raw: `From: a@example.com
Subject: Re: [Infobits #5] kassa
Message-ID:   <Reply.1@Example.COM>  
In-Reply-To: <N1@Helpdesk.Example>
References: <first@example.com> bare-id@Example.com
 <N1@Helpdesk.Example>

x
`,
			want: want{from: "a@example.com", fromCount: 1, subject: "Re: [Infobits #5] kassa", messageID: "Reply.1@Example.COM",
				inReplyTo: []string{"N1@Helpdesk.Example"}, refs: []string{"first@example.com", "N1@Helpdesk.Example"}, text: "x"},
		},
		{
			name: "References without brackets at all",
			raw: `From: a@example.com
Subject: x
In-Reply-To: n1@helpdesk.example
References: first@example.com n1@helpdesk.example

x
`,
			want: want{from: "a@example.com", fromCount: 1, subject: "x",
				inReplyTo: []string{"n1@helpdesk.example"}, refs: []string{"first@example.com", "n1@helpdesk.example"}, text: "x"},
		},
		{
			name: "PDF attachment",
			raw: `From: a@example.com
Subject: bon
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/plain; charset=utf-8

Zie bijlage.
--XX
Content-Type: application/pdf; name="bon 12.pdf"
Content-Disposition: attachment; filename="bon 12.pdf"
Content-Transfer-Encoding: base64

` + wrap76(base64.StdEncoding.EncodeToString(pdfBytes)) + `
--XX--
`,
			want: want{from: "a@example.com", fromCount: 1, subject: "bon", text: "Zie bijlage.",
				attach: []Attachment{{Filename: "bon 12.pdf", ContentType: "application/pdf", Size: int64(len(pdfBytes)), SHA256: pdfSum()}}},
		},
		{
			name: "HTML only",
			raw: `From: a@example.com
Subject: html
Content-Type: text/html; charset=utf-8

<html><body><p>Beste helpdesk,</p><p>De <b>kassa</b> doet het niet.</p></body></html>
`,
			want: want{from: "a@example.com", fromCount: 1, subject: "html", text: "kassa", html: "<b>kassa</b>"},
		},
		{
			name: "latin-1 bytes labelled utf-8",
			raw:  "From: a@example.com\nSubject: caf\xe9\nContent-Type: text/plain; charset=utf-8\n\ncaf\xe9 cr\xe8me\n",
			// Read as windows-1252 (Latin-1's superset), not shown as replacement characters.
			want: want{from: "a@example.com", fromCount: 1, subject: "café", text: "café crème"},
		},
		{
			name: "subject with line breaks and control characters",
			raw:  "From: a@example.com\nSubject: =?utf-8?B?" + base64.StdEncoding.EncodeToString([]byte("kassa\r\nBcc: all@example.com\x07\x00 stuk\ttab")) + "?=\n\nx\n",
			want: want{from: "a@example.com", fromCount: 1, subject: "kassa Bcc: all@example.com stuk tab", text: "x"},
		},
		{
			name: "broken base64",
			raw: `From: a@example.com
Subject: b64
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

SGFsbG8gd2VyZWxk!!!@@@###
`,
			want: want{from: "a@example.com", fromCount: 1, subject: "b64", text: "Hallo", warnings: true},
		},
		{
			name: "multipart without boundary parameter",
			raw: `From: a@example.com
Subject: nb
Content-Type: multipart/mixed

Gewoon tekst.
`,
			want: want{from: "a@example.com", fromCount: 1, subject: "nb", text: "Gewoon tekst."},
		},
		{
			name: "missing closing boundary",
			raw: `From: a@example.com
Subject: open
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/plain

Tekst zonder einde.
`,
			want: want{from: "a@example.com", fromCount: 1, subject: "open", text: "Tekst zonder einde.", warnings: true},
		},
		{
			name: "empty Return-Path: a bounce",
			raw: `Return-Path: <>
From: MAILER-DAEMON@mx.example.com
Subject: Undelivered Mail Returned to Sender

x
`,
			want: want{from: "mailer-daemon@mx.example.com", fromCount: 1, subject: "Undelivered Mail Returned to Sender", text: "x", hasReturnPath: true},
		},
		{
			name: "Return-Path with an address",
			raw: `Return-Path: <Bounce@Example.COM>
From: a@example.com
Subject: x

x
`,
			want: want{from: "a@example.com", fromCount: 1, subject: "x", text: "x", hasReturnPath: true, returnPath: "bounce@example.com"},
		},
		{
			name: "mbox From line before the header",
			raw: `From mike@nowhere.com Tue May 10 11:28:07 2005
Return-Path: <mike@nowhere.com>
From: Mike <mike@nowhere.com>
Subject: mbox
Content-Type: text/plain; charset=utf-8

Tekst.
`,
			want: want{from: "mike@nowhere.com", fromCount: 1, subject: "mbox", text: "Tekst.", hasReturnPath: true, returnPath: "mike@nowhere.com"},
		},
		{
			name: "LF line ends and folded subject",
			raw:  "From: a@example.com\nSubject: een lang\n onderwerp\n\nregel 1\nregel 2\n",
			want: want{from: "a@example.com", fromCount: 1, subject: "een lang onderwerp", text: "regel 1\nregel 2\n", textExact: true},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := crlf(tc.raw)
			e := Parse(raw, arrival)
			w := tc.want
			checkValid(t, tc.name, e)
			if !bytes.Equal(e.Raw, raw) || e.SHA256 != sha256.Sum256(raw) || !e.Arrival.Equal(arrival) {
				t.Errorf("Parse(%s) did not keep the raw bytes, their hash and the arrival time", tc.name)
			}
			if (e.Err != nil) != w.err {
				t.Errorf("Parse(%s).Err = %v, want error %v", tc.name, e.Err, w.err)
			}
			if e.From != w.from || e.FromCount != w.fromCount {
				t.Errorf("Parse(%s).From, FromCount = %q, %d, want %q, %d", tc.name, e.From, e.FromCount, w.from, w.fromCount)
			}
			if w.fromName != "" && e.FromName != w.fromName {
				t.Errorf("Parse(%s).FromName = %q, want %q", tc.name, e.FromName, w.fromName)
			}
			if e.Subject != w.subject {
				t.Errorf("Parse(%s).Subject = %q, want %q", tc.name, e.Subject, w.subject)
			}
			if e.MessageID != w.messageID {
				t.Errorf("Parse(%s).MessageID = %q, want %q", tc.name, e.MessageID, w.messageID)
			}
			if !reflect.DeepEqual(e.InReplyTo, w.inReplyTo) {
				t.Errorf("Parse(%s).InReplyTo = %q, want %q", tc.name, e.InReplyTo, w.inReplyTo)
			}
			if !reflect.DeepEqual(e.References, w.refs) {
				t.Errorf("Parse(%s).References = %q, want %q", tc.name, e.References, w.refs)
			}
			if w.textExact && e.Text != w.text || !strings.Contains(e.Text, w.text) {
				t.Errorf("Parse(%s).Text = %q, want it to contain %q", tc.name, e.Text, w.text)
			}
			if strings.Contains(e.Text, "\r") {
				t.Errorf("Parse(%s).Text = %q, want LF line ends", tc.name, e.Text)
			}
			if !strings.Contains(e.HTML, w.html) {
				t.Errorf("Parse(%s).HTML = %q, want it to contain %q", tc.name, e.HTML, w.html)
			}
			if e.HasReturnPath != w.hasReturnPath || e.ReturnPath != w.returnPath {
				t.Errorf("Parse(%s).HasReturnPath, ReturnPath = %v, %q, want %v, %q", tc.name, e.HasReturnPath, e.ReturnPath, w.hasReturnPath, w.returnPath)
			}
			if !reflect.DeepEqual(e.Attach, w.attach) {
				t.Errorf("Parse(%s).Attach = %+v, want %+v", tc.name, e.Attach, w.attach)
			}
			if w.warnings && len(e.Warnings) == 0 {
				t.Errorf("Parse(%s).Warnings = none, want the repair reported", tc.name)
			}
			if !e.Date.Equal(w.date) {
				t.Errorf("Parse(%s).Date = %v, want %v", tc.name, e.Date, w.date)
			}
			if w.to != nil && !reflect.DeepEqual(e.To, w.to) {
				t.Errorf("Parse(%s).To = %q, want %q", tc.name, e.To, w.to)
			}
		})
	}
}

// wrap76 folds base64 into lines as MIME writers do.
func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}

// Hostile input: Parse never panics, never loses the bytes, and returns valid UTF-8.
func TestParseGarbage(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	cases := []struct {
		name string
		raw  []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"only CRLF", []byte("\r\n\r\n")},
		{"random bytes", random},
		{"NUL bytes", bytes.Repeat([]byte{0}, 100)},
		{"header without body", []byte("From: a@example.com\r\nSubject: x")},
		{"header line without colon", []byte("this is not a header\r\n\r\nbody")},
		{"binary in headers", []byte("From: \xff\xfe@\x00example.com\r\nSubject: \xc3\x28\x80\r\nMessage-ID: <\xff@x>\r\n\r\n\xff\xfe")},
		{"deep multipart", []byte(deepMultipart(200))},
		{"many boundaries in the body text", []byte(strings.Repeat("boundary=x\r\n", 500))},
		{"huge header line", append([]byte("Subject: "), bytes.Repeat([]byte("a"), 100000)...)},
		{"unknown charset", []byte("From: a@example.com\r\nSubject: =?x-unknown?B?YWJj?=\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\nabc\r\n")},
		{"unknown transfer encoding", []byte("From: a@example.com\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := Parse(tc.raw, arrival)
			if e == nil {
				t.Fatalf("Parse(%s) = nil, want an Email", tc.name)
			}
			if !bytes.Equal(e.Raw, tc.raw) || e.SHA256 != sha256.Sum256(tc.raw) {
				t.Errorf("Parse(%s) did not keep the raw bytes", tc.name)
			}
			if e.Err != nil && strings.Contains(e.Err.Error(), "panic") {
				t.Errorf("Parse(%s) recovered from a panic: %v", tc.name, e.Err)
			}
			if len(e.Subject) > 998 {
				t.Errorf("Parse(%s).Subject is %d bytes, want at most 998", tc.name, len(e.Subject))
			}
			checkValid(t, tc.name, e)
		})
	}
}

// Nested multiparts whose boundaries are never closed cost enmime 2^depth: one small email
// would stall ingest for hours, on every retry. Such nesting is now refused at once (Err set:
// the email is held as unparseable, kept for staff as R11/R15 want) with its text kept, and
// real structures still parse.
func TestParseDeepNesting(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		wantErr bool
		text    string
	}{
		{"5 unclosed levels", deepMultipart(4), false, "diep"},
		{"9 levels, 8 cut off", deepMultipart(8), false, "diep"},
		{"10 levels, 9 cut off", deepMultipart(9), true, "diep"},
		{"16 unclosed levels", deepMultipart(15), true, "diep"},
		{"30 unclosed levels", deepMultipart(29), true, "diep"},
		{"5000 unclosed levels", deepMultipart(4999), true, "--b0\nContent-Type: multipart/mixed"}, // 300 kB: the text is cut at MaxText
		{"30 unclosed levels inside a closed multipart", wrapMultipart(deepMultipart(29)), true, "diep"},
		{"10 closed levels", closeAll(deepMultipart(9), 9), false, "diep"},
		{"200 closed siblings", siblings(200), false, "deel 199"},
		{"RFC 2231 boundary parameters", strings.ReplaceAll(deepMultipart(29), "boundary=", "boundary*0="), true, "diep"},
	}
	for _, tc := range cases {
		e := parseWithin(t, tc.name, []byte(tc.raw))
		if (e.Err != nil) != tc.wantErr {
			t.Errorf("Parse(%s).Err = %v, want error %v", tc.name, e.Err, tc.wantErr)
		}
		if !strings.Contains(e.Text, tc.text) {
			t.Errorf("Parse(%s).Text = %.80q, want it to contain %q", tc.name, e.Text, tc.text)
		}
		checkValid(t, tc.name, e)
	}
}

// wrapMultipart puts the body of msg as the second part of a properly closed multipart.
func wrapMultipart(msg string) string {
	i := strings.Index(msg, "\r\n\r\n")
	ct := msg[strings.Index(msg, "Content-Type:"):i]
	return "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"OUT\"\r\n\r\n" +
		"--OUT\r\nContent-Type: text/plain\r\n\r\nvoor\r\n" +
		"--OUT\r\n" + ct + "\r\n\r\n" + msg[i+4:] +
		"--OUT\r\nContent-Type: text/plain\r\n\r\nna\r\n--OUT--\r\n"
}

// closeAll appends the closing delimiters of deepMultipart(n), innermost first.
func closeAll(msg string, n int) string {
	for i := n; i >= 0; i-- {
		msg += "--b" + itoa(i) + "--\r\n"
	}
	return msg
}

// siblings is a multipart/mixed with n multipart/alternative parts, each closed.
func siblings(n int) string {
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"top\"\r\n\r\n")
	for i := range n {
		alt := "alt" + itoa(i)
		b.WriteString("--top\r\nContent-Type: multipart/alternative; boundary=\"" + alt + "\"\r\n\r\n")
		b.WriteString("--" + alt + "\r\nContent-Type: text/plain\r\n\r\ndeel " + itoa(i) + "\r\n")
		b.WriteString("--" + alt + "\r\nContent-Type: text/html\r\n\r\n<p>deel " + itoa(i) + "</p>\r\n--" + alt + "--\r\n")
	}
	b.WriteString("--top--\r\n")
	return b.String()
}

func deepMultipart(n int) string {
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n")
	for i := range n {
		b.WriteString("--b" + itoa(i) + "\r\nContent-Type: multipart/mixed; boundary=\"b" + itoa(i+1) + "\"\r\n\r\n")
	}
	b.WriteString("--b" + itoa(n) + "\r\nContent-Type: text/plain\r\n\r\ndiep\r\n")
	return b.String()
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}

func TestMessageIDs(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"<A@B.c>", []string{"A@B.c"}}, // case kept: the id goes back out byte for byte
		{"  < a@b.c >  ", []string{"a@b.c"}},
		{"<a@b> <C@D>", []string{"a@b", "C@D"}},
		{"<a@b>bare@x<c@d>", []string{"a@b", "c@d"}},
		{"bare@X.com other@y", []string{"bare@X.com", "other@y"}},
		{"<CAF=x5Kq3bZ+Yw_T-9@mail.gmail.com>", []string{"CAF=x5Kq3bZ+Yw_T-9@mail.gmail.com"}},
		{"no ids here", nil},
		{"", nil},
		{"<>", nil},
		{"<with space@x>", nil},
		{"<unclosed@x", []string{"unclosed@x"}}, // kept leniently
	}
	for _, tc := range cases {
		if got := MessageIDs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("MessageIDs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := BareMessageID(" <Abc@Example.COM> "); got != "Abc@Example.COM" {
		t.Errorf("BareMessageID(\" <Abc@Example.COM> \") = %q, want Abc@Example.COM", got)
	}
	raw := []byte("From: a@example.com\r\nMessage-ID:\r\n <AM0PR07MB1234ABCD5678EF@AM0PR07MB1234.eurprd07.prod.outlook.com>\r\n\r\nMessage-ID: <not@header>\r\n")
	if got := HeaderMessageID(raw); got != "AM0PR07MB1234ABCD5678EF@AM0PR07MB1234.eurprd07.prod.outlook.com" {
		t.Errorf("HeaderMessageID(folded Outlook id) = %q, want the id as written", got)
	}
	if got := HeaderMessageID([]byte("From: a@example.com\r\n\r\nMessage-ID: <not@header>\r\n")); got != "" {
		t.Errorf("HeaderMessageID(no Message-ID in the header) = %q, want \"\"", got)
	}
}

func TestCleanLine(t *testing.T) {
	long := strings.Repeat("é", 600) // 1200 bytes
	cases := []struct{ in, want string }{
		{"a\r\nb", "a b"},
		{"  a \t b  ", "a b"},
		{"a\x00b\x1bc", "abc"},
		{"a\u2028b", "a b"},
		{"\xff", "ÿ"},              // not UTF-8: read as windows-1252
		{"caf\xe9 \x80", "café €"}, // Latin-1 under a lying "utf-8", and 0x80 (€)
		{long, strings.Repeat("é", 499)},
	}
	for _, tc := range cases {
		if got := CleanLine(tc.in); got != tc.want {
			t.Errorf("CleanLine(%.40q) = %.40q (%d bytes), want %.40q (%d bytes)", tc.in, got, len(got), tc.want, len(tc.want))
		}
	}
}

func TestEmailHeaders(t *testing.T) {
	e := Parse(crlf("Received: one\nreceived: two\nX-Custom:  folded\n  value\nFrom a@b Tue May 10\nAuto-Submitted: auto-replied\n\nbody\n"), arrival)
	cases := []struct {
		name string
		got  any
		want any
	}{
		{"Values(Received)", e.Values("RECEIVED"), []string{"one", "two"}},
		{"Get(x-custom)", e.Get("x-custom"), "folded value"},
		{"Get(auto-submitted)", e.Get("auto-submitted"), "auto-replied"},
		{"Get(Missing)", e.Get("Missing"), ""},
	}
	for _, tc := range cases {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

// corpusDir is one set of the real-world corpus in the repository's testdata/corpus (see its
// README.md); a corpus that is not there fails the test: it is part of the repository.
func corpusDir(t testing.TB, sub string) string {
	t.Helper()
	p := filepath.Join("..", "..", "testdata", "corpus", sub)
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		t.Fatalf("corpus %s missing from the repository (testdata/corpus/%s): %v", sub, sub, err)
	}
	return p
}

// Real mail from many programs, broken on purpose or not: nothing panics, every Email is
// valid UTF-8, and almost everything has a sender.
func TestCorpus(t *testing.T) {
	for _, sub := range []string{"mail-gem", "bounces"} {
		t.Run(sub, func(t *testing.T) {
			dir := corpusDir(t, sub)
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var n, withErr, withWarn, noFrom int
			for _, ent := range entries {
				if !ent.Type().IsRegular() || ent.Name() == "LICENSE" {
					continue
				}
				b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
				if err != nil {
					t.Fatal(err)
				}
				raw := crlf(string(b))
				e := Parse(raw, arrival)
				n++
				if e.Err != nil {
					withErr++
					t.Logf("%s: Err %v", ent.Name(), e.Err)
					if strings.Contains(e.Err.Error(), "panic") {
						t.Errorf("Parse(%s) panicked: %v", ent.Name(), e.Err)
					}
				}
				if len(e.Warnings) > 0 {
					withWarn++
				}
				if e.From == "" {
					noFrom++
				}
				if !bytes.Equal(e.Raw, raw) {
					t.Errorf("Parse(%s) did not keep the raw bytes", ent.Name())
				}
				checkValid(t, ent.Name(), e)
			}
			t.Logf("%s: %d emails, %d with Err, %d with warnings, %d without a From address", sub, n, withErr, withWarn, noFrom)
			if n == 0 {
				t.Errorf("corpus %s is empty", dir)
			}
		})
	}
}

// FuzzParse: whatever the bytes, Parse returns an Email with the raw bytes and valid UTF-8,
// the structure walk (scanStructure) never sees less than enmime builds (the bounds hold for
// what enmime reads), and Parts gives exactly the files Parse lists. Seeds: the small corpus
// files in testdata/, a few hand-made edge cases, and in testdata/fuzz/FuzzParse cheap hostile
// shapes (boundaries hidden
// in encoded words 40 deep, thousands of tiny parts, cut-off nesting inside a closed part,
// a delimiter in the middle of a line, a boundary of 5000 characters).
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.eml")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(crlf(string(b)))
	}
	f.Add([]byte{})
	f.Add([]byte(deepMultipart(12)))
	f.Add([]byte(siblings(3)))
	f.Add([]byte("From: a@b.c\r\nSubject: =?utf-8?B?4oKs?=\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nhi\r\n--x--\r\n"))
	// The From forms that were read as a customer's address, and duplicate fields.
	for _, from := range []string{"=?utf-8?q?piet=40bakkerijdevries.nl?=", `"piet@bakkerijdevries.nl" <>`,
		"attacker (piet@bakkerijdevries.nl)", `"your secret past" <power quadrant system@example.com>`,
		"Piet <piet@ba\u212aerijdevries.nl>", `Piet <"piet de vries"@bakkerijdevries.nl>`, `"a@b.example"@evil.example`} {
		f.Add([]byte("From: " + from + "\r\nSubject: x\r\n\r\nx\r\n"))
	}
	f.Add([]byte("Subject: [Infobits #2]\r\nFrom: a@b.c\r\nSubject: Lunch\r\nFrom: c@d.e\r\n\r\nx\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e := Parse(raw, arrival)
		if e == nil {
			t.Fatal("Parse returned nil")
		}
		// A sender read is one the strict parser reads back as itself: an addr-spec in ASCII
		// lower case, never a guess.
		if e.From != "" {
			l, err := ParseAddressList(e.From)
			if err != nil || len(l) != 1 || l[0].Address != e.From || helpdesk.ASCIILower(e.From) != e.From {
				t.Fatalf("From %q does not read back as itself: %v %v", e.From, l, err)
			}
		}
		if !bytes.Equal(e.Raw, raw) {
			t.Fatal("Parse did not keep the raw bytes")
		}
		if e.Err != nil && strings.Contains(e.Err.Error(), "parser panic") {
			t.Fatalf("Parse panicked: %v", e.Err)
		}
		checkValid(t, "fuzz input", e)
		checkScanCovers(t, "fuzz input", raw)
		checkPartsMatch(t, "fuzz input", raw)
	})
}

// parseWithin is Parse with a hang guard: minutes, far above what any input here needs even
// on a busy machine; how the cost grows is TestParseLinear's.
func parseWithin(t *testing.T, name string, raw []byte) *Email {
	t.Helper()
	done := make(chan *Email, 1)
	go func() { done <- Parse(raw, arrival) }()
	select {
	case e := <-done:
		return e
	case <-time.After(3 * time.Minute):
		t.Fatalf("Parse(%s) still running after 3 minutes: it hangs", name)
		return nil
	}
}

// linearShapes are emails of about n bytes, each stretching one part of the format: what a
// hostile sender would make huge.
var linearShapes = map[string]func(n int) []byte{
	// Seen in review: unfolding by string concatenation took 11 s for 625 KiB and would take
	// hours for a 25 MB header, blocking every email behind it.
	"folded header": func(n int) []byte {
		return []byte("From: a@example.com\r\nSubject: x\r\nX-Long: start\r\n" +
			strings.Repeat(" continued\r\n", n/12) + "\r\nbody\r\n")
	},
	"long header line": func(n int) []byte {
		return []byte("From: a@example.com\r\nSubject: x\r\nX-Long: " + strings.Repeat("abcdefgh", n/8) + "\r\n\r\nbody\r\n")
	},
	"many header fields": func(n int) []byte {
		return []byte("From: a@example.com\r\nSubject: x\r\n" + strings.Repeat("X-Veld: waarde\r\n", n/16) + "\r\nbody\r\n")
	},
	"long subject of encoded words": func(n int) []byte {
		return []byte("From: a@example.com\r\nSubject: " + strings.Repeat("=?utf-8?q?caf=C3=A9?=\r\n ", n/24) + "\r\n\r\nbody\r\n")
	},
	"base64 attachment": func(n int) []byte {
		data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0, 1, 2, 0xfe, 0xff, 'k', 'a', 's'}, n/11))
		var b strings.Builder
		for len(data) > 76 {
			b.WriteString(data[:76] + "\r\n")
			data = data[76:]
		}
		b.WriteString(data + "\r\n")
		return []byte("From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=g\r\n\r\n" +
			"--g\r\nContent-Type: text/plain\r\n\r\nzie bijlage\r\n--g\r\nContent-Type: application/octet-stream; name=kassa.log\r\n" +
			"Content-Disposition: attachment; filename=kassa.log\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b.String() + "--g--\r\n")
	},
	"quoted-printable body": func(n int) []byte {
		return []byte("From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n" +
			"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + strings.Repeat("De kassa=E9 start niet op, z=\r\n", n/31))
	},
	"long html body": func(n int) []byte {
		return []byte("From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
			strings.Repeat("<div><p>De kassa <b>start</b> niet</p></div>\r\n", n/46))
	},
	"deep nesting, unclosed": func(n int) []byte { return []byte(deepMultipart(n / 60)) },
	"deep nesting, closed":   func(n int) []byte { return []byte(closeAll(deepMultipart(n/70), n/70)) },
	"many siblings":          func(n int) []byte { return []byte(siblings(n / 220)) },
	// Boundaries in encoded words that the old nesting check did not see (enmime:
	// exponential), and tiny parts (enmime: quadratic). Past the bounds they are refused.
	"nesting with encoded-word boundaries": func(n int) []byte { return encodedWordNesting(n / 75) },
	"tiny parts without a header":          func(n int) []byte { return flatParts(n / 10) },
	"tiny parts with a header":             func(n int) []byte { return tinyParts(n / 40) },
}

// costlyShapes cost the most per byte (a part per 220 bytes, HTML to text): they are measured
// at a quarter of the size, to keep the test short.
var costlyShapes = map[string]bool{"long html body": true, "deep nesting, closed": true, "many siblings": true}

// parseHere is Parse on the calling goroutine, as growth.Linear measures it: without the
// deadline, which runs the MIME parser on a goroutine of its own (the bounds and the work
// budget stay).
func parseHere(raw []byte) { ParseContext(context.Background(), raw, arrival, Limits{Deadline: -1}) }

// TestParseLinear: whatever part of an email is made huge, parsing costs (CPU time and bytes
// allocated, not wall time) about 16 times more at 16 times the size — a quadratic step would
// cost 256 times more. Hostile mail must not stall the gateway; a busy machine must not fail
// this test.
func TestParseLinear(t *testing.T) {
	for name, shape := range linearShapes {
		t.Run(name, func(t *testing.T) {
			n := 32 << 10
			if costlyShapes[name] {
				n = 8 << 10
			}
			growth.Linear(t, n, shape, parseHere)
		})
	}
}

// TestFoldedHeaderLinear: a header folded into 200,000 lines (2.2 MB) is unfolded whole, in
// linear time (TestParseLinear's "folded header"; checked first here, so that a quadratic
// unfolding fails in a second instead of hanging).
func TestFoldedHeaderLinear(t *testing.T) {
	growth.Linear(t, 32<<10, linearShapes["folded header"], parseHere)
	if t.Failed() {
		return
	}
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nSubject: x\r\nX-Long: start\r\n")
	for range 200000 { // 2.2 MB of folded header
		b.WriteString(" continued\r\n")
	}
	b.WriteString("\r\nbody\r\n")
	e := parseWithin(t, "2 MB folded header", []byte(b.String()))
	if got := len(e.Get("X-Long")); got < 2000000 {
		t.Errorf("X-Long unfolded to %d bytes, want the whole header", got)
	}
	if e.From != "a@example.com" {
		t.Errorf("From = %q", e.From)
	}
}

// TestParseFromStrict: "When the strict RFC 5322 parse of From fails, the email is
// held as no_sender; no fallback guesses an address out of a display name, comment or encoded
// word", and "addresses are lower-cased in ASCII only". Each attack From seen in practice names no
// sender; the legitimate forms keep working.
func TestParseFromStrict(t *testing.T) {
	cases := []struct {
		from     string
		want     string // "" when no sender may be read
		wantName string
	}{
		// The attacks: each was read as the customer's address.
		{"=?utf-8?q?piet=40bakkerijdevries.nl?=", "", ""},
		{`"piet@bakkerijdevries.nl"`, "", ""},
		{`"piet@bakkerijdevries.nl" <>`, "", ""},
		{"attacker (piet@bakkerijdevries.nl)", "", ""},
		{`"your secret past" <power quadrant system@example.com>`, "", ""},
		{"Vries, Piet <piet@bakkerijdevries.nl>", "", ""},
		{"<piet@bakkerijdevries.nl@evil.example>", "", ""},
		{"Piet <piet@bakkerijdevries.nl", "", ""},
		{"piet@bakkerijdevries.nl <piet@bakkerijdevries.nl>", "", ""},
		// U+212A KELVIN SIGN: Unicode lower-cases it to "k"; ASCII lower-casing leaves it.
		{"Piet <piet@ba\u212aerijdevries.nl>", "piet@ba\u212aerijdevries.nl", "Piet"},
		{"PIET@BA\u212aERIJDEVRIES.NL", "piet@ba\u212aerijdevries.nl", ""},
		// A quoted local part that holds an address stays quoted: it is evil.example's.
		{`"piet@bakkerijdevries.nl"@evil.example`, `"piet@bakkerijdevries.nl"@evil.example`, ""},
		// The legitimate forms.
		{"Piet de Vries <Piet@BakkerijDeVries.nl>", "piet@bakkerijdevries.nl", "Piet de Vries"},
		{`"Vries, Piet de" <piet@bakkerijdevries.nl>`, "piet@bakkerijdevries.nl", "Vries, Piet de"},
		{"Piet de Vries Jr. <piet@bakkerijdevries.nl>", "piet@bakkerijdevries.nl", "Piet de Vries Jr."},
		{"piet@bakkerijdevries.nl (Piet)", "piet@bakkerijdevries.nl", "Piet"},
		{"<piet@bakkerijdevries.nl>", "piet@bakkerijdevries.nl", ""},
		{`"piet"@bakkerijdevries.nl`, "piet@bakkerijdevries.nl", ""},
		{`Piet <"piet de vries"@bakkerijdevries.nl>`, `"piet de vries"@bakkerijdevries.nl`, "Piet"},
		{"=?utf-8?q?Bakkerij_J=C3=BCrgen?= <juergen@b\u00e4ckerij.nl>", "juergen@b\u00e4ckerij.nl", "Bakkerij Jürgen"},
		{"J\xfcrgen <juergen@example.de>", "juergen@example.de", "Jürgen"}, // 8-bit windows-1252 name
	}
	for _, c := range cases {
		raw := crlf("From: " + c.from + "\nSubject: x\n\nx\n")
		e := Parse(raw, arrival)
		checkValid(t, c.from, e)
		if e.From != c.want || (c.want != "" && e.FromCount != 1) {
			t.Errorf("From: %q gives From %q (count %d), want %q", c.from, e.From, e.FromCount, c.want)
		}
		if c.want != "" && e.FromName != c.wantName {
			t.Errorf("From: %q gives FromName %q, want %q", c.from, e.FromName, c.wantName)
		}
	}
}

// TestDuplicateFields: a field RFC 5322 allows once that occurs twice is listed in
// Duplicates (the policy holds the email); ReadBottomMost reads the copies a DKIM signature
// covers, what a released email becomes.
func TestDuplicateFields(t *testing.T) {
	raw := crlf(`Subject: [Infobits #2]
Received: by mx.infobits.example
From: Marieke <marieke@infobits.example>
To: collega@infobits.example
Subject: Lunch vrijdag?
Message-ID: <lunch@infobits.example>
Date: Fri, 27 Nov 2026 10:00:00 +0100
Content-Type: text/plain

Zin in lunch?
`)
	e := Parse(raw, arrival)
	if !reflect.DeepEqual(e.Duplicates, []string{"Subject"}) {
		t.Fatalf("Duplicates = %q, want [Subject]", e.Duplicates)
	}
	if e.Subject != "[Infobits #2]" {
		t.Errorf("Subject = %q, want the topmost copy before a release", e.Subject)
	}
	e.ReadBottomMost()
	if e.Subject != "Lunch vrijdag?" || e.From != "marieke@infobits.example" || e.MessageID != "lunch@infobits.example" {
		t.Errorf("after ReadBottomMost: Subject %q, From %q, Message-ID %q; want the signed copies", e.Subject, e.From, e.MessageID)
	}

	all := "From: a@example.com\nFrom: b@example.com\nSender: a@example.com\nSender: a@example.com\nReply-To: a@example.com\nReply-To: b@example.com\n" +
		"To: a@example.com\nTo: b@example.com\nCc: a@example.com\ncc: b@example.com\nSubject: a\nSubject: b\n" +
		"Date: Fri, 27 Nov 2026 10:00:00 +0100\nDate: Fri, 27 Nov 2026 11:00:00 +0100\nMessage-ID: <a@x>\nMessage-Id: <b@x>\n" +
		"In-Reply-To: <a@x>\nIn-Reply-To: <b@x>\nReferences: <a@x>\nReferences: <b@x>\nReceived: x\nReceived: y\nComments: a\nComments: b\n\nx\n"
	e = Parse(crlf(all), arrival)
	if !reflect.DeepEqual(e.Duplicates, OnceOnly) {
		t.Errorf("Duplicates = %q, want every once-only field %q (Received and Comments may repeat)", e.Duplicates, OnceOnly)
	}
	e.ReadBottomMost()
	if e.From != "b@example.com" || e.FromCount != 1 || e.Subject != "b" || e.MessageID != "b@x" ||
		!reflect.DeepEqual(e.InReplyTo, []string{"b@x"}) || !reflect.DeepEqual(e.References, []string{"b@x"}) ||
		!reflect.DeepEqual(e.To, []string{"b@example.com"}) || e.Date.Hour() != 11 {
		t.Errorf("ReadBottomMost: %q %d %q %q %q %q %q %v", e.From, e.FromCount, e.Subject, e.MessageID, e.InReplyTo, e.References, e.To, e.Date)
	}

	e = Parse(crlf("From: a@example.com\nTo: a@example.com, b@example.com\nSubject: x\n\nx\n"), arrival)
	if len(e.Duplicates) != 0 {
		t.Errorf("Duplicates = %q for an email with each field once", e.Duplicates)
	}
}

// TestRuns: the values of a field grouped into runs of adjacent fields, for the trusted
// server's Authentication-Results.
func TestRuns(t *testing.T) {
	raw := crlf(`Return-Path: <a@example.com>
Authentication-Results: internal; none
Received: by mx
Authentication-Results: mx; dmarc=fail
Authentication-Results: mx; dkim=none
Authentication-Results: other; dkim=pass
Received: by mx.example.com
Authentication-Results: mx; dmarc=pass
From: a@example.com

x
`)
	got := Parse(raw, arrival).Runs("authentication-results")
	want := [][]string{{"internal; none"}, {"mx; dmarc=fail", "mx; dkim=none", "other; dkim=pass"}, {"mx; dmarc=pass"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Runs = %q, want %q", got, want)
	}
	if got := (&Email{Header: map[string][]string{"X": {"a", "b"}}}).Runs("X"); !reflect.DeepEqual(got, [][]string{{"a", "b"}}) {
		t.Errorf("Runs without positions = %q, want one run", got)
	}
}
