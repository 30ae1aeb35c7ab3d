package helpdesk_test

// The documentation is checked like code: every link in a Markdown file resolves inside the
// repository, every business rule cited anywhere exists in docs/rules.md, and every test, fuzz
// target, benchmark and package path the docs name exists. These run with the rest of the suite
// (go test ./...), from the module root.

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// repoFiles lists the repository's files whose name ends in one of exts, relative to the module
// root, skipping .git.
func repoFiles(t *testing.T, exts ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() && slices.ContainsFunc(exts, func(e string) bool { return strings.HasSuffix(p, e) }) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no %v files found: the test must run from the module root", exts)
	}
	return out
}

var (
	fence      = regexp.MustCompile("(?ms)^[ \t]*```.*?^[ \t]*```[^\n]*$")
	codeSpan   = regexp.MustCompile("`[^`\n]*`")
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDef     = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$`)
	heading    = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$`)
	htmlID     = regexp.MustCompile(`(?i)<a\s[^>]*(?:id|name)="([^"]+)"`)
	scheme     = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// prose is a Markdown text without its fenced code blocks and code spans: what is rendered as
// text, where links and headings live.
func prose(md string) string {
	md = fence.ReplaceAllStringFunc(md, func(s string) string { return strings.Repeat("\n", strings.Count(s, "\n")) })
	return md
}

// anchors are the fragment names a Markdown file offers: its headings as GitHub names them
// (lower case, punctuation dropped, spaces as hyphens, repeats numbered) and explicit ids.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	text := prose(md)
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(text, -1) {
		h := inlineLink.ReplaceAllStringFunc(m[1], func(s string) string { return s[strings.Index(s, "[")+1 : strings.Index(s, "]")] })
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.M, r):
				b.WriteRune(r)
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	for _, m := range htmlID.FindAllStringSubmatch(text, -1) {
		out[m[1]] = true
	}
	return out
}

// TestDocLinks: every link of every Markdown file in the repository that is not a URL names a
// file or folder inside the repository (no ../shared/SPEC.md: a clone has nothing beside it), and
// a fragment (#r7) names a heading or an id of the Markdown file it points at.
func TestDocLinks(t *testing.T) {
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	mds := repoFiles(t, ".md")
	cache := map[string]map[string]bool{}
	anchorsOf := func(p string) map[string]bool {
		if a, ok := cache[p]; ok {
			return a
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cache[p] = anchors(string(b))
		return cache[p]
	}
	var links int
	for _, md := range mds {
		b, err := os.ReadFile(md)
		if err != nil {
			t.Fatal(err)
		}
		text := codeSpan.ReplaceAllString(prose(string(b)), "")
		var targets []string
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			targets = append(targets, m[1])
		}
		for _, m := range refDef.FindAllStringSubmatch(text, -1) {
			targets = append(targets, m[1])
		}
		for _, target := range targets {
			if scheme.MatchString(target) {
				continue // a URL: a standard, a vendor's page
			}
			links++
			path, frag, _ := strings.Cut(target, "#")
			if strings.HasPrefix(path, "/") {
				t.Errorf("%s: link %q is absolute; write it relative to the file", md, target)
				continue
			}
			file := md
			if path != "" {
				file = filepath.Join(filepath.Dir(md), filepath.FromSlash(path))
				abs, err := filepath.Abs(file)
				if err != nil {
					t.Fatal(err)
				}
				if rel, err := filepath.Rel(root, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
					t.Errorf("%s: link %q leaves the repository", md, target)
					continue
				}
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s: link %q names nothing in the repository", md, target)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(file, ".md") && !anchorsOf(file)[frag] {
				t.Errorf("%s: link %q: %s has no heading or id %q", md, target, file, frag)
			}
		}
	}
	if links < 50 {
		t.Errorf("only %d relative links found in %d Markdown files: is the link pattern broken?", links, len(mds))
	}
}

var ruleCite = regexp.MustCompile(`\bR([0-9]+)\b`)

// TestRuleCitations: every business rule cited in the code, the tests and the docs (R7, R1–R15)
// exists in docs/rules.md, with an anchor (#r7) and a heading of its own.
func TestRuleCitations(t *testing.T) {
	b, err := os.ReadFile("docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	rules := string(b)
	defined := map[int]bool{}
	for _, m := range regexp.MustCompile(`(?m)^<a id="r([0-9]+)"></a>\n### R([0-9]+) · \S`).FindAllStringSubmatch(rules, -1) {
		if m[1] != m[2] {
			t.Errorf("docs/rules.md: anchor r%s stands above the heading of R%s", m[1], m[2])
		}
		n, _ := strconv.Atoi(m[1])
		if defined[n] {
			t.Errorf("docs/rules.md defines R%d twice", n)
		}
		defined[n] = true
	}
	for n := 1; n <= 21; n++ {
		if !defined[n] {
			t.Errorf("docs/rules.md lacks R%d (an anchor <a id=\"r%d\"></a> over a heading \"### R%d · ...\")", n, n, n)
		}
	}
	var cites int
	for _, f := range repoFiles(t, ".go", ".md") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range ruleCite.FindAllStringSubmatch(line, -1) {
				cites++
				if n, _ := strconv.Atoi(m[1]); !defined[n] {
					t.Errorf("%s:%d cites R%d, which docs/rules.md does not define", f, i+1, n)
				}
			}
		}
	}
	if cites < 100 {
		t.Errorf("only %d rule citations found: is the pattern broken?", cites)
	}
}

