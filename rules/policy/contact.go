package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/infobits/helpdesk"
)

// maxNameRunes bounds a contact name: enough for "Maria Magdalena van den Berg-Oosterhuis",
// short enough that a display name cannot carry a paragraph into a greeting.
const maxNameRunes = 64

// CleanName is a person's name as staff typed it or a mail client wrote it, fit to follow
// "Beste ": control and format characters dropped, white space collapsed to single spaces,
// and "" when nothing is left or it is longer than maxNameRunes runes.
func CleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == utf8.RuneError:
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > maxNameRunes {
		return ""
	}
	return s
}

// LearnedContactName is the contact name to record for addr from the display name of an email
// it sent (greet the person when known, learned from the first email from the
// address), or "" when the display name is nothing to greet someone by. Seen in practice:
// the address again ("info@bakkerij.nl"), its local part ("info", "Kassa"), a list or an
// inverted name ("Vries, Piet de"), quotes left over from a broken header, a web address.
// Those are refused rather than repaired: the company name is a good greeting too.
func LearnedContactName(display, addr string) string {
	n := CleanName(strings.Trim(display, ` "'`))
	if n == "" || strings.ContainsAny(n, `@<>,;:"()[]\/|=`) || !strings.ContainsFunc(n, unicode.IsLetter) {
		return ""
	}
	lower := strings.ToLower(n)
	if strings.Contains(lower, "www.") || strings.Contains(lower, "http") {
		return ""
	}
	local, _, _ := strings.Cut(helpdesk.NormalizeAddress(addr), "@")
	if lower == local {
		return ""
	}
	return n
}
