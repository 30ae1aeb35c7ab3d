package helpdesk

import "strings"

// NormalizeAddress is the form addresses are compared and indexed in (R1: case-insensitive):
// without surrounding white space, ASCII letters lower-cased and nothing else changed. Unicode
// case folding (strings.ToLower, used by earlier versions) made a look-alike address a customer's:
// U+212A KELVIN SIGN lower-cases to "k". Records written before were lower-cased that way; an
// address stored so stays as it was stored, and is found by mail from that same lower-case
// form (a stored key has no ASCII capitals, so ASCII lower-casing leaves it whole): no
// migration is needed, and none could restore the case that was folded away. Only ASCII white
// space is trimmed: strings.TrimSpace also cut U+00A0 and the other Unicode spaces, so that
// mail from "info@bakkerijdevries.nl" followed by a no-break space (a domain net/mail reads
// whole, RFC 6532) was found as that customer's.
func NormalizeAddress(addr string) string { return ASCIILower(strings.Trim(addr, " \t\r\n")) }

// ASCIILower lower-cases the ASCII letters of s and nothing else: addresses, domain names
// (A-labels) and protocol keywords are compared in ASCII case only. Unicode case folding makes
// "K" (U+212A KELVIN SIGN) "k", so a look-alike domain would become a customer's. It does not
// allocate when s has no capital.
func ASCIILower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// CanonicalMessageID is the form Message-IDs are compared in, the key of the message_ids,
// notification_msgids and ingested_ids indexes: without angle brackets and surrounding space,
// lower-cased (seen in practice: clients change the case of ids they quote). It is never
// written into a header or a record: those keep the id as the sender wrote it, because mail
// clients thread by the exact bytes.
func CanonicalMessageID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimPrefix(id, "<")
	id = strings.TrimSuffix(id, ">")
	return strings.ToLower(strings.TrimSpace(id))
}
