package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/store"
)

// import takes an existing mailbox — an archive of past support mail — through the same
// ingest path as the gateway's own mailbox: the real poller, with its checkpoint and dedupe,
// and an dk that queues no notification at all. It is a database command: while a
// gateway runs, the gateway runs it (over the control socket) beside its own poller.

const importArgs = "-mailbox NAME [-since YYYY-MM-DD] [-rescan]"

// importing holds the mailboxes an import is running on in this process: two pollers on one
// checkpoint would undo each other's progress.
var importing = struct {
	sync.Mutex
	names map[string]bool
}{names: map[string]bool{}}

func runImport(e *env, args []string) error {
	fs, _ := newFlags(e, "import", importArgs)
	mailbox := fs.String("mailbox", "", "the IMAP `folder` to import, e.g. Archief (as the server names it: some want INBOX.Archief)")
	since := fs.String("since", "", "pass over emails that reached the mailbox before this `day` (YYYY-MM-DD, Amsterdam time); later runs pass over them too")
	rescan := fs.Bool("rescan", false, "read the mailbox again from its first email: emails passed over by an earlier -since are taken in now (those imported before count as duplicates)")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	if *mailbox == "" {
		return fmt.Errorf("%w: -mailbox is required: the IMAP folder to import", errUsage)
	}
	var from time.Time
	if *since != "" {
		t, err := time.ParseInLocation(time.DateOnly, *since, helpdesk.Amsterdam())
		if err != nil {
			return fmt.Errorf("%w: -since %q: want a day YYYY-MM-DD", errUsage, *since)
		}
		from = t
	}
	cfg, err := e.config(args)
	if err != nil {
		return err
	}
	if err := cfg.require(append(cfg.imapKeys(), "from")...); err != nil {
		return err
	}
	if e.remote && *mailbox == cfg.IMAPMailbox {
		return fmt.Errorf("mailbox %q is the one this gateway reads (imap_mailbox): it takes that in itself; import is for other folders", *mailbox)
	}
	importing.Lock()
	busy := importing.names[*mailbox]
	importing.names[*mailbox] = true
	importing.Unlock()
	if busy {
		return fmt.Errorf("an import of %q is already running in this gateway; wait for it to finish", *mailbox)
	}
	defer func() {
		importing.Lock()
		delete(importing.names, *mailbox)
		importing.Unlock()
	}()

	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	prog := newProgress(e.stdout, e.now, cancel)
	log, err := importLogger(e, cfg, prog)
	if err != nil {
		return err
	}
	// "mailbox" is a key of ingest's own lines: the import's folder gets another.
	log = log.With("component", "import", "import_mailbox", *mailbox)
	dk, err := newDesk(cfg, e.now)
	if err != nil {
		return err
	}
	dk.Quiet = true // an archive was answered long ago: nothing is sent about it

	// A look first, for a clear error: the mailbox that is not there, with the ones that are.
	tokens, err := cfg.oauthSource(e.now)
	if err != nil {
		return err
	}
	facts, err := probeIMAP(ctx, cfg, tokens, *mailbox, 0)
	if err != nil {
		return err
	}
	if !facts.Exists {
		return fmt.Errorf("IMAP mailbox %q does not exist on %s; the account has: %s (names are case-sensitive): give one of them with -mailbox",
			*mailbox, cfg.IMAPAddr, mailboxList(facts))
	}
	if *rescan {
		if err := e.db.Update(ctx, func(tx *store.Tx) error {
			st, err := tx.Mailbox(*mailbox)
			if err != nil || st.LastUID == 0 {
				return err
			}
			st.LastUID = 0
			return tx.PutMailbox(st)
		}); err != nil {
			return err
		}
	}

	// The poller does not wait for a listener: the buffer outlasts any batch many times over.
	events := make(chan ingest.Event, 1<<14)
	poller, err := ingest.New(ingest.Config{
		Addr: cfg.IMAPAddr, User: cfg.IMAPUser, Password: cfg.IMAPPassword, OAuth: tokens, TLS: cfg.IMAPTLS,
		TLSConfig: withServerName(nil, cfg.IMAPAddr), Mailbox: *mailbox,
		// MoveTo stays empty: an archive is left where it is (its mail is flagged \Seen).
		MaxMessageBytes: cfg.MaxMessageBytes, Since: from, Parse: e.parseLimits, Desk: dk, Logger: log,
	}, e.db, events)
	if err != nil {
		return err
	}
	log.Info("import started", "messages", facts.Messages, "since", *since, "rescan", *rescan)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for ev := range events {
			prog.observe(ev)
		}
	}()
	stopDraw := prog.run()
	runErr := poller.Once(ctx)
	close(events)
	<-consumed
	done, total := prog.counts()
	started := runErr == nil || done > 0 || total > 0
	stopDraw(started)
	if started {
		fmt.Fprint(e.stdout, prog.summary(*mailbox, from))
	}
	log.Info("import finished", "emails", done, "listed", total, "elapsed", prog.elapsed().Round(time.Millisecond).String(), "err", runErr)
	switch {
	case runErr != nil:
		return fmt.Errorf("%w; %d of %d emails imported: run the same command again to go on", runErr, done, total)
	case ctx.Err() != nil && e.ctx.Err() == nil && prog.writeErr() != nil:
		return fmt.Errorf("the command's output could not be written (%v): stopped after %d of %d emails; run it again to go on", prog.writeErr(), done, total)
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted after %d of %d emails: run the same command again to go on (what is imported stays)", done, total)
	}
	return nil
}

