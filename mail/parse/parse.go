package parse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jhillyerd/enmime/v2"

	"github.com/infobits/helpdesk"
)

// Email is an inbound email as the gateway understands it. Strings are valid UTF-8.
type Email struct {
	Raw     []byte
	SHA256  [32]byte
	Arrival time.Time // IMAP INTERNALDATE: when it reached the mailbox

	// From is the sender address as an RFC 5322 addr-spec (a local part that is no dot-atom
	// quoted), its ASCII letters lower-cased and nothing else changed (Unicode case
	// folding turned a domain with U+212A KELVIN SIGN into a customer's); empty when the From
	// field does not parse strictly (see ParseAddressList).
	From     string
	FromName string
	// FromCount is how many addresses the From header(s) hold; more than one is ambiguous.
	FromCount int
	// Duplicates names the fields that RFC 5322 section 3.6 allows once (OnceOnly) but that
	// occur more than once, in OnceOnly's order. Readers disagree on which copy counts: the
	// envelope fields above are read from the topmost copy, a DKIM verifier signs the
	// bottom-most (RFC 6376 section 5.4.2), so such an email is not what it seems.
	Duplicates []string
	// ReturnPath is the envelope sender the delivering server recorded; HasReturnPath tells
	// an empty one ("<>", a bounce) from a missing header.
	ReturnPath    string
	HasReturnPath bool
	To            []string

	Subject    string
	Date       time.Time // the Date header, zero when missing or unreadable
	MessageID  string    // as written, without brackets (BareMessageID); empty when missing
	InReplyTo  []string  // as written, without brackets
	References []string  // as written, without brackets
	// Text is the text of the email, at most MaxText bytes of it (TextCut: there was more):
	// its text/plain part(s), or the text of its HTML when it has no text part or only an
	// empty one.
	Text    string
	TextCut bool
	// HTML is the HTML the text was made from; empty when the email has a text part (the
	// HTML alternative is not read then).
	HTML string
	// Attach lists the email's files: every part that is not its text, in the order of the
	// email, each once; a file sent without a name has one made from its type (bijlage.pdf,
	// bericht.eml). Parts returns the same files with their bytes.
	Attach []Attachment

	// Header holds every header field, names canonicalised (textproto), values unfolded but
	// not decoded, in order.
	Header map[string][]string
	// pos holds, for each value in Header, the field's position in the header (0 the topmost),
	// for Runs.
	pos map[string][]int

	// Report is set when the email is a delivery report or a bounce about some message.
	Report *Report

	// Warnings lists what was repaired while reading (bad base64, charset guesses, ...).
	Warnings []string
	// Err is set when the email could not be read as MIME at all; Raw is still whole.
	Err error

	// charset is the charset the email declares for its text: raw 8-bit bytes in its
	// subject are read in it (decodeRaw8bit).
	charset string
	// fallback says why the email was read by enmime rather than the fast reader; "" when
	// it was not.
	fallback string
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

// SuppressAutoReply reports whether the sender asked for no automatic replies
// (X-Auto-Response-Suppress, Microsoft's convention): the email is a person's, but it gets no
// acknowledgement.
func (e *Email) SuppressAutoReply() bool {
	v := strings.ToLower(e.Get("X-Auto-Response-Suppress"))
	return v != "" && v != "none"
}

// Values returns every value of a header field in order.
func (e *Email) Values(name string) []string { return e.Header[canonicalKey(name)] }

// Runs returns the values of a header field grouped into runs of adjacent fields, topmost
// first: for "Authentication-Results" over
//
//	Received: ...
//	Authentication-Results: mx; dmarc=...
//	Authentication-Results: mx; dkim=...
//	Received: ...
//	Authentication-Results: mx; dmarc=pass
//
// it returns [["mx; dmarc=...", "mx; dkim=..."], ["mx; dmarc=pass"]]. An Email not made by
// Parse (no positions known) gives all values as one run.
func (e *Email) Runs(name string) [][]string {
	k := canonicalKey(name)
	vs := e.Header[k]
	if len(vs) == 0 {
		return nil
	}
	pos := e.pos[k]
	if len(pos) != len(vs) {
		return [][]string{vs}
	}
	var out [][]string
	start := 0
	for i := 1; i <= len(vs); i++ {
		if i == len(vs) || pos[i] != pos[i-1]+1 {
			out = append(out, vs[start:i:i])
			start = i
		}
	}
	return out
}

// Parse reads raw as an email that arrived at the given time, within the default Limits. It
// always returns an Email; see Email.Err and Email.Warnings for what went wrong.
func Parse(raw []byte, arrival time.Time) *Email {
	return ParseContext(context.Background(), raw, arrival, Limits{})
}

// ParseContext is Parse within lim, and stops when ctx is done: the Email then has Err
// wrapping ctx.Err() and says nothing about the email — the caller must not act on it.
//
// Well-formed mail is read by the fast reader (readFast: in memory, linear, within lim). An
// email it is not sure of is read as before by enmime, whose work is bounded by the input,
// not by luck: the MIME structure is walked first (scanStructure, linear) and an email beyond
// lim is not read as MIME (Err wraps ErrTooComplex); enmime then runs on its own goroutine
// under a work budget (reads of the input) and a deadline that grows with the size, and an
// email that exceeds either is set aside (Err wraps ErrWorkBudget). enmime cannot be
// interrupted from outside; a parser left behind at the deadline stops at its next read of
// the input, and the structural bounds limit what it can still do until then.
//
// Either way the text, the HTML and the files are laid out by one set of rules (classify)
// and the text is read no further than MaxText.
func ParseContext(ctx context.Context, raw []byte, arrival time.Time, lim Limits) (e *Email) {
	e = &Email{Raw: raw, SHA256: sha256.Sum256(raw), Arrival: arrival}
	defer func() {
		// The charset tables and header decoders are large; hostile input must never take
		// the gateway down with them. Keep what was read and report the rest.
		if r := recover(); r != nil {
			e.Err = fmt.Errorf("parser panic: %v", r)
		}
	}()
	lim = lim.withDefaults()
	e.pos = map[string][]int{}
	e.Header = readHeaderPos(raw, e.pos)
	e.readEnvelopeHeaders(false)

	root, fallback, err := readStructure(ctx, raw, lim)
	e.fallback = fallback
	if err != nil {
		e.Err = err
		// A body we cannot structure is still text a person can read.
		if i := headerEnd(raw); i >= 0 {
			e.Text, e.TextCut = cutText(clean(string(raw[i:min(len(raw), i+2*MaxText)])), MaxText, len(raw)-i > 2*MaxText)
		}
		return e
	}
	l := classify(root.entity)
	e.warn(root.warning)
	e.Warnings = append(e.Warnings, root.warnings...)
	if l.charset != "" && !utf8.ValidString(e.Get("Subject")) {
		// Raw 8-bit bytes in the subject: read in the charset of the text (see decodeRaw8bit).
		e.charset = l.charset
		e.readEnvelopeHeaders(false)
	}
	e.charset = l.charset
	e.readText(l)
	for i, f := range l.files {
		h := sha256.New()
		var size int64
		e.warn(f.decode(-1, func(b []byte) {
			h.Write(b)
			size += int64(len(b))
		}))
		e.Attach = append(e.Attach, Attachment{
			Filename:    l.names[i],
			ContentType: cleanLine(f.media),
			Size:        size,
			SHA256:      hex.EncodeToString(h.Sum(nil)),
		})
	}
	e.Report = readReport(root.entity, e.Text, e.looksLikeBounce())
	return e
}

// structure is an email's MIME structure as one of the readers read it.
type structure struct {
	*entity
	warning  string   // what the reading repaired (one line), or ""
	warnings []string // enmime's warnings
}

// readStructure reads the MIME structure of raw: the fast reader, else enmime within lim
// (fallback says why). err is set when neither could (ErrTooComplex, ErrWorkBudget, ctx,
// no MIME structure at all).
func readStructure(ctx context.Context, raw []byte, lim Limits) (s structure, fallback string, err error) {
	// Seen in practice: an mbox "From " separator line, or "---- Original email message
	// ----", before the header. Mail libraries skip what cannot be a header line; enmime
	// would refuse the whole email.
	body := stripJunk(raw)
	root, why, err := readFast(body, lim)
	if err != nil {
		return s, "", err
	}
	if why == "" {
		if root.noBoundary {
			s.warning = "multipart body without boundary read as plain text"
		}
		return structure{entity: root, warning: s.warning}, "", nil
	}
	if _, err := scanStructure(body, lim); err != nil {
		return s, why, err
	}
	env, err := readMIME(ctx, body, lim)
	if err != nil {
		if !errors.Is(err, ErrTooComplex) && !errors.Is(err, ErrWorkBudget) && ctx.Err() == nil {
			err = fmt.Errorf("read MIME structure: %w", err)
		}
		return s, why, err
	}
	s.entity = fromEnmime(env.Root, 0)
	if s.noBoundary && !s.multipart() {
		s.warning = "multipart body without boundary read as plain text"
	}
	for _, pe := range env.Errors {
		if pe.Name == enmime.ErrorPlainTextFromHTML {
			continue
		}
		s.warnings = append(s.warnings, cleanLine(pe.Error()))
	}
	return s, why, nil
}

// stripJunk drops what cannot be a header line before the first line that can (an mbox
// "From " separator, "---- Original email message ----"), as mail libraries do. Nothing is
// dropped when an empty line or the end comes first: then there is no header to find.
func stripJunk(raw []byte) []byte {
	rest := raw
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := rest
		if i >= 0 {
			line = rest[:i]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 || i < 0 {
			return raw
		}
		if c := bytes.IndexByte(line, ':'); c > 0 && line[0] != ' ' && line[0] != '\t' && isFieldName(bytes.TrimRight(line[:c], " \t")) {
			return rest
		}
		rest = rest[i+1:]
	}
	return raw
}

// Unread is an email the gateway does not read as MIME — one whose reading brought it down
// before: its raw bytes, the header fields (read by the small linear header reader, not the
// MIME parser) for staff to recognise it by, and Err = why.
func Unread(raw []byte, arrival time.Time, why error) (e *Email) {
	e = &Email{Raw: raw, SHA256: sha256.Sum256(raw), Arrival: arrival}
	defer func() {
		if r := recover(); r != nil {
			e.Header = nil
		}
		e.Err = why
	}()
	e.pos = map[string][]int{}
	e.Header = readHeaderPos(raw, e.pos)
	e.readEnvelopeHeaders(false)
	return e
}

// Report is what a delivery report (RFC 3464) or a bounce says: which message it is about
// and what happened to it.
type Report struct {
	// MessageIDs are the Message-IDs (as written) of the returned message(s), from an attached
	// message or its headers, or — for bounces that paste them — from the text.
	MessageIDs []string
	Action     string // failed, delayed, delivered, relayed, expanded (RFC 3464 §2.3.3)
	Status     string // 5.1.1 ...
	Recipient  string // the Final-Recipient address
	Diagnostic string
	// Feedback: an abuse or feedback report (RFC 5965 message/feedback-report).
	Feedback bool
}

// Permanent reports whether the report says the delivery failed for good.
func (r *Report) Permanent() bool {
	return r.Action == "failed" || (r.Action == "" && strings.HasPrefix(r.Status, "5"))
}

var pastedMessageID = regexp.MustCompile(`(?im)^[ \t>]*message-id:\s*(<[^<>\s]{3,250}>)`)

// looksLikeBounce: a bounce that pastes the returned message as text instead of attaching it
// comes from a mailer daemon or postmaster, with an empty return path, or says so in its
// subject.
func (e *Email) looksLikeBounce() bool {
	if e.HasReturnPath && e.ReturnPath == "" {
		return true
	}
	for _, who := range []string{e.From, e.ReturnPath} {
		local, _, _ := strings.Cut(who, "@")
		if local == "mailer-daemon" || local == "postmaster" {
			return true
		}
	}
	subj := strings.ToLower(e.Subject)
	for _, w := range []string{"undeliver", "returned", "delivery", "failure", "niet afgeleverd", "onbestelbaar", "bounce"} {
		if strings.Contains(subj, w) {
			return true
		}
	}
	return false
}

// readReport finds the delivery-status fields and the returned message's Message-ID in a
// report's parts; nil when the email is no report.
func readReport(root *entity, text string, bounce bool) *Report {
	r := &Report{}
	found := false
	var walk func(p *entity, depth int)
	walk = func(p *entity, depth int) {
		if depth >= 20 {
			return
		}
		switch p.media {
		case "message/delivery-status", "message/global-delivery-status":
			found = true
			content, _ := p.bytes(1 << 20)
			readDeliveryStatus(content, r)
		case "message/feedback-report", "message/disposition-notification":
			found, r.Feedback = true, true
		case "message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/global", "message/global-headers":
			found = true
			content, _ := p.bytes(1 << 20)
			h := readHeader(content)
			if v := h["Message-Id"]; len(v) > 0 {
				r.MessageIDs = append(r.MessageIDs, MessageIDs(v[0])...)
			}
		}
		for _, c := range p.children {
			walk(c, depth+1)
		}
	}
	if root != nil {
		walk(root, 0)
	}
	if len(r.MessageIDs) == 0 && bounce {
		// Only for what looks like a bounce: the regexp over every email's text cost a
		// quarter of parsing big mail.
		for _, m := range pastedMessageID.FindAllStringSubmatch(text[:min(len(text), 64<<10)], 5) {
			r.MessageIDs = append(r.MessageIDs, MessageIDs(m[1])...)
		}
	}
	if !found && len(r.MessageIDs) == 0 {
		return nil
	}
	r.Diagnostic = cleanLine(r.Diagnostic)
	return r
}

// readDeliveryStatus reads the first per-recipient block of a message/delivery-status part.
func readDeliveryStatus(content []byte, r *Report) {
	for _, block := range strings.Split(strings.ReplaceAll(string(content), "\r\n", "\n"), "\n\n") {
		h := readHeader([]byte(block + "\n\n"))
		action := strings.ToLower(strings.TrimSpace(first(h["Action"])))
		if action == "" {
			continue // the per-message block
		}
		r.Action = action
		r.Status = strings.TrimSpace(first(h["Status"]))
		if rcpt := first(h["Final-Recipient"]); rcpt != "" {
			_, addr, ok := strings.Cut(rcpt, ";")
			if !ok {
				addr = rcpt
			}
			r.Recipient = helpdesk.ASCIILower(strings.Trim(strings.TrimSpace(addr), "<>"))
		}
		r.Diagnostic = first(h["Diagnostic-Code"])
		return
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// OnceOnly are the fields RFC 5322 section 3.6 allows at most once that the gateway reads or
// that name whom an email is from or for (Bcc, which a received email should not carry, is
// left out). An email with two of one of them is held (Email.Duplicates).
var OnceOnly = []string{"From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-Id", "In-Reply-To", "References"}

// ReadBottomMost reads the envelope fields (From, To, Subject, Date, Message-ID, In-Reply-To,
// References) again from the bottom-most copy of each: the copy a DKIM signature covers
// (RFC 6376 section 5.4.2), so the one the sender's domain vouched for. It is what an email
// held for duplicate fields becomes when the operator releases it. Duplicates is
// left as it is.
func (e *Email) ReadBottomMost() { e.readEnvelopeHeaders(true) }

// readEnvelopeHeaders fills the header-derived fields from e.Header, from the topmost copy of
// a field or, with bottom, from the bottom-most.
func (e *Email) readEnvelopeHeaders(bottom bool) {
	e.Duplicates = nil
	for _, name := range OnceOnly {
		if len(e.Values(name)) > 1 {
			e.Duplicates = append(e.Duplicates, name)
		}
	}
	one := func(name string) string {
		vs := e.Values(name)
		switch {
		case len(vs) == 0:
			return ""
		case bottom:
			return vs[len(vs)-1]
		}
		return vs[0]
	}
	from := e.Values("From")
	if bottom && len(from) > 1 {
		from = from[len(from)-1:]
	}
	e.From, e.FromName, e.FromCount = "", "", 0
	var addrs []*mail.Address
	for _, v := range from {
		list, err := ParseAddressList(v)
		if err == nil && isGroup(v) {
			// RFC 5322 section 3.6.2: From is a mailbox-list, never a group. A DMARC
			// verifier that finds no domain in "Bakkerij: piet@bakkerij.nl;" writes no
			// verdict; the member is not read as the sender.
			err = errors.New("a group in From")
		}
		if err != nil {
			// Strict: a From that does not parse names no sender. Counted, so that
			// "From: ok@x, garbage" is not read as the one address it does hold.
			e.FromCount++
			continue
		}
		addrs = append(addrs, list...)
	}
	e.FromCount += len(addrs)
	if len(addrs) > 0 && e.FromCount == len(addrs) {
		e.From = addrs[0].Address
		e.FromName = cleanLine(addrs[0].Name)
	}
	e.HasReturnPath, e.ReturnPath = false, ""
	if rp, ok := e.Header["Return-Path"]; ok && len(rp) > 0 {
		e.HasReturnPath = true
		v := strings.TrimSpace(rp[0]) // the topmost: the one our delivering server wrote
		v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
		e.ReturnPath = helpdesk.ASCIILower(strings.TrimSpace(v))
	}
	e.To = nil
	to := e.Values("To")
	if bottom && len(to) > 1 {
		to = to[len(to)-1:]
	}
	for _, v := range to {
		list, _ := ParseAddressList(v)
		for _, a := range list {
			e.To = append(e.To, a.Address)
		}
	}
	e.Subject = cleanLine(decodeWords(decodeRaw8bit(one("Subject"), e.charset)))
	e.Date = time.Time{}
	if d := one("Date"); d != "" {
		if t, err := mail.ParseDate(d); err == nil {
			e.Date = t
		}
	}
	e.MessageID = ""
	if ids := MessageIDs(one("Message-Id")); len(ids) > 0 {
		e.MessageID = ids[0]
	}
	e.InReplyTo = MessageIDs(one("In-Reply-To"))
	refs := e.Values("References")
	if bottom && len(refs) > 1 {
		refs = refs[len(refs)-1:]
	}
	e.References = MessageIDs(strings.Join(refs, " "))
}

// ParseAddressList reads an address-list field (From, To) strictly, as RFC 5322 section 3.4
// (with the obsolete forms Go's net/mail accepts, and RFC 2047 encoded words in display names
// only): an error when the field does not parse. There is no fallback that finds an address
// in a display name, a comment or an encoded word ("piet@bakkerijdevries.nl" as a
// quoted display name, in a comment, or as an encoded word with "=40" for "@" were all read as
// that customer's address, and the words of "<power quadrant system@example.com>" as
// system@example.com). 8-bit bytes that are not UTF-8 are read as windows-1252 first (the
// display name of an old mailer); ASCII is left as it is, so no address can appear that way.
//
// Each address is an addr-spec (Address.Address) with its local part quoted when it is no
// dot-atom (`"john doe"@example.com`, never the ambiguous `john doe@example.com`, and
// `"a@b.example"@evil.example` stays evil.example's), ASCII letters lower-cased (ASCIILower).
// Groups give their members; addresses without '@' are refused.
func ParseAddressList(v string) ([]*mail.Address, error) {
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: wordCharsetReader}}
	list, err := p.ParseList(fromWindows1252(v))
	if err != nil {
		return nil, fmt.Errorf("address list: %w", err)
	}
	out := make([]*mail.Address, 0, len(list))
	for _, a := range list {
		spec := addrSpec(a.Address)
		if spec == "" {
			return nil, fmt.Errorf("address list: %q is no addr-spec", a.Address)
		}
		out = append(out, &mail.Address{Name: a.Name, Address: helpdesk.ASCIILower(spec)})
	}
	return out, nil
}

// isGroup reports whether an address-list field holds a group (RFC 5322 section 3.4:
// display-name ":" [group-list] ";"): a ':' outside quoted strings, comments and angle
// brackets, which is where net/mail reads one.
func isGroup(v string) bool {
	quoted, comment, angle := false, 0, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && (quoted || comment > 0):
			i++ // a quoted-pair
		case quoted:
			quoted = c != '"'
		case c == '(':
			comment++
		case c == ')' && comment > 0:
			comment--
		case comment > 0:
		case c == '"':
			quoted = true
		case c == '<':
			angle++
		case c == '>' && angle > 0:
			angle--
		case c == ':' && angle == 0:
			return true
		}
	}
	return false
}

