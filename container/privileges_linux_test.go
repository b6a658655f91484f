package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// The privilege drop cannot be undone, so it runs in a child: the test
// binary again, on TestDropPrivilegesChild, which reports what the process
// could do afterwards.
const (
	childDirEnv      = "FLOWSHIELD_TEST_DROP_DATA_DIR"
	childRootOnlyEnv = "FLOWSHIELD_TEST_DROP_ROOT_ONLY"
	childReportMark  = "DROP-REPORT "
)

type dropReport struct {
	Err                  string
	UID, EUID, GID, EGID int
	Groups               []int
	ReadStore, WriteNew  bool // in the data directory
	WriteRootOnly        bool // in a directory root keeps
	RegainRoot           bool
	NoNewPrivs           bool   // /proc/self/status: setuid binaries cannot raise it again
	Again                string // a second DropPrivileges: now the not-root case
}

func TestDropPrivilegesChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("the child of TestDropPrivileges")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	r := dropReport{}
	// no_new_privs is per thread: read it on the thread that set it (all
	// threads have it unless cgo is linked, see DropPrivileges).
	runtime.LockOSThread()
	if err := DropPrivileges(dir, log); err != nil {
		r.Err = err.Error()
	}
	r.UID, r.EUID, r.GID, r.EGID = os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid()
	r.Groups, _ = os.Getgroups()
	if b, err := os.ReadFile(filepath.Join(dir, "flowshield.db")); err == nil && string(b) == "store" {
		r.ReadStore = true
	}
	r.WriteNew = os.WriteFile(filepath.Join(dir, "new"), []byte("x"), 0o600) == nil
	r.WriteRootOnly = os.WriteFile(filepath.Join(os.Getenv(childRootOnlyEnv), "x"), []byte("x"), 0o600) == nil
	r.RegainRoot = syscall.Setuid(0) == nil
	if st, err := os.ReadFile("/proc/thread-self/status"); err == nil {
		r.NoNewPrivs = strings.Contains(string(st), "\nNoNewPrivs:\t1\n")
	}
	if err := DropPrivileges(dir, log); err != nil {
		r.Again = err.Error()
	}
	b, _ := json.Marshal(r)
	fmt.Println(childReportMark + string(b))
}

// runDropChild runs DropPrivileges(dataDir) in a child process; it returns
// the child's report and its log.
func runDropChild(t *testing.T, dataDir, rootOnly string) (dropReport, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDropPrivilegesChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dataDir, childRootOnlyEnv+"="+rootOnly)
	if os.Geteuid() == 0 {
		// Root with supplementary groups, as in a container: they must go.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{0, 4}}}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	for line := range strings.SplitSeq(stdout.String(), "\n") {
		if j, ok := strings.CutPrefix(line, childReportMark); ok {
			var r dropReport
			if err := json.Unmarshal([]byte(j), &r); err != nil {
				t.Fatal(err)
			}
			return r, stderr.String()
		}
	}
	t.Fatalf("no report from the child:\n%s\n%s", stdout.String(), stderr.String())
	return dropReport{}, ""
}

// owner is the uid:gid of path, not following a final link.
func owner(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
}

