:return [/system/device-mode/get container]
