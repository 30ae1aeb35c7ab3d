package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/infobits/helpdesk/templates"
)

// runTemplatesPreview renders a notification with sample data through the configured
// templates (the embedded ones, or the overrides in templates_dir), so an operator sees what
// customers will get before a customer does.
func runTemplatesPreview(e *env, args []string) error {
	usage := "NAME [-lang nl|en] [-html]; NAME is one of " + strings.Join(templates.Kinds(), ", ")
	fs, _ := newFlags(e, "templates preview", usage)
	lang := fs.String("lang", templates.Langs()[0], "language: "+strings.Join(templates.Langs(), " or "))
	html := fs.Bool("html", false, "print the HTML part instead of the text part")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || !slices.Contains(templates.Kinds(), pos[0]) {
		return fmt.Errorf("%w: want one of %s", errUsage, strings.Join(templates.Kinds(), ", "))
	}
	if !slices.Contains(templates.Langs(), *lang) {
		return fmt.Errorf("%w: -lang %q: want %s", errUsage, *lang, strings.Join(templates.Langs(), " or "))
	}
	cfg, err := e.config(args)
	if err != nil {
		return err
	}
	set, err := templates.Load(cfg.Templates)
	if err != nil {
		return err
	}
	r, err := set.Render(pos[0], *lang, templates.Sample())
	if err != nil {
		return err
	}
	if *html {
		fmt.Fprint(e.stdout, r.HTML)
		return nil
	}
	fmt.Fprintf(e.stdout, "Subject: %s\n\n%s", r.Subject, r.Text)
	return nil
}
