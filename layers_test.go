package helpdesk_test

// The layers of the gateway, checked on what `go list` reports: every import of ours points
// down or sideways in the table below, never up; the pure rules and the mail readers link
// neither bbolt, go-imap nor go-smtp; the product binary links no test helper. The picture is
// in docs/ (design); this table is the one the build is held to.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/infobits/helpdesk"

// layer is a group of packages and the groups they may import (their own always included).
// Test files may import anything; this is about what the packages themselves link.
type layer struct {
	name     string
	pkgs     []string // paths relative to the module; "" is the root package
	mayUse   []string // the layers its packages may import
	testOnly bool     // imports testing: no product package may import it
}

// layers, top to bottom. The commands wire everything; the interfaces (the HTTP API, the
// customer's site) call the desk and read the views; ingest (mail in) and notify (mail out) sit beside the desk and use it, never
// each other, and sign in to their servers through internal/oauth; the desk applies the rules to the store; the rules and the mail readers are
// pure; the store is bbolt; the root package is the vocabulary all of them share.
var layers = []layer{
	{name: "commands", pkgs: []string{"cmd/helpdesk"},
		mayUse: []string{"interfaces", "ingest", "notify", "peers", "sign-in", "desk", "rules", "mail", "templates", "store", "vocabulary"}},
	{name: "interfaces", pkgs: []string{"cmd/helpdesk/api", "cmd/helpdesk/site", "cmd/helpdesk/download"},
		mayUse: []string{"ingest", "desk", "rules", "mail", "templates", "store", "vocabulary"}},
	{name: "ingest", pkgs: []string{"ingest"}, mayUse: []string{"sign-in", "desk", "mail", "store", "vocabulary"}},
	{name: "notify", pkgs: []string{"notify"}, mayUse: []string{"sign-in", "desk", "mail", "templates", "store", "vocabulary"}},
	{name: "peers", pkgs: []string{"ingest/imapmem", "notify/smtpsink"}},
	{name: "sign-in", pkgs: []string{"internal/oauth"}, mayUse: []string{"vocabulary"}}, // OAuth 2.0 tokens and SASL for ingest and notify
	// desk/search is a read model like desk/view: the full-text index of the tickets, kept
	// from the store's marks.
	{name: "desk", pkgs: []string{"desk", "desk/view", "desk/customers", "desk/backups", "desk/search"},
		mayUse: []string{"rules", "mail", "templates", "store", "vocabulary"}},
	{name: "rules", pkgs: []string{"rules/policy", "rules/calendar", "rules/retention", "rules/escalation", "rules/digest", "rules/report"}, mayUse: []string{"mail", "vocabulary"}},
	{name: "mail", pkgs: []string{"mail/parse", "mail/authres"}, mayUse: []string{"vocabulary"}},
	{name: "templates", pkgs: []string{"templates"}, mayUse: []string{"vocabulary"}},
	{name: "store", pkgs: []string{"store"}, mayUse: []string{"vocabulary"}},
	{name: "vocabulary", pkgs: []string{""}},
	{name: "test helpers", testOnly: true, pkgs: []string{"store/storetest", "ingest/imaptest", "notify/smtptest", "internal/growth",
		"internal/oauth/oauthtest"},
		mayUse: []string{"peers", "store", "vocabulary"}},
}

// The rules and the mail readers must not link these, directly or through anything they import.
var notInRules = []string{"go.etcd.io/bbolt", "github.com/emersion/go-imap", "github.com/emersion/go-smtp"}

type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// goList runs `go list -json` on the module's packages.
func goList(t *testing.T) []listedPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < len(layers) {
		t.Fatalf("go list listed %d packages", len(pkgs))
	}
	return pkgs
}

func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func layerOf(path string) (*layer, bool) {
	r, ok := rel(path)
	if !ok {
		return nil, false
	}
	for i := range layers {
		if slices.Contains(layers[i].pkgs, r) {
			return &layers[i], true
		}
	}
	return nil, true
}

