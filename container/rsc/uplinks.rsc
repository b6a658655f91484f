# The uplinks: flowshield reads the receive counters of the interfaces in
# {{uplink-list}} (saturation against LINK_MBPS, the flow-blind alarm). The
# script adds the interfaces of -uplinks and leaves the members you added.
:if ([:len [/interface/list/find where name={{q uplink-list}}]] = 0) do={
  /interface/list/add name={{q uplink-list}} comment="flowshield-setup: uplinks"
}{{uplink-members}}
:if ([:len [/interface/list/member/find where list={{q uplink-list}}]] = 0) do={
  :put "flowshield: the interface list {{uplink-list}} is empty, so flowshield cannot tell a saturated uplink nor blind flows: add your uplinks, for example /interface/list/member/add list={{uplink-list}} interface=ether1, or run flowshield routeros-script -uplinks ether1 again"
}
