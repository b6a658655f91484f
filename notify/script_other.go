//go:build !unix

package notify

import "os/exec"

// killGroup: without process groups only the script itself is killed.
func killGroup(*exec.Cmd) {}
