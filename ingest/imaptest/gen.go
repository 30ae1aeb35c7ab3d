package imaptest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	htmlpkg "html"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Generator makes realistic support mail for load tests and benchmarks: Dutch and English
// questions, plain and multipart (text + HTML), some with attachments, a share of replies
// that reference earlier messages, RFC 2047 subjects and a few charsets. It is deterministic
// for a seed.
type Generator struct {
	rng     *rand.Rand
	senders []string
	n       int
	sent    []sentMail // earlier emails, for replies
	// ReplyShare is the fraction of emails that reply to an earlier one (default 0.3).
	ReplyShare float64
	// AttachShare is the fraction with an attachment (default 0.15).
	AttachShare float64
}

// sentMail is an email the generator made: a reply to it comes from the same sender, as a
// customer's reply does.
type sentMail struct{ msgID, from string }

// NewGenerator makes a generator sending from the given addresses.
func NewGenerator(seed uint64, senders []string) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), senders: senders, ReplyShare: 0.3, AttachShare: 0.15}
}

var (
	nlSubjects = []string{"Kassa start niet op", "Bonprinter geeft foutmelding", "Pinbetaling mislukt", "Weegschaal koppelen",
		"BTW-tarief aanpassen", "Dagafsluiting klopt niet", "Nieuwe medewerker toevoegen", "Artikelen importeren",
		"Licentie verlengen", "Kassalade gaat niet open", "Terugbellen graag", "SPOED: kassa hangt"}
	enSubjects = []string{"Till will not start", "Receipt printer error", "Card payment failed", "Connect the scale",
		"Change the VAT rate", "End-of-day report is wrong", "Add a new employee", "Import products"}
	nlBody = []string{"Goedemorgen,", "Sinds gisteren werkt de kassa niet meer zoals het hoort.",
		"Na het opstarten blijft het scherm zwart en piept de kassa drie keer.", "Wij hebben de kassa al opnieuw opgestart, zonder resultaat.",
		"Kunt u ons vandaag nog helpen? We openen om negen uur.", "In de bijlage een foto van de foutmelding.",
		"Met vriendelijke groet,", "Bakkerij de Vries — Hoofdstraat 12 — 1234 AB Dorp"}
	enBody = []string{"Good morning,", "Since yesterday the till does not work as it should.",
		"After starting it the screen stays black and it beeps three times.", "We restarted it already, without result.",
		"Could you help us today? We open at nine.", "Attached is a photo of the error.", "Kind regards,"}
)

// latin1Safe writes what ISO-8859-1 lacks as its writers do.
var latin1Safe = strings.NewReplacer("—", "-", "€", "EUR")

// qpEncode is b quoted-printable with CRLF line ends.
func qpEncode(b []byte) []byte {
	var qp bytes.Buffer
	w := quotedprintable.NewWriter(&qp)
	w.Write(b)
	w.Close()
	return qp.Bytes()
}

// Next returns the next email, about size bytes long (at least a few hundred).
func (g *Generator) Next(size int) []byte {
	g.n++
	r := g.rng
	from := g.senders[r.IntN(len(g.senders))]
	dutch := r.Float64() < 0.7
	subjects, body := enSubjects, enBody
	if dutch {
		subjects, body = nlSubjects, nlBody
	}
	subject := subjects[r.IntN(len(subjects))]
	msgIDRand := r.Uint64()
	charset := "utf-8"
	switch r.IntN(10) {
	case 0:
		charset = "iso-8859-1"
	case 1:
		charset = "windows-1252"
	}
	var refs string
	if len(g.sent) > 0 && r.Float64() < g.ReplyShare {
		// A reply answers an earlier email and comes from its sender.
		parent := g.sent[r.IntN(len(g.sent))]
		from = parent.from
		subject = "Re: " + subject
		refs = fmt.Sprintf("In-Reply-To: <%s>\r\nReferences: <%s>\r\n", parent.msgID, parent.msgID)
	}
	msgID := fmt.Sprintf("gen-%d-%x@%s", g.n, msgIDRand, strings.SplitN(from, "@", 2)[1])
	var h bytes.Buffer
	fmt.Fprintf(&h, "Return-Path: <%s>\r\nFrom: %s\r\nTo: Infobits Helpdesk <support@infobits.example>\r\n%s", from, from, refs)
	if r.IntN(3) == 0 {
		subject = mime.QEncoding.Encode("utf-8", subject+" — €")
	}
	fmt.Fprintf(&h, "Subject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n",
		subject, time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC).Add(time.Duration(g.n)*time.Minute).Format(time.RFC1123Z), msgID)
	g.sent = append(g.sent, sentMail{msgID: msgID, from: from})

	// The text, repeated to the size asked.
	var text strings.Builder
	for text.Len() < max(size-h.Len()-600, 200) {
		text.WriteString(body[r.IntN(len(body))])
		text.WriteString("\r\n")
	}
	// The text in the charset the email declares (RFC 2045, 2046): what Latin-1 cannot hold
	// is written as Latin-1 writers do.
	body8 := []byte(text.String())
	switch charset {
	case "iso-8859-1":
		body8, _ = charmap.ISO8859_1.NewEncoder().Bytes([]byte(latin1Safe.Replace(text.String())))
	case "windows-1252":
		body8, _ = charmap.Windows1252.NewEncoder().Bytes(body8)
	}
	qp := qpEncode(body8)
	attach := r.Float64() < g.AttachShare
	multi := attach || r.IntN(2) == 0
	if !multi {
		fmt.Fprintf(&h, "Content-Type: text/plain; charset=%s\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", charset)
		h.Write(qp)
		return h.Bytes()
	}
	// Boundaries that are no prefix of each other (RFC 2046 section 5.1.1: a boundary must not
	// appear in the parts it encloses; "--b1-a" inside "--b1" is read wrong by some readers).
	n := r.Uint64()
	boundary, inner := fmt.Sprintf("m%x", n), fmt.Sprintf("a%x", n)
	fmt.Fprintf(&h, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary)
	fmt.Fprintf(&h, "--%s\r\nContent-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", boundary, inner)
	fmt.Fprintf(&h, "--%s\r\nContent-Type: text/plain; charset=%s\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", inner, charset)
	h.Write(qp)
	start := text.String()
	cut := min(400, len(start))
	for cut > 0 && !utf8.RuneStart(start[cut]) {
		cut--
	}
	html := "<html><body><p>" + strings.ReplaceAll(htmlpkg.EscapeString(start[:cut]), "\r\n", "<br>") + "</p></body></html>\r\n"
	fmt.Fprintf(&h, "\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", inner)
	h.Write(qpEncode([]byte(html)))
	fmt.Fprintf(&h, "\r\n--%s--\r\n", inner)
	if attach {
		n := max(size/3, 256)
		blob := make([]byte, n)
		for i := range blob {
			blob[i] = byte(r.IntN(256))
		}
		enc := base64.StdEncoding.EncodeToString(blob)
		fmt.Fprintf(&h, "--%s\r\nContent-Type: image/jpeg; name=\"foto-%d.jpg\"\r\nContent-Disposition: attachment; filename=\"foto-%d.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary, g.n, g.n)
		for len(enc) > 76 {
			h.WriteString(enc[:76])
			h.WriteString("\r\n")
			enc = enc[76:]
		}
		h.WriteString(enc + "\r\n")
	}
	fmt.Fprintf(&h, "--%s--\r\n", boundary)
	return h.Bytes()
}