// addrSpec writes an address net/mail returned (its local part unquoted) as an addr-spec
// again: the local part quoted when it is no dot-atom. "" when it has no '@'.
func addrSpec(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return ""
	}
	local, domain := addr[:i], addr[i+1:]
	if isDotAtom(local) {
		return local + "@" + domain
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range local {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteString(`"@`)
	b.WriteString(domain)
	return b.String()
}

// isDotAtom reports whether s is an RFC 5322 dot-atom (with RFC 6532 UTF-8 in atoms).
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		switch {
		case r >= utf8.RuneSelf:
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("!#$%&'*+-/=?^_`{|}~.", r):
		default:
			return false
		}
	}
	return true
}

// decodeWords decodes the RFC 2047 encoded words of a header value (or of a parameter, where
// mail programs put them too); a value that does not decode is kept as it is.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	dec := mime.WordDecoder{CharsetReader: wordCharsetReader}
	if d, err := dec.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// readHeader splits the header block leniently: unfolds continuation lines, skips lines
// without a colon, and stops at the first empty line or the end of the input.
func readHeader(raw []byte) map[string][]string { return readHeaderPos(raw, nil) }

// readHeaderPos is readHeader that also records in pos, when it is not nil, the position of
// each field in the header (0 the topmost), for every value in the same order.
func readHeaderPos(raw []byte, pos map[string][]int) map[string][]string {
	h := map[string][]string{}
	n := 0 // fields read
	end := headerEnd(raw)
	if end < 0 {
		end = len(raw)
	}
	block := string(raw[:end])
	var name string
	var value []string // the field's lines, joined once: appending to a string is quadratic
	flush := func() {
		if name != "" {
			k := canonicalKey(name)
			// Only the white space of RFC 5322 (and line ends) is trimmed: strings.TrimSpace
			// also cut U+00A0 and the like, which are part of the value ("piet@bakkerij.nl"
			// followed by a no-break space is another address, or none).
			h[k] = append(h[k], strings.Trim(strings.Join(value, " "), wsp))
			if pos != nil {
				pos[k] = append(pos[k], n)
			}
			n++
		}
		name, value = "", value[:0]
	}
	for line := range strings.Lines(block) {
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != "" {
				value = append(value, strings.Trim(line, wsp))
			}
			continue
		}
		flush()
		i := strings.IndexByte(line, ':')
		// RFC 5322 section 4.5 (obs-optional, obs-subject, ...): white space may stand
		// between the field name and the colon, and "Subject : x" is a Subject. enmime, DKIM
		// verifiers (relaxed canonicalization) and Postfix read it so; skipping it hid a
		// second Subject from the duplicate check while enmime's Subject was read.
		var fieldName string
		if i > 0 {
			fieldName = strings.TrimRight(line[:i], " \t")
		}
		if fieldName == "" || strings.ContainsAny(fieldName, " \t") {
			continue // not a header field; a mbox "From " line or garbage
		}
		name, value = fieldName, append(value, line[i+1:])
	}
	flush()
	return h
}

