package site

import (
	"sync"
	"time"
)

// Log-in throttling: failed attempts are counted per address and per client over a window;
// past the limit the log-in form refuses further attempts until the oldest failure leaves
// the window — whether the password would have been right or not. An unknown address counts
// like a known one, so the throttle tells nothing of which addresses are customers' (R18).
//
// An attempt counts as failed from the moment it is let through (reserve), before its
// password is checked, and is taken back when the password was right (release): attempts
// sent at once cannot all pass the check while the first ones are still hashing.
const (
	throttleWindow    = 15 * time.Minute
	failuresPerAddr   = 5
	failuresPerClient = 20
	throttleKeys      = 10000 // bounds the memory an attacker can make the throttle use
)

// throttle counts failures in memory: a restart forgets them, which costs an attacker a
// restart of the gateway they cannot cause.
type throttle struct {
	mu       sync.Mutex
	failures map[string][]time.Time
}

func newThrottle() *throttle { return &throttle{failures: map[string][]time.Time{}} }

// limit is a throttle key and the failures it may have in the window.
type limit struct {
	key string
	max int
}

// reserve lets an attempt through when no key is at its limit, and then counts it as a
// failure of every key at once; otherwise it records nothing and says how long to wait
// before the next attempt may pass.
func (t *throttle) reserve(now time.Time, ls ...limit) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, l := range ls {
		if fs := t.recent(l.key, now); len(fs) >= l.max {
			wait = max(wait, fs[len(fs)-l.max].Add(throttleWindow).Sub(now))
		}
	}
	if wait > 0 {
		return wait
	}
	for _, l := range ls {
		t.add(l.key, now)
	}
	return 0
}

// release takes back the attempt of key reserved at at (the password was right).
func (t *throttle) release(key string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fs := t.failures[key]
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].Equal(at) {
			fs = append(fs[:i:i], fs[i+1:]...)
			break
		}
	}
	if len(fs) == 0 {
		delete(t.failures, key)
	} else {
		t.failures[key] = fs
	}
}

// add records a failure of key; the caller holds mu.
func (t *throttle) add(key string, now time.Time) {
	if _, ok := t.failures[key]; !ok && len(t.failures) >= throttleKeys {
		for k := range t.failures {
			if len(t.recent(k, now)) == 0 {
				delete(t.failures, k)
			}
		}
		if len(t.failures) >= throttleKeys {
			for k := range t.failures { // still full: forget an arbitrary one
				delete(t.failures, k)
				break
			}
		}
	}
	fs := append(t.recent(key, now), now)
	if len(fs) > failuresPerClient {
		fs = fs[len(fs)-failuresPerClient:]
	}
	t.failures[key] = fs
}

// forget clears key's failures (a successful log-in of the address).
func (t *throttle) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.failures, key)
}

// recent is key's failures within the window; the caller holds mu.
func (t *throttle) recent(key string, now time.Time) []time.Time {
	fs := t.failures[key]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= throttleWindow {
		i++
	}
	if i == len(fs) {
		delete(t.failures, key)
		return nil
	}
	fs = fs[i:]
	t.failures[key] = fs
	return fs
}
