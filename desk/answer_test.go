package desk_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/rules/policy"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/store/storetest"
)

// A staff answer given on the website (AnswerFromAPI) must do exactly what the same answer
// emailed by staff does: the thread message, the status, the first response, the commands
// and the notification of R14. Each case answers one ticket by email and a twin ticket
// through the API, and compares.

type answerFixture struct {
	t    *testing.T
	db   *store.DB
	desk *desk.Desk
}

func newAnswerFixture(t *testing.T) *answerFixture {
	t.Helper()
	db := storetest.New(t)
	rules := testRules(t, policy.Limits{})
	rules.Staff = append(rules.Staff, "els@infobits.example")
	f := &answerFixture{t: t, db: db, desk: &desk.Desk{Policy: policy.New(rules), MessageIDDomain: "infobits.example",
		Now: func() time.Time { return arrival.Add(time.Hour) }}}
	f.update(func(tx *store.Tx) error {
		for _, c := range []*helpdesk.Customer{
			{Name: "Bakkerij de Vries", Emails: []string{"info@bakkerijdevries.nl"}, Tier: helpdesk.SLA8},
			{Name: "Slagerij Jansen", Emails: []string{"kassa@slagerijjansen.nl"}, Tier: helpdesk.SLA24, Answer: helpdesk.AnswerSite, Lang: "en"},
		} {
			if err := tx.PutCustomer(c); err != nil {
				return err
			}
		}
		return nil
	})
	return f
}

func (f *answerFixture) update(fn func(tx *store.Tx) error) {
	f.t.Helper()
	if err := f.db.Update(context.Background(), fn); err != nil {
		f.t.Fatal(err)
	}
}

// apply puts an email through Apply and returns what it became.
func (f *answerFixture) apply(o mailOpts, at time.Time) desk.Outcome {
	f.t.Helper()
	var out desk.Outcome
	f.update(func(tx *store.Tx) (err error) {
		out, err = f.desk.Apply(tx, parse.Parse(buildMail(o), at), helpdesk.Source{}, false)
		return err
	})
	return out
}

// answered is what an answer left behind on its ticket, for comparison.
type answered struct {
	status, priority, assignee string
	firstResponse              time.Time
	met                        bool
	messages                   int
	last                       helpdesk.Message // the answer in the thread (ids and subject cleared)
	notes                      []helpdesk.Notification
}

func (f *answerFixture) state(id uint64, customerMsgID string) answered {
	f.t.Helper()
	var a answered
	if err := f.db.View(context.Background(), func(tx *store.Tx) error {
		t, err := tx.Ticket(id)
		if err != nil {
			return err
		}
		a = answered{status: t.Status, priority: t.Priority, assignee: t.Assignee, firstResponse: t.FirstResponse,
			met: t.FirstResponseMet, messages: t.Messages}
		ms, err := tx.Messages(id)
		if err != nil {
			return err
		}
		m := *ms[len(ms)-1]
		m.TicketID, m.MessageID, m.Subject, m.InReplyTo, m.References, m.RawSHA256, m.Size, m.HeaderDate, m.Source = 0, "", "", nil, nil, "", 0, time.Time{}, helpdesk.Source{}
		a.last = m
		ns, err := tx.TicketNotifications(id)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if n.Kind == helpdesk.KindAck {
				continue
			}
			if n.InReplyTo != customerMsgID || !slices.Equal(n.References, []string{customerMsgID}) {
				f.t.Errorf("ticket %d: %s threaded under %q %v, want the customer's %q", id, n.Kind, n.InReplyTo, n.References, customerMsgID)
			}
			c := *n
			c.ID, c.TicketID, c.MessageID, c.InReplyTo, c.References, c.Created = 0, 0, "", "", nil, time.Time{}
			c.Data.OrigSubject = ""
			a.notes = append(a.notes, c)
		}
		return nil
	}); err != nil {
		f.t.Fatal(err)
	}
	return a
}

