package ingest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/infobits/helpdesk/store"
)

// TestHugeTextBounded: an email with 3 MB of text (a pasted log) becomes a ticket whose thread
// message keeps the first 256 KiB, cut on a character boundary and marked as cut, while the
// raw email is kept whole (R11: nothing a customer sent is lost) — the record a person reads
// and the memory of everything that handles it stay bounded.
func TestHugeTextBounded(t *testing.T) {
	f := newFixture(t, "mem", nil)
	line := "Foutmelding kassa: geheugen vol — probeer opnieuw (€ 12,50)\r\n" // multi-byte runes
	body := strings.Repeat(line, 3<<20/len(line))
	raw := buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Logbestand", msgID: "log@b", body: body})
	f.deliver(raw)
	f.once()

	tks := f.tickets()
	if len(tks) != 1 {
		t.Fatalf("%d tickets, want 1", len(tks))
	}
	msgs := f.messages(tks[0].ID)
	if len(msgs) != 1 {
		t.Fatalf("%d thread messages, want 1", len(msgs))
	}
	text := msgs[0].Text
	if len(text) > 256<<10+200 {
		t.Errorf("thread text is %d bytes, want at most 256 KiB and a note", len(text))
	}
	if len(text) < 200<<10 || !strings.HasPrefix(text, "Foutmelding kassa") {
		t.Errorf("thread text is %d bytes starting %q, want the first 256 KiB of the email's text", len(text), text[:min(40, len(text))])
	}
	if strings.ContainsRune(text, utf8.RuneError) {
		t.Error("thread text was cut inside a character")
	}
	if !strings.Contains(text[len(text)-200:], "the whole email is kept") {
		t.Errorf("thread text does not say it was cut: …%q", text[len(text)-120:])
	}
	if err := f.db.View(context.Background(), func(tx *store.Tx) error {
		got, err := tx.Raw(msgs[0].RawSHA256)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("raw email kept is %d bytes, want all %d as delivered", len(got), len(raw))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
