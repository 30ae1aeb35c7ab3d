package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/notify/smtptest"
)

// Attachments travel. A staff answer's files reach the customer as files
// (same bytes, names and types); a customer's files reach staff with the notice; what is not
// carried is named with the reason and the command that saves it; `ticket attachment` writes
// any of them out. Everything through the real binary, a real SMTP peer, and Go's own MIME
// reader (net/mail, mime/multipart) judging what arrived.

// testFile is an attachment of a test email.
type testFile struct {
	name, ctype string // ctype with its parameters, e.g. "text/plain; charset=windows-1252"
	content     []byte
	qp          bool // quoted-printable instead of base64
}

// mailWithFiles is a customer's or staff member's email with a text and attachments.
func mailWithFiles(from, subject, msgID, extra, body string, files ...testFile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: support@infobits.example\r\nSubject: %s\r\nDate: Fri, 27 Nov 2026 16:00:00 +0100\r\nMessage-ID: <%s>\r\n%sMIME-Version: 1.0\r\n",
		from, subject, msgID, extra)
	b.WriteString("Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(body + "\r\n")
	for _, f := range files {
		b.WriteString("--outer\r\nContent-Type: " + f.ctype + "\r\n")
		b.WriteString("Content-Disposition: " + mime.FormatMediaType("attachment", map[string]string{"filename": f.name}) + "\r\n")
		if f.qp {
			b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
			for _, c := range f.content {
				if c >= 0x80 || c == '=' {
					fmt.Fprintf(&b, "=%02X", c)
				} else {
					b.WriteByte(c)
				}
			}
			b.WriteString("\r\n")
			continue
		}
		b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString(f.content)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--outer--\r\n")
	return b.String()
}

// gotFile is an attachment as a mail client reads it.
type gotFile struct {
	name, mediaType string
	params          map[string]string
	content         []byte
}

// receivedFiles reads the attachments of a received message with the standard library's
// MIME readers: parts with a file name, their bytes decoded from base64 or quoted-printable.
func receivedFiles(t *testing.T, raw []byte) (text string, files []gotFile) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	var walk func(h map[string][]string, body io.Reader)
	walk = func(h map[string][]string, body io.Reader) {
		get := func(k string) string {
			if v := h[k]; len(v) > 0 {
				return v[0]
			}
			return ""
		}
		mt, params, err := mime.ParseMediaType(get("Content-Type"))
		if err != nil {
			t.Fatalf("Content-Type %q: %v", get("Content-Type"), err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatalf("multipart: %v", err)
				}
				walk(p.Header, p)
			}
		}
		data, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		if strings.EqualFold(get("Content-Transfer-Encoding"), "base64") {
			if data, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(data)), "")); err != nil {
				t.Fatalf("base64: %v", err)
			}
		}
		_, dp, _ := mime.ParseMediaType(get("Content-Disposition"))
		if dp["filename"] == "" {
			if mt == "text/plain" && text == "" {
				text = string(data)
			}
			return
		}
		files = append(files, gotFile{name: dp["filename"], mediaType: mt, params: params, content: data})
	}
	walk(msg.Header, msg.Body)
	return text, files
}

// sinkTo returns the messages to an address, in arrival order.
func sinkTo(msgs []smtpsink.Message, to string) []smtpsink.Message {
	var out []smtpsink.Message
	for _, m := range msgs {
		if slices.Contains(m.To, to) {
			out = append(out, m)
		}
	}
	return out
}