// wsp is the white space around a header field's value: RFC 5322 WSP, and line ends.
const wsp = " \t\r\n"

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

// BareMessageID is a Message-ID as written, without its angle brackets and surrounding
// space. The case is kept: it goes back out in In-Reply-To and References, and a mail client
// threads by the exact bytes (seen in practice: mutt hung a reply quoting a lower-cased Gmail
// id under a missing parent). Comparing ids is the store's business (helpdesk.CanonicalMessageID).
func BareMessageID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimPrefix(id, "<")
	id = strings.TrimSuffix(id, ">")
	// Records hold valid UTF-8 (a Message-ID is ASCII; notify leaves any other out of headers).
	return strings.ToValidUTF8(strings.TrimSpace(id), "\uFFFD")
}

// HeaderMessageID reads the Message-ID of a raw email from its header alone, as written
// (see BareMessageID); "" when it has none.
func HeaderMessageID(raw []byte) string {
	if v := readHeader(raw)["Message-Id"]; len(v) > 0 {
		if ids := MessageIDs(v[0]); len(ids) > 0 {
			return ids[0]
		}
	}
	return ""
}

// MessageIDs reads the ids of a Message-ID, In-Reply-To or References field leniently:
// every <...> token, or, when there are none, every word containing "@". go-message's reader
// fails the whole field on one id without brackets; this one keeps what it can. The ids are
// as written (BareMessageID), case kept.
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
		if id := BareMessageID(v[i+1 : i+j]); id != "" && !strings.ContainsAny(id, " \t") {
			out = append(out, id)
		}
		v = v[i+j+1:]
	}
	if len(out) == 0 {
		for _, w := range strings.Fields(v) {
			if strings.Contains(w, "@") {
				out = append(out, BareMessageID(w))
			}
		}
	}
	return out
}

