package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The customer's site attacked as an outsider would, through the real listener of a running
// gateway: what a careful site must hold against.

// atOnce sends n requests at the same time (made by req(i)) and counts the answers by status.
func atOnce(n int, req func(i int) reply) map[int]int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := req(i)
			mu.Lock()
			codes[r.status]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return codes
}

// TestSiteThrottleAtOnce: log-in attempts sent all at once are throttled like attempts sent
// one by one — an attempt counts from the moment it is let through, not from when its
// password check (tens of milliseconds of argon2id) ends. 30 guesses for one address from 30
// clients: 5 are checked, 25 refused; 30 addresses tried from one client: 20 checked.
func TestSiteThrottleAtOnce(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	mustRun(t, env, "customer", "invite", siteA)
	setPassword(t, newVisitor(t, base), emailedLink(t, p, siteA, 1), sitePW)

	// The test talks to the gateway over loopback, so it stands for a TLS proxy on the same
	// machine and names the client in X-Forwarded-For.
	codes := atOnce(30, func(i int) reply {
		v := newVisitor(t, base)
		v.header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i+1))
		return v.post("/inloggen", url.Values{"email": {siteA}, "password": {fmt.Sprintf("raden-%02d-poging", i)}})
	})
	if codes[http.StatusUnauthorized] != 5 || codes[http.StatusTooManyRequests] != 25 {
		t.Errorf("30 guesses at once for one address: %v, want 5×401 and 25×429", codes)
	}
	v := newVisitor(t, base)
	v.header.Set("X-Forwarded-For", "192.0.2.200")
	if r := v.post("/inloggen", url.Values{"email": {siteA}, "password": {sitePW}}); r.status != http.StatusTooManyRequests {
		t.Errorf("the right password after 5 failures: %d, want 429", r.status)
	}

	codes = atOnce(30, func(i int) reply {
		v := newVisitor(t, base)
		v.header.Set("X-Forwarded-For", "198.51.100.7")
		return v.post("/inloggen", url.Values{"email": {fmt.Sprintf("klant%02d@example.nl", i)}, "password": {"raden-en-nog-eens"}})
	})
	if codes[http.StatusUnauthorized] != 20 || codes[http.StatusTooManyRequests] != 10 {
		t.Errorf("30 addresses at once from one client: %v, want 20×401 and 10×429", codes)
	}
}

// TestSiteThrottleIPv6: an IPv6 client is its /64 — a subscriber gets a whole /64 and can
// use a new address for every guess. 20 failures from 20 addresses of one /64 and the next
// guess from yet another address of it waits; another /64 is another client.
func TestSiteThrottleIPv6(t *testing.T) {
	p := newPeers(t)
	base, _, _ := siteGateway(t, p, siteClock())
	guess := func(from string, i int) int {
		v := newVisitor(t, base)
		v.header.Set("X-Forwarded-For", from)
		return v.post("/inloggen", url.Values{"email": {fmt.Sprintf("klant%02d@example.nl", i)}, "password": {"raden-en-nog-eens"}}).status
	}
	for i := range 20 {
		if st := guess(fmt.Sprintf("2001:db8:1:2::%x", i+1), i); st != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, st)
		}
	}
	if st := guess("2001:db8:1:2:ffff:ffff:ffff:fffe", 20); st != http.StatusTooManyRequests {
		t.Errorf("the 21st guess from the same /64: %d, want 429", st)
	}
	if st := guess("2001:db8:1:3::1", 21); st != http.StatusUnauthorized {
		t.Errorf("a guess from another /64: %d, want 401", st)
	}
}

// endless is a request body of n bytes that counts how much of it was read.
type endless struct {
	n, read int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.read >= e.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), e.n-e.read)
	for i := range p[:k] {
		p[i] = 'x'
	}
	atomic.AddInt64(&e.read, k)
	return int(k), nil
}

