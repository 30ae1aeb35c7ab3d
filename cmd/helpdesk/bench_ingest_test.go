package main

// The performance benchmarks: ingest against the raw IMAP fetch limit, and (in
// bench_live_test.go) live arrival latency. They need Dovecot (apt-get install
// dovecot-imapd) and skip without it. Everything is reproduced by
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 60m ./cmd/helpdesk/
//
// Each benchmark prints Markdown table rows (lines starting with "|") for docs/BENCHMARKS.md
// and reports the same figures with b.ReportMetric. Nothing is asserted about speed: the
// figures are printed against the targets (docs/BENCHMARKS.md). What is asserted is that the work was
// done: every email generated is a ticket message or a held email afterwards.
//
// HDBENCH_SCALE (default 1) multiplies the number of emails of every workload, for a quick
// try (HDBENCH_SCALE=0.1); the published figures are taken at 1.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/ingest/imaptest"
	"github.com/infobits/helpdesk/store"
)

const (
	mib = 1 << 20
	// benchMaxMessageBytes is the gateway's max_message_bytes in the benchmarks: W3's 25 MB
	// email must be fetched, not held as too large.
	benchMaxMessageBytes = 32 * mib
	// rssBase is the fixed part of the memory target: the gateway's own memory (peak RssAnon)
	// at most 64 MiB + 2 × the largest email. The pages of the memory-mapped database are the
	// kernel's cache, not the gateway's memory; VmHWM, which counts them, is reported beside it.
	rssBase = 64 * mib
)

// benchWorkload is one mailbox of generated mail.
type benchWorkload struct {
	name      string // W1, W2, W3
	mailbox   string
	count     int // emails
	size      int // bytes asked of the generator
	senders   int // distinct customers the mail comes from
	batch     int // UIDs per UID FETCH of the raw baseline; 0: all in one
	attachAll bool
}

var (
	benchW1 = benchWorkload{name: "W1", mailbox: "W1", count: 10000, size: 3 << 10, senders: 200, batch: 500}
	benchW2 = benchWorkload{name: "W2", mailbox: "W2", count: 200, size: 1 << 20, senders: 50}
	// W3: one email of 25 MB (25.0e6 bytes); a real one is an attachment, and the generator's
	// attachment of size/3 random bytes, base64-encoded, adds ~0.45 × size to the text.
	benchW3 = benchWorkload{name: "W3", mailbox: "W3", count: 1, size: 16_830_000, senders: 1, attachAll: true}
)

// scaled applies HDBENCH_SCALE to the number of emails.
func (w benchWorkload) scaled() benchWorkload {
	if s, err := strconv.ParseFloat(os.Getenv("HDBENCH_SCALE"), 64); err == nil && s > 0 && s != 1 {
		w.count = max(1, int(math.Round(float64(w.count)*s)))
		w.senders = max(1, min(w.senders, w.count))
	}
	return w
}

// label names the workload with the mean size of its emails as generated.
func (w benchWorkload) label(f mailboxFill) string {
	return fmt.Sprintf("%s %d × %s", w.name, w.count, humanBytes(f.bytes/int64(max(f.emails, 1))))
}

// benchSenders are the customers' addresses; every workload registers them all.
func benchSenders(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("klant%03d@winkel%03d.nl", i, i)
	}
	return s
}

// mailboxFill is what was appended.
type mailboxFill struct {
	emails  int
	bytes   int64 // sum of the raw sizes
	largest int64
	elapsed time.Duration
}

