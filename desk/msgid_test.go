package desk_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
)

// A ticket written before Message-IDs kept their case holds the customer's id lower-cased,
// with the raw email beside it. An answer on such a ticket quotes the id as the customer's
// client wrote it (read back from the raw header), so it threads in their mailbox; a reply
// quoting the id in any case still finds the ticket.
func TestAnswerOnOldTicketQuotesOriginalID(t *testing.T) {
	const orig = "CAF=x5KqAbZ3Yw_TeQmLp2d+Vt0rXyNw=hJk5R1oGf8sU@mail.gmail.com"
	f := newAnswerFixture(t)
	raw := buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: "Kassa", msgID: orig, body: "Zwart scherm."})
	var ticket uint64
	f.update(func(tx *store.Tx) error {
		c, err := tx.CustomerByAddress("info@bakkerijdevries.nl")
		if err != nil {
			return err
		}
		hash, err := tx.PutRaw(raw)
		if err != nil {
			return err
		}
		tk := &helpdesk.Ticket{CustomerID: c.ID, Address: "info@bakkerijdevries.nl", Subject: "Kassa", Status: helpdesk.StatusOpen,
			Tier: c.Tier, Created: arrival}
		if err := tx.CreateTicket(tk); err != nil {
			return err
		}
		ticket = tk.ID
		// What the gateway stored before: the id lower-cased.
		return tx.AddMessage(tk, &helpdesk.Message{Direction: helpdesk.DirectionIn, From: "info@bakkerijdevries.nl",
			MessageID: strings.ToLower(orig), Subject: "Kassa", Text: "Zwart scherm.", RawSHA256: hash, Size: int64(len(raw)), Date: arrival})
	})

	out := f.apply(mailOpts{from: "Jan Bakker <jan@infobits.example>", subject: "Re: Kassa", msgID: "staff-1@infobits.example",
		inReplyTo: orig, body: "Herstart de kassa."}, arrival.Add(time.Hour))
	if out.Action != "staff_answer" || out.TicketID != ticket {
		t.Fatalf("staff email quoting <%s> became %s %s (ticket %d), want the answer on ticket %d", orig, out.Action, out.Detail, out.TicketID, ticket)
	}
	if err := f.db.View(context.Background(), func(tx *store.Tx) error {
		ns, err := tx.TicketNotifications(ticket)
		if err != nil {
			return err
		}
		if len(ns) != 1 || ns[0].Kind != helpdesk.KindAnswer {
			t.Fatalf("notifications %+v, want one answer", ns)
		}
		if n := ns[0]; n.InReplyTo != orig || !slices.Equal(n.References, []string{orig}) {
			t.Errorf("answer threaded under %q %q, want the customer's id as written, %q", n.InReplyTo, n.References, orig)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if e := parse.Parse(raw, arrival); e.MessageID != orig {
		t.Errorf("Parse().MessageID = %q, want %q as written", e.MessageID, orig)
	}
}
