package parse

import (
	"bufio"
	"bytes"
	"fmt"
	"net/textproto"
	"strings"
	"unicode"

	"github.com/jhillyerd/enmime/v2"
	"github.com/jhillyerd/enmime/v2/mediatype"
)

// The structure pre-scan. Before enmime reads an email, scanStructure walks its MIME structure
// the way enmime v2.3.0 will walk it — with enmime's own header reader (enmime.ReadHeader), the
// same Content-Type parser (mediaType, which enmime is given as well: a boundary hidden in an
// RFC 2047 encoded word is a boundary to both), and the delimiter rules of enmime's
// boundaryReader — but over the bytes in memory, in time linear in the input (times the nesting
// depth, itself bounded). It refuses what would make enmime's work grow faster than the input:
//
//   - nesting deeper than Limits.Nesting (enmime recurses once per level);
//   - a run of more than Limits.OpenNesting nested multiparts, each cut off by the end of the
//     part around it without its own closing delimiter: at that end enmime's readers re-read
//     their source once per byte they look at, and every such level doubles the work
//     (measured: 14 levels 212,000 reads of the input, 16 levels 0.4 s, 40 levels forever);
//   - more than Limits.Parts parts (enmime's Part.AddChild walks the list of siblings for
//     every part it adds: 16,000 parts took 7 s, 160,000 nearly 8 minutes);
//   - more than Limits.HeaderFields header fields.
//
// Where the walk and enmime could differ, the walk counts more, never fewer: it counts every
// part enmime would start, also the ones it then skips as malformed. FuzzParse checks that
// enmime's tree is never deeper or larger than the walk said.

// scanStats is what the walk found.
type scanStats struct {
	Parts  int // parts enmime starts (the top level not counted)
	Depth  int // levels of multiparts with parts, the top one counted
	Open   int // the longest run of nested multiparts cut off by the end of their parent
	Fields int // header fields of the email and its parts
	Work   int // bytes examined (for the tests of linear growth)
}

type scanner struct {
	lim scanLimits
	scanStats
}

// scanLimits are the structural bounds of Limits (negative: off).
type scanLimits struct{ nesting, open, parts, fields int }

// scanStructure walks body (the email without an mbox "From " line) as enmime will.
func scanStructure(body []byte, lim Limits) (scanStats, error) {
	s := &scanner{lim: scanLimits{lim.Nesting, lim.OpenNesting, lim.Parts, lim.HeaderFields}}
	err := s.root(body)
	return s.scanStats, err
}

func tooComplex(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrTooComplex}, args...)...)
}

// root reads the email's header; a multipart body is walked (enmime.Parser.ReadParts).
func (s *scanner) root(body []byte) error {
	h, n, err := s.header(body)
	if err != nil || h == nil {
		return err // an unreadable header: enmime stops there
	}
	mt, params, _, perr := mediaType(h.Get("Content-Type"))
	if perr != nil || params["boundary"] == "" || !strings.HasPrefix(mt, "multipart/") {
		return nil // read as one part (detectMultipartMessage, MultipartWOBoundaryAsSinglePart)
	}
	return s.multipart(body[n:], params["boundary"], 1, 0)
}

// header reads the header block at the start of data with enmime's reader and returns it
// with its length in bytes; nil when enmime could not read it (the part is skipped).
func (s *scanner) header(data []byte) (textproto.MIMEHeader, int, error) {
	r := bytes.NewReader(data)
	br := bufio.NewReader(r) // enmime reads a part through a bufio.Reader of the default size
	h, err := enmime.ReadHeader(br, ignoreProblems{})
	n := len(data) - r.Len() - br.Buffered()
	s.Work += n
	if err != nil {
		return nil, n, nil
	}
	for _, v := range h {
		s.Fields += len(v)
	}
	if s.lim.fields >= 0 && s.Fields > s.lim.fields {
		return nil, n, tooComplex("more than %d header fields", s.lim.fields)
	}
	return h, n, nil
}

// multipart walks the parts of a multipart whose body is data (enmime's parseParts). depth is
// its level (the top one is 1); open, how many multiparts in a row, this one included, were
// cut off by the end of the part around them.
func (s *scanner) multipart(data []byte, boundary string, depth, open int) error {
	switch {
	case s.lim.nesting >= 0 && depth > s.lim.nesting:
		return tooComplex("multipart parts nested more than %d deep", s.lim.nesting)
	case s.lim.open >= 0 && open > s.lim.open:
		return tooComplex("more than %d nested multipart parts cut off without their closing delimiter", s.lim.open)
	case len(boundary) > maxBoundary:
		return tooComplex("a multipart boundary longer than %d characters", maxBoundary)
	}
	s.Open = max(s.Open, open)
	d := &delimiters{s: s, data: data, prefix: []byte("--" + boundary), final: []byte("--" + boundary + "--")}
	for d.next() {
		if s.Parts++; s.lim.parts >= 0 && s.Parts > s.lim.parts {
			return tooComplex("more than %d MIME parts", s.lim.parts)
		}
		s.Depth = max(s.Depth, depth)
		start := d.pos
		end, soft := d.partEnd(start)
		if soft {
			return tooComplex("a multipart delimiter in the middle of a line")
		}
		d.pos = end // what enmime does not read of the part, it skips before the next one
		part := data[start:end]
		h, n, err := s.header(part)
		if err != nil {
			return err
		}
		if h == nil {
			continue // skipped as malformed (SkipMalformedParts)
		}
		ctype := h.Get("Content-Type")
		if ctype == "" {
			continue // a leaf
		}
		mt, params, _, err := mediaType(ctype)
		if err != nil {
			continue // skipped as malformed
		}
		b := params["boundary"]
		if b == "" || mt == "text/plain" || mt == "text/html" {
			continue // a leaf (enmime's detectTextHeader: text with a boundary is text)
		}
		// Any other type with a boundary is read as a multipart, as enmime does.
		inner := 0
		if end == len(data) {
			inner = open + 1 // no delimiter ended the part: the data's end did
		}
		if err := s.multipart(part[n:], b, depth+1, inner); err != nil {
			return err
		}
	}
	return nil
}

