package imaptest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// OAuth2 configures a Dovecot instance to check OAuth 2.0 bearer tokens itself: its oauth2
// passdb posts every token presented with XOAUTH2 or OAUTHBEARER to IntrospectionURL (RFC 7662)
// and accepts the login when the answer has "active": true and "username" equal to the login.
// Passwords keep working beside it.
type OAuth2 struct {
	IntrospectionURL string
	// Mechanisms offered, a subset of "xoauth2" and "oauthbearer"; empty: both.
	Mechanisms []string
}

// NewDovecotOAuth2 is NewDovecot for an instance that also takes OAuth bearer tokens.
func NewDovecotOAuth2(tb testing.TB, o OAuth2) *Dovecot {
	tb.Helper()
	if DovecotBinary() == "" {
		tb.Skip("dovecot not installed: apt-get install dovecot-imapd")
	}
	if len(o.Mechanisms) == 0 {
		o.Mechanisms = []string{"xoauth2", "oauthbearer"}
	}
	d, err := startDovecot(tb.TempDir(), "helpdesk", randomPassword(), &o)
	if err != nil {
		tb.Fatalf("imaptest: %v", err)
	}
	tb.Cleanup(func() {
		if err := d.Stop(); err != nil {
			tb.Errorf("imaptest: %v", err)
		}
	})
	return d
}

func (d *Dovecot) oauth2Mechanisms() string {
	if d.oauth2 == nil {
		return ""
	}
	return " " + strings.Join(d.oauth2.Mechanisms, " ")
}

// oauth2Config writes the oauth2 passdb block and its .ext file (read by the auth process at
// start, so it is written before every start).
func (d *Dovecot) oauth2Config(w func(string, ...any)) {
	if d.oauth2 == nil {
		return
	}
	ext := filepath.Join(d.Dir, "dovecot-oauth2.conf.ext")
	conf := fmt.Sprintf("introspection_mode = post\nintrospection_url = %s\nusername_attribute = username\n"+
		"active_attribute = active\nactive_value = true\n", d.oauth2.IntrospectionURL)
	if err := os.WriteFile(ext, []byte(conf), 0o644); err != nil {
		w("# cannot write %s: %v", ext, err)
	}
	w("passdb {")
	w("  driver = oauth2")
	w("  mechanisms = %s", strings.Join(d.oauth2.Mechanisms, " "))
	w("  args = %s", ext)
	w("}")
}
