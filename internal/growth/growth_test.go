package growth

import (
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps the failures instead of reporting them.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, format)
}

// TestLinear: a linear function passes; quadratic ones — in CPU time alone, in allocation
// alone — fail, each on its own count. The counts, not the speed of this machine, decide.
func TestLinear(t *testing.T) {
	linear := func(s string) {
		n := 0
		for i := range len(s) {
			n += int(s[i])
		}
		_ = n
	}
	input := func(n int) string { return strings.Repeat("x", n) }
	r := &recorder{TB: t}
	Linear(r, 1<<14, input, linear)
	if len(r.errs) != 0 {
		t.Errorf("linear scan: %q", r.errs)
	}

	// Quadratic CPU, no allocation: every byte compared with every other.
	quadCPU := func(s string) {
		n := 0
		for i := range len(s) {
			for j := range len(s) {
				if s[i] == s[j] {
					n++
				}
			}
		}
		_ = n
	}
	r = &recorder{TB: t}
	Linear(r, 1<<9, input, quadCPU)
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "CPU time") {
		t.Errorf("quadratic scan: %q, want one failure about the CPU time", r.errs)
	}

	// Quadratic allocation: a string grown by concatenation, one byte at a time.
	var sink string
	quadAlloc := func(s string) {
		out := ""
		for i := range len(s) {
			out += s[i : i+1]
		}
		sink = out
	}
	r = &recorder{TB: t}
	Linear(r, 1<<10, input, quadAlloc)
	if len(r.errs) == 0 || !strings.Contains(strings.Join(r.errs, "\n"), "allocation grows") {
		t.Errorf("quadratic concatenation: %q, want a failure about the allocation", r.errs)
	}
	_ = sink
}
