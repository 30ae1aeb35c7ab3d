package parse

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/cention-sany/utf7"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// Transfer decoding (RFC 2045 section 6) and charsets. One decoder serves the listing of an
// email's files (Parse: size and SHA-256) and their extraction (Parts): both see the same
// bytes.

// knownTransfer reports whether cte is a Content-Transfer-Encoding the fast reader decodes.
func knownTransfer(cte string) bool {
	switch cte {
	case "", "7bit", "8bit", "binary", "quoted-printable", "base64", "x-uuencode", "uuencode", "x-uue":
		return true
	}
	return false
}

// decodeTransfer undoes the transfer encoding of body and hands the result to sink in pieces,
// in order; it stops once limit bytes (limit < 0: no limit) were handed on, at a line of the
// input. Damaged base64 keeps what decodes (the customer's file is worth more than a refusal):
// characters outside the alphabet are skipped, a lone last character is dropped; a damaged
// quoted-printable escape is kept as it was written. It returns what it repaired, for
// Email.Warnings.
func decodeTransfer(cte string, body []byte, limit int, sink func([]byte)) (repaired string) {
	if limit >= 0 {
		// Decoding never makes data longer, and at most three times shorter (a
		// quoted-printable "=XX" for every byte): the input beyond three times limit is not
		// needed. Cut at a line break, so that no escape or quantum is split.
		if cut := 3*limit + 4096; cut < len(body) {
			if i := bytes.LastIndexByte(body[:cut], '\n'); i > 0 {
				cut = i + 1
			}
			body = body[:cut]
		}
	}
	out := &limitedSink{sink: sink, left: limit}
	switch cte {
	case "quoted-printable":
		decodeQP(body, out)
	case "base64":
		return decodeBase64(body, out)
	case "x-uuencode", "uuencode", "x-uue":
		return decodeUU(body, out)
	default:
		out.write(body)
	}
	return ""
}

// limitedSink passes on at most left bytes (left < 0: all).
type limitedSink struct {
	sink func([]byte)
	left int
}

func (s *limitedSink) write(b []byte) {
	if s.left == 0 || len(b) == 0 {
		return
	}
	if s.left > 0 && len(b) > s.left {
		b = b[:s.left]
	}
	if s.left > 0 {
		s.left -= len(b)
	}
	s.sink(b)
}

func (s *limitedSink) full() bool { return s.left == 0 }

// decodeQP decodes quoted-printable as Go's mime/quotedprintable does (RFC 2045 section 6.7:
// trailing white space dropped, "=" at the end of a line a soft line break, "=XX" a byte) and
// leniently where that reader fails: an "=" not followed by two hex digits, and any byte
// outside printable ASCII, are kept as they are.
func decodeQP(body []byte, out *limitedSink) {
	buf := make([]byte, 0, min(len(body), 32<<10))
	for len(body) > 0 && !out.full() {
		var line []byte
		eol := ""
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
			eol = "\n"
			if len(line) > 0 && line[len(line)-1] == '\r' {
				eol = "\r\n"
			}
		} else {
			line, body = body, nil
		}
		line = bytes.TrimRight(line, " \t\r")
		soft := len(line) > 0 && line[len(line)-1] == '='
		if soft && (eol != "" || len(line) > 1) {
			line, eol = line[:len(line)-1], ""
		}
		for {
			i := bytes.IndexByte(line, '=')
			if i < 0 {
				buf = append(buf, line...)
				break
			}
			buf = append(buf, line[:i]...)
			if i+2 < len(line) && isHex(line[i+1]) && isHex(line[i+2]) {
				buf = append(buf, unhex(line[i+1])<<4|unhex(line[i+2]))
				line = line[i+3:]
			} else {
				buf = append(buf, '=')
				line = line[i+1:]
			}
		}
		buf = append(buf, eol...)
		if len(buf) >= 16<<10 {
			out.write(buf)
			buf = buf[:0]
		}
	}
	out.write(buf)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// decodeBase64 decodes base64 line by line; a line that is not clean base64 is cleaned first:
// characters outside the alphabet are skipped, "=" ends a quantum (some encoders join padded
// pieces), a lone last character is dropped.
func decodeBase64(body []byte, out *limitedSink) (repaired string) {
	var pending []byte // characters of the alphabet not yet decoded (less than a quantum)
	buf := make([]byte, 0, min(len(body), 48<<10))
	var skipped int
	flush := func(final bool) {
		n := len(pending) / 4 * 4
		if final {
			n = len(pending)
			if n%4 == 1 {
				n-- // a lone character carries no byte
				skipped++
			}
		}
		if n == 0 {
			if final {
				pending = pending[:0]
			}
			return
		}
		k := len(buf)
		buf = append(buf, make([]byte, base64.RawStdEncoding.DecodedLen(n))...)
		m, _ := base64.RawStdEncoding.Decode(buf[k:], pending[:n])
		buf = buf[:k+m]
		pending = append(pending[:0], pending[n:]...)
	}
	for len(body) > 0 && !out.full() {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		line = bytes.TrimRight(line, " \t\r")
		if len(pending) == 0 && len(line)%4 == 0 {
			// The usual case: a whole line of clean, padded base64.
			k := len(buf)
			buf = append(buf, make([]byte, base64.StdEncoding.DecodedLen(len(line)))...)
			if m, err := base64.StdEncoding.Decode(buf[k:], line); err == nil {
				buf = buf[:k+m]
				goto next
			}
			buf = buf[:k]
		}
		for _, c := range line {
			switch {
			case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
				pending = append(pending, c)
			case c == '=':
				flush(true)
			case c == ' ' || c == '\t' || c == '\r':
			default:
				skipped++
			}
		}
		flush(false)
	next:
		if len(buf) >= 32<<10 {
			out.write(buf)
			buf = buf[:0]
		}
	}
	flush(true)
	out.write(buf)
	if skipped > 0 {
		return fmt.Sprintf("base64: %d character(s) that are not base64 skipped", skipped)
	}
	return ""
}

