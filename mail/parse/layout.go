package parse

import (
	"strconv"
	"strings"
)

// layout is what an email's structure means to a reader: the parts that are its text, the
// one that is its HTML, and its files. Every leaf part is exactly one of these (or an empty
// text part): nothing a customer sent disappears, nothing appears twice.
type layout struct {
	text  []*entity // the text/plain parts of the text, in order
	html  *entity   // the HTML body; nil when none
	files []*entity // every other leaf, in the order of the email
	names []string  // the file name of each file: as sent, else one made from its type
	// charset is the charset the message declares for its text, for raw 8-bit bytes in its
	// header (see decodeRaw8bit).
	charset string
}

// bodyCandidate reports whether a part can be (part of) the message's text: text/plain or
// text/html (a multipart without a boundary is read as text) that is not marked as a file —
// "attachment", or "inline" with a file name (a text file shown inline) — as mail programs
// read the disposition (RFC 2183).
func bodyCandidate(p *entity) bool {
	if p.multipart() {
		return false
	}
	if p.noBoundary {
		return true
	}
	return (p.media == "text/plain" || p.media == "text/html") && !markedAsFile(p)
}

// markedAsFile reports whether a part's disposition makes it a file.
func markedAsFile(p *entity) bool {
	return p.disp == "attachment" || (p.disp == "inline" && p.dparams["filename"] != "")
}

// classify lays out the structure under root the way mail programs show it (and enmime
// chose the text before): a message that is not multipart is its text unless it is marked as
// an attachment or is no text at all; in a multipart/alternative the first text/plain part
// (breadth first) is the text, in any other multipart every text/plain part is (depth first,
// joined). The HTML is the first text/html part that is an alternative of the text (in the same
// multipart/alternative); when there is no text, or only white space, the first text/html
// part. Every other leaf is a file — also a text/html part that is not the HTML (a second one,
// one beside the text in a multipart/mixed) and a text part marked as a file.
func classify(root *entity) layout {
	var l layout
	if !root.multipart() {
		switch {
		case root.noBoundary:
			l.text = []*entity{root}
		case (root.media == "text/plain" || root.media == "text/html") && !markedAsFile(root):
			if root.media == "text/html" {
				l.html = root
			} else {
				l.text = []*entity{root}
			}
		default:
			l.files = []*entity{root}
		}
	} else {
		var leaves []*entity
		var walk func(p *entity)
		walk = func(p *entity) {
			if !p.multipart() {
				leaves = append(leaves, p)
				return
			}
			for _, c := range p.children {
				walk(c)
			}
		}
		walk(root)
		isPlain := func(p *entity) bool { return bodyCandidate(p) && p.media != "text/html" }
		if root.media == "multipart/alternative" {
			for level := []*entity{root}; len(level) > 0 && l.text == nil; {
				var next []*entity
				for _, p := range level {
					if !p.multipart() && isPlain(p) {
						l.text = []*entity{p}
						break
					}
					next = append(next, p.children...)
				}
				level = next
			}
		} else {
			for _, p := range leaves {
				if isPlain(p) {
					l.text = append(l.text, p)
				}
			}
		}
		blank := textBlank(l.text)
		for _, p := range leaves {
			if bodyCandidate(p) && p.media == "text/html" && (blank || alternativeOf(p, l.text)) {
				l.html = p
				break
			}
		}
		inText := make(map[*entity]bool, len(l.text))
		for _, p := range l.text {
			inText[p] = true
		}
		for _, p := range leaves {
			if p != l.html && !inText[p] {
				l.files = append(l.files, p)
			}
		}
	}
	switch {
	case len(l.text) > 0 && l.text[0].charset() != "":
		l.charset = l.text[0].charset()
	case l.html != nil:
		l.charset = l.html.charset()
	}
	// Names made from the type are numbered: bijlage.pdf, bijlage-2.pdf, ...
	seen := map[string]bool{}
	next := map[string]int{}
	l.names = make([]string, len(l.files))
	for i, f := range l.files {
		if l.names[i] = fileName(f, l.charset); l.names[i] != "" {
			seen[l.names[i]] = true
		}
	}
	for i, f := range l.files {
		if name := l.names[i]; name == "" {
			base, ext := nameFromType(f.media)
			name = base + ext
			for n := next[name]; seen[name]; n++ {
				name = base + "-" + strconv.Itoa(n+2) + ext
				next[base+ext] = n + 1
			}
			seen[name] = true
			l.names[i] = name
		}
	}
	return l
}

