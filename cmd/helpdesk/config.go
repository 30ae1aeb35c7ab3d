package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk/backups"
	"github.com/infobits/helpdesk/internal/oauth"
	"github.com/infobits/helpdesk/rules/calendar"
	"github.com/infobits/helpdesk/rules/digest"
	"github.com/infobits/helpdesk/rules/escalation"
)

// Config is every setting of the gateway. Each field has a key in the config file and an
// environment variable HELPDESK_<KEY> that wins over the file; the zero value of a field is
// replaced by its default. docs/configuration.md is rendered from these fields (key, default,
// help) by go generate, and TestConfigReference fails when the two differ.
//
//go:generate go test -run ^TestConfigReference$ -update-docs .
type Config struct {
	DB string `key:"db" default:"helpdesk.db" help:"bbolt database file; the control socket is this path + \".sock\""`

	IMAPAddr     string        `key:"imap_addr" help:"IMAP server host:port, e.g. imap.example.com:993"`
	IMAPUser     string        `key:"imap_user" help:"IMAP login of the support mailbox"`
	IMAPPassword string        `key:"imap_password" secret:"1" help:"IMAP password (an app password where the provider has them)"`
	IMAPMailbox  string        `key:"imap_mailbox" default:"INBOX" help:"mailbox the gateway reads"`
	IMAPTLS      string        `key:"imap_tls" default:"tls" help:"tls (IMAPS, 993), starttls (143) or none (loopback only)"`
	IMAPMoveTo   string        `key:"imap_move_to" help:"folder processed mail is moved to (servers with MOVE); empty: it stays, flagged \\Seen"`
	IMAPPoll     time.Duration `key:"imap_poll_interval" default:"1m" help:"poll interval without IDLE, and the safety re-check with it"`
	IMAPBacklog  time.Duration `key:"imap_backlog_age" default:"24h" help:"first sync of a mailbox: older mail is stored as history — no automatic replies, its new tickets closed without a deadline"`

	SMTPAddr     string `key:"smtp_addr" help:"SMTP submission server host:port, e.g. smtp.example.com:587"`
	SMTPUser     string `key:"smtp_user" help:"SMTP login; empty: no AUTH"`
	SMTPPassword string `key:"smtp_password" secret:"1" help:"SMTP password"`
	SMTPTLS      string `key:"smtp_tls" default:"starttls" help:"starttls (587), tls (465) or none (loopback only)"`

	// OAuth 2.0 sign-in (Microsoft 365, Google Workspace) instead of the passwords.
	OAuthProvider         string   `key:"oauth_provider" help:"sign in to IMAP (and SMTP) with OAuth 2.0: microsoft, google or generic; empty: passwords"`
	OAuthFlow             string   `key:"oauth_flow" default:"refresh_token" help:"refresh_token (a person's one-time consent by helpdesk oauth login) or client_credentials (Microsoft 365 app-only)"`
	OAuthTenant           string   `key:"oauth_tenant" help:"microsoft: the directory (tenant) id or domain, e.g. infobits.onmicrosoft.com; empty: organizations (refresh_token only)"`
	OAuthClientID         string   `key:"oauth_client_id" help:"the app registration's client (application) id"`
	OAuthClientSecret     string   `key:"oauth_client_secret" secret:"1" help:"the app's client secret (client_credentials; Google's desktop app too)"`
	OAuthClientSecretFile string   `key:"oauth_client_secret_file" help:"file holding the client secret, instead of oauth_client_secret"`
	OAuthScopes           []string `key:"oauth_scopes" help:"scopes, separated by spaces or commas; empty: the provider's defaults for the flow"`
	OAuthTokenURL         string   `key:"oauth_token_url" help:"the token endpoint: required for generic, an override for the others"`
	OAuthDeviceURL        string   `key:"oauth_device_url" help:"the device authorization endpoint (RFC 8628) of helpdesk oauth login: generic, or an override"`
	OAuthAuthURL          string   `key:"oauth_auth_url" help:"the authorization endpoint of the browser sign-in (Google; generic without a device endpoint)"`

	From        string   `key:"from" help:"sender of notifications, e.g. Infobits Helpdesk <support@infobits.example>"`
	Staff       []string `key:"staff" help:"comma-separated staff addresses: their email to a ticket is its answer"`
	StaffList   string   `key:"staff_list" help:"address told of new tickets, customer replies and refused staff email; empty: no one"`
	AuthServID  string   `key:"authserv_id" help:"authserv-id of the trusted receiving server's Authentication-Results header (RFC 8601)"`
	RequireAuth bool     `key:"require_auth" default:"true" help:"apply staff email only with DMARC pass or aligned DKIM pass from authserv_id"`
	SiteURL     string   `key:"site_url" help:"the helpdesk website, for links in notifications"`
	TicketTag   string   `key:"ticket_tag" default:"Infobits" help:"subject tag of ticket references: [Infobits #123]"`
	Templates   string   `key:"templates_dir" help:"directory with template overrides (nl/ack.txt.tmpl, ...)"`

	// The SLA policy (R6–R13).
	SLA24TicketsPerMonth  int      `key:"sla24_tickets_per_month" default:"3" help:"SLA24: new tickets per calendar month (0: no limit)"`
	SLA24OpenTickets      int      `key:"sla24_open_tickets" default:"2" help:"SLA24: tickets open at the same time (0: no limit)"`
	SLA24RepliesPerTicket int      `key:"sla24_replies_per_ticket" default:"5" help:"SLA24: customer replies per ticket (0: no limit)"`
	SLA24LapseAfter       int      `key:"sla24_lapse_after" default:"24" help:"SLA24 lapses after this many months without paid support: new questions are held as sla24_lapsed (R21); philanthropic customers never lapse (0: never)"`
	UrgentWords           []string `key:"urgent_words" default:"SPOED,URGENT" help:"subject words that ask for urgent help (any case, whole words)"`
	CallbackWords         []string `key:"callback_words" default:"terugbellen,anydesk" help:"subject words that ask for a callback; add prepaid or postpaid"`
	Holidays              string   `key:"holidays" default:"nl" help:"public holidays served as Sundays: nl (Dutch national holidays) or none"`
	ClosedDays            []string `key:"closed_days" help:"extra closed days, comma-separated YYYY-MM-DD"`
	ChangedHours          string   `key:"changed_hours" help:"other normal-rate hours on dates: 2026-12-24 09:00-13:00; 2026-12-31 09:00-12:00"`
	HoursHelpdesk         string   `key:"hours_helpdesk" default:"mon-fri 09:00-17:00" help:"helpdesk opening hours (R7)"`
	HoursZone1            string   `key:"hours_zone1" default:"mon-fri 09:00-17:00; sat 09:00-12:00" help:"rate zone 1, normal rate; the contract calendar (R7, R8)"`
	HoursZone2            string   `key:"hours_zone2" default:"mon-fri 17:00-21:00; sat 12:00-17:00; sun 10:00-17:00" help:"rate zone 2, high rate (R7)"`

	AutoReplyPerHour int           `key:"autoreply_per_hour" default:"10" help:"automatic replies to one address per hour, at most (RFC 3834)"`
	BounceSuppress   time.Duration `key:"bounce_suppress" default:"168h" help:"no automatic mail to an address this long after a notification to it bounced for good"`
	RecoveryPerHour  int           `key:"recovery_per_hour" default:"3" help:"account mails (password reset, login change) to one address per hour, at most"`
	RecoveryCustomer int           `key:"recovery_customer_per_hour" default:"6" help:"account mails about one customer per hour, at most (to any address)"`
	Unsolicited      int           `key:"unsolicited_per_hour" default:"60" help:"mails in answer to what anyone can ask (recovery, login changes, unknown senders, too-large emails) per hour in total, at most"`
	StaffNotices     int           `key:"staff_notice_per_hour" default:"3" help:"notices to one staff address that their email was not applied or refused, per hour, at most"`
	LoginCooling     time.Duration `key:"login_change_cooling" default:"72h" help:"a login change asked through the site takes effect after this long unless the old login or staff stop it (the new address must confirm)"`
	TokenTTL         time.Duration `key:"token_ttl" default:"1h" help:"how long a recovery link works"`
	AttachMax        int64         `key:"attach_max_bytes" default:"10485760" help:"staff notices carry the customer's attachments up to this total; above it they are listed with the command that saves them"`
	EscalationWarn   string        `key:"escalation_warn" default:"1h; SLA4 30m" help:"working time before a first-response deadline at which staff_list is warned: AMOUNT; TIER AMOUNT... (a duration, a share such as 25%, or off)"`
	DigestTime       string        `key:"digest_time" default:"08:30" help:"time of day (Europe/Amsterdam, HH:MM) of the daily digest to staff_list on working days; off: none"`
	HeldNotice       time.Duration `key:"held_notice_interval" default:"5m" help:"held emails are reported to staff_list at most once per this interval, a burst gathered into one notice"`
	HTTPAddr         string        `key:"http_addr" default:"127.0.0.1:8025" help:"listen address of the HTTP API (/healthz, /metrics, /api/); empty: off"`
	APIToken         string        `key:"api_token" secret:"1" help:"bearer token of the /api/ routes; empty: the /api/ routes are off"`
	Site             bool          `key:"site" default:"on" help:"on: serve the customer's Helpdesk site (log in, tickets, Mijn account, the password and login links) on http_addr beside /api/; off: a website of your own uses the API"`
	SitePhone        string        `key:"site_phone" help:"the helpdesk's telephone number, shown on the site's Helpdesk page to customers with a telephone support contract (R19)"`

	// Backups (R20): serve's daily backup.
	BackupDir  string `key:"backup_dir" help:"folder serve writes a daily backup to and prunes (R20); a synced Dropbox/OneDrive folder works; empty: no scheduled backups"`
	BackupTime string `key:"backup_time" default:"02:30" help:"time of day (Europe/Amsterdam, HH:MM) of serve's daily backup"`

	MaxMessageBytes int64  `key:"max_message_bytes" default:"26214400" help:"larger emails are left on the server and held"`
	LogFormat       string `key:"log_format" default:"auto" help:"auto (text on a terminal, else JSON), text or json"`
	LogLevel        string `key:"log_level" default:"info" help:"debug, info, warn or error"`
}

