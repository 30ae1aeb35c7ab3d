package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/cmd/helpdesk/api"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/desk/view"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/rules/calendar"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/store/storetest"
)

// The HTTP API against a real store in a temp dir, the real desk and the real
// handler behind httptest: every route's status codes and JSON.

const token = "dGVzdC10b2tlbi1mb3ItdGhlLWhlbHBkZXNrLWFwaQ"

// clock is the injected time: token expiry and R3 dates move with it, not with the wall.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	t       *testing.T
	db      *store.DB
	desk    *desk.Desk
	clock   *clock
	metrics *api.Metrics
	srv     *httptest.Server

	mu     sync.Mutex
	health map[string]string
}

var ams = helpdesk.Amsterdam()

// start is Friday 27 November 2026, 10:00 in Amsterdam.
var start = time.Date(2026, 11, 27, 10, 0, 0, 0, ams)

// newFixture opens a store with three customers and two tickets that came in by email:
// #1 from Bakkerij de Vries (answers by email), #2 from Slagerij Jansen (answers on the site).
func newFixture(t *testing.T, tweak func(*api.Config)) *fixture {
	t.Helper()
	db := storetest.New(t)
	cals, err := calendar.NewSet(nil, calendar.Rules{DutchHolidays: true})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: start}
	// As cmd/helpdesk's newDesk builds it.
	pol := policy.New(policy.Rules{Staff: []string{"jan@infobits.example", "els@infobits.example"}, TicketTag: "Infobits",
		Own: []string{"support@infobits.example"}, Calendars: cals, RequireStaffAuth: true,
		UrgentWords: []string{"SPOED"}, CallbackWords: []string{"terugbellen"}, RecoveryPerHour: 3, SLA24LapseMonths: 24})
	f := &fixture{t: t, db: db, clock: clk, metrics: &api.Metrics{},
		desk:   &desk.Desk{Policy: pol, MessageIDDomain: "infobits.example", Now: clk.now},
		health: map[string]string{"imap": "ok", "smtp": "ok", "store": "ok"}}
	f.update(func(tx *store.Tx) error {
		for _, c := range []*helpdesk.Customer{
			{Name: "Bakkerij de Vries", Emails: []string{"info@bakkerijdevries.nl", "piet@bakkerijdevries.nl"}, Tier: helpdesk.SLA8,
				ValidUntil: helpdesk.Date{Year: 2027, Month: 12, Day: 31}, Contract: true, Phones: []string{"+31612345678"}},
			{Name: "Slagerij Jansen", Emails: []string{"kassa@slagerijjansen.nl"}, Tier: helpdesk.SLA24, Answer: helpdesk.AnswerSite},
			{Name: "Café Verlopen", Emails: []string{"info@cafeverlopen.nl"}, Tier: helpdesk.SLA8,
				ValidUntil: helpdesk.Date{Year: 2026, Month: 10, Day: 31}},
			{Name: "Lang Geleden", Emails: []string{"kassa@langgeleden.nl"}, Tier: helpdesk.SLA8,
				ValidUntil: helpdesk.Date{Year: 2024, Month: 10, Day: 31}},
		} {
			if err := tx.PutCustomer(c); err != nil {
				return err
			}
		}
		return nil
	})
	f.deliver("Piet de Vries <piet@bakkerijdevries.nl>", "Kassa start niet op", "vraag-1@bakkerijdevries.nl", "De kassa blijft zwart.")
	f.deliver("kassa@slagerijjansen.nl", "Bonprinter drukt niet", "bon-1@slagerijjansen.nl", "Geen bonnen meer.")
	cfg := api.Config{Token: token, Now: clk.now, Health: func(context.Context) map[string]string {
		f.mu.Lock()
		defer f.mu.Unlock()
		return maps.Clone(f.health)
	}}
	if tweak != nil {
		tweak(&cfg)
	}
	f.srv = httptest.NewServer(api.New(cfg, db, f.desk, f.metrics))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) update(fn func(tx *store.Tx) error) {
	f.t.Helper()
	if err := f.db.Update(context.Background(), fn); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) view(fn func(tx *store.Tx) error) {
	f.t.Helper()
	if err := f.db.View(context.Background(), fn); err != nil {
		f.t.Fatal(err)
	}
}

