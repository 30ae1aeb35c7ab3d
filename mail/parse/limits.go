package parse

import (
	"errors"
	"time"
)

// Limits bound the work of reading one email. Every email is hostile: its size is capped
// before it is fetched, and these make the work of reading it grow no faster than its size.
// A zero field takes the default; a negative one switches that bound off (only the tests of
// the safety nets do that).
type Limits struct {
	// Nesting is how deeply multipart parts may nest (default 16). Real mail nests a handful
	// of levels.
	Nesting int
	// OpenNesting is how many nested multipart parts in a row may end without their closing
	// delimiter, cut off by the end of the part around them (default 8). enmime re-reads the
	// end of the input once more for every such level: its work doubles with each.
	OpenNesting int
	// Parts is how many MIME parts an email may have (default 1000). enmime walks the list of
	// a multipart's parts for every part it adds: its work grows with the square of the
	// number.
	Parts int
	// HeaderFields is how many header fields the email's header and its parts' headers may
	// hold together (default 5000). Real mail has tens.
	HeaderFields int
	// Reads is the work budget: how many reads of the input the MIME parser may make beyond
	// the ones its size needs (default 16384). Within the bounds above it needs a few hundred.
	Reads int
	// Deadline is how long reading may take, when it is not done by then, for whatever
	// reason the bounds above did not foresee (default: 10 s and 2 s per MiB — a normal email
	// takes milliseconds). The email is then set aside (Email.Err wraps ErrWorkBudget).
	Deadline time.Duration
}

// The defaults of Limits.
const (
	defaultNesting      = 16
	defaultOpenNesting  = 8
	defaultParts        = 1000
	defaultHeaderFields = 5000
	defaultReads        = 16384
)

// maxBoundary is the longest multipart boundary read (RFC 2046 §5.1.1 allows 70 characters).
// enmime cannot look ahead as far as a boundary of some 4000 characters, and then reads the
// parts differently; no real email comes near.
const maxBoundary = 200

// maxMediaType is the longest Content-Type or Content-Disposition value read; a longer one is
// malformed (for the email, unreadable; for a part, skipped). A file name of 255 characters,
// encoded, takes about 1 KiB.
const maxMediaType = 16 << 10

// ErrTooComplex: the email's structure exceeds a bound of Limits; it is not read as MIME.
var ErrTooComplex = errors.New("the email's MIME structure is beyond what the gateway reads")

// ErrWorkBudget: reading the email took more work or time than its size allows; it was
// stopped.
var ErrWorkBudget = errors.New("reading the email took more work than its size allows")

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.Nesting, defaultNesting)
	def(&l.OpenNesting, defaultOpenNesting)
	def(&l.Parts, defaultParts)
	def(&l.HeaderFields, defaultHeaderFields)
	def(&l.Reads, defaultReads)
	return l
}

// deadline is how long reading size bytes may take; 0 when there is no deadline.
func (l Limits) deadline(size int) time.Duration {
	switch {
	case l.Deadline > 0:
		return l.Deadline
	case l.Deadline < 0:
		return 0
	}
	return ParseDeadline(size)
}

// ParseDeadline is the default time reading an email of size bytes may take (Limits.Deadline):
// 10 s and 2 s per MiB, a hundred times what it takes on a busy machine.
func ParseDeadline(size int) time.Duration {
	return 10*time.Second + time.Duration(size)*2*time.Second/(1<<20)
}
