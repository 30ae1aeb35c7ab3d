package view_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk/view"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/store/storetest"
)

var ctx = context.Background()

// t0 is a fixed moment; tests never read the clock.
var t0 = time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)

// fill stores two customers, tickets in a deliberately mixed order, a thread with an
// attachment, notifications and a held email.
func fill(t *testing.T, db *store.DB) {
	t.Helper()
	err := db.Update(ctx, func(tx *store.Tx) error {
		for _, c := range []*helpdesk.Customer{
			{Name: "Bakkerij de Vries", Emails: []string{"info@bakkerij.nl", "piet@bakkerij.nl"}, Tier: helpdesk.SLA8, ValidUntil: helpdesk.Date{Year: 2027, Month: 1, Day: 31}, Contract: true,
				Licence: helpdesk.LicenceInfokasL, Arrears: true, Maintainer: helpdesk.MaintainerThirdParty, Phones: []string{"+31612345678", "+31201234567"}, Lang: "en", Answer: helpdesk.AnswerSite,
				// A name for an address the customer does not have is dropped by PutCustomer.
				Contacts: map[string]string{"PIET@bakkerij.nl": "Piet de Vries", "oud@bakkerij.nl": "Oud"}},
			// Stored before the fields of R2–R19 existed: the defaults show (nl, vendor, email, no phones).
			{Name: "Slagerij Jansen", Emails: []string{"kassa@slagerij.nl"}, Tier: helpdesk.SLA24, Philanthropic: true},
		} {
			if err := tx.PutCustomer(c); err != nil {
				return err
			}
		}
		tickets := []struct {
			customer uint64
			priority string
			due      time.Time
		}{
			{1, helpdesk.PriorityNormal, t0.Add(10 * time.Hour)}, // 1
			{2, helpdesk.PriorityUrgent, time.Time{}},            // 2: urgent, no due time yet
			{1, helpdesk.PriorityUrgent, t0.Add(12 * time.Hour)}, // 3
			{2, helpdesk.PriorityNormal, time.Time{}},            // 4
			{1, helpdesk.PriorityNormal, t0.Add(9 * time.Hour)},  // 5
			{2, helpdesk.PriorityNormal, t0.Add(10 * time.Hour)}, // 6: same due time as 1
		}
		for i, tk := range tickets {
			st := &helpdesk.Ticket{CustomerID: tk.customer, Address: "info@bakkerij.nl", Subject: "vraag " + string(rune('a'+i)),
				Status: helpdesk.StatusOpen, Priority: tk.priority, Tier: helpdesk.SLA8, Created: t0, Due: tk.due}
			if err := tx.CreateTicket(st); err != nil {
				return err
			}
			if st.ID == 1 {
				in := &helpdesk.Message{Direction: helpdesk.DirectionIn, From: "info@bakkerij.nl", FromName: "Piet de Vries", Date: t0,
					MessageID: "m1@bakkerij.nl", Subject: "Kassa start niet op", Text: "Help!",
					Attachment: []helpdesk.Attachment{{Filename: "bon.pdf", ContentType: "application/pdf", Size: 1234, SHA256: strings.Repeat("ab", 32)}},
					HTML:       "<p>Help!</p>", RawSHA256: strings.Repeat("cd", 32)}
				out := &helpdesk.Message{Direction: helpdesk.DirectionOut, From: "jan@infobits.nl", Date: t0.Add(time.Hour),
					MessageID: "a1@infobits.nl", Subject: "Re: [Infobits #1] Kassa start niet op", Text: "Herstart de kassa."}
				for _, m := range []*helpdesk.Message{in, out} {
					if err := tx.AddMessage(st, m); err != nil {
						return err
					}
				}
				for _, n := range []*helpdesk.Notification{
					{Kind: helpdesk.KindAck, TicketID: 1, To: "info@bakkerij.nl", MessageID: "n1@helpdesk", Subject: "[Infobits #1] Ontvangen: Kassa start niet op", Status: helpdesk.NotifySent, Sent: t0.Add(time.Minute), Attempts: 1},
					{Kind: helpdesk.KindAnswer, TicketID: 1, To: "info@bakkerij.nl", MessageID: "n2@helpdesk", NextAttempt: t0.Add(2 * time.Hour), Attempts: 2, LastError: "451 try later"},
				} {
					if err := tx.Enqueue(n); err != nil {
						return err
					}
				}
			}
		}
		return tx.Hold(&helpdesk.Held{MessageID: "x@stranger.example", From: "stranger@example.com", FromName: "Onbekende", Subject: "Hallo",
			Reason: helpdesk.HeldUnknownSender, Detail: "no customer has the address stranger@example.com", Received: t0, Size: 42})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// asJSON marshals v and reads it back as generic JSON, the way a script reads the CLI's output.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal(%T) = %v", v, err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m any) []string {
	var ks []string
	for k := range m.(map[string]any) {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// The CLI's JSON is a contract with scripts and the website: field names and shapes are fixed.
// Customers show their addresses, login first (R1), tier (R2) and valid_until (R3).
func TestJSONContract(t *testing.T) {
	db := storetest.New(t)
	fill(t, db)
	var tickets []view.Ticket
	var detail *view.TicketDetail
	var customers []view.CustomerRow
	var held []view.Held
	err := db.View(ctx, func(tx *store.Tx) (err error) {
		if tickets, err = view.Tickets(tx, ""); err != nil {
			return err
		}
		if detail, err = view.TicketDetailOf(tx, 1); err != nil {
			return err
		}
		if customers, err = view.Customers(tx, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), 24); err != nil {
			return err
		}
		held, err = view.HeldEmails(tx, view.HeldFilter{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	list := asJSON(t, tickets).([]any)
	if len(list) != 6 {
		t.Fatalf("Tickets() = %d items, want 6", len(list))
	}
	item := list[0].(map[string]any)
	if got, want := keys(item), sorted("id", "customer", "subject", "status", "priority", "sla", "created", "due", "messages",
		"calendar", "rate_zone", "surcharge", "surcharge_zone", "followup", "payment",
		"assignee", "first_response", "first_response_met"); !reflect.DeepEqual(got, want) {
		t.Errorf("ticket list item keys = %v, want %v", got, want)
	}
	byID := map[float64]map[string]any{}
	for _, it := range list {
		m := it.(map[string]any)
		byID[m["id"].(float64)] = m
	}
	one := byID[1]
	wantOne := map[string]any{"id": 1.0, "customer": "info@bakkerij.nl", "subject": "vraag a", "status": "open",
		"priority": "normal", "sla": "SLA8", "created": "2026-11-27T10:30:00+01:00", "due": "2026-11-27T20:30:00+01:00", "messages": 2.0,
		"calendar": "", "rate_zone": "", "surcharge": false, "surcharge_zone": 0.0, "followup": "", "payment": "",
		"assignee": "", "first_response": "", "first_response_met": false}
	if !reflect.DeepEqual(one, wantOne) {
		t.Errorf("ticket list item 1 = %v, want %v", one, wantOne)
	}
	if got := byID[2]["due"]; got != "" {
		t.Errorf("ticket list item 2 due = %#v, want \"\" (no due time yet)", got)
	}
	if got := byID[2]["customer"]; got != "kassa@slagerij.nl" {
		t.Errorf("ticket list item 2 customer = %#v, want the login address kassa@slagerij.nl", got)
	}

	d := asJSON(t, detail).(map[string]any)
	for _, k := range []string{"id", "customer", "subject", "status", "priority", "sla", "created", "due", "messages", "notifications"} {
		if _, ok := d[k]; !ok {
			t.Errorf("ticket detail has no %q field; keys %v", k, keys(d))
		}
	}
	msgs := d["messages"].([]any)
	if len(msgs) != 2 {
		t.Fatalf("ticket detail messages = %d, want 2", len(msgs))
	}
	m0 := msgs[0].(map[string]any)
	if got, want := keys(m0), sorted("direction", "from", "from_name", "date", "message_id", "subject", "text", "attachments"); !reflect.DeepEqual(got, want) {
		t.Errorf("ticket detail message keys = %v, want %v (no html, no raw hash)", got, want)
	}
	wantM0 := map[string]any{"direction": "in", "from": "info@bakkerij.nl", "from_name": "Piet de Vries", "date": "2026-11-27T10:30:00+01:00",
		"message_id": "m1@bakkerij.nl", "subject": "Kassa start niet op", "text": "Help!",
		"attachments": []any{map[string]any{"number": 1.0, "filename": "bon.pdf", "content_type": "application/pdf", "size": 1234.0, "sha256": strings.Repeat("ab", 32)}}}
	if !reflect.DeepEqual(m0, wantM0) {
		t.Errorf("ticket detail message 1 = %v, want %v", m0, wantM0)
	}
	if got := msgs[1].(map[string]any)["attachments"]; !reflect.DeepEqual(got, []any{}) {
		t.Errorf("ticket detail message 2 attachments = %#v, want [] (not null)", got)
	}
	if got := msgs[1].(map[string]any)["direction"]; got != "out" {
		t.Errorf("ticket detail message 2 direction = %v, want out", got)
	}
	notes := d["notifications"].([]any)
	if len(notes) != 2 {
		t.Fatalf("ticket detail notifications = %d, want 2", len(notes))
	}
	n0, n1 := notes[0].(map[string]any), notes[1].(map[string]any)
	for _, k := range []string{"to", "subject", "status", "sent"} {
		if _, ok := n0[k]; !ok {
			t.Errorf("notification has no %q field; keys %v", k, keys(n0))
		}
	}
	for k, want := range map[string]any{"to": "info@bakkerij.nl", "subject": "[Infobits #1] Ontvangen: Kassa start niet op", "status": "sent", "sent": "2026-11-27T10:31:00+01:00", "kind": "ack"} {
		if n0[k] != want {
			t.Errorf("notification 1 %s = %#v, want %#v", k, n0[k], want)
		}
	}
	for k, want := range map[string]any{"status": "queued", "sent": "", "error": "451 try later", "attempts": 2.0} {
		if n1[k] != want {
			t.Errorf("notification 2 %s = %#v, want %#v", k, n1[k], want)
		}
	}

	// A ticket without thread or notifications has empty arrays, not null.
	var empty *view.TicketDetail
	if err := db.View(ctx, func(tx *store.Tx) (err error) { empty, err = view.TicketDetailOf(tx, 4); return err }); err != nil {
		t.Fatal(err)
	}
	e := asJSON(t, empty).(map[string]any)
	if !reflect.DeepEqual(e["messages"], []any{}) || !reflect.DeepEqual(e["notifications"], []any{}) || e["due"] != "" {
		t.Errorf("TicketDetailOf(4) = messages %#v, notifications %#v, due %#v, want [], [], \"\"", e["messages"], e["notifications"], e["due"])
	}

	cs := asJSON(t, customers).([]any)
	if len(cs) != 2 {
		t.Fatalf("Customers() = %d, want 2", len(cs))
	}
	// The customer fields of R2 (licence), R4 (philanthropic), R5 (arrears), R13 (maintainer),
	// R19 (phones), language, R14 (answer), the contact names and R21's days are always
	// present, with their defaults; the list adds the tier served on the day and the R3 line.
	wantCs := []any{
		map[string]any{"id": 1.0, "name": "Bakkerij de Vries", "emails": []any{"info@bakkerij.nl", "piet@bakkerij.nl"}, "sla": "SLA8", "valid_until": "2027-01-31", "contract": true,
			"licence": "infokas-l", "philanthropic": false, "arrears": true, "maintainer": "third-party", "phones": []any{"+31612345678", "+31201234567"}, "lang": "en", "answer": "site",
			"contacts": map[string]any{"piet@bakkerij.nl": "Piet de Vries"}, "free_until": "", "paid_ended": "",
			"effective_sla": "SLA8", "status": "geldig tot 31-01-2027"},
		map[string]any{"id": 2.0, "name": "Slagerij Jansen", "emails": []any{"kassa@slagerij.nl"}, "sla": "SLA24", "valid_until": "", "contract": false,
			"licence": "", "philanthropic": true, "arrears": false, "maintainer": "vendor", "phones": []any{}, "lang": "nl", "answer": "email", "contacts": map[string]any{},
			"free_until": "", "paid_ended": "", "effective_sla": "SLA24", "status": "geldig"},
	}
	if !reflect.DeepEqual(cs, wantCs) {
		t.Errorf("Customers() JSON = %v, want %v", cs, wantCs)
	}

	hs := asJSON(t, held).([]any)
	if len(hs) != 1 {
		t.Fatalf("HeldEmails() = %d, want 1", len(hs))
	}
	h := hs[0].(map[string]any)
	for k, want := range map[string]any{"id": 1.0, "message_id": "x@stranger.example", "from": "stranger@example.com", "from_name": "Onbekende", "subject": "Hallo", "reason": "unknown_sender", "received": "2026-11-27T10:30:00+01:00"} {
		if h[k] != want {
			t.Errorf("held email %s = %#v, want %#v", k, h[k], want)
		}
	}
}

// Staff work the list top down: urgent first (R12), then the earliest deadline, then the
// oldest ticket; tickets without a deadline come last in their group, closed tickets after
// all the others.
func TestTicketOrder(t *testing.T) {
	db := storetest.New(t)
	fill(t, db)
	ids := func(ts []view.Ticket) []uint64 {
		var out []uint64
		for _, tk := range ts {
			out = append(out, tk.ID)
		}
		return out
	}
	cases := []struct {
		customer string
		want     []uint64
	}{
		{"", []uint64{3, 2, 5, 1, 6, 4}},
		{"info@bakkerij.nl", []uint64{3, 5, 1}},
		{"PIET@Bakkerij.nl", []uint64{3, 5, 1}},
		{"kassa@slagerij.nl", []uint64{2, 6, 4}},
	}
	for _, tc := range cases {
		var got []view.Ticket
		err := db.View(ctx, func(tx *store.Tx) (err error) { got, err = view.Tickets(tx, tc.customer); return err })
		if err != nil || !reflect.DeepEqual(ids(got), tc.want) {
			t.Errorf("Tickets(%q) = %v, %v, want %v", tc.customer, ids(got), err, tc.want)
		}
	}
	// Closed tickets (an imported archive, work done) come after the work, however urgent
	// or early their deadline was.
	if err := db.Update(ctx, func(tx *store.Tx) error {
		for _, id := range []uint64{3, 5} {
			tk, err := tx.Ticket(id)
			if err != nil {
				return err
			}
			tk.Status = helpdesk.StatusClosed
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got []view.Ticket
	if err := db.View(ctx, func(tx *store.Tx) (err error) { got, err = view.Tickets(tx, ""); return err }); err != nil ||
		!reflect.DeepEqual(ids(got), []uint64{2, 1, 6, 4, 3, 5}) {
		t.Errorf("Tickets with 3 and 5 closed = %v, %v, want [2 1 6 4 3 5]", ids(got), err)
	}
	err := db.View(ctx, func(tx *store.Tx) error {
		_, err := view.Tickets(tx, "nobody@example.com")
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "nobody@example.com") {
		t.Errorf("Tickets(unknown customer) = %v, want an error naming the address", err)
	}
	err = db.View(ctx, func(tx *store.Tx) error {
		_, err := view.TicketDetailOf(tx, 99)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "99") {
		t.Errorf("TicketDetailOf(99) = %v, want an error naming ticket 99", err)
	}
}

func TestTimeText(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skip(err)
	}
	cases := []struct {
		in         time.Time
		json, text string
	}{
		{time.Time{}, `""`, "-"},
		{t0, `"2026-11-27T10:30:00+01:00"`, "2026-11-27T10:30:00+01:00"},
		{time.Date(2026, 7, 1, 13, 0, 0, 0, ams), `"2026-07-01T13:00:00+02:00"`, "2026-07-01T13:00:00+02:00"},
	}
	for _, tc := range cases {
		b, err := json.Marshal(view.Time(tc.in))
		if err != nil || string(b) != tc.json {
			t.Errorf("json.Marshal(Time(%v)) = %s, %v, want %s", tc.in, b, err, tc.json)
		}
		if got := view.Time(tc.in).String(); got != tc.text {
			t.Errorf("Time(%v).String() = %q, want %q", tc.in, got, tc.text)
		}
	}
}

// TestFreeStatus: the free status's line of `customer show` (R21, 24 months): a customer whose
// paid tier ended on 15 March 2024 lapses on 16 March 2026; the operator's keep holds it
// through its last day; no line for a paid tier served on the day or a philanthropic
// customer.
func TestFreeStatus(t *testing.T) {
	day := func(s string) helpdesk.Date {
		d, err := helpdesk.ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	noon := func(s string) time.Time { return day(s).Midnight().Add(12 * time.Hour) }
	ended := &helpdesk.Customer{ID: 1, Tier: helpdesk.SLA24, PaidEnded: day("2024-03-15")}
	kept := &helpdesk.Customer{ID: 2, Tier: helpdesk.SLA24, PaidEnded: day("2024-03-15"), FreeUntil: day("2026-06-30")}
	paid := &helpdesk.Customer{ID: 3, Tier: helpdesk.SLA8, ValidUntil: day("2026-12-31")}
	free := &helpdesk.Customer{ID: 4, Tier: helpdesk.SLA24, Philanthropic: true}
	for _, c := range []struct {
		c    *helpdesk.Customer
		on   string
		want string
	}{
		{ended, "2026-03-15", "lapses on 2026-03-16 without paid support (R21)"},
		{ended, "2026-03-16", "lapsed since 2026-03-16 (R21): new questions are held as sla24_lapsed"},
		{kept, "2026-01-10", "kept free through 2026-06-30; lapses the day after without paid support (R21)"},
		{kept, "2026-06-30", "kept free through 2026-06-30 (lapsed since 2026-03-16 without it, R21)"},
		{kept, "2026-07-01", "lapsed since 2026-03-16 (R21): new questions are held as sla24_lapsed"},
		{paid, "2026-11-30", ""},
		{free, "2030-01-01", ""},
	} {
		if got := view.CustomerDetailOf(c.c, nil, noon(c.on), 24).FreeStatus(); got != c.want {
			t.Errorf("customer %d on %s: %q, want %q", c.c.ID, c.on, got, c.want)
		}
	}
}
