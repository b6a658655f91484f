:return [/container/find where comment="flowshield-setup: container"]
