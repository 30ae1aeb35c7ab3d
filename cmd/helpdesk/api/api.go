// Package api is the gateway's HTTP interface for the vendor's website and for monitoring:
// GET /healthz, GET /metrics (Prometheus text format) and, behind a bearer token,
// the routes under /api/ — a customer's R3 status and tickets, a ticket's thread and files, staff
// answers given on the site (R14), account recovery (R16–R18) and the caller lookup (R19).
//
// It owns HTTP only: routing, the bearer token, size-limited JSON bodies, status codes and
// error bodies, and the metrics' text format. It must never hold business rules of its own —
// what an answer does, who gets which notification, when a recovery link is sent, whether a
// token is good are decided by the desk, rules/policy and store, and the JSON shapes are
// desk/view's — and it never speaks IMAP or SMTP: what it queues, notify sends.
//
// Three properties are the package's own. No route reveals another customer's data than the
// one its path names. The routes that show a customer's tickets show only what that customer
// may see (view.CustomerTicketDetail: no internal notes or their files, no notices to staff,
// no staff addresses); only the answer route, whose caller is staff, answers with the staff
// view. And the recovery requests answer byte for byte the same (status,
// headers, body) whatever happened (R18): whether an address or a customer number is known
// is learnt only by whoever reads that mailbox.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/cmd/helpdesk/download"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/desk/search"
	"github.com/infobits/helpdesk/desk/view"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
)

// Config is what the handler needs besides the store and the desk.
type Config struct {
	// Token is the bearer token of the /api/ routes; empty turns them off (404 "api
	// disabled"). /healthz and /metrics need no token.
	Token string
	// Now is the clock (R3 status on the day, token expiry, answer times). Default time.Now.
	Now func() time.Time
	// Logger gets the detail of internal errors, which clients see only as "internal error".
	Logger *slog.Logger
	// Health reports each component ("imap", "ingest", "smtp", "store") as "ok" or a text
	// saying what is wrong. nil: no components, always healthy.
	Health func(ctx context.Context) map[string]string
	// Search is the ticket index of GET /api/tickets; nil: that route answers 503.
	Search *search.Index
}

// MaxBody is the largest request body accepted, in bytes; larger ones get 413.
const MaxBody = 64 << 10

// The fixed answers of the recovery requests (R18): the same whatever happened.
const (
	passwordAccepted = "if the address belongs to a customer, a link has been sent"
	loginAccepted    = "if the customer number is known, a confirmation link has been sent to the new address"
	invalidLink      = "invalid or expired link"
)

type server struct {
	cfg     Config
	db      *store.DB
	desk    *desk.Desk
	metrics *Metrics
	mux     *http.ServeMux
	token   [32]byte // SHA-256 of the token: compared in constant time, whatever the length
	log     *slog.Logger
}

// New returns the handler of every route. m may be nil (counters stay zero).
func New(cfg Config, db *store.DB, dk *desk.Desk, m *Metrics) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = &Metrics{}
	}
	s := &server{cfg: cfg, db: db, desk: dk, metrics: m, mux: http.NewServeMux(),
		token: sha256.Sum256([]byte(cfg.Token)), log: cfg.Logger}
	s.mux.HandleFunc("GET /healthz", s.health)
	s.mux.HandleFunc("GET /metrics", s.serveMetrics)
	s.mux.HandleFunc("GET /api/customers/{addr}/status", s.customerStatus)
	s.mux.HandleFunc("GET /api/customers/{addr}/tickets", s.customerTickets)
	s.mux.HandleFunc("GET /api/tickets", s.tickets)
	s.mux.HandleFunc("GET /api/tickets/{id}", s.ticket)
	s.mux.HandleFunc("GET /api/tickets/{id}/attachments/{n}", s.attachment)
	s.mux.HandleFunc("POST /api/tickets/{id}/answers", s.answer)
	s.mux.HandleFunc("POST /api/recovery/password", s.recoveryPassword)
	s.mux.HandleFunc("POST /api/recovery/login", s.recoveryLogin)
	s.mux.HandleFunc("POST /api/recovery/redeem", s.redeem)
	s.mux.HandleFunc("GET /api/caller/{number}", s.caller)
	return s
}