// waitSink waits until the sink holds n messages in all.
func waitSink(t *testing.T, p *peers, n int) []smtpsink.Message {
	t.Helper()
	msgs, err := p.sink.Wait(ctxTimeout(t, 30*time.Second), n)
	if err != nil {
		t.Fatalf("sink got %d messages, want %d: %v", len(msgs), n, err)
	}
	return msgs
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

const staffList = "team@infobits.example"

func TestAttachmentsTravel(t *testing.T) {
	p := newPeers(t)
	env := p.env("HELPDESK_STAFF_LIST=" + staffList)
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	mustRun(t, env, "customer", "add", "-email", "kassa@slagerijjansen.nl", "-name", "Slagerij Jansen", "-sla", "SLA8", "-answer", "site")

	// The customer sends a photo and a log file written in windows-1252 ("café" with é = 0xE9).
	photo := randomBytes(40_000, 1)
	logFile := []byte("12:00 kassa start\r\n12:01 fout in caf\xe9-module\r\n")
	p.deliver(t, mailWithFiles("info@bakkerijdevries.nl", "Kassa geeft fout", "q1@bakkerij", "", "Zie de foto en het logbestand.",
		testFile{name: "foto kassa.jpg", ctype: "image/jpeg", content: photo},
		testFile{name: "kassa.log", ctype: "text/plain; charset=windows-1252", content: logFile, qp: true}))
	mustRun(t, env, "serve", "-once")

	msgs := waitSink(t, p, 2) // the acknowledgement and the staff notice
	staff := sinkTo(msgs, staffList)
	if len(staff) != 1 {
		t.Fatalf("staff notices = %d, want 1", len(staff))
	}
	_, files := receivedFiles(t, staff[0].Data)
	if len(files) != 2 {
		t.Fatalf("staff notice carries %d files, want the customer's 2", len(files))
	}
	if f := files[0]; f.name != "foto kassa.jpg" || f.mediaType != "image/jpeg" || !bytes.Equal(f.content, photo) {
		t.Errorf("staff notice file 1 = %q %s, %d bytes (same: %v), want the photo", f.name, f.mediaType, len(f.content), bytes.Equal(f.content, photo))
	}
	if f := files[1]; f.name != "kassa.log" || f.mediaType != "text/plain" || f.params["charset"] != "windows-1252" || !bytes.Equal(f.content, logFile) {
		t.Errorf("staff notice file 2 = %q %s %v %q, want kassa.log in windows-1252, byte for byte", f.name, f.mediaType, f.params, f.content)
	}
	if ack := sinkTo(msgs, "info@bakkerijdevries.nl"); len(ack) != 1 {
		t.Fatalf("acknowledgements = %d", len(ack))
	} else if _, fs := receivedFiles(t, ack[0].Data); len(fs) != 0 {
		t.Errorf("the acknowledgement carries %d files, want none", len(fs))
	}

	// `ticket show` numbers the files; `ticket attachment` writes them out as they were sent.
	show := mustRun(t, env, "ticket", "show", "1")
	if !strings.Contains(show, "Attachment 1: foto kassa.jpg") || !strings.Contains(show, "Attachment 2: kassa.log") ||
		!strings.Contains(show, "helpdesk ticket attachment 1 2") {
		t.Errorf("ticket show does not number the files:\n%s", show)
	}
	out := filepath.Join(p.dir, "saved.log")
	mustRun(t, env, "ticket", "attachment", "1", "2", "-o", out)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, logFile) {
		t.Errorf("ticket attachment 1 2 wrote %q, want %q", got, logFile)
	}
	if got := mustRun(t, env, "ticket", "attachment", "1", "1", "-o", "-"); got != string(photo) {
		t.Errorf("ticket attachment 1 1 -o - wrote %d bytes, want the photo's %d", len(got), len(photo))
	}

	// A staff member answers with the manual attached: the customer gets the PDF.
	manual := append([]byte("%PDF-1.4\n"), randomBytes(30_000, 2)...)
	p.deliver(t, mailWithFiles("Jan <jan@infobits.example>", "Re: [Infobits #1] Kassa geeft fout", "a1@infobits", staffAuth,
		"Beste Piet,\r\n\r\nIn de bijlage vindt u de handleiding.\r\n\r\nGroet, Jan",
		testFile{name: "handleiding kassa.pdf", ctype: "application/pdf", content: manual}))
	// The site customer opens a ticket, and gets an answer with a file too.
	p.deliver(t, customerMail("kassa@slagerijjansen.nl", "Bonprinter", "q2@slagerij", "", "Hij print niet."))
	mustRun(t, env, "serve", "-once")
	p.deliver(t, mailWithFiles("Jan <jan@infobits.example>", "Re: [Infobits #2] Bonprinter", "a2@infobits", staffAuth,
		"Zie het schema.", testFile{name: "schema.png", ctype: "image/png", content: randomBytes(5_000, 3)}))
	mustRun(t, env, "serve", "-once")

	msgs = waitSink(t, p, 6) // + answer, ack and staff notice of ticket 2, answer-on-site notice
	answers := sinkTo(msgs, "info@bakkerijdevries.nl")
	if len(answers) != 2 {
		t.Fatalf("mails to the customer = %d, want ack and answer", len(answers))
	}
	text, files := receivedFiles(t, answers[1].Data)
	if len(files) != 1 || files[0].name != "handleiding kassa.pdf" || files[0].mediaType != "application/pdf" || !bytes.Equal(files[0].content, manual) {
		t.Fatalf("answer files = %+v, want the manual byte for byte", files)
	}
	if !strings.Contains(text, "In de bijlage vindt u de handleiding.") {
		t.Errorf("answer text = %q", text)
	}
	site := sinkTo(msgs, "kassa@slagerijjansen.nl")
	if len(site) != 2 {
		t.Fatalf("mails to the site customer = %d, want ack and notice", len(site))
	}
	text, files = receivedFiles(t, site[1].Data)
	if len(files) != 0 || !strings.Contains(text, "schema.png") || !strings.Contains(text, "https://helpdesk.infobits.example/tickets/2") {
		t.Errorf("answer-on-site notice: %d files, text %q; want the file named, not attached, and the link", len(files), text)
	}
}

