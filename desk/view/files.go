package view

import (
	"errors"
	"fmt"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
)

// A ticket's files (attachments travel). They are numbered from 1 in thread order
// across the whole ticket, as TicketDetailOf lists them, and read back byte for byte out of the
// raw email each came with: `helpdesk ticket attachment` writes one out for staff, and the
// website gets the customer's own and the staff answers' files through the API.

// ErrNoAttachment is the error of a file number a ticket does not have (for its customer:
// none they may see).
var ErrNoAttachment = errors.New("no such attachment")

// TicketAttachment finds attachment n of a ticket: the message it came with and its place
// there. An unknown ticket is helpdesk.ErrNotFound, a number out of range ErrNoAttachment.
func TicketAttachment(tx *store.Tx, ticketID uint64, n int) (*helpdesk.Message, int, error) {
	if _, err := tx.Ticket(ticketID); err != nil {
		return nil, 0, fmt.Errorf("ticket %d: %w", ticketID, err)
	}
	msgs, err := tx.Messages(ticketID)
	if err != nil {
		return nil, 0, err
	}
	total := 0
	for _, m := range msgs {
		if n >= 1 && n <= total+len(m.Attachment) {
			return m, n - total - 1, nil
		}
		total += len(m.Attachment)
	}
	return nil, 0, fmt.Errorf("%w: ticket %d has %d attachment(s), not %d (ticket show lists them)", ErrNoAttachment, ticketID, total, n)
}

// TicketFile returns attachment n of a ticket as it was sent: its bytes, name and type, read
// out of the stored raw email (the transfer encoding undone, a text file in its own charset).
func TicketFile(tx *store.Tx, ticketID uint64, n int) (parse.Part, error) {
	m, index, err := TicketAttachment(tx, ticketID, n)
	if err != nil {
		return parse.Part{}, err
	}
	return messageFile(tx, ticketID, n, m, index)
}

// CustomerTicketFile is TicketFile as the ticket's customer may get it (the website): only the
// files of the thread messages they see (CustomerVisible), not those of staff's internal notes;
// the numbers stay the ticket's, as CustomerTicketDetail shows them.
func CustomerTicketFile(tx *store.Tx, ticketID uint64, n int) (parse.Part, error) {
	m, index, err := TicketAttachment(tx, ticketID, n)
	if err != nil {
		return parse.Part{}, err
	}
	if !CustomerVisible(m.Direction) {
		return parse.Part{}, fmt.Errorf("%w: attachment %d of ticket %d is not the customer's to see", ErrNoAttachment, n, ticketID)
	}
	return messageFile(tx, ticketID, n, m, index)
}

// messageFile reads attachment index of thread message m (file n of the ticket) out of m's raw
// email.
func messageFile(tx *store.Tx, ticketID uint64, n int, m *helpdesk.Message, index int) (parse.Part, error) {
	a := m.Attachment[index]
	if m.RawSHA256 == "" {
		return parse.Part{}, fmt.Errorf("attachment %d of ticket %d (%s): the email it came with was not kept", n, ticketID, a.Filename)
	}
	raw, err := tx.Raw(m.RawSHA256)
	if err != nil {
		return parse.Part{}, fmt.Errorf("attachment %d of ticket %d: raw email: %w", n, ticketID, err)
	}
	parts, perr := parse.Parts(raw)
	p, ok := parse.FindPart(parts, parse.Attachment{Filename: a.Filename, ContentType: a.ContentType,
		Size: a.Size, SHA256: a.SHA256}, index)
	if !ok {
		if perr != nil {
			return p, fmt.Errorf("attachment %d of ticket %d (%s) cannot be read out of its email: %w", n, ticketID, a.Filename, perr)
		}
		return p, fmt.Errorf("attachment %d of ticket %d (%s) cannot be found in its email", n, ticketID, a.Filename)
	}
	if p.Filename == "" {
		p.Filename = a.Filename
	}
	return p, nil
}