// sendEndless posts a body of 256 MiB (the form's fields, then an endless value or file in
// the given encoding) and returns how many bytes the gateway took before it answered, and its
// answer (0 when it cut the connection before answering).
func sendEndless(t *testing.T, v *visitor, path, encoding string, fields url.Values) (int64, int) {
	t.Helper()
	body := &endless{n: 256 << 20}
	var head, ctype string
	switch encoding {
	case "multipart":
		var b strings.Builder
		for k, vs := range fields {
			for _, val := range vs {
				fmt.Fprintf(&b, "--XYZ\r\nContent-Disposition: form-data; name=%q\r\n\r\n%s\r\n", k, val)
			}
		}
		b.WriteString("--XYZ\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"groot.bin\"\r\n\r\n")
		head, ctype = b.String(), "multipart/form-data; boundary=XYZ"
	default:
		head, ctype = fields.Encode()+"&text=", "application/x-www-form-urlencoded"
	}
	req, _ := http.NewRequest("POST", v.base+path, io.MultiReader(strings.NewReader(head), body))
	req.Header.Set("Content-Type", ctype)
	for k, vs := range v.header {
		req.Header[k] = vs
	}
	for _, c := range v.c.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	status := 0
	if resp, err := http.DefaultClient.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}
	return atomic.LoadInt64(&body.read), status
}

// TestSiteEndlessForm: a POST without files takes at most a form's worth of body (64 KiB),
// in either encoding, logged in or not; a longer one is refused (413) and not read on — it
// is never read into memory or spooled to disk whole. The site keeps working.
func TestSiteEndlessForm(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	mustRun(t, env, "customer", "invite", siteA)
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteA, 1), sitePW)
	anon := newVisitor(t, base)
	const bound = 32 << 20 // the form's bound plus what the sockets' buffers hold
	for _, c := range []struct {
		v      *visitor
		path   string
		fields url.Values
	}{
		{anon, "/inloggen", url.Values{"email": {siteA}}},
		{anon, "/wachtwoord/vergeten", url.Values{}},
		{anon, "/wachtwoord/herstel", url.Values{}},
		{anon, "/login/vergeten", url.Values{}},
		{anon, "/login/bevestig", url.Values{}},
		{v, "/account", url.Values{"csrf": {v.csrf("/account")}, "form": {"profile"}}},
		{v, "/uitloggen", url.Values{"csrf": {v.csrf("/helpdesk")}}},
	} {
		for _, enc := range []string{"multipart", "urlencoded"} {
			read, status := sendEndless(t, c.v, c.path, enc, c.fields)
			if read > bound || (status != 0 && status != http.StatusRequestEntityTooLarge) {
				t.Errorf("POST %s with an endless %s body: the gateway took %d MiB and answered %d; want at most %d MiB, 413",
					c.path, enc, read>>20, status, bound>>20)
			}
		}
	}
	if r := v.get("/helpdesk"); r.status != http.StatusOK {
		t.Errorf("the Helpdesk page after the endless forms: %d", r.status)
	}
}

// TestSiteFormTokenAnyEncoding: a logged-in POST without the session's form token is refused
// whatever its encoding — a multipart body to a form that has no files (Mijn account, log out)
// too; nothing changes.
func TestSiteFormTokenAnyEncoding(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	mustRun(t, env, "customer", "invite", siteA)
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteA, 1), sitePW)
	for _, tok := range []string{"", "Zm9yZ2VkLXRva2VuLXZhbi1kZS1hYW52YWxsZXItMTIzNA"} {
		fields := map[string]string{"form": "profile", "answer": "site", "lang": "en", "phones": "", "csrf": tok}
		if r := v.postFiles("/account", fields); r.status != http.StatusForbidden {
			t.Errorf("a multipart POST /account with the token %q: %d, want 403", tok, r.status)
		}
		if r := v.postFiles("/uitloggen", map[string]string{"csrf": tok}); r.status != http.StatusForbidden {
			t.Errorf("a multipart POST /uitloggen with the token %q: %d, want 403", tok, r.status)
		}
	}
	if c := showCustomer(t, env, siteA); c["lang"] != "nl" || c["answer"] != "email" {
		t.Errorf("a refused POST changed the account: lang %v, answer %v", c["lang"], c["answer"])
	}
	if r := v.get("/helpdesk"); r.status != http.StatusOK {
		t.Errorf("a refused POST /uitloggen logged the customer out: %d", r.status)
	}
	// With the token, a multipart form is read like any other.
	if r := v.postFiles("/account", map[string]string{"form": "profile", "answer": "site", "lang": "nl", "phones": "", "csrf": v.csrf("/account")}); r.status != http.StatusSeeOther {
		t.Errorf("a multipart POST /account with the token: %d, want 303\n%s", r.status, r.text())
	}
	if c := showCustomer(t, env, siteA); c["answer"] != "site" {
		t.Errorf("the account was not saved: answer %v", c["answer"])
	}
}

