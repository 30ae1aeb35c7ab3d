package helpdesk

import "net"

// Transport security of a connection to a mail server: the values of imap_tls and smtp_tls.
// The certificate is always checked; plaintext is allowed only to the local machine.
const (
	TLSImplicit = "tls"      // TLS from the first byte: IMAPS (port 993), SMTPS (port 465)
	TLSStart    = "starttls" // STARTTLS (RFC 3207, RFC 9051 §6.2.1): IMAP on 143, submission on 587
	TLSNone     = "none"     // plaintext: loopback only
)

// TLSWords says how a connection in the mode is made, to follow the server's address in a
// sentence: "connect to SMTP server 127.0.0.1:25 without TLS".
func TLSWords(mode string) string {
	switch mode {
	case TLSImplicit:
		return "over TLS"
	case TLSStart:
		return "with STARTTLS"
	case TLSNone:
		return "without TLS"
	}
	return "with TLS mode " + mode
}

// ValidTLS reports whether mode is one of the TLS* modes.
func ValidTLS(mode string) bool {
	return mode == TLSImplicit || mode == TLSStart || mode == TLSNone
}

// IsLoopback reports whether host:port (or a bare host) names the local machine: "localhost"
// or a loopback IP address. Only such an address may be spoken to in plaintext (TLSNone), and
// only such an address may serve the HTTP API without a proxy in front.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
