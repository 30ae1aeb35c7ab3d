package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/infobits/helpdesk"
)

// A thread message's text is most of its record, and the record is deflated (put): work the
// single write transaction need not do. PackText does it beforehand, on the caller's goroutine
// (the poller's parse workers): the text JSON-escaped and deflated as a piece of a deflate
// stream that ends on a byte boundary without being final (a sync flush, RFC 1951 section
// 3.2.4). In the transaction only the rest of the record is encoded (a few hundred bytes) and
// put around that piece as stored (uncompressed) deflate blocks — compressing them cost more
// than the whole record did, as deflate builds its code tables per block. The record is the
// same format-2 record as ever (decode reads it as one stream).

// PackedText is a thread message's text made ready for its record (PackText).
type PackedText struct {
	text string
	json int    // length of the text as a JSON string
	z    []byte // the JSON string, deflated, sync-flushed
}

// minPackedText is the shortest text worth packing: a record of up to 512 bytes is not
// deflated at all (put).
const minPackedText = 256

// PackText prepares text for AddMessagePacked. It is safe for concurrent use; nil for a text
// too short to be worth it.
func (d *DB) PackText(text string) (*PackedText, error) {
	if len(text) < minPackedText {
		return nil, nil
	}
	js, err := jsonString(text)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(js)/2 + 64)
	if err := d.deflatePiece(&buf, js, false); err != nil {
		return nil, fmt.Errorf("compress message text: %w", err)
	}
	return &PackedText{text: text, json: len(js), z: bytes.Clone(buf.Bytes())}, nil
}

// storedBlocks appends b as stored deflate blocks (RFC 1951 section 3.2.4), starting on a byte
// boundary; the last one final when final.
func storedBlocks(buf *bytes.Buffer, b []byte, final bool) {
	for {
		n := min(len(b), 0xffff)
		last := n == len(b)
		var hdr byte // BTYPE 00, the rest of the byte padding
		if last && final {
			hdr = 1 // BFINAL
		}
		buf.Write([]byte{hdr, byte(n), byte(n >> 8), ^byte(n), ^byte(n >> 8)})
		buf.Write(b[:n])
		if b = b[n:]; last {
			return
		}
	}
}

// jsonString is s as encode writes it inside a record.
func jsonString(s string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// textPlaceholder stands for the packed text while the rest of a record is encoded; JSON
// writes its NUL bytes as \u0000, which no cleaned text field holds twice by chance (and
// putMessage checks that it occurs once).
const textPlaceholder = "\x00helpdesk packed text\x00"

var textPlaceholderJSON, _ = jsonString(textPlaceholder)

// AddMessagePacked is AddMessage with the message's text packed beforehand (PackText); pt may
// be nil, or be for another text (then it is not used).
func (tx *Tx) AddMessagePacked(t *helpdesk.Ticket, m *helpdesk.Message, pt *PackedText) error {
	return tx.addMessage(t, m, pt)
}

// putMessage stores a thread message record, splicing in its packed text when pt is for it.
func (tx *Tx) putMessage(key []byte, m *helpdesk.Message, pt *PackedText) error {
	if pt == nil || pt.text != m.Text {
		return tx.put(bMessages, key, m)
	}
	text := m.Text
	m.Text = textPlaceholder
	rec, err := encode(m)
	m.Text = text
	if err != nil {
		return fmt.Errorf("encode %s record: %w", bMessages, err)
	}
	i := bytes.Index(rec, textPlaceholderJSON)
	if i < 0 || bytes.Count(rec, textPlaceholderJSON) != 1 {
		return tx.put(bMessages, key, m)
	}
	plain := len(rec) - len(textPlaceholderJSON) + pt.json // the size of the record not deflated
	if plain <= 512 {
		return tx.put(bMessages, key, m) // not deflated at all
	}
	var buf bytes.Buffer
	buf.Grow(len(pt.z) + len(rec) + 32)
	buf.WriteByte(recordDeflated)
	storedBlocks(&buf, rec[1:i], false)
	buf.Write(pt.z)
	storedBlocks(&buf, rec[i+len(textPlaceholderJSON):], true)
	if buf.Len() >= plain {
		return tx.put(bMessages, key, m) // incompressible: as put stores it
	}
	bk := tx.tx.Bucket(bMessages)
	bk.FillPercent = 0.9
	return bk.Put(key, buf.Bytes())
}