// TestSiteUploadTooLarge: files larger than max_message_bytes together, or more than 10, are
// refused on the form with why, the subject and text kept, and nothing stored — on a new
// ticket and on a reply; the gateway reads no more than the bound of such a form.
func TestSiteUploadTooLarge(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock(), "HELPDESK_MAX_MESSAGE_BYTES=2000000")
	mustRun(t, env, "customer", "invite", siteA)
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteA, 1), sitePW)

	big := upload{"kassabon-scan.tiff", "image/tiff", bytes.Repeat([]byte{0x49}, 2100000)}
	half := upload{"deel.bin", "application/octet-stream", bytes.Repeat([]byte{0x42}, 1100000)}
	small := upload{"klein.txt", "text/plain", []byte("x")}
	for _, files := range [][]upload{{big}, {half, half}, slices.Repeat([]upload{small}, 11)} {
		r := v.postFiles("/tickets", map[string]string{"csrf": v.csrf("/tickets/nieuw"), "subject": "Scan van de bon",
			"text": "De scan zit erbij.", "contact": "email"}, files...)
		says := "De bijlagen zijn samen groter dan 2,0 MB"
		if len(files) == 11 {
			says = "Hoogstens 10 bijlagen per keer"
		}
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), says) ||
			!strings.Contains(r.body, `value="Scan van de bon"`) || !strings.Contains(r.body, ">De scan zit erbij.</textarea>") {
			t.Errorf("a new ticket with %d file(s) of %d bytes: %d, want 422 saying %q with the form kept\n%s",
				len(files), len(files[0].content), r.status, says, r.text())
		}
	}
	if o := mustRun(t, env, "ticket", "list"); strings.Contains(o, "Scan van de bon") {
		t.Fatalf("a refused upload made a ticket:\n%s", o)
	}
	id := newSiteTicket(t, v, map[string]string{"subject": "Bonprinter", "text": "Hij print niet.", "contact": "email"}, half)
	r := v.postFiles("/tickets/"+id+"/reactie", map[string]string{"csrf": v.csrf("/tickets/" + id), "text": "Nog een scan."}, big)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), "De bijlagen zijn samen groter dan 2,0 MB") || !strings.Contains(r.body, ">Nog een scan.</textarea>") {
		t.Errorf("a reply with too large a file: %d\n%s", r.status, r.text())
	}
	if show := mustRun(t, env, "ticket", "show", id); strings.Contains(show, "Nog een scan") {
		t.Errorf("a refused reply was stored:\n%s", show)
	}
	// An endless file: the gateway stops reading at the form's bound.
	read, status := sendEndless(t, v, "/tickets/"+id+"/reactie", "multipart", url.Values{"csrf": {v.csrf("/tickets/" + id)}, "text": {"x"}})
	if read > 40<<20 || (status != 0 && status != http.StatusUnprocessableEntity) {
		t.Errorf("an endless file: the gateway took %d MiB and answered %d", read>>20, status)
	}
}

// TestSiteContactNames: a contact name given on Mijn account is held to the rules of
// `customer set -contact` (it greets the person in every notification and names them to
// staff): control and format characters dropped — a right-to-left override turns the rest
// of a line around — and at most 64 characters, else refused with nothing saved.
func TestSiteContactNames(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	mustRun(t, env, "customer", "invite", siteA)
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteA, 1), sitePW)
	save := func(names ...string) reply {
		return v.post("/account", url.Values{"csrf": {v.csrf("/account")}, "form": {"profile"}, "answer": {"site"}, "lang": {"nl"}, "contact": names})
	}
	if r := save("Piet de Vries", strings.Repeat("Annemarie ", 10)); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.text(), "hoogstens 64 tekens") {
		t.Errorf("a 100-character contact name: %d, want 422 saying at most 64\n%s", r.status, r.text())
	}
	if c := showCustomer(t, env, siteA); c["answer"] != "email" {
		t.Errorf("a refused form saved the answer preference: %v", c["answer"])
	}
	if r := save("Piet\u202ekcor\u200b de\tVries\a", "Jan"); r.status != http.StatusSeeOther {
		t.Fatalf("save names: %d\n%s", r.status, r.text())
	}
	if got := fmt.Sprint(showCustomer(t, env, siteA)["contacts"]); got != "map[info@bakkerijdevries.nl:Pietkcor de Vries piet@bakkerijdevries.nl:Jan]" {
		t.Errorf("the names saved: %s", got)
	}
}

