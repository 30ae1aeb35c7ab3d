//go:build !linux

package growth

import "time"

var epoch = time.Now()

// threadCPU falls back to the wall time where the thread's CPU time is not at hand.
func threadCPU() time.Duration { return time.Since(epoch) }
