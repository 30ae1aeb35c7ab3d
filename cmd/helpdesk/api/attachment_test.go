package api_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"testing"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/desk/view"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
)

// mailFile is an attachment of a test email.
type mailFile struct {
	name, ctype string
	content     []byte
}

// mailWithFiles is an email of a text and base64 attachments.
func mailWithFiles(from, subject, msgID, body string, files ...mailFile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: support@infobits.example\r\nSubject: %s\r\nDate: Fri, 27 Nov 2026 09:30:00 +0100\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n", from, subject, msgID)
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n")
	for _, f := range files {
		fmt.Fprintf(&b, "--b1\r\nContent-Type: %s\r\nContent-Disposition: %s\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n",
			f.ctype, mime.FormatMediaType("attachment", map[string]string{"filename": f.name}), base64.StdEncoding.EncodeToString(f.content))
	}
	b.WriteString("--b1--\r\n")
	return b.String()
}

// TestTicketAttachment: GET /api/tickets/{id}/attachments/{n} hands the website a file of
// the ticket byte for byte, numbered as GET /api/tickets/{id} numbers them, as a download
// with the sender's name and type (a text file in its own charset); the files of staff's
// internal notes are not the customer's to get.
func TestTicketAttachment(t *testing.T) {
	f := newFixture(t, nil)
	logFile := []byte("12:00 kassa start\r\n12:01 fout in caf\xe9-module\r\n") // windows-1252
	pdf := append([]byte("%PDF-1.4\n"), 0x00, 0xff, 0x10, '"', '\r', '\n')
	secret := []byte("interne notitie: leverancier bellen\n")
	f.update(func(tx *store.Tx) error {
		// Ticket 2 is the site customer's; they reply with a log file and a PDF.
		raw := mailWithFiles("kassa@slagerijjansen.nl", "Re: [Infobits #2] Bonprinter drukt niet", "bon-2@slagerijjansen.nl", "Zie bijlagen.",
			mailFile{"kassa café.log", "text/plain; charset=windows-1252", logFile}, mailFile{"printer.pdf", "application/pdf", pdf})
		out, err := f.desk.Apply(tx, parse.Parse([]byte(raw), f.clock.now()), helpdesk.Source{}, false)
		if err != nil || out.Action != "reply" || out.TicketID != 2 {
			return fmt.Errorf("customer reply became %+v (%v)", out, err)
		}
		// A staff member's internal note with a file, released by the operator (the fixture
		// trusts no authentication server).
		raw = mailWithFiles("Jan <jan@infobits.example>", "Re: [Infobits #2] Bonprinter drukt niet", "note-1@infobits.example",
			"#note\r\nAlleen voor ons.", mailFile{"intern.txt", "text/plain; charset=utf-8", secret})
		held, err := f.desk.Apply(tx, parse.Parse([]byte(raw), f.clock.now()), helpdesk.Source{}, false)
		if err != nil || held.HeldID == 0 {
			return fmt.Errorf("staff note became %+v (%v), want held as unverified", held, err)
		}
		out, err = f.desk.Release(tx, held.HeldID, desk.ReleaseOptions{AsStaff: true, By: "test"})
		if err != nil || out.TicketID != 2 {
			return fmt.Errorf("released note became %+v (%v)", out, err)
		}
		return nil
	})

	// The numbers the website reads from the ticket.
	var d struct {
		Messages []struct {
			Attachments []struct {
				Number   int    `json:"number"`
				Filename string `json:"filename"`
			} `json:"attachments"`
		} `json:"messages"`
	}
	r := f.call("GET", "/api/tickets/2", "")
	expect(t, "ticket 2", r, http.StatusOK)
	r.json(t, &d)
	var listed []string
	for _, m := range d.Messages {
		for _, a := range m.Attachments {
			listed = append(listed, fmt.Sprintf("%d %s", a.Number, a.Filename))
		}
	}
	if strings.Join(listed, ", ") != "1 kassa café.log, 2 printer.pdf" {
		t.Fatalf("ticket 2 lists attachments %q, want the customer's two", listed)
	}

	for _, tc := range []struct {
		n               int
		content         []byte
		ctype, filename string
	}{
		{1, logFile, "text/plain; charset=windows-1252", "kassa café.log"},
		{2, pdf, "application/pdf", "printer.pdf"},
	} {
		r := f.call("GET", fmt.Sprintf("/api/tickets/2/attachments/%d", tc.n), "")
		if r.status != http.StatusOK || !bytes.Equal(r.body, tc.content) {
			t.Errorf("attachment %d: status %d, body %q; want %q", tc.n, r.status, r.body, tc.content)
		}
		if ct := r.header.Get("Content-Type"); ct != tc.ctype {
			t.Errorf("attachment %d: Content-Type %q, want %q", tc.n, ct, tc.ctype)
		}
		disp, params, err := mime.ParseMediaType(r.header.Get("Content-Disposition"))
		if err != nil || disp != "attachment" || params["filename"] != tc.filename {
			t.Errorf("attachment %d: Content-Disposition %q, want a download named %q", tc.n, r.header.Get("Content-Disposition"), tc.filename)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("attachment %d: not marked nosniff", tc.n)
		}
	}

	// File 3 is the note's: staff have it, the website does not.
	f.view(func(tx *store.Tx) error {
		p, err := view.TicketFile(tx, 2, 3)
		if err != nil || !bytes.Equal(p.Content, secret) {
			t.Errorf("staff's file 3 = %q, %v; want the note's file", p.Content, err)
		}
		return nil
	})
	r = f.call("GET", "/api/tickets/2/attachments/3", "")
	expect(t, "the note's file", r, http.StatusNotFound)
	if e := r.errorText(t); e != "no such attachment" || bytes.Contains(r.body, secret) {
		t.Errorf("the note's file: %q", r.body)
	}
	expect(t, "a number past the files", f.call("GET", "/api/tickets/2/attachments/4", ""), http.StatusNotFound)
	r = f.call("GET", "/api/tickets/99/attachments/1", "")
	expect(t, "unknown ticket", r, http.StatusNotFound)
	if e := r.errorText(t); e != "no such ticket" {
		t.Errorf("unknown ticket: %q", e)
	}
	expect(t, "number 0", f.call("GET", "/api/tickets/2/attachments/0", ""), http.StatusBadRequest)
	expect(t, "not a number", f.call("GET", "/api/tickets/2/attachments/x", ""), http.StatusBadRequest)
	expect(t, "without the token", f.call("GET", "/api/tickets/2/attachments/1", "", "Authorization: "), http.StatusUnauthorized)
}