// TestSiteSessionAddressRemoved: a session is the address it logged in with: when staff
// remove that address from the customer — a contact who left, an address given to another
// customer — its session ends at the next request; the customer's other sessions go on.
func TestSiteSessionAddressRemoved(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	mustRun(t, env, "customer", "invite", siteA)
	owner := newVisitor(t, base)
	setPassword(t, owner, emailedLink(t, p, siteA, 1), sitePW)
	piet := newVisitor(t, base) // the customer's second address, on Piet's own computer
	piet.login("piet@bakkerijdevries.nl", sitePW)
	newSiteTicket(t, owner, map[string]string{"subject": "Omzet per kassa", "text": "Graag een overzicht.", "contact": "email"})
	if r := piet.get("/helpdesk"); r.status != http.StatusOK || !strings.Contains(r.text(), "Omzet per kassa") {
		t.Fatalf("Piet's Helpdesk page: %d\n%s", r.status, r.text())
	}

	// Piet leaves; his address goes to another customer.
	mustRun(t, env, "customer", "set", siteA, "-email", siteA)
	mustRun(t, env, "customer", "set", siteB, "-email", siteB+",piet@bakkerijdevries.nl")
	for _, path := range []string{"/helpdesk", "/tickets/1", "/account"} {
		if r := piet.get(path); r.status != http.StatusSeeOther || strings.Contains(r.body, "Omzet") || strings.Contains(r.body, "Bakkerij") {
			t.Errorf("Piet's old session at %s after his address was removed: %d\n%s", path, r.status, r.text())
		}
	}
	if r := owner.get("/helpdesk"); r.status != http.StatusOK {
		t.Errorf("the login address's session ended too: %d", r.status)
	}
}

// TestSitePasswordChangeVoidsLinks: a password changed on Mijn account makes the password
// links sent before it worthless — a reset link still in a mailbox someone else reads must
// not set the password back to theirs.
func TestSitePasswordChangeVoidsLinks(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	mustRun(t, env, "customer", "invite", siteA)
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteA, 1), sitePW)
	anon := newVisitor(t, base)
	anon.post("/wachtwoord/vergeten", url.Values{"email": {siteA}})
	link, _ := url.Parse(emailedLink(t, p, siteA, 2))
	if r := anon.get(link.RequestURI()); r.status != http.StatusOK {
		t.Fatalf("the reset link before the change: %d\n%s", r.status, r.text())
	}

	const newPW = "Appeltaart-met-slagroom"
	r := v.post("/account", url.Values{"csrf": {v.csrf("/account")}, "form": {"password"}, "current_password": {sitePW}, "password": {newPW}, "password2": {newPW}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("change the password: %d\n%s", r.status, r.text())
	}
	if r := anon.get(link.RequestURI()); r.status != http.StatusBadRequest || !strings.Contains(r.text(), "ongeldig, verlopen of al gebruikt") {
		t.Errorf("the reset link after the password changed: %d\n%s", r.status, r.text())
	}
	if r := anon.post("/wachtwoord/herstel", url.Values{"token": {link.Query().Get("token")}, "password": {"Overgenomen-2026"}, "password2": {"Overgenomen-2026"}}); r.status != http.StatusBadRequest {
		t.Errorf("the reset link set a password after the change: %d", r.status)
	}
	v.login(siteA, newPW)
}

// gatewayProcess runs `helpdesk serve` as a process of its own with the site on, and returns
// its base URL and process id (for its memory) once it answers.
func gatewayProcess(t *testing.T, p *peers, setup func(env []string)) (base string, env []string, pid int) {
	t.Helper()
	addr := freePort(t)
	base = "http://" + addr
	env = p.env("HELPDESK_HTTP_ADDR="+addr, "HELPDESK_SITE_URL="+base)
	setup(env)
	cmd := exec.Command(binPath, "serve")
	cmd.Env = append(env, raceEnv)
	out := &syncBuffer{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r, err := http.Get(base + "/healthz"); err == nil {
			r.Body.Close()
			return base, env, cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway does not answer on %s:\n%s", base, out.String())
		}
	}
}