// TestAttachmentsAboveLimits: a staff notice names files above attach_max_bytes with the
// command that saves them; a notification above the SMTP server's SIZE goes without its files
// and says so, and is sent, not refused or retried for ever.
func TestAttachmentsAboveLimits(t *testing.T) {
	p := newPeers(t)
	p.sink = smtptest.New(t, smtpsink.Options{MaxMessageBytes: 60_000}) // advertises SIZE 60000
	env := p.env("HELPDESK_STAFF_LIST="+staffList, "HELPDESK_ATTACH_MAX_BYTES=20000")
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	photo := randomBytes(30_000, 4)
	p.deliver(t, mailWithFiles("info@bakkerijdevries.nl", "Scherm zwart", "q1@bakkerij", "", "Foto erbij.",
		testFile{name: "scherm.jpg", ctype: "image/jpeg", content: photo}))
	mustRun(t, env, "serve", "-once")
	msgs := waitSink(t, p, 2)
	staff := sinkTo(msgs, staffList)
	text, files := receivedFiles(t, staff[0].Data)
	if len(files) != 0 {
		t.Errorf("staff notice carries %d files above attach_max_bytes, want none", len(files))
	}
	for _, want := range []string{"scherm.jpg (30,0 kB)", "helpdesk ticket attachment 1 1", "samen groter dan 20,0 kB"} {
		if !strings.Contains(text, want) {
			t.Errorf("staff notice text lacks %q:\n%s", want, text)
		}
	}

	// The staff answer's file (80 kB) is above the server's SIZE: the answer goes without it.
	manual := randomBytes(80_000, 5)
	p.deliver(t, mailWithFiles("Jan <jan@infobits.example>", "Re: [Infobits #1] Scherm zwart", "a1@infobits", staffAuth,
		"Zie de handleiding.", testFile{name: "handleiding.pdf", ctype: "application/pdf", content: manual}))
	mustRun(t, env, "serve", "-once")
	msgs = waitSink(t, p, 3)
	answers := sinkTo(msgs, "info@bakkerijdevries.nl")
	text, files = receivedFiles(t, answers[len(answers)-1].Data)
	if len(files) != 0 || !strings.Contains(text, "handleiding.pdf") || !strings.Contains(text, "te groot voor de mailserver") ||
		!strings.Contains(text, "https://helpdesk.infobits.example/tickets/1") {
		t.Errorf("answer above SIZE: %d files, text %q; want the text, the file named and where to find it", len(files), text)
	}
	var outbox []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, env, "outbox", "list", "-json")), &outbox); err != nil {
		t.Fatal(err)
	}
	var answerRow map[string]any
	for _, n := range outbox {
		if n["kind"] == "answer" {
			answerRow = n
		}
	}
	if answerRow == nil || answerRow["status"] != "sent" || !strings.Contains(fmt.Sprint(answerRow["attach_note"]), "size limit") {
		t.Errorf("outbox row of the answer = %v, want sent with a note on the attachment", answerRow)
	}

	// A server that does not announce SIZE but refuses the message for its size (552 5.3.4):
	// sent again at once without the file.
	p.sink.FailNext(smtpsink.StageData, 552, smtp.EnhancedCode{5, 3, 4}, "Message too big for system", 1)
	p.deliver(t, mailWithFiles("Jan <jan@infobits.example>", "Re: [Infobits #1] Scherm zwart", "a2@infobits", staffAuth,
		"Nog een bestand.", testFile{name: "klein.pdf", ctype: "application/pdf", content: randomBytes(1_000, 6)}))
	mustRun(t, env, "serve", "-once")
	msgs = waitSink(t, p, 4)
	answers = sinkTo(msgs, "info@bakkerijdevries.nl")
	text, files = receivedFiles(t, answers[len(answers)-1].Data)
	if len(files) != 0 || !strings.Contains(text, "klein.pdf") {
		t.Errorf("answer after 552: %d files, text %q; want it sent without the file, naming it", len(files), text)
	}
}

