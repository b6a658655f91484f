package storage

import (
	"os"
	"syscall"
	"testing"
)

// withFileSizeLimit runs fn with the process unable to grow files past
// path's size (RLIMIT_FSIZE: writes fail with EFBIG; Go ignores the
// SIGXFSZ that comes with it), then lifts the limit.
func withFileSizeLimit(t *testing.T, path string, fn func() error) error {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skipf("no RLIMIT_FSIZE: %v", err)
	}
	lim := old
	lim.Cur = uint64(info.Size())
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("cannot set RLIMIT_FSIZE: %v", err)
	}
	defer func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatalf("restoring RLIMIT_FSIZE: %v", err)
		}
	}()
	return fn()
}
