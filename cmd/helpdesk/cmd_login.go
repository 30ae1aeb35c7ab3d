package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/desk"
	"github.com/infobits/helpdesk/store"
)

// customer approve-login / cancel-login: staff decide a login change asked through the site
// (R17) — the staff notice of the change names these commands. The decision is
// the desk's (desk.Desk.ApproveLogin, CancelLogin); this is wiring.

const loginChangeArgs = "ADDR|NUMBER"

func runCustomerApproveLogin(e *env, args []string) error {
	return runLoginDecision(e, "customer approve-login", args, func(a *desk.Desk, tx *store.Tx, id uint64, by string) (*helpdesk.LoginChange, error) {
		return a.ApproveLogin(tx, id, by, e.now())
	})
}

func runCustomerCancelLogin(e *env, args []string) error {
	return runLoginDecision(e, "customer cancel-login", args, func(a *desk.Desk, tx *store.Tx, id uint64, by string) (*helpdesk.LoginChange, error) {
		return a.CancelLogin(tx, id, by, e.now())
	})
}

func runLoginDecision(e *env, name string, args []string, decide func(*desk.Desk, *store.Tx, uint64, string) (*helpdesk.LoginChange, error)) error {
	fs, _ := newFlags(e, name, loginChangeArgs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want the customer's number or one of their addresses", errUsage)
	}
	cfg, err := e.config(args)
	if err != nil {
		return err
	}
	if err := cfg.require("from"); err != nil {
		return err
	}
	dk, err := newDesk(cfg, e.now)
	if err != nil {
		return err
	}
	by := e.operator()
	var ch *helpdesk.LoginChange
	var c *helpdesk.Customer
	err = e.db.Update(e.ctx, func(tx *store.Tx) (err error) {
		if c, err = customerByArg(tx, pos[0]); err != nil {
			return err
		}
		ch, err = decide(dk, tx, c.ID, by)
		if errors.Is(err, helpdesk.ErrNotFound) {
			return fmt.Errorf("customer %d (%s) has no pending login change: %w", c.ID, terminalSafe(c.Name), err)
		}
		return err
	})
	if err != nil {
		return err
	}
	if e.log != nil {
		e.log.Info("login change decided by an operator", "command", name, "customer", c.ID, "login_change", ch.ID,
			"new", ch.NewEmail, "outcome", ch.Outcome, "user", by)
	}
	fmt.Fprintf(e.stdout, "login change %d of customer %d (%s) to %s: %s\n", ch.ID, c.ID, terminalSafe(c.Name),
		terminalSafe(ch.NewEmail), loginState(ch))
	return nil
}

// customerByArg finds a customer by number or by one of their addresses.
func customerByArg(tx *store.Tx, arg string) (*helpdesk.Customer, error) {
	if id, err := strconv.ParseUint(arg, 10, 64); err == nil {
		c, err := tx.Customer(id)
		if errors.Is(err, helpdesk.ErrNotFound) {
			return nil, fmt.Errorf("no customer %d", id)
		}
		return c, err
	}
	return findCustomer(tx, helpdesk.NormalizeAddress(arg))
}

// loginState says where a login change stands, for the operator.
func loginState(ch *helpdesk.LoginChange) string {
	at := func(t time.Time) string { return t.In(helpdesk.Amsterdam()).Format("2006-01-02 15:04") }
	switch {
	case ch.Outcome == helpdesk.LoginApplied:
		return "took effect " + at(ch.Settled) + " (" + ch.Detail + ")"
	case !ch.Pending():
		return ch.Outcome + " " + at(ch.Settled) + byWhom(ch.By) + " (" + ch.Detail + ")"
	}
	s := "pending, asked " + at(ch.Requested)
	if ch.NewConfirmed.IsZero() {
		s += "; the new address has not confirmed"
		if !ch.ConfirmBy.IsZero() {
			s += " (its link works until " + at(ch.ConfirmBy) + ")"
		}
	} else {
		s += "; the new address confirmed " + at(ch.NewConfirmed)
	}
	switch {
	case !ch.Approved.IsZero():
		s += "; approved by " + ch.ApprovedBy + ": takes effect once the new address confirms"
	case !ch.OldConfirmed.IsZero():
		s += "; the old login agreed: takes effect once the new address confirms"
	default:
		s += "; takes effect " + at(ch.Until) + " unless the old login or staff cancel it"
	}
	return s
}

// runCustomerInvite queues the invitation to the site (desk.Desk.Invite): a link to set a
// password, to the customer's login address; the running gateway sends it.
func runCustomerInvite(e *env, args []string) error {
	fs, _ := newFlags(e, "customer invite", "ADDR")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	addr, err := oneAddress(pos)
	if err != nil {
		return err
	}
	cfg, err := e.config(args)
	if err != nil {
		return err
	}
	if err := cfg.require("from", "site_url"); err != nil {
		return err
	}
	dk, err := newDesk(cfg, e.now)
	if err != nil {
		return err
	}
	var c *helpdesk.Customer
	err = e.db.Update(e.ctx, func(tx *store.Tx) (err error) {
		c, err = dk.Invite(tx, addr, e.now())
		if errors.Is(err, helpdesk.ErrNotFound) {
			return fmt.Errorf("no customer has the address %s (helpdesk customer list shows them)", addr)
		}
		return err
	})
	if err != nil {
		return err
	}
	if e.log != nil {
		e.log.Info("invitation to the site queued", "customer", c.ID, "to", c.Login(), "user", e.operator())
	}
	fmt.Fprintf(e.stdout, "invitation queued for customer %d (%s) to %s: a link to set a password on %s\n",
		c.ID, terminalSafe(c.Name), terminalSafe(c.Login()), terminalSafe(cfg.SiteURL))
	return nil
}
