// Package parse turns the raw bytes of an inbound email into an Email value: decoded
// sender and display name, subject (RFC 2047), the text, the files with their names, sizes
// and SHA-256, threading headers and the headers that loop protection and sender checks read.
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
// Two readers: well-formed mail (nearly all of it) is read by a fast reader in memory
// (tree.go: RFC 2045/2046/2183/2231 with the standard library's rules, transfer encodings and
// charsets in decode.go); an email it is not sure of — a malformed header line, an unknown
// transfer encoding or charset, a multipart without its closing delimiter, a boundary where
// none belongs — is read as before by enmime. Either way one set of rules (layout.go) says
// which parts are the text and which are files, and one decoder gives the files' bytes: what
// Parse lists in Email.Attach is what Parts extracts. Parse reads what the gateway keeps: the
// headers, report parts, at most MaxText of text and the files' names, sizes and hashes.
//
// The work is bounded by the input (Limits). The fast reader is linear and stops at the
// bounds; before enmime reads an email, its MIME structure is walked linearly, the way enmime
// will walk it, and an email whose nesting, parts or header fields exceed the bounds is not
// given to the parser (Err wraps ErrTooComplex); enmime then runs under a work budget and a
// deadline that grows with the size (Err wraps ErrWorkBudget), the nets behind the bounds.
package parse