const envPrefix = "HELPDESK_"

// configField is one settable field of Config, found by reflection.
type configField struct {
	key, env, def, help string
	secret              bool
	index               int
}

func configFields() []configField {
	t := reflect.TypeFor[Config]()
	var out []configField
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("key")
		out = append(out, configField{key: key, env: envPrefix + strings.ToUpper(key),
			def: f.Tag.Get("default"), help: f.Tag.Get("help"), secret: f.Tag.Get("secret") != "", index: i})
	}
	return out
}

// loadConfig reads defaults, then the file (when path is not ""), then the environment.
// Unknown keys in the file are errors with their line; unknown HELPDESK_* variables are
// returned as warnings (a newer version may know them).
func loadConfig(path string, environ []string) (Config, []string, error) {
	var cfg Config
	fields := configFields()
	v := reflect.ValueOf(&cfg).Elem()
	for _, f := range fields {
		if f.def != "" {
			if err := setField(v.Field(f.index), f.def); err != nil {
				return cfg, nil, fmt.Errorf("default of %s: %w", f.key, err)
			}
		}
	}
	if path != "" {
		if err := readConfigFile(path, fields, v); err != nil {
			return cfg, nil, err
		}
	}
	var warnings []string
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || name == "HELPDESK_CONFIG" {
			continue
		}
		i := slices.IndexFunc(fields, func(f configField) bool { return f.env == name })
		if i < 0 {
			warnings = append(warnings, fmt.Sprintf("unknown environment variable %s ignored", name))
			continue
		}
		if err := setField(v.Field(fields[i].index), value); err != nil {
			return cfg, warnings, fmt.Errorf("environment variable %s: %w", name, err)
		}
	}
	return cfg, warnings, nil
}

