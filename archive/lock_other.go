//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package archive

import (
	"os"
	"time"
)

// lockFile is a no-op where flock is unavailable; bbolt takes its own lock with Options.LockTimeout.
func lockFile(*os.File, bool, time.Duration) error { return nil }