// TestSiteUploadsOneAtATime: a customer sends one form with files at a time — a form holds its
// files in memory until the ticket is stored, so 12 forms of 4 MiB sent at once by one
// customer (or a stolen session) must not take 12 times the memory: the gateway's peak
// memory (VmHWM) grows by less than two single forms' worth, and every ticket is made.
func TestSiteUploadsOneAtATime(t *testing.T) {
	p := newPeers(t)
	base, env, pid := gatewayProcess(t, p, func(env []string) {
		mustRun(t, env, "customer", "add", "-email", siteA, "-name", "Bakkerij de Vries", "-sla", "SLA8")
	})
	mustRun(t, env, "customer", "invite", siteA)
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteA, 1), sitePW)
	peak := func() int64 {
		t.Helper()
		kib, err := procStatusKiB(pid, "VmHWM")
		if err != nil {
			t.Fatal(err)
		}
		return kib
	}
	film := func(n int) upload { return upload{"storing.mp4", "video/mp4", bytes.Repeat([]byte{byte(n)}, 4<<20)} }
	newSiteTicket(t, v, map[string]string{"subject": "Opwarmen", "text": "x", "contact": "email"}, upload{"a.txt", "text/plain", []byte("a")})
	before := peak()
	newSiteTicket(t, v, map[string]string{"subject": "Eén filmpje", "text": "x", "contact": "email"}, film(0))
	one := peak() - before

	codes := atOnce(12, func(i int) reply {
		w := newVisitor(t, base)
		w.c.Jar = v.c.Jar // the same customer's session
		return w.postFiles("/tickets", map[string]string{"csrf": w.csrf("/tickets/nieuw"), "subject": fmt.Sprintf("Filmpje %d", i),
			"text": "x", "contact": "email"}, film(i+1))
	})
	if codes[http.StatusSeeOther] != 12 {
		t.Errorf("12 forms with files at once: %v, want 12 tickets", codes)
	}
	if grew := peak() - before - one; grew > 2*one {
		t.Errorf("12 forms of 4 MiB at once raised the gateway's peak memory by %d MiB more than one form did (%d MiB); want less than %d MiB",
			grew>>10, one>>10, 2*one>>10)
	} else {
		t.Logf("one form: +%d MiB; 12 at once: +%d MiB more", one>>10, grew>>10)
	}
}

// TestSitePasswordTooSimple: a password long enough but guessed at once — ten spaces, one
// character pair over and over, a run of keys — is refused on the password link's form with
// why, and the link stays usable for a better one (NIST SP 800-63B's repetitive and
// sequential characters).
func TestSitePasswordTooSimple(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	mustRun(t, env, "customer", "invite", siteA)
	link, _ := url.Parse(emailedLink(t, p, siteA, 1))
	v := newVisitor(t, base)
	for _, pw := range []string{"          ", "AaAaAaAaAaAa", "1212121212", "1234567890", "qwertyuiop"} {
		r := v.post("/wachtwoord/herstel", url.Values{"token": {link.Query().Get("token")}, "password": {pw}, "password2": {pw}})
		if r.status != http.StatusBadRequest || !strings.Contains(r.text(), "Het wachtwoord is te eenvoudig") {
			t.Errorf("password %q: %d, want 400 saying it is too simple\n%s", pw, r.status, r.text())
		}
	}
	setPassword(t, v, link.String(), sitePW)
}

// TestSiteTokensNotLogged: the token of a link is nowhere in the gateway's log — not when the
// link is opened, used, opened again once used, or sent with a wrong password — whatever the
// log level; the path is logged, never the query.
func TestSiteTokensNotLogged(t *testing.T) {
	p := newPeers(t)
	base, env, out := siteGateway(t, p, siteClock(), "HELPDESK_LOG_LEVEL=debug")
	mustRun(t, env, "customer", "invite", siteA)
	link, _ := url.Parse(emailedLink(t, p, siteA, 1))
	tok := link.Query().Get("token")
	v := newVisitor(t, base)
	v.get(link.RequestURI())
	v.post("/wachtwoord/herstel", url.Values{"token": {tok}, "password": {"kort"}, "password2": {"kort"}})
	setPassword(t, v, link.String(), sitePW)
	v.get(link.RequestURI())
	v.post("/wachtwoord/herstel", url.Values{"token": {tok}, "password": {sitePW}, "password2": {sitePW}})
	v.get("/login/bevestig?token=" + tok)
	v.post("/login/bevestig", url.Values{"token": {tok}})
	if !strings.Contains(out.String(), "link refused") {
		t.Fatalf("the used link was not logged as refused:\n%s", out.String())
	}
	if strings.Contains(out.String(), tok) || strings.Contains(out.String(), tok[:20]) {
		t.Errorf("the gateway's log holds the token:\n%s", out.String())
	}
}

