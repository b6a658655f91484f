:if ([:len [/ip/firewall/address-list/find where list={{q admin-list}}]] = 0) do={
  :put "flowshield: the web UI and API (TCP {{http-port}}) answer only the router and the sources in the address list {{admin-list}}, which is empty: add your management network, for example /ip/firewall/address-list/add list={{admin-list}} address=192.168.88.0/24, or run flowshield routeros-script -admin 192.168.88.0/24 again"
}
