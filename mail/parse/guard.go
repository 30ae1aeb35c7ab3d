package parse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/jhillyerd/enmime/v2"
)

// readMIME runs enmime over body on a goroutine of its own, under the work budget and the
// deadline of lim, and returns when it is done, over budget, past the deadline or ctx is done.
//
// The work budget counts enmime's reads of the input. Reading an email takes one per 4 KiB
// and, at its end, a few more for every multipart still open there — twice as many for every
// one of them (see scanStructure); the budget allows Limits.Reads on top of twice what the
// size needs. Past it, the next read stops the parser: deterministic, no clock involved.
//
// The deadline is the last net, for work that does not read the input (enmime's own loops):
// the email is set aside and the parser left behind is told to stop, which it does at its next
// read of the input or parse of a header; until then it costs what the structural bounds let
// it cost.
func readMIME(ctx context.Context, body []byte, lim Limits) (*enmime.Envelope, error) {
	g := &guard{budget: -1}
	if lim.Reads >= 0 {
		g.budget = lim.Reads + 2*(len(body)/4096+1)
	}
	parser := enmime.NewParser(
		enmime.MultipartWOBoundaryAsSinglePart(true),
		enmime.SkipMalformedParts(true),
		enmime.MaxStoredPartErrors(20),
		enmime.SetReadPartErrorPolicy(enmime.AllowCorruptTextPartErrorPolicy),
		enmime.DisableCharacterDetection(true), // see fromWindows1252
		enmime.SetCustomParseMediaType(g.mediaType),
	)
	type result struct {
		env *enmime.Envelope
		err error
	}
	run := func() (res result) {
		defer func() {
			if r := recover(); r != nil {
				switch r {
				case errOverReads:
					res.err = fmt.Errorf("%w: more than %d reads of its %d bytes (its structure makes the MIME parser go over its end again and again)",
						ErrWorkBudget, g.budget, len(body))
				case errAbandoned:
					res.err = errAbandoned // nobody waits for it any more
				default:
					res.err = fmt.Errorf("parser panic: %v", r)
				}
			}
		}()
		res.env, res.err = parser.ReadEnvelope(&guardedReader{r: bytes.NewReader(body), g: g})
		return res
	}
	d := lim.deadline(len(body))
	if d == 0 && ctx.Done() == nil {
		// Nothing can stop it: it runs here (the tests of linear growth measure the CPU
		// time of the calling thread).
		res := run()
		return res.env, res.err
	}
	done := make(chan result, 1)
	go func() { done <- run() }()
	var expired <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	select {
	case res := <-done:
		return res.env, res.err
	case <-expired:
		g.abandoned.Store(true)
		return nil, fmt.Errorf("%w: not read within %s, the time an email of %d bytes may take", ErrWorkBudget, d, len(body))
	case <-ctx.Done():
		g.abandoned.Store(true)
		return nil, fmt.Errorf("reading stopped: %w", ctx.Err())
	}
}

// The parser goroutine's ways out, as panics through enmime (which has no way to stop).
var (
	errOverReads = errors.New("over the read budget")
	errAbandoned = errors.New("abandoned")
)

// guard watches one parse. reads and budget are the parser goroutine's own.
type guard struct {
	reads, budget int // budget < 0: none
	abandoned     atomic.Bool
}

// check stops the parser when it went over its budget or nobody waits for it any more.
func (g *guard) check() {
	if g.abandoned.Load() {
		panic(errAbandoned)
	}
}

// mediaType is the Content-Type parser enmime is given: the walk's (mediaType), and a point
// where an abandoned parser stops.
func (g *guard) mediaType(v string) (string, map[string]string, []string, error) {
	g.check()
	return mediaType(v)
}

// guardedReader is the input as enmime reads it, counted.
type guardedReader struct {
	r *bytes.Reader
	g *guard
}

func (r *guardedReader) Read(p []byte) (int, error) {
	g := r.g
	g.check()
	if g.reads++; g.budget >= 0 && g.reads > g.budget {
		panic(errOverReads)
	}
	return r.r.Read(p)
}

var _ io.Reader = (*guardedReader)(nil)
