package archive

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// findLockHolder looks up which process holds a flock on path: the PID from /proc/locks (matched by the file's
// device and inode) and its command line from /proc/<pid>/cmdline. ok is false when no holder could be found
// (no /proc, no permission, lock already released); it never fails otherwise. Our own PID is a valid answer:
// two handles in one process exclude each other like two processes do.
func findLockHolder(path string) (h lockHolder, ok bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return lockHolder{}, false
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return lockHolder{}, false
	}
	defer f.Close()
	return parseProcLocks(f, devMajor(uint64(st.Dev)), devMinor(uint64(st.Dev)), uint64(st.Ino), readCmdline)
}

// parseProcLocks scans /proc/locks text for FLOCK entries on major:minor:ino (blocked waiters, "->", are
// skipped) and describes the first holder found with a valid PID.
func parseProcLocks(r io.Reader, major, minor, ino uint64,
	cmdline func(pid int) string) (h lockHolder, ok bool) {
	want := fmt.Sprintf("%02x:%02x:%d", major, minor, ino)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 12345 fe:00:9977939 0 EOF"
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] == "->" || fields[1] != "FLOCK" || fields[5] != want {
			continue
		}
		pid, err := strconv.Atoi(fields[4])
		if err != nil || pid <= 0 {
			continue
		}
		if !ok {
			h, ok = lockHolder{PID: pid, Command: cmdline(pid)}, true
			continue
		}
		if pid != h.PID {
			h.Others++
		}
	}
	return h, ok
}

// readCmdline returns /proc/<pid>/cmdline with arguments joined by spaces, unprintable characters replaced and
// cut to maxHolderCommand runes ("" when it cannot be read).
func readCmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return cleanCommand(b)
}

func cleanCommand(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	var sb strings.Builder
	n := 0
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		switch {
		case r == 0:
			r = ' '
		case r == utf8.RuneError || !unicode.IsPrint(r):
			r = '?'
		}
		if n == maxHolderCommand {
			sb.WriteString("…")
			break
		}
		sb.WriteRune(r)
		n++
	}
	return strings.TrimSpace(sb.String())
}

// devMajor and devMinor split a Linux dev_t (glibc's encoding, as stat reports it).
func devMajor(dev uint64) uint64 { return (dev&0x00000000000fff00)>>8 | (dev&0xfffff00000000000)>>32 }
func devMinor(dev uint64) uint64 { return dev&0x00000000000000ff | (dev&0x00000ffffff00000)>>12 }
