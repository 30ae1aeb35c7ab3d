package policy

import (
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/calendar"
)

// Staff commands: on the first lines of a staff email, before the answer text.
const (
	CmdClose  = "close"
	CmdReopen = "reopen"
	CmdUrgent = "urgent"
	CmdNormal = "normal"
	CmdNote   = "note"   // the rest of the email is an internal note, never sent to the customer
	CmdAssign = "assign" // #assign ADDR: a staff address
)

// Command is one parsed staff command.
type Command struct {
	Name string
	Arg  string // the address of #assign
}

// StaffAction is what a staff email to a ticket does: commands, then an answer for the
// customer or an internal note.
type StaffAction struct {
	Commands []Command
	Text     string // the answer (or the note) without the command lines
	Note     bool   // Text is an internal note
}

// Has reports whether the action contains a command.
func (a *StaffAction) Has(name string) bool {
	return slices.ContainsFunc(a.Commands, func(c Command) bool { return c.Name == name })
}

// ParseStaffText reads the commands that stand alone on the first lines of a staff email
// (blank lines between them allowed), then the answer. Every command is checked before any is
// applied: an unknown command, or #assign to someone who is not staff, is an error naming the
// line, and nothing of the email is applied.
func ParseStaffText(text string, staff []string) (StaffAction, error) {
	var a StaffAction
	lines := strings.Split(text, "\n")
	i := 0
	for ; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			break
		}
		word, arg, _ := strings.Cut(strings.TrimPrefix(line, "#"), " ")
		if strings.ToLower(strings.TrimSpace(word)) == CmdNote {
			a.Note = true
			a.Commands = append(a.Commands, Command{Name: CmdNote})
			rest := strings.Join(lines[i+1:], "\n")
			if arg = strings.TrimSpace(arg); arg != "" {
				rest = arg + "\n" + rest
			}
			a.Text = strings.TrimSpace(rest)
			return a, nil
		}
		c, err := ParseStaffCommand(line, staff)
		if err != nil {
			return a, fmt.Errorf("line %d: %w", i+1, err)
		}
		a.Commands = append(a.Commands, c)
	}
	if a.Has(CmdClose) && a.Has(CmdReopen) || a.Has(CmdUrgent) && a.Has(CmdNormal) {
		return a, fmt.Errorf("contradicting commands: %v", a.Commands)
	}
	a.Text = StripQuoted(strings.TrimSpace(strings.Join(lines[i:], "\n")))
	return a, nil
}

// ParseStaffCommand checks one command line of a staff email ("#close", "#assign ADDR"):
// ParseStaffText reads each line with it, and an operator's `helpdesk ticket close|reopen|
// assign` goes through it too, so the two cannot accept different things. #note, which takes
// the rest of an email, is not a command of one line.
func ParseStaffCommand(line string, staff []string) (Command, error) {
	line = strings.TrimSpace(line)
	word, arg, _ := strings.Cut(strings.TrimPrefix(line, "#"), " ")
	word, arg = strings.ToLower(strings.TrimSpace(word)), strings.TrimSpace(arg)
	switch word {
	case CmdClose, CmdReopen, CmdUrgent, CmdNormal:
		if arg != "" {
			return Command{}, fmt.Errorf("#%s takes no argument (%q)", word, line)
		}
		return Command{Name: word}, nil
	case CmdAssign:
		addr, err := mail.ParseAddress(arg)
		if err != nil {
			return Command{}, fmt.Errorf("#assign wants a staff address (%q)", line)
		}
		who := helpdesk.ASCIILower(addr.Address)
		if !slices.Contains(staff, who) {
			return Command{}, fmt.Errorf("#assign %s: not a staff address", who)
		}
		return Command{Name: CmdAssign, Arg: who}, nil
	}
	return Command{}, fmt.Errorf("unknown command %q (known: #close, #reopen, #urgent, #normal, #note, #assign ADDR)", "#"+word)
}

var attribution = regexp.MustCompile(`(?i)^\s*(on\b.{0,200}\bwrote:|op\b.{0,200}\bschreef\b.{0,80}:|-{2,}\s*(original message|oorspronkelijk bericht|doorgestuurd bericht|forwarded message)\s*-{2,})\s*$`)
var headerLine = regexp.MustCompile(`(?i)^\s*\**(from|van)\s*:\**\s+\S`)
var sentLine = regexp.MustCompile(`(?i)^\s*\**(sent|verzonden|date|datum)\s*:\**\s+\S`)

// StripQuoted cuts what a mail client quotes below a reply — the "On ... wrote:" or "Op ...
// schreef:" attribution, an Outlook "From:/Sent:" block, or a trailing run of "> " lines — so
// that a staff member's plain reply to a staff notice does not forward the notice (with its
// internal details) to the customer. Text above it is kept as written.
func StripQuoted(text string) string {
	lines := strings.Split(text, "\n")
	cut := len(lines)
	for i, l := range lines {
		if attribution.MatchString(l) || (headerLine.MatchString(l) && i+1 < len(lines) && sentLine.MatchString(lines[i+1])) {
			cut = i
			break
		}
	}
	// A trailing run of quoted lines (and blank ones) with no attribution above it.
	j := cut
	for j > 0 && (strings.HasPrefix(strings.TrimSpace(lines[j-1]), ">") || strings.TrimSpace(lines[j-1]) == "") {
		j--
	}
	if j < cut && j > 0 {
		cut = j
	}
	return strings.TrimSpace(strings.Join(lines[:cut], "\n"))
}

// IsRecoverySubject reports whether an email asks for a password reset (R16): the subject
// "wachtwoord vergeten" or "password forgotten", in any case, reply prefixes and punctuation
// aside ("RE: Wachtwoord vergeten!", "wachtwoord vergeten?").
func (p *Policy) IsRecoverySubject(subject string) bool {
	switch strings.Join(words(p.BaseSubject(subject)), " ") {
	case "wachtwoord vergeten", "password forgotten", "forgot password", "wachtwoord kwijt":
		return true
	}
	return false
}

// domainOf returns the domain of an address: what follows its last '@' (a quoted local part
// may hold one), ASCII letters lower-cased.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return helpdesk.ASCIILower(addr[i+1:])
}

// RecoveryPerHour is the most recovery links one address gets in an hour (R16, R17).
func (p *Policy) RecoveryPerHour() int { return p.recoveryPerHour() }

// StaffList is the address staff notices go to; "" when none is configured.
func (p *Policy) StaffList() string { return p.rules.StaffList }

// Staff returns the staff addresses (lower case): who may answer tickets and be #assigned.
func (p *Policy) Staff() []string { return slices.Clone(p.rules.Staff) }

// Calendars are the working-hours calendars the deadlines count (R6–R9); nil when none are
// configured.
func (p *Policy) Calendars() *calendar.Set { return p.rules.Calendars }
