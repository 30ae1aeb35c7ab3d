package mailparse

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"github.com/jhillyerd/enmime/v2"
)

// Email is an inbound email as the gateway understands it. Strings are valid UTF-8.
type Email struct {
	Raw     []byte
	SHA256  [32]byte
	Arrival time.Time // IMAP INTERNALDATE: when it reached the mailbox

	// From is the lower-case sender address, empty when the email has none that parses.
	From     string
	FromName string
	// FromCount is how many addresses the From header(s) hold; more than one is ambiguous.
	FromCount int
	// ReturnPath is the envelope sender the delivering server recorded; HasReturnPath tells
	// an empty one ("<>", a bounce) from a missing header.
	ReturnPath    string
	HasReturnPath bool
	To            []string

	Subject    string
	Date       time.Time // the Date header, zero when missing or unreadable
	MessageID  string    // canonical (see CanonicalMessageID); empty when missing
	InReplyTo  []string  // canonical
	References []string  // canonical
	Text       string
	HTML       string
	Attach     []Attachment

	// Header holds every header field, names canonicalised (textproto), values unfolded but
	// not decoded, in order.
	Header map[string][]string

	// Warnings lists what was repaired while reading (bad base64, charset guesses, ...).
	Warnings []string
	// Err is set when the email could not be read as MIME at all; Raw is still whole.
	Err error
}

// Attachment is one attachment or inline file.
type Attachment struct {
	Filename    string
	ContentType string
	Size        int64
	SHA256      string
}