// readConfigFile reads "key = value" lines; '#' starts a comment line; a value may be quoted
// with double quotes (Go syntax) to keep spaces or a '#'.
func readConfigFile(path string, fields []configField, v reflect.Value) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	seen := map[string]int{}
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || key == "" {
			return fmt.Errorf("%s:%d: want key = value", path, n)
		}
		if strings.HasPrefix(value, `"`) {
			uq, err := strconv.Unquote(value)
			if err != nil {
				return fmt.Errorf("%s:%d: bad quoted value for %s", path, n, key)
			}
			value = uq
		}
		i := slices.IndexFunc(fields, func(f configField) bool { return f.key == key })
		if i < 0 {
			return fmt.Errorf("%s:%d: unknown key %q", path, n, key)
		}
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("%s:%d: key %q already set on line %d", path, n, key, prev)
		}
		seen[key] = n
		if err := setField(v.Field(fields[i].index), value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, n, key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

func setField(f reflect.Value, s string) error {
	switch f.Interface().(type) {
	case string:
		f.SetString(s)
	case []string:
		var list []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = append(list, p)
			}
		}
		f.Set(reflect.ValueOf(list))
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration such as 30s or 5m, not %q", s)
		}
		f.SetInt(int64(d))
	case bool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "yes", "1", "on":
			f.SetBool(true)
		case "false", "no", "0", "off":
			f.SetBool(false)
		default:
			return fmt.Errorf("want true or false, not %q", s)
		}
	case int64, int:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("want a whole number, not %q", s)
		}
		f.SetInt(n)
	default:
		return fmt.Errorf("unsupported field type %s", f.Type())
	}
	return nil
}

