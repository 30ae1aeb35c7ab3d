package templates

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/infobits/helpdesk"
)

// The customer's site: its pages are html/template files in site/ (the markup, the same in
// every language) and their texts are in nl/site.txt and en/site.txt, one "key = text" a line
// (the text may hold %s and %d for what the page fills in). An operator overrides a page by
// putting site/NAME.html.tmpl in templates_dir, and single texts by putting the keys to change
// in templates_dir/nl/site.txt (keys not named there keep their embedded text); the
// stylesheet is site/site.css. Like the notifications, what a customer wrote is escaped by
// html/template.

//go:embed site/*.tmpl site/site.css nl/site.txt en/site.txt
var sitePages embed.FS

// PageNames returns the pages of the site; each has site/NAME.html.tmpl, which defines
// "content" for the layout (site/layout.html.tmpl).
func PageNames() []string {
	return []string{"login", "helpdesk", "ticket_new", "ticket", "account", "password_forgot", "password_reset",
		"login_forgot", "login_confirm", "message"}
}

// Pages are the site's parsed pages, by language. Safe for concurrent use.
type Pages struct {
	pages map[string]*htmltemplate.Template // lang/page
	texts map[string]map[string]string      // lang -> key -> text
	css   []byte
}

// LoadPages parses the site's pages and texts, with the files in overrideDir (may be "")
// replacing embedded ones. A text key the markup uses but a language lacks is found when the
// page is rendered; the site renders every page in every language at start-up.
func LoadPages(overrideDir string) (*Pages, error) {
	p := &Pages{pages: map[string]*htmltemplate.Template{}, texts: map[string]map[string]string{}}
	readEmbedded := func(name string) ([]byte, error) { return sitePages.ReadFile(name) }
	readOverride := func(name string) ([]byte, error) {
		if overrideDir == "" {
			return nil, fs.ErrNotExist
		}
		b, err := os.ReadFile(filepath.Join(overrideDir, filepath.FromSlash(name)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read template override: %w", err)
		}
		return b, err
	}
	read := func(name string) ([]byte, error) {
		b, err := readOverride(name)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return b, err
		}
		return readEmbedded(name)
	}
	var err error
	if p.css, err = read("site/site.css"); err != nil {
		return nil, fmt.Errorf("site/site.css: %w", err)
	}
	for _, lang := range Langs() {
		name := lang + "/site.txt"
		b, err := readEmbedded(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		texts, err := parseTexts(name, b)
		if err != nil {
			return nil, err
		}
		switch ob, err := readOverride(name); {
		case err == nil:
			over, err := parseTexts(name+" (templates_dir)", ob)
			if err != nil {
				return nil, err
			}
			for k, v := range over {
				if _, ok := texts[k]; !ok {
					return nil, fmt.Errorf("%s (templates_dir): unknown text key %q", name, k)
				}
				texts[k] = v
			}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
		p.texts[lang] = texts
	}
	layout, err := read("site/layout.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("site/layout.html.tmpl: %w", err)
	}
	for _, lang := range Langs() {
		for _, page := range PageNames() {
			name := "site/" + page + ".html.tmpl"
			src, err := read(name)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			t := htmltemplate.New(page).Option("missingkey=error").Funcs(p.funcs(lang))
			if _, err := t.New("site/layout.html.tmpl").Parse(string(layout)); err != nil {
				return nil, fmt.Errorf("site/layout.html.tmpl: %w", err)
			}
			if _, err := t.New(name).Parse(string(src)); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			p.pages[lang+"/"+page] = t
		}
	}
	return p, nil
}

// parseTexts reads "key = text" lines; blank lines and lines starting with # are skipped.
func parseTexts(name string, b []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s line %d: want key = text", name, n)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s line %d: key %q a second time", name, n, k)
		}
		out[k] = v
	}
	return out, sc.Err()
}

// funcs are the template functions of one language: t (a text, filled in like fmt.Sprintf),
// date (a moment in words), day (dd-mm-yyyy), size (a file size in words).
func (p *Pages) funcs(lang string) htmltemplate.FuncMap {
	return htmltemplate.FuncMap{
		"t": func(key string, args ...any) (string, error) {
			return p.Text(lang, key, args...)
		},
		"date": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return FormatDate(t.In(helpdesk.Amsterdam()), lang)
		},
		"size": func(n int64) string { return FormatSize(n, lang) },
	}
}

// Text is the text of key in lang, filled in with args; an unknown key is an error (so a
// page that uses one fails the start-up check, not a customer's request).
func (p *Pages) Text(lang, key string, args ...any) (string, error) {
	texts, ok := p.texts[lang]
	if !ok {
		texts = p.texts[Langs()[0]]
	}
	s, ok := texts[key]
	if !ok {
		return "", fmt.Errorf("no text %q in %s/site.txt", key, lang)
	}
	if len(args) == 1 {
		if list, ok := args[0].([]any); ok { // a page's ErrorArgs, passed on whole
			args = list
		}
	}
	// Only as many arguments as the text takes: a page passes its arguments whole, and an
	// override may leave one out.
	verbs := strings.Count(s, "%") - 2*strings.Count(s, "%%")
	args = args[:min(len(args), verbs)]
	if len(args) > 0 {
		s = fmt.Sprintf(s, args...)
	}
	return s, nil
}

// Render writes page in lang (unknown languages: Dutch) with data into w. It renders into a
// buffer first: a failing page writes nothing.
func (p *Pages) Render(w io.Writer, page, lang string, data any) error {
	t, ok := p.pages[lang+"/"+page]
	if !ok {
		if t, ok = p.pages[Langs()[0]+"/"+page]; !ok {
			return fmt.Errorf("no page %q", page)
		}
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", data); err != nil {
		return fmt.Errorf("render page %s/%s: %w", lang, page, err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// CSS is the site's stylesheet.
func (p *Pages) CSS() []byte { return p.css }