// deliver puts a customer's email through the real ingest path.
func (f *fixture) deliver(from, subject, msgID, body string) {
	f.t.Helper()
	raw := fmt.Sprintf("From: %s\r\nTo: support@infobits.example\r\nSubject: %s\r\nDate: Fri, 27 Nov 2026 09:00:00 +0100\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		from, subject, msgID, body)
	f.update(func(tx *store.Tx) error {
		out, err := f.desk.Apply(tx, parse.Parse([]byte(raw), f.clock.now().Add(-time.Hour)), helpdesk.Source{}, false)
		if err == nil && out.Action != "new_ticket" {
			err = fmt.Errorf("delivered email became %s (%s)", out.Action, out.Detail)
		}
		return err
	})
}

func (f *fixture) outbox() []*helpdesk.Notification {
	f.t.Helper()
	var ns []*helpdesk.Notification
	f.view(func(tx *store.Tx) (err error) {
		ns, err = tx.Outbox()
		return err
	})
	return ns
}

// kinds lists the outbox entries of the given kinds as "kind to".
func (f *fixture) kinds(kinds ...string) []string {
	var out []string
	for _, n := range f.outbox() {
		if slices.Contains(kinds, n.Kind) {
			out = append(out, n.Kind+" "+n.To)
		}
	}
	return out
}

func (f *fixture) ticket(id uint64) *helpdesk.Ticket {
	f.t.Helper()
	var t *helpdesk.Ticket
	f.view(func(tx *store.Tx) (err error) {
		t, err = tx.Ticket(id)
		return err
	})
	return t
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// errorText is the "error" of a JSON error body.
func (r response) errorText(t *testing.T) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	r.json(t, &e)
	return e.Error
}

// call sends a request with the right token; headers are "Name: value" pairs that replace it.
func (f *fixture) call(method, path, body string, headers ...string) response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func expect(t *testing.T, what string, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
}

func TestTokenRequired(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, auth string
		invalid    bool
	}{
		{"no Authorization", "", false},
		{"wrong token", "Bearer " + token + "x", true},
		{"shorter token", "Bearer " + token[:10], true},
		{"Basic scheme", "Basic " + token, false},
	} {
		r := f.call("GET", "/api/tickets/1", "", "Authorization: "+tc.auth)
		expect(t, tc.name, r, http.StatusUnauthorized)
		ch := r.header.Get("WWW-Authenticate")
		if !strings.HasPrefix(ch, "Bearer ") || strings.Contains(ch, "invalid_token") != tc.invalid {
			t.Errorf("%s: WWW-Authenticate = %q", tc.name, ch)
		}
		if strings.Contains(string(r.body), "Kassa") {
			t.Errorf("%s: the ticket leaked: %s", tc.name, r.body)
		}
	}
	// Unknown routes need the token too: no route discovery without it.
	expect(t, "unknown route without token", f.call("GET", "/api/nothing", "", "Authorization: "), http.StatusUnauthorized)
	expect(t, "right token", f.call("GET", "/api/tickets/1", ""), http.StatusOK)
	expect(t, "lower-case scheme", f.call("GET", "/api/tickets/1", "", "Authorization: bearer "+token), http.StatusOK)
	// Monitoring needs none.
	expect(t, "healthz", f.call("GET", "/healthz", "", "Authorization: "), http.StatusOK)
	if r := f.call("GET", "/metrics", "", "Authorization: "); r.status != http.StatusOK {
		t.Errorf("metrics without token: %d", r.status)
	}
}

func TestAPIDisabledWithoutToken(t *testing.T) {
	f := newFixture(t, func(c *api.Config) { c.Token = "" })
	for _, path := range []string{"/api/tickets/1", "/api/recovery/password"} {
		r := f.call("GET", path, "")
		expect(t, path, r, http.StatusNotFound)
		if e := r.errorText(t); e != "api disabled" {
			t.Errorf("%s: error %q", path, e)
		}
	}
	// "Bearer " with an empty token must not open anything either.
	expect(t, "empty bearer", f.call("GET", "/api/tickets/1", "", "Authorization: Bearer "), http.StatusNotFound)
	expect(t, "healthz", f.call("GET", "/healthz", ""), http.StatusOK)
}

func TestMuxErrorsAreJSON(t *testing.T) {
	f := newFixture(t, nil)
	r := f.call("GET", "/api/nothing/here", "")
	expect(t, "unknown route", r, http.StatusNotFound)
	if e := r.errorText(t); e != "no such route" {
		t.Errorf("unknown route: error %q", e)
	}
	r = f.call("DELETE", "/api/tickets/1", "")
	expect(t, "DELETE ticket", r, http.StatusMethodNotAllowed)
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("Allow = %q", allow)
	}
	if e := r.errorText(t); e != "method not allowed" {
		t.Errorf("405: error %q", e)
	}
	expect(t, "GET on a POST route", f.call("GET", "/api/recovery/password", ""), http.StatusMethodNotAllowed)
}

