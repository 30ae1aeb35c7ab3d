// Command helpdesk is the Infobits helpdesk gateway: it reads the support mailbox over IMAP,
// turns emails into tickets in a bbolt database and sends notifications over SMTP.
//
// This package holds flags, configuration, wiring, output and the control socket only; the
// rules live in desk (and desk/customers, desk/backups, desk/view), rules/*, mail/*, ingest,
// notify, store and templates. It never imports go-imap or go-smtp (doctor's probes are
// ingest.Probe and notify.Probe) and links no test helper. Run `helpdesk help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/infobits/helpdesk/desk/search"
	"github.com/infobits/helpdesk/mail/parse"
	"github.com/infobits/helpdesk/store"
)

// command is one entry of the command table.
type command struct {
	name    string // "ticket list"
	args    string // usage after the name
	summary string
	// db: the command works on the database; while a gateway runs it is run by the gateway
	// over the control socket, with the same code.
	db  bool
	run func(e *env, args []string) error
}

func commands() []command {
	return []command{
		{name: "serve", args: "[-config FILE] [-once]", summary: "run the gateway (-once: process the mailbox, send the outbox, exit)", run: runServe},
		{name: "demo", args: "[-once]", summary: "run the gateway on embedded IMAP/SMTP servers with sample mail", run: runDemo},
		{name: "import", args: importArgs, summary: "take an existing mailbox (an archive) through ingest, sending nothing", db: true, run: runImport},
		{name: "doctor", args: "[-config FILE]", summary: "check a configuration end to end: IMAP, SMTP, database, templates, the server's authserv-id", run: runDoctor},
		{name: "oauth login", args: "[-config FILE] [-port N]", summary: "sign in once to the mailbox's OAuth provider (Microsoft 365, Google); the refresh token is kept beside the database", run: runOAuthLogin},
		{name: "version", args: "", summary: "print the version, commit and Go version", run: runVersion},
		{name: "customer add", args: customerAddArgs, summary: "register a customer", db: true, run: runCustomerAdd},
		{name: "customer set", args: customerSetArgs, summary: "change the given fields of a customer (-email, -phone replace the lists; -add-email adds)", db: true, run: runCustomerSet},
		{name: "customer show", args: customerShowArgs, summary: "show a customer, the tier served today and the R3 status", db: true, run: runCustomerShow},
		{name: "customer status", args: customerStatusArgs, summary: "print the Dutch status line of the paid tier (R3)", db: true, run: runCustomerStatus},
		{name: "customer list", args: customerListArgs, summary: "list customers, with the tier each is served at (R3, R21)", db: true, run: runCustomerList},
		{name: "customer import", args: customerImportArgs, summary: "add or update customers from a CSV file (-h: the columns)", db: true, run: runCustomerImport},
		{name: "customer approve-login", args: loginChangeArgs, summary: "approve the customer's pending login change (R17): it takes effect once the new address confirms", db: true, run: runCustomerApproveLogin},
		{name: "customer cancel-login", args: loginChangeArgs, summary: "cancel the customer's pending login change (R17)", db: true, run: runCustomerCancelLogin},
		{name: "customer unbounce", args: customerUnbounceArgs, summary: "end the suspension of automatic mail (acknowledgements, notices, password links) to an address after mail to it bounced (bounce_suppress)", db: true, run: runCustomerUnbounce},
		{name: "customer invite", args: "ADDR", summary: "email the customer a link to set a password on the site (onboarding; the link works 7 days)", db: true, run: runCustomerInvite},
		{name: "caller", args: callerArgs, summary: "who calls from a number, and is the call put through (R19)", db: true, run: runCaller},
		{name: "ticket list", args: "[-json] [-customer ADDR] [-status open|answered|closed]", summary: "list tickets: the work first (urgent, then by due time), closed ones last", db: true, run: runTicketList},
		{name: "ticket search", args: ticketSearchArgs, summary: "find tickets by words in subjects, threads and attachment names (Dutch and English forms), best first", db: true, run: runTicketSearch},
		{name: "ticket show", args: "[-json] ID", summary: "show a ticket with its thread and notifications", db: true, run: runTicketShow},
		{name: "ticket attachment", args: ticketAttachmentArgs, summary: "write attachment N of a ticket (ticket show numbers them) to a file", db: true, run: runTicketAttachment},
		{name: "ticket held", args: ticketHeldArgs, summary: "list emails that did not become ticket messages, with the reason", db: true, run: runTicketHeld},
		{name: "ticket held dismiss", args: "ID... [-note TEXT]", summary: "mark held emails handled: kept, no longer listed or reported", db: true, run: runTicketHeldDismiss},
		{name: "ticket release", args: "ID [-as-staff]", summary: "turn a held email into the ticket or reply it would have been (limits lifted)", db: true, run: runTicketRelease},
		{name: "ticket close", args: "ID", summary: "close a ticket, as a staff email's #close (noted on the thread with your user name)", db: true, run: runTicketClose},
		{name: "ticket reopen", args: "ID", summary: "set a ticket open again, as #reopen", db: true, run: runTicketReopen},
		{name: "ticket assign", args: "ID ADDR", summary: "assign a ticket to a staff address, as #assign ADDR", db: true, run: runTicketAssign},
		{name: "search reindex", args: "", summary: "rebuild the search index from the database (it is derived data: nothing is lost)", db: true, run: runSearchReindex},
		{name: "outbox list", args: "[-json] [-status queued|sent|failed]", summary: "list notifications with their state, attempts and last error", db: true, run: runOutboxList},
		{name: "outbox retry", args: "ID... | -failed", summary: "queue failed notifications again, to be sent at once", db: true, run: runOutboxRetry},
		{name: "backup", args: backupArgs, summary: "write a compressed, checksummed hot copy of the database to DIR, then prune (R20)", db: true, run: runBackup},
		{name: "backup prune", args: backupPruneArgs, summary: "delete the backups the retention rule does not keep, as of DATE (R20)", run: runBackupPrune},
		{name: "restore", args: restoreArgs, summary: "replace the database with a checked, verified backup (stop the gateway first)", run: runRestore},
		{name: "verify", args: verifyArgs, summary: "check a backup (.db.gz) or database file: bbolt's check, every record decodes", run: runVerify},
		{name: "digest", args: digestArgs, summary: "the daily digest of the queue now: queued to staff_list, or printed with -print", db: true, run: runDigest},
		{name: "report", args: reportArgs, summary: "-month: a month per tier beside the promise: opened, first responses, share in time, median and p90 working hours, breaches, limit and lapse holds, callbacks; -fair-use: the free customers' use of the helpdesk over 12 months (R21)", db: true, run: runReport},
		{name: "deadline", args: "-sla SLA24|SLA8|SLA4 [-contract] [-at TIME]", summary: "the first-response deadline of a question arriving at TIME (R6–R9)", run: runDeadline},
		{name: "ratezone", args: "[-at TIME]", summary: "the rate zone at TIME: 1, 2 or closed (R7)", run: runRateZone},
		{name: "templates preview", args: "NAME [-lang nl|en] [-html]", summary: "render a notification with sample data through the configured templates", run: runTemplatesPreview},
		{name: "help", args: "[COMMAND | GROUP]", summary: "list the commands, show one command's flags, or a group's commands (help ticket)", run: runHelp},
	}
}

