package parse

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/infobits/helpdesk/ingest/imaptest"
)

// The fidelity classes: real mail that a mature helpdesk's parser fixtures showed the gateway
// reading wrong. Each test is a small email made for it; what it asserts is what staff see:
// the sender, the subject, the text, the files and their names.

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// attachNames lists Attach as "name type size".
func attachNames(e *Email) []string {
	var out []string
	for _, a := range e.Attach {
		out = append(out, a.Filename+" "+a.ContentType)
	}
	return out
}

// TestNoContentTypeUTF8: a message without any Content-Type is US-ASCII by RFC 2045, but mail
// programs send UTF-8 that way; valid UTF-8 is read as UTF-8 ("Prénom", not "PrÃ©nom"), anything
// else as windows-1252.
func TestNoContentTypeUTF8(t *testing.T) {
	e := Parse(crlf("From: Aurélie <a@example.fr>\nSubject: Formulaire\n\nPrénom: Aurélie\nNom: Dupont — merci\n"), arrival)
	if e.Text != "Prénom: Aurélie\nNom: Dupont — merci\n" {
		t.Errorf("no Content-Type, UTF-8 body: Text = %q", e.Text)
	}
	e = Parse(crlf("From: a@example.fr\nSubject: x\n\nPr\xe9nom: caf\xe9 \x80 5\n"), arrival)
	if e.Text != "Prénom: café € 5\n" {
		t.Errorf("no Content-Type, 8-bit body: Text = %q, want windows-1252", e.Text)
	}
	e = Parse(crlf("From: a@example.fr\nSubject: x\nContent-Type: text/plain; charset=us-ascii\n\nPrénom\n"), arrival)
	if e.Text != "Prénom\n" {
		t.Errorf("US-ASCII declared over UTF-8: Text = %q", e.Text)
	}
}

// TestHTMLStrayLatin1: an HTML part that says it is UTF-8 but holds a Latin-1 byte is read as
// the plain-text path reads such bytes (windows-1252), not as U+FFFD.
func TestHTMLStrayLatin1(t *testing.T) {
	for _, raw := range []string{
		"From: a@example.nl\nSubject: x\nContent-Type: text/html; charset=utf-8\n\n<html><body><p>De caf\xe9 is dicht, \xe2\x82\xac 5</p></body></html>\n",
		"From: a@example.nl\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n<p>De caf=E9 is dicht, =E2=82=AC 5</p>\n--b--\n",
	} {
		e := Parse(crlf(raw), arrival)
		if !strings.Contains(e.Text, "De café is dicht, € 5") || strings.ContainsRune(e.Text, '\uFFFD') {
			t.Errorf("HTML with a stray Latin-1 byte: Text = %q", e.Text)
		}
	}
}

// TestEmptyPlainBesideHTML: a multipart/alternative whose text/plain part is empty (or only
// white space) beside a real HTML part: the HTML's text is the text.
func TestEmptyPlainBesideHTML(t *testing.T) {
	raw := crlf(`From: a@example.nl
Subject: leeg
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

  

--alt
Content-Type: text/html; charset=utf-8

<html><body><p>De <b>bonprinter</b> doet het niet.</p></body></html>
--alt--
`)
	e := Parse(raw, arrival)
	if !strings.Contains(e.Text, "bonprinter* doet het niet.") {
		t.Errorf("empty text/plain beside HTML: Text = %q, want the HTML's text", e.Text)
	}
	if len(e.Attach) != 0 {
		t.Errorf("Attach = %v, want none: both parts are the text", attachNames(e))
	}
}

