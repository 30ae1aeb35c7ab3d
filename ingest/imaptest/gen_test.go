package imaptest

import (
	"bytes"
	"net/mail"
	"testing"
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