func TestAnswerFromAPIEqualsEmail(t *testing.T) {
	answerAt := arrival.Add(2 * time.Hour)
	for _, tc := range []struct {
		name, customer, text string
		wantKind             string // the notification R14 asks for; "" none
		wantStatus           string
	}{
		{"answer by email (R14)", "info@bakkerijdevries.nl", "Goedemorgen,\n\nHerstart de kassa.\n\nJan", helpdesk.KindAnswer, helpdesk.StatusAnswered},
		{"answer on the site (R14)", "kassa@slagerijjansen.nl", "Vervang de bonrol.", helpdesk.KindAnswerSite, helpdesk.StatusAnswered},
		{"#close with an answer", "info@bakkerijdevries.nl", "#close\n#urgent\nOpgelost.", helpdesk.KindAnswer, helpdesk.StatusClosed},
		{"#note only", "kassa@slagerijjansen.nl", "#note Klant belt terug.", "", helpdesk.StatusOpen},
		{"#assign only", "info@bakkerijdevries.nl", "#assign els@infobits.example", "", helpdesk.StatusOpen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAnswerFixture(t)
			var ids [2]uint64
			for i := range ids {
				out := f.apply(mailOpts{from: tc.customer, subject: "Vraag", msgID: fmt.Sprintf("q%d@customer", i), body: "Help."}, arrival)
				if out.Action != "new_ticket" {
					t.Fatalf("question: %s %s", out.Action, out.Detail)
				}
				ids[i] = out.TicketID
			}
			// By email, as staff would reply to the customer's question.
			byMail := f.apply(mailOpts{from: "Jan Bakker <jan@infobits.example>", subject: fmt.Sprintf("Re: [Infobits #%d] Vraag", ids[0]),
				msgID: "staff-1@infobits.example", inReplyTo: "q0@customer", body: tc.text}, answerAt)
			if byMail.Action != "staff_answer" {
				t.Fatalf("staff email: %s %s", byMail.Action, byMail.Detail)
			}
			// On the website.
			var byAPI desk.Outcome
			f.update(func(tx *store.Tx) (err error) {
				byAPI, err = f.desk.AnswerFromAPI(tx, ids[1], "Jan Bakker <Jan@Infobits.example>", tc.text, answerAt)
				return err
			})
			if byAPI.Action != "staff_answer" || byAPI.TicketID != ids[1] || byAPI.Notified != byMail.Notified || !byAPI.Arrival.Equal(answerAt) {
				t.Errorf("API outcome %+v, email outcome %+v", byAPI, byMail)
			}
			mail, web := f.state(ids[0], "q0@customer"), f.state(ids[1], "q1@customer")
			if fmt.Sprintf("%+v", mail) != fmt.Sprintf("%+v", web) {
				t.Errorf("the API answer differs from the emailed one:\nemail %+v\napi   %+v", mail, web)
			}
			if web.status != tc.wantStatus {
				t.Errorf("status %s, want %s", web.status, tc.wantStatus)
			}
			var kinds []string
			for _, n := range web.notes {
				kinds = append(kinds, n.Kind)
			}
			if want := slices.DeleteFunc([]string{tc.wantKind}, func(s string) bool { return s == "" }); !slices.Equal(kinds, want) {
				t.Errorf("notifications %v, want %v", kinds, want)
			}
		})
	}
}

// TestOutcomeArrival: Apply reports the email's arrival, for the latency metric.
func TestOutcomeArrival(t *testing.T) {
	f := newAnswerFixture(t)
	out := f.apply(mailOpts{from: "info@bakkerijdevries.nl", subject: "Vraag", msgID: "a@b", body: "x"}, arrival)
	if !out.Arrival.Equal(arrival) {
		t.Errorf("Outcome.Arrival = %v, want %v", out.Arrival, arrival)
	}
}

// TestAnswerFromAPIRefused: a non-staff author, an unknown ticket or a bad command write
// nothing and say which.
func TestAnswerFromAPIRefused(t *testing.T) {
	f := newAnswerFixture(t)
	id := f.apply(mailOpts{from: "info@bakkerijdevries.nl", subject: "Vraag", msgID: "q@customer", body: "Help."}, arrival).TicketID
	for _, tc := range []struct {
		name       string
		ticket     uint64
		from, text string
		want       error
	}{
		{"customer as author", id, "info@bakkerijdevries.nl", "Zelf opgelost.", desk.ErrNotStaff},
		{"no address", id, "Jan", "x", desk.ErrNotStaff},
		{"unknown ticket", 99, "jan@infobits.example", "x", helpdesk.ErrNotFound},
		{"unknown command", id, "jan@infobits.example", "#sluit\nKlaar.", desk.ErrStaffCommand},
		{"#assign to a stranger", id, "jan@infobits.example", "#assign piet@example.com", desk.ErrStaffCommand},
	} {
		err := f.db.Update(context.Background(), func(tx *store.Tx) error {
			_, err := f.desk.AnswerFromAPI(tx, tc.ticket, tc.from, tc.text, arrival)
			return err
		})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if a := f.state(id, "q@customer"); a.messages != 1 || a.status != helpdesk.StatusOpen || len(a.notes) != 0 {
		t.Errorf("refused answers changed the ticket: %+v", a)
	}
}