// fillMailbox creates the workload's mailbox and appends its generated mail (generation runs
// ahead in its own goroutine) over one connection: pipelined MULTIAPPEND commands (RFC 3502)
// of up to fillBatch emails / fillBatchBytes each, every literal sent as LITERAL+ (RFC 7888)
// without waiting for a continuation, while a second goroutine reads the tagged answers.
//
// Not go-imap's Append, even pipelined: go-imap has no MULTIAPPEND, and Dovecot (Maildir)
// pays a cost per APPEND transaction that grows with the mailbox — pipelined single APPENDs
// on one connection filled 2,000 emails in 1.9 s, 5,000 in 8.4 s and 10,000 in 32 s; four
// connections did worse (5,000 in 12.5 s). MULTIAPPEND makes one transaction of 100 emails:
// 5,000 in 1.3 s.
func fillMailbox(tb testing.TB, d *imaptest.Dovecot, w benchWorkload, seed uint64) mailboxFill {
	tb.Helper()
	const (
		fillBatch      = 100
		fillBatchBytes = 16 << 20
	)
	gen := imaptest.NewGenerator(seed, benchSenders(w.senders))
	if w.attachAll {
		gen.AttachShare = 1
	}
	raws := make(chan []byte, 256)
	go func() {
		defer close(raws)
		for range w.count {
			raws <- gen.Next(w.size)
		}
	}()

	conn, err := net.DialTimeout("tcp", d.Addr, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	wr := bufio.NewWriterSize(conn, 1<<20)
	// command sends one command and reads up to its tagged answer, returning the untagged
	// lines before it.
	command := func(tag, cmd string) []string {
		tb.Helper()
		fmt.Fprintf(wr, "%s %s\r\n", tag, cmd)
		if err := wr.Flush(); err != nil {
			tb.Fatal(err)
		}
		var untagged []string
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				tb.Fatalf("%s: %v", cmd, err)
			}
			if strings.HasPrefix(line, tag+" ") {
				if !strings.HasPrefix(line, tag+" OK") {
					tb.Fatalf("%s: %s", strings.Fields(cmd)[0], strings.TrimSpace(line))
				}
				return untagged
			}
			untagged = append(untagged, line)
		}
	}
	if _, err := rd.ReadString('\n'); err != nil { // the greeting
		tb.Fatal(err)
	}
	command("l", fmt.Sprintf("LOGIN %s %s", strconv.Quote(d.User), strconv.Quote(d.Password)))
	caps := strings.Join(command("c", "CAPABILITY"), " ")
	if !strings.Contains(caps, " LITERAL+") || !strings.Contains(caps, " MULTIAPPEND") {
		tb.Fatalf("the server lacks LITERAL+ or MULTIAPPEND: %s", caps)
	}
	if w.mailbox != "INBOX" {
		command("m", "CREATE "+strconv.Quote(w.mailbox))
	}

	var f mailboxFill
	start := time.Now()
	sent := make(chan string, 1<<14) // tags on the wire, in order
	answered := make(chan error, 1)
	go func() {
		for tag := range sent {
			for {
				line, err := rd.ReadString('\n')
				if err != nil {
					answered <- err
					return
				}
				if strings.HasPrefix(line, tag+" ") {
					if !strings.HasPrefix(line, tag+" OK") {
						answered <- fmt.Errorf("APPEND to %s: %s", w.mailbox, strings.TrimSpace(line))
						return
					}
					break
				}
			}
		}
		answered <- nil
	}()
	var batch [][]byte
	var batchBytes int
	flush := func() {
		if len(batch) == 0 {
			return
		}
		tag := fmt.Sprintf("a%d", f.emails)
		fmt.Fprintf(wr, "%s APPEND %s", tag, strconv.Quote(w.mailbox))
		for _, raw := range batch {
			fmt.Fprintf(wr, " {%d+}\r\n", len(raw))
			wr.Write(raw)
			f.emails++
			f.bytes += int64(len(raw))
			f.largest = max(f.largest, int64(len(raw)))
		}
		wr.WriteString("\r\n")
		sent <- tag
		batch, batchBytes = batch[:0], 0
	}
	for raw := range raws {
		if len(batch) > 0 && (len(batch) >= fillBatch || batchBytes+len(raw) > fillBatchBytes) {
			flush()
		}
		batch = append(batch, raw)
		batchBytes += len(raw)
	}
	flush()
	close(sent)
	if err := wr.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := <-answered; err != nil {
		tb.Fatal(err)
	}
	f.elapsed = time.Since(start)
	status := strings.Join(command("s", "STATUS "+strconv.Quote(w.mailbox)+" (MESSAGES)"), "")
	if !strings.Contains(status, fmt.Sprintf("(MESSAGES %d)", w.count)) {
		tb.Fatalf("mailbox %s after the fill: %s, want %d messages", w.mailbox, strings.TrimSpace(status), w.count)
	}
	command("z", "LOGOUT")
	return f
}

// rawResult is what a raw fetch read, and how long it took.
type rawResult struct {
	emails  int
	bytes   int64 // literal bytes read
	elapsed time.Duration
}

