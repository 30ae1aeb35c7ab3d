package desk_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/infobits/helpdesk/rules/calendar"
	"github.com/infobits/helpdesk/rules/policy"
)

// arrival is when the test emails reached the mailbox; tests never read the clock.
var arrival = time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)

// testRules are the gateway's rules with the default calendars (R7–R9) and the given limits,
// as ingest's tests use them.
func testRules(t *testing.T, lim policy.Limits) policy.Rules {
	t.Helper()
	cals, err := calendar.NewSet(nil, calendar.Rules{DutchHolidays: true})
	if err != nil {
		t.Fatal(err)
	}
	return policy.Rules{Staff: []string{"jan@infobits.example"}, TicketTag: "Infobits",
		Own: []string{"support@infobits.example"}, Calendars: cals, Limits: lim,
		UrgentWords: []string{"SPOED", "URGENT"}, CallbackWords: []string{"terugbellen", "anydesk"}}
}

// mailOpts describe a test email.
type mailOpts struct {
	from, to, subject, msgID, inReplyTo, references, body string
	extra                                                 []string // more header lines
}

// buildMail writes a plain-text email as a mail client would.
func buildMail(o mailOpts) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", o.from)
	if o.to == "" {
		o.to = "support@infobits.example"
	}
	fmt.Fprintf(&b, "To: %s\r\nSubject: %s\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\n", o.to, o.subject)
	if o.msgID != "" {
		fmt.Fprintf(&b, "Message-ID: <%s>\r\n", o.msgID)
	}
	if o.inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\n", o.inReplyTo)
	}
	if o.references != "" {
		fmt.Fprintf(&b, "References: %s\r\n", o.references)
	}
	for _, h := range o.extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(strings.ReplaceAll(o.body, "\n", "\r\n") + "\r\n")
	return []byte(b.String())
}
