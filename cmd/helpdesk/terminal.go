package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// What the CLI prints of what others wrote — an email's From, subject and text, a customer's
// name, a file name, a held email's detail, an SMTP server's error — goes through one of the
// two functions below, so that it cannot act on the operator's terminal: an escape
// sequence can retitle the window, hide or rewrite lines, or, on some terminals, answer back
// into the input; a bidi override can make "gpj.exe" read as "exe.jpg". They are shown
// escaped, visibly, rather than dropped: the operator sees that something was there.
//
// Escaped: C0 controls (\x00–\x1f; tab, newline and carriage return as \t, \n, \r), DEL, the
// C1 controls \x80–\x9f (CSI among them), and the Unicode bidi embeddings, overrides and
// isolates U+202A–U+202E and U+2066–U+2069, the line and paragraph separators U+2028/U+2029
// and the marks U+200E, U+200F and U+061C, as \uXXXX. Bytes that are not UTF-8 become U+FFFD.

// terminalSafe is one line of untrusted text: every control character is escaped, newline
// and tab too, so that a value cannot break out of its row or column.
func terminalSafe(s string) string { return escapeTerminal(s, false) }

// terminalText is untrusted text of several lines (a thread message): as terminalSafe, but
// newlines and tabs are kept.
func terminalText(s string) string { return escapeTerminal(s, true) }

func escapeTerminal(s string, keepLines bool) string {
	clean := true
	for _, r := range s {
		if escaped(r, keepLines) || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for _, r := range s {
		switch {
		case !escaped(r, keepLines):
			b.WriteRune(r) // invalid bytes: RuneError, written as U+FFFD
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// escaped reports whether r is shown escaped.
func escaped(r rune, keepLines bool) bool {
	switch {
	case keepLines && (r == '\n' || r == '\t'):
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true // bidi embeddings, overrides, isolates
	case r == 0x2028, r == 0x2029, r == 0x200e, r == 0x200f, r == 0x061c:
		return true // line/paragraph separators, direction marks
	}
	return false
}