// delimiters finds the parts of one multipart's data as enmime's boundaryReader does.
type delimiters struct {
	s             *scanner
	data          []byte
	prefix, final []byte // "--boundary", "--boundary--"
	pos           int
	parts         int
	finished      bool
}

// next moves to the start of the next part (after its delimiter line) and reports whether
// there is one (boundaryReader.Next): blank lines are skipped, lines before the first
// delimiter are the preamble, the closing delimiter or anything else ends the multipart.
func (d *delimiters) next() bool {
	if d.finished {
		return false
	}
	for {
		line, eof := d.line()
		if len(line) > 0 && (line[0] == '\r' || line[0] == '\n') {
			continue
		}
		if bytes.Contains(line, d.final) {
			d.finished = true
			return false
		}
		if !eof && d.isDelimiter(line) {
			d.parts++
			return true
		}
		if eof {
			return false
		}
		if d.parts == 0 {
			continue
		}
		d.finished = true // enmime: "expected boundary not present"
		return false
	}
}

// line reads the next line, with its LF; eof: the data ended before an LF.
func (d *delimiters) line() ([]byte, bool) {
	rest := d.data[d.pos:]
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		d.pos = len(d.data)
		d.s.Work += len(rest)
		return rest, true
	}
	d.pos += i + 1
	d.s.Work += i + 1
	return rest[:i+1], false
}

// firstRead is how many bytes enmime's first read of a part covers: the bufio.Reader it reads
// the part's header through asks for 4096, and during that read every position, not only
// a line start, is checked for a delimiter (boundaryReader.atPartStart).
const firstRead = 4096

// partEnd returns where the part starting at start ends: where boundaryReader.Read stops
// at a delimiter, or the end of the data. Any position where Read stops has an occurrence
// of the prefix within its next five bytes, so only those positions are examined. soft: Read
// stopped in the middle of a line, which it does only in its first read of a part — a later
// read goes on from there, and what each of enmime's readers then sees depends on how it
// reads; the walk does not follow that (no real email has it) and the email is refused.
func (d *delimiters) partEnd(start int) (end int, soft bool) {
	for i := start; i < len(d.data); {
		j := bytes.Index(d.data[i:], d.prefix)
		if j < 0 {
			d.s.Work += len(d.data) - i
			return len(d.data), false
		}
		j += i
		d.s.Work += j + 1 - i
		for k := max(i, j-4); k <= j; k++ {
			if stop, midLine := d.stopsAt(k, start); stop {
				return k, midLine && k > start
			}
		}
		i = j + 1
	}
	return len(d.data), false
}

// stopsAt reports whether boundaryReader.Read, reading the part that starts at start, stops
// at position i: it looks ahead at a CR, at an LF, and anywhere within the first read of the
// part, and stops where what follows the line break is a delimiter or the closing one.
// midLine: i is no line break (the look-ahead of the first read).
func (d *delimiters) stopsAt(i, start int) (stop, midLine bool) {
	var pad int
	switch c := d.data[i]; {
	case c == '\r':
		pad = 2
	case c == '\n':
		pad = 1
	case i < start+firstRead:
		pad = 0
	default:
		return false, false
	}
	need := len(d.prefix) + 2 + pad // len("\n--boundary") + padding + 1
	if i+need > len(d.data) {
		return false, false // the look-ahead reaches the end: no delimiter
	}
	peek := d.data[i : i+need]
	for _, blank := range []string{"\n\n", "\n\r", "\r\n\r", "\r\n\n"} {
		if bytes.HasPrefix(peek, []byte(blank)) {
			return false, false
		}
	}
	w := peek[pad:]
	return d.isDelimiter(w) || bytes.Contains(w, d.final), pad == 0
}

// isDelimiter is boundaryReader.isDelimiter: the first "--boundary" in buf is followed by
// white space.
func (d *delimiters) isDelimiter(buf []byte) bool {
	i := bytes.Index(buf, d.prefix)
	if i < 0 {
		return false
	}
	buf = buf[i+len(d.prefix):]
	return len(buf) > 0 && unicode.IsSpace(rune(buf[0]))
}

// ignoreProblems is an enmime.ErrorCollector that drops what it is told: the walk needs the
// structure, enmime itself reports the problems.
type ignoreProblems struct{}

func (ignoreProblems) AddError(string, string, ...any)   {}
func (ignoreProblems) AddWarning(string, string, ...any) {}

// mediaType parses a Content-Type or Content-Disposition value. enmime is given it too
// (enmime.SetCustomParseMediaType), so that the walk and enmime read every boundary alike.
func mediaType(v string) (string, map[string]string, []string, error) {
	if len(v) > maxMediaType {
		return "", nil, nil, fmt.Errorf("media type value of %d bytes, above %d", len(v), maxMediaType)
	}
	return mediatype.ParseWithOptions(v, mediatype.ParseOptions{})
}
