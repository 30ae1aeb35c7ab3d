package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-smtp"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// Attachments: a staff answer's files reach the customer as attachments, a
// customer's files reach staff with the notice about their email. The files stay in the raw
// email they came with; notify reads them out of it when it sends (parse.Parts: the bytes
// as attached, transfer encoding undone) and attaches them again, with their names and types.
// What is not carried is named in the text, with the reason.

// carries reports whether notifications of this kind attach the files they name: answers to
// the customer by email and staff notices do; "an answer waits on the site" only names them.
func carries(kind string) bool {
	switch kind {
	case helpdesk.KindAnswer, helpdesk.KindStaffNew, helpdesk.KindStaffReply:
		return true
	}
	return false
}

// attachment is one file of a notification: what the template says of it and, when it is
// carried, its bytes.
type attachment struct {
	info templates.File
	part parse.Part
}

// attachments is what a notification sends of its files.
type attachments struct {
	files []attachment
	note  string // templates.Files*: why none is carried; "" when they are (or none)
	limit string // the limit the note names, in words
}

// carried returns the files that go with the message.
func (a attachments) carried() []attachment {
	var out []attachment
	for _, f := range a.files {
		if f.info.Carried {
			out = append(out, f)
		}
	}
	return out
}

// leaveOut marks every file not carried, for the reason given.
func (a *attachments) leaveOut(note, limit string) {
	a.note, a.limit = note, limit
	for i := range a.files {
		a.files[i].info.Carried = false
	}
}

// loadAttachments reads the files of n out of their raw emails and decides which are carried:
// every one for an answer, all of them or none for a staff notice (AttachMax bounds their
// total). A file that cannot be read is named, not carried, and nothing fails: the
// notification itself matters more than its files.
func (w *Worker) loadAttachments(ctx context.Context, n *helpdesk.Notification) attachments {
	var a attachments
	if len(n.Data.Attachments) == 0 {
		return a
	}
	for _, na := range n.Data.Attachments {
		a.files = append(a.files, attachment{info: templates.File{Number: na.Number, Name: na.Filename,
			Type: na.ContentType, Bytes: na.Size}})
	}
	if !carries(n.Kind) {
		return a
	}
	if n.Kind != helpdesk.KindAnswer {
		// A staff notice carries all of the files or none: when their sizes as stored
		// already pass the limit, the raw email (up to max_message_bytes) is not inflated
		// and decoded only to be left out.
		var listed int64
		for _, na := range n.Data.Attachments {
			listed += na.Size
		}
		if listed > w.cfg.AttachMax {
			a.leaveOut(templates.FilesAboveLimit, templates.FormatSize(w.cfg.AttachMax, n.Lang))
			return a
		}
	}
	parts := map[string][]parse.Part{}
	var unreadable error
	if err := w.db.View(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		for _, na := range n.Data.Attachments {
			if _, ok := parts[na.Raw]; ok || na.Raw == "" {
				continue
			}
			raw, err := tx.Raw(na.Raw)
			if err != nil {
				unreadable = fmt.Errorf("raw email %s: %w", na.Raw, err)
				parts[na.Raw] = nil
				continue
			}
			ps, err := parse.Parts(raw)
			if err != nil {
				unreadable = err // the parts read before the error are kept
			}
			parts[na.Raw] = ps
		}
		return nil
	}); err != nil {
		unreadable = fmt.Errorf("read the stored email: %w", err)
	}
	var total int64
	for i, na := range n.Data.Attachments {
		p, ok := parse.FindPart(parts[na.Raw], parse.Attachment{Filename: na.Filename,
			ContentType: na.ContentType, Size: na.Size, SHA256: na.SHA256}, na.Index)
		if !ok {
			if unreadable == nil {
				unreadable = fmt.Errorf("%s not found in its email", na.Filename)
			}
			w.log.Warn("attachment cannot be read out of its email; the notification names it instead",
				"notification", n.ID, "file", na.Filename, "err", unreadable)
			a.leaveOut(templates.FilesUnreadable, "")
			return a
		}
		if p.Filename == "" {
			p.Filename = na.Filename
		}
		a.files[i].part, a.files[i].info.Carried = p, true
		a.files[i].info.Bytes = int64(len(p.Content))
		total += int64(len(p.Content))
	}
	if n.Kind != helpdesk.KindAnswer && total > w.cfg.AttachMax {
		a.leaveOut(templates.FilesAboveLimit, templates.FormatSize(w.cfg.AttachMax, n.Lang))
	}
	return a
}

// tooBigForServer reports whether the server refused a message for its size (RFC 1870: 552,
// or the enhanced status 5.3.4 "message too big for system").
func tooBigForServer(err error) bool {
	var serr *smtp.SMTPError
	if !errors.As(err, &serr) || stageOf(err) != stageData {
		return false
	}
	return serr.Code == 552 || serr.EnhancedCode == smtp.EnhancedCode{5, 3, 4}
}
