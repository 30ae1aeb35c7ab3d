package imaptest

import (
	"bytes"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/infobits/helpdesk/mail/parse"
)

// TestGeneratorReplies: a generated reply names an earlier email in In-Reply-To and comes from
// that email's sender, as a customer's reply does — else a benchmark would open a new ticket
// for almost every "reply" and never measure the reply path.
func TestGeneratorReplies(t *testing.T) {
	senders := []string{"a@x.example", "b@x.example", "c@y.example", "d@z.example"}
	g := NewGenerator(3, senders)
	fromOf := map[string]string{}
	replies := 0
	for i := range 400 {
		raw := g.Next(3000)
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("email %d does not parse: %v", i, err)
		}
		from := m.Header.Get("From")
		id := m.Header.Get("Message-ID")
		if parent := m.Header.Get("In-Reply-To"); parent != "" {
			replies++
			want, ok := fromOf[parent]
			if !ok {
				t.Fatalf("email %d answers %s, which the generator never made", i, parent)
			}
			if from != want {
				t.Errorf("email %d answers %s's email %s but comes from %s", i, want, parent, from)
			}
		}
		fromOf[id] = from
	}
	if replies < 80 || replies > 160 {
		t.Errorf("%d replies in 400 emails, want about 30 %%", replies)
	}
}

// TestGeneratorConformant: the generated mail is what RFC 2045/2046 ask — text in the charset
// it declares, 8-bit text transfer-encoded, boundaries that are no prefix of each other — so
// that a benchmark measures the reading of good mail: the parser reads every email's text
// without mojibake or replacement characters, and every multipart's inner boundary is not an
// extension of the outer one.
func TestGeneratorConformant(t *testing.T) {
	g := NewGenerator(7, []string{"a@x.example", "b@y.example"})
	g.AttachShare = 0.5
	for i := range 300 {
		raw := g.Next(3000)
		e := parse.Parse(raw, time.Time{})
		if e.Err != nil || !utf8.ValidString(e.Text) || strings.ContainsRune(e.Text, '\uFFFD') || strings.Contains(e.Text, "Ã") ||
			strings.Contains(e.Text, "â€") || e.Text == "" {
			t.Fatalf("email %d: Err %v, text %.200q", i, e.Err, e.Text)
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		_, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
		if outer := params["boundary"]; outer != "" {
			for _, line := range strings.Split(string(raw), "\r\n") {
				if rest, ok := strings.CutPrefix(line, "--"+outer); ok && rest != "" && rest != "--" {
					t.Fatalf("email %d: line %q starts with the outer boundary %q and goes on", i, line, outer)
				}
			}
		}
	}
}