// ServeHTTP checks the token of /api/ requests before anything else (an unauthenticated
// client learns no route), then routes. The mux's own 404 and 405 answers are rewritten as
// JSON errors.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("http handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	if p := r.URL.Path; p == "/api" || strings.HasPrefix(p, "/api/") {
		w.Header().Set("Cache-Control", "no-store")
		if s.cfg.Token == "" {
			writeError(w, http.StatusNotFound, "api disabled")
			return
		}
		if ok, present := s.authorized(r); !ok {
			challenge := `Bearer realm="helpdesk"`
			if present {
				challenge += `, error="invalid_token"` // RFC 6750 §3
			}
			w.Header().Set("WWW-Authenticate", challenge)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.mux.ServeHTTP(&muxErrorWriter{ResponseWriter: w}, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized compares the bearer token in constant time (of the SHA-256 of both, so that not
// even the length leaks). present says whether a bearer token was given at all.
func (s *server) authorized(r *http.Request) (ok, present bool) {
	scheme, got, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return subtle.ConstantTimeCompare(sum[:], s.token[:]) == 1, true
}

// muxErrorWriter turns the mux's plain-text 404 and 405 (with its Allow header) into JSON.
type muxErrorWriter struct {
	http.ResponseWriter
	replaced bool
}

func (w *muxErrorWriter) WriteHeader(code int) {
	if code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.replaced = true
	msg := "no such route"
	if code == http.StatusMethodNotAllowed {
		msg = "method not allowed"
	}
	writeError(w.ResponseWriter, code, msg)
}

func (w *muxErrorWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// --- answers ---

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are written: a bug
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// internal answers 500 with a generic text; the detail goes to the log only.
func (s *server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("http request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}

// decode reads a JSON object of at most MaxBody bytes into v, refusing unknown fields and
// anything after the object. It answers the client itself and returns false on failure.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("the body must be one JSON object and nothing after it")
			if errors.As(terr, new(*http.MaxBytesError)) {
				err = terr
			}
		}
	}
	var tooLarge *http.MaxBytesError
	var wrongType *json.UnmarshalTypeError
	switch {
	case err == nil:
		return true
	case errors.As(err, &wrongType):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: a JSON %s is not what this field takes", wrongType.Field, wrongType.Value))
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBody))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "the body must be a JSON object")
	default:
		writeError(w, http.StatusBadRequest, "bad request body: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	return false
}

// --- monitoring ---

type healthBody struct {
	Status string `json:"status"` // ok or degraded
	// Reason says what is wrong, one "component: text" per part that is not ok, in name
	// order, joined by "; ": what a monitor shows in its alert. Absent when ok.
	Reason     string            `json:"reason,omitempty"`
	Components map[string]string `json:"components"`
}

// health answers 200 when every component is ok, else 503 with the reason.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	h := healthBody{Status: "ok", Components: map[string]string{}}
	if s.cfg.Health != nil {
		maps.Copy(h.Components, s.cfg.Health(ctx))
	}
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(h.Components)) {
		if v := h.Components[k]; v != "ok" {
			bad = append(bad, k+": "+v)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if len(bad) > 0 {
		h.Status, h.Reason = "degraded", strings.Join(bad, "; ")
		writeJSON(w, http.StatusServiceUnavailable, h)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// serveMetrics writes the counters and the gauges read from the store now. The whole outbox
// and ticket list are read: fine at a helpdesk's size, where a scrape reads a few thousand
// records.
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	g := storeGauges{notifications: map[string]int{}}
	err := s.db.View(r.Context(), func(tx *store.Tx) error {
		ts, err := tx.Tickets()
		if err != nil {
			return err
		}
		for _, t := range ts {
			if t.Status != helpdesk.StatusClosed {
				g.ticketsOpen++
			}
		}
		ns, err := tx.Outbox()
		if err != nil {
			return err
		}
		for _, n := range ns {
			g.notifications[n.Status]++
		}
		return nil
	})
	if err != nil {
		s.internal(w, r, fmt.Errorf("metrics: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = s.metrics.write(w, g)
}

// --- customers, tickets, caller ---

// customerByPath finds the customer the path's {addr} names, normalised; it answers 404
// itself.
func (s *server) customerByPath(w http.ResponseWriter, r *http.Request, tx *store.Tx) (*helpdesk.Customer, error) {
	c, err := tx.CustomerByAddress(helpdesk.NormalizeAddress(r.PathValue("addr")))
	if errors.Is(err, helpdesk.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such customer")
	}
	return c, err
}

func (s *server) customerStatus(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	var c *helpdesk.Customer
	err := s.db.View(r.Context(), func(tx *store.Tx) (err error) {
		c, err = s.customerByPath(w, r, tx)
		return err
	})
	switch {
	case errors.Is(err, helpdesk.ErrNotFound):
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, view.StatusOf(c, now, s.desk.Policy.SLA24LapseMonths()))
}

func (s *server) customerTickets(w http.ResponseWriter, r *http.Request) {
	var ts []view.Ticket
	err := s.db.View(r.Context(), func(tx *store.Tx) error {
		c, err := s.customerByPath(w, r, tx)
		if err != nil {
			return err
		}
		ts, err = view.CustomerTickets(tx, c.Login())
		return err
	})
	switch {
	case errors.Is(err, helpdesk.ErrNotFound):
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

// ticketList is the answer of GET /api/tickets.
type ticketList struct {
	Tickets []search.Found `json:"tickets"`
	Total   int            `json:"total"` // matches, of which at most limit are listed
}

// tickets lists tickets for the website or a staff tool: ?q= words (Dutch and English forms
// alike, best first, with the matching line), ?status=, ?customer= an address, ?due_before= a
// moment (RFC 3339, or a date: midnight in Amsterdam) — tickets awaiting their first response
// due before it —, ?limit= (default 50, at most 500). Without q, the work first.
func (s *server) tickets(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Search == nil {
		writeError(w, http.StatusServiceUnavailable, "the search index is not available; helpdesk search reindex rebuilds it")
		return
	}
	v := r.URL.Query()
	q := search.Query{Text: v.Get("q"), Status: v.Get("status"), Limit: 50}
	if q.Status != "" && !search.ValidStatus(q.Status) {
		writeError(w, http.StatusBadRequest, "status is one of "+strings.Join(search.Statuses(), ", "))
		return
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, "limit is a whole number from 1 to 500")
			return
		}
		q.Limit = n
	}
	if d := v.Get("due_before"); d != "" {
		t, err := time.Parse(time.RFC3339, d)
		if err != nil {
			t, err = time.ParseInLocation(time.DateOnly, d, helpdesk.Amsterdam())
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "due_before is RFC 3339 (2026-11-30T13:00:00+01:00) or a date (2026-11-30)")
			return
		}
		q.DueBefore = t
	}
	if a := v.Get("customer"); a != "" {
		err := s.db.View(r.Context(), func(tx *store.Tx) error {
			c, err := tx.CustomerByAddress(a)
			if err == nil {
				q.CustomerID = c.ID
			}
			return err
		})
		switch {
		case errors.Is(err, helpdesk.ErrNotFound):
			writeError(w, http.StatusNotFound, "no customer has this address")
			return
		case err != nil:
			s.internal(w, r, err)
			return
		}
	}
	found, total, err := s.cfg.Search.Find(r.Context(), q)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ticketList{Tickets: append([]search.Found{}, found...), Total: total})
}

// ticketID reads the path's {id}; it answers 400 itself.
func ticketID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, "a ticket id is a positive whole number")
		return 0, false
	}
	return id, true
}

// ticket shows a ticket as its customer may see it: without staff's #note notes and the
// notices to the staff list (view.CustomerTicketDetail).
func (s *server) ticket(w http.ResponseWriter, r *http.Request) {
	id, ok := ticketID(w, r)
	if !ok {
		return
	}
	var d *view.TicketDetail
	err := s.db.View(r.Context(), func(tx *store.Tx) error {
		if _, err := tx.Ticket(id); err != nil {
			return err
		}
		var err error
		d, err = view.CustomerTicketDetail(tx, id)
		return err
	})
	switch {
	case errors.Is(err, helpdesk.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such ticket")
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, d)
	}
}

// attachment answers file n of a ticket — the numbers GET /api/tickets/{id} gives its
// attachments — byte for byte as it was sent, for the website to offer with the answer (R14:
// with answers on the site, the notification names the files and the site shows them).
// Only files of the messages the customer sees; served as a download that a browser neither
// renders nor sniffs, whatever type the sender claimed.
func (s *server) attachment(w http.ResponseWriter, r *http.Request) {
	id, ok := ticketID(w, r)
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n <= 0 {
		writeError(w, http.StatusBadRequest, "an attachment number is a positive whole number")
		return
	}
	var p parse.Part
	err = s.db.View(r.Context(), func(tx *store.Tx) (err error) {
		p, err = view.CustomerTicketFile(tx, id, n)
		return err
	})
	switch {
	case errors.Is(err, helpdesk.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such ticket")
		return
	case errors.Is(err, view.ErrNoAttachment):
		writeError(w, http.StatusNotFound, "no such attachment")
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	download.Serve(w, p)
}

func (s *server) caller(w http.ResponseWriter, r *http.Request) {
	number, err := policy.NormalizePhone(r.PathValue("number"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	now := s.cfg.Now()
	var c view.Caller
	if err := s.db.View(r.Context(), func(tx *store.Tx) (err error) {
		c, err = view.CallerOf(tx, number, now)
		return err
	}); err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// --- staff answers (R14) ---

type answerRequest struct {
	From string `json:"from"` // a staff address
	Text string `json:"text"` // commands on the first lines, then the answer, as in an email
}

// answer stores a staff answer given on the site exactly as an emailed one: ingest applies
// it, commands included, and queues what R14 says. It answers 201 with the ticket as GET
// /api/tickets/{id} shows it.
func (s *server) answer(w http.ResponseWriter, r *http.Request) {
	id, ok := ticketID(w, r)
	if !ok {
		return
	}
	var req answerRequest
	if !decode(w, r, &req) {
		return
	}
	switch {
	case strings.TrimSpace(req.From) == "":
		writeError(w, http.StatusBadRequest, "from: the staff address is missing")
		return
	case strings.TrimSpace(req.Text) == "":
		writeError(w, http.StatusBadRequest, "text: the answer is empty")
		return
	}
	now := s.cfg.Now()
	var d *view.TicketDetail
	err := s.db.Update(r.Context(), func(tx *store.Tx) error {
		if _, err := s.desk.AnswerFromAPI(tx, id, req.From, req.Text, now); err != nil {
			return err
		}
		var err error
		d, err = view.TicketDetailOf(tx, id)
		return err
	})
	switch {
	case err == nil:
		writeJSON(w, http.StatusCreated, d)
	case errors.Is(err, desk.ErrNotStaff):
		writeError(w, http.StatusForbidden, "from is not a staff address")
	case errors.Is(err, helpdesk.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such ticket")
	case errors.Is(err, desk.ErrStaffCommand):
		writeError(w, http.StatusBadRequest, "nothing applied: "+strings.TrimPrefix(err.Error(), desk.ErrStaffCommand.Error()+": "))
	default:
		s.internal(w, r, err)
	}
}

// --- account recovery (R16–R18) ---

type passwordRequest struct {
	Email string `json:"email"`
}

type loginRequest struct {
	Customer uint64 `json:"customer"`
	Email    string `json:"email"` // the new login address
}

type redeemRequest struct {
	Token string `json:"token"`
}

type redeemBody struct {
	Purpose  string `json:"purpose"`  // password, login, login_allow or login_cancel
	Customer uint64 `json:"customer"` // the customer number
	// Login is the login address: for password the customer's; for a login change only once
	// it took effect (the new one) — never the old login to whoever holds the new address.
	Login string `json:"login,omitempty"`
	// Status: done (the password may be set; the login change took effect), pending (the new
	// address confirmed; the change takes effect at takes_effect unless cancelled), waiting
	// (the old login agreed; the new address has not confirmed yet), cancelled, or the outcome
	// of a change settled before (applied, cancelled, expired, failed).
	Status      string `json:"status"`
	TakesEffect string `json:"takes_effect,omitempty"` // RFC 3339, with pending
}

type statusBody struct {
	Status string `json:"status"`
}

// parseAddress reads an address the client gave; it answers 400 itself.
func parseAddress(w http.ResponseWriter, field, s string) (string, bool) {
	a, err := mail.ParseAddress(strings.TrimSpace(s))
	if err != nil || strings.TrimSpace(s) == "" {
		writeError(w, http.StatusBadRequest, field+": not an email address")
		return "", false
	}
	return helpdesk.NormalizeAddress(a.Address), true
}

// recoveryPassword asks for a reset link to the login address of the customer who has the
// address (R16). Only a malformed request is refused; after that the answer is always 202
// with the same body (R18), even when the store failed (logged), since a failure could only
// happen for a known address.
func (s *server) recoveryPassword(w http.ResponseWriter, r *http.Request) {
	var req passwordRequest
	if !decode(w, r, &req) {
		return
	}
	addr, ok := parseAddress(w, "email", req.Email)
	if !ok {
		return
	}
	now := s.cfg.Now()
	var res desk.RecoveryResult
	err := s.db.Update(r.Context(), func(tx *store.Tx) (err error) {
		res, err = s.desk.RequestPasswordReset(tx, addr, now)
		return err
	})
	s.logRecovery(r, helpdesk.KindPasswordReset, res, err)
	writeJSON(w, http.StatusAccepted, statusBody{Status: passwordAccepted})
}

// recoveryLogin asks to make a new address the login of a customer (R17): a confirmation
// link to the new address, a notice to the old login (and the staff list); the change takes
// effect only as desk.Desk.RequestLoginChange says. The answer is the same 202 whatever
// happened (R18).
func (s *server) recoveryLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Customer == 0 {
		writeError(w, http.StatusBadRequest, "customer: the customer number is missing")
		return
	}
	addr, ok := parseAddress(w, "email", req.Email)
	if !ok {
		return
	}
	now := s.cfg.Now()
	var res desk.RecoveryResult
	err := s.db.Update(r.Context(), func(tx *store.Tx) (err error) {
		res, err = s.desk.RequestLoginChange(tx, req.Customer, addr, now)
		return err
	})
	s.logRecovery(r, helpdesk.KindLoginConfirm, res, err)
	writeJSON(w, http.StatusAccepted, statusBody{Status: loginAccepted})
}

// logRecovery tells the operator what a recovery request did, and counts what was not sent
// (/metrics); the client is never told.
func (s *server) logRecovery(r *http.Request, kind string, res desk.RecoveryResult, err error) {
	if err != nil {
		s.log.Error("recovery request failed; the client was answered as always", "kind", kind, "err", err)
		return
	}
	s.metrics.Suppressed(res.Suppressed)
	attrs := []any{"kind", kind, "queued", res.Queued, "remote", r.RemoteAddr}
	if res.Change != 0 {
		attrs = append(attrs, "login_change", res.Change)
	}
	if res.Detail != "" {
		attrs = append(attrs, "detail", res.Detail)
	}
	if len(res.Suppressed) > 0 {
		var not []string
		for _, x := range res.Suppressed {
			not = append(not, x.String())
		}
		attrs = append(attrs, "not_sent", not)
	}
	s.log.Info("recovery request", attrs...)
}

// redeem uses a recovery link once (desk.Desk.Redeem: atomic). A password link says
// whose password the site may set; a login change's links confirm the new address, agree or
// cancel (the old login), and the answer says whether the change took effect. Every kind of
// bad token gets the one answer "invalid or expired link".
func (s *server) redeem(w http.ResponseWriter, r *http.Request) {
	var req redeemRequest
	if !decode(w, r, &req) {
		return
	}
	now := s.cfg.Now()
	var res desk.RedeemResult
	err := s.db.Update(r.Context(), func(tx *store.Tx) (err error) {
		res, err = s.desk.Redeem(tx, strings.TrimSpace(req.Token), now)
		return err
	})
	switch {
	case err == nil:
		s.log.Info("recovery token redeemed", "purpose", res.Purpose, "customer", res.Customer, "status", res.Status, "login_change", res.Change)
		body := redeemBody{Purpose: res.Purpose, Customer: res.Customer, Login: res.Login, Status: res.Status}
		if !res.TakesEffect.IsZero() {
			body.TakesEffect = res.TakesEffect.Format(time.RFC3339)
		}
		writeJSON(w, http.StatusOK, body)
	case errors.Is(err, store.ErrTokenInvalid):
		s.log.Info("recovery token refused", "why", err)
		writeError(w, http.StatusBadRequest, invalidLink)
	case errors.Is(err, store.ErrAddressTaken):
		// Told only to whoever holds the link, i.e. reads the new address's mailbox (R18).
		writeError(w, http.StatusConflict, "the new address belongs to another customer meanwhile; nothing changed")
	default:
		s.internal(w, r, err)
	}
}
