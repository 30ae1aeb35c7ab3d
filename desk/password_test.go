package desk_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
)

// A password is stored as an argon2id PHC string with a salt of its own, and checked against
// it; the rules refuse short passwords and the customer's own addresses and name.
func TestPasswords(t *testing.T) {
	h1, h2 := desk.HashPassword("Krentenbol-2026!"), desk.HashPassword("Krentenbol-2026!")
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=47104,t=1,p=1$") || h1 == h2 {
		t.Errorf("hashes %q and %q: want argon2id PHC strings with different salts", h1, h2)
	}
	if !desk.VerifyPassword(h1, "Krentenbol-2026!") || !desk.VerifyPassword(h2, "Krentenbol-2026!") {
		t.Errorf("the right password does not verify")
	}
	for _, c := range []struct{ hash, pw string }{{h1, "krentenbol-2026!"}, {h1, ""}, {"", "Krentenbol-2026!"}, {"$argon2id$garbage", "x"}, {strings.Replace(h1, "t=1", "t=99", 1), "Krentenbol-2026!"}} {
		if desk.VerifyPassword(c.hash, c.pw) {
			t.Errorf("VerifyPassword(%q, %q) = true", c.hash, c.pw)
		}
	}
	c := &helpdesk.Customer{Name: "Bakkerij de Vries", Emails: []string{"info@bakkerijdevries.nl", "piet@example.com"}}
	for pw, want := range map[string]error{
		"kort": desk.ErrPasswordShort, "info@bakkerijdevries.nl": desk.ErrPasswordAddress, "bakkerijdevries": desk.ErrPasswordAddress,
		"Bakkerij de Vries": desk.ErrPasswordAddress, "BakkerijDeVries1": desk.ErrPasswordAddress, strings.Repeat("x", 300): desk.ErrPasswordLong,
		"Krentenbol-2026!": nil, "bakkerijdevries-kassa-wachtwoord": nil,
		strings.Repeat(" ", 12): desk.ErrPasswordSimple, "AaAaAaAaAaAa": desk.ErrPasswordSimple, "1212121212": desk.ErrPasswordSimple,
		"1234567890": desk.ErrPasswordSimple, "QWERTYUIOP": desk.ErrPasswordSimple, "abcdefghijkl": desk.ErrPasswordSimple,
		"  vijf verschillende  ": nil,
	} {
		if err := desk.CheckPassword(c, pw); !errors.Is(err, want) {
			t.Errorf("CheckPassword(%q) = %v, want %v", pw, err, want)
		}
	}
}
