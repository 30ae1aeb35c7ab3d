package ingest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/infobits/helpdesk"
)

// errTLSMode: the TLS mode is none of helpdesk.TLS*.
var errTLSMode = errors.New("want tls, starttls or none")

// dial connects to the IMAP server at addr in the TLS mode (helpdesk.TLS*), the certificate
// checked with opts.TLSConfig: the one dial of the poller and of Probe.
func dial(addr, mode string, opts *imapclient.Options) (*imapclient.Client, error) {
	switch mode {
	case helpdesk.TLSImplicit:
		return imapclient.DialTLS(addr, opts)
	case helpdesk.TLSStart:
		return imapclient.DialStartTLS(addr, opts)
	case helpdesk.TLSNone:
		return imapclient.DialInsecure(addr, opts)
	}
	return nil, fmt.Errorf("imap tls mode %q: %w", mode, errTLSMode)
}

// Account is what Probe found in the IMAP account.
type Account struct {
	Mailboxes []string // every mailbox of the account
	Exists    bool     // the mailbox asked for exists
	Messages  uint32   // in the mailbox asked for, when it exists
	CanMove   bool     // the server has MOVE (RFC 6851)
	// AuthResults are the Authentication-Results values (topmost first) of each of the newest
	// emails, newest first, when asked for; AuthFrom names the mailboxes they were read from.
	AuthResults [][]string
	AuthFrom    []string
}

// Has reports whether the account has the mailbox (INBOX in any case, others exactly, RFC 9051
// §5.1).
func (a *Account) Has(name string) bool {
	return slices.ContainsFunc(a.Mailboxes, func(n string) bool {
		return n == name || (strings.EqualFold(n, "INBOX") && strings.EqualFold(name, "INBOX"))
	})
}

// The steps of Probe, as ProbeError names them.
const (
	ProbeConnect = "connect" // dialling, TLS or STARTTLS
	ProbeToken   = "token"   // getting the OAuth access token from the provider
	ProbeLogin   = "login"   // LOGIN, or AUTHENTICATE with the OAuth token
	ProbeList    = "list"    // LIST of the mailboxes
	ProbeStatus  = "status"  // STATUS of the mailbox
	ProbeHeaders = "headers" // EXAMINE and FETCH of the newest emails' Authentication-Results
)

// ProbeError is a failed step of Probe. Mailbox names the mailbox of a status or headers
// step; Refused says the server refused the login (a NO or BAD, not a broken connection), with
// Text, the server's words.
type ProbeError struct {
	Step    string
	Mailbox string
	Refused bool
	Text    string
	Fix     string // what to check after a refused OAuth login
	Err     error
}

func (e *ProbeError) Error() string {
	if e.Mailbox != "" {
		return fmt.Sprintf("imap %s %q: %v", e.Step, e.Mailbox, e.Err)
	}
	return fmt.Sprintf("imap %s: %v", e.Step, e.Err)
}

func (e *ProbeError) Unwrap() error { return e.Err }

// Probe connects to the IMAP server as the poller does (cfg's address, TLS mode, certificate
// check and credentials), logs in, lists the mailboxes and counts the messages of
// cfg.Mailbox. With authSample > 0 it also reads the Authentication-Results fields of that
// many of the newest emails of cfg.Mailbox — and, when it has fewer, of cfg.MoveTo, where
// processed mail goes. It changes nothing on the server (EXAMINE, BODY.PEEK). cfg.DialTimeout
// bounds the connect, cfg.CommandTimeout the whole look; ctx ends it early. It blocks.
func Probe(ctx context.Context, cfg Config, authSample int) (*Account, error) {
	cfg.defaults()
	opts := &imapclient.Options{TLSConfig: cfg.TLSConfig, Dialer: &net.Dialer{Timeout: cfg.DialTimeout}}
	c, err := dial(cfg.Addr, cfg.TLS, opts)
	if err != nil {
		return nil, &ProbeError{Step: ProbeConnect, Err: err}
	}
	// The library has no deadlines: the connection is closed when the look takes too long.
	watchdog := time.AfterFunc(cfg.CommandTimeout, func() { c.Close() })
	defer watchdog.Stop()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	if err := login(ctx, c, &cfg); err != nil {
		pe := &ProbeError{Step: ProbeLogin, Err: err}
		var r *refusal
		var te *tokenError
		switch {
		case errors.As(err, &r):
			pe.Refused, pe.Text = true, r.ie.Text
			if r.oauth {
				pe.Fix = loginFix(r)
			}
		case errors.As(err, &te):
			pe.Step, pe.Err = ProbeToken, te.err
		}
		return nil, pe
	}
	a := &Account{CanMove: c.Caps().Has(imap.CapMove)}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return nil, &ProbeError{Step: ProbeList, Err: err}
	}
	for _, l := range list {
		a.Mailboxes = append(a.Mailboxes, l.Mailbox)
	}
	if a.Exists = a.Has(cfg.Mailbox); a.Exists {
		st, err := c.Status(cfg.Mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return nil, &ProbeError{Step: ProbeStatus, Mailbox: cfg.Mailbox, Err: err}
		}
		if st.NumMessages != nil {
			a.Messages = *st.NumMessages
		}
		boxes := []string{cfg.Mailbox}
		if cfg.MoveTo != "" && cfg.MoveTo != cfg.Mailbox && a.Has(cfg.MoveTo) {
			boxes = append(boxes, cfg.MoveTo)
		}
		for _, box := range boxes {
			if len(a.AuthResults) >= authSample {
				break
			}
			got, err := readAuthResults(c, box, authSample-len(a.AuthResults))
			if err != nil {
				return nil, &ProbeError{Step: ProbeHeaders, Mailbox: box, Err: err}
			}
			if len(got) > 0 {
				a.AuthResults = append(a.AuthResults, got...)
				a.AuthFrom = append(a.AuthFrom, box)
			}
		}
	}
	_ = c.Logout().Wait()
	return a, nil
}

// readAuthResults returns the Authentication-Results values (topmost first) of the newest n
// emails of box, newest first. Only the start of each header section is read: the topmost
// field is the first, and a hostile email's header cannot make the look expensive.
func readAuthResults(c *imapclient.Client, box string, n int) ([][]string, error) {
	sel, err := c.Select(box, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil || sel.NumMessages == 0 {
		return nil, err
	}
	first := uint32(1)
	if sel.NumMessages > uint32(n) {
		first = sel.NumMessages - uint32(n) + 1
	}
	var set imap.SeqSet
	set.AddRange(first, sel.NumMessages)
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Authentication-Results"},
		Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: 16 << 10}}
	bufs, err := c.Fetch(set, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return nil, err
	}
	slices.SortFunc(bufs, func(a, b *imapclient.FetchMessageBuffer) int { return cmp.Compare(b.SeqNum, a.SeqNum) })
	var out [][]string
	for _, b := range bufs {
		raw := b.FindBodySection(section)
		// A header section cut short still gives the fields before the cut.
		h, _ := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(raw), strings.NewReader("\r\n\r\n")))).ReadMIMEHeader()
		out = append(out, h.Values("Authentication-Results"))
	}
	return out, nil
}
