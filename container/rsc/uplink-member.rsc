:if ([:len [/interface/list/member/find where list={{q uplink-list}} and interface={{q uplink-interface}}]] = 0) do={
  :if ([:len [/interface/find where name={{q uplink-interface}}]] = 0) do={
    :put "flowshield: there is no interface {{uplink-interface}}: not added to {{uplink-list}}"
  } else={
    /interface/list/member/add list={{q uplink-list}} interface={{q uplink-interface}} comment="flowshield-setup: uplink"
  }
}
