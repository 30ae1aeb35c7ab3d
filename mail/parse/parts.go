package parse

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// Part is one file of an email as it was sent: what a staff member attached to an answer, or
// the photo a customer sent. Content is the file's bytes: the transfer encoding (base64,
// quoted-printable) undone and nothing else — a text file keeps its own charset, so the bytes
// written out or passed on are the bytes the sender attached.
type Part struct {
	Filename    string // decoded (RFC 2047 words, RFC 2231 parameters); may be ""
	ContentType string // media type, lower case, e.g. "application/pdf"
	// Params are the Content-Type parameters (charset, name, ...), kept so that the part can be
	// sent on with the same type.
	Params  map[string]string
	Content []byte
	SHA256  string // hex SHA-256 of Content
}

// Bounds of Parts: real mail has a handful of parts; hostile mail must not make a walk costly.
const (
	maxPartsWalked = 1000
	maxPartDepth   = defaultNesting
)

// Parts returns the files of a raw email: every leaf part that is not the message's text —
// attachments, inline images, forwarded emails (message/rfc822, not descended into), and text
// parts that carry a file name or an attachment disposition. The text/plain and text/html parts
// of the body are not files. It reads raw once, linearly, and stops at maxPartsWalked parts; a
// malformed structure ends the walk with the parts read so far and an error saying where.
func Parts(raw []byte) ([]Part, error) {
	w := &partWalker{}
	err := w.entity(bufio.NewReader(bytes.NewReader(stripMboxLine(raw))), 0)
	return w.out, err
}

// stripMboxLine drops an mbox "From " separator line before the header.
func stripMboxLine(raw []byte) []byte {
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			return raw[i+1:]
		}
	}
	return raw
}

type partWalker struct {
	out    []Part
	walked int
}

var errTooManyParts = errors.New("too many MIME parts")

// entity reads one header and body from r.
func (w *partWalker) entity(r *bufio.Reader, depth int) error {
	if w.walked++; w.walked > maxPartsWalked {
		return errTooManyParts
	}
	h, err := textproto.ReadHeader(r)
	if err != nil {
		return fmt.Errorf("read part header: %w", err)
	}
	return w.body(h, r, depth)
}

func (w *partWalker) body(h textproto.Header, r io.Reader, depth int) error {
	mediaType, params := contentType(h.Get("Content-Type"))
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= maxPartDepth {
			return fmt.Errorf("multipart parts nested more than %d deep", maxPartDepth)
		}
		boundary := params["boundary"]
		if boundary == "" {
			return nil // read as one text body, as Parse does
		}
		mr := textproto.NewMultipartReader(r, boundary)
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", mediaType, err)
			}
			if w.walked++; w.walked > maxPartsWalked {
				return errTooManyParts
			}
			if err := w.body(p.Header, p, depth+1); err != nil {
				return err
			}
		}
	}
	disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	name = cleanLine(decodeWords(name))
	isText := mediaType == "text/plain" || mediaType == "text/html" || mediaType == ""
	if isText && name == "" && !strings.EqualFold(disp, "attachment") {
		return nil // the message's text, not a file
	}
	content, err := decodeTransfer(h.Get("Content-Transfer-Encoding"), r)
	if err != nil {
		return fmt.Errorf("read part %q: %w", name, err)
	}
	if mediaType == "" {
		mediaType = "text/plain"
	}
	sum := sha256.Sum256(content)
	w.out = append(w.out, Part{Filename: name, ContentType: mediaType, Params: params, Content: content,
		SHA256: hex.EncodeToString(sum[:])})
	return nil
}

// contentType reads a Content-Type leniently: an unreadable one is "" (text/plain by RFC 2045
// §5.2), parameters that parse are kept.
func contentType(v string) (string, map[string]string) {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil && mt == "" {
		if t, _, _ := strings.Cut(v, ";"); strings.Contains(t, "/") {
			mt = strings.ToLower(strings.TrimSpace(t))
		}
	}
	if params == nil {
		params = map[string]string{}
	}
	return mt, params
}

// decodeTransfer undoes a Content-Transfer-Encoding. Damaged base64 keeps what decodes (the
// customer's file is worth more than a refusal); an unknown encoding keeps the bytes as sent.
func decodeTransfer(cte string, r io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return raw, err
	}
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		clean := make([]byte, 0, len(raw))
		for _, c := range raw {
			if ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '+' || c == '/' {
				clean = append(clean, c)
			}
		}
		if len(clean)%4 == 1 {
			clean = clean[:len(clean)-1] // a lone trailing character carries no byte
		}
		out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
		n, _ := base64.RawStdEncoding.Decode(out, clean)
		return out[:n], nil
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return raw, nil // not quoted-printable after all: the bytes as sent
		}
		return out, nil
	}
	return raw, nil
}

// FindPart returns the part of parts that is the index-th attachment of a message, described
// by a: the part with the same content hash; else, for mail whose listed content differs from
// the file's bytes (a text file Parse converted to UTF-8), the part at the same place or the
// first with the same name and type. False when none matches.
func FindPart(parts []Part, a Attachment, index int) (Part, bool) {
	for _, p := range parts {
		if p.SHA256 == a.SHA256 {
			return p, true
		}
	}
	if index >= 0 && index < len(parts) && parts[index].Filename == a.Filename {
		return parts[index], true
	}
	for _, p := range parts {
		if p.Filename == a.Filename && p.ContentType == strings.ToLower(a.ContentType) {
			return p, true
		}
	}
	return Part{}, false
}
