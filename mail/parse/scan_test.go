package parse

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jhillyerd/enmime/v2"
)

// unbounded switches every bound and net off: for the tests that show what each one does.
var unbounded = Limits{Nesting: -1, OpenNesting: -1, Parts: -1, HeaderFields: -1, Reads: -1, Deadline: -1}

// treeShape is what enmime built: its parts below the top level and how deeply multiparts
// nest (the top level counted), as scanStats counts them.
func treeShape(root *enmime.Part) (parts, depth int) {
	var walk func(p *enmime.Part, level int)
	walk = func(p *enmime.Part, level int) {
		for c := p.FirstChild; c != nil; c = c.NextSibling {
			parts++
			if c.FirstChild != nil {
				depth = max(depth, level+1)
				walk(c, level+1)
			}
		}
	}
	if root != nil && root.FirstChild != nil {
		depth = 1
		walk(root, 1)
	}
	return parts, depth
}

// checkScanCovers fails when enmime built a tree larger or deeper than the walk of raw said.
// It skips emails the walk refuses whatever the limits, and those whose walk finds a long run
// of cut-off multiparts (enmime would take exponential time); exact reports whether the walk
// matched enmime exactly, refused whether it refused the email (Parse does not give it to
// enmime).
func checkScanCovers(t testing.TB, name string, raw []byte) (exact, refused bool) {
	t.Helper()
	body := stripJunk(raw)
	st, err := scanStructure(body, unbounded)
	if err != nil {
		return false, true
	}
	if st.Open > defaultOpenNesting || st.Depth > defaultNesting || st.Parts > defaultParts {
		return false, true
	}
	env, err := readMIME(context.Background(), body, Limits{}.withDefaults())
	if err != nil || env == nil {
		return true, false // enmime refused it too
	}
	parts, depth := treeShape(env.Root)
	if parts > st.Parts || depth > st.Depth {
		t.Errorf("%s: enmime read %d parts nested %d deep; the walk counted %d parts, %d deep", name, parts, depth, st.Parts, st.Depth)
	}
	return parts == st.Parts && depth == st.Depth, false
}

// TestScanMatchesEnmime: the walk sees the structure enmime builds — for real mail exactly,
// refusing none, and for hostile shapes never less.
func TestScanMatchesEnmime(t *testing.T) {
	var n, exact int
	for _, sub := range []string{"mail-gem", "bounces"} {
		dir := corpusDir(t, sub)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range entries {
			if !ent.Type().IsRegular() || ent.Name() == "LICENSE" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
			if err != nil {
				t.Fatal(err)
			}
			for _, raw := range [][]byte{b, crlf(string(b))} {
				n++
				ok, refused := checkScanCovers(t, ent.Name(), raw)
				if refused {
					t.Errorf("%s: a real email refused by the walk", ent.Name())
				}
				if ok {
					exact++
				}
			}
		}
	}
	hostile := map[string]string{
		"deep, cut off":        deepMultipart(7),
		"deep, closed":         closeAll(deepMultipart(12), 12),
		"cut off inside":       wrapMultipart(deepMultipart(6)),
		"siblings":             siblings(50),
		"encoded boundaries":   string(encodedWordNesting(8)),
		"delimiter mid-line":   "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx--b y\r\n--b\r\n\r\nz\r\n--b--\r\n",
		"application boundary": "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf; boundary=c\r\n\r\n--c\r\n\r\nin\r\n--c--\r\n--b--\r\n",
		"text boundary":        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; boundary=c\r\n\r\n--c\r\n\r\nin\r\n--c--\r\n--b--\r\n",
		"no content-type":      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\na\r\n--b\r\n\r\nb\r\n--b--\r\n",
		"preamble and epilog":  "Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b x\r\n\r\na\r\n--b--\r\nepilogue --b\r\n",
		"blank lines between":  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\na\r\n\r\n\r\n--b\r\n\r\nb\r\n--b--",
		"dash boundary":        "Content-Type: multipart/mixed; boundary=\"-\"\r\n\r\n---\r\n\r\na\r\n----\r\n\r\nb\r\n-----\r\n",
		"garbage after part":   "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\na\r\n--b\r\n\r\nb\r\n--bx\r\ngarbage\r\n--b\r\n\r\nc\r\n",
		"tiny parts":           string(tinyParts(300)),
		"lf only":              strings.ReplaceAll(siblings(5), "\r\n", "\n"),
		"cr only":              strings.ReplaceAll(siblings(5), "\r\n", "\r"),
	}
	for name, raw := range hostile {
		ok, refused := checkScanCovers(t, name, []byte(raw))
		switch {
		case refused:
			t.Logf("%s: refused", name)
		case !ok:
			t.Errorf("%s: the walk did not match enmime", name)
		}
	}
	t.Logf("%d real emails: the walk matched enmime exactly for %d", n, exact)
	if exact != n {
		t.Errorf("the walk matched enmime for %d of %d real emails only", exact, n)
	}
}

