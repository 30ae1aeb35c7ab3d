package smtpsink

import (
	"net"
	"sync"
)

// trackingListener wraps the server's listener and remembers the accepted
// connections, so that stopping the server can close them all — including a
// connection accepted just before go-smtp registered it, which
// smtp.Server.Close would miss.
type trackingListener struct {
	net.Listener

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
	once   sync.Once
	err    error
}

func newTrackingListener(ln net.Listener) *trackingListener {
	return &trackingListener{Listener: ln, conns: make(map[*trackedConn]struct{})}
}

// Accept returns the next connection. After Close, a connection that the
// underlying listener still handed out is closed and net.ErrClosed returned.
func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// Close closes the listener and every connection it accepted. It is
// idempotent (go-smtp closes its listeners too).
func (l *trackingListener) Close() error {
	l.once.Do(func() {
		l.err = l.Listener.Close()
		l.mu.Lock()
		l.closed = true
		conns := l.conns
		l.conns = nil
		l.mu.Unlock()
		for c := range conns {
			c.Conn.Close()
		}
	})
	return l.err
}

func (l *trackingListener) forget(c *trackedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c) // no-op on the nil map after Close
}

// trackedConn removes itself from its listener when closed.
type trackedConn struct {
	net.Conn
	l *trackingListener
}

func (c *trackedConn) Close() error {
	c.l.forget(c)
	return c.Conn.Close()
}
