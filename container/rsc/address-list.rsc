# {{list-why}}
/ip/firewall/address-list/remove [find where list={{q list-name}} and comment={{q list-comment}}{{list-keep}}]{{list-entries}}
