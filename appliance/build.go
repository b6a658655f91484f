package appliance

import (
	"runtime"
	"runtime/debug"
)

// Version and Commit are set at link time:
//
//	go build -ldflags "-X github.com/flowshield/flowshield/appliance.Version=1.2.3 \
//	  -X github.com/flowshield/flowshield/appliance.Commit=$(git rev-parse HEAD)" ./cmd/flowshield
//
// Without -X, Commit falls back to the VCS revision Go stamps into the binary.
var (
	Version = "dev"
	Commit  = ""
)

// Build describes the running binary, for `flowshield version` and the
// status API.
type Build struct {
	Version   string
	Commit    string // "unknown" when neither -X nor the Go VCS stamp says
	Modified  bool   // built from a tree with uncommitted changes (Go VCS stamp)
	GoVersion string
	OS, Arch  string
}

// BuildInfo reports the running binary's build.
func BuildInfo() Build {
	b := Build{
		Version:   Version,
		Commit:    Commit,
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}
