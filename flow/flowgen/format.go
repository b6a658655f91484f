package flowgen

import "fmt"

// Format is an export wire format the encoder can produce.
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

func (f Format) templated() bool {
	return f == FormatNetFlowV9 || f == FormatIPFIX || f == FormatRouterOSV9 || f == FormatRouterOSIPFIX
}

func (f Format) ipfix() bool { return f == FormatIPFIX || f == FormatRouterOSIPFIX }
