/ip/traffic-flow/set active-flow-timeout=1s inactive-flow-timeout=1s
