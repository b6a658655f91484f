package flowgen

import (
	"fmt"

	"github.com/flowshield/flowshield/flow"
)

// Format is an encoding the encoder can produce: a wire format (Flow
// gives it as the flow.Format decoders report) and, for NetFlow v9 and
// IPFIX, optionally RouterOS's template shape.
type Format uint8

const (
	FormatNetFlowV5 Format = iota + 1
	FormatNetFlowV9
	FormatIPFIX
	FormatSFlow
	FormatRouterOSV9    // NetFlow v9 shaped like MikroTik RouterOS traffic-flow
	FormatRouterOSIPFIX // IPFIX shaped like MikroTik RouterOS traffic-flow
)

var formatNames = map[Format]string{
	FormatNetFlowV5:     "v5",
	FormatNetFlowV9:     "v9",
	FormatIPFIX:         "ipfix",
	FormatSFlow:         "sflow",
	FormatRouterOSV9:    "routeros-v9",
	FormatRouterOSIPFIX: "routeros-ipfix",
}

func (f Format) String() string {
	if s, ok := formatNames[f]; ok {
		return s
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// ParseFormat reads v5, v9, ipfix, sflow, routeros-v9 or routeros-ipfix.
func ParseFormat(s string) (Format, error) {
	for f, name := range formatNames {
		if name == s {
			return f, nil
		}
	}
	return 0, fmt.Errorf("unknown flow format %q (want v5, v9, ipfix, sflow, routeros-v9 or routeros-ipfix)", s)
}

// Formats lists every format, for tests and help text.
func Formats() []Format {
	return []Format{FormatNetFlowV5, FormatNetFlowV9, FormatIPFIX, FormatSFlow, FormatRouterOSV9, FormatRouterOSIPFIX}
}

// Flow is the wire format f encodes, as decoders report it in
// flow.Record.Format.
func (f Format) Flow() flow.Format {
	switch f {
	case FormatNetFlowV5:
		return flow.FormatNetFlowV5
	case FormatNetFlowV9, FormatRouterOSV9:
		return flow.FormatNetFlowV9
	case FormatIPFIX, FormatRouterOSIPFIX:
		return flow.FormatIPFIX
	case FormatSFlow:
		return flow.FormatSFlowV5
	}
	return flow.FormatUnknown
}

func (f Format) templated() bool {
	return f == FormatNetFlowV9 || f == FormatIPFIX || f == FormatRouterOSV9 || f == FormatRouterOSIPFIX
}

func (f Format) ipfix() bool { return f == FormatIPFIX || f == FormatRouterOSIPFIX }