// layerViolations lists every import of ours that the table does not allow, and every package
// of ours the table does not place.
func layerViolations(pkgs []listedPackage) []string {
	var bad []string
	for _, p := range pkgs {
		from, ours := layerOf(p.ImportPath)
		if !ours {
			continue
		}
		if from == nil {
			bad = append(bad, fmt.Sprintf("%s is in no layer: add it to the table in layers_test.go", p.ImportPath))
			continue
		}
		for _, imp := range p.Imports {
			to, ours := layerOf(imp)
			switch {
			case !ours || to == nil: // not ours, or reported above
			case to.testOnly && !from.testOnly:
				bad = append(bad, fmt.Sprintf("%s (%s) imports the test helper %s", p.ImportPath, from.name, imp))
			case to != from && !slices.Contains(from.mayUse, to.name):
				bad = append(bad, fmt.Sprintf("%s (%s) imports %s (%s): %s may import only %s",
					p.ImportPath, from.name, imp, to.name, from.name, orNothing(from.mayUse)))
			}
		}
	}
	return bad
}

func orNothing(s []string) string {
	if len(s) == 0 {
		return "nothing of ours"
	}
	return strings.Join(s, ", ")
}

// TestLayers: every import of ours follows the table; rules/* and mail/* link neither bbolt,
// go-imap nor go-smtp; the binary links no testing.
func TestLayers(t *testing.T) {
	pkgs := goList(t)
	for _, v := range layerViolations(pkgs) {
		t.Error(v)
	}
	for _, p := range pkgs {
		r, _ := rel(p.ImportPath)
		if strings.HasPrefix(r, "rules/") || strings.HasPrefix(r, "mail/") {
			for _, d := range p.Deps {
				for _, f := range notInRules {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%s links %s: the rules and the mail readers stay pure", p.ImportPath, d)
					}
				}
			}
		}
		if r == "cmd/helpdesk" {
			if slices.Contains(p.Deps, "testing") {
				t.Errorf("the binary links testing: a test helper is reachable from %s (go list -deps ./cmd/helpdesk)", p.ImportPath)
			}
			for _, imp := range p.Imports {
				for _, f := range notInRules[1:] {
					if imp == f || strings.HasPrefix(imp, f+"/") {
						t.Errorf("cmd/helpdesk imports %s: the protocols are ingest's and notify's (Probe)", imp)
					}
				}
			}
		}
	}
}

// TestLayersCatchAnUpwardImport: the check itself fails on the imports it is there to refuse.
func TestLayersCatchAnUpwardImport(t *testing.T) {
	pkgs := []listedPackage{
		{ImportPath: module + "/store", Imports: []string{module, module + "/rules/retention"}},
		{ImportPath: module + "/rules/policy", Imports: []string{module + "/store"}},
		{ImportPath: module + "/ingest", Imports: []string{module + "/notify"}},
		{ImportPath: module + "/notify", Imports: []string{module + "/notify/smtptest"}},
		{ImportPath: module + "/desk", Imports: []string{module + "/desk/view", module + "/rules/policy"}},
		{ImportPath: module + "/newpkg"},
	}
	got := layerViolations(pkgs)
	for _, want := range []string{"/store (store) imports " + module + "/rules/retention", "/rules/policy (rules) imports " + module + "/store",
		"/ingest (ingest) imports " + module + "/notify", "imports the test helper " + module + "/notify/smtptest", "newpkg is in no layer"} {
		if !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, want) }) {
			t.Errorf("no violation %q among %q", want, got)
		}
	}
	if len(got) != 5 {
		t.Errorf("%d violations, want 5 (desk importing desk/view and the rules is allowed): %q", len(got), got)
	}
}

// TestOneOfEach: what the layers share is defined once, in the root package: the time zone
// is loaded in zone.go only (embedded tzdata, one way to fail), the loopback check is tls.go's
// IsLoopback, the date type is types.go's Date. A second copy elsewhere fails here.
func TestOneOfEach(t *testing.T) {
	once := []struct {
		what string
		re   *regexp.Regexp
		home string
	}{
		{"the time zone (use helpdesk.Amsterdam())", regexp.MustCompile(`time\.LoadLocation\(`), "zone.go"},
		{"the loopback check (use helpdesk.IsLoopback)", regexp.MustCompile(`\.IsLoopback\(\)`), "tls.go"},
		{"the date type (use helpdesk.Date)", regexp.MustCompile(`(?m)^type Date\b`), "types.go"},
	}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, o := range once {
			if path != o.home && o.re.Match(b) {
				t.Errorf("%s defines %s again: it is in %s", path, o.what, o.home)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
