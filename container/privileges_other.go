//go:build !linux

package container

import (
	"log/slog"
	"os"
)

// DropPrivileges only logs outside Linux: the image is Linux, and
// elsewhere the daemon runs as whoever starts it.
func DropPrivileges(dataDir string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	log.Info("privileges are dropped on Linux only: keeping the current user", "uid", os.Geteuid(), "data_dir", dataDir)
	return nil
}
