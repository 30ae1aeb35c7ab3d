package store

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/infobits/helpdesk"
)

// TestPackedText: a message stored with its text packed beforehand (PackText, outside the
// transaction) reads back as the same message as one stored whole, from a record of the same
// format — any text, also one a placeholder could be confused with — and a packed text that
// is not the message's is not used.
func TestPackedText(t *testing.T) {
	db := newDB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	texts := map[string]string{
		"dutch":          strings.Repeat("De kassa start niet op — € 12,50 \"quotes\" <b>&amp;</b>\n\ttab\\slash\n", 60),
		"short":          "kort",
		"at the bound":   strings.Repeat("x", minPackedText),
		"controls":       strings.Repeat("a\x00b\x01c\u2028d\u2029e\x7f", 80),
		"incompressible": strings.ToValidUTF8(string(random), "?"),
		"placeholder":    strings.Repeat(textPlaceholder, 30),
		"big":            strings.Repeat("Foutmelding kassa: geheugen vol — probeer opnieuw (€ 12,50)\n", 5000),
	}
	tk := &helpdesk.Ticket{CustomerID: 1, Subject: "kassa", Status: helpdesk.StatusOpen}
	update(t, db, func(tx *Tx) error { return tx.CreateTicket(tk) })
	var want []*helpdesk.Message
	for name, text := range texts {
		for _, subject := range []string{"kassa", textPlaceholder} { // a subject holding the placeholder
			pt, err := db.PackText(text)
			if err != nil {
				t.Fatalf("%s: PackText: %v", name, err)
			}
			if (pt == nil) != (len(text) < minPackedText) {
				t.Errorf("%s: PackText = %v for %d bytes", name, pt, len(text))
			}
			m := &helpdesk.Message{Direction: helpdesk.DirectionIn, From: "a@example.com", MessageID: name + "@x",
				Subject: subject, Text: text, Attachment: []helpdesk.Attachment{{Filename: "a.pdf", Size: 3}}}
			update(t, db, func(tx *Tx) error { return tx.AddMessagePacked(tk, m, pt) })
			want = append(want, m)
		}
	}
	// A packed text for another text is not used.
	other, _ := db.PackText(strings.Repeat("ander ", 100))
	m := &helpdesk.Message{Direction: helpdesk.DirectionOut, From: "jan@x", Subject: "re", Text: strings.Repeat("antwoord ", 100)}
	update(t, db, func(tx *Tx) error { return tx.AddMessagePacked(tk, m, other) })
	want = append(want, m)

	var got []*helpdesk.Message
	view(t, db, func(tx *Tx) (err error) {
		got, err = tx.Messages(tk.ID)
		return err
	})
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("message %d (%.30q) read back as %.200v, want %.200v", i, want[i].MessageID, got[i], want[i])
		}
	}
	// The records are whole deflate streams of the JSON encode writes (format 2), or plain.
	view(t, db, func(tx *Tx) error {
		c := tx.tx.Bucket(bMessages).Cursor()
		i := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			wantJSON, _ := encode(want[i])
			var plain []byte
			switch v[0] {
			case recordDeflated:
				var err error
				if plain, err = io.ReadAll(flate.NewReader(bytes.NewReader(v[1:]))); err != nil {
					t.Errorf("record %d: inflate: %v", i, err)
				}
				plain = append([]byte{recordVersion}, plain...)
			default:
				plain = v
			}
			if !bytes.Equal(plain, wantJSON) {
				t.Errorf("record %d is not the JSON encode writes (%d vs %d bytes)", i, len(plain), len(wantJSON))
			}
			i++
		}
		return nil
	})
}
