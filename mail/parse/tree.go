package parse

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/jhillyerd/enmime/v2"
)

// The MIME structure of an email, read once. Two readers build it: the fast one (readFast),
// which reads well-formed mail in memory with the standard library's rules (RFC 2045, 2046,
// 2183, 2231), and enmime (readEnmime), which reads what the fast one is not sure of — a
// malformed header line, an unknown transfer encoding or charset, a multipart without its
// closing delimiter, a delimiter where none belongs — as the gateway read every email before.
// What the structure means (which parts are the text, which are files and what they are
// called: layout) is decided by one function for both, and the files' bytes come from one
// decoder, so that what Parse lists and what Parts extracts never disagree.

// entity is one node of the structure: the message itself or one of its parts.
type entity struct {
	media   string            // media type, lower case; "text/plain" when the part has none
	params  map[string]string // Content-Type parameters, names lower case
	disp    string            // Content-Disposition type, lower case; "" when none
	dparams map[string]string
	cte     string // Content-Transfer-Encoding, lower case; "" when none
	// rawName is the file name as sent: the filename or name parameter, RFC 2231 decoded,
	// RFC 2047 and 8-bit bytes not yet (see fileName).
	rawName string
	// noBoundary: a multipart without a boundary parameter, read as one body.
	noBoundary bool

	body []byte // fast reader: the body as sent (transfer-encoded), a slice of the email
	// content is the decoded body (enmime: text parts converted to UTF-8); decoded says
	// that it is set.
	content []byte
	decoded bool

	children []*entity
	parent   *entity
}

// multipart reports whether the entity holds parts.
func (p *entity) multipart() bool { return len(p.children) > 0 }

// charset is the declared charset of the entity's text.
func (p *entity) charset() string { return strings.ToLower(strings.TrimSpace(p.params["charset"])) }

// decode hands the entity's content, transfer encoding undone, to sink (at most limit bytes;
// limit < 0: all), and returns what was repaired.
func (p *entity) decode(limit int, sink func([]byte)) (repaired string) {
	if p.decoded {
		c := p.content
		if limit >= 0 && len(c) > limit {
			c = c[:limit]
		}
		if len(c) > 0 {
			sink(c)
		}
		return ""
	}
	return decodeTransfer(p.cte, p.body, limit, sink)
}

// bytes returns the entity's content, transfer encoding undone (at most limit bytes; limit
// < 0: all). The result may share memory with the email.
func (p *entity) bytes(limit int) ([]byte, string) {
	switch {
	case p.decoded:
		if limit >= 0 && len(p.content) > limit {
			return p.content[:limit], ""
		}
		return p.content, ""
	case p.cte == "" || p.cte == "7bit" || p.cte == "8bit" || p.cte == "binary":
		if limit >= 0 && len(p.body) > limit {
			return p.body[:limit], ""
		}
		return p.body, ""
	}
	n := len(p.body)
	if limit >= 0 {
		n = min(n, limit)
	}
	out := make([]byte, 0, n)
	why := p.decode(limit, func(b []byte) { out = append(out, b...) })
	return out, why
}

// --- the fast reader ---

// fastReader reads an email's structure in memory. Its work is linear in the size times the
// nesting (each level searches its own part for its boundary), and it stops at the bounds of
// Limits (nesting, parts, header fields, boundary length) as the structure walk before enmime
// does, with the same error.
type fastReader struct {
	lim           Limits
	parts, fields int
	err           error // a bound of lim exceeded (wraps ErrTooComplex)
}

// readFast reads the structure of body (the email without junk before its header). why is
// non-empty when the fast reader is not sure of the email: it is then read by enmime. err is
// set when the email exceeds a bound of lim.
func readFast(body []byte, lim Limits) (root *entity, why string, err error) {
	r := &fastReader{lim: lim}
	root, why = r.entity(body, 0, false)
	if r.err != nil {
		return nil, why, r.err
	}
	return root, why, nil
}

// refuse records that a bound was exceeded and returns why for readFast's callers.
func (r *fastReader) refuse(err error) string {
	r.err = err
	return "beyond the bounds"
}