// env is what a command runs with. On the control socket, stdout and stderr go back to the
// client and db is the running gateway's.
type env struct {
	ctx            context.Context
	stdout, stderr io.Writer
	stdin          io.Reader // nil: none (the control socket, tests)
	environ        []string
	cfg            *Config // loaded on first use (configOnce)
	cfgPath        string
	db             *store.DB
	search         *search.Index // the running gateway's search index (control socket)
	// smtpNextTry: when the running gateway's notifier tries the SMTP server again after a
	// failure (control socket; nil outside the gateway).
	smtpNextTry func() time.Time
	remote      bool   // running inside the gateway for a control-socket client
	dir         string // the control-socket client's working directory
	user        string // the control-socket client's operator (see operator)
	now         func() time.Time
	log         *slog.Logger
	// parseLimits bound the reading of an email (zero: the defaults); only the tests of the
	// safety nets set them (runProcess).
	parseLimits parse.Limits
}

// logger is where a command logs what it did: the gateway's log when it runs in the gateway,
// else the configured format on stderr.
func (e *env) logger() (*slog.Logger, error) {
	if e.log != nil {
		return e.log, nil
	}
	cfg, err := e.config(nil)
	if err != nil {
		return nil, err
	}
	return newLogger(e.stderr, cfg.LogFormat, cfg.LogLevel)
}

