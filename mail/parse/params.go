package parse

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// parseParams reads a Content-Type or Content-Disposition value (RFC 2045 section 5.1,
// RFC 2183): the lower-cased type and its parameters, names lower-cased. It reads what mail
// programs write, not only what the RFCs allow — white space around "=" (a value folded onto
// the next line: "filename=\r\n \"bon.pdf\""), unquoted values with spaces or specials up to
// the next ";", a ";" at the end — and RFC 2231 parameters ("filename*0*=utf-8”caf%C3%A9;
// filename*1=.pdf"), decoded in their own charset; an extended value wins over a plain one of
// the same name. ok is false when the value cannot be read with certainty (an unterminated
// quoted string, no type/subtype, a parameter without "="): the email is then read by the
// fallback parser.
func parseParams(v string) (typ string, params map[string]string, ok bool) {
	s := strings.TrimSpace(v)
	i := strings.IndexByte(s, ';')
	if i < 0 {
		i = len(s)
	}
	typ = strings.ToLower(strings.TrimSpace(s[:i]))
	s = s[i:]
	params = map[string]string{}
	type section struct {
		n     int
		ext   bool
		value string
	}
	var sections map[string][]section
	for {
		s = strings.TrimLeft(s, " \t\r\n;")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		semi := strings.IndexByte(s, ';')
		if eq < 0 || (semi >= 0 && semi < eq) {
			return typ, params, false // a parameter without a value
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		if name == "" || strings.ContainsAny(name, " \t\"") {
			return typ, params, false
		}
		s = strings.TrimLeft(s[eq+1:], " \t\r\n")
		var value string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			j := 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return typ, params, false // unterminated
			}
			value = b.String()
			s = s[j+1:]
			// Anything up to the next ";" after the quoted string is junk; so is its end.
			if k := strings.IndexByte(s, ';'); k >= 0 {
				if strings.TrimSpace(s[:k]) != "" {
					return typ, params, false
				}
				s = s[k:]
			} else if strings.TrimSpace(s) != "" {
				return typ, params, false
			} else {
				s = ""
			}
		} else {
			k := strings.IndexByte(s, ';')
			if k < 0 {
				k = len(s)
			}
			value = strings.TrimSpace(s[:k])
			if strings.Contains(value, `"`) {
				return typ, params, false
			}
			s = s[k:]
		}
		// RFC 2231: name*, name*0, name*0*, name*1 ...
		if star := strings.IndexByte(name, '*'); star >= 0 {
			base, rest := name[:star], name[star+1:]
			sec := section{value: value}
			switch {
			case rest == "":
				sec.ext = true
			default:
				num := strings.TrimSuffix(rest, "*")
				sec.ext = num != rest
				n, err := strconv.Atoi(num)
				if err != nil || n < 0 || n > 999 {
					return typ, params, false
				}
				sec.n = n
			}
			if sections == nil {
				sections = map[string][]section{}
			}
			sections[base] = append(sections[base], sec)
			continue
		}
		if _, dup := params[name]; !dup {
			params[name] = value
		} else if name == "boundary" && params[name] != value {
			return typ, params, false // which one?
		}
	}
	for base, secs := range sections {
		sort.SliceStable(secs, func(a, b int) bool { return secs[a].n < secs[b].n })
		var raw []byte
		cs := ""
		for k, sec := range secs {
			v := sec.value
			if sec.ext {
				if k == 0 {
					// charset'language'value
					parts := strings.SplitN(v, "'", 3)
					if len(parts) == 3 {
						cs, v = parts[0], parts[2]
					}
				}
				raw = append(raw, pctDecode(v)...)
				continue
			}
			raw = append(raw, v...)
		}
		params[base] = decodeLabelled(cs, raw)
	}
	return typ, params, true
}

// isMediaType reports whether t is a type/subtype of tokens (RFC 2045 section 5.1).
func isMediaType(t string) bool {
	a, b, ok := strings.Cut(t, "/")
	return ok && isToken(a) && isToken(b)
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// decodeLabelled reads bytes that say which charset they are in (RFC 2231 parameters); when
// the charset is unknown or cannot read them (the label lies), they are read as 8-bit bytes
// without a label (decodeRaw8bit).
func decodeLabelled(cs string, raw []byte) string {
	if enc, kind := lookupCharset(cs); kind == charsetKnown {
		if out, err := enc.NewDecoder().Bytes(raw); err == nil && !bytes.ContainsRune(out, utf8.RuneError) {
			return string(out)
		}
	}
	return decodeRaw8bit(string(raw), "")
}

// pctDecode undoes RFC 2231's %XX escapes; a "%" without two hex digits is kept.
func pctDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return out
}
