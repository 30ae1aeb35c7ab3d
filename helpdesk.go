// Package helpdesk is the gateway's vocabulary: the records every layer speaks of (Customer,
// Ticket, Message, Held, Notification and its NotifyData, Token, LoginChange, the mailbox
// checkpoint), the service level Tier (R2), the one calendar Date, the status, kind, reason and
// purpose constants, the comparison forms of addresses and Message-IDs, the helpdesk's time
// zone, the names of backup files, the transport security modes with the loopback check
// that guards plaintext, and what every long-running loop shares: a wait that ends with its
// context (Sleep) and a round that survives its own panic (Survive).
//
// It does no I/O and imports nothing of this module: the rules (rules/...), the mail readers
// (mail/...), the store, the desk, ingest and notify all import it, so what they share is
// defined once. It must never import bbolt, go-imap or go-smtp, nor hold state.
package helpdesk

import "errors"

// ErrNotFound: no record with that key. The store returns it, and the rules branch on it
// through their read-only view of the store.
var ErrNotFound = errors.New("not found")