func TestCustomerStatus(t *testing.T) {
	f := newFixture(t, nil)
	type status struct {
		Customer     uint64 `json:"customer"`
		SLA          string `json:"sla"`
		EffectiveSLA string `json:"effective_sla"`
		ValidUntil   string `json:"valid_until"`
		Status       string `json:"status"`
		LapsesOn     string `json:"lapses_on"`
		FreeUntil    string `json:"free_until"`
	}
	for _, tc := range []struct {
		addr string
		want status
	}{
		// Any of the customer's addresses, in any case (R1).
		{"PIET@BakkerijDeVries.nl", status{1, "SLA8", "SLA8", "2027-12-31", "geldig tot 31-12-2027", "2030-01-01", ""}},
		{"kassa@slagerijjansen.nl", status{2, "SLA24", "SLA24", "", "geldig", "", ""}},
		// R3: an expired paid tier is served as SLA24.
		{"info@cafeverlopen.nl", status{3, "SLA8", "SLA24", "2026-10-31", "verlopen op 31-10-2026", "2028-11-01", ""}},
		// R21: 24 months after the paid tier ended the free status lapses; the R3 line stays.
		{"kassa@langgeleden.nl", status{4, "SLA8", "none", "2024-10-31", "verlopen op 31-10-2024", "2026-11-01", ""}},
	} {
		r := f.call("GET", "/api/customers/"+tc.addr+"/status", "")
		expect(t, tc.addr, r, http.StatusOK)
		var got status
		r.json(t, &got)
		if got != tc.want {
			t.Errorf("status of %s = %+v, want %+v", tc.addr, got, tc.want)
		}
		var fields map[string]any
		r.json(t, &fields)
		if len(fields) != 7 {
			t.Errorf("status of %s has fields %v, want exactly the seven", tc.addr, slices.Sorted(maps.Keys(fields)))
		}
	}
	r := f.call("GET", "/api/customers/nobody@example.com/status", "")
	expect(t, "unknown customer", r, http.StatusNotFound)
	if e := r.errorText(t); e != "no such customer" {
		t.Errorf("unknown customer: %q", e)
	}
}

func TestCustomerTickets(t *testing.T) {
	f := newFixture(t, nil)
	r := f.call("GET", "/api/customers/Info@BakkerijDeVries.nl/tickets", "")
	expect(t, "tickets", r, http.StatusOK)
	var got []struct {
		ID       uint64 `json:"id"`
		Customer string `json:"customer"`
		Subject  string `json:"subject"`
	}
	r.json(t, &got)
	if len(got) != 1 || got[0].ID != 1 || got[0].Customer != "info@bakkerijdevries.nl" || got[0].Subject != "Kassa start niet op" {
		t.Errorf("tickets of Bakkerij de Vries = %+v", got)
	}
	// The same JSON as `ticket list -json -customer`.
	var want []view.Ticket
	f.view(func(tx *store.Tx) (err error) {
		want, err = view.Tickets(tx, "info@bakkerijdevries.nl")
		return err
	})
	wb, _ := json.Marshal(want)
	if !bytes.Equal(bytes.TrimSpace(r.body), wb) {
		t.Errorf("body\n%s\nwant\n%s", r.body, wb)
	}
	r = f.call("GET", "/api/customers/info@cafeverlopen.nl/tickets", "")
	expect(t, "no tickets", r, http.StatusOK)
	if strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("customer without tickets: %s, want []", r.body)
	}
	expect(t, "unknown customer", f.call("GET", "/api/customers/nobody@example.com/tickets", ""), http.StatusNotFound)
}

func TestTicketDetail(t *testing.T) {
	f := newFixture(t, nil)
	r := f.call("GET", "/api/tickets/1", "")
	expect(t, "ticket 1", r, http.StatusOK)
	var want *view.TicketDetail
	f.view(func(tx *store.Tx) (err error) {
		want, err = view.CustomerTicketDetail(tx, 1)
		return err
	})
	wb, _ := json.Marshal(want)
	if !bytes.Equal(bytes.TrimSpace(r.body), wb) {
		t.Errorf("ticket 1 is not the customer's view of `ticket show -json`:\n%s\nwant\n%s", r.body, wb)
	}
	var got map[string]any
	r.json(t, &got)
	for _, k := range []string{"id", "customer", "subject", "status", "priority", "sla", "created", "due", "messages", "notifications", "calendar", "followup"} {
		if _, ok := got[k]; !ok {
			t.Errorf("ticket JSON lacks %q", k)
		}
	}
	r = f.call("GET", "/api/tickets/99", "")
	expect(t, "unknown ticket", r, http.StatusNotFound)
	if e := r.errorText(t); e != "no such ticket" {
		t.Errorf("unknown ticket: %q", e)
	}
	expect(t, "bad id", f.call("GET", "/api/tickets/abc", ""), http.StatusBadRequest)
	expect(t, "id 0", f.call("GET", "/api/tickets/0", ""), http.StatusBadRequest)
}