// Get returns the first value of a header field, undecoded, or "".
func (e *Email) Get(name string) string {
	if v := e.Header[canonicalKey(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of a header field in order.
func (e *Email) Values(name string) []string { return e.Header[canonicalKey(name)] }

// Parse reads raw as an email that arrived at the given time. It always returns an Email;
// see Email.Err and Email.Warnings for what went wrong.
func Parse(raw []byte, arrival time.Time) (e *Email) {
	e = &Email{Raw: raw, SHA256: sha256.Sum256(raw), Arrival: arrival}
	defer func() {
		// enmime and the charset tables are large; hostile input must never take the
		// gateway down with them. Keep what was read and report the rest.
		if r := recover(); r != nil {
			e.Err = fmt.Errorf("parser panic: %v", r)
		}
	}()
	e.Header = readHeader(raw)
	e.readEnvelopeHeaders()

	body, declared, unclosed := closeBoundaries(raw)
	for i, b := range unclosed {
		if i == 5 {
			e.Warnings = append(e.Warnings, fmt.Sprintf("Missing Boundary: %d more boundaries were not closed", len(unclosed)-i))
			break
		}
		e.Warnings = append(e.Warnings, cleanLine(fmt.Sprintf("Missing Boundary: boundary %q was not closed", b)))
	}
	// Seen in practice: an mbox "From " separator line before the header (mail saved by some
	// delivery agents). readHeader skips it; enmime would refuse the whole email.
	if bytes.HasPrefix(body, []byte("From ")) {
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			body = body[i+1:]
		}
	}
	var env *enmime.Envelope
	var err error
	if declared > maxBoundaries {
		// enmime reads every byte through one reader per enclosing multipart: the cost grows
		// with the square of the nesting. No real email nests this deep.
		err = fmt.Errorf("%d multipart boundaries, more than %d", declared, maxBoundaries)
	} else {
		env, err = enmime.NewParser(
			enmime.MultipartWOBoundaryAsSinglePart(true),
			enmime.SkipMalformedParts(true),
			enmime.MaxStoredPartErrors(20),
			enmime.SetReadPartErrorPolicy(enmime.AllowCorruptTextPartErrorPolicy),
		).ReadEnvelope(bytes.NewReader(body))
	}
	if err != nil {
		e.Err = fmt.Errorf("read MIME structure: %w", err)
		// A body we cannot structure is still text a person can read.
		if i := headerEnd(raw); i >= 0 {
			e.Text = clean(string(raw[i:]))
		}
		return e
	}
	if s := env.GetHeader("Subject"); s != "" {
		e.Subject = cleanLine(s)
	}
	e.Text = clean(env.Text)
	e.HTML = clean(env.HTML)
	// Seen in practice: "Content-Type: multipart/mixed" without a boundary parameter. enmime
	// then reads the body as one part, but as a nameless attachment; it is the customer's text.
	bodyAsText := env.Text == "" && env.HTML == "" && env.Root != nil && len(env.Root.Content) > 0 &&
		env.Root.FirstChild == nil && strings.HasPrefix(strings.ToLower(env.Root.ContentType), "multipart/")
	if bodyAsText {
		e.Text = clean(string(env.Root.Content))
		e.Warnings = append(e.Warnings, "multipart body without boundary read as plain text")
	}
	for _, group := range [][]*enmime.Part{env.Attachments, env.Inlines, env.OtherParts} {
		for _, p := range group {
			if bodyAsText && p == env.Root {
				continue
			}
			sum := sha256.Sum256(p.Content)
			e.Attach = append(e.Attach, Attachment{
				Filename:    cleanLine(p.FileName),
				ContentType: cleanLine(p.ContentType),
				Size:        int64(len(p.Content)),
				SHA256:      hex.EncodeToString(sum[:]),
			})
		}
	}
	for _, pe := range env.Errors {
		if pe.Name == enmime.ErrorPlainTextFromHTML {
			continue
		}
		e.Warnings = append(e.Warnings, cleanLine(pe.Error()))
	}
	return e
}

var boundaryParam = regexp.MustCompile(`(?i)\bboundary\s*=\s*(?:"([^"\r\n]+)"|([^\s;"]+))`)

// closeBoundaries returns raw with a closing delimiter appended for every multipart boundary
// that is declared but never closed, innermost first, the number of distinct boundaries
// declared and the ones it closed. Seen in
// testing: at the end of input enmime v2.3.0 re-reads through every enclosing multipart level
// for each byte it peeks at, so n nested unclosed multiparts cost about 2^n (30 levels, 2 KB,
// take minutes; 200 levels never finish) and one such email would stall ingest. Closed, the
// same email parses in milliseconds, and each part still ends at the end of the input, as
// enmime would end it. raw itself is not changed.
func closeBoundaries(raw []byte) (body []byte, declared int, closed []string) {
	var missing []string
	seen := map[string]bool{}
	for _, m := range boundaryParam.FindAllSubmatch(raw, -1) {
		b := m[1]
		if b == nil {
			b = m[2]
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 || seen[string(b)] {
			continue
		}
		seen[string(b)] = true
		if !bytes.Contains(raw, []byte("--"+string(b)+"--")) {
			missing = append(missing, string(b))
		}
	}
	if len(missing) == 0 {
		return raw, len(seen), nil
	}
	out := bytes.Clone(raw)
	for i := len(missing) - 1; i >= 0; i-- {
		out = append(out, "\r\n--"+missing[i]+"--\r\n"...)
	}
	return out, len(seen), missing
}

// maxBoundaries bounds the multipart boundaries an email may declare before Parse gives up
// on its structure (Err set, body kept as text): real mail has a handful, forwarded chains a
// few dozen.
const maxBoundaries = 100

// readEnvelopeHeaders fills the header-derived fields from e.Header, leniently.
func (e *Email) readEnvelopeHeaders() {
	from := e.Values("From")
	var addrs []*mail.Address
	for _, v := range from {
		addrs = append(addrs, parseAddresses(v)...)
	}
	e.FromCount = len(addrs)
	if len(addrs) > 0 {
		e.From = strings.ToLower(addrs[0].Address)
		e.FromName = cleanLine(addrs[0].Name)
	}
	if rp, ok := e.Header["Return-Path"]; ok && len(rp) > 0 {
		e.HasReturnPath = true
		v := strings.TrimSpace(rp[len(rp)-1])
		v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
		e.ReturnPath = strings.ToLower(strings.TrimSpace(v))
	}
	for _, v := range e.Values("To") {
		for _, a := range parseAddresses(v) {
			e.To = append(e.To, strings.ToLower(a.Address))
		}
	}
	e.Subject = cleanLine(decodeWords(e.Get("Subject")))
	if d := e.Get("Date"); d != "" {
		if t, err := mail.ParseDate(d); err == nil {
			e.Date = t
		}
	}
	if ids := MessageIDs(e.Get("Message-Id")); len(ids) > 0 {
		e.MessageID = ids[0]
	}
	e.InReplyTo = MessageIDs(e.Get("In-Reply-To"))
	e.References = MessageIDs(strings.Join(e.Values("References"), " "))
}

var addrSpec = regexp.MustCompile(`[^\s<>"(),;:@\[\]]+@[^\s<>"(),;:@\[\]]+\.[^\s<>"(),;:@\[\]]+`)

// parseAddresses reads an address-list header leniently: RFC 5322 first, then any
// addr-spec-looking words (seen in practice: unquoted commas and dots in display names).
func parseAddresses(v string) []*mail.Address {
	if list, err := enmime.ParseAddressList(v); err == nil && len(list) > 0 {
		var out []*mail.Address
		for _, a := range list {
			if a != nil && strings.Contains(a.Address, "@") {
				out = append(out, a)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	var out []*mail.Address
	seen := map[string]bool{}
	for _, m := range addrSpec.FindAllString(decodeWords(v), -1) {
		m = strings.ToLower(strings.Trim(m, "."))
		if !seen[m] {
			seen[m] = true
			out = append(out, &mail.Address{Address: m})
		}
	}
	return out
}

func decodeWords(s string) string {
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	if d, err := dec.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// readHeader splits the header block leniently: unfolds continuation lines, skips lines
// without a colon, and stops at the first empty line or the end of the input.
func readHeader(raw []byte) map[string][]string {
	h := map[string][]string{}
	end := headerEnd(raw)
	if end < 0 {
		end = len(raw)
	}
	block := string(raw[:end])
	var name, value string
	flush := func() {
		if name != "" {
			k := canonicalKey(name)
			h[k] = append(h[k], strings.TrimSpace(value))
		}
		name, value = "", ""
	}
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != "" {
				value += " " + strings.TrimSpace(line)
			}
			continue
		}
		flush()
		i := strings.IndexByte(line, ':')
		if i <= 0 || strings.ContainsAny(line[:i], " \t") {
			continue // not a header field; a mbox "From " line or garbage
		}
		name, value = line[:i], line[i+1:]
	}
	flush()
	return h
}

// headerEnd returns the offset of the body, or -1 when there is no empty line.
func headerEnd(raw []byte) int {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		if j := bytes.Index(raw, []byte("\n\n")); j >= 0 && j < i {
			return j + 2
		}
		return i + 4
	}
	if j := bytes.Index(raw, []byte("\n\n")); j >= 0 {
		return j + 2
	}
	return -1
}

func canonicalKey(name string) string {
	b := []byte(strings.ToLower(strings.TrimSpace(name)))
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		upper = c == '-'
	}
	return string(b)
}

// CanonicalMessageID is the form Message-IDs are compared in: without angle brackets and
// surrounding space, lower-cased (seen in practice: clients change the case of ids they quote).
func CanonicalMessageID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimPrefix(id, "<")
	id = strings.TrimSuffix(id, ">")
	return strings.ToLower(strings.TrimSpace(id))
}

// MessageIDs reads the ids of a Message-ID, In-Reply-To or References field leniently:
// every <...> token, or, when there are none, every word containing "@". go-message's reader
// fails the whole field on one id without brackets; this one keeps what it can.
func MessageIDs(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			break
		}
		if id := CanonicalMessageID(v[i+1 : i+j]); id != "" && !strings.ContainsAny(id, " \t") {
			out = append(out, id)
		}
		v = v[i+j+1:]
	}
	if len(out) == 0 {
		for _, w := range strings.Fields(v) {
			if strings.Contains(w, "@") {
				out = append(out, CanonicalMessageID(w))
			}
		}
	}
	return out
}

// clean makes body text safe to store and show: valid UTF-8, no NUL or other control
// characters except newline and tab, LF line ends.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// cleanLine is clean for one-line values (subjects, names, file names): no line breaks, so
// nothing a customer writes can become a header line of a notification.
func cleanLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\r' || r == '\n' {
			return ' '
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	const max = 998
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// CleanLine is exported for other packages that put customer text on one line.
func CleanLine(s string) string { return cleanLine(s) }
