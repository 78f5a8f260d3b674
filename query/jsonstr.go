package query

import (
	"unicode/utf8"
	"unsafe"
)

const hexDigits = "0123456789abcdef"

// safeASCII[c] is true when byte c can be copied into a JSON string as is.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s as a quoted JSON string. Invalid UTF-8 becomes U+FFFD; <, >, & and the line
// separators U+2028/U+2029 are escaped as encoding/json does, so output is safe to embed in HTML.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && plainWord(load64(s, i)) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendJSONBytes is appendJSONString for a byte slice, without converting it.
func appendJSONBytes(dst []byte, b []byte) []byte {
	if len(b) == 0 {
		return append(dst, '"', '"')
	}
	return appendJSONString(dst, unsafeString(b))
}

// unsafeString views b as a string without copying. The caller guarantees b is not modified while the string
// is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// load64 reads 8 bytes of s at i as a little-endian word (the compiler merges the loads).
func load64(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// plainWord reports whether all 8 bytes of w are ASCII that JSON strings take as is (no control character,
// quote, backslash, <, > or &), eight at a time.
func plainWord(w uint64) bool {
	q := w ^ (lsb8 * '"')
	b := w ^ (lsb8 * '\\')
	lt := w ^ (lsb8 * '<')
	gt := w ^ (lsb8 * '>')
	amp := w ^ (lsb8 * '&')
	mask := w | (w-lsb8*0x20)&^w |
		(q-lsb8)&^q | (b-lsb8)&^b | (lt-lsb8)&^lt | (gt-lsb8)&^gt | (amp-lsb8)&^amp
	return mask&msb8 == 0
}
