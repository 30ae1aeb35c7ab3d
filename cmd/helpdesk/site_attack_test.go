package main

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
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
