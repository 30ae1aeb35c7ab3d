package smtpsink

import (
	"bytes"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The SASL mechanisms that carry an OAuth 2.0 bearer token.
const (
	mechXOAuth2     = "XOAUTH2"     // Google's and Microsoft's
	mechOAuthBearer = "OAUTHBEARER" // RFC 7628
)

// bearerServer is the server side of XOAUTH2 and OAUTHBEARER: it reads the user and the
// token, asks Options.Bearer, and on a refusal sends the JSON error challenge, then 535 5.7.8
// after the client's answer — as Gmail and Exchange Online do.
type bearerServer struct {
	ss     *session
	mech   string
	failed bool
}

var _ sasl.Server = (*bearerServer)(nil)

func (b *bearerServer) Next(response []byte) ([]byte, bool, error) {
	if b.failed {
		return nil, true, smtp.ErrAuthFailed
	}
	if response == nil {
		return []byte{}, false, nil // ask for the initial response
	}
	user, token := parseBearer(b.mech, response)
	if user == "" || token == "" || !b.ss.s.opts.Bearer(user, token) {
		b.failed = true
		return []byte(`{"status":"invalid_token","schemes":"bearer","scope":""}`), false, nil
	}
	b.ss.user = user
	return nil, true, nil
}

// parseBearer reads the user and the token of an XOAUTH2 ("user=U\x01auth=Bearer T\x01\x01")
// or OAUTHBEARER ("n,a=U,\x01auth=Bearer T\x01\x01", RFC 7628 §3.1) message.
func parseBearer(mech string, msg []byte) (user, token string) {
	rest := msg
	if mech == mechOAuthBearer {
		parts := bytes.SplitN(msg, []byte{','}, 3)
		if len(parts) != 3 || string(parts[0]) != "n" {
			return "", ""
		}
		user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(strings.TrimPrefix(string(parts[1]), "a="))
		rest = parts[2]
	}
	for _, kv := range bytes.Split(rest, []byte{0x01}) {
		k, v, _ := strings.Cut(string(kv), "=")
		switch {
		case k == "user" && mech == mechXOAuth2:
			user = v
		case k == "auth" && len(v) > 7 && strings.EqualFold(v[:7], "bearer "):
			token = v[7:]
		}
	}
	return user, token
}
