package notify

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/templates"
)

// compose builds the MIME message of a notification: text/plain and text/html alternatives in
// UTF-8, encoded-word headers, threading headers so it sits in the customer's conversation, and
// RFC 3834 markers on automatic replies. lang is the language r was rendered in. It returns the
// message and the bare recipient address for the envelope (n.To may carry a display name).
func compose(from *mail.Address, n *store.Notification, r templates.Rendered, lang string, now time.Time) ([]byte, string, error) {
	to, err := mail.ParseAddress(n.To)
	if err != nil {
		return nil, "", fmt.Errorf("recipient %q: %w", n.To, err)
	}
	var h gomail.Header
	h.SetDate(now)
	h.SetAddressList("From", []*gomail.Address{{Name: from.Name, Address: from.Address}})
	h.SetAddressList("To", []*gomail.Address{{Address: to.Address}})
	h.SetSubject(r.Subject)
	h.SetMessageID(n.MessageID)
	if id := safeMsgID(n.InReplyTo); id != "" {
		h.SetMsgIDList("In-Reply-To", []string{id})
	}
	var refs []string
	for _, id := range n.References {
		if id = safeMsgID(id); id != "" {
			refs = append(refs, id)
		}
	}
	if len(refs) > 0 {
		h.SetMsgIDList("References", refs)
	}
	switch {
	case n.Automatic:
		h.Set("Auto-Submitted", "auto-replied")  // RFC 3834 §5
		h.Set("X-Auto-Response-Suppress", "All") // no out-of-office replies from Exchange
	case n.Kind != store.KindAnswer:
		// Staff notices and "an answer waits on the site" are generated, not replies: still
		// no mail client should answer them automatically (RFC 3834 §5).
		h.Set("Auto-Submitted", "auto-generated")
		h.Set("X-Auto-Response-Suppress", "All")
	}
	if lang != "" {
		h.Set("Content-Language", lang)
	}

	var buf bytes.Buffer
	w, err := gomail.CreateInlineWriter(&buf, h) // multipart/alternative
	if err != nil {
		return nil, "", fmt.Errorf("write headers: %w", err)
	}
	for _, part := range []struct{ ctype, body string }{
		{"text/plain", r.Text},
		{"text/html", r.HTML},
	} {
		var ph gomail.InlineHeader
		ph.SetContentType(part.ctype, map[string]string{"charset": "utf-8"})
		pw, err := w.CreatePart(ph)
		if err != nil {
			return nil, "", fmt.Errorf("write %s part: %w", part.ctype, err)
		}
		if _, err := pw.Write([]byte(strings.ToValidUTF8(part.body, "\uFFFD"))); err != nil {
			return nil, "", err
		}
		if err := pw.Close(); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), to.Address, nil
}

// cleanMsgID returns a notification's own Message-ID without brackets, or "" when it cannot
// be written as is (then a new one is made).
func cleanMsgID(id string) string {
	return safeMsgID(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">"))
}

// newMessageID makes a Message-ID (without brackets) for a notification queued without one.
func newMessageID(host string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	if host = cleanMsgID(host); host == "" || strings.Contains(host, "@") {
		host = "helpdesk.invalid"
	}
	return hex.EncodeToString(b[:]) + "@" + host
}

// safeMsgID keeps a Message-ID only when it can be written between angle brackets as is:
// ids come from customers' emails, and one with a line break would fail the whole message.
func safeMsgID(id string) string {
	if id == "" || len(id) > 250 {
		return ""
	}
	for _, c := range []byte(id) {
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return ""
		}
	}
	return id
}