// importLogger is the logger of the per-email lines: the gateway's when the import runs in
// it, else the configured one on stderr. When stderr is the terminal the bar is drawn on, a
// line per email would scroll the bar away (thousands of lines for an archive): there only
// warnings and errors are written, above the bar (barWriter clears it before a line and
// draws it again after), and the summary counts the outcomes. Stderr sent to a file or a pipe
// (2>import.log) gets every line, in the configured format.
func importLogger(e *env, cfg *Config, prog *progress) (*slog.Logger, error) {
	if e.log != nil {
		return e.log, nil
	}
	if prog.tty && isTerminal(e.stderr) {
		format := cfg.LogFormat
		if format == "auto" || format == "" {
			format = "text"
		}
		level := cfg.LogLevel
		if lv := new(slog.Level); lv.UnmarshalText([]byte(level)) == nil && *lv < slog.LevelWarn {
			level = "warn"
		}
		return newLogger(&barWriter{p: prog, w: e.stderr}, format, level)
	}
	return newLogger(e.stderr, cfg.LogFormat, cfg.LogLevel)
}

// isTerminal reports whether w is a character device (a terminal): over the control socket,
// or into a pipe or file, it is not.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress counts the outcomes of an import and shows them: a bar redrawn in place on a
// terminal, else a line every lineEvery ("imported 1200/10000 (12%), 450/s, ETA 19s").
type progress struct {
	w      io.Writer
	tty    bool
	now    func() time.Time
	cancel func() // the output is gone (the client left): stop importing

	mu       sync.Mutex
	start    time.Time
	total    int // listed to take in
	skipped  int // passed over (-since)
	done     int
	actions  map[string]int // outcome → count
	held     map[string]int // held reason → count
	drawn    bool           // the bar is on the screen
	err      error          // writing failed
	lastLine time.Time
}

const (
	lineEvery = 2 * time.Second
	drawEvery = 200 * time.Millisecond
	barWidth  = 30
)

func newProgress(w io.Writer, now func() time.Time, cancel func()) *progress {
	return &progress{w: w, tty: isTerminal(w), now: now, cancel: cancel, start: now(),
		actions: map[string]int{}, held: map[string]int{}}
}

func (p *progress) observe(ev ingest.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total += ev.Listed
	p.skipped += ev.Skipped
	if o := ev.Outcome; o != nil {
		p.done++
		p.actions[o.Action]++
		// Held, or a delivery report kept as a held email; a duplicate of a held email was
		// counted when it was held, and is a duplicate now.
		if o.Action != "duplicate" && (o.Action == "held" || o.HeldID != 0) {
			p.held[o.Reason]++
		}
	}
}

func (p *progress) counts() (done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done, p.total
}

func (p *progress) elapsed() time.Duration { return max(p.now().Sub(p.start), 0) }

func (p *progress) writeErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// run starts the clock and draws until the returned stop is called; stop draws the final
// state when final is true.
func (p *progress) run() (stop func(final bool)) {
	p.start = p.now()
	quit, finished := make(chan struct{}), make(chan struct{})
	every := lineEvery
	if p.tty {
		every = drawEvery
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				p.mu.Lock()
				if p.tty {
					p.drawLocked()
				} else if p.total > 0 || p.done > 0 {
					p.writeLocked(p.lineLocked() + "\n")
				}
				p.mu.Unlock()
			}
		}
	}()
	return func(final bool) {
		close(quit)
		<-finished
		p.mu.Lock()
		defer p.mu.Unlock()
		switch {
		case p.tty && (final || p.drawn):
			p.drawLocked()
			p.writeLocked("\n")
			p.drawn = false
		case final:
			p.writeLocked(p.lineLocked() + "\n")
		}
	}
}