// sessionCookie is the value of the visitor's session cookie ("" when it has none).
func sessionCookie(t *testing.T, v *visitor) string {
	t.Helper()
	for _, c := range v.c.Jar.Cookies(mustURL(t, v.base)) {
		if c.Name == "helpdesk_session" {
			return c.Value
		}
	}
	return ""
}

// TestSiteSessionLifetime: a log-in always makes a new session and ends the one the browser
// came with — a session id planted in the customer's browser (session fixation) is worth
// nothing after they log in — and a session in daily use still ends 7 days after its log-in.
func TestSiteSessionLifetime(t *testing.T) {
	p := newPeers(t)
	clk := siteClock()
	base, env, _ := siteGateway(t, p, clk)
	for _, addr := range []string{siteA, siteB} {
		mustRun(t, env, "customer", "invite", addr)
	}
	setPassword(t, newVisitor(t, base), emailedLink(t, p, siteA, 1), sitePW)
	attacker := newVisitor(t, base)
	setPassword(t, attacker, emailedLink(t, p, siteB, 1), sitePW)
	planted := sessionCookie(t, attacker)

	victim := newVisitor(t, base)
	victim.c.Jar.SetCookies(mustURL(t, base), []*http.Cookie{{Name: "helpdesk_session", Value: planted}})
	victim.login(siteA, sitePW)
	if got := sessionCookie(t, victim); got == planted || got == "" {
		t.Fatalf("the log-in kept the planted session id")
	}
	if r := attacker.get("/helpdesk"); r.status != http.StatusSeeOther {
		t.Errorf("the planted session still works after the victim logged in over it: %d", r.status)
	}
	if r := victim.get("/helpdesk"); !strings.Contains(r.text(), "Welkom, Piet de Vries.") {
		t.Errorf("the victim's Helpdesk page after the log-in:\n%s", r.text())
	}

	// In use every 7 hours (never idle for 8), the session ends 7 days after the log-in.
	for h := 7; h < 7*24; h += 7 {
		clk.Advance(7 * time.Hour)
		if r := victim.get("/helpdesk"); r.status != http.StatusOK {
			t.Fatalf("the session ended after %d hours in use: %d", h, r.status)
		}
	}
	clk.Advance(7 * time.Hour)
	if r := victim.get("/helpdesk"); r.status != http.StatusSeeOther {
		t.Errorf("the session still works 7 days and 7 hours after the log-in: %d", r.status)
	}
}

// TestSiteForwardedForOnlyFromLoopback: only a proxy on the gateway's own machine may name the
// client in X-Forwarded-For; a peer anywhere else that sends the header is counted as itself,
// so it cannot spread its guesses over made-up clients. (Needs an address of this machine
// that is not loopback; skipped without one.)
func TestSiteForwardedForOnlyFromLoopback(t *testing.T) {
	var host string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && !ip.IP.IsLoopback() {
			host = ip.IP.String()
			break
		}
	}
	if host == "" {
		t.Skip("no address of this machine other than loopback")
	}
	p := newPeers(t)
	_, port, _ := net.SplitHostPort(freePort(t))
	// A site reached from the network is https behind a proxy (a plain-http one must listen
	// on loopback only); the guesses need no cookie.
	env := p.env("HELPDESK_HTTP_ADDR=0.0.0.0:"+port, "HELPDESK_SITE_URL=https://helpdesk.example.nl")
	out := &syncBuffer{}
	exited, _ := serveWithClock(t, env, out, siteClock().Now)
	waitOutput(t, out, regexp.MustCompile(`"msg":"http listening"`), exited)

	remote := newVisitor(t, "http://"+net.JoinHostPort(host, port))
	for i := range 21 {
		remote.header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
		r := remote.post("/inloggen", url.Values{"email": {fmt.Sprintf("klant%02d@example.nl", i)}, "password": {"raden-en-nog-eens"}})
		want := http.StatusUnauthorized
		if i == 20 {
			want = http.StatusTooManyRequests
		}
		if r.status != want {
			t.Fatalf("guess %d from %s naming client 203.0.113.%d: %d, want %d", i+1, host, i+1, r.status, want)
		}
	}
}