func TestCaller(t *testing.T) {
	f := newFixture(t, nil)
	r := f.call("GET", "/api/caller/06-1234%205678", "")
	expect(t, "known number", r, http.StatusOK)
	var c view.Caller
	r.json(t, &c)
	if c.Number != "+31612345678" || !c.Known || c.Customer == nil || c.Customer.ID != 1 || !c.PutThrough {
		t.Errorf("caller = %+v", c)
	}
	r = f.call("GET", "/api/caller/+31201234567", "")
	expect(t, "unknown number", r, http.StatusOK)
	c = view.Caller{}
	r.json(t, &c)
	if c.Number != "+31201234567" || c.Known || c.Customer != nil || c.PutThrough {
		t.Errorf("unknown caller = %+v", c)
	}
	expect(t, "malformed number", f.call("GET", "/api/caller/bel-me", ""), http.StatusBadRequest)
}

func TestBodies(t *testing.T) {
	f := newFixture(t, nil)
	big := `{"email": "` + strings.Repeat("a", api.MaxBody) + `@example.com"}`
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"too large", big, http.StatusRequestEntityTooLarge},
		{"unknown field", `{"email": "info@bakkerijdevries.nl", "admin": true}`, http.StatusBadRequest},
		{"two objects", `{"email": "info@bakkerijdevries.nl"} {}`, http.StatusBadRequest},
		{"not JSON", `email=info@bakkerijdevries.nl`, http.StatusBadRequest},
		{"empty", ``, http.StatusBadRequest},
		{"wrong type", `{"email": 12}`, http.StatusBadRequest},
		{"not an address", `{"email": "bakkerij"}`, http.StatusBadRequest},
	} {
		r := f.call("POST", "/api/recovery/password", tc.body)
		expect(t, tc.name, r, tc.status)
		if r.errorText(t) == "" {
			t.Errorf("%s: no error text", tc.name)
		}
	}
	expect(t, "login: wrong type", f.call("POST", "/api/recovery/login", `{"customer": "1", "email": "x@example.com"}`), http.StatusBadRequest)
	expect(t, "login: no customer", f.call("POST", "/api/recovery/login", `{"email": "x@example.com"}`), http.StatusBadRequest)
	expect(t, "answer: unknown field", f.call("POST", "/api/tickets/1/answers", `{"from": "jan@infobits.example", "text": "x", "to": "y"}`), http.StatusBadRequest)
	if n := len(f.kinds(helpdesk.KindPasswordReset, helpdesk.KindLoginConfirm, helpdesk.KindAnswer)); n != 0 {
		t.Errorf("refused requests queued %d notifications", n)
	}
}

func TestAnswerEmailPreference(t *testing.T) {
	f := newFixture(t, nil)
	f.clock.add(30 * time.Minute)
	r := f.call("POST", "/api/tickets/1/answers", `{"from": "Jan Bakker <Jan@Infobits.example>", "text": "Goedemorgen Piet,\n\nHerstart de kassa.\n\nJan"}`)
	expect(t, "answer", r, http.StatusCreated)
	var d struct {
		ID       uint64 `json:"id"`
		Status   string `json:"status"`
		Messages []struct {
			Direction, From, Text string
			FromName              string `json:"from_name"`
		} `json:"messages"`
	}
	r.json(t, &d)
	if d.ID != 1 || d.Status != helpdesk.StatusAnswered || len(d.Messages) != 2 || d.Messages[1].Direction != "out" ||
		d.Messages[1].From != "jan@infobits.example" || d.Messages[1].FromName != "Jan Bakker" ||
		d.Messages[1].Text != "Goedemorgen Piet,\n\nHerstart de kassa.\n\nJan" {
		t.Errorf("answered ticket = %+v", d)
	}
	// The customer's view names no staff member: neither the address nor the display name.
	r = f.call("GET", "/api/tickets/1", "")
	r.json(t, &d)
	if len(d.Messages) != 2 || d.Messages[1].From != "" || d.Messages[1].FromName != "" {
		t.Errorf("the customer's view of the answer = %+v, want no from, no from_name", d.Messages)
	}
	var answers []*helpdesk.Notification
	for _, n := range f.outbox() {
		if n.Kind == helpdesk.KindAnswer || n.Kind == helpdesk.KindAnswerSite {
			answers = append(answers, n)
		}
	}
	if len(answers) != 1 {
		t.Fatalf("answers queued: %d, want 1", len(answers))
	}
	n := answers[0]
	// R14 "email": the whole answer, to the address the ticket came from, threaded under the
	// customer's email.
	if n.Kind != helpdesk.KindAnswer || n.To != "piet@bakkerijdevries.nl" || !strings.Contains(n.Data.Text, "Herstart de kassa.") ||
		n.Status != helpdesk.NotifyQueued || n.InReplyTo != "vraag-1@bakkerijdevries.nl" || n.Data.StaffName != "Jan Bakker" {
		t.Errorf("answer notification = %+v", n)
	}
	tk := f.ticket(1)
	if tk.Status != helpdesk.StatusAnswered || !tk.FirstResponse.Equal(start.Add(30*time.Minute)) || !tk.FirstResponseMet {
		t.Errorf("ticket: status %s, first response %v (met %v)", tk.Status, tk.FirstResponse, tk.FirstResponseMet)
	}
}