// rawFetch is the baseline: a plain go-imap loop that logs in, SELECTs, lists the UIDs and
// fetches every message with batched UID FETCH (UID BODY.PEEK[]), reading each literal to the
// end and keeping nothing. The login is inside the timed part, as it is in the import's.
func rawFetch(tb testing.TB, d *imaptest.Dovecot, mailbox string, batch int) rawResult {
	tb.Helper()
	start := time.Now()
	c, err := d.Dial()
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		tb.Fatalf("select %s: %v", mailbox, err)
	}
	sd, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		tb.Fatalf("uid search: %v", err)
	}
	uids := sd.AllUIDs()
	if batch <= 0 {
		batch = len(uids)
	}
	var r rawResult
	buf := make([]byte, 256<<10)
	section := &imap.FetchItemBodySection{Peek: true}
	for len(uids) > 0 {
		n := min(batch, len(uids))
		cmd := c.Fetch(imap.UIDSetNum(uids[:n]...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
		uids = uids[n:]
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			for item := msg.Next(); item != nil; item = msg.Next() {
				if body, ok := item.(imapclient.FetchItemDataBodySection); ok {
					k, err := io.CopyBuffer(io.Discard, body.Literal, buf)
					if err != nil {
						tb.Fatalf("raw fetch: %v", err)
					}
					r.bytes += k
					r.emails++
				}
			}
		}
		if err := cmd.Close(); err != nil {
			tb.Fatalf("raw fetch: %v", err)
		}
	}
	c.Logout().Wait()
	r.elapsed = time.Since(start)
	return r
}

// buildBenchBinary builds the helpdesk binary without -race (TestMain's binPath is a race
// build, several times slower) into a fresh temporary directory.
func buildBenchBinary(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "helpdesk")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// benchGateway is a gateway's configuration (environment) and database in a temp directory.
type benchGateway struct {
	bin, dir, db string
	env          []string
}

