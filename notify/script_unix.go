//go:build unix

package notify

import (
	"os/exec"
	"syscall"
)

// killGroup runs the script in its own process group and makes the
// context's end kill the whole group: a shell script's children (curl,
// mail) die with it instead of living on after the timeout.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