// encodedWordNesting is an attack seen in practice: depth multiparts inside each other, none
// closed, whose boundary parameters are hidden in RFC 2047 encoded words.
func encodedWordNesting(depth int) []byte {
	var b strings.Builder
	param := func(i int) string {
		return "=?us-ascii?b?" + base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("boundary=b%d", i))) + "?="
	}
	b.WriteString("From: a@example.com\r\nSubject: nest\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; " + param(0) + "\r\n\r\n")
	for i := 1; i < depth; i++ {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; %s\r\n\r\n", i-1, param(i))
	}
	fmt.Fprintf(&b, "--b%d\r\nContent-Type: text/plain\r\n\r\nnestmarker\r\n", depth-1)
	return []byte(b.String())
}

// tinyParts is a multipart/mixed of n parts of one line each.
func tinyParts(n int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n")
	for i := range n {
		fmt.Fprintf(&b, "--p\r\nContent-Type: text/plain\r\n\r\n%d\r\n", i)
	}
	b.WriteString("--p--\r\n")
	return b.Bytes()
}

// flatParts is one multipart/mixed of n parts without a header, as small as parts get (the
// shape of an attack seen in practice: 160,000 parts in 10.7 MB).
func flatParts(n int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
	for range n {
		b.WriteString("--b\r\n\r\nx\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.Bytes()
}

// manyFields is an email whose header holds n fields.
func manyFields(n int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nSubject: fields\r\n")
	for i := range n {
		fmt.Fprintf(&b, "X-F%d: y\r\n", i)
	}
	b.WriteString("\r\ntext\r\n")
	return b.Bytes()
}

// TestParseRefusesCostlyStructure: the shapes that made enmime's work explode are refused
// before enmime sees them — the email is set aside (Err wraps ErrTooComplex, naming the
// bound) with its text kept — and just inside the bounds they are read as before.
func TestParseRefusesCostlyStructure(t *testing.T) {
	cases := []struct {
		name, raw, reason string // reason "": read as MIME
	}{
		{"encoded-word boundaries, 40 deep", string(encodedWordNesting(40)), "more than 8 nested multipart parts cut off"},
		{"encoded-word boundaries, 9 deep", string(encodedWordNesting(9)), ""},
		{"encoded-word boundaries, 10 deep", string(encodedWordNesting(10)), "more than 8 nested multipart parts cut off"},
		{"cut off 30 deep inside a closed part", wrapMultipart(deepMultipart(30)), "more than 8 nested multipart parts cut off"},
		{"closed, 16 deep", closeAll(deepMultipart(15), 15), ""},
		{"closed, 17 deep", closeAll(deepMultipart(16), 16), "nested more than 16 deep"},
		{"160,000 tiny parts", string(flatParts(160000)), "more than 1000 MIME parts"},
		{"1000 tiny parts", string(flatParts(1000)), ""},
		{"1001 tiny parts", string(flatParts(1001)), "more than 1000 MIME parts"},
		{"5000 header fields", string(manyFields(4998)), ""},
		{"5001 header fields", string(manyFields(4999)), "more than 5000 header fields"},
		{"a boundary of 201 characters", "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=" + strings.Repeat("b", 201) +
			"\r\n\r\n--" + strings.Repeat("b", 201) + "\r\n\r\nx\r\n", "boundary longer than 200"},
		{"a delimiter in the middle of a line", "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"-\"\r\n\r\n---\r\n\r\na\r\n----\r\n\r\nb\r\n-----\r\n",
			"delimiter in the middle of a line"},
	}
	for _, tc := range cases {
		e := Parse([]byte(tc.raw), arrival)
		switch {
		case tc.reason == "" && e.Err != nil:
			t.Errorf("%s: Err %v, want it read", tc.name, e.Err)
		case tc.reason != "" && (!errors.Is(e.Err, ErrTooComplex) || !strings.Contains(e.Err.Error(), tc.reason)):
			t.Errorf("%s: Err %v, want ErrTooComplex naming %q", tc.name, e.Err, tc.reason)
		}
		if e.From != "a@example.com" {
			t.Errorf("%s: From %q: the header is read whatever the body", tc.name, e.From)
		}
		checkValid(t, tc.name, e)
	}
}

// TestParseWorkBudget: the net behind the bounds. With the structure walk switched off, the
// 40-deep encoded-word nesting goes to enmime, whose reads of the input double with every
// level: the work budget stops it at once (no clock involved) and the email is set aside.
func TestParseWorkBudget(t *testing.T) {
	lim := unbounded
	lim.Reads = 0 // the default budget
	e := ParseContext(context.Background(), encodedWordNesting(40), arrival, lim)
	if !errors.Is(e.Err, ErrWorkBudget) || !strings.Contains(e.Err.Error(), "reads of its") {
		t.Fatalf("Err = %v, want ErrWorkBudget: over the read budget", e.Err)
	}
	if e.From != "a@example.com" || !strings.Contains(e.Text, "nestmarker") {
		t.Errorf("From %q, Text %.60q: the header and the text are kept", e.From, e.Text)
	}
	// A normal email is far inside the budget.
	if e := ParseContext(context.Background(), encodedWordNesting(6), arrival, lim); e.Err != nil {
		t.Errorf("6 levels: Err %v", e.Err)
	}
}

// TestParseDeadline: the last net, for work that does not read the input. With every bound
// and the budget off, the attack runs until the deadline: ParseContext returns then with the
// email set aside, and the parser left behind stops at its next read of the input — it does
// not burn a CPU until the process ends.
func TestParseDeadline(t *testing.T) {
	before := runtime.NumGoroutine()
	lim := unbounded
	lim.Deadline = time.Second
	done := make(chan *Email, 1)
	go func() { done <- ParseContext(context.Background(), encodedWordNesting(40), arrival, lim) }()
	var e *Email
	select {
	case e = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("ParseContext did not return at its deadline")
	}
	if !errors.Is(e.Err, ErrWorkBudget) || !strings.Contains(e.Err.Error(), "not read within 1s") {
		t.Fatalf("Err = %v, want ErrWorkBudget: not read within 1s", e.Err)
	}
	waitGoroutines(t, before)

	// Stopping: a cancelled ctx ends the wait, and the Err says so (the email is not judged).
	ctx, cancel := context.WithCancel(context.Background())
	lim.Deadline = -1
	go func() { done <- ParseContext(ctx, encodedWordNesting(40), arrival, lim) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case e = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("ParseContext did not return when its ctx was cancelled")
	}
	if !errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, ErrWorkBudget) {
		t.Errorf("Err = %v, want context.Canceled", e.Err)
	}
	waitGoroutines(t, before)
}

// waitGoroutines waits until no more goroutines run than before.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still run, %d before: the abandoned parser did not stop", runtime.NumGoroutine(), before)
		}
	}
}