// errUsage marks a wrong invocation: exit status 2.
var errUsage = errors.New("usage")

func main() {
	os.Exit(runProcess(os.Args[1:], nil))
}

// runProcess is the process around run: the memory limit, the signals, the environment.
// adjust, when not nil, changes the env first: tests run a gateway process of their own
// through it (their test binary started again), to kill it as the real one is killed.
func runProcess(args []string, adjust func(*env)) int {
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit: the collector works harder before the heap outgrows it, so a burst of
		// mail does not double the memory the gateway holds; a single large email still gets
		// what it needs. GOMEMLIMIT overrides it.
		debug.SetMemoryLimit(48 << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{ctx: ctx, stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, environ: os.Environ(), now: time.Now}
	if adjust != nil {
		adjust(e)
	}
	return run(e, args)
}

// run dispatches argv and returns the exit status: 0 ok, 1 failed, 2 usage.
func run(e *env, args []string) int {
	cmd, rest := findCommand(args)
	if cmd == nil {
		if len(args) == 0 {
			printHelp(e.stdout)
			return 2
		}
		if group := groupCommands(args[0]); len(group) > 0 {
			// "helpdesk ticket": the group's commands; "helpdesk ticket -h" asked for them.
			if len(args) > 1 && wantsHelp(args[1:2]) {
				printGroupHelp(e.stdout, args[0], group)
				return 0
			}
			if len(args) > 1 {
				fmt.Fprintf(e.stderr, "helpdesk: unknown command %q\n", strings.Join(args[:2], " "))
			}
			printGroupHelp(e.stderr, args[0], group)
			return 2
		}
		fmt.Fprintf(e.stderr, "helpdesk: unknown command %q; run 'helpdesk help'\n", strings.Join(args, " "))
		return 2
	}
	err := dispatch(e, cmd, rest)
	if group := groupCommands(cmd.name); len(group) > 0 && wantsHelp(rest) && (err == nil || errors.Is(err, flag.ErrHelp)) {
		fmt.Fprintln(e.stdout) // "backup -h": also backup prune
		printGroupHelp(e.stdout, cmd.name, group)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(e.stderr, "helpdesk %s: %s\nusage: helpdesk %s %s\n", cmd.name, terminalSafe(err.Error()), cmd.name, cmd.args)
		return 2
	case errors.Is(err, errExit):
		var ee *exitError
		errors.As(err, &ee)
		return ee.code
	}
	fmt.Fprintf(e.stderr, "helpdesk %s: %s\n", cmd.name, terminalSafe(oneLine(err.Error())))
	return 1
}

// dispatch runs a database command over the control socket when a gateway is running, and
// directly otherwise.
func dispatch(e *env, cmd *command, args []string) error {
	if !cmd.db || e.remote {
		return cmd.run(e, args)
	}
	if wantsHelp(args) {
		return cmd.run(e, args)
	}
	cfg, err := e.config(args)
	if err != nil {
		return err
	}
	code, err := ctlCall(e, socketPath(cfg.DB), append(strings.Fields(cmd.name), args...))
	if err == nil {
		if code != 0 {
			return &exitError{code: code}
		}
		return nil
	}
	if !errors.Is(err, errNoGateway) {
		return err
	}
	db, err := openDB(cfg.DB, e.stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	e.db = db
	return cmd.run(e, args)
}

func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

var errExit = errors.New("exit")

// exitError carries the exit status of a command run over the control socket.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
func (e *exitError) Is(t error) bool {
	return t == errExit
}

func findCommand(args []string) (*command, []string) {
	cmds := commands()
	var best *command
	var rest []string
	for i := range cmds {
		words := strings.Fields(cmds[i].name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmds[i].name {
			if best == nil || len(words) > len(strings.Fields(best.name)) {
				best, rest = &cmds[i], args[len(words):]
			}
		}
	}
	return best, rest
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "helpdesk — the Infobits helpdesk gateway (IMAP → tickets in bbolt → SMTP)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery command takes -config FILE (or HELPDESK_CONFIG); HELPDESK_* variables override it.")
	fmt.Fprintf(w, "Run 'helpdesk help COMMAND' (or 'helpdesk COMMAND -h') for a command's flags, 'helpdesk help GROUP' for a group's commands (%s).\n",
		strings.Join(commandGroups(), ", "))
}

// commandGroups names the groups of commands, in the order of the table.
func commandGroups() []string {
	var out []string
	for _, c := range commands() {
		if first, _, multi := strings.Cut(c.name, " "); multi && !slices.Contains(out, first) {
			out = append(out, first)
		}
	}
	return out
}

// groupCommands returns the commands of a group ("ticket": ticket list, ticket show, ...):
// those whose name is group followed by more words. A command can head a group of its own
// ("backup": backup prune; "ticket held": ticket held dismiss).
func groupCommands(group string) []command {
	var out []command
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			out = append(out, c)
		}
	}
	return out
}

