package main

import (
	"encoding/base64"
	"fmt"
	"mime"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/charset"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/ingest/imapmem"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/notify/smtpsink"
	"github.com/infobits/helpdesk/store"
)

// The demo runs the real gateway — the same poller, store, policy and notifier as serve —
// against go-imap's in-process IMAP server and a recording SMTP server on 127.0.0.1, with a
// temporary database, a few customers and a handful of realistic Dutch emails.

const (
	// demoLogin and demoPassword log in on the demo's site.
	demoLogin    = "info@bakkerijdevries.nl"
	demoPassword = "kassa-demo-2026"
	demoSupport  = "support@infobits.example"
	demoStaff    = "jan@infobits.example"
)

func runDemo(e *env, args []string) error {
	fs, _ := newFlags(e, "demo", "[-once]")
	once := fs.Bool("once", false, "process the sample mail, print the result and exit")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "helpdesk-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	mem, err := imapmem.Start(imapmem.Options{User: "helpdesk", Password: "demo"})
	if err != nil {
		return fmt.Errorf("start IMAP server: %w", err)
	}
	defer mem.Close()
	sink, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		return fmt.Errorf("start SMTP server: %w", err)
	}
	defer sink.Close()

	cfg, _, err := loadConfig("", nil) // embedded defaults only: the demo ignores the environment
	if err != nil {
		return err
	}
	cfg.DB = filepath.Join(dir, "helpdesk.db")
	cfg.IMAPAddr, cfg.IMAPUser, cfg.IMAPPassword, cfg.IMAPTLS = mem.Addr, mem.User, mem.Password, helpdesk.TLSNone
	cfg.IMAPPoll = 5 * time.Second
	cfg.SMTPAddr, cfg.SMTPTLS = sink.Addr(), helpdesk.TLSNone
	cfg.From = "Infobits Helpdesk <" + demoSupport + ">"
	cfg.Staff = []string{demoStaff}
	// The demo has no receiving server that checks DKIM/DMARC, so staff email is taken on its
	// From address (in production, set authserv_id instead).
	cfg.RequireAuth = false
	// The customer's site on 127.0.0.1 (8025 when free): the links in the demo's notifications
	// open it. With -once nothing listens, and the links name it all the same.
	cfg.HTTPAddr = demoHTTPAddr()
	cfg.SitePhone = "020 123 45 67"
	cfg.SiteURL = "http://" + cfg.HTTPAddr
	if err := cfg.validateServe(); err != nil {
		return err
	}
	log, err := newLogger(e.stderr, "text", "warn")
	if err != nil {
		return err
	}
	db, err := store.Open(cfg.DB, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	events := make(chan ingest.Event, 256)
	gw, err := newGateway(&cfg, db, log, e.now, gatewayOptions{events: events, backoffMin: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	out := e.stdout
	de := &env{ctx: e.ctx, stdout: out, stderr: e.stderr, cfg: &cfg, db: db, now: e.now, log: log}

	fmt.Fprintln(out, "== Infobits helpdesk gateway — demo ==")
	fmt.Fprintf(out, "IMAP server %s, SMTP server %s, database %s\n\n", mem.Addr, sink.Addr(), cfg.DB)
	customers := []*helpdesk.Customer{
		{Name: "Bakkerij de Vries", Emails: []string{"info@bakkerijdevries.nl", "piet@bakkerijdevries.nl"}, Tier: helpdesk.SLA8, Contract: true, ValidUntil: helpdesk.Date{Year: 2027, Month: 12, Day: 31},
			Phones: []string{"+31612345678"}, Contacts: map[string]string{"info@bakkerijdevries.nl": "Piet de Vries"}},
		{Name: "Slagerij Jansen", Emails: []string{"kassa@slagerijjansen.nl"}, Tier: helpdesk.SLA24},
		{Name: "Stichting De Buurtkast", Emails: []string{"info@buurtkast.nl"}, Tier: helpdesk.SLA8},
	}
	if err := db.Update(e.ctx, func(tx *store.Tx) error {
		for _, c := range customers {
			c.Created = e.now()
			if err := tx.PutCustomer(c); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("register customers: %w", err)
	}
	// A password for the first customer, so that the site can be opened at once.
	if err := db.Update(e.ctx, func(tx *store.Tx) error {
		return tx.SetPassword(customers[0].ID, &helpdesk.Password{Hash: desk.HashPassword(demoPassword), Set: e.now()})
	}); err != nil {
		return fmt.Errorf("demo password: %w", err)
	}
	fmt.Fprintln(out, "Customers:")
	if err := runCustomerList(de, nil); err != nil {
		return err
	}

	// Round 1: a question, one with a PDF, one from a stranger.
	first := []struct{ what, raw string }{
		{"new question from Bakkerij de Vries", demoMail("Piet de Vries <piet@bakkerijdevries.nl>", "Kassa start niet op na update", "<vraag-1@bakkerijdevries.nl>", "", "Goedemorgen,\n\nNa de update van gisteravond start onze kassa niet meer op. Het scherm blijft\nzwart na het logo. We openen om 8 uur, kunt u snel helpen?\n\nMet vriendelijke groet,\nPiet de Vries")},
		{"question with a PDF attachment from Slagerij Jansen", demoMailWithPDF()},
		{"email from an unknown sender", demoMail("Nieuwe Winkel <info@nieuwewinkel.nl>", "Prijsopgave kassasysteem", "<offerte@nieuwewinkel.nl>", "", "Hallo,\n\nWij openen binnenkort een winkel en zoeken een kassasysteem. Wat kost InfokasV3?\n\nGroet,\nAnne")},
	}
	if err := demoRound(de, gw, mem, events, "Round 1", first); err != nil {
		return err
	}

	// Round 2: the customer adds to the ticket by replying to the acknowledgement, and staff answer.
	var ackID string
	if err := db.View(e.ctx, func(tx *store.Tx) error {
		ns, err := tx.TicketNotifications(1)
		if err == nil && len(ns) > 0 {
			ackID = ns[0].MessageID
		}
		return err
	}); err != nil {
		return err
	}
	second := []struct{ what, raw string }{
		{"reply by Bakkerij de Vries to the acknowledgement", demoMail("info@bakkerijdevries.nl", "Re: [Infobits #1] Ontvangen: Kassa start niet op na update", "<vraag-2@bakkerijdevries.nl>", "<"+ackID+">", "Aanvulling: de kassa piept drie keer bij het opstarten.")},
		{"answer by staff member Jan", demoMail("Jan Bakker <"+demoStaff+">", "Re: [Infobits #1] Kassa start niet op na update", "<antwoord-1@infobits.example>", "<vraag-2@bakkerijdevries.nl>", "Goedemorgen Piet,\n\nDrie piepjes betekent dat het geheugen niet goed zit. Zet de kassa uit,\nhaal de stekker eruit, wacht tien seconden en start opnieuw. Helpt dat niet,\nbel ons dan; we komen vandaag nog langs.\n\nJan\nInfobits Helpdesk")},
	}
	if err := demoRound(de, gw, mem, events, "Round 2", second); err != nil {
		return err
	}

	fmt.Fprintln(out, "\n== Tickets ==")
	if err := runTicketList(de, nil); err != nil {
		return err
	}
	fmt.Fprintln(out)
	for _, id := range []string{"1", "2"} {
		if err := runTicketShow(de, []string{id}); err != nil {
			return err
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "\n== Held emails (kept for staff, never dropped) ==")
	if err := runTicketHeld(de, nil); err != nil {
		return err
	}
	fmt.Fprintln(out, "\n== Notifications accepted by the SMTP server ==")
	for _, m := range sink.Messages() {
		fmt.Fprintf(out, "  to %-28s %s\n", strings.Join(m.To, ","), headerOf(m.Data, "Subject"))
	}
	if *once {
		return nil
	}
	return demoLive(de, gw, mem, sink, events, &cfg)
}

// demoRound delivers emails, runs the gateway once and tells what each became.
func demoRound(e *env, gw *gateway, mem *imapmem.Server, events chan ingest.Event, title string, mails []struct{ what, raw string }) error {
	fmt.Fprintf(e.stdout, "\n== %s: delivering %d emails to the support mailbox ==\n", title, len(mails))
	for _, m := range mails {
		if _, err := mem.Append("INBOX", []byte(m.raw), time.Time{}); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "  delivered: %s\n", m.what)
	}
	if err := gw.once(e.ctx); err != nil {
		return err
	}
	for {
		select {
		case ev := <-events:
			if o := ev.Outcome; o != nil {
				fmt.Fprintf(e.stdout, "  uid %d from %s: %s\n", o.UID, o.From, describeOutcome(o))
			}
			continue
		default:
		}
		return nil
	}
}

func describeOutcome(o *desk.Outcome) string {
	switch o.Action {
	case "new_ticket":
		return fmt.Sprintf("opened ticket #%d (acknowledgement queued)", o.TicketID)
	case "reply":
		return fmt.Sprintf("added to ticket #%d", o.TicketID)
	case "staff_answer":
		return fmt.Sprintf("staff answer on ticket #%d (forwarded to the customer)", o.TicketID)
	case "duplicate":
		return "already stored (duplicate)"
	case "bounce":
		if o.HeldID == 0 {
			return fmt.Sprintf("delivery report filed on ticket #%d — %s", o.TicketID, o.Detail)
		}
	}
	return fmt.Sprintf("held #%d: %s — %s", o.HeldID, o.Reason, o.Detail)
}

// demoHTTPAddr is 127.0.0.1:8025 when it is free, else a free port on 127.0.0.1.
func demoHTTPAddr() string {
	for _, a := range []string{"127.0.0.1:8025", "127.0.0.1:0"} {
		if ln, err := net.Listen("tcp", a); err == nil {
			addr := ln.Addr().String()
			ln.Close()
			return addr
		}
	}
	return "127.0.0.1:8025"
}

// demoLive keeps the gateway running so a person can watch: mail sent to the support address
// through the demo's SMTP server is delivered into the IMAP mailbox, and becomes a ticket.
func demoLive(e *env, gw *gateway, mem *imapmem.Server, sink *smtpsink.Server, events chan ingest.Event, cfg *Config) error {
	// The rounds' notifications were printed above, and are still in the sink's channel:
	// take them out unprinted, so that each notification is listed once — before the
	// addresses are printed, and a person (or a test) sends mail through the sink.
	notified := sink.Notify()
	for range min(len(sink.Messages()), len(notified)) {
		<-notified
	}
	out := e.stdout
	fmt.Fprintf(out, `
== The gateway keeps running (Ctrl-C stops it) ==
Point a mail client at it:
  IMAP  %s  user %q password %q  (plaintext, no TLS)
  SMTP  %s  (no authentication); mail to %s lands in the mailbox
Registered senders: info@bakkerijdevries.nl, piet@bakkerijdevries.nl, kassa@slagerijjansen.nl, info@buurtkast.nl; staff: %s
In another terminal, the operator's commands talk to this gateway:
  HELPDESK_DB=%s go run ./cmd/helpdesk ticket list
`, mem.Addr, mem.User, mem.Password, sink.Addr(), demoSupport, demoStaff, cfg.DB)

	web, err := gw.listenHTTP(cfg)
	if err != nil {
		return err
	}
	defer web.shutdown(e.log)
	fmt.Fprintf(out, `
The customer's site — open it in a browser:
  %s/inloggen
  log in as %s, password %s
  (Bakkerij de Vries: the Helpdesk page, ticket #1 with Jan's answer, a new ticket with a
  file, Mijn account; "Wachtwoord vergeten" emails a link: it is printed below, to open)
`, cfg.SiteURL, demoLogin, demoPassword)

	ctl, err := listenCtl(socketPath(cfg.DB), gw.db, cfg, e.log, e.now)
	if err != nil {
		return err
	}
	ctx := e.ctx
	go ctl.serve(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-events:
				if o := ev.Outcome; o != nil {
					fmt.Fprintf(out, "[%s] email from %s: %s\n", time.Now().In(helpdesk.Amsterdam()).Format("15:04:05"), o.From, describeOutcome(o))
				}
			case m, ok := <-notified:
				if !ok {
					return
				}
				if slices.Contains(m.To, demoSupport) {
					if _, err := mem.Append("INBOX", m.Data, time.Time{}); err == nil {
						fmt.Fprintf(out, "[%s] SMTP: mail for %s delivered to the mailbox\n", time.Now().In(helpdesk.Amsterdam()).Format("15:04:05"), demoSupport)
					}
					continue
				}
				fmt.Fprintf(out, "[%s] notification to %s: %s\n", time.Now().In(helpdesk.Amsterdam()).Format("15:04:05"), strings.Join(m.To, ","), headerOf(m.Data, "Subject"))
				// The demo's mail goes nowhere a person reads it: the links to the site it
				// carries (a password link, a login link, a ticket) are printed to open.
				for _, l := range siteLinks(m.Data, cfg.SiteURL) {
					fmt.Fprintf(out, "           open: %s\n", l)
				}
			}
		}
	}()
	return gw.run(ctx)
}

// siteLinks returns the links to the site (site_url...) in a raw message's text, each once,
// in order.
func siteLinks(raw []byte, siteURL string) []string {
	var out []string
	for _, l := range demoLink.FindAllString(parse.Parse(raw, time.Time{}).Text, -1) {
		if strings.HasPrefix(l, siteURL+"/") && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

var demoLink = regexp.MustCompile(`https?://[^\s<>"]+`)

// headerOf returns a decoded header field of a raw message, for display.
func headerOf(raw []byte, name string) string {
	msg := string(raw)
	if i := strings.Index(msg, "\r\n\r\n"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.ReplaceAll(msg, "\r\n ", " ")
	for _, line := range strings.Split(msg, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, name) {
			return decodeHeader(strings.TrimSpace(v))
		}
	}
	return ""
}

func demoMail(from, subject, msgID, inReplyTo, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: Infobits Helpdesk <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n",
		from, demoSupport, encodeHeader(subject), time.Now().Format(time.RFC1123Z), msgID)
	if inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: %s\r\nReferences: %s\r\n", inReplyTo, inReplyTo)
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n") + "\r\n")
	return b.String()
}

func demoMailWithPDF() string {
	pdf := "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
	enc := base64.StdEncoding.EncodeToString([]byte(pdf))
	var lines []string
	for len(enc) > 76 {
		lines, enc = append(lines, enc[:76]), enc[76:]
	}
	lines = append(lines, enc)
	return "From: Slagerij Jansen <kassa@slagerijjansen.nl>\r\nTo: " + demoSupport + "\r\n" +
		"Subject: " + encodeHeader("Foutmelding bij afdrukken bon — zie bijlage") + "\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\nMessage-ID: <bon-1@slagerijjansen.nl>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"grens\"\r\n\r\n" +
		"--grens\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"Beste helpdesk,\r\n\r\nBij het afdrukken van de bon krijgen we een foutmelding. In de bijlage\r\nde foutrapportage van de printer.\r\n\r\nGroeten, Kees Jansen\r\n" +
		"--grens\r\nContent-Type: application/pdf; name=\"foutrapport.pdf\"\r\nContent-Disposition: attachment; filename=\"foutrapport.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		strings.Join(lines, "\r\n") + "\r\n--grens--\r\n"
}

func encodeHeader(s string) string { return mime.QEncoding.Encode("utf-8", s) }

func decodeHeader(s string) string {
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	if d, err := dec.DecodeHeader(s); err == nil {
		return d
	}
	return s
}
