package container

import "fmt"

// RunAsUID and RunAsGID are the user flowshield runs as in its container
// once started as root (DropPrivileges): nobody/nogroup, which owns
// nothing else in the image. Dockerfile.arm64 and scripts/imagebuild give
// /data to the same IDs.
const RunAsUID, RunAsGID = 65534, 65534

// maxDataDirEntries bounds what DropPrivileges hands over: flowshield keeps
// one bbolt file there, so a directory with more is not its own.
const maxDataDirEntries = 256

// DataDirTooLargeError says DropPrivileges found more entries under the
// data directory than flowshield would ever have made, and changed none.
type DataDirTooLargeError struct {
	Dir   string
	Limit int
}

func (e *DataDirTooLargeError) Error() string {
	return fmt.Sprintf("%s holds more than %d files and directories: not a flowshield data directory (check FLOWSHIELD_DATA_DIR)", e.Dir, e.Limit)
}
