/container/config/set memory-high={{ram-high}}