// fromWindows1252 makes text valid UTF-8. Text that already is stays as it is; text that is
// not was written in an 8-bit charset without saying so, or under a charset it lied about
// ("utf-8" over Latin-1 bytes, seen in practice), and is read as windows-1252 — Dutch and
// English mail's usual 8-bit charset, of which Latin-1 is a subset — rather than shown as
// replacement characters. Charset guessing by statistics is not used: it cost more than the
// rest of parsing together and guessed wrong on short texts.
func fromWindows1252(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n <= 1 {
			b.WriteRune(windows1252(s[0]))
			s = s[1:]
			continue
		}
		b.WriteString(s[:n])
		s = s[n:]
	}
	return b.String()
}

// windows1252 maps a byte of windows-1252 to its rune.
func windows1252(c byte) rune {
	high := [32]rune{'€', '\uFFFD', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\uFFFD', 'Ž', '\uFFFD',
		'\uFFFD', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\uFFFD', 'ž', 'Ÿ'}
	if c >= 0x80 && c < 0xA0 {
		return high[c-0x80]
	}
	return rune(c) // Latin-1 and ASCII map one to one
}

// cleanLine is clean for one-line values (subjects, names, file names): no line breaks, so
// nothing a customer writes can become a header line of a notification.
func cleanLine(s string) string {
	s = fromWindows1252(s)
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