// newBenchGateway prepares a fresh database with the generator's senders registered as SLA8
// customers with a contract (no SLA24 limits hold their mail), through `customer import`.
// The log is JSON at level warn: `import` logs one line per email at info, and writing 10,000
// lines is not what the benchmark is about.
func newBenchGateway(tb testing.TB, bin string, d *imaptest.Dovecot, senders int, extra ...string) *benchGateway {
	tb.Helper()
	dir := tb.TempDir()
	g := &benchGateway{bin: bin, dir: dir, db: filepath.Join(dir, "helpdesk.db")}
	g.env = append([]string{
		"HELPDESK_DB=" + g.db,
		"HELPDESK_IMAP_ADDR=" + d.Addr, "HELPDESK_IMAP_USER=" + d.User, "HELPDESK_IMAP_PASSWORD=" + d.Password,
		"HELPDESK_IMAP_TLS=none", "HELPDESK_FROM=Infobits Helpdesk <support@infobits.example>",
		"HELPDESK_STAFF=jan@infobits.example", "HELPDESK_AUTHSERV_ID=" + trustedMX,
		"HELPDESK_SITE_URL=https://helpdesk.infobits.example",
		"HELPDESK_MAX_MESSAGE_BYTES=" + strconv.Itoa(benchMaxMessageBytes),
		"HELPDESK_LOG_FORMAT=json", "HELPDESK_LOG_LEVEL=warn", "HELPDESK_HTTP_ADDR=",
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
	}, extra...)
	if v := os.Getenv("HDBENCH_GOMEMLIMIT"); v != "" {
		g.env = append(g.env, "GOMEMLIMIT="+v) // the gateway's soft memory limit instead of its own
	}
	var csv strings.Builder
	csv.WriteString("email,name,sla,valid_until,contract\n")
	for i, a := range benchSenders(senders) {
		fmt.Fprintf(&csv, "%s,Winkel %03d,SLA8,2099-12-31,ja\n", a, i)
	}
	file := filepath.Join(dir, "customers.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	want := fmt.Sprintf("imported: %d created, 0 updated, 0 unchanged, 0 rejected\n", senders)
	if out := g.mustRun(tb, "customer", "import", file); !strings.HasSuffix(out, want) {
		tb.Fatalf("customer import: %q, want %q", out, want)
	}
	return g
}

// run runs the binary to the end and returns its output and resource usage.
func (g *benchGateway) run(tb testing.TB, args ...string) (stdout, stderr string, ps *os.ProcessState, elapsed time.Duration) {
	tb.Helper()
	cmd := exec.Command(g.bin, args...)
	cmd.Env = g.env
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	elapsed = time.Since(start)
	if err != nil {
		tb.Fatalf("helpdesk %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, so.String(), tail(se.String(), 4000))
	}
	return so.String(), se.String(), cmd.ProcessState, elapsed
}

// procMeasure is what measure saw of one run of the binary.
type procMeasure struct {
	elapsed  time.Duration
	peakRSS  int64         // VmHWM of /proc/PID/status, the kernel's high-water mark of the resident set
	peakAnon int64         // peak RssAnon, sampled every 5 ms: the process's own memory (heap, stacks)
	peakFile int64         // peak RssFile, likewise: pages of the binary and of the mapped database
	cpu      time.Duration // user + system CPU time
}

// measure runs the binary like run, sampling /proc/PID/status every 5 ms while it runs:
// VmHWM (the peak resident set, kept by the kernel, so the last sample holds it), and the peaks
// of RssAnon and RssFile. bbolt maps the database file, and the pages of it the process has
// read count in its RSS (RssFile): clean page-cache pages the kernel takes back under
// pressure, not memory the gateway holds. RssAnon is the gateway's own.
//
// Not ru_maxrss: os/exec starts the child with vfork (CLONE_VM), and Linux records the
// parent's — this benchmark's — high-water mark as the child's when the child execs, so
// ru_maxrss reported the benchmark's memory (143 MiB for W3) instead of the gateway's (109).
func (g *benchGateway) measure(tb testing.TB, args ...string) (stdout string, m procMeasure) {
	tb.Helper()
	cmd := exec.Command(g.bin, args...)
	cmd.Env = g.env
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("helpdesk %s: %v", strings.Join(args, " "), err)
	}
	done := make(chan struct{})
	sampled := make(chan [3]int64)
	go func() {
		var peak [3]int64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			for i, field := range []string{"RssAnon", "RssFile", "VmHWM"} {
				if kib, err := procStatusKiB(cmd.Process.Pid, field); err == nil {
					peak[i] = max(peak[i], kib<<10)
				}
			}
			select {
			case <-done:
				sampled <- peak
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	m.elapsed = time.Since(start)
	close(done)
	peaks := <-sampled
	m.peakAnon, m.peakFile, m.peakRSS = peaks[0], peaks[1], peaks[2]
	if err != nil {
		tb.Fatalf("helpdesk %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, so.String(), tail(se.String(), 4000))
	}
	m.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return so.String(), m
}

func (g *benchGateway) mustRun(tb testing.TB, args ...string) string {
	tb.Helper()
	out, _, _, _ := g.run(tb, args...)
	return out
}

// accounted counts what the database holds: the thread messages of every ticket and the
// held emails (released or not), read back through the binary's JSON.
func (g *benchGateway) accounted(tb testing.TB) (tickets, messages, held int) {
	tb.Helper()
	var list []struct {
		Messages int `json:"messages"`
	}
	if err := json.Unmarshal([]byte(g.mustRun(tb, "ticket", "list", "-json")), &list); err != nil {
		tb.Fatalf("ticket list -json: %v", err)
	}
	for _, t := range list {
		messages += t.Messages
	}
	var hl []json.RawMessage
	if err := json.Unmarshal([]byte(g.mustRun(tb, "ticket", "held", "-json", "-all")), &hl); err != nil {
		tb.Fatalf("ticket held -json: %v", err)
	}
	return len(list), messages, len(hl)
}

var importSummaryRE = regexp.MustCompile(`(?m)^import of mailbox "[^"]*": (\d+) email\(s\) in (\S+)$`)

// BenchmarkIngestW1 — 10,000 emails of ~3 KB.
func BenchmarkIngestW1(b *testing.B) { benchIngest(b, benchW1.scaled()) }

// BenchmarkIngestW2 — 200 emails of ~1 MB.
func BenchmarkIngestW2(b *testing.B) { benchIngest(b, benchW2.scaled()) }

// BenchmarkIngestW3 — one email of 25 MB (max_message_bytes raised to 32 MiB).
func BenchmarkIngestW3(b *testing.B) { benchIngest(b, benchW3) }

// benchIngest fills the workload's mailbox, then per iteration: the raw fetch, `helpdesk
// import` of the mailbox into a fresh database, the raw fetch again; the ratio is taken
// against the faster raw run (the limit the machine showed in this run).
func benchIngest(b *testing.B, w benchWorkload) {
	d := imaptest.NewDovecot(b)
	bin := buildBenchBinary(b)
	fill := fillMailbox(b, d, w, 7)
	b.Logf("%s: filled %d emails, %s, in %v (%.0f emails/s)", w.label(fill), fill.emails, humanBytes(fill.bytes),
		fill.elapsed.Round(time.Millisecond), float64(fill.emails)/fill.elapsed.Seconds())

	var raw, gw time.Duration
	var rss, anon, file, dbSize int64
	var selfTime, cpu time.Duration
	var rawBytes int64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		r1 := rawFetch(b, d, w.mailbox, w.batch)
		if r1.emails != w.count || r1.bytes != fill.bytes {
			b.Fatalf("raw fetch read %d emails, %d bytes; want %d, %d", r1.emails, r1.bytes, w.count, fill.bytes)
		}
		g := newBenchGateway(b, bin, d, w.senders)
		b.StartTimer()
		out, pm := g.measure(b, "import", "-mailbox", w.mailbox)
		elapsed := pm.elapsed
		b.StopTimer()
		r2 := rawFetch(b, d, w.mailbox, w.batch)
		raw += min(r1.elapsed, r2.elapsed)
		rawBytes = r1.bytes
		gw += elapsed
		rss, anon, file = max(rss, pm.peakRSS), max(anon, pm.peakAnon), max(file, pm.peakFile)
		cpu += pm.cpu
		m := importSummaryRE.FindStringSubmatch(out)
		if m == nil || m[1] != strconv.Itoa(w.count) {
			b.Fatalf("import did not report %d emails:\n%s", w.count, out)
		}
		if t, err := time.ParseDuration(m[2]); err == nil {
			selfTime += t
		}
		fi, err := os.Stat(g.db)
		if err != nil {
			b.Fatal(err)
		}
		dbSize = fi.Size()
		tickets, messages, held := g.accounted(b)
		if messages+held != w.count {
			b.Fatalf("%d emails appended, but the database holds %d ticket messages (in %d tickets) and %d held emails",
				w.count, messages, tickets, held)
		}
		b.Logf("%s: import %v (it reports %s), %v CPU, %d tickets, %d thread messages, %d held; raw %v / %v",
			w.label(fill), elapsed.Round(time.Millisecond), m[2], pm.cpu.Round(time.Millisecond), tickets, messages, held,
			r1.elapsed.Round(time.Millisecond), r2.elapsed.Round(time.Millisecond))
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	rawS, gwS := raw.Seconds()/n, gw.Seconds()/n
	mb := float64(rawBytes) / 1e6
	ratio := gwS / rawS
	target := rssBase + 2*fill.largest
	b.ReportMetric(rawS, "raw-s")
	b.ReportMetric(float64(w.count)/rawS, "raw-msg/s")
	b.ReportMetric(mb/rawS, "raw-MB/s")
	b.ReportMetric(gwS, "gw-s")
	b.ReportMetric(float64(w.count)/gwS, "gw-msg/s")
	b.ReportMetric(mb/gwS, "gw-MB/s")
	b.ReportMetric(ratio, "gw/raw")
	b.ReportMetric(float64(rss)/mib, "peak-RSS-MiB")
	b.ReportMetric(float64(anon)/mib, "peak-anon-MiB")
	b.ReportMetric(float64(file)/mib, "peak-file-MiB")
	b.ReportMetric(cpu.Seconds()/n, "gw-cpu-s")
	b.ReportMetric(float64(dbSize)/mib, "db-MiB")
	fmt.Printf("\n| workload | emails | MB | raw fetch s | raw msg/s | raw MB/s | import s (self-reported) | import CPU s | import msg/s | import MB/s | ratio (target ≤ 3×) | peak RssAnon MiB (target) | VmHWM / peak RssFile MiB | DB MiB (× raw) | fill s | load avg |\n")
	fmt.Printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Printf("| %s | %d | %.1f | %.2f | %.0f | %.1f | %.2f (%.2f) | %.2f | %.0f | %.1f | %.2f× | %.1f (%.0f) | %.1f / %.1f | %.1f (%.2f×) | %.1f | %s |\n\n",
		w.label(fill), w.count, mb, rawS, float64(w.count)/rawS, mb/rawS, gwS, selfTime.Seconds()/n, cpu.Seconds()/n, float64(w.count)/gwS, mb/gwS,
		ratio, float64(anon)/mib, float64(target)/mib, float64(rss)/mib, float64(file)/mib, float64(dbSize)/mib, float64(dbSize)/float64(rawBytes), fill.elapsed.Seconds(), loadAvg())
}

// BenchmarkIngestInProcess runs the same import in this process — ingest.Poller with the
// dk `import` builds (Quiet: no notifications), a durable store — so that -cpuprofile and
// -memprofile see it:
//
//	go test -run '^$' -bench 'IngestInProcess/W1' -benchtime 1x -cpuprofile cpu.out ./cmd/helpdesk/
//	go tool pprof -top -tagfocus phase=ingest cpu.out
//
// The profile covers the whole run, the mailbox fill too; every phase carries a pprof label
// (phase=fill, raw, ingest) so -tagfocus phase=ingest keeps only the import (goroutines
// started by it inherit the label).
func BenchmarkIngestInProcess(b *testing.B) {
	for _, w := range []benchWorkload{benchW1.scaled(), benchW2.scaled(), benchW3} {
		b.Run(w.name, func(b *testing.B) { benchIngestInProcess(b, w) })
	}
}

func benchIngestInProcess(b *testing.B, w benchWorkload) {
	d := imaptest.NewDovecot(b)
	var fill mailboxFill
	pprof.Do(context.Background(), pprof.Labels("phase", "fill"), func(context.Context) {
		fill = fillMailbox(b, d, w, 7)
	})
	cfg, _, err := loadConfig("", []string{"HELPDESK_FROM=Infobits Helpdesk <support@infobits.example>",
		"HELPDESK_STAFF=jan@infobits.example", "HELPDESK_AUTHSERV_ID=" + trustedMX,
		"HELPDESK_MAX_MESSAGE_BYTES=" + strconv.Itoa(benchMaxMessageBytes)})
	if err != nil {
		b.Fatal(err)
	}
	var raw, ingestTime time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		var r rawResult
		pprof.Do(context.Background(), pprof.Labels("phase", "raw"), func(context.Context) {
			r = rawFetch(b, d, w.mailbox, w.batch)
		})
		raw += r.elapsed
		db, err := store.Open(filepath.Join(b.TempDir(), "helpdesk.db"), store.Options{LockTimeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Update(context.Background(), func(tx *store.Tx) error {
			for i, a := range benchSenders(w.senders) {
				if err := tx.PutCustomer(&helpdesk.Customer{Name: fmt.Sprintf("Winkel %03d", i), Emails: []string{a},
					Tier: helpdesk.SLA8, ValidUntil: helpdesk.Date{Year: 2099, Month: 12, Day: 31}, Contract: true}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		dk, err := newDesk(&cfg, time.Now)
		if err != nil {
			b.Fatal(err)
		}
		dk.Quiet = true
		events := make(chan ingest.Event, w.count+1024)
		poller, err := ingest.New(ingest.Config{Addr: d.Addr, User: d.User, Password: d.Password, TLS: helpdesk.TLSNone,
			Mailbox: w.mailbox, MaxMessageBytes: cfg.MaxMessageBytes, Desk: dk,
			Logger: slog.New(slog.DiscardHandler)}, db, events)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		pprof.Do(context.Background(), pprof.Labels("phase", "ingest"), func(ctx context.Context) {
			err = poller.Once(ctx)
		})
		elapsed := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		ingestTime += elapsed
		close(events)
		outcomes := 0
		for ev := range events {
			if ev.Outcome != nil {
				outcomes++
			}
		}
		if outcomes != w.count {
			b.Fatalf("in-process ingest: %d outcomes for %d emails", outcomes, w.count)
		}
		db.Close()
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	rawS, inS := raw.Seconds()/n, ingestTime.Seconds()/n
	mb := float64(fill.bytes) / 1e6
	b.ReportMetric(rawS, "raw-s")
	b.ReportMetric(inS, "ingest-s")
	b.ReportMetric(float64(w.count)/inS, "ingest-msg/s")
	b.ReportMetric(mb/inS, "ingest-MB/s")
	b.ReportMetric(inS/rawS, "ingest/raw")
	fmt.Printf("\n| in process | emails | MB | raw fetch s | ingest s | ingest msg/s | ingest MB/s | ratio | load avg |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Printf("| %s | %d | %.1f | %.2f | %.2f | %.0f | %.1f | %.2f× | %s |\n\n", w.label(fill), w.count, mb, rawS, inS, float64(w.count)/inS, mb/inS, inS/rawS, loadAvg())
}

// humanBytes is "3.4 kB", "1.17 MB", "25.0 MB" (decimal units, like the MB/s figures).
func humanBytes(n int64) string {
	switch {
	case n >= 10e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// loadAvg is the machine's 1-minute load average (/proc/loadavg) when the figure was taken: the
// machine is shared, and the figures are read with it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// procStatusKiB reads a "Name:   123 kB" line of /proc/PID/status (VmHWM, VmRSS).
func procStatusKiB(pid int, name string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no " + name + " in /proc/" + strconv.Itoa(pid) + "/status")
}
