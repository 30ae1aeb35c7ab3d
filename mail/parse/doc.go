// Package parse turns the raw bytes of an inbound email into an Email value: decoded
// sender, subject (RFC 2047), text and HTML bodies, attachments with their SHA-256, threading
// headers and the headers that loop protection and sender checks read.
//
// What decides whose an email is, is read strictly: the From field as RFC 5322
// (ParseAddressList; no address is guessed from a display name, comment or encoded word),
// addresses lower-cased in ASCII only, and a field RFC 5322 allows once that occurs more than
// once is reported (Email.Duplicates) rather than silently read from its topmost copy.
//
// Every email is hostile input. Parse never panics and never fails outright: what cannot be
// read is reported in Email.Err (fatal: no usable structure) or Email.Warnings (repaired), and
// the raw bytes are always kept so that nothing the customer sent is lost. It does no I/O, and
// imports nothing of the gateway but the root package: never the store, go-imap or go-smtp.
//
// Its work is bounded by the input (Limits): the MIME structure is walked first, linearly,
// the way the MIME parser (enmime) will walk it, and an email whose nesting, parts or header
// fields exceed the bounds is not given to the parser (Err wraps ErrTooComplex); the parser
// then runs under a work budget and a deadline that grows with the size (Err wraps
// ErrWorkBudget), the nets behind the bounds.
package parse