// alternativeOf reports whether p is an alternative of one of the text parts: in the same
// multipart/alternative.
func alternativeOf(p *entity, text []*entity) bool {
	alts := map[*entity]bool{}
	for q := p.parent; q != nil; q = q.parent {
		if q.media == "multipart/alternative" {
			alts[q] = true
		}
	}
	for _, t := range text {
		for q := t.parent; q != nil; q = q.parent {
			if alts[q] {
				return true
			}
		}
	}
	return false
}

// textBlank reports whether the text parts hold nothing but white space (or there are none):
// their first 64 KiB are read.
func textBlank(parts []*entity) bool {
	for _, p := range parts {
		raw, _ := p.bytes(64 << 10)
		if !p.decoded {
			raw = decodeCharset(p.charset(), raw)
		}
		if hasText(clean(string(raw))) {
			return false
		}
	}
	return true
}

// fileName is the decoded name a part was sent with: RFC 2047 words (common in parameters,
// though RFC 2047 forbids them there), 8-bit bytes in the part's charset or the message's
// (raw names from old mailers), on one line; for uuencoded data without one, the name of its
// begin line. "" when it has none.
func fileName(p *entity, msgCharset string) string {
	raw := p.rawName
	if raw == "" && !p.decoded && (p.cte == "x-uuencode" || p.cte == "uuencode" || p.cte == "x-uue") {
		raw = uuName(p.body)
	}
	if raw == "" {
		return ""
	}
	hint := p.charset()
	if hint == "" {
		hint = msgCharset
	}
	return cleanLine(decodeWords(decodeRaw8bit(raw, hint)))
}

// nameFromType makes a file name for a part sent without one, from its type: "bijlage.pdf",
// "bericht.eml" for a forwarded email, "rapport.txt" for a delivery report. Dutch, the
// helpdesk's language; the name only has to tell staff and customers what the file is.
func nameFromType(media string) (base, ext string) {
	switch media {
	case "message/rfc822", "message/global":
		return "bericht", ".eml"
	case "message/delivery-status", "message/global-delivery-status", "message/disposition-notification",
		"message/global-disposition-notification", "message/feedback-report":
		return "rapport", ".txt"
	case "text/rfc822-headers", "message/rfc822-headers", "message/global-headers":
		return "berichtkop", ".txt"
	case "text/calendar":
		return "uitnodiging", ".ics"
	case "text/vcard", "text/x-vcard", "text/directory":
		return "contact", ".vcf"
	case "application/ms-tnef", "application/vnd.ms-tnef":
		return "winmail", ".dat"
	case "application/pkcs7-signature", "application/x-pkcs7-signature":
		return "smime", ".p7s"
	case "application/pgp-signature":
		return "handtekening", ".asc"
	}
	if ext, ok := typeExtensions[media]; ok {
		return "bijlage", ext
	}
	return "bijlage", ""
}

// typeExtensions are the extensions of common attachment types (a fixed table: the system's
// mime.types differs between machines).
var typeExtensions = map[string]string{
	"application/pdf": ".pdf", "application/octet-stream": ".bin", "application/zip": ".zip",
	"application/x-zip-compressed": ".zip", "application/gzip": ".gz", "application/x-7z-compressed": ".7z",
	"application/x-rar-compressed": ".rar", "application/vnd.rar": ".rar",
	"application/msword": ".doc", "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
	"application/vnd.ms-excel": ".xls", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
	"application/vnd.ms-powerpoint": ".ppt", "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
	"application/vnd.oasis.opendocument.text": ".odt", "application/vnd.oasis.opendocument.spreadsheet": ".ods",
	"application/rtf": ".rtf", "application/xml": ".xml", "application/json": ".json",
	"text/plain": ".txt", "text/html": ".html", "text/csv": ".csv", "text/xml": ".xml", "text/enriched": ".txt",
	"text/richtext": ".txt", "text/rtf": ".rtf", "text/markdown": ".md",
	"image/jpeg": ".jpg", "image/jpg": ".jpg", "image/pjpeg": ".jpg", "image/png": ".png", "image/gif": ".gif",
	"image/webp": ".webp", "image/heic": ".heic", "image/tiff": ".tif", "image/bmp": ".bmp", "image/svg+xml": ".svg",
	"audio/mpeg": ".mp3", "audio/wav": ".wav", "audio/x-wav": ".wav", "video/mp4": ".mp4", "video/quicktime": ".mov",
}

// hasText reports whether s holds anything but white space.
func hasText(s string) bool { return strings.TrimSpace(s) != "" }