// TestJunkBeforeHeader: what cannot be a header line before the first one that can (a
// forwarding client's "---- Original email message ----", an mbox "From " line) is skipped,
// as mail libraries do; the email is read, not held as unparseable.
func TestJunkBeforeHeader(t *testing.T) {
	for _, junk := range []string{"---- Original email message ----\n", "From piet@bakkerij.nl Tue May 10 11:28:07 2005\n",
		"\t \n---- Original email message ----\n"} {
		raw := crlf(junk + `From: Piet <piet@bakkerij.nl>
Subject: kassa
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=m

--m
Content-Type: text/plain; charset=utf-8

De kassa start niet.
--m
Content-Type: application/pdf; name=bon.pdf
Content-Transfer-Encoding: base64

JVBERi0x
--m--
`)
		e := Parse(raw, arrival)
		if e.Err != nil || e.From != "piet@bakkerij.nl" || e.Subject != "kassa" || !strings.Contains(e.Text, "De kassa start niet.") ||
			!reflect.DeepEqual(attachNames(e), []string{"bon.pdf application/pdf"}) {
			t.Errorf("junk %q: Err %v, From %q, Subject %q, Text %q, Attach %v", junk, e.Err, e.From, e.Subject, e.Text, attachNames(e))
		}
		if parts, err := Parts(raw); err != nil || len(parts) != 1 || string(parts[0].Content) != "%PDF-1" {
			t.Errorf("junk %q: Parts = %v, %v", junk, parts, err)
		}
	}
	// No header line at all: nothing is skipped (the text is the text).
	e := Parse(crlf("Hallo,\n\nDe kassa: stuk.\n"), arrival)
	if !strings.Contains(e.Text, "De kassa: stuk.") && !strings.Contains(e.Text, "Hallo") {
		t.Errorf("no header: Text = %q", e.Text)
	}
}

// TestFoldedAndRFC2231FileNames: a filename folded onto the next line, with more parameters
// after it, and RFC 2231 continuations in any charset, give just the name.
func TestFoldedAndRFC2231FileNames(t *testing.T) {
	part := func(headers string) string {
		return "--m\n" + headers + "\nContent-Transfer-Encoding: base64\n\nJVBERi0x\n"
	}
	raw := crlf("From: a@example.nl\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=m\n\n" +
		"--m\nContent-Type: text/plain\n\nzie bijlagen\n" +
		part("Content-Type: application/pdf\nContent-Disposition: attachment;\n filename=\n \"offerte 2026.pdf\"; size=6;\n creation-date=\"Fri, 27 Nov 2026 10:00:00 +0100\"") +
		part("Content-Type: application/pdf;\n\tname=\"factuur.pdf\"\nContent-Disposition: attachment; filename=\"factuur.pdf\";\n\tsize=6") +
		part("Content-Type: application/pdf\nContent-Disposition: attachment;\n filename*0*=utf-8''caf%C3%A9%20;\n filename*1*=bon%20;\n filename*2=\"2026.pdf\"") +
		part("Content-Type: application/pdf\nContent-Disposition: attachment; filename*=iso-8859-1'nl'r%E9sum%E9.pdf; filename=\"resume.pdf\"") +
		part("Content-Type: application/pdf; name*=windows-1252''%80%20prijs.pdf") +
		"--m--\n")
	e := Parse(raw, arrival)
	want := []string{"offerte 2026.pdf application/pdf", "factuur.pdf application/pdf", "café bon 2026.pdf application/pdf",
		"résumé.pdf application/pdf", "€ prijs.pdf application/pdf"}
	if got := attachNames(e); !reflect.DeepEqual(got, want) {
		t.Errorf("Attach = %q, want %q", got, want)
	}
	checkPartsMatch(t, "folded names", raw)
}

