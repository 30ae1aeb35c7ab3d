// Package download serves a stored file — an attachment a customer or a staff member sent — as
// a download, for the HTTP API and the customer's site alike: byte for byte, with the type it
// was sent with, never as a page of the site.
package download

import (
	"mime"
	"net/http"
	"strconv"

	"github.com/infobits/helpdesk/mail/parse"
)

// Serve writes p with status 200: its stored type (and charset, for a text file in its own
// charset; application/octet-stream when the type cannot be written back), Content-Disposition
// attachment with its name, nosniff, a sandbox policy so that a browser never runs what a
// sender chose, and no caching outside the customer's own browser.
func Serve(w http.ResponseWriter, p parse.Part) {
	ctype := "application/octet-stream"
	params := map[string]string{}
	if cs := p.Params["charset"]; cs != "" {
		params["charset"] = cs
	}
	if t := mime.FormatMediaType(p.ContentType, params); t != "" {
		ctype = t
	}
	disp := "attachment"
	if p.Filename != "" {
		if d := mime.FormatMediaType("attachment", map[string]string{"filename": p.Filename}); d != "" {
			disp = d
		}
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", disp)
	h.Set("Content-Length", strconv.Itoa(len(p.Content)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(p.Content)
}