func TestAnswerSitePreference(t *testing.T) {
	f := newFixture(t, nil)
	r := f.call("POST", "/api/tickets/2/answers", `{"from": "els@infobits.example", "text": "Vervang de bonrol."}`)
	expect(t, "answer", r, http.StatusCreated)
	got := f.kinds(helpdesk.KindAnswer, helpdesk.KindAnswerSite)
	if !slices.Equal(got, []string{"answer_site kassa@slagerijjansen.nl"}) {
		t.Fatalf("queued %v, want one answer_site", got)
	}
	for _, n := range f.outbox() {
		if n.Kind == helpdesk.KindAnswerSite && n.Data.Text != "" {
			t.Errorf("answer_site carries the answer text %q (R14: it waits on the site)", n.Data.Text)
		}
	}
	if tk := f.ticket(2); tk.Status != helpdesk.StatusAnswered || tk.FirstResponse.IsZero() {
		t.Errorf("ticket 2: status %s, first response %v", tk.Status, tk.FirstResponse)
	}
}

func TestAnswerCommands(t *testing.T) {
	f := newFixture(t, nil)
	r := f.call("POST", "/api/tickets/1/answers", `{"from": "jan@infobits.example", "text": "#close\n#assign els@infobits.example\nOpgelost na de update."}`)
	expect(t, "answer with #close", r, http.StatusCreated)
	tk := f.ticket(1)
	if tk.Status != helpdesk.StatusClosed || tk.Assignee != "els@infobits.example" || tk.FirstResponse.IsZero() {
		t.Errorf("ticket after #close: status %s, assignee %q, first response %v", tk.Status, tk.Assignee, tk.FirstResponse)
	}
	if got := f.kinds(helpdesk.KindAnswer); len(got) != 1 {
		t.Errorf("answers queued: %v", got)
	}
	// A note is never sent to the customer.
	r = f.call("POST", "/api/tickets/2/answers", `{"from": "jan@infobits.example", "text": "#note\nKlant belt morgen terug."}`)
	expect(t, "note", r, http.StatusCreated)
	if got := f.kinds(helpdesk.KindAnswer, helpdesk.KindAnswerSite); len(got) != 1 {
		t.Errorf("a note queued a notification: %v", got)
	}
	// An unknown command: nothing of the answer is applied.
	before := f.ticket(2)
	r = f.call("POST", "/api/tickets/2/answers", `{"from": "jan@infobits.example", "text": "#sluit\nKlaar."}`)
	expect(t, "unknown command", r, http.StatusBadRequest)
	if e := r.errorText(t); !strings.Contains(e, "#sluit") {
		t.Errorf("unknown command: error %q", e)
	}
	if after := f.ticket(2); after.Messages != before.Messages || after.Status != before.Status {
		t.Errorf("a refused answer changed the ticket: %+v", after)
	}
}

func TestAnswerRefused(t *testing.T) {
	f := newFixture(t, nil)
	// A customer's address is not staff, even with the API token.
	r := f.call("POST", "/api/tickets/1/answers", `{"from": "piet@bakkerijdevries.nl", "text": "Ik antwoord zelf."}`)
	expect(t, "customer as from", r, http.StatusForbidden)
	expect(t, "garbage from", f.call("POST", "/api/tickets/1/answers", `{"from": "jan", "text": "x"}`), http.StatusForbidden)
	expect(t, "no from", f.call("POST", "/api/tickets/1/answers", `{"text": "x"}`), http.StatusBadRequest)
	expect(t, "no text", f.call("POST", "/api/tickets/1/answers", `{"from": "jan@infobits.example", "text": "  "}`), http.StatusBadRequest)
	r = f.call("POST", "/api/tickets/42/answers", `{"from": "jan@infobits.example", "text": "x"}`)
	expect(t, "unknown ticket", r, http.StatusNotFound)
	if e := r.errorText(t); e != "no such ticket" {
		t.Errorf("unknown ticket: %q", e)
	}
	if tk := f.ticket(1); tk.Status != helpdesk.StatusOpen || tk.Messages != 1 {
		t.Errorf("refused answers changed ticket 1: %+v", tk)
	}
	if got := f.kinds(helpdesk.KindAnswer, helpdesk.KindAnswerSite); len(got) != 0 {
		t.Errorf("refused answers queued %v", got)
	}
}

