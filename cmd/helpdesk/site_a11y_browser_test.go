package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// a11yAudit is run in the page by the browser (Runtime.evaluate is not page script: the
// site's CSP, which forbids script, does not apply). It returns what a customer with a
// screen reader, a keyboard or poor sight would trip over, one line each:
//   - the html lang attribute and the viewport meta tag (a phone shows the page at its width);
//   - exactly one h1, and no heading level skipped (h1 then h3);
//   - every visible form field has a label tied to it (label for=, or aria-label), every
//     group of radio buttons a fieldset with a legend;
//   - every link and button has a name a screen reader can read;
//   - no positive tabindex (the focus order is the order of the page), no id twice;
//   - the text meets WCAG AA contrast on the background it is drawn on (4.5:1; 3:1 for
//     large text);
//   - nothing wider than the window (no sideways scrolling on a phone).
const a11yAudit = `(() => {
const out = [];
const lang = document.documentElement.getAttribute("lang");
if (lang !== "nl" && lang !== "en") out.push("html lang is " + JSON.stringify(lang));
const vp = document.querySelector('meta[name="viewport"]');
if (!vp || !/width=device-width/.test(vp.content)) out.push("no viewport meta with width=device-width");
const hs = [...document.querySelectorAll("h1,h2,h3,h4,h5,h6")];
const h1s = hs.filter(h => h.tagName === "H1").length;
if (h1s !== 1) out.push(h1s + " h1 elements, want 1");
let last = 0;
for (const h of hs) {
  const l = +h.tagName[1];
  if (l > last + 1) out.push("heading " + h.tagName + " '" + h.textContent.trim() + "' follows h" + last);
  last = l;
}
const visible = e => !e.hidden && e.type !== "hidden" && e.getClientRects().length > 0;
for (const e of document.querySelectorAll("input,select,textarea")) {
  if (!visible(e)) continue;
  const named = (e.labels && [...e.labels].some(l => l.textContent.trim() !== "")) || e.getAttribute("aria-label") || e.getAttribute("aria-labelledby");
  if (!named) out.push("field " + (e.name || e.id) + " has no label");
  if (e.type === "radio" && !(e.closest("fieldset") && e.closest("fieldset").querySelector("legend"))) out.push("radio " + e.name + " outside a fieldset with a legend");
}
for (const e of document.querySelectorAll("a[href],button")) {
  if (!visible(e)) continue;
  if ((e.textContent || "").trim() === "" && !e.getAttribute("aria-label")) out.push(e.tagName + " " + (e.getAttribute("href") || "") + " has no text");
}
for (const e of document.querySelectorAll("[tabindex]")) if (+e.getAttribute("tabindex") > 0) out.push("positive tabindex on " + e.tagName);
const ids = {};
for (const e of document.querySelectorAll("[id]")) { if (ids[e.id]) out.push("id " + e.id + " twice"); ids[e.id] = true; }
const rgb = s => { const m = s.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(",").map(x => parseFloat(x)); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
const bgOf = e => { for (let n = e; n; n = n.parentElement) { const c = rgb(getComputedStyle(n).backgroundColor); if (c && c.a > 0) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
const seen = new Set();
for (const e of document.querySelectorAll("body *")) {
  if (!visible(e) || e.closest(".skip")) continue;
  const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim() !== "");
  if (!own) continue;
  const st = getComputedStyle(e);
  if (st.visibility === "hidden" || +st.opacity === 0) continue;
  const fg = rgb(st.color), bg = bgOf(e);
  const l1 = lum(fg), l2 = lum(bg);
  const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  const size = parseFloat(st.fontSize), bold = +st.fontWeight >= 700;
  const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
  const key = e.tagName + st.color + bg.r + bg.g + bg.b;
  if (ratio < need && !seen.has(key)) { seen.add(key); out.push("contrast " + ratio.toFixed(2) + " < " + need + " for " + e.tagName + " '" + e.textContent.trim().slice(0, 40) + "'"); }
}
const width = WINDOW_WIDTH;
if (document.documentElement.scrollWidth > width + 1) out.push("the page is " + document.documentElement.scrollWidth + "px wide in a window of " + width + "px");
return out;
})()`

// focusStep is what has the keyboard focus after a Tab: its tag, its text or name, whether
// it comes after the one before in the order of the page, and whether the focus is drawn.
const focusStep = `(() => {
const e = document.activeElement;
const st = getComputedStyle(e);
const drawn = st.outlineStyle !== "none" && parseFloat(st.outlineWidth) >= 2;
const prev = window.__lastFocus;
const forward = !prev || !document.contains(prev) || (prev.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0;
window.__lastFocus = e;
const r = e.getBoundingClientRect();
return {tag: e.tagName, name: (e.textContent || e.name || e.id || "").trim().slice(0, 30), skip: e.classList.contains("skip"), drawn, forward, onScreen: r.right > 0 && r.left < window.innerWidth};
})()`