// decodeUU decodes uuencoded data (Content-Transfer-Encoding: x-uuencode): the lines between
// "begin MODE NAME" and "end". Damaged lines keep what decodes.
func decodeUU(body []byte, out *limitedSink) (repaired string) {
	begun := false
	var buf []byte
	for len(body) > 0 && !out.full() {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		line = bytes.TrimRight(line, "\r")
		if !begun {
			begun = bytes.HasPrefix(line, []byte("begin "))
			continue
		}
		if bytes.Equal(bytes.TrimSpace(line), []byte("end")) {
			break
		}
		if len(line) == 0 {
			continue
		}
		n := int((line[0] - ' ') & 63)
		line = line[1:]
		var got int
		for i := 0; i+1 < len(line) && got < n; i += 4 {
			var q [4]byte
			for j := range 4 {
				if i+j < len(line) {
					q[j] = (line[i+j] - ' ') & 63
				}
			}
			for _, b := range []byte{q[0]<<2 | q[1]>>4, q[1]<<4 | q[2]>>2, q[2]<<6 | q[3]} {
				if got < n {
					buf = append(buf, b)
					got++
				}
			}
		}
		if len(buf) >= 32<<10 {
			out.write(buf)
			buf = buf[:0]
		}
	}
	out.write(buf)
	if !begun {
		return "uuencode: no begin line"
	}
	return ""
}

// uuName returns the file name of the "begin MODE NAME" line of uuencoded data, or "".
func uuName(body []byte) string {
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		if rest, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r"), []byte("begin ")); ok {
			f := strings.Fields(string(rest))
			if len(f) >= 2 {
				return strings.Join(f[1:], " ")
			}
			return ""
		}
	}
	return ""
}

// --- charsets ---

// charsetKind is how text in a charset is read.
type charsetKind int

const (
	// charsetUTF8: UTF-8, US-ASCII or none declared: valid UTF-8 is read as UTF-8, anything
	// else as windows-1252 (see fromWindows1252).
	charsetUTF8 charsetKind = iota
	// charsetKnown: a decoder exists.
	charsetKnown
	// charsetUnknown: no decoder.
	charsetUnknown
)

// lookupCharset finds the decoder of a charset name: the WHATWG table first (what browsers and
// enmime use: "iso-8859-1" is read as windows-1252, its superset), then the IANA names
// go-message knows. UTF-8 and US-ASCII need none: text that says it is ASCII but holds 8-bit
// bytes is read as UTF-8 when it is valid UTF-8 (mail without a Content-Type is ASCII by
// RFC 2045, and is often UTF-8).
func lookupCharset(name string) (encoding.Encoding, charsetKind) {
	name = strings.ToLower(strings.Trim(strings.TrimSpace(name), `"'`))
	switch name {
	case "", "utf-8", "utf8", "unicode-1-1-utf-8", "x-utf_8j", "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us",
		"us", "csascii", "cp367", "ibm367", "iso-ir-6", "iso_646.irv:1991", "default":
		return nil, charsetUTF8
	}
	switch name {
	case "utf-7", "utf7", "unicode-1-1-utf-7", "csunicode11utf7", "x-unicode-2-0-utf-7":
		// RFC 2152; Exchange writes it in delivery reports. Not in the WHATWG table.
		return utf7.UTF7, charsetKnown
	}
	if enc, err := htmlindex.Get(name); err == nil && enc != nil {
		return enc, charsetKnown
	}
	for _, n := range []string{name, "cs" + name} {
		if enc, err := ianaindex.MIME.Encoding(n); err == nil && enc != nil {
			return enc, charsetKnown
		}
	}
	return nil, charsetUnknown
}

// decodeCharset converts b from the charset to UTF-8 (not yet cleaned). An unknown charset
// leaves the bytes as they are (clean reads them as UTF-8 or windows-1252).
func decodeCharset(name string, b []byte) []byte {
	enc, kind := lookupCharset(name)
	if kind != charsetKnown {
		return b
	}
	if cm, ok := enc.(*charmap.Charmap); ok && isASCII(b) {
		_ = cm // every charmap of the tables is a superset of ASCII
		return b
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return b
	}
	return out
}

// wordCharsetReader is the CharsetReader of RFC 2047 decoding: the same table as bodies, and
// UTF-8 and ASCII passed on as they are (cleanLine repairs what is not UTF-8).
func wordCharsetReader(name string, input io.Reader) (io.Reader, error) {
	enc, kind := lookupCharset(name)
	switch kind {
	case charsetUTF8:
		return input, nil
	case charsetKnown:
		return enc.NewDecoder().Reader(input), nil
	}
	return nil, fmt.Errorf("charset %q: unsupported", name)
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// decodeRaw8bit reads a header value or parameter that holds 8-bit bytes without saying which
// charset (RFC 6532 allows UTF-8 only, older mailers wrote their own): valid UTF-8 is UTF-8,
// else the charset the part or the message declares for its text, else windows-1252.
func decodeRaw8bit(s, charsetHint string) string {
	if utf8.ValidString(s) {
		return s
	}
	if enc, kind := lookupCharset(charsetHint); kind == charsetKnown {
		if out, err := enc.NewDecoder().String(s); err == nil {
			return out
		}
	}
	return fromWindows1252(s)
}
