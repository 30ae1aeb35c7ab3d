package parse

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/inbucket/html2text"
)

// MaxText is the most text Parse reads of an email: a person reads the start of a 17 MB text
// dump, and the raw email keeps every byte anyway. Email.TextCut says when there was more.
const MaxText = 256 << 10

// maxHTML is the most HTML turned into text when an email has no text part: HTML is several
// times longer than its text.
const maxHTML = 4 * MaxText

// readText fills e.Text (and e.HTML when the text is made from it) from the layout, reading no
// more than MaxText of text.
func (e *Email) readText(l layout) {
	var b strings.Builder
	budget := MaxText
	for i, p := range l.text {
		if i > 0 {
			if budget <= 4 {
				e.TextCut = true
				break
			}
			b.WriteString("\n--\n") // enmime's separator between text parts
			budget -= 4
		}
		s, cut := e.partText(p, budget)
		e.TextCut = e.TextCut || cut
		b.WriteString(s)
		budget -= len(s)
	}
	e.Text = b.String()
	if l.html == nil || hasText(e.Text) {
		// The HTML alternative says what the text says: not read.
		return
	}
	// No text, or an empty text part beside a real HTML part: the HTML's text.
	raw, why := l.html.bytes(maxHTML)
	e.warn(why)
	cut := len(raw) >= maxHTML
	if !l.html.decoded {
		cs := l.html.charset()
		if cs == "" {
			cs = htmlMetaCharset(raw)
		}
		if _, kind := lookupCharset(cs); kind == charsetKnown {
			raw = decodeCharset(cs, raw)
		}
	}
	// A stray 8-bit byte in HTML that says it is UTF-8 is read as windows-1252, as in text,
	// not turned into U+FFFD by the HTML reader.
	html := fromWindows1252(string(raw))
	text, err := html2text.FromString(html)
	if err != nil {
		e.warn("the HTML could not be turned into text: " + err.Error())
		text = html
	}
	e.HTML = clean(html)
	e.Text, cut = cutText(clean(text), MaxText, cut)
	e.TextCut = e.TextCut || cut
}

// partText returns the text of a text part, cleaned, at most budget bytes; cut says that some
// was left out.
func (e *Email) partText(p *entity, budget int) (string, bool) {
	// A byte of text is at least a byte of UTF-8, but for the CR of a CRLF and control
	// characters, which clean drops: an eighth more covers the line ends.
	limit := budget + budget/8 + 16
	raw, why := p.bytes(limit)
	e.warn(why)
	cut := len(raw) >= limit
	if !p.decoded {
		raw = decodeCharset(p.charset(), raw)
	}
	return cutText(clean(string(raw)), budget, cut)
}

// cutText cuts s to at most n bytes, at a character boundary.
func cutText(s string, n int, cut bool) (string, bool) {
	if len(s) <= n {
		return s, cut
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}

var metaCharset = regexp.MustCompile(`(?i)<meta[^>]+charset\s*=\s*["']?\s*([a-z0-9_:.+-]+)`)

// htmlMetaCharset finds the charset an HTML document declares in a meta tag in its first
// 4 KiB (browsers look in the first 1024 bytes).
func htmlMetaCharset(b []byte) string {
	if m := metaCharset.FindSubmatch(b[:min(len(b), 4096)]); m != nil {
		return string(m[1])
	}
	return ""
}

func (e *Email) warn(w string) {
	if w != "" {
		e.Warnings = append(e.Warnings, w)
	}
}

// clean makes body text safe to store and show: valid UTF-8 (bytes that are not are read as
// windows-1252, see fromWindows1252), no NUL or other control characters except newline and
// tab, LF line ends. One pass; text that needs nothing is returned as it is.
func clean(s string) string {
	i := plainRun(s, 0)
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/16)
	b.WriteString(s[:i])
	for i < len(s) {
		if j := plainRun(s, i); j > i {
			b.WriteString(s[i:j])
			i = j
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			i++ // a control character (CR of CRLF included): dropped
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			r, n = windows1252(c), 1
		}
		if !unicode.IsControl(r) {
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}

// plainRun returns the end of the run of s from i that clean keeps as it is: printable ASCII,
// newline and tab.
func plainRun(s string, i int) int {
	for ; i < len(s); i++ {
		if c := s[i]; c >= 0x7f || (c < ' ' && c != '\n' && c != '\t') {
			return i
		}
	}
	return i
}
