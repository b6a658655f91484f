:if ([:len [/ip/firewall/address-list/find where list={{q list-name}} and address={{q list-entry}}]] = 0) do={
  /ip/firewall/address-list/add list={{q list-name}} address={{q list-entry}} comment={{q list-comment}}
}