func printGroupHelp(w io.Writer, group string, cmds []command) {
	fmt.Fprintf(w, "usage: helpdesk %s COMMAND ...\n\nCommands:\n", group)
	for _, c := range cmds {
		fmt.Fprintf(w, "  helpdesk %s %s\n      %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'helpdesk help %s COMMAND' (or 'helpdesk %s COMMAND -h') for a command's flags.\n", group, group)
}

func runHelp(e *env, args []string) error {
	if wantsHelp(args) {
		fmt.Fprintln(e.stdout, "usage: helpdesk help [COMMAND | GROUP]")
		return nil
	}
	if len(args) == 0 {
		printHelp(e.stdout)
		return nil
	}
	cmd, rest := findCommand(args)
	if cmd == nil || len(rest) > 0 {
		// A group ("help ticket"), or a command with a word too many ("help ticket lijst").
		if group := groupCommands(args[0]); len(group) > 0 && len(args) == 1 {
			printGroupHelp(e.stdout, args[0], group)
			return nil
		}
		return fmt.Errorf("%w: unknown command %q", errUsage, strings.Join(args, " "))
	}
	if err := cmd.run(e, []string{"-h"}); err != nil && !errors.Is(err, flag.ErrHelp) {
		return err
	}
	if group := groupCommands(cmd.name); len(group) > 0 { // "help backup": also backup prune
		fmt.Fprintln(e.stdout)
		printGroupHelp(e.stdout, cmd.name, group)
	}
	return nil
}

// newFlags makes a command's flag set with the common -config flag. Output goes to the
// command's stdout, so -h works over the control socket too.
func newFlags(e *env, name, args string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stdout)
	cfg := fs.String("config", "", "configuration `file` (default $HELPDESK_CONFIG)")
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "usage: helpdesk %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs, cfg
}