// figures are the numbers of a progress line.
func (p *progress) figuresLocked() (pct int, rate, eta string) {
	total := max(p.total, p.done)
	pct = 100
	if total > 0 {
		pct = p.done * 100 / total
	}
	secs := p.elapsed().Seconds()
	r := 0.0
	if secs > 0 {
		r = float64(p.done) / secs
	}
	switch {
	case r >= 10:
		rate = fmt.Sprintf("%.0f", r)
	default:
		rate = fmt.Sprintf("%.1f", r)
	}
	switch left := total - p.done; {
	case left == 0:
		eta = "0s"
	case r == 0:
		eta = "?"
	default:
		eta = time.Duration(float64(left) / r * float64(time.Second)).Round(time.Second).String()
	}
	return pct, rate, eta
}

func (p *progress) lineLocked() string {
	pct, rate, eta := p.figuresLocked()
	return fmt.Sprintf("imported %d/%d (%d%%), %s/s, ETA %s", p.done, max(p.total, p.done), pct, rate, eta)
}

// drawLocked redraws the bar in place: \r, the bar, and clear to the end of the line.
func (p *progress) drawLocked() {
	pct, rate, eta := p.figuresLocked()
	fill := pct * barWidth / 100
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", barWidth-fill)
	if fill > 0 && fill < barWidth {
		bar = strings.Repeat("=", fill-1) + ">" + strings.Repeat(" ", barWidth-fill)
	}
	p.writeLocked(fmt.Sprintf("\r[%s] %d/%d %3d%%  %s/s  ETA %s\033[K", bar, p.done, max(p.total, p.done), pct, rate, eta))
	p.drawn = true
}

func (p *progress) writeLocked(s string) {
	if p.err != nil {
		return
	}
	if _, err := io.WriteString(p.w, s); err != nil {
		p.err = err
		p.cancel()
	}
}

// summary is the report printed at the end.
func (p *progress) summary(mailbox string, since time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "import of mailbox %q: %d email(s) in %s\n", mailbox, p.done, p.elapsed().Round(time.Millisecond))
	row := func(what string, n int, detail string) {
		fmt.Fprintf(&b, "  %-14s %d%s\n", what+":", n, detail)
	}
	newDetail := ""
	if p.actions["new_ticket"] > 0 {
		newDetail = " (closed, without a deadline: an archive is history)"
	}
	row("new tickets", p.actions["new_ticket"], newDetail)
	row("replies", p.actions["reply"], "")
	if n := p.actions["staff_answer"]; n > 0 {
		row("staff answers", n, "")
	}
	if n := p.actions["bounce"]; n > 0 {
		row("bounces", n, "")
	}
	var reasons []string
	for _, r := range slices.Sorted(maps.Keys(p.held)) {
		reasons = append(reasons, fmt.Sprintf("%s %d", r, p.held[r]))
	}
	heldDetail := ""
	if len(reasons) > 0 {
		heldDetail = " (" + strings.Join(reasons, ", ") + "; see helpdesk ticket held)"
	}
	held := 0
	for _, n := range p.held {
		held += n
	}
	row("held", held, heldDetail)
	row("duplicates", p.actions["duplicate"], " (imported before)")
	if !since.IsZero() || p.skipped > 0 {
		row("passed over", p.skipped, fmt.Sprintf(" (arrived before %s)", since.Format(time.DateOnly)))
	}
	b.WriteString("  notifications: none (an import sends nothing)\n")
	return b.String()
}

// barWriter writes log lines on the terminal the bar is drawn on: it clears the bar first
// and draws it again after, so the bar stays the last line.
type barWriter struct {
	p *progress
	w io.Writer
}

func (bw *barWriter) Write(b []byte) (int, error) {
	bw.p.mu.Lock()
	defer bw.p.mu.Unlock()
	if bw.p.drawn {
		bw.p.writeLocked("\r\033[K")
	}
	n, err := bw.w.Write(b)
	if bw.p.drawn {
		bw.p.drawLocked()
	}
	return n, err
}
