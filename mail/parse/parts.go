package parse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Part is one file of an email as it was sent: what a staff member attached to an answer, or
// the photo a customer sent. Content is the file's bytes: the transfer encoding (base64,
// quoted-printable) undone and nothing else — a text file keeps its own charset, so the bytes
// written out or passed on are the bytes the sender attached.
type Part struct {
	Filename    string // decoded (RFC 2047 words, RFC 2231 parameters), or made from the type
	ContentType string // media type, lower case, e.g. "application/pdf"
	// Params are the Content-Type parameters (charset, name, ...), kept so that the part can be
	// sent on with the same type.
	Params  map[string]string
	Content []byte
	SHA256  string // hex SHA-256 of Content
}

// maxPartDepth bounds how deeply enmime's tree is followed (Limits.Nesting bounds it before).
const maxPartDepth = defaultNesting

// Parts returns the files of a raw email — the ones Parse lists in Email.Attach, in the same
// order, with the same names, read by the same reader — with their bytes: attachments, inline
// images, forwarded emails (message/rfc822, not descended into), reports, text parts that are
// not the message's text. Content is the transfer encoding undone and nothing else: a text
// file keeps its own charset. (An email only the fallback reader reads gives its text files as
// that reader decoded them: in UTF-8, with Params["charset"] saying so.) An email that cannot
// be read within the default Limits gives no files and the error.
func Parts(raw []byte) ([]Part, error) {
	s, _, err := readStructure(context.Background(), raw, Limits{}.withDefaults())
	if err != nil {
		return nil, err
	}
	l := classify(s.entity)
	out := make([]Part, 0, len(l.files))
	for i, f := range l.files {
		content := make([]byte, 0, len(f.body)+len(f.content))
		f.decode(-1, func(b []byte) { content = append(content, b...) })
		if content == nil {
			content = []byte{}
		}
		sum := sha256.Sum256(content)
		params := make(map[string]string, len(f.params))
		for k, v := range f.params {
			params[k] = v
		}
		out = append(out, Part{Filename: l.names[i], ContentType: f.media, Params: params, Content: content,
			SHA256: hex.EncodeToString(sum[:])})
	}
	return out, nil
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