// TestRaw8bitNamesAndSubject: 8-bit bytes in a subject or file name, without an encoded word
// saying which charset: valid UTF-8 is UTF-8, else the charset the part or message declares
// for its text, else windows-1252.
func TestRaw8bitNamesAndSubject(t *testing.T) {
	koi := "\xf0\xd2\xc9\xd7\xc5\xd4" // "Привет" in KOI8-R
	raw := crlf("From: a@example.ru\nSubject: " + koi + " kassa\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=m\n\n" +
		"--m\nContent-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: 8bit\n\n" + koi + "\n" +
		"--m\nContent-Type: application/pdf; name=\"" + koi + ".pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0x\n" +
		"--m\nContent-Type: text/plain; charset=iso-8859-2; name=\"\xb1.txt\"\nContent-Disposition: attachment\n\nx\n" +
		"--m\nContent-Type: application/pdf; name=\"caf\xc3\xa9.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0x\n" +
		"--m--\n")
	e := Parse(raw, arrival)
	if e.Subject != "Привет kassa" || e.Text != "Привет" {
		t.Errorf("Subject %q, Text %q; want KOI8-R read as the text declares", e.Subject, e.Text)
	}
	want := []string{"Привет.pdf application/pdf", "ą.txt text/plain", "café.pdf application/pdf"}
	if got := attachNames(e); !reflect.DeepEqual(got, want) {
		t.Errorf("Attach = %q, want %q (the part's charset, then the message's; UTF-8 as it is)", got, want)
	}
	// No charset anywhere: windows-1252.
	e = Parse(crlf("From: a@example.nl\nSubject: caf\xe9 \x80\n\nx\n"), arrival)
	if e.Subject != "café €" {
		t.Errorf("Subject = %q, want windows-1252", e.Subject)
	}
	checkPartsMatch(t, "raw 8-bit names", raw)
}

// TestUUEncode: Content-Transfer-Encoding x-uuencode (and uuencode) is decoded; the begin
// line names a file sent without a name.
func TestUUEncode(t *testing.T) {
	content := []byte("Kassa log\r\n\x00\x01\x02\xff regel 2 van de log, lang genoeg voor twee regels uuencode.\r\n")
	uu := uuencode("kassa.log", content)
	for _, cte := range []string{"x-uuencode", "uuencode", "X-UUEncode"} {
		raw := crlf("From: a@example.nl\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=m\n\n" +
			"--m\nContent-Type: text/plain\n\nzie log\n" +
			"--m\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: " + cte + "\n\n" + uu +
			"--m--\n")
		e := Parse(raw, arrival)
		if len(e.Attach) != 1 || e.Attach[0].Filename != "kassa.log" || e.Attach[0].Size != int64(len(content)) ||
			e.Attach[0].SHA256 != hexSum(content) {
			t.Errorf("%s: Attach = %+v, want kassa.log of %d bytes", cte, e.Attach, len(content))
		}
		parts, err := Parts(raw)
		if err != nil || len(parts) != 1 || !bytes.Equal(parts[0].Content, content) {
			t.Errorf("%s: Parts = %+v, %v", cte, parts, err)
		}
	}
}

// uuencode encodes b as uuencoded lines between begin and end.
func uuencode(name string, b []byte) string {
	var s strings.Builder
	s.WriteString("begin 644 " + name + "\n")
	enc := func(c byte) byte {
		if c == 0 {
			return '`'
		}
		return c + ' '
	}
	for len(b) > 0 {
		n := min(45, len(b))
		line := b[:n]
		b = b[n:]
		s.WriteByte(enc(byte(n)))
		for i := 0; i < n; i += 3 {
			var q [3]byte
			copy(q[:], line[i:min(i+3, n)])
			s.WriteByte(enc(q[0] >> 2))
			s.WriteByte(enc((q[0]<<4 | q[1]>>4) & 63))
			s.WriteByte(enc((q[1]<<2 | q[2]>>6) & 63))
			s.WriteByte(enc(q[2] & 63))
		}
		s.WriteByte('\n')
	}
	s.WriteString("`\nend\n")
	return s.String()
}

