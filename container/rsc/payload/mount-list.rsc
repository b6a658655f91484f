:if ([:len [/container/mounts/find where list={{q mount-list}}]] = 0) do={ /container/mounts/add list={{q mount-list}} src="{{outer datadir}}" dst="/data" }
