package main

import (
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// terminalWidth is the width of the terminal w writes to, or 0 when w is
// not a terminal (the table format then uses its default).
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 0
	}
	return int(ws.Col)
}

// splitFields accepts both --fields a,b and --fields a --fields b.
func splitFields(in []string) []string {
	var out []string
	for _, f := range in {
		for _, p := range strings.Split(f, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
