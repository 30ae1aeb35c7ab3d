package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/infobits/helpdesk/ingest"
)

// runPoller runs the fixture's poller until the test ends and waits until it idles.
func (f *fixture) runPoller(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.poller.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, f.events, func(ev ingest.Event) bool { return ev.Idling }, 60*time.Second)
}

// pushedOneByOne delivers n emails, each after the previous one was taken in, and fails when
// one is not taken in: with the poll interval at an hour, only the server's push (IDLE) can
// bring it in before the generous deadline.
func (f *fixture) pushedOneByOne(t *testing.T, tag string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("%s-%d@bakkerijdevries.nl", tag, i)
		f.deliver(buildMail(mailOpts{from: "info@bakkerijdevries.nl", subject: fmt.Sprintf("Vraag %s %d", tag, i), msgID: id, body: "x"}))
		timer := time.NewTimer(60 * time.Second)
	wait:
		for {
			select {
			case ev := <-f.events:
				if ev.Outcome != nil && ev.Outcome.MessageID == id {
					if ev.Outcome.Action != "new_ticket" {
						t.Errorf("email %d became %+v, want a new ticket", i, ev.Outcome)
					}
					break wait
				}
			case <-timer.C:
				t.Fatalf("email %d of %d (%s) was not taken in on the server's push (poll interval 1h; waited 60 s)", i, n, tag)
			}
		}
		timer.Stop()
	}
}

// TestMoveToPickupOnPush: with imap_move_to set, every email is taken in on
// the server's push, not only the first. Moving empties the mailbox after each email, so the
// next one's EXISTS repeats a count the poller had already seen.
func TestMoveToPickupOnPush(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, func(c *ingest.Config) {
			c.MoveTo = "Verwerkt"
			c.PollInterval = time.Hour // only the push can deliver in time
		})
		f.runPoller(t)
		f.pushedOneByOne(t, "verplaatst", 10)
		if kind == "mem-rev1" {
			return // no MOVE: the mail stays, flagged (TestMoveToFolder)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			n, _ := f.srv.status(t, "Verwerkt")
			inbox, _ := f.srv.status(t, "INBOX")
			if n == 10 && inbox == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Verwerkt has %d messages and INBOX %d; want 10 moved, 0 left", n, inbox)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// TestPickupOnPushAfterStaffDeletes: mail that staff delete from the support mailbox with
// their own client (another session's EXPUNGE, pushed during IDLE) does not stop the push of
// the next emails either.
func TestPickupOnPushAfterStaffDeletes(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind, func(c *ingest.Config) { c.PollInterval = time.Hour })
		f.runPoller(t)
		f.pushedOneByOne(t, "voor", 3)
		staff := f.srv.client(t)
		if _, err := staff.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if err := staff.Store(imap.SeqSetNum(1, 2, 3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
			Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
		if err := staff.Expunge().Close(); err != nil {
			t.Fatal(err)
		}
		if n, _ := f.srv.status(t, "INBOX"); n != 0 {
			t.Fatalf("INBOX has %d messages after staff deleted all three", n)
		}
		f.pushedOneByOne(t, "na", 3)
	})
}