// parseArgs parses flags that may stand before or after positional arguments
// (`ticket show 12 -json`); everything after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// config loads the configuration once, from -config (found in args), HELPDESK_CONFIG and the
// environment. Warnings (unknown HELPDESK_* variables) go to stderr.
func (e *env) config(args []string) (*Config, error) {
	if e.cfg != nil {
		return e.cfg, nil
	}
	path := e.cfgPath
	for i, a := range args {
		switch {
		case a == "-config" || a == "--config":
			if i+1 < len(args) {
				path = args[i+1]
			}
		case strings.HasPrefix(a, "-config="), strings.HasPrefix(a, "--config="):
			_, path, _ = strings.Cut(a, "=")
		}
	}
	if path == "" {
		for _, kv := range e.environ {
			if v, ok := strings.CutPrefix(kv, "HELPDESK_CONFIG="); ok {
				path = v
			}
		}
	}
	cfg, warnings, err := loadConfig(path, e.environ)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintf(e.stderr, "helpdesk: warning: %s\n", w)
	}
	e.cfg, e.cfgPath = &cfg, path
	return e.cfg, nil
}

// openDB opens the database for a command run without a gateway; a new file is announced on
// stderr.
func openDB(path string, stderr io.Writer) (*store.DB, error) {
	db, err := store.Open(path, store.Options{LockTimeout: time.Second})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("database %s is locked by another process and no gateway answers on %s; is a gateway starting or stopping?", path, socketPath(path))
	}
	if err == nil && db.Created() {
		fmt.Fprintf(stderr, "helpdesk: created a new, empty database %s (if you meant an existing one, check db in the config file or HELPDESK_DB)\n", absPath(path))
	}
	return db, err
}

// absPath is p made absolute, for a message naming a file; p itself when that fails.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// operator names the person running the command, for what it records (a note on a ticket's
// thread) and the gateway's log. Over the control socket it is the client's; otherwise the OS
// user — and, when the command runs as the gateway's user through sudo (sudo -u helpdesk
// helpdesk ...), the user who ran sudo, the person a staff member would ask.
func (e *env) operator() string {
	if e.user != "" {
		return e.user
	}
	var name string
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	for _, kv := range e.environ {
		if v, ok := strings.CutPrefix(kv, "SUDO_USER="); ok && v != "" {
			name = v
		}
		if v, ok := strings.CutPrefix(kv, "USER="); ok && v != "" && name == "" {
			name = v
		}
	}
	if name == "" {
		name = fmt.Sprintf("uid %d", os.Getuid())
	}
	return name
}

// path resolves a file argument: relative to the client's directory when the command runs in
// the gateway for a control-socket client, as the operator meant it.
func (e *env) path(p string) string {
	if e.remote && e.dir != "" && !filepath.IsAbs(p) {
		return filepath.Join(e.dir, p)
	}
	return p
}

// gatewayFileError explains a file a command could not open when the running gateway ran the
// command: the gateway opened it, as its own user and with the service's protections
// (ProtectHome, PrivateTmp), not the operator — who can read the file and sees it there.
func (e *env) gatewayFileError(err error) error {
	if !e.remote || !(errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrNotExist)) {
		return err
	}
	who := fmt.Sprint("uid ", os.Getuid())
	if u, uerr := user.Current(); uerr == nil {
		who = "user " + u.Username
	}
	where := "the gateway's state directory"
	if e.cfg != nil && e.cfg.DB != "" {
		where = filepath.Dir(e.cfg.DB)
	}
	return fmt.Errorf("%w: the running gateway opens the file, as %s and without access to /home, /root and /tmp under systemd; put it where that user can read it, e.g. %s", err, who, where)
}

// readableDuration writes a duration as Go writes it ("30s", "1m30s", "250ms") rather than
// as the nanoseconds slog's JSON handler writes, so that an operator reads retry_in=30s in
// text and JSON alike. slog calls it for every attribute, in groups too.
func readableDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// newLogger builds the logger of every command that logs (serve, demo, import): format text
// or json (auto: text on a terminal, JSON otherwise), durations readable in both.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log_level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: readableDuration}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "auto", "":
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return slog.New(slog.NewTextHandler(w, opts)), nil
			}
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log_format %q: want auto, text or json", format)
}