// require checks that the named keys are set, naming every missing one and its variable.
func (c Config) require(keys ...string) error {
	v := reflect.ValueOf(c)
	var missing []string
	for _, f := range configFields() {
		if slices.Contains(keys, f.key) && v.Field(f.index).IsZero() {
			missing = append(missing, fmt.Sprintf("%s (%s)", f.key, f.env))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing configuration: %s; set it in the config file or the environment", strings.Join(missing, ", "))
	}
	return nil
}

// siteURLPath is the warning for a site_url with a path while the site is on, or "". The
// gateway's site answers at the root of a host (its links and forms are /inloggen,
// /tickets/12): the links in notifications then reach a website of the vendor's own at
// site_url, and the gateway's site nobody. Not an error: such a vendor keeps its website on
// the API and may simply not have set site = off.
func (c Config) siteURLPath() string {
	if !c.Site || c.HTTPAddr == "" {
		return ""
	}
	u, err := url.Parse(c.SiteURL)
	if err != nil || strings.Trim(u.Path, "/") == "" && u.RawQuery == "" && u.Fragment == "" {
		return ""
	}
	return fmt.Sprintf("site_url = %s has a path, but the gateway's site answers at the root of a host (its links are /inloggen, /tickets/…): the links in notifications go to your own website at that path, and the gateway's site is reached by no link. A website of your own on the API: set site = off. The gateway's site: give site_url a host of its own, such as https://helpdesk.infobits.example", c.SiteURL)
}

// validateServe checks what the gateway needs to run, all at once.
func (c Config) validateServe() error {
	if err := c.require(append(c.imapKeys(), "db", "smtp_addr", "from")...); err != nil {
		return err
	}
	var errs []string
	if c.OAuthProvider != "" {
		if _, err := c.oauthConfig(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, m := range []struct{ key, val string }{{"imap_tls", c.IMAPTLS}, {"smtp_tls", c.SMTPTLS}} {
		if !helpdesk.ValidTLS(m.val) {
			errs = append(errs, fmt.Sprintf("%s = %q: want tls, starttls or none", m.key, m.val))
		}
	}
	if _, err := c.fromAddress(); err != nil {
		errs = append(errs, err.Error())
	}
	for _, s := range c.Staff {
		if _, err := mail.ParseAddress(s); err != nil {
			errs = append(errs, fmt.Sprintf("staff address %q: %v", s, err))
		}
	}
	if c.MaxMessageBytes < 1024 {
		errs = append(errs, fmt.Sprintf("max_message_bytes = %d: too small", c.MaxMessageBytes))
	}
	if c.TicketTag == "" || strings.ContainsAny(c.TicketTag, "[]#\r\n") {
		errs = append(errs, fmt.Sprintf("ticket_tag = %q: want a word such as Infobits", c.TicketTag))
	}
	if _, err := c.calendars(); err != nil {
		errs = append(errs, err.Error())
	}
	if c.RequireAuth && c.AuthServID == "" && len(c.Staff) > 0 {
		errs = append(errs, "staff email is applied only when the trusted server vouches for it: set authserv_id (HELPDESK_AUTHSERV_ID), or require_auth = false (HELPDESK_REQUIRE_AUTH=false) where no such server exists")
	}
	if c.StaffList != "" {
		if _, err := mail.ParseAddress(c.StaffList); err != nil {
			errs = append(errs, fmt.Sprintf("staff_list %q: %v", c.StaffList, err))
		}
	}
	if c.Site && c.HTTPAddr != "" && c.SiteURL != "" {
		if u, err := url.Parse(c.SiteURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Sprintf("site_url = %q: want https://host (the address customers open)", c.SiteURL))
		} else if u.Scheme == "http" && !helpdesk.IsLoopback(u.Hostname()) {
			errs = append(errs, fmt.Sprintf("site_url = %s: the site would send passwords and session cookies in clear; use https:// (a TLS proxy in front of http_addr), or site = off", c.SiteURL))
		} else if u.Scheme == "http" && !helpdesk.IsLoopback(c.HTTPAddr) {
			// A plain-http site is for this machine only (the demo, a test): listening
			// beyond it, anyone on the network could log in over plain http, the password
			// and the session cookie (not Secure) in clear.
			errs = append(errs, fmt.Sprintf("site_url = %s with http_addr = %s: a plain-http site must listen on loopback only, or the network sees passwords and session cookies in clear; set http_addr to 127.0.0.1:PORT (a TLS proxy in front), site_url to https://, or site = off", c.SiteURL, c.HTTPAddr))
		}
	}
	// The times and thresholds serve would refuse at start, named all at once (and by doctor).
	if _, err := escalation.Parse(c.EscalationWarn); err != nil {
		errs = append(errs, "escalation_warn: "+err.Error())
	}
	if _, _, err := digest.ParseClock(c.DigestTime); err != nil {
		errs = append(errs, "digest_time: "+err.Error())
	}
	if _, _, err := backups.ParseTime(c.BackupTime); err != nil {
		errs = append(errs, err.Error())
	}
	if c.SLA24LapseAfter > 1200 {
		errs = append(errs, fmt.Sprintf("sla24_lapse_after = %d: want months, at most 1200 (0: never)", c.SLA24LapseAfter))
	}
	if c.TokenTTL < time.Minute {
		errs = append(errs, fmt.Sprintf("token_ttl = %s: too short", c.TokenTTL))
	}
	if len(errs) > 0 {
		return errors.New("configuration: " + strings.Join(errs, "; "))
	}
	return nil
}

// calendars builds the working-hours calendars (R7–R9) from the configuration.
func (c Config) calendars() (*calendar.Set, error) {
	var rules calendar.Rules
	switch c.Holidays {
	case "nl", "":
		rules.DutchHolidays = true
	case "none":
	default:
		return nil, fmt.Errorf("holidays = %q: want nl or none", c.Holidays)
	}
	for _, d := range c.ClosedDays {
		day, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return nil, fmt.Errorf("closed_days: %q is not a date YYYY-MM-DD", d)
		}
		rules.Closed = append(rules.Closed, helpdesk.Date{Year: day.Year(), Month: day.Month(), Day: day.Day()})
	}
	for _, part := range strings.Split(c.ChangedHours, ";") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		date, hours, _ := strings.Cut(part, " ")
		day, err := time.Parse(time.DateOnly, date)
		if err != nil {
			return nil, fmt.Errorf("changed_hours: %q: want YYYY-MM-DD HH:MM-HH:MM", part)
		}
		ivs, err := calendar.ParseIntervals(hours)
		if err != nil {
			return nil, fmt.Errorf("changed_hours: %q: %w", part, err)
		}
		if rules.Changed == nil {
			rules.Changed = map[helpdesk.Date][]calendar.Interval{}
		}
		rules.Changed[helpdesk.Date{Year: day.Year(), Month: day.Month(), Day: day.Day()}] = ivs
	}
	set, err := calendar.NewSet(map[string]string{calendar.Helpdesk: c.HoursHelpdesk, calendar.Zone1: c.HoursZone1,
		calendar.Zone2: c.HoursZone2}, rules)
	if err != nil {
		return nil, fmt.Errorf("hours: %w", err)
	}
	return set, nil
}