// TestForwardedEmailTravels: a forwarded email (message/rfc822) reaches staff as one, not
// base64-encoded (RFC 2046 §5.2.1 allows only 7bit, 8bit or binary), byte for byte; one with
// 8-bit text goes as 8bit.
func TestForwardedEmailTravels(t *testing.T) {
	p := newPeers(t)
	env := p.env("HELPDESK_STAFF_LIST=" + staffList)
	mustRun(t, env, "customer", "add", "-email", "info@bakkerijdevries.nl", "-name", "Bakkerij de Vries", "-sla", "SLA8")
	ascii := "From: leverancier@example.com\r\nSubject: Factuur\r\n\r\nHierbij de factuur.\r\n"
	latin := "From: leverancier@example.com\r\nSubject: Factuur\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDe caf\xc3\xa9-module.\r\n"
	for i, fwd := range []string{ascii, latin} {
		raw := "From: info@bakkerijdevries.nl\r\nTo: support@infobits.example\r\nSubject: Doorgestuurd " + fmt.Sprint(i) +
			"\r\nMessage-ID: <fwd" + fmt.Sprint(i) + "@bakkerij>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n" +
			"--o\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nZie de doorgestuurde e-mail.\r\n" +
			"--o\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=factuur.eml\r\n\r\n" + fwd + "--o--\r\n"
		p.deliver(t, raw)
	}
	mustRun(t, env, "serve", "-once")
	msgs := waitSink(t, p, 4)
	staff := sinkTo(msgs, staffList)
	if len(staff) != 2 {
		t.Fatalf("staff notices = %d, want 2", len(staff))
	}
	for i, want := range []struct{ content, cte string }{{ascii, "7bit"}, {latin, "8bit"}} {
		data := string(staff[i].Data)
		if !strings.Contains(data, "Content-Type: message/rfc822") || !strings.Contains(data, "Content-Transfer-Encoding: "+want.cte) {
			t.Errorf("staff notice %d: the forwarded email is not a %s message/rfc822 part:\n%s", i, want.cte, data)
		}
		_, files := receivedFiles(t, staff[i].Data)
		if len(files) != 1 || files[0].mediaType != "message/rfc822" || string(files[0].content) != want.content {
			t.Errorf("staff notice %d files = %+v, want the forwarded email byte for byte", i, files)
		}
	}
}
