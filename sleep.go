package helpdesk

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx is done; it reports whether the whole wait passed. The poller's
// reconnect backoff and the backup schedule wait with it, so a stopping gateway is never held
// up by a wait.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
