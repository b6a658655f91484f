:local d [/disk/find where fs="ext4" or fs="btrfs"]
:if ([:len $d] > 0) do={ :return [/disk/get [:pick $d 0] slot] }
:return ""