// TestSiteHostileMail: what senders chose — subjects, texts, display names, file names and
// types — reaches the site's pages escaped and its downloads as files: a ticket emailed from
// the customer's second address with markup everywhere and file names made to break out of
// Content-Disposition, and a staff answer whose sender names itself in markup, plus an
// internal note with a file. The customer's login address sees the ticket (the same
// customer), never the note or its file, never the staff member's address; another customer
// sees nothing.
func TestSiteHostileMail(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	for _, addr := range []string{siteA, siteB} {
		mustRun(t, env, "customer", "invite", addr)
	}
	v := newVisitor(t, base)
	setPassword(t, v, emailedLink(t, p, siteA, 1), sitePW)
	other := newVisitor(t, base)
	setPassword(t, other, emailedLink(t, p, siteB, 1), sitePW)

	p.deliver(t, mailWithFiles(`"<img src=x onerror=alert(1)>" <piet@bakkerijdevries.nl>`, `<script>alert("onderwerp")</script>`, "vraag-x@bakkerijdevries.nl", "",
		"Tekst met <b>markup</b> en <script>alert(2)</script>",
		testFile{name: `rapport".html`, ctype: "text/html", content: []byte("<script>alert(3)</script>")},
		testFile{name: "überweisung; ä.pdf", ctype: "application/pdf", content: []byte("%PDF-1.4")},
		testFile{name: "../../etc/<i>passwd</i>.svg", ctype: "image/svg+xml", content: []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(4)"/>`)}))
	waitSubject(t, p, "piet@bakkerijdevries.nl", "[Infobits #1]")
	p.deliver(t, staffAuth+mailWithFiles(`"Jan <script>" <jan@infobits.example>`, "Re: [Infobits #1] x", "antw-x@infobits.example", "",
		"Antwoord met <i>markup</i>.\r\n\r\nJan"))
	p.deliver(t, staffAuth+mailWithFiles("Jan <jan@infobits.example>", "Re: [Infobits #1] x", "notitie-x@infobits.example", "",
		"#note\r\nKlant belt vaak; intern houden.", testFile{name: "intern.txt", ctype: "text/plain", content: []byte("INTERN")}))
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(mustRun(t, env, "ticket", "show", "1"), "intern houden") {
		if time.Now().After(deadline) {
			t.Fatalf("the note never reached ticket 1:\n%s", mustRun(t, env, "ticket", "show", "1"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	for _, path := range []string{"/helpdesk", "/tickets/1"} {
		r := v.get(path)
		if r.status != http.StatusOK || !strings.Contains(r.text(), `<script>alert("onderwerp")</script>`) {
			t.Errorf("GET %s: %d, want the subject shown as text\n%s", path, r.status, r.text())
		}
		for _, raw := range []string{"<script", "<img", "<b>", "<i>", "jan@infobits.example", "intern houden", "intern.txt"} {
			if strings.Contains(r.body, raw) {
				t.Errorf("GET %s: the page holds %q", path, raw)
			}
		}
	}
	if r := v.get("/tickets/1"); !strings.Contains(r.text(), "Antwoord met <i>markup</i>.") || !strings.Contains(r.text(), `rapport".html`) {
		t.Errorf("the ticket page does not show the staff answer and the file names as text:\n%s", r.text())
	}
	for n, want := range map[string]string{
		"1": `attachment; filename="rapport\".html"`,
		"2": `attachment; filename*=utf-8''%C3%BCberweisung%3B%20%C3%A4.pdf`,
		"3": `attachment; filename="../../etc/<i>passwd</i>.svg"`,
	} {
		r := v.get("/tickets/1/bijlagen/" + n)
		if r.status != http.StatusOK || r.header.Get("Content-Disposition") != want || r.header.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.HasPrefix(r.header.Get("Content-Security-Policy"), "sandbox") {
			t.Errorf("file %s: %d, Content-Disposition %q (want %q), nosniff %q, CSP %q", n, r.status, r.header.Get("Content-Disposition"), want,
				r.header.Get("X-Content-Type-Options"), r.header.Get("Content-Security-Policy"))
		}
	}
	if r := v.get("/tickets/1/bijlagen/4"); r.status != http.StatusNotFound || strings.Contains(r.body, "INTERN") {
		t.Errorf("the internal note's file: %d", r.status)
	}
	for _, path := range []string{"/tickets/1", "/tickets/1/bijlagen/1", "/tickets/1/bijlagen/2"} {
		if r := other.get(path); r.status != http.StatusNotFound {
			t.Errorf("another customer GET %s: %d, want 404", path, r.status)
		}
	}
}

// TestSiteSecretsAtRest: what a copy of the database file (a backup, a stolen disk) gives
// away. Neither a password nor a session id nor a link's token is in it — used or not, the
// link's email sent or not: a session and a token are stored as their SHA-256, a password as
// an argon2id hash with a salt of its own (two customers with the same password have
// different hashes).
func TestSiteSecretsAtRest(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	var used []string
	for _, addr := range []string{siteA, siteB} {
		mustRun(t, env, "customer", "invite", addr)
		link := emailedLink(t, p, addr, 1)
		used = append(used, mustURL(t, link).Query().Get("token"))
		setPassword(t, newVisitor(t, base), link, sitePW)
	}
	v := newVisitor(t, base)
	v.login(siteA, sitePW)
	var session string
	for _, c := range v.c.Jar.Cookies(mustURL(t, base)) {
		if c.Name == "helpdesk_session" {
			session = c.Value
		}
	}
	v.post("/wachtwoord/vergeten", url.Values{"email": {siteB}})
	unused := mustURL(t, emailedLink(t, p, siteB, 2)).Query().Get("token")

	raw, err := os.ReadFile(filepath.Join(p.dir, "helpdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	for what, secret := range map[string]string{"the password": sitePW, "the session id": session, "a used link's token": used[0],
		"another used link's token": used[1], "an unused link's token": unused} {
		if secret == "" {
			t.Fatalf("no %s to look for", what)
		}
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("%s (%s) is in the database file in clear", what, secret)
		}
	}
	if sum := sha256.Sum256([]byte(session)); !bytes.Contains(raw, sum[:]) {
		t.Errorf("the session's SHA-256 is not in the database file: the test reads the wrong file")
	}
	phc := regexp.MustCompile(`\$argon2id\$v=19\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$([A-Za-z0-9+/]+)\$[A-Za-z0-9+/]+`).FindAllSubmatch(raw, -1)
	salts := map[string]bool{}
	for _, m := range phc {
		salts[string(m[1])] = true
	}
	if len(salts) < 2 {
		t.Errorf("the two customers' passwords have %d salts in the database file, want 2 (%d hashes)", len(salts), len(phc))
	}
}

// TestSiteSecureCookie: with an https site_url (a TLS proxy in front) the session cookie is
// Secure and a __Host- cookie (Path=/, no Domain: no other host of the domain can set or
// read it), HttpOnly and SameSite=Lax; the language cookie is Secure too; the pages carry
// Strict-Transport-Security. The links in emails name the https site.
func TestSiteSecureCookie(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock(), "HELPDESK_SITE_URL=https://helpdesk.example.nl")
	mustRun(t, env, "customer", "invite", siteA)
	msgs := waitMessages(t, p, siteA, 1)
	m := regexp.MustCompile(`https://helpdesk\.example\.nl/wachtwoord/herstel\?token=([A-Za-z0-9_-]{43})`).FindStringSubmatch(plainText(t, msgs[0].Data))
	if m == nil {
		t.Fatalf("the invitation has no https password link:\n%s", plainText(t, msgs[0].Data))
	}
	v := newVisitor(t, base)
	r := v.post("/wachtwoord/herstel", url.Values{"token": {m[1]}, "password": {sitePW}, "password2": {sitePW}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("set the password: %d\n%s", r.status, r.text())
	}
	for _, r := range []reply{r, v.post("/inloggen", url.Values{"email": {siteA}, "password": {sitePW}})} {
		var session string
		for _, c := range r.header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "__Host-helpdesk=") {
				session = c
			}
		}
		for _, want := range []string{"; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax"} {
			if !strings.Contains(session, want) {
				t.Errorf("the session cookie %q lacks %q (all: %q)", session, want, r.header.Values("Set-Cookie"))
			}
		}
		if strings.Contains(strings.ToLower(session), "domain=") {
			t.Errorf("the session cookie names a domain: %q", session)
		}
	}
	page := newVisitor(t, base).get("/inloggen?taal=en")
	if c := page.header.Get("Set-Cookie"); !strings.HasPrefix(c, "taal=en") || !strings.Contains(c, "; Secure") {
		t.Errorf("the language cookie over https: %q", c)
	}
	// The browser keeps to https for the site from then on.
	if h := page.header.Get("Strict-Transport-Security"); h != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security = %q over an https site_url", h)
	}
}
