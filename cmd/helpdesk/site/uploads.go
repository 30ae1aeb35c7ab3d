package site

import (
	"context"
	"sync"
)

// A form with files holds its files in memory (up to max_message_bytes) from the moment it
// is read until the ticket or reply is stored. A customer sends one such form at a time: a
// second one waits, before its body is read, until the first is done — so the memory that
// forms with files take is bounded by the customers sending them, not by how many requests
// one customer (or one stolen session) sends at once.

// perCustomer is a lock per customer, made when first used (at most one per customer).
type perCustomer struct {
	mu    sync.Mutex
	locks map[uint64]chan struct{}
}

func newPerCustomer() *perCustomer { return &perCustomer{locks: map[uint64]chan struct{}{}} }

// lock waits for customer id's turn, or until ctx is done (the request ended).
func (p *perCustomer) lock(ctx context.Context, id uint64) (unlock func(), err error) {
	p.mu.Lock()
	ch, ok := p.locks[id]
	if !ok {
		ch = make(chan struct{}, 1)
		p.locks[id] = ch
	}
	p.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