// sameResponse fails unless two responses are equal in status, headers (Date aside) and body.
func sameResponse(t *testing.T, what string, a, b response) {
	t.Helper()
	ha, hb := a.header.Clone(), b.header.Clone()
	ha.Del("Date")
	hb.Del("Date")
	if a.status != b.status || !maps.EqualFunc(ha, hb, slices.Equal) || !bytes.Equal(a.body, b.body) {
		t.Errorf("%s: responses differ (R18):\n%d %v %s\n%d %v %s", what, a.status, ha, a.body, b.status, hb, b.body)
	}
}

func TestRecoveryPasswordEqualResponses(t *testing.T) {
	f := newFixture(t, nil)
	known := f.call("POST", "/api/recovery/password", `{"email": "Piet@BakkerijDeVries.nl"}`)
	unknown := f.call("POST", "/api/recovery/password", `{"email": "piet@bakkerij-de-vries.nl"}`)
	if known.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202; %s", known.status, known.body)
	}
	var body map[string]string
	known.json(t, &body)
	if body["status"] != "if the address belongs to a customer, a link has been sent" || len(body) != 1 {
		t.Errorf("body = %v", body)
	}
	sameResponse(t, "known and unknown address", known, unknown)
	// R16: the link goes to the login address, whichever of the customer's addresses asked.
	if got := f.kinds(helpdesk.KindPasswordReset); !slices.Equal(got, []string{"password_reset info@bakkerijdevries.nl"}) {
		t.Errorf("queued %v, want one password_reset to the login", got)
	}
	for _, n := range f.outbox() {
		if n.Kind == helpdesk.KindPasswordReset && (n.Data.TokenPurpose != helpdesk.PurposePassword || n.Data.CustomerID != 1) {
			t.Errorf("password_reset data = %+v", n.Data)
		}
	}
}

func TestRecoveryRateLimit(t *testing.T) {
	f := newFixture(t, nil)
	first := f.call("POST", "/api/recovery/password", `{"email": "info@bakkerijdevries.nl"}`)
	for i := range 4 {
		r := f.call("POST", "/api/recovery/password", `{"email": "piet@bakkerijdevries.nl"}`)
		sameResponse(t, fmt.Sprintf("request %d", i+2), first, r)
	}
	// recovery_per_hour = 3, counted per login address.
	if got := f.kinds(helpdesk.KindPasswordReset); len(got) != 3 {
		t.Errorf("queued %d links in an hour, want 3: %v", len(got), got)
	}
	f.clock.add(61 * time.Minute)
	sameResponse(t, "an hour later", first, f.call("POST", "/api/recovery/password", `{"email": "info@bakkerijdevries.nl"}`))
	if got := f.kinds(helpdesk.KindPasswordReset); len(got) != 4 {
		t.Errorf("an hour later: %d links, want 4", len(got))
	}
}

func TestRecoveryLogin(t *testing.T) {
	f := newFixture(t, nil)
	ok := f.call("POST", "/api/recovery/login", `{"customer": 1, "email": "Piet.de.Vries@Example.com"}`)
	if ok.status != http.StatusAccepted {
		t.Fatalf("status %d; %s", ok.status, ok.body)
	}
	// R17: a confirmation to the new address, a notice to the old login.
	got := f.kinds(helpdesk.KindLoginConfirm, helpdesk.KindLoginNotice)
	want := []string{"login_confirm piet.de.vries@example.com", "login_notice info@bakkerijdevries.nl"}
	if !slices.Equal(got, want) {
		t.Errorf("queued %v, want %v", got, want)
	}
	for _, n := range f.outbox() {
		switch {
		case n.Kind != helpdesk.KindLoginConfirm && n.Kind != helpdesk.KindLoginNotice:
		case n.Data.LoginChange == 0:
			t.Errorf("%s names no login change: %+v", n.Kind, n.Data)
		case n.Kind == helpdesk.KindLoginConfirm && (n.Data.TokenPurpose != helpdesk.PurposeLogin || n.Data.CustomerName != "" ||
			n.Data.CustomerID != 0 || n.Data.ContactName != "" || n.Data.NewEmail != "" || n.Lang != "nl"):
			// The address is the requester's choice; the mail names nothing of the account.
			t.Errorf("login_confirm data = %+v", n.Data)
		case n.Kind == helpdesk.KindLoginNotice && (n.Data.NewEmail != "piet.de.vries@example.com" || n.Data.CustomerID != 1 ||
			!n.Data.Until.Equal(start.Add(72*time.Hour))):
			t.Errorf("login_notice data = %+v", n.Data)
		}
	}
	// The login changes only when the change takes effect.
	r := f.call("GET", "/api/customers/piet.de.vries@example.com/status", "")
	expect(t, "new address before redeem", r, http.StatusNotFound)

	// An unknown customer, an address of another customer, and a second request while the
	// first is pending (which it must not cancel): the same answer, nothing sent.
	for _, body := range []string{`{"customer": 99, "email": "nieuw@example.com"}`, `{"customer": 1, "email": "kassa@slagerijjansen.nl"}`,
		`{"customer": 1, "email": "aanvaller@example.com"}`} {
		sameResponse(t, body, ok, f.call("POST", "/api/recovery/login", body))
	}
	if got := f.kinds(helpdesk.KindLoginConfirm, helpdesk.KindLoginNotice); len(got) != 2 {
		t.Errorf("queued %v after refused requests", got)
	}
	var ch *helpdesk.LoginChange
	f.view(func(tx *store.Tx) (err error) { ch, err = tx.PendingLoginChange(1); return err })
	if ch.NewEmail != "piet.de.vries@example.com" || !ch.Pending() {
		t.Errorf("pending change = %+v, want the first request's", ch)
	}
}

