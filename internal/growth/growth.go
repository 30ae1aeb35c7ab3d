// Package growth checks, in tests, that the cost of a function grows linearly with the size of
// its input — what keeps a hostile email from stalling the gateway (a quadratic unfolding of a
// header, a re-reading per nesting level) — without asking how fast the machine is.
//
// Linear runs the function on an input of size n and on one of size Factor·n, in the same
// run, and compares the two costs: a linear function costs Factor times more on the larger
// input, a quadratic one Factor² times more. The check fails above Slack·Factor, far from
// both. Cost is counted twice, and each must pass:
//
//   - the CPU time of the thread that ran the function (on Linux; elsewhere the wall time), so
//     that other work on the machine — other tests, other jobs keeping every core busy — does
//     not count;
//   - the bytes allocated, which do not depend on time at all (a quadratic concatenation shows
//     here first).
//
// Each is the least of Runs measurements, and a small input is run repeatedly until it has
// used enough CPU time to be measured. Speed goals are for benchmarks, not for this package.
//
// Only tests import it.
package growth

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

const (
	// Factor is how much larger the second input is.
	Factor = 16
	// Slack is how far above linear (Factor) the cost ratio may go: 4 × 16 = 64, a quarter
	// of the quadratic 256.
	Slack = 4
	// Runs is the number of measurements of each size; the least counts.
	Runs = 3
	// minCPU is the CPU time a measurement gathers at least, by repeating the function.
	minCPU = 20 * time.Millisecond
)

// Linear fails tb when run(input(Factor·n)) costs more than Slack·Factor times
// run(input(n)), in CPU time or in bytes allocated. input builds the input of a size (not
// measured); run must do its work on the calling goroutine.
func Linear[T any](tb testing.TB, n int, input func(n int) T, run func(T)) {
	tb.Helper()
	small, large := input(n), input(Factor*n)
	cs, as := measure(small, run)
	cl, al := measure(large, run)
	limit := float64(Slack * Factor)
	tb.Logf("at %d× the input: %.1f× the CPU time (%v against %v), %.1f× the bytes allocated (%s against %s)",
		Factor, float64(cl)/float64(max(cs, time.Microsecond)), cl, cs, float64(al)/float64(max(as, 1)), bytes(al), bytes(as))
	if r := float64(cl) / float64(max(cs, time.Microsecond)); r > limit {
		tb.Errorf("cost grows faster than the input: %d× the input took %.0f× the CPU time (%v against %v); linear is %d×, the limit %.0f×",
			Factor, r, cl, cs, Factor, limit)
	}
	if r := float64(al) / float64(max(as, 1)); r > limit {
		tb.Errorf("allocation grows faster than the input: %d× the input allocated %.0f× the bytes (%s against %s); linear is %d×, the limit %.0f×",
			Factor, r, bytes(al), bytes(as), Factor, limit)
	}
}

// measure returns the least CPU time and bytes allocated by one run of run(in), of Runs
// measurements.
func measure[T any](in T, run func(T)) (cpu time.Duration, alloc uint64) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var ms runtime.MemStats
	for i := range Runs {
		runtime.GC() // the collector's backlog from before is not this run's
		runtime.ReadMemStats(&ms)
		a0, c0 := ms.TotalAlloc, threadCPU()
		k := 0
		var used time.Duration
		for k == 0 || used < minCPU {
			run(in)
			k++
			used = threadCPU() - c0
		}
		runtime.ReadMemStats(&ms)
		c, a := used/time.Duration(k), (ms.TotalAlloc-a0)/uint64(k)
		if i == 0 || c < cpu {
			cpu = c
		}
		if i == 0 || a < alloc {
			alloc = a
		}
	}
	return cpu, alloc
}

func bytes(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
