:if ([:len [/container/mounts/find where name={{q mount-list}}]] = 0) do={ /container/mounts/add name={{q mount-list}} src="{{outer datadir}}" dst="/data" }
