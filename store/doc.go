// Package store owns the gateway's single bbolt database: customers, tickets and their threads,
// the raw messages customers sent, held emails, the notification outbox and the IMAP sync state.
// It is the only package that imports bbolt, and imports nothing of the gateway but the root
// package (the records). It knows nothing of IMAP, SMTP or the SLA rules, and never imports
// rules/*, mail/* or the desk: the desk decides and writes through a Tx; notify reads and
// updates the outbox. It also writes, checks and restores backups of the file (backup.go).
//
// Layout (all keys big-endian so byte order is numeric order):
//
//	meta                 "schema" -> format version of the whole file (migrations run at Open)
//	customers            id(8)                      -> Customer
//	customer_addr        lower-case address          -> id(8)          (unique: R1, one owner per address)
//	customer_phone       number "+31..."             -> id(8)          (unique: R19 caller lookup)
//	tickets              id(8, NextSequence)         -> Ticket
//	tickets_by_customer  customer(8) ticket(8)       -> empty
//	due                  due(8) ticket(8)            -> 1              (the SLA-due queue: awaiting a first response)
//	messages             ticket(8) seq(4)            -> Message       (a ticket's thread)
//	raw                  sha256(32)                  -> codec(1) raw   (every byte a customer sent)
//	ingested             sha256(32)                  -> Ref            (dedupe across UIDVALIDITY resets)
//	ingested_ids         sha256(canonical Message-ID, From, Subject) -> Ref (dedupe when a server rewrote the bytes)
//	message_ids          canonical Message-ID        -> ticket(8)      (threading, our notifications too)
//	held                 id(8, NextSequence)         -> Held
//	held_pending         id(8)                       -> empty          (held emails the staff list has not been told of yet)
//	outbox               id(8, NextSequence)         -> Notification
//	outbox_queue         next-attempt(8) id(8)       -> empty          (pending notifications by time)
//	ticket_notifications ticket(8) notification(8)   -> empty
//	mailboxes            mailbox name                -> MailboxState   (UIDVALIDITY, UID checkpoint)
//	limit_notices        customer(8) "YYYY-MM-DD"    -> 1              (R11: one limit notice a day)
//	auto_replies         address 0x00 time(8)        -> kind           (RFC 3834 rate limits per address)
//	tokens               sha256(token)               -> Token          (R16, R17: the token itself is never stored)
//	tokens_by_customer   customer(8) purpose 0x00 sha256 -> empty      (a new token voids the older ones of its purpose and login change)
//	login_changes        id(8, NextSequence)         -> LoginChange    (R17: requests to change a customer's login)
//	login_pending        customer(8)                 -> id(8)          (the one login change of a customer not settled yet)
//	notification_msgids  canonical Message-ID of a notification -> id(8) (a bounce finds what it is about)
//	bounced              address                     -> until(8)       (no automatic mail after a hard bounce)
//	uids                 mailbox 0x00 uidvalidity(4) uid(4) -> 1       (every UID taken in: the gap alarm)
//	parse_attempts       mailbox name                -> ParseAttempts  (emails being read: ingest's crash net)
//	escalations          ticket(8) due(8) stage(1)   -> time(8)        (warning 1 / breach 2 queued: once per ticket and deadline)
//	search_pending       ticket(8)                   -> sequence(8)    (tickets whose search document is out of date)
//	passwords            customer(8)                 -> Password       (the site's login: an argon2id hash, never the password)
//	sessions             sha256(session id)          -> Session        (the site's sessions: the id itself is only in the cookie)
//	sessions_by_customer customer(8) sha256          -> 1              (a password change ends every session of the customer)
//
// Message-IDs: records (Message, Held, Notification) keep every id as the sender wrote it, only
// the angle brackets stripped, because they go back out in In-Reply-To and References and mail
// clients thread by the exact bytes. The indexes above key on CanonicalMessageID (lower-cased),
// so a reply that quotes an id in another case still finds its ticket; databases written before
// ids kept their case hold lower-cased ids in their records, and their index keys are the same.
//
// parse_attempts is how a gateway that died while reading an email does not die on it again at
// every start. ingest writes a batch's UID range, in a transaction of its own (so
// fsynced), before it parses the batch's emails; the transaction that commits the batch and
// moves the checkpoint removes what lies at or below the checkpoint. A start that finds a range
// above the checkpoint reads those emails again one at a time, each written as Alone before its
// parse and cleared after it; an email found as Alone, or listed in Suspects (its reading ran
// longer than ingest's suspect time, written when it did), is held without being read again.
// Cost: one extra synced write per batch; two per email only while recovering. A record of
// another UIDVALIDITY is void.
//
// Records are stored as one format-version byte followed by JSON, so a later version can read
// what an earlier one wrote. Invariant: a record and its index entries change in the same
// transaction, and the UID checkpoint of a batch commits together with the batch's tickets, held
// emails and outbox rows: each email is taken in exactly once.
package store