var (
	testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Z0-9_]\w*)\(`)
	testName = regexp.MustCompile(`\b((?:Test|Fuzz|Benchmark)[A-Z0-9_]\w*)`)
	repoPath = regexp.MustCompile(`(?:^|[^\w./-])\.?/?((?:cmd|desk|deploy|ingest|internal|mail|notify|rules|store|templates)/[\w./-]*)`)
)

// TestDocNames: the tests, fuzz targets and benchmarks the docs name as evidence
// (TestCrashExactlyOnce) exist, and so do the package folders and files they name (rules/policy,
// store/backup_test.go): a renamed test or a moved package fails here until the docs follow.
func TestDocNames(t *testing.T) {
	funcs := map[string]bool{}
	for _, f := range repoFiles(t, "_test.go") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range testFunc.FindAllStringSubmatch(string(b), -1) {
			funcs[m[1]] = true
		}
	}
	var names, paths int
	for _, md := range repoFiles(t, ".md") {
		b, err := os.ReadFile(md)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range testName.FindAllStringSubmatch(line, -1) {
				names++
				if !funcs[m[1]] {
					t.Errorf("%s:%d names %s, which no _test.go defines", md, i+1, m[1])
				}
			}
			for _, m := range repoPath.FindAllStringSubmatch(line, -1) {
				p := strings.TrimRight(m[1], "./")
				paths++
				if _, err := os.Stat(filepath.FromSlash(p)); err != nil {
					t.Errorf("%s:%d names %s, which is not in the repository", md, i+1, m[1])
				}
			}
		}
	}
	if names < 50 || paths < 20 {
		t.Errorf("only %d test names and %d paths found in the docs: is a pattern broken?", names, paths)
	}
}

// TestDocsCiteNoIssues: the docs describe behaviour; they do not send the reader to an issue
// tracker they cannot see (an issue number).
func TestDocsCiteNoIssues(t *testing.T) {
	issue := regexp.MustCompile(`(?i)\bissues?\s+#?[0-9]+`)
	for _, md := range repoFiles(t, ".md") {
		b, err := os.ReadFile(md)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := issue.FindString(line); m != "" {
				t.Errorf("%s:%d cites %q; describe the behaviour instead", md, i+1, m)
			}
		}
	}
}

// TestCodePointsIntoTheRepository: what the code and its messages send a reader to is in the
// repository — a docs/*.md file that exists — and never a file beside it (the specification
// and notes the project was started from are not part of a clone: the rules are docs/rules.md).
func TestCodePointsIntoTheRepository(t *testing.T) {
	docRef := regexp.MustCompile(`docs/[A-Za-z0-9_.-]+\.md`)
	outside := regexp.MustCompile(`\.\./shared/|/work/shared|\bSPEC(?:\.md)?\b|\bARCHITECTURE\b|STYLE\.md|LIBRARY-NOTES|REAL-PEERS`)
	for _, f := range repoFiles(t, ".go", ".md") {
		if f == "docs_test.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := outside.FindString(line); m != "" {
				t.Errorf("%s:%d points outside the repository (%q)", f, i+1, m)
			}
			if !strings.HasSuffix(f, ".go") {
				continue
			}
			for _, ref := range docRef.FindAllString(line, -1) {
				if _, err := os.Stat(ref); err != nil {
					t.Errorf("%s:%d names %s, which does not exist", f, i+1, ref)
				}
			}
		}
	}
}

// TestDocsGoVersion: every "Go 1.N or newer" the docs promise is the go directive of go.mod,
// the oldest Go that builds the module — a reader with an older one gets told before building.
func TestDocsGoVersion(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	want := string(m[1])
	said := regexp.MustCompile(`Go (\d+\.\d+)(?:\.\d+)? or newer`)
	found := 0
	for _, f := range repoFiles(t, ".md") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range said.FindAllSubmatch(b, -1) {
			found++
			if string(s[1]) != want {
				t.Errorf("%s says %q, but go.mod needs Go %s", f, s[0], want)
			}
		}
	}
	if found == 0 {
		t.Error("no document tells which Go builds the gateway (\"Go 1.N or newer\")")
	}
}