func (c Config) fromAddress() (*mail.Address, error) {
	a, err := mail.ParseAddress(c.From)
	if err != nil {
		return nil, fmt.Errorf("from = %q: %v (want e.g. Infobits Helpdesk <support@infobits.example>)", c.From, err)
	}
	return a, nil
}

// staffAddresses returns the staff addresses in lower case.
func (c Config) staffAddresses() []string {
	var out []string
	for _, s := range c.Staff {
		if a, err := mail.ParseAddress(s); err == nil {
			out = append(out, helpdesk.NormalizeAddress(a.Address))
		}
	}
	return out
}

// imapKeys are the keys a command that reads the mailbox needs: the address and the user,
// and the password unless it signs in with OAuth (oauth_provider).
func (c Config) imapKeys() []string {
	if c.OAuthProvider != "" {
		return []string{"imap_addr", "imap_user"}
	}
	return []string{"imap_addr", "imap_user", "imap_password"}
}

// oauthTokenFile is the file of the refresh token that `oauth login` writes: beside the
// database, not in it (backups of the database go to synced folders).
func (c Config) oauthTokenFile() string { return c.DB + ".oauth" }

// oauthConfig is the OAuth configuration, checked; the client secret read from its file.
func (c Config) oauthConfig() (oauth.Config, error) {
	secret := c.OAuthClientSecret
	if c.OAuthClientSecretFile != "" {
		if secret != "" {
			return oauth.Config{}, errors.New("oauth_client_secret and oauth_client_secret_file are both set: keep one")
		}
		b, err := os.ReadFile(c.OAuthClientSecretFile)
		if err != nil {
			return oauth.Config{}, fmt.Errorf("oauth_client_secret_file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	oc := oauth.Config{Provider: c.OAuthProvider, Flow: c.OAuthFlow, Tenant: c.OAuthTenant, ClientID: c.OAuthClientID,
		ClientSecret: secret, TokenURL: c.OAuthTokenURL, DeviceURL: c.OAuthDeviceURL, AuthURL: c.OAuthAuthURL,
		Scopes: strings.Fields(strings.Join(c.OAuthScopes, " ")), TokenFile: c.oauthTokenFile()}
	if err := oc.Check(); err != nil {
		return oc, err
	}
	return oc, nil
}

// oauthSource is the token source of the gateway, doctor and oauth login; nil without
// oauth_provider.
func (c Config) oauthSource(now func() time.Time) (*oauth.Source, error) {
	if c.OAuthProvider == "" {
		return nil, nil
	}
	oc, err := c.oauthConfig()
	if err != nil {
		return nil, err
	}
	oc.Now = now
	return oauth.New(oc)
}

// smtpOAuth reports whether SMTP logs in with the OAuth token: with oauth_provider set, a
// smtp_user and no smtp_password (a password keeps a relay that takes one working).
func (c Config) smtpOAuth() bool {
	return c.OAuthProvider != "" && c.SMTPUser != "" && c.SMTPPassword == ""
}
