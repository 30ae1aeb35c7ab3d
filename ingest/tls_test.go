package ingest_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/ingest"
	"github.com/infobits/helpdesk/ingest/imapmem"
	"github.com/infobits/helpdesk/ingest/imaptest"
)

// The IMAP password of the TLS tests: long and distinctive, so that finding it in what the
// poller sent on the wire means it went in clear (never by chance in TLS ciphertext).
const tlsTestPassword = "wachtwoord-dat-nooit-in-klare-tekst-mag"

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool // trusts this CA alone
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// serverTLS returns a server configuration with a certificate of the CA for the hosts (IP
// addresses or DNS names).
func (ca *testCA) serverTLS(t *testing.T, hosts ...string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
}

// tap is a TCP relay in front of a server that records every byte the client sends, as a
// network observer between the gateway and its IMAP server would see it.
type tap struct {
	addr string
	ln   net.Listener
	wg   sync.WaitGroup // one per connection: done when the client's side is read to the end
	mu   sync.Mutex
	sent bytes.Buffer
}

func newTap(t *testing.T, backend string) *tap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{addr: ln.Addr().String(), ln: ln}
	var conns sync.WaitGroup
	conns.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			srv, err := net.Dial("tcp", backend)
			if err != nil {
				client.Close()
				continue
			}
			tp.wg.Add(1)
			conns.Go(func() {
				defer tp.wg.Done()
				_, _ = io.Copy(srv, io.TeeReader(client, tp))
				srv.Close()
				client.Close()
			})
			conns.Go(func() {
				_, _ = io.Copy(client, srv)
				srv.Close()
				client.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		conns.Wait()
	})
	return tp
}

func (tp *tap) Write(b []byte) (int, error) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.sent.Write(b)
}

// clientBytes returns what the clients sent, once every connection through the tap is over.
func (tp *tap) clientBytes(t *testing.T) []byte {
	t.Helper()
	done := make(chan struct{})
	go func() {
		tp.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute): // a wait for an event, with room for a busy machine
		t.Fatal("a connection through the tap is still open after the poller returned")
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return bytes.Clone(tp.sent.Bytes())
}

// newTLSFixture starts an in-memory IMAP server with the options (user "helpdesk", password
// tlsTestPassword), reached through a tap, and a poller in the TLS mode with the client
// configuration.
func newTLSFixture(t *testing.T, mo imapmem.Options, mode string, client *tls.Config) (*fixture, *tap) {
	t.Helper()
	mo.User, mo.Password = "helpdesk", tlsTestPassword
	m := imaptest.NewMem(t, mo)
	tp := newTap(t, m.Addr)
	f := newFixtureOn(t, &server{addr: tp.addr, user: m.User, pass: m.Password, mem: m}, func(c *ingest.Config) {
		c.TLS, c.TLSConfig = mode, client
		c.DialTimeout = 10 * time.Second
	})
	return f, tp
}

var tlsTestMail = mailOpts{from: "Piet <piet@bakkerijdevries.nl>", subject: "Kassa start niet op",
	msgID: "tls1@bakkerij", body: "Help, de kassa doet het niet."}

// assertTicket: the email delivered became a ticket and was flagged \Seen over the session.
func assertTicket(t *testing.T, f *fixture) {
	t.Helper()
	ts := f.tickets()
	if len(ts) != 1 || ts[0].Subject != tlsTestMail.subject || ts[0].Address != "piet@bakkerijdevries.nl" {
		t.Fatalf("tickets = %+v, want one for %q", ts, tlsTestMail.subject)
	}
	if n, unseen, err := f.srv.mem.Status("INBOX"); err != nil || n != 1 || unseen != 0 {
		t.Errorf("INBOX: %d messages, %d unseen (%v); want 1, 0", n, unseen, err)
	}
}

// assertNothingProcessed: the session failed before any email was taken in.
func assertNothingProcessed(t *testing.T, f *fixture) {
	t.Helper()
	if ts, hs := f.tickets(), f.held(); len(ts) != 0 || len(hs) != 0 {
		t.Errorf("tickets = %+v, held = %+v; want none", ts, hs)
	}
	if n, unseen, err := f.srv.mem.Status("INBOX"); err != nil || n != 1 || unseen != 1 {
		t.Errorf("INBOX: %d messages, %d unseen (%v); want 1, 1", n, unseen, err)
	}
}

// TestIMAPImplicitTLS: imap_tls = tls (IMAPS) works end to end against a server whose
// certificate comes from a CA the poller is configured to trust, and nothing goes in clear.
func TestIMAPImplicitTLS(t *testing.T) {
	ca := newTestCA(t, "Infobits test CA")
	for _, tc := range []struct {
		name   string
		hosts  []string // the certificate's names
		client *tls.Config
	}{
		// No ServerName: it is taken from the address (127.0.0.1), and checked.
		{"server name from the address", []string{"127.0.0.1"}, &tls.Config{RootCAs: ca.pool}},
		// The address is an IP, the certificate names a host: the configured name is checked.
		{"configured server name", []string{"imap.infobits.example"}, &tls.Config{RootCAs: ca.pool, ServerName: "imap.infobits.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, tp := newTLSFixture(t, imapmem.Options{TLS: ca.serverTLS(t, tc.hosts...), ImplicitTLS: true}, helpdesk.TLSImplicit, tc.client)
			f.deliver(buildMail(tlsTestMail))
			f.once()
			assertTicket(t, f)
			sent := tp.clientBytes(t)
			if len(sent) < 3 || sent[0] != 0x16 || sent[1] != 0x03 {
				t.Errorf("the poller's first bytes are not a TLS handshake: %q", sent[:min(len(sent), 16)])
			}
			if bytes.Contains(sent, []byte(tlsTestPassword)) {
				t.Error("the password crossed the wire in clear")
			}
		})
	}
}