// TestTruncatedBase64: a base64 part cut off in the middle (of a line, of a quantum) keeps
// what decodes instead of nothing.
func TestTruncatedBase64(t *testing.T) {
	content := bytes.Repeat([]byte("%PDF-1.4 kassabon\x00\xff"), 20)
	enc := wrap76(base64.StdEncoding.EncodeToString(content))
	cut := enc[:len(enc)/2+1] // mid-line, mid-quantum
	raw := crlf("From: a@example.nl\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=m\n\n" +
		"--m\nContent-Type: text/plain\n\nzie bijlage\n" +
		"--m\nContent-Type: application/pdf; name=bon.pdf\nContent-Transfer-Encoding: base64\n\n" + cut + "\n--m--\n")
	e := Parse(raw, arrival)
	if len(e.Attach) != 1 || e.Attach[0].Size < int64(len(content))/2-3 {
		t.Fatalf("Attach = %+v, want about half of the %d bytes kept", e.Attach, len(content))
	}
	parts, err := Parts(raw)
	if err != nil || len(parts) != 1 || !bytes.HasPrefix(content, parts[0].Content) || int64(len(parts[0].Content)) != e.Attach[0].Size {
		t.Errorf("Parts = %d bytes (%v), want the %d bytes listed, a prefix of the file", len(parts[0].Content), err, e.Attach[0].Size)
	}
	// A whole email that is truncated base64 text.
	e = Parse(crlf("From: a@example.nl\nSubject: x\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"+
		base64.StdEncoding.EncodeToString([]byte("De kassa start niet op."))[:22]+"\n"), arrival)
	if !strings.HasPrefix(e.Text, "De kassa start") {
		t.Errorf("truncated base64 text: Text = %q", e.Text)
	}
}

// TestFilesOnceAndNamed: every part a customer sent is either the text or a file — a
// text/html part that is not the body (a second one after the alternative, one nested deeper)
// is a file; the body's text and HTML parts are not, also when they say "inline"; nothing is
// listed twice; a nameless file gets a name from its type.
func TestFilesOnceAndNamed(t *testing.T) {
	raw := crlf(`From: a@example.nl
Subject: alles
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed"

--mixed
Content-Type: multipart/alternative; boundary="mixed-alt"

--mixed-alt
Content-Type: text/plain; charset=utf-8
Content-Disposition: inline

De tekst.
--mixed-alt
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: text/html; charset=utf-8
Content-Disposition: inline

<p>De tekst.</p>
--rel
Content-Type: text/html; charset=utf-8

<p>Een tweede HTML-deel, genest.</p>
--rel
Content-Type: image/png
Content-Disposition: inline
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--rel--
--mixed-alt--
--mixed
Content-Type: text/html; charset=utf-8

<p>Nog een HTML-deel na het alternatief.</p>
--mixed
Content-Type: application/pdf
Content-Transfer-Encoding: base64

JVBERi0x
--mixed
Content-Type: application/pdf
Content-Disposition: attachment
Content-Transfer-Encoding: base64

JVBERi0y
--mixed
Content-Type: application/octet-stream
Content-Disposition: inline
Content-Transfer-Encoding: base64

AAEC
--mixed
Content-Type: message/rfc822

From: b@example.nl
Subject: doorgestuurd

oud bericht
--mixed
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.nl
--mixed--
`)
	e := Parse(raw, arrival)
	if e.Text != "De tekst." {
		t.Errorf("Text = %q", e.Text)
	}
	want := []string{"bijlage.html text/html", "bijlage.png image/png", "bijlage-2.html text/html", "bijlage.pdf application/pdf",
		"bijlage-2.pdf application/pdf", "bijlage.bin application/octet-stream", "bericht.eml message/rfc822",
		"rapport.txt message/delivery-status"}
	if got := attachNames(e); !reflect.DeepEqual(got, want) {
		t.Errorf("Attach =\n%q, want\n%q", got, want)
	}
	checkPartsMatch(t, "files once", raw)
}

// checkPartsMatch fails when Parts does not give the files Parse lists: the same names, types,
// sizes and hashes, in the same order.
func checkPartsMatch(t *testing.T, name string, raw []byte) {
	t.Helper()
	e := Parse(raw, arrival)
	parts, err := Parts(raw)
	if err != nil && e.Err == nil {
		t.Errorf("%s: Parts: %v, but Parse read the email", name, err)
		return
	}
	if len(parts) != len(e.Attach) && e.Err == nil {
		t.Errorf("%s: Parts gave %d files, Parse listed %d", name, len(parts), len(e.Attach))
		return
	}
	for i, p := range parts {
		a := e.Attach[i]
		if p.Filename != a.Filename || p.ContentType != a.ContentType || int64(len(p.Content)) != a.Size || p.SHA256 != a.SHA256 {
			t.Errorf("%s: file %d: Parts %q %s %d %.8s, Parse %q %s %d %.8s", name, i, p.Filename, p.ContentType, len(p.Content),
				p.SHA256, a.Filename, a.ContentType, a.Size, a.SHA256)
		}
	}
}

