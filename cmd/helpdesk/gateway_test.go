package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/notify/smtptest"
	"github.com/infobits/helpdesk/store"
)

// liveGateway is the wired gateway, in process, running against in-memory IMAP and a sink.
type liveGateway struct {
	appendMail func(raw []byte) error // delivers into the INBOX over a second IMAP connection
	sink       *smtptest.Server
	events     chan ingest.Event
	stop       func()
}

func startLiveGateway(tb testing.TB, kind string) *liveGateway {
	tb.Helper()
	var addr, user, pass string
	if kind == "dovecot" {
		d := imaptest.NewDovecot(tb)
		addr, user, pass = d.Addr, d.User, d.Password
	} else {
		m := imaptest.NewMem(tb, imaptest.MemOptions{})
		addr, user, pass = m.Addr, m.User, m.Password
	}
	appender, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { appender.Close() })
	if err := appender.Login(user, pass).Wait(); err != nil {
		tb.Fatal(err)
	}
	sink := smtptest.New(tb, smtptest.Options{})
	cfg, _, err := loadConfig("", nil)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.DB = filepath.Join(tb.TempDir(), "helpdesk.db")
	cfg.IMAPAddr, cfg.IMAPUser, cfg.IMAPPassword, cfg.IMAPTLS = addr, user, pass, "none"
	cfg.SMTPAddr, cfg.SMTPTLS = sink.Addr(), "none"
	cfg.From = "Infobits Helpdesk <support@infobits.example>"
	cfg.IMAPPoll = time.Hour // only IDLE may deliver in time
	db, err := store.Open(cfg.DB, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		return tx.PutCustomer(&store.Customer{Name: "Bakkerij de Vries", Emails: []string{"info@bakkerijdevries.nl"}, Tier: store.SLA8})
	}); err != nil {
		tb.Fatal(err)
	}
	events := make(chan ingest.Event, 4096)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := newGateway(&cfg, db, log, time.Now, gatewayOptions{events: events})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		gw.run(ctx)
	}()
	lg := &liveGateway{sink: sink, events: events, appendMail: func(raw []byte) error {
		cmd := appender.Append("INBOX", int64(len(raw)), nil)
		if _, err := cmd.Write(raw); err != nil {
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		_, err := cmd.Wait()
		return err
	}}
	lg.stop = func() {
		cancel()
		<-done
		db.Close()
	}
	tb.Cleanup(lg.stop)
	lg.waitIdle(tb)
	return lg
}

func (lg *liveGateway) waitIdle(tb testing.TB) {
	tb.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case ev := <-lg.events:
			if ev.Idling {
				return
			}
		case <-timer.C:
			tb.Fatal("the gateway never entered IDLE")
		}
	}
}

// TestIdleAckWithinOneSecond: in IDLE mode an email appended to the mailbox is a ticket and
// its acknowledgement is handed to SMTP within one second.
func TestIdleAckWithinOneSecond(t *testing.T) {
	lg := startLiveGateway(t, "mem")
	raw := customerMail("info@bakkerijdevries.nl", "Pinautomaat offline", "idle-1@b", "", "Hij doet het niet.")
	if err := lg.appendMail([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	msgs, err := lg.sink.Wait(ctx, 1)
	if err != nil {
		t.Fatalf("no acknowledgement at the SMTP server within 1s: %v", err)
	}
	if subj := headerOf(msgs[0].Data, "Subject"); subj != "[Infobits #1] Ontvangen: Pinautomaat offline" {
		t.Errorf("subject = %q", subj)
	}
}

// BenchmarkIdleToSMTP measures the time from APPEND (by a second client) to the
// acknowledgement's acceptance by the SMTP server, one email at a time, and reports the median
// and the 99th percentile. Against Dovecot the figure includes Dovecot's own ~0.5 s delay
// before it pushes EXISTS to an idling client.
func BenchmarkIdleToSMTP(b *testing.B) {
	for _, kind := range []string{"mem", "dovecot"} {
		b.Run(kind, func(b *testing.B) { benchIdleToSMTP(b, kind) })
	}
}

func benchIdleToSMTP(b *testing.B, kind string) {
	lg := startLiveGateway(b, kind)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		raw := customerMail("info@bakkerijdevries.nl", fmt.Sprintf("Vraag %d", i), fmt.Sprintf("bench-%d@b", i), "", "Tekst.")
		start := time.Now()
		if err := lg.appendMail([]byte(raw)); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := lg.sink.Wait(ctx, i+1)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// TestReadmeConfigTable: the README's configuration table is the Config struct.
func TestReadmeConfigTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_0-9]+)` \\| `(HELPDESK_[A-Z_0-9]+)` \\| (—|`[^`]*`) \\|")
	got := map[string][2]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		got[m[1]] = [2]string{m[2], strings.Trim(m[3], "`")}
	}
	for _, f := range configFields() {
		def := f.def
		if def == "" {
			def = "—"
		}
		if g, ok := got[f.key]; !ok {
			t.Errorf("README lacks config key %s", f.key)
		} else if g != [2]string{f.env, def} {
			t.Errorf("README row of %s = %v, want %s, default %s", f.key, g, f.env, def)
		}
		delete(got, f.key)
	}
	for k := range got {
		t.Errorf("README documents %s, which Config does not have", k)
	}
}

// TestExampleConfig: the annotated example parses and mentions every key.
func TestExampleConfig(t *testing.T) {
	const path = "../../deploy/helpdesk.conf.example"
	if _, _, err := loadConfig(path, nil); err != nil {
		t.Fatalf("example config: %v", err)
	}
	b, _ := os.ReadFile(path)
	for _, f := range configFields() {
		if !regexp.MustCompile(`(?m)^#? ?` + f.key + ` =`).Match(b) {
			t.Errorf("example config does not show %s", f.key)
		}
	}
}

func TestParseArgsInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
	}{
		{[]string{"12", "-json"}, []string{"12"}, true},
		{[]string{"-json", "12"}, []string{"12"}, true},
		{[]string{"12"}, []string{"12"}, false},
		{[]string{"--", "-json"}, []string{"-json"}, false},
	} {
		e := &env{stdout: io.Discard}
		fs, _ := newFlags(e, "t", "")
		j := fs.Bool("json", false, "")
		pos, err := parseArgs(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *j != tc.json {
			t.Errorf("parseArgs(%q) = %q, json=%v, %v; want %q, json=%v", tc.args, pos, *j, err, tc.pos, tc.json)
		}
	}
}
