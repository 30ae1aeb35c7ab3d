// Package desk is what an email, a web request, an operator's command or an API call does to
// tickets: it takes a decision of rules/policy and writes it — the ticket, the thread message,
// the held email, the dedupe entries and the outbox rows — inside the caller's store
// transaction, so that either all of it happens or none. Releasing and dismissing held emails,
// the staff notice of held mail, answers given on the website (R14), operator commands, and
// password and login recovery (R16, R17) all go through it, so the paths cannot drift.
//
// It never speaks IMAP or SMTP and never opens a transaction itself: ingest (mail in), the
// HTTP API and the commands call it inside theirs, and notify sends what it queued.
package desk
