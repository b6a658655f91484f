package hostmetrics

import "github.com/flowshield/flowshield/detect"

// The detector is the source the daemon wires in.
var (
	_ Source        = (*detect.Engine)(nil)
	_ NetworkSource = (*detect.Engine)(nil)
)
