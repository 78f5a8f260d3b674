package archive

import (
	"strings"
	"testing"
)

func TestParseProcLocks(t *testing.T) {
	const locks = `1: POSIX  ADVISORY  WRITE 111 fe:00:42 0 EOF
2: FLOCK  ADVISORY  WRITE 222 fe:01:42 0 EOF
3: FLOCK  ADVISORY  READ  333 fe:00:42 0 EOF
3: -> FLOCK  ADVISORY  WRITE 999 fe:00:42 0 EOF
4: FLOCK  ADVISORY  READ  333 fe:00:42 0 EOF
5: FLOCK  ADVISORY  READ  444 fe:00:42 0 EOF
6: FLOCK  ADVISORY  WRITE 555 fe:00:4242 0 EOF
garbage
`
	cmd := func(pid int) string { return map[int]string{333: "sfarchive query", 444: "other"}[pid] }
	h, ok := parseProcLocks(strings.NewReader(locks), 0xfe, 0, 42, cmd)
	if !ok || h.PID != 333 || h.Command != "sfarchive query" || h.Others != 1 {
		t.Fatalf("holder %+v, %t; want 333 (sfarchive query) and 1 other", h, ok)
	}
	if h, ok := parseProcLocks(strings.NewReader(locks), 0xfe, 0, 7, cmd); ok {
		t.Fatalf("holder %+v of a file nobody locks", h)
	}
	if h, ok := parseProcLocks(strings.NewReader("1: FLOCK  ADVISORY  WRITE -1 fe:00:42 0 EOF\n"), 0xfe, 0, 42,
		cmd); ok {
		t.Fatalf("holder %+v from an invisible PID", h)
	}
}

func TestCleanCommand(t *testing.T) {
	if got := cleanCommand([]byte("sfarchive\x00subscribe\x00--archive\x00events.db\x00")); got !=
		"sfarchive subscribe --archive events.db" {
		t.Errorf("cleanCommand = %q", got)
	}
	long := cleanCommand([]byte("sfarchive\x00subscribe\x00" + strings.Repeat("x", 500)))
	if r := []rune(long); len(r) != maxHolderCommand+1 || !strings.HasSuffix(long, "…") {
		t.Errorf("long command cut to %q", long)
	}
	if got := cleanCommand([]byte("a\nb\xff")); got != "a?b?" {
		t.Errorf("cleanCommand of control bytes = %q", got)
	}
}

func TestDevSplit(t *testing.T) {
	// glibc's makedev.
	mk := func(major, minor uint64) uint64 {
		return major&0xfff<<8 | major&^0xfff<<32 | minor&0xff | minor&^0xff<<12
	}
	for _, tc := range []struct{ major, minor uint64 }{{0xfe, 0}, {8, 1}, {0x12345, 0x789ab}, {0, 0x2f}} {
		dev := mk(tc.major, tc.minor)
		if ma, mi := devMajor(dev), devMinor(dev); ma != tc.major || mi != tc.minor {
			t.Errorf("dev %#x → %#x:%#x, want %#x:%#x", dev, ma, mi, tc.major, tc.minor)
		}
	}
	if devMajor(0xfe00) != 0xfe || devMinor(0xfe00) != 0 {
		t.Error("0xfe00 is not fe:00")
	}
}