// entity reads one header and body. depth is the number of multiparts around it.
func (r *fastReader) entity(data []byte, depth int, digest bool) (*entity, string) {
	hdr, body, why := r.header(data)
	if why != "" {
		return nil, why
	}
	p := &entity{body: body, media: "text/plain"}
	if digest {
		p.media = "message/rfc822" // RFC 2046 section 5.1.5
	}
	var params map[string]string
	if v, ok := hdr["content-type"]; ok && strings.TrimSpace(v) != "" {
		if bareEncodedWord(v) {
			return nil, "an encoded word in Content-Type"
		}
		t, ps, ok := parseParams(v)
		if !ok || !isMediaType(t) {
			return nil, "an unreadable Content-Type"
		}
		p.media, params = t, ps
	}
	if params == nil {
		params = map[string]string{}
	}
	p.params = params
	if v, ok := hdr["content-disposition"]; ok && strings.TrimSpace(v) != "" {
		t, ps, ok := parseParams(v)
		if !ok || !isToken(t) {
			return nil, "an unreadable Content-Disposition"
		}
		p.disp, p.dparams = t, ps
	}
	p.cte = strings.ToLower(strings.TrimSpace(hdr["content-transfer-encoding"]))
	p.rawName = firstNonEmpty(p.dparams["filename"], params["name"], params["file"])

	boundary, hasBoundary := params["boundary"]
	if !strings.HasPrefix(p.media, "multipart/") {
		if hasBoundary && p.media != "text/plain" && p.media != "text/html" {
			return nil, "a boundary on a part that is not multipart" // enmime reads it as one
		}
		if !knownTransfer(p.cte) {
			return nil, fmt.Sprintf("Content-Transfer-Encoding %q", p.cte)
		}
		if p.media == "text/plain" || p.media == "text/html" {
			if _, kind := lookupCharset(p.charset()); kind == charsetUnknown {
				return nil, fmt.Sprintf("charset %q", p.charset())
			}
		}
		return p, ""
	}
	switch {
	case boundary == "" && depth == 0:
		p.noBoundary = true // read as one text body
		return p, ""
	case boundary == "":
		return nil, "a multipart part without a boundary"
	case len(boundary) > maxBoundary:
		return nil, r.refuse(tooComplex("a multipart boundary longer than %d characters", maxBoundary))
	case r.lim.Nesting >= 0 && depth+1 > r.lim.Nesting:
		return nil, r.refuse(tooComplex("multipart parts nested more than %d deep", r.lim.Nesting))
	}
	bodies, why := splitMultipart(body, boundary)
	if why != "" {
		return nil, why
	}
	p.body = nil
	for _, b := range bodies {
		if r.parts++; r.lim.Parts >= 0 && r.parts > r.lim.Parts {
			return nil, r.refuse(tooComplex("more than %d MIME parts", r.lim.Parts))
		}
		c, why := r.entity(b, depth+1, p.media == "multipart/digest")
		if why != "" {
			return nil, why
		}
		c.parent = p
		p.children = append(p.children, c)
	}
	return p, ""
}

// header reads the header block at the start of data: the Content-* fields (first values;
// a second Content-Type is an anomaly) and the body after the empty line. A line that is
// neither a field nor its continuation, a bare carriage return or no empty line at all is
// an anomaly (enmime repairs such headers its own way).
func (r *fastReader) header(data []byte) (map[string]string, []byte, string) {
	h := map[string]string{}
	var name string // the Content-* field being read, lower case; "" for others
	var value []byte
	seen := false // a field was read
	flush := func() string {
		if name != "" {
			if _, dup := h[name]; dup && name != "content-disposition" {
				return "a second " + name
			}
			if _, dup := h[name]; !dup {
				h[name] = string(value)
			}
		}
		name, value = "", value[:0]
		return ""
	}
	rest := data
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, nil, "a header without an empty line after it"
		}
		line := rest[:i]
		rest = rest[i+1:]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if bytes.IndexByte(line, '\r') >= 0 {
			return nil, nil, "a carriage return inside a header line"
		}
		if len(line) == 0 {
			if why := flush(); why != "" {
				return nil, nil, why
			}
			return h, rest, ""
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !seen {
				return nil, nil, "a header starting with a continuation line"
			}
			if name != "" {
				value = append(value, ' ')
				value = append(value, bytes.Trim(line, " \t")...)
			}
			continue
		}
		if why := flush(); why != "" {
			return nil, nil, why
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isFieldName(bytes.TrimRight(line[:colon], " \t")) {
			return nil, nil, "a header line that is no field"
		}
		seen = true
		if r.fields++; r.lim.HeaderFields >= 0 && r.fields > r.lim.HeaderFields {
			return nil, nil, r.refuse(tooComplex("more than %d header fields", r.lim.HeaderFields))
		}
		n := bytes.TrimRight(line[:colon], " \t")
		if len(n) > 8 && asciiEqualFold(n[:8], "content-") {
			name = strings.ToLower(string(n))
			value = append(value, bytes.Trim(line[colon+1:], " \t")...)
		}
	}
}

