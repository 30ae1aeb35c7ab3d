package site

import (
	"sync"
	"time"
)

// Log-in throttling: failed attempts are counted per address and per client over a window;
// past the limit the log-in form refuses further attempts until the oldest failure leaves
// the window — whether the password would have been right or not. An unknown address counts
// like a known one, so the throttle tells nothing of which addresses are customers' (R18).
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

// wait says how long key must wait before another attempt (0: it may try now).
func (t *throttle) wait(key string, limit int, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	fs := t.recent(key, now)
	if len(fs) < limit {
		return 0
	}
	return fs[len(fs)-limit].Add(throttleWindow).Sub(now)
}

// fail records a failed attempt of key.
func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.failures) >= throttleKeys {
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