// TestSenderName: the display name of the sender is read (RFC 2047 decoded), for the thread and
// the greeting.
func TestSenderName(t *testing.T) {
	e := Parse(crlf("From: =?utf-8?q?Ren=C3=A9e_de_Vries?= <renee@bakkerij.nl>\nSubject: x\n\nx\n"), arrival)
	if e.FromName != "Renée de Vries" || e.From != "renee@bakkerij.nl" {
		t.Errorf("FromName %q, From %q", e.FromName, e.From)
	}
}

// TestNestedBoundaryPrefix: an inner boundary that begins with the outer one ("--b1-a" inside
// "--b1", as the benchmark's generator and some mailers write) is read right: a line
// "--OUTER-..." is not the outer delimiter (go-message's reader took it for one and lost the
// content after it). The fast reader reads it, without the fallback.
func TestNestedBoundaryPrefix(t *testing.T) {
	raw := crlf(`From: a@example.nl
Subject: genest
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: multipart/alternative; boundary="b1-a"

--b1-a
Content-Type: text/plain; charset=utf-8

Tekst voor.
--b1-a
Content-Type: text/html; charset=utf-8

<p>Tekst voor.</p>
--b1-a--
--b1
Content-Type: image/jpeg; name="foto.jpg"
Content-Transfer-Encoding: base64

/9j/4AAQ
--b1--
`)
	e := Parse(raw, arrival)
	if e.fallback != "" || e.Text != "Tekst voor." || !reflect.DeepEqual(attachNames(e), []string{"foto.jpg image/jpeg"}) {
		t.Errorf("fallback %q, Text %q, Attach %v", e.fallback, e.Text, attachNames(e))
	}
}

// TestFallbackCount: how often the fallback reader (enmime) reads an email. The corpora are
// real and broken mail on purpose; the benchmark's generated mail is all well-formed and must
// all be read by the fast reader. Every email read either way lists the files Parts extracts.
func TestFallbackCount(t *testing.T) {
	reasons := map[string]int{}
	n, fell := 0, 0
	for _, sub := range []string{"mail-gem", "bounces"} {
		dir := corpusDir(t, sub)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range entries {
			if !ent.Type().IsRegular() || ent.Name() == "LICENSE" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
			if err != nil {
				t.Fatal(err)
			}
			raw := crlf(string(b))
			n++
			e := Parse(raw, arrival)
			if e.fallback != "" {
				fell++
				reasons[e.fallback]++
			}
			checkPartsMatch(t, ent.Name(), raw)
		}
	}
	var rs []string
	for r, k := range reasons {
		rs = append(rs, itoa(k)+" "+r)
	}
	sort.Strings(rs)
	t.Logf("corpora: %d emails, %d read by the fallback: %s", n, fell, strings.Join(rs, "; "))
	// 75 of the 736 emails when this was written; more means the fast reader got stricter.
	if fell > 75 {
		t.Errorf("%d of %d corpus emails needed the fallback reader, want at most 75", fell, n)
	}
	g := imaptest.NewGenerator(7, []string{"a@winkel.nl", "b@winkel.nl"})
	for i := range 500 {
		size := 3300
		if i%50 == 0 {
			size = 1 << 20
		}
		raw := g.Next(size)
		if e := Parse(raw, arrival); e.fallback != "" || e.Err != nil {
			t.Fatalf("generated email %d: fallback %q, Err %v; want the fast reader", i, e.fallback, e.Err)
		}
	}
}
