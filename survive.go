package helpdesk

import (
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Survive runs f, one round of a loop that must outlive its own bugs — the gateway's
// background work (held notices, the due queue, login changes, the search index, backups, the
// outbox, the mailbox session) — and turns a panic in it into a *Panic for the loop to report
// before it goes on, as after a failed round: one bad record or one bug must not stop the
// gateway. Without a panic it returns nil.
func Survive(f func()) (p *Panic) {
	defer func() {
		if r := recover(); r != nil {
			p = &Panic{Value: r, Stack: string(debug.Stack())}
		}
	}()
	f()
	return nil
}

// Panic is a panic that Survive caught: its value and the stack where it happened.
type Panic struct {
	Value any
	Stack string
}

func (p *Panic) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// LogValue logs the panic's value and its stack as two fields of a group.
func (p *Panic) LogValue() slog.Value {
	return slog.GroupValue(slog.String("value", fmt.Sprint(p.Value)), slog.String("stack", p.Stack))
}