type focused struct {
	Tag      string `json:"tag"`
	Name     string `json:"name"`
	Skip     bool   `json:"skip"`
	Drawn    bool   `json:"drawn"`
	Forward  bool   `json:"forward"`
	OnScreen bool   `json:"onScreen"`
}

// TestBrowserAccessibility: every page of the site, in Chromium, at desktop width and at a
// phone's, passes a11yAudit; and with the keyboard alone the focus starts at the skip link
// (shown when focused), moves forward through the page in its order, and is always drawn.
func TestBrowserAccessibility(t *testing.T) {
	p := newPeers(t)
	base, env, _ := siteGateway(t, p, siteClock())
	b := tab{t, newBrowser(t)}

	sizes := []struct {
		name string
		w, h int64
		opts []chromedp.EmulateViewportOption
	}{{"desktop", 1280, 900, nil}, {"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile}}}
	audit := func(pages ...string) {
		t.Helper()
		for _, size := range sizes {
			if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(size.w, size.h, size.opts...)); err != nil {
				t.Fatal(err)
			}
			for _, path := range pages {
				b.open(base + path)
				problems, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](strings.ReplaceAll(a11yAudit, "WINDOW_WIDTH", strconv.FormatInt(size.w, 10))))
				if err != nil {
					t.Fatalf("audit %s: %v", path, err)
				}
				for _, pr := range problems {
					t.Errorf("%s, %s: %s", path, size.name, pr)
				}
			}
		}
		if err := chromedp.Do(b.ctx, chromedp.EmulateReset()); err != nil {
			t.Fatal(err)
		}
	}

	// The keyboard alone: from the skip link forward through the page, the focus drawn.
	keyboard := func(paths ...string) {
		t.Helper()
		for _, path := range paths {
			b.open(base + path)
			var steps []string
			for i := range 40 {
				if err := chromedp.Do(b.ctx, chromedp.KeyEvent("\t")); err != nil {
					t.Fatal(err)
				}
				f, err := chromedp.Run(b.ctx, chromedp.Evaluate[focused](focusStep))
				if err != nil {
					t.Fatal(err)
				}
				if f.Tag == "BODY" {
					break // past the last element
				}
				steps = append(steps, f.Tag+" "+f.Name)
				switch {
				case i == 0 && !f.Skip:
					t.Errorf("%s: the first Tab focuses %s %q, want the skip link", path, f.Tag, f.Name)
				case !f.Forward:
					t.Errorf("%s: Tab %d goes back in the page to %s %q", path, i+1, f.Tag, f.Name)
				case !f.Drawn:
					t.Errorf("%s: the focus on %s %q is not drawn", path, f.Tag, f.Name)
				case !f.OnScreen:
					t.Errorf("%s: the focused %s %q is off the screen", path, f.Tag, f.Name)
				}
			}
			if len(steps) < 3 {
				t.Errorf("%s: the keyboard reaches only %v", path, steps)
			}
		}
	}

	// Logged out.
	mustRun(t, env, "customer", "invite", siteA)
	link := emailedLink(t, p, siteA, 1)
	audit("/inloggen", "/inloggen?taal=en", "/wachtwoord/vergeten", "/login/vergeten", "/bestaat-niet", strings.TrimPrefix(link, base))
	keyboard("/inloggen", strings.TrimPrefix(link, base))
	b.open(base + "/inloggen?taal=nl")
	b.fill("#email", siteA)
	b.fill("#password", "fout-wachtwoord")
	b.press("main form button")
	if problems, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](strings.ReplaceAll(a11yAudit, "WINDOW_WIDTH", "window.innerWidth"))); err != nil || len(problems) > 0 {
		t.Errorf("the refused log-in: %v %v", problems, err)
	}

	// Logged in.
	b.open(link)
	b.fill("#password", sitePW)
	b.fill("#password2", sitePW)
	b.press("main form button")
	a := newVisitor(t, base)
	a.login(siteA, sitePW)
	id := newSiteTicket(t, a, map[string]string{"subject": "Bonprinter", "text": "Hij print niet.", "contact": "site", "urgent": "on"},
		upload{"foto.png", "image/png", []byte("\x89PNG\r\n\x1a\n")})
	p.deliver(t, staffAuth+customerMail("jan@infobits.example", "Re: [Infobits #"+id+"] Bonprinter", "a11y-1@infobits.example", "", "Papier op."))
	waitSubject(t, p, siteA, "[Infobits #"+id+"] Er staat een antwoord voor u klaar")
	audit("/helpdesk", "/tickets/nieuw", "/tickets/"+id, "/account", "/helpdesk?taal=en", "/tickets/"+id+"?taal=en", "/account?taal=nl")

	keyboard("/helpdesk", "/tickets/nieuw", "/tickets/"+id, "/account")
}
