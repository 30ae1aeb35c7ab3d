package notify

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/templates"
)

// compose builds the MIME message of a notification: text/plain and text/html alternatives in
// UTF-8, encoded-word headers, threading headers so it sits in the customer's conversation, and
// RFC 3834 markers on automatic replies. lang is the language r was rendered in. It returns the
// message and the bare recipient address for the envelope (n.To may carry a display name).
//
// files are attached after the text (multipart/mixed), each base64-encoded with its own type
// and parameters (a text file keeps its charset) and its name: the recipient's mail client
// decodes the bytes the sender attached.
func compose(from *mail.Address, n *helpdesk.Notification, r templates.Rendered, lang string, now time.Time, files []parse.Part) ([]byte, string, error) {
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
	case n.Kind != helpdesk.KindAnswer:
		// Staff notices and "an answer waits on the site" are generated, not replies: still
		// no mail client should answer them automatically (RFC 3834 §5).
		h.Set("Auto-Submitted", "auto-generated")
		h.Set("X-Auto-Response-Suppress", "All")
	}
	if lang != "" {
		h.Set("Content-Language", lang)
	}

	var buf bytes.Buffer
	if len(files) > 0 {
		if err := composeMixed(&buf, h, r, files); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), to.Address, nil
	}
	if err := writeAlternative(&buf, h, r); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), to.Address, nil
}

// writeAlternative writes an entity of header h (its Content-Type set here) holding the text
// and HTML renderings as multipart/alternative.
func writeAlternative(buf *bytes.Buffer, h gomail.Header, r templates.Rendered) error {
	w, err := gomail.CreateInlineWriter(buf, h) // multipart/alternative
	if err != nil {
		return fmt.Errorf("write headers: %w", err)
	}
	for _, part := range []struct{ ctype, body string }{
		{"text/plain", r.Text},
		{"text/html", r.HTML},
	} {
		var ph gomail.InlineHeader
		ph.SetContentType(part.ctype, map[string]string{"charset": "utf-8"})
		pw, err := w.CreatePart(ph)
		if err != nil {
			return fmt.Errorf("write %s part: %w", part.ctype, err)
		}
		if _, err := pw.Write([]byte(strings.ToValidUTF8(part.body, "\uFFFD"))); err != nil {
			return err
		}
		if err := pw.Close(); err != nil {
			return err
		}
	}
	return w.Close()
}

// composeMixed writes the message of header h as multipart/mixed: the text and HTML first
// (multipart/alternative), then one part per file. The parts are framed here rather than by
// go-message, whose writer refuses text parts in charsets other than UTF-8 — and a customer's
// log file in windows-1252 must arrive as it was sent.
func composeMixed(buf *bytes.Buffer, h gomail.Header, r templates.Rendered, files []parse.Part) error {
	boundary := randomBoundary()
	h.SetContentType("multipart/mixed", map[string]string{"boundary": boundary})
	h.Set("MIME-Version", "1.0")
	if err := textproto.WriteHeader(buf, h.Header.Header); err != nil {
		return fmt.Errorf("write headers: %w", err)
	}
	buf.WriteString("--" + boundary + "\r\n")
	if err := writeAlternative(buf, gomail.Header{}, r); err != nil {
		return err
	}
	for _, f := range files {
		buf.WriteString("\r\n--" + boundary + "\r\n")
		params := map[string]string{}
		for k, v := range f.Params {
			if k != "boundary" && k != "name" {
				params[k] = v
			}
		}
		if f.Filename != "" {
			params["name"] = f.Filename // for clients that read only Content-Type
		}
		ctype := mime.FormatMediaType(f.ContentType, params)
		if ctype == "" { // a type or parameter that cannot be written back: the bytes still go
			ctype = mime.FormatMediaType("application/octet-stream", map[string]string{"name": f.Filename})
		}
		var ph textproto.Header
		ph.Set("Content-Type", ctype)
		disp := "attachment"
		if f.Filename != "" {
			disp = mime.FormatMediaType("attachment", map[string]string{"filename": f.Filename})
		}
		ph.Set("Content-Disposition", disp)
		// RFC 2046 §5.2.1: a message/* part (a forwarded email) may not be base64-encoded;
		// it goes as it is, 7bit or 8bit, when its lines allow (RFC 5322 §2.1.1).
		cte := "base64"
		if strings.HasPrefix(f.ContentType, "message/") {
			cte = asIsEncoding(f.Content)
		}
		ph.Set("Content-Transfer-Encoding", cte)
		if err := textproto.WriteHeader(buf, ph); err != nil {
			return fmt.Errorf("write attachment header: %w", err)
		}
		if cte == "base64" {
			writeBase64(buf, f.Content)
			continue
		}
		writeCRLF(buf, f.Content)
	}
	buf.WriteString("\r\n--" + boundary + "--\r\n")
	return nil
}

// asIsEncoding is the transfer encoding a part can be written in as it is: "7bit" for ASCII
// text, "8bit" for text with 8-bit bytes (go-smtp declares BODY=8BITMIME, RFC 6152, to every
// server that offers it), "base64" when a
// line is longer than 998 octets or holds a NUL (neither may cross SMTP unencoded).
func asIsEncoding(b []byte) string {
	cte, line := "7bit", 0
	for _, c := range b {
		switch {
		case c == '\n':
			line = 0
			continue
		case c == 0:
			return "base64"
		case c >= 0x80:
			cte = "8bit"
		}
		if line++; line > 998 {
			return "base64"
		}
	}
	return cte
}

// writeCRLF writes b with CRLF line ends and a final line end.
func writeCRLF(buf *bytes.Buffer, b []byte) {
	for line := range bytes.Lines(b) {
		line = bytes.TrimRight(line, "\r\n")
		buf.Write(line)
		buf.WriteString("\r\n")
	}
}

// writeBase64 writes b base64-encoded in lines of 76 characters (RFC 2045 §6.8).
func writeBase64(buf *bytes.Buffer, b []byte) {
	enc := base64.StdEncoding.EncodeToString(b)
	for len(enc) > 76 {
		buf.WriteString(enc[:76])
		buf.WriteString("\r\n")
		enc = enc[76:]
	}
	buf.WriteString(enc)
}

func randomBoundary() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return "hd-" + hex.EncodeToString(b[:])
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
