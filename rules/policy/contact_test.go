package policy

import (
	"strings"
	"testing"
)

// The display name of a customer's first email becomes the name they are greeted
// by, unless it is nothing to greet a person by.
func TestLearnedContactName(t *testing.T) {
	for _, tc := range []struct{ display, addr, want string }{
		{"Piet de Vries", "piet@bakkerij.nl", "Piet de Vries"},
		{"  Piet   de\tVries ", "piet@bakkerij.nl", "Piet de Vries"},
		{`"Piet de Vries"`, "piet@bakkerij.nl", "Piet de Vries"},
		{"Linda Bäcker", "info@kapsalon.nl", "Linda Bäcker"},
		{"J. Jansen-de Boer", "jan@slagerij.nl", "J. Jansen-de Boer"},
		{"Bakkerij de Vries", "info@bakkerij.nl", "Bakkerij de Vries"}, // a company account: its name is a greeting too
		{"Pi\u200bet\x00 de\x1b Vries", "piet@bakkerij.nl", "Piet de Vries"},
		{"", "info@bakkerij.nl", ""},
		{"info", "info@bakkerij.nl", ""},   // the address's own name
		{"Kassa", "kassa@slagerij.nl", ""}, // the same, in any case
		{"info@bakkerij.nl", "info@bakkerij.nl", ""},
		{"Vries, Piet de", "piet@bakkerij.nl", ""}, // inverted or a list: the company is the safer greeting
		{"Piet <piet@evil.example>", "piet@bakkerij.nl", ""},
		{"www.bakkerij.nl", "info@bakkerij.nl", ""},
		{"Klik op https", "info@bakkerij.nl", ""},
		{"12345", "info@bakkerij.nl", ""},
		{"Piet\r\nBcc: evil@example.com", "piet@bakkerij.nl", ""},
		{strings.Repeat("Piet ", 20), "piet@bakkerij.nl", ""},
	} {
		if got := LearnedContactName(tc.display, tc.addr); got != tc.want {
			t.Errorf("LearnedContactName(%q, %q) = %q, want %q", tc.display, tc.addr, got, tc.want)
		}
	}
}
