package parse

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestParts: the files of an email, as attached — names in RFC 2047 and RFC 2231 form, text
// files in their own charset, damaged base64 kept as far as it decodes, the body's text and
// HTML not taken for files, a forwarded email as one file.
func TestParts(t *testing.T) {
	raw := "From: a@b.nl\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n" +
		"--o\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n" +
		"--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\n" +
		"--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hallo</p>\r\n--a--\r\n" +
		"--o\r\nContent-Type: application/pdf; name=\"=?utf-8?q?bon_caf=C3=A9.pdf?=\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x\r\n" +
		"--o\r\nContent-Type: text/plain; charset=windows-1252\r\nContent-Disposition: attachment; filename*=utf-8''kassa%20log.txt\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n" +
		"--o\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=\"kapot.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K!!GgoA\r\n" +
		"--o\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@y.nl\r\nSubject: oud\r\n\r\ntekst\r\n--o--\r\n"
	parts, err := Parts([]byte(raw))
	if err != nil {
		t.Fatalf("Parts: %v", err)
	}
	want := []struct {
		name, ctype string
		content     []byte
	}{
		{"bon café.pdf", "application/pdf", []byte("%PDF-1")},
		{"kassa log.txt", "text/plain", []byte("caf\xe9")},
		{"kapot.png", "image/png", []byte("\x89PNG\r\n\x1a\n\x00")},
		{"bericht.eml", "message/rfc822", []byte("From: x@y.nl\r\nSubject: oud\r\n\r\ntekst")}, // named from its type
	}
	if len(parts) != len(want) {
		t.Fatalf("Parts = %d parts %+v, want %d", len(parts), parts, len(want))
	}
	for i, w := range want {
		p := parts[i]
		if p.Filename != w.name || p.ContentType != w.ctype || !bytes.Equal(p.Content, w.content) {
			t.Errorf("part %d = %q %s %q, want %q %s %q", i, p.Filename, p.ContentType, p.Content, w.name, w.ctype, w.content)
		}
	}
	if parts[1].Params["charset"] != "windows-1252" {
		t.Errorf("the text file's charset = %q, want it kept", parts[1].Params["charset"])
	}
}

// TestPartsBounded: hostile structure ends the walk with what was read and an error, after a
// bounded number of parts and levels; nothing panics.
func TestPartsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=o\r\n\r\n")
	for i := range 3 * defaultParts {
		fmt.Fprintf(&b, "--o\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=f%d\r\n\r\nx\r\n", i)
	}
	b.WriteString("--o--\r\n")
	parts, err := Parts([]byte(b.String()))
	if err == nil || len(parts) >= defaultParts {
		t.Errorf("%d parts: Parts = %d parts, %v; want fewer than %d and an error", 3*defaultParts, len(parts), err, defaultParts)
	}

	var n strings.Builder
	for i := range 3 * maxPartDepth {
		fmt.Fprintf(&n, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	if _, err := Parts([]byte(n.String())); err == nil {
		t.Errorf("%d nested levels: Parts gave no error", 3*maxPartDepth)
	}
	for _, raw := range []string{"", "\r\n", "Content-Type: multipart/mixed\r\n\r\nno boundary", "garbage without header"} {
		if parts, _ := Parts([]byte(raw)); len(parts) != 0 {
			t.Errorf("Parts(%q) = %+v, want none", raw, parts)
		}
	}
}