// isFieldName reports whether b is an RFC 5322 field name: printable ASCII but ':'.
func isFieldName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// bareEncodedWord reports whether v holds "=?" outside a quoted string: enmime decodes
// encoded words in a Content-Type before reading its parameters (a boundary can hide in one),
// the fast reader does not; such an email is enmime's.
func bareEncodedWord(v string) bool {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '=' && i+1 < len(v) && v[i+1] == '?':
			return true
		}
	}
	return false
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// splitMultipart returns the parts of a multipart body (RFC 2046 section 5.1.1): what lies
// between a delimiter line ("--boundary", then only white space) and the line break before
// the next one, up to the closing delimiter ("--boundary--"). The preamble and the epilogue
// are not parts. why is non-empty for what the fast reader leaves to enmime: no delimiter,
// no closing delimiter, and a "--boundary" followed by white space or "--" anywhere but as a
// whole delimiter line (enmime would end a part there; RFC 2046 would not).
func splitMultipart(data []byte, boundary string) (parts [][]byte, why string) {
	dash := []byte("--" + boundary)
	start := -1 // start of the current part; -1 before the first delimiter
	for pos := 0; ; {
		j := bytes.Index(data[pos:], dash)
		if j < 0 {
			break
		}
		i := pos + j
		after := data[i+len(dash):]
		eol := bytes.IndexByte(after, '\n')
		line := after
		if eol >= 0 {
			line = after[:eol]
		}
		rest := bytes.TrimRight(line, " \t\r")
		closing := bytes.Equal(rest, []byte("--"))
		delim := len(rest) == 0 || closing
		if !delim {
			if len(line) > 0 && (line[0] == ' ' || line[0] == '\t' || line[0] == '\r' || bytes.HasPrefix(line, []byte("--"))) {
				return nil, "a boundary followed by more than white space"
			}
			pos = i + 1 // "--boundary-inner" and the like: content
			continue
		}
		if i > 0 && data[i-1] != '\n' {
			return nil, "a delimiter in the middle of a line"
		}
		if k := bytes.IndexByte(line, '\r'); k >= 0 && k != len(line)-1 {
			return nil, "a carriage return inside a delimiter line"
		}
		if start >= 0 {
			end := i - 1 // the line break before the delimiter belongs to it
			if end > 0 && data[end-1] == '\r' {
				end--
			}
			if end < start {
				return nil, "an empty part"
			}
			parts = append(parts, data[start:end])
		}
		if closing {
			if start < 0 {
				return nil, "a closing delimiter before any part"
			}
			return parts, ""
		}
		if eol < 0 {
			return nil, "a delimiter at the end of the data"
		}
		start = i + len(dash) + eol + 1
		pos = start
	}
	if start < 0 {
		return nil, "no delimiter"
	}
	return nil, "no closing delimiter"
}

// --- enmime's tree ---

// fromEnmime turns enmime's tree into entities: media types, dispositions and names read from
// each part's header by the fast reader's rules where they can be (so that file names are
// read alike), enmime's own otherwise; contents as enmime decoded them.
func fromEnmime(p *enmime.Part, depth int) *entity {
	e := &entity{media: strings.ToLower(p.ContentType), disp: strings.ToLower(p.Disposition),
		content: p.Content, decoded: true, rawName: p.FileName}
	if e.media == "" {
		e.media = "text/plain"
	}
	e.params, e.dparams = map[string]string{}, map[string]string{}
	if t, ps, ok := parseParams(p.Header.Get("Content-Type")); ok && isMediaType(t) {
		e.params = ps
		if p.Charset != "" && strings.HasPrefix(e.media, "text/") {
			e.params["charset"] = "utf-8" // enmime converted the text
		}
	}
	if t, ps, ok := parseParams(p.Header.Get("Content-Disposition")); ok && isToken(t) {
		e.dparams = ps
	}
	if name := firstNonEmpty(e.dparams["filename"], e.params["name"], e.params["file"]); name != "" {
		e.rawName = name
	}
	e.cte = strings.ToLower(strings.TrimSpace(p.Header.Get("Content-Transfer-Encoding")))
	if strings.HasPrefix(e.media, "multipart/") && p.FirstChild == nil {
		e.noBoundary = true
	}
	if depth < maxPartDepth+4 {
		for c := p.FirstChild; c != nil; c = c.NextSibling {
			ce := fromEnmime(c, depth+1)
			ce.parent = e
			e.children = append(e.children, ce)
		}
	}
	return e
}
