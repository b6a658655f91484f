package container

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// DropPrivileges gives dataDir to RunAsUID:RunAsGID and makes the process
// that user, with no supplementary groups and no way back to root. The
// image starts flowshield as root because RouterOS creates a container's
// mounts owned by root and has no rootless mode: an image whose USER is
// unprivileged could not write to a mounted /data, and could not fix it.
// Call it once, first thing after reading the
// configuration, before any socket is opened or any input parsed. Since Go
// 1.16 the set*id calls apply to every thread of the process.
//
// Not root (an engine that honours --user, off-box under a service
// account): it only logs that it keeps the current user.
//
// dataDir is made if missing; it and what it holds (at most
// maxDataDirEntries entries, symbolic links and special files left alone)
// change owner. On any error the process may still be root: the caller
// should exit rather than go on. A filesystem without owners (FAT) fails
// here; use ext4 for the data disk.
func DropPrivileges(dataDir string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	if os.Geteuid() != 0 {
		log.Info("not running as root: keeping the current user", "uid", os.Geteuid(), "gid", os.Getegid())
		return nil
	}
	dir, err := ownDataDir(dataDir)
	if err != nil {
		return err
	}
	// No setuid binary run later (the notify script) can regain
	// privileges. no_new_privs is per thread and a script is started from
	// whichever thread runs its goroutine, so it goes on every thread.
	// With cgo linked (tests may be) Go cannot reach every thread: then
	// it is set on this one, which the caller's later threads inherit.
	if _, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); errno == syscall.ENOTSUP {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("dropping privileges: setting no_new_privs: %w", err)
		}
	} else if errno != 0 {
		return fmt.Errorf("dropping privileges: setting no_new_privs: %w", errno)
	}
	// Groups first, the user last: once the user changes, the groups
	// cannot be.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("dropping privileges: clearing supplementary groups: %w", err)
	}
	if err := syscall.Setgid(RunAsGID); err != nil {
		return fmt.Errorf("dropping privileges: setgid %d: %w", RunAsGID, err)
	}
	if err := syscall.Setuid(RunAsUID); err != nil {
		return fmt.Errorf("dropping privileges: setuid %d: %w", RunAsUID, err)
	}
	// setuid from root sets the real, effective and saved IDs; if any
	// were left, this would succeed.
	if err := syscall.Setuid(0); err == nil {
		return errors.New("dropping privileges: root could be taken back after setuid")
	}
	log.Info("dropped root privileges", "uid", RunAsUID, "gid", RunAsGID, "data_dir", dir)
	return nil
}

// ownDataDir makes dataDir if needed and gives it and its entries to
// RunAsUID:RunAsGID. It looks at everything before changing anything, so a
// DATA_DIR set by mistake to / or /etc is refused untouched.
func ownDataDir(dataDir string) (string, error) {
	if dataDir == "" {
		return "", errors.New("dropping privileges: no data directory")
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("dropping privileges: data directory %s: %w", dataDir, err)
	}
	// Parents made here must stay reachable by RunAsUID; the directory
	// itself is for flowshield only.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("dropping privileges: making the data directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("dropping privileges: making the data directory: %w", err)
	}
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return "", fmt.Errorf("dropping privileges: data directory %s: %w", dataDir, err)
	}
	if dir == "/" {
		return "", errors.New("dropping privileges: the data directory is /")
	}
	var paths []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil // links, sockets, devices: not flowshield's files
		}
		if len(paths) == maxDataDirEntries {
			return &DataDirTooLargeError{Dir: dir, Limit: maxDataDirEntries}
		}
		paths = append(paths, path)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("dropping privileges: reading the data directory: %w", err)
	}
	for _, p := range paths {
		if err := os.Lchown(p, RunAsUID, RunAsGID); err != nil {
			return "", fmt.Errorf("dropping privileges: giving %s to %d:%d: %w", p, RunAsUID, RunAsGID, err)
		}
	}
	return dir, nil
}