// issue creates a token as notify does when it sends the link.
func (f *fixture) issue(purpose string, customer uint64, newEmail string) string {
	f.t.Helper()
	var raw string
	f.update(func(tx *store.Tx) (err error) {
		raw, err = tx.IssueToken(purpose, customer, newEmail, f.clock.now(), time.Hour)
		return err
	})
	return raw
}

func TestRedeem(t *testing.T) {
	f := newFixture(t, nil)
	redeem := func(tok string) response { return f.call("POST", "/api/recovery/redeem", `{"token": "`+tok+`"}`) }

	tok := f.issue(helpdesk.PurposePassword, 1, "")
	r := redeem(tok)
	expect(t, "first use", r, http.StatusOK)
	var got map[string]any
	r.json(t, &got)
	if want := map[string]any{"purpose": "password", "customer": float64(1), "login": "info@bakkerijdevries.nl", "status": "done"}; !maps.Equal(got, want) {
		t.Errorf("redeem = %v, want %v", got, want)
	}

	invalid := redeem("bm90LWEtdG9rZW4tdGhhdC1ldmVyLWV4aXN0ZWQtYW55d2hlcmU")
	expect(t, "unknown token", invalid, http.StatusBadRequest)
	if e := invalid.errorText(t); e != "invalid or expired link" {
		t.Errorf("unknown token: %q", e)
	}
	sameResponse(t, "used twice", invalid, redeem(tok))

	expired := f.issue(helpdesk.PurposePassword, 2, "")
	f.clock.add(time.Hour)
	sameResponse(t, "expired", invalid, redeem(expired))

	old := f.issue(helpdesk.PurposePassword, 2, "")
	newer := f.issue(helpdesk.PurposePassword, 2, "")
	sameResponse(t, "voided by a newer one", invalid, redeem(old))
	expect(t, "the newer one", redeem(newer), http.StatusOK)

	sameResponse(t, "empty token", invalid, redeem(""))
}

// changeTokens asks for a login change through the API and issues its tokens as notify does
// when it sends: the new address's confirmation, the old login's agree and cancel links.
func (f *fixture) changeTokens(customer uint64, newEmail string) (confirm, allow, cancel string) {
	f.t.Helper()
	expect(f.t, "login change", f.call("POST", "/api/recovery/login", fmt.Sprintf(`{"customer": %d, "email": %q}`, customer, newEmail)), http.StatusAccepted)
	f.update(func(tx *store.Tx) error {
		ch, err := tx.PendingLoginChange(customer)
		if err != nil {
			return err
		}
		now := f.clock.now()
		if confirm, err = tx.IssueChangeToken(helpdesk.PurposeLogin, ch.ID, now, now.Add(time.Hour)); err != nil {
			return err
		}
		if allow, err = tx.IssueChangeToken(helpdesk.PurposeLoginAllow, ch.ID, now, ch.Until); err != nil {
			return err
		}
		cancel, err = tx.IssueChangeToken(helpdesk.PurposeLoginCancel, ch.ID, now, ch.Until)
		return err
	})
	return confirm, allow, cancel
}

