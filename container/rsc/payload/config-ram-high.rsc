/container/config/set ram-high={{ram-high}}
