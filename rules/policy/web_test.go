package policy_test

import (
	"testing"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/policy"
)

// The site's forms go through the rules of an email, and a choice the rules refuse is a
// refusal, not a quiet change (R11–R13).
func TestDecideWebTicket(t *testing.T) {
	p := policy.New(policy.Rules{TicketTag: "Infobits", StaffList: "team@infobits.nl", Limits: policy.Limits{OpenTickets: 1}})
	v := newView()
	arrears := &helpdesk.Customer{ID: 3, Name: "Café", Emails: []string{"cafe@example.nl"}, Tier: helpdesk.SLA8, Arrears: true}
	v.customers["cafe@example.nl"] = arrears
	bakker, slager := v.customers["info@bakkerij.nl"], v.customers["kassa@slagerij.nl"]
	// R3: with expired online support a customer still creates tickets, served as SLA24.
	expired := &helpdesk.Customer{ID: 4, Name: "Verlopen", Emails: []string{"oud@example.nl"}, Tier: helpdesk.SLA8,
		ValidUntil: helpdesk.Date{Year: 2026, Month: 10, Day: 31}}
	v.customers["oud@example.nl"] = expired
	for _, c := range []struct {
		name     string
		c        *helpdesk.Customer
		ch       policy.WebChoices
		refusal  string
		priority string
		followup string
		payment  string
	}{
		{"SLA8 urgent on the site", bakker, policy.WebChoices{Urgent: true, Contact: policy.ContactSite}, "", helpdesk.PriorityUrgent, helpdesk.FollowupSite, ""},
		{"SLA8 postpaid callback", bakker, policy.WebChoices{Contact: policy.ContactCallbackPostpaid}, "", helpdesk.PriorityNormal, helpdesk.FollowupCallback, helpdesk.PaymentPostpaid},
		{"SLA8 by email", bakker, policy.WebChoices{Contact: policy.ContactEmail}, "", helpdesk.PriorityNormal, helpdesk.FollowupEmail, ""},
		{"arrears postpaid", arrears, policy.WebChoices{Contact: policy.ContactCallbackPostpaid}, policy.RefusePostpaid, "", "", ""},
		{"arrears prepaid", arrears, policy.WebChoices{Contact: policy.ContactCallbackPrepaid}, "", helpdesk.PriorityNormal, helpdesk.FollowupCallback, helpdesk.PaymentPrepaid},
		{"SLA24 urgent", slager, policy.WebChoices{Urgent: true, Contact: policy.ContactEmail}, policy.RefuseUrgentSLA24, "", "", ""},
		{"SLA24 postpaid", slager, policy.WebChoices{Contact: policy.ContactCallbackPostpaid}, policy.RefusePostpaid, "", "", ""},
		{"SLA24 over the open-tickets limit", slager, policy.WebChoices{Contact: policy.ContactEmail}, policy.RefuseLimit, "", "", ""},
		{"no contact choice", bakker, policy.WebChoices{}, policy.RefuseContact, "", "", ""},
		{"expired SLA8 by email", expired, policy.WebChoices{Contact: policy.ContactEmail}, "", helpdesk.PriorityNormal, helpdesk.FollowupEmail, ""},
		{"expired SLA8 urgent", expired, policy.WebChoices{Urgent: true, Contact: policy.ContactEmail}, policy.RefuseUrgentSLA24, "", "", ""},
	} {
		e := mail(c.c.Emails[0], "Vraag")
		d, rf, err := p.DecideWebTicket(c.c, c.ch, e, v)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.refusal != "" {
			if rf == nil || rf.Code != c.refusal {
				t.Errorf("%s: refusal %v, want %s", c.name, rf, c.refusal)
			}
			continue
		}
		if rf != nil || d.Action != policy.ActionNewTicket || d.Plan.Priority != c.priority || d.Plan.Followup != c.followup || d.Plan.Payment != c.payment {
			t.Errorf("%s: refusal %v, action %v, plan %+v; want a new ticket %s/%s/%s", c.name, rf, d.Action, d.Plan, c.priority, c.followup, c.payment)
		}
		if len(d.Notify) != 2 || d.Notify[0].Kind != helpdesk.KindAck || d.Notify[1].Kind != helpdesk.KindStaffNew {
			t.Errorf("%s: notices %v, want the acknowledgement and the staff notice", c.name, d.Notify)
		}
	}

	// A reply: to the customer's own ticket only, within the reply limit.
	p = policy.New(policy.Rules{TicketTag: "Infobits", Limits: policy.Limits{RepliesPerTicket: 2}})
	if _, _, err := p.DecideWebReply(slager, v.tickets[5], mail(slager.Emails[0], "Re"), v); err == nil {
		t.Errorf("a reply to another customer's ticket was decided")
	}
	v.tickets[6].Replies = 2
	if _, rf, _ := p.DecideWebReply(slager, v.tickets[6], mail(slager.Emails[0], "Re"), v); rf == nil || rf.Limit == nil || rf.Limit.Kind != policy.LimitRepliesPerTicket {
		t.Errorf("a reply over the SLA24 limit: refusal %v", rf)
	}
	if d, rf, _ := p.DecideWebReply(bakker, v.tickets[7], mail(bakker.Emails[0], "Re"), v); rf != nil || d.Action != policy.ActionReply || !d.Reopen {
		t.Errorf("SLA8's reply to a closed ticket: %v %v, want a reply that reopens it", d.Action, rf)
	}
}
