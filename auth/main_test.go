package auth

import (
	"testing"

	"github.com/sfarchive/sfarchive/internal/leakcheck"
)

// TestMain fails the run if goroutines started by the tests outlive them.
func TestMain(m *testing.M) { leakcheck.Main(m) }