// TestRedeemLogin: the new address's confirmation alone changes nothing and does
// not tell the old login to whoever holds the new address; with the old login's agreement
// the change takes effect; the old login's cancel link stops it.
func TestRedeemLogin(t *testing.T) {
	f := newFixture(t, nil)
	redeem := func(tok string) map[string]any {
		t.Helper()
		r := f.call("POST", "/api/recovery/redeem", `{"token": "`+tok+`"}`)
		expect(t, "redeem", r, http.StatusOK)
		var got map[string]any
		r.json(t, &got)
		return got
	}
	confirm, allow, _ := f.changeTokens(1, "piet.de.vries@example.com")
	got := redeem(confirm)
	if want := map[string]any{"purpose": "login", "customer": float64(1), "status": "pending",
		"takes_effect": start.Add(72 * time.Hour).Format(time.RFC3339)}; !maps.Equal(got, want) {
		t.Errorf("redeem confirmation = %v, want %v", got, want)
	}
	expect(t, "status by the new address while pending", f.call("GET", "/api/customers/piet.de.vries@example.com/status", ""), http.StatusNotFound)
	got = redeem(allow)
	if want := map[string]any{"purpose": "login_allow", "customer": float64(1), "login": "piet.de.vries@example.com", "status": "done"}; !maps.Equal(got, want) {
		t.Errorf("redeem the old login's agreement = %v, want %v", got, want)
	}
	// The new address is the login (customer show); the old ones stay.
	var c *helpdesk.Customer
	f.view(func(tx *store.Tx) (err error) {
		c, err = tx.CustomerByAddress("info@bakkerijdevries.nl")
		return err
	})
	if vc := view.CustomerOf(c); !slices.Equal(vc.Emails, []string{"piet.de.vries@example.com", "info@bakkerijdevries.nl", "piet@bakkerijdevries.nl"}) {
		t.Errorf("emails after the login change = %v", vc.Emails)
	}
	expect(t, "status by the new login", f.call("GET", "/api/customers/piet.de.vries@example.com/status", ""), http.StatusOK)
	if got := f.kinds(helpdesk.KindLoginChanged); !slices.Equal(got, []string{"login_changed info@bakkerijdevries.nl", "login_changed piet.de.vries@example.com"}) {
		t.Errorf("told of the change: %v, want the old and the new login", got)
	}

	// The old login cancels: the confirmation that follows is an invalid link.
	confirm, _, cancel := f.changeTokens(2, "slager@example.com")
	if got := redeem(cancel); got["status"] != "cancelled" {
		t.Errorf("redeem cancel = %v", got)
	}
	expect(t, "confirmation of a cancelled change", f.call("POST", "/api/recovery/redeem", `{"token": "`+confirm+`"}`), http.StatusBadRequest)

	// The new address was given to another customer meanwhile: 409, and nothing changes —
	// the link is not used up either.
	confirm, _, _ = f.changeTokens(2, "info@cafeverlopen.nl-new.example")
	f.update(func(tx *store.Tx) error {
		c, err := tx.Customer(3)
		if err != nil {
			return err
		}
		c.Emails = append(c.Emails, "info@cafeverlopen.nl-new.example")
		return tx.PutCustomer(c)
	})
	expect(t, "address taken", f.call("POST", "/api/recovery/redeem", `{"token": "`+confirm+`"}`), http.StatusConflict)
	f.view(func(tx *store.Tx) (err error) {
		c, err = tx.Customer(2)
		return err
	})
	if c.Login() != "kassa@slagerijjansen.nl" {
		t.Errorf("login of customer 2 = %s", c.Login())
	}
	f.update(func(tx *store.Tx) error {
		c, err := tx.Customer(3)
		if err != nil {
			return err
		}
		c.Emails = []string{"info@cafeverlopen.nl"}
		return tx.PutCustomer(c)
	})
	if got := redeem(confirm); got["status"] != "pending" {
		t.Errorf("the same link once the address is free: %v", got)
	}
}

func TestHealth(t *testing.T) {
	f := newFixture(t, nil)
	r := f.call("GET", "/healthz", "")
	expect(t, "healthy", r, http.StatusOK)
	var h struct {
		Status     string            `json:"status"`
		Reason     *string           `json:"reason"`
		Components map[string]string `json:"components"`
	}
	r.json(t, &h)
	if h.Status != "ok" || h.Reason != nil || !maps.Equal(h.Components, map[string]string{"imap": "ok", "smtp": "ok", "store": "ok"}) {
		t.Errorf("healthz = %+v", h)
	}
	f.mu.Lock()
	f.health["imap"] = "reconnecting: dial tcp 127.0.0.1:993: connection refused"
	f.health["smtp"] = "failing for 6m0s (since 2026-11-27T10:00:00Z): connection refused"
	f.mu.Unlock()
	r = f.call("GET", "/healthz", "")
	expect(t, "imap down", r, http.StatusServiceUnavailable)
	h.Reason = nil
	r.json(t, &h)
	want := "imap: reconnecting: dial tcp 127.0.0.1:993: connection refused; smtp: failing for 6m0s (since 2026-11-27T10:00:00Z): connection refused"
	if h.Status != "degraded" || h.Components["imap"] != "reconnecting: dial tcp 127.0.0.1:993: connection refused" ||
		h.Components["store"] != "ok" || h.Reason == nil || *h.Reason != want {
		t.Errorf("healthz = %+v, reason %v; want the reason %q", h, h.Reason, want)
	}
}