// TestIMAPStartTLS: imap_tls = starttls upgrades the plain connection before it logs in (the
// server refuses LOGIN in clear, as production servers do), and the email becomes a ticket.
func TestIMAPStartTLS(t *testing.T) {
	ca := newTestCA(t, "Infobits test CA")
	f, tp := newTLSFixture(t, imapmem.Options{TLS: ca.serverTLS(t, "127.0.0.1")}, helpdesk.TLSStart, &tls.Config{RootCAs: ca.pool})
	f.deliver(buildMail(tlsTestMail))
	f.once()
	assertTicket(t, f)

	sent := tp.clientBytes(t)
	i := bytes.Index(sent, []byte("STARTTLS\r\n"))
	if i < 0 {
		t.Fatalf("the poller never sent STARTTLS; it sent %q", sent[:min(len(sent), 200)])
	}
	if before := sent[:i]; bytes.Contains(bytes.ToUpper(before), []byte("LOGIN")) || bytes.Contains(bytes.ToUpper(before), []byte("AUTHENTICATE")) {
		t.Errorf("the poller tried to log in before STARTTLS: %q", before)
	}
	if bytes.Contains(sent, []byte(tlsTestPassword)) {
		t.Error("the password crossed the wire in clear")
	}
}

// TestIMAPStartTLSNotOffered: a server (or a man in the middle) that does not offer STARTTLS
// makes a starttls poller fail with an error that says so. It does not fall back to logging
// in in clear.
func TestIMAPStartTLSNotOffered(t *testing.T) {
	f, tp := newTLSFixture(t, imapmem.Options{}, helpdesk.TLSStart, nil) // plaintext server, LOGIN allowed
	f.deliver(buildMail(tlsTestMail))
	err := f.poller.Once(context.Background())
	if err == nil {
		t.Fatal("Once succeeded against a server without STARTTLS")
	}
	if msg := err.Error(); !strings.Contains(msg, tp.addr+" with STARTTLS:") || !strings.Contains(msg, "STARTTLS") || !strings.Contains(msg, tp.addr) {
		t.Errorf("error %q should name the server, the tls mode and STARTTLS", msg)
	}
	if msg := err.Error(); !strings.Contains(msg, "imap_tls = tls") {
		t.Errorf("error %q should tell the operator what to set instead", msg)
	}
	t.Logf("operator sees: %v", err)
	if sent := tp.clientBytes(t); bytes.Contains(sent, []byte(tlsTestPassword)) || bytes.Contains(bytes.ToUpper(sent), []byte("LOGIN")) {
		t.Errorf("the poller logged in in clear: %q", sent)
	}
	assertNothingProcessed(t, f)
}

// TestIMAPTLSUntrustedCertificate: a certificate the poller does not trust — from another
// CA, for another host, or from a private CA while the poller uses the system roots (the
// default) — fails the session with an error that names the server and the certificate
// problem, before any credentials are sent or any email is taken in.
func TestIMAPTLSUntrustedCertificate(t *testing.T) {
	trusted, other := newTestCA(t, "Infobits test CA"), newTestCA(t, "Some other CA")
	for _, tc := range []struct {
		name   string
		mode   string
		srv    *tls.Config
		client *tls.Config
		want   string // in the error, besides "certificate"
	}{
		{"tls, other CA", helpdesk.TLSImplicit, other.serverTLS(t, "127.0.0.1"), &tls.Config{RootCAs: trusted.pool}, "unknown authority"},
		{"starttls, other CA", helpdesk.TLSStart, other.serverTLS(t, "127.0.0.1"), &tls.Config{RootCAs: trusted.pool}, "unknown authority"},
		{"tls, wrong host", helpdesk.TLSImplicit, trusted.serverTLS(t, "imap.elders.example"),
			&tls.Config{RootCAs: trusted.pool, ServerName: "imap.infobits.example"}, "valid for imap.elders.example, not imap.infobits.example"},
		{"starttls, wrong host", helpdesk.TLSStart, trusted.serverTLS(t, "imap.elders.example"),
			&tls.Config{RootCAs: trusted.pool, ServerName: "imap.infobits.example"}, "valid for imap.elders.example, not imap.infobits.example"},
		// The address's host is checked when no name is configured.
		{"tls, address not in certificate", helpdesk.TLSImplicit, trusted.serverTLS(t, "imap.infobits.example"), &tls.Config{RootCAs: trusted.pool}, "certificate for 127.0.0.1 because it doesn't contain any IP SANs"},
		{"tls, system roots", helpdesk.TLSImplicit, trusted.serverTLS(t, "127.0.0.1"), nil, "unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, tp := newTLSFixture(t, imapmem.Options{TLS: tc.srv, ImplicitTLS: tc.mode == helpdesk.TLSImplicit}, tc.mode, tc.client)
			f.deliver(buildMail(tlsTestMail))
			err := f.poller.Once(context.Background())
			if err == nil {
				t.Fatal("Once succeeded with an untrusted certificate")
			}
			msg := err.Error()
			if !strings.Contains(msg, "certificate") || !strings.Contains(msg, tc.want) ||
				!strings.Contains(msg, tp.addr) || !strings.Contains(msg, tp.addr+" "+helpdesk.TLSWords(tc.mode)+": ") {
				t.Errorf("error %q should name the server, the tls mode and the certificate problem (%q)", msg, tc.want)
			}
			t.Logf("operator sees: %v", err)
			if sent := tp.clientBytes(t); bytes.Contains(sent, []byte(tlsTestPassword)) {
				t.Error("the password crossed the wire in clear")
			}
			assertNothingProcessed(t, f)
		})
	}
}