// traversable lets any user reach what is under dir (t.TempDir's are 0700).
func traversable(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDropPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		// Not root: DropPrivileges must change nothing, and say so.
		dir := t.TempDir()
		r, log := runDropChild(t, dir, dir)
		if r.Err != "" || r.EUID != os.Geteuid() || !strings.Contains(log, "not running as root") {
			t.Fatalf("not root: %+v\n%s", r, log)
		}
		t.Skip("the drop itself needs root")
	}
	want := fmt.Sprintf("%d:%d", RunAsUID, RunAsGID)
	tests := []struct {
		name string
		// setup makes the data directory under base as root and returns it
		// with the paths that must end up owned by RunAsUID.
		setup func(t *testing.T, base string) (dataDir string, owned []string)
	}{
		{"a root-owned mount holding the store", func(t *testing.T, base string) (string, []string) {
			dir := filepath.Join(base, "data")
			sub := filepath.Join(dir, "sub")
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			db, subFile := filepath.Join(dir, "flowshield.db"), filepath.Join(sub, "f")
			for _, f := range []string{db, subFile} {
				if err := os.WriteFile(f, []byte("store"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			return dir, []string{dir, sub, db, subFile}
		}},
		{"a missing directory is made", func(t *testing.T, base string) (string, []string) {
			dir := filepath.Join(base, "made", "data")
			return dir, []string{dir}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			traversable(t, base)
			dir, owned := tc.setup(t, base)
			// A link to a file outside and a FIFO: neither is given away,
			// nor the link's target.
			outside := filepath.Join(base, "outside")
			if err := os.WriteFile(outside, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			var kept []string
			if _, err := os.Stat(dir); err == nil {
				link, fifo := filepath.Join(dir, "link"), filepath.Join(dir, "fifo")
				if err := os.Symlink(outside, link); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Mkfifo(fifo, 0o600); err != nil {
					t.Fatal(err)
				}
				kept = append(kept, link, fifo)
			}
			rootOnly := filepath.Join(base, "root-only")
			if err := os.Mkdir(rootOnly, 0o755); err != nil {
				t.Fatal(err)
			}

			r, log := runDropChild(t, dir, rootOnly)
			if r.Err != "" {
				t.Fatalf("DropPrivileges: %s\n%s", r.Err, log)
			}
			if r.UID != RunAsUID || r.EUID != RunAsUID || r.GID != RunAsGID || r.EGID != RunAsGID || len(r.Groups) != 0 {
				t.Errorf("after the drop: uid %d euid %d gid %d egid %d groups %v", r.UID, r.EUID, r.GID, r.EGID, r.Groups)
			}
			if !r.WriteNew || r.WriteRootOnly || r.RegainRoot || !r.NoNewPrivs {
				t.Errorf("write in the data dir %v, in root's dir %v, root taken back %v, no_new_privs %v", r.WriteNew, r.WriteRootOnly, r.RegainRoot, r.NoNewPrivs)
			}
			if r.Again != "" || !strings.Contains(log, "dropped root privileges") || !strings.Contains(log, "not running as root") {
				t.Errorf("second call %q; log:\n%s", r.Again, log)
			}
			for _, p := range owned {
				if got := owner(t, p); got != want {
					t.Errorf("%s owned by %s, want %s", p, got, want)
				}
			}
			if len(owned) > 2 && !r.ReadStore {
				t.Error("the store, root's 0600 file before, is not readable after the drop")
			}
			for _, p := range append(kept, outside) {
				if got := owner(t, p); got != "0:0" {
					t.Errorf("%s is now %s's", p, got)
				}
			}
		})
	}
}

// TestOwnDataDirRefuses: what is not flowshield's data directory is refused
// before anything changes owner. ownDataDir does not drop privileges, so
// it runs in the test process.
func TestOwnDataDirRefuses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing owners needs root")
	}
	big := t.TempDir()
	for i := range maxDataDirEntries {
		if err := os.WriteFile(filepath.Join(big, fmt.Sprint(i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rootLink := filepath.Join(t.TempDir(), "root")
	if err := os.Symlink("/", rootLink); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir string
		tooLarge  bool
	}{
		{"more entries than flowshield makes", big, true},
		{"the root directory", "/", false},
		{"a link to the root directory", rootLink, false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ownDataDir(tc.dir)
			if err == nil {
				t.Fatal("accepted")
			}
			var tl *DataDirTooLargeError
			if errors.As(err, &tl) != tc.tooLarge {
				t.Errorf("error %v: DataDirTooLargeError %v, want %v", err, !tc.tooLarge, tc.tooLarge)
			}
		})
	}
	if got := owner(t, filepath.Join(big, "0")); got != "0:0" {
		t.Errorf("a refused directory's file is now %s's", got)
	}
	if got := owner(t, "/"); got != "0:0" {
		t.Errorf("/ is now %s's", got)
	}
}

// TestRunAsIsTheImagesDataOwner: the images give /data to the user
// DropPrivileges becomes (scripts/imagebuild's TestDockerfileAgrees holds
// the daemonless image to Dockerfile.arm64).
func TestRunAsIsTheImagesDataOwner(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile.arm64"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("--chown=%d:%d /out/data /data\n", RunAsUID, RunAsGID); !strings.Contains(string(b), want) {
		t.Errorf("Dockerfile.arm64 does not give /data to %d:%d (%q)", RunAsUID, RunAsGID, strings.TrimSpace(want))
	}
}
