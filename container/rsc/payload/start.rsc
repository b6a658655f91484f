/container/start [find where comment="flowshield-setup: container"]
