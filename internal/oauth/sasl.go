package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
)

// The SASL mechanisms that carry a bearer token.
const (
	XOAuth2     = "XOAUTH2"     // Google's and Microsoft's (developers.google.com/gmail/imap/xoauth2-protocol)
	OAuthBearer = "OAUTHBEARER" // RFC 7628
)

// ErrNoMechanism: the server offers neither XOAUTH2 nor OAUTHBEARER.
var ErrNoMechanism = errors.New("the server offers no OAuth SASL mechanism (XOAUTH2 or OAUTHBEARER)")

// Mechanism picks the mechanism to use from what the server offers (has reports whether it
// offers one): OAUTHBEARER, the standard, where offered (Gmail, Dovecot), else XOAUTH2
// (Exchange Online offers only that).
func Mechanism(has func(mech string) bool) (string, error) {
	switch {
	case has(OAuthBearer):
		return OAuthBearer, nil
	case has(XOAuth2):
		return XOAuth2, nil
	}
	return "", ErrNoMechanism
}

// SASLClient is a client side of XOAUTH2 or OAUTHBEARER for user with token. A server that
// refuses the token first sends a JSON error as a challenge; the client answers it (Next), so
// that the server ends the exchange with its refusal (IMAP NO [AUTHENTICATIONFAILED], SMTP
// 535) on a connection that stays usable. Failure then has the server's JSON status.
type SASLClient struct {
	mech, user, token, host string
	port                    int
	failure                 string
}

// NewSASLClient makes a client for mech (XOAuth2 or OAuthBearer). host and port go into an
// OAUTHBEARER message (RFC 7628 §3.1, optional); port 0 leaves it out.
func NewSASLClient(mech, user, token, host string, port int) *SASLClient {
	return &SASLClient{mech: mech, user: user, token: token, host: host, port: port}
}

var _ sasl.Client = (*SASLClient)(nil)

// Start sends the initial response with the token.
func (c *SASLClient) Start() (string, []byte, error) {
	if c.mech == XOAuth2 {
		return XOAuth2, []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
	}
	var b strings.Builder
	b.WriteString("n,a=" + saslName(c.user) + ",")
	if c.host != "" {
		b.WriteString("\x01host=" + c.host)
	}
	if c.port != 0 {
		b.WriteString("\x01port=" + strconv.Itoa(c.port))
	}
	b.WriteString("\x01auth=Bearer " + c.token + "\x01\x01")
	return OAuthBearer, []byte(b.String()), nil
}

// Next answers the server's error challenge so that the server can finish with a failure.
func (c *SASLClient) Next(challenge []byte) ([]byte, error) {
	var e struct {
		Status string `json:"status"`
		Scope  string `json:"scope"`
	}
	if json.Unmarshal(challenge, &e) == nil && e.Status != "" {
		c.failure = e.Status
	} else {
		c.failure = "unexpected challenge"
	}
	// RFC 7628 §3.2.3 asks for %x01. XOAUTH2 asks for an empty response, which go-imap
	// can only send as "=", and Dovecot reads that as invalid base64 ("Invalid base64 data in
	// continued response", seen against 2.3.19): %x01 ends that exchange too.
	return []byte{0x01}, nil
}

// Failure returns the status of the server's error challenge ("invalid_token", "401", ...),
// or "" when the server sent none.
func (c *SASLClient) Failure() string { return c.failure }

// saslName escapes ',' and '=' in an authzid (RFC 5801 §4).
func saslName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// Describe names the mechanism and the server's error status for an error message.
func (c *SASLClient) Describe() string {
	if c.failure == "" {
		return c.mech
	}
	return fmt.Sprintf("%s, status %q", c.mech, c.failure)
}
